// Filters the guide list as the citizen types (names, categories and aliases).
(function () {
  "use strict";
  const input = document.getElementById("filter");
  const none = document.getElementById("no-match");
  input.addEventListener("input", () => {
    const q = input.value.trim().toLowerCase();
    let shown = 0;
    document.querySelectorAll(".category").forEach((section) => {
      let inSection = 0;
      section.querySelectorAll("li[data-search]").forEach((li) => {
        const hit = !q || li.dataset.search.toLowerCase().includes(q);
        li.hidden = !hit;
        if (hit) inSection++;
      });
      section.hidden = inSection === 0;
      shown += inSection;
    });
    none.hidden = shown > 0;
  });
})();
