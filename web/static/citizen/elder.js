// 长辈模式 (适老化): larger text, larger touch targets, higher contrast, fewer buttons. One switch on the
// chat page and the guide pages, remembered in localStorage. Loaded in <head> without `defer` so the
// class is on <html> before the first paint (no flash of the small page); binds the switch later.
(function () {
  "use strict";
  const KEY = "bst.elder";
  const root = document.documentElement;

  function stored() {
    try { return localStorage.getItem(KEY) === "1"; } catch (e) { return false; }
  }

  function apply(on) {
    root.classList.toggle("elder", on);
    document.querySelectorAll(".elder-toggle").forEach((b) => {
      b.setAttribute("aria-pressed", on ? "true" : "false");
      b.textContent = on ? "标准模式" : "长辈模式";
      b.setAttribute("aria-label", on ? "长辈模式已开启，点按回到标准模式" : "长辈模式：大字、大按钮");
    });
    document.dispatchEvent(new CustomEvent("bst:elder", { detail: { on: on } }));
  }

  root.classList.toggle("elder", stored());
  document.addEventListener("DOMContentLoaded", () => {
    apply(stored());
    document.querySelectorAll(".elder-toggle").forEach((b) => b.addEventListener("click", () => {
      const on = !root.classList.contains("elder");
      try { localStorage.setItem(KEY, on ? "1" : "0"); } catch (e) { /* private mode: this page only */ }
      apply(on);
    }));
  });
})();
