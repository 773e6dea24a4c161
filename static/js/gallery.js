// Gallery behaviour: composer tier rules, selection with shift-click ranges,
// the promote dialog, the image page's keys and the compare slider.
// No inline scripts (the CSP forbids them): pages mark elements with data- attributes.
(function () {
  "use strict";

  // --- htmx: show refusals (400 invalid, 402 credits, 403 not yours, 413 too large,
  // 429 busy) where they belong; a 403 carries only its reason, swapped into the messages.
  document.addEventListener("htmx:beforeSwap", function (event) {
    const status = event.detail.xhr.status;
    if ([400, 402, 403, 404, 413, 422, 429].includes(status)) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // A poll may resend a tile it already sent; skip the swap so its image and
  // checkbox are left alone.
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    const incoming = event.detail.fragment && event.detail.fragment.firstElementChild;
    const current = event.detail.target;
    if (incoming && current && incoming.dataset && incoming.dataset.version &&
        incoming.dataset.version === current.dataset.version) {
      event.detail.shouldSwap = false;
    }
  });

  // --- composer: each tier offers what its model can make (data-tiers on each
  // size and ratio), and Pro fewer images than Flash.
  function applyTier(form) {
    const tier = (form.querySelector("input[name=tier]:checked") || {}).value || "flash";
    form.dataset.tier = tier;
    form.querySelectorAll("[data-tiers]").forEach(function (label) {
      const input = label.querySelector("input");
      if (input) input.disabled = !label.dataset.tiers.split(" ").includes(tier);
    });
    ["size", "aspect"].forEach(function (name) {
      const checked = form.querySelector("input[name=" + name + "]:checked");
      if (!checked || checked.disabled) {
        const first = form.querySelector("input[name=" + name + "]:not(:disabled)");
        const fallback = form.querySelector("input[name=" + name + "][value='" +
          (name === "size" ? "1K" : "1:1") + "']");
        (fallback && !fallback.disabled ? fallback : first).checked = true;
      }
    });
    const count = form.querySelector("input[name=count]");
    if (count) {
      count.max = tier === "pro" ? form.dataset.proMax : form.dataset.flashMax;
      if (Number(count.value) > Number(count.max)) count.value = count.max;
    }
    const seed = form.querySelector("input[name=seed]");
    const locked = form.querySelector("input[name=seed_mode][value=locked]");
    if (seed && locked) seed.disabled = !locked.checked;
  }
  function initComposers(root) {
    (root || document).querySelectorAll("[data-composer]").forEach(applyTier);
  }
  document.addEventListener("change", function (event) {
    const form = event.target.closest("[data-composer]");
    if (form && (event.target.name === "tier" || event.target.name === "seed_mode")) applyTier(form);
    if (event.target.matches("[data-pick]")) updateSelection();
  });

  // --- selection: checkboxes, shift-click for a range.
  let lastPick = null;
  document.addEventListener("click", function (event) {
    const pick = event.target.closest("[data-pick]");
    if (pick) {
      if (event.shiftKey && lastPick && lastPick !== pick && document.contains(lastPick)) {
        // Only tiles in view: a rejected tile hidden from the grid is not in the range.
        const all = Array.from(document.querySelectorAll("[data-pick]")).filter(function (box) {
          return box === pick || box.closest(".tile").offsetParent !== null;
        });
        const a = all.indexOf(lastPick), b = all.indexOf(pick);
        all.slice(Math.min(a, b), Math.max(a, b) + 1).forEach(function (box) {
          box.checked = pick.checked;
        });
      }
      lastPick = pick;
      updateSelection();
      return;
    }
    if (event.target.closest("[data-selection-clear]")) {
      document.querySelectorAll("[data-pick]").forEach(function (box) { box.checked = false; });
      updateSelection();
    }
    if (event.target.closest("[data-select-starred]")) {
      document.querySelectorAll(".tile").forEach(function (tile) {
        const box = tile.querySelector("[data-pick]");
        const star = tile.querySelector(".star.on");
        if (box && star && tile.offsetParent !== null) box.checked = true;
      });
      updateSelection();
    }
    if (event.target.closest("[data-dialog-close]")) {
      const dialog = document.getElementById("dialog");
      if (dialog && dialog.open) dialog.close(); else history.back();
    }
  });
  function updateSelection() {
    const count = document.querySelectorAll("[data-pick]:checked").length;
    document.querySelectorAll("[data-selection-count]").forEach(function (label) {
      label.textContent = count ? count + " selected" : "Nothing selected";
    });
    document.querySelectorAll("[data-needs-selection]").forEach(function (button) {
      button.disabled = count === 0;
    });
  }

  // --- the dialog opens when content is swapped into it, and closes on request.
  // Opened once settled: htmx wires the new form's hx-post when it settles, and a
  // quick Enter on the focused button before then would post it as a plain form.
  document.addEventListener("htmx:afterSettle", function (event) {
    const dialog = document.getElementById("dialog");
    if (dialog && event.detail.target && event.detail.target.id === "dialog-body" && !dialog.open) {
      dialog.showModal();
    }
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    // A poll replaces its own poller, which is then detached: nothing to set up.
    if (!event.detail.target.isConnected) return;
    initComposers(event.detail.target.parentNode || document);
    updateSelection();
  });
  document.body.addEventListener("dialog-close", function () {
    const dialog = document.getElementById("dialog");
    if (dialog && dialog.open) dialog.close();
  });
  // A click on the backdrop (outside the dialog's box) closes it, as Esc does.
  document.addEventListener("click", function (event) {
    const dialog = event.target.id === "dialog" ? event.target : null;
    if (!dialog || !dialog.open) return;
    const box = dialog.getBoundingClientRect();
    const inside = event.clientX >= box.left && event.clientX <= box.right &&
      event.clientY >= box.top && event.clientY <= box.bottom;
    if (!inside) dialog.close();
  });
  // Promoted: the drafts are on their way, so the selection that chose them is done.
  document.body.addEventListener("selection-clear", function () {
    document.querySelectorAll("[data-pick]:checked").forEach(function (box) { box.checked = false; });
    updateSelection();
  });

  // --- composer: a successful submit clears the errors of the refused one before it.
  document.addEventListener("htmx:afterRequest", function (event) {
    const form = event.detail.elt;
    if (!form || form.id !== "composer" || !event.detail.successful) return;
    if (event.detail.xhr.status !== 200) return;
    form.querySelectorAll(".error").forEach(function (error) { error.remove(); });
    form.querySelectorAll("[aria-invalid]").forEach(function (field) {
      field.removeAttribute("aria-invalid");
      field.removeAttribute("aria-describedby");
    });
  });

  // --- image page keys: ← → move, S star, X reject, 1–5 rate, P promote, D download,
  // C compare, E edit, Esc close. (The viewer over the grid has its own, in lightbox.js.)
  const KEYS = { ArrowLeft: "ArrowLeft", ArrowRight: "ArrowRight", Escape: "Escape", s: "s", p: "p", d: "d", c: "c", x: "x", e: "e" };
  document.addEventListener("keydown", function (event) {
    const box = document.querySelector("[data-lightbox]");
    if (!box || event.ctrlKey || event.metaKey || event.altKey || event.shiftKey) return;
    if (event.target.closest("input, textarea, select, [contenteditable]")) return;
    const dialog = document.getElementById("dialog");
    if (dialog && dialog.open) return;
    let target = null;
    if (/^[0-5]$/.test(event.key)) {
      target = box.querySelector(".rating-form button[value='" + event.key + "']");
    } else {
      const key = KEYS[event.key] || KEYS[event.key.toLowerCase()];
      if (!key) return;
      target = key === "s" ? box.querySelector("[data-star]") : box.querySelector("[data-key='" + key + "']");
    }
    if (!target) return;
    event.preventDefault();
    target.click();
  });

  // The image page's Edit (E) goes to the instruction box and puts the cursor in it.
  document.addEventListener("click", function (event) {
    const link = event.target.closest("[data-edit-open]");
    const words = link && document.getElementById("edit-instructions");
    if (!words) return;
    event.preventDefault();
    words.scrollIntoView({ block: "center" });
    words.focus({ preventScroll: true });
  });

  // --- compare slider: the Pro render over the draft, cut at the slider.
  document.addEventListener("input", function (event) {
    if (!event.target.matches("[data-compare-range]")) return;
    const slider = document.querySelector("[data-compare-slider]");
    if (slider) slider.style.setProperty("--split", event.target.value + "%");
  });

  document.addEventListener("DOMContentLoaded", function () {
    initComposers(document);
    updateSelection();
  });
})();
