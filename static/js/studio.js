// Page behaviour shared by every page. No inline scripts: the CSP forbids them.
(function () {
  "use strict";
  const root = document.documentElement;
  // No saved choice: the stylesheet follows prefers-color-scheme. A click
  // flips what is shown now, and that explicit choice wins from then on.
  const saved = localStorage.getItem("cs-theme");
  if (saved === "light" || saved === "dark") root.dataset.theme = saved;
  function shown() {
    if (root.dataset.theme) return root.dataset.theme;
    return window.matchMedia("(prefers-color-scheme: light)").matches ? "light" : "dark";
  }
  document.addEventListener("click", function (event) {
    const toggle = event.target.closest("[data-theme-toggle]");
    if (!toggle) return;
    root.dataset.theme = shown() === "light" ? "dark" : "light";
    localStorage.setItem("cs-theme", root.dataset.theme);
  });
  // The account menu closes on a click elsewhere and on Escape, as menus do.
  function closeMenus(except) {
    document.querySelectorAll("details.account-menu[open]").forEach(function (menu) {
      if (menu !== except) menu.open = false;
    });
  }
  document.addEventListener("click", function (event) {
    closeMenus(event.target.closest("details.account-menu"));
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") closeMenus(null);
  });
})();
