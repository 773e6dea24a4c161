// The mask editor of a region edit: paint over the image where the change goes.
// Plain JavaScript, no build step. The canvas has the source image's own pixel
// size, so what is sent is a PNG of exactly that size: white where painted (to
// change), black elsewhere (to keep). Without JavaScript the editor stays
// hidden and an edit changes the whole image.
//
// Used on the image page and in the viewer's edit panel (lightbox.js calls
// ContactSheetMask.attach on the panel it loads).
(function () {
  "use strict";

  const PAINT = "rgba(255, 64, 96, 1)"; // shown at half opacity over the picture
  const CHECK_EDGE = 256; // coverage is measured on a copy this small

  function attach(root) {
    (root || document).querySelectorAll("[data-mask-editor]").forEach(function (editor) {
      if (editor.maskReady) return;
      editor.maskReady = true;
      setUp(editor);
    });
  }

  function setUp(editor) {
    const form = editor.closest("form");
    const canvas = editor.querySelector("[data-mask-canvas]");
    const context = canvas.getContext("2d");
    const brush = editor.querySelector("[data-mask-brush]");
    const coverage = editor.querySelector("[data-mask-coverage]");
    const file = editor.querySelector("[data-mask-file]");
    let mode = "paint";
    let stroke = null;
    let painted = 0;

    editor.hidden = false;

    function brushPixels() {
      // The slider is a share of the image's longer side, so it feels the same at 512 and 4K.
      return Math.max(2, Math.max(canvas.width, canvas.height) * Number(brush.value) / 100);
    }
    function at(event) {
      const box = canvas.getBoundingClientRect();
      return {
        x: (event.clientX - box.left) * canvas.width / box.width,
        y: (event.clientY - box.top) * canvas.height / box.height,
      };
    }
    function draw(from, to) {
      context.globalCompositeOperation = mode === "erase" ? "destination-out" : "source-over";
      context.strokeStyle = context.fillStyle = PAINT;
      context.lineWidth = brushPixels();
      context.lineCap = context.lineJoin = "round";
      context.beginPath();
      context.moveTo(from.x, from.y);
      context.lineTo(to.x + 0.01, to.y);
      context.stroke();
    }
    function measure() {
      const small = document.createElement("canvas");
      const scale = Math.min(1, CHECK_EDGE / Math.max(canvas.width, canvas.height));
      small.width = Math.max(1, Math.round(canvas.width * scale));
      small.height = Math.max(1, Math.round(canvas.height * scale));
      const smallContext = small.getContext("2d");
      smallContext.drawImage(canvas, 0, 0, small.width, small.height);
      const alpha = smallContext.getImageData(0, 0, small.width, small.height).data;
      let count = 0;
      for (let index = 3; index < alpha.length; index += 4) if (alpha[index] >= 128) count += 1;
      painted = count / (small.width * small.height);
      coverage.textContent = painted ? "Painted: " + Math.max(1, Math.round(painted * 100)) + " % of the image" : "Nothing painted";
      editor.classList.toggle("has-mask", painted > 0);
    }

    canvas.addEventListener("pointerdown", function (event) {
      if (event.button !== 0 || editor.classList.contains("mask-off")) return;
      canvas.setPointerCapture(event.pointerId);
      stroke = at(event);
      draw(stroke, stroke);
      event.preventDefault();
    });
    canvas.addEventListener("pointermove", function (event) {
      if (!stroke) return;
      const next = at(event);
      draw(stroke, next);
      stroke = next;
    });
    function endStroke() {
      if (!stroke) return;
      stroke = null;
      measure();
    }
    canvas.addEventListener("pointerup", endStroke);
    canvas.addEventListener("pointercancel", endStroke);

    editor.querySelectorAll("[data-mask-mode]").forEach(function (button) {
      button.addEventListener("click", function () {
        mode = button.dataset.maskMode;
        editor.querySelectorAll("[data-mask-mode]").forEach(function (other) {
          other.setAttribute("aria-pressed", String(other === button));
        });
      });
    });
    editor.querySelector("[data-mask-invert]").addEventListener("click", function () {
      // Painted becomes unpainted and the other way round.
      context.globalCompositeOperation = "xor";
      context.fillStyle = PAINT;
      context.fillRect(0, 0, canvas.width, canvas.height);
      measure();
    });
    editor.querySelector("[data-mask-clear]").addEventListener("click", function () {
      context.clearRect(0, 0, canvas.width, canvas.height);
      measure();
    });

    // What each tier's model does with a mask; painting is off where it takes none.
    function chosenTier() {
      const checked = form.querySelector("input[name=tier]:checked");
      return checked ? checked.value : "flash";
    }
    function showNote() {
      let kind = "mask";
      editor.querySelectorAll("[data-mask-note]").forEach(function (note) {
        note.hidden = note.dataset.maskNote !== chosenTier();
        if (!note.hidden) kind = note.dataset.maskKind;
      });
      editor.classList.toggle("mask-off", kind === "");
      editor.dataset.maskKind = kind;
    }
    form.querySelectorAll("input[name=tier]").forEach(function (radio) {
      radio.addEventListener("change", showNote);
    });
    showNote();

    // The mask goes with the form as a file: black, with white where painted.
    function maskBlob(done) {
      const white = document.createElement("canvas");
      white.width = canvas.width;
      white.height = canvas.height;
      const whiteContext = white.getContext("2d");
      whiteContext.drawImage(canvas, 0, 0);
      whiteContext.globalCompositeOperation = "source-in";
      whiteContext.fillStyle = "#fff";
      whiteContext.fillRect(0, 0, white.width, white.height);
      const out = document.createElement("canvas");
      out.width = canvas.width;
      out.height = canvas.height;
      const outContext = out.getContext("2d");
      outContext.fillStyle = "#000";
      outContext.fillRect(0, 0, out.width, out.height);
      outContext.drawImage(white, 0, 0);
      out.toBlob(done, "image/png");
    }
    form.addEventListener("submit", function (event) {
      if (form.maskAttached || !painted || editor.dataset.maskKind === "") return;
      event.preventDefault();
      maskBlob(function (blob) {
        const transfer = new DataTransfer();
        transfer.items.add(new File([blob], "mask.png", { type: "image/png" }));
        file.files = transfer.files;
        form.maskAttached = true;
        form.submit();
      });
    });
  }

  window.ContactSheetMask = { attach: attach };
  document.addEventListener("DOMContentLoaded", function () { attach(document); });
})();
