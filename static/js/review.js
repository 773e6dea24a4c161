// Client review: the lightbox's keys (← → to move, Esc back to the grid),
// click to zoom, and tapping the image to pin a comment to a point.
// No inline scripts (the CSP forbids them): the page marks elements with data- attributes.
(function () {
  "use strict";

  function typing(event) {
    const tag = (event.target.tagName || "").toLowerCase();
    return tag === "input" || tag === "textarea" || event.target.isContentEditable;
  }

  document.addEventListener("keydown", function (event) {
    const box = document.querySelector("[data-lightbox]");
    if (!box || typing(event) || event.metaKey || event.ctrlKey || event.altKey) return;
    const target = { ArrowLeft: box.dataset.previous, ArrowRight: box.dataset.next,
                     Escape: box.dataset.close }[event.key];
    if (target) {
      event.preventDefault();
      window.location.assign(target);
    }
  });

  document.addEventListener("click", function (event) {
    const image = event.target.closest("[data-zoomable]");
    if (!image) return;
    const stage = image.closest("[data-stage]");
    const form = document.querySelector("[data-comment-form]");
    // With a comment being written, a tap pins it; otherwise it zooms.
    const textarea = form && form.querySelector("textarea");
    if (form && textarea && (document.activeElement === textarea || textarea.value)) {
      const box = image.getBoundingClientRect();
      const x = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
      const y = Math.min(1, Math.max(0, (event.clientY - box.top) / box.height));
      form.querySelector("[data-pin-x]").value = x.toFixed(4);
      form.querySelector("[data-pin-y]").value = y.toFixed(4);
      const pin = stage.querySelector("[data-new-pin]");
      if (pin) {
        pin.hidden = false;
        pin.style.left = (x * 100) + "%";
        pin.style.top = (y * 100) + "%";
      }
      textarea.focus();
      return;
    }
    stage.classList.toggle("zoomed");
  });
})();
