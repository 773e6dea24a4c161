// Page behaviour shared by every page. No inline scripts: the CSP forbids them.
(function () {
  "use strict";
  const root = document.documentElement;
  const saved = localStorage.getItem("cs-theme");
  if (saved) root.dataset.theme = saved;
  document.addEventListener("click", function (event) {
    const toggle = event.target.closest("[data-theme-toggle]");
    if (!toggle) return;
    root.dataset.theme = root.dataset.theme === "light" ? "dark" : "light";
    localStorage.setItem("cs-theme", root.dataset.theme);
  });
})();
