// The guide page's print button (no inline handlers: the page runs under CSP 'self').
(function () {
  "use strict";
  const btn = document.getElementById("print");
  if (btn) btn.addEventListener("click", () => window.print());
})();
