// Culling: the viewer over the grid, keys on tiles, zoom and pan, and keeping
// your place. Plain JavaScript, no build step; no inline scripts (the CSP
// forbids them). Without it every tile is a link to its image page, which
// stays the shareable URL.
//
// Keys on a focused tile and in the viewer: Space open/close, ← → move
// (across grids), ↑ ↓ rows (grid), S star, X reject, U undo the reject,
// 1–5 rate (0 clears), P promote, D download, C compare, E edit (the edit
// panel, with the mask editor), Z zoom, Shift+arrows pan, Esc back.
(function () {
  "use strict";

  const ZOOM_LEVELS = ["fit", 1, 2];
  const PAN_STEP = 0.1; // of the view's size, per Shift+arrow

  // --- helpers ----------------------------------------------------------------------
  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"]; }
    catch (error) { return ""; }
  }
  function post(url, values) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "HX-Request": "true" },
      body: new URLSearchParams(values),
    }).then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.text();
    });
  }
  function linkOf(tile) { return tile.querySelector(".tile-image"); }
  function teamUrl(tile) { return linkOf(tile).getAttribute("href").replace(/images\/\d+\/$/, ""); }
  function imageUrl(tile, kind) {
    return teamUrl(tile) + "images/" + tile.dataset.id + "/" + (kind ? kind + "/" : "");
  }
  function isShown(tile) { return tile.offsetParent !== null; }
  function allTiles(openable) {
    return Array.from(document.querySelectorAll(".tile[data-id]")).filter(function (tile) {
      return isShown(tile) && (!openable || linkOf(tile).hasAttribute("data-open"));
    });
  }
  function tileOf(element) { return element && element.closest && element.closest(".tile[data-id]"); }
  function focusTile(tile) {
    if (!tile) return;
    linkOf(tile).focus({ preventScroll: true });
    tile.scrollIntoView({ block: "nearest" });
  }

  let toastTimer = null;
  function toast(html) {
    let box = document.getElementById("toast");
    if (!box) {
      box = document.createElement("div");
      box.id = "toast";
      box.className = "toast";
      box.setAttribute("role", "status");
      box.setAttribute("aria-live", "polite");
      document.body.appendChild(box);
    }
    box.innerHTML = html;
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { box.hidden = true; }, 6000);
  }

  // Swap a tile for the server's new one, keeping its checkbox and focus.
  function replaceTile(tile, html) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    const fresh = template.content.firstElementChild;
    if (!fresh || !tile.isConnected) return tile;
    const box = tile.querySelector("[data-pick]");
    const picked = box && box.checked;
    const focused = tile.contains(document.activeElement);
    const marked = tile.classList.contains("is-marked");
    tile.replaceWith(fresh);
    if (window.htmx) window.htmx.process(fresh);
    if (picked) fresh.querySelector("[data-pick]").checked = true;
    if (marked) fresh.classList.add("is-marked");
    if (focused) linkOf(fresh).focus({ preventScroll: true });
    if (viewer.tile === tile) viewer.tile = fresh;
    return fresh;
  }

  // --- the actions a key (or a click) takes on a tile --------------------------------
  const actions = {
    star: function (tile) {
      const starred = tile.classList.contains("is-starred");
      return post(teamUrl(tile) + "star/" + tile.dataset.id + "/",
        { starred: starred ? "0" : "1", tile: "1" }).then(function (html) {
        return replaceTile(tile, html);
      });
    },
    reject: function (tile, rejected) {
      if (rejected === undefined) rejected = !tile.classList.contains("is-rejected");
      return post(teamUrl(tile) + "reject/" + tile.dataset.id + "/",
        { rejected: rejected ? "1" : "0" }).then(function (html) {
        const fresh = replaceTile(tile, html);
        if (rejected) {
          lastRejected = fresh.dataset.id;
          toast("Image #" + fresh.dataset.id + " rejected: hidden from the grid. " +
            '<button type="button" data-undo-reject>Undo <kbd>U</kbd></button>');
        } else {
          toast("Image #" + fresh.dataset.id + " is back.");
        }
        return fresh;
      });
    },
    rate: function (tile, rating) {
      return post(teamUrl(tile) + "rate/" + tile.dataset.id + "/", { rating: String(rating) })
        .then(function (html) { return replaceTile(tile, html); });
    },
    promote: function (tile) {
      if (tile.dataset.tier !== "flash" || !linkOf(tile).hasAttribute("data-open")) {
        toast("Only finished Flash drafts can be promoted.");
        return;
      }
      // The current image, or the whole selection when it is part of it.
      const box = tile.querySelector("[data-pick]");
      let ids = [tile.dataset.id];
      if (box && box.checked) {
        ids = Array.from(document.querySelectorAll("[data-pick]:checked")).map(function (b) { return b.value; });
      }
      const url = teamUrl(tile) + "selection/promote/?ids=" + ids.join("&ids=");
      if (window.htmx) window.htmx.ajax("GET", url, { target: "#dialog-body" });
      else location.assign(url);
    },
    download: function (tile) {
      const link = document.createElement("a");
      link.href = imageUrl(tile, "original") + "?download=1";
      link.download = "";
      document.body.appendChild(link);
      link.click();
      link.remove();
    },
    compare: function (tile) {
      const id = tile.dataset.id;
      const selected = Array.from(document.querySelectorAll("[data-pick]:checked"))
        .map(function (box) { return box.value; }).filter(function (value) { return value !== id; });
      const marked = document.querySelector(".tile.is-marked");
      let url = "";
      if (selected.length) {
        url = teamUrl(tile) + "compare/?ids=" + [id].concat(selected).slice(0, 4).join(",");
      } else if (marked && marked !== tile) {
        url = teamUrl(tile) + "compare/?ids=" + marked.dataset.id + "," + id;
      } else if (!marked && (tile.dataset.parent || document.querySelector(".tile[data-parent='" + id + "']"))) {
        url = teamUrl(tile) + "compare/" + id + "/"; // a draft and its Pro render
      }
      if (url) {
        if (marked) marked.classList.remove("is-marked");
        rememberPlace(tile);
        leaveViewerThen(function () { location.assign(url); });
        return;
      }
      tile.classList.toggle("is-marked");
      toast(tile.classList.contains("is-marked")
        ? "Image #" + id + " is marked: press <kbd>C</kbd> on another image to compare them (or select 2–4)."
        : "Mark cleared.");
    },
    edit: function (tile) {
      if (!linkOf(tile).hasAttribute("data-open")) return;
      if (!viewer.element || viewer.element.hidden) openViewer(tile);
      loadEditPanel(tile);
    },
  };
  let lastRejected = null;
  function undoReject() {
    const tile = lastRejected && document.getElementById("tile-" + lastRejected);
    lastRejected = null;
    if (tile) return actions.reject(tile, false);
  }

  // --- zoom and pan: Fit, 100 % and 200 % of the original's pixels ------------------
  // A zoom group ([data-zoom-group]) holds a zoom bar and one or more views
  // ([data-zoom]); the views share one state {level, cx, cy}: the level is
  // taken from the widest original, the centre is a fraction of the image, so
  // a 1K draft and its 4K render show the same part of the picture.
  function zoomState(group) {
    if (!group.zoomState) group.zoomState = { level: "fit", cx: 0.5, cy: 0.5 };
    return group.zoomState;
  }
  function views(group) { return Array.from(group.querySelectorAll("[data-zoom]")); }
  function naturalSize(view) {
    const img = view.querySelector("img");
    const width = Number(view.dataset.width) || (img.dataset.full ? img.naturalWidth : 0);
    const height = Number(view.dataset.height) || (img.dataset.full ? img.naturalHeight : 0);
    return { width: width, height: height };
  }
  function loadOriginal(group, view) {
    const img = view.querySelector("img");
    if (img.dataset.full || view.dataset.loading === view.dataset.original) return;
    const wanted = view.dataset.original;
    view.dataset.loading = wanted;
    view.classList.add("loading");
    const full = new Image();
    full.onload = function () {
      if (view.dataset.original !== wanted) return; // moved on meanwhile
      img.src = full.src;
      img.dataset.full = "1";
      view.dataset.width = full.naturalWidth;
      view.dataset.height = full.naturalHeight;
      view.classList.remove("loading");
      delete view.dataset.loading;
      renderZoom(group);
    };
    full.src = wanted;
  }
  function renderZoom(group) {
    const state = zoomState(group);
    group.dataset.zoomLevel = state.level;
    group.querySelectorAll("[data-zoom-to]").forEach(function (button) {
      button.setAttribute("aria-pressed", String(button.dataset.zoomTo === String(state.level)));
    });
    const all = views(group);
    const label = group.querySelector("[data-zoom-size]");
    if (label && all.length === 1) {
      const size = naturalSize(all[0]);
      label.textContent = size.width ? size.width + " × " + size.height + " px" : "";
    }
    if (state.level === "fit") {
      all.forEach(function (view) {
        view.classList.remove("zoomed");
        const img = view.querySelector("img");
        img.style.width = img.style.height = img.style.transform = "";
      });
      return;
    }
    all.forEach(function (view) { loadOriginal(group, view); });
    const reference = Math.max.apply(null, all.map(function (view) { return naturalSize(view).width || 0; }));
    if (!reference) return; // the original's size arrives with it
    all.forEach(function (view, index) {
      const size = naturalSize(view);
      const box = view.getBoundingClientRect();
      const ratio = size.width ? size.height / size.width : 1;
      const width = reference * state.level;
      const height = width * ratio;
      // Keep the picture over the whole view: the centre stays where it can.
      const halfX = box.width / 2 / width, halfY = box.height / 2 / height;
      const cx = halfX >= 0.5 ? 0.5 : Math.min(1 - halfX, Math.max(halfX, state.cx));
      const cy = halfY >= 0.5 ? 0.5 : Math.min(1 - halfY, Math.max(halfY, state.cy));
      if (index === 0) { state.cx = cx; state.cy = cy; }
      const img = view.querySelector("img");
      view.classList.add("zoomed");
      img.style.width = width + "px";
      img.style.height = height + "px";
      img.style.transform = "translate(" + Math.round(box.width / 2 - cx * width) + "px, " +
        Math.round(box.height / 2 - cy * height) + "px)";
    });
    group.dataset.zoomCenter = state.cx.toFixed(4) + "," + state.cy.toFixed(4);
  }
  function setZoom(group, level, cx, cy) {
    const state = zoomState(group);
    state.level = level;
    if (cx !== undefined) { state.cx = cx; state.cy = cy; }
    if (level === "fit") { state.cx = 0.5; state.cy = 0.5; }
    renderZoom(group);
  }
  function cycleZoom(group) {
    const state = zoomState(group);
    const next = ZOOM_LEVELS[(ZOOM_LEVELS.indexOf(state.level) + 1) % ZOOM_LEVELS.length];
    setZoom(group, next);
  }
  // Move the picture by (dx, dy) screen pixels.
  function pan(group, dx, dy) {
    const state = zoomState(group);
    if (state.level === "fit") return false;
    const first = views(group)[0];
    const img = first && first.querySelector("img");
    const width = img && parseFloat(img.style.width), height = img && parseFloat(img.style.height);
    if (!width || !height) return false;
    state.cx -= dx / width;
    state.cy -= dy / height;
    renderZoom(group);
    return true;
  }
  function panStep(group, key) {
    const view = views(group)[0];
    if (!view) return false;
    const box = view.getBoundingClientRect();
    const step = { ArrowLeft: [1, 0], ArrowRight: [-1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] }[key];
    return pan(group, step[0] * box.width * PAN_STEP, step[1] * box.height * PAN_STEP);
  }

  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-zoom-to]");
    if (button) {
      const group = button.closest("[data-zoom-group]");
      const level = button.dataset.zoomTo === "fit" ? "fit" : Number(button.dataset.zoomTo);
      setZoom(group, level);
    }
  });
  // Double-click zooms to 100 % at the point clicked, or back to Fit.
  document.addEventListener("dblclick", function (event) {
    const view = event.target.closest("[data-zoom]");
    if (!view) return;
    const group = view.closest("[data-zoom-group]");
    if (zoomState(group).level !== "fit") return setZoom(group, "fit");
    const img = view.querySelector("img");
    const box = img.getBoundingClientRect();
    setZoom(group, 1, (event.clientX - box.left) / box.width, (event.clientY - box.top) / box.height);
  });
  let drag = null;
  document.addEventListener("pointerdown", function (event) {
    const view = event.target.closest("[data-zoom].zoomed");
    if (!view || event.button !== 0) return;
    drag = { group: view.closest("[data-zoom-group]"), x: event.clientX, y: event.clientY };
    view.setPointerCapture(event.pointerId);
    view.classList.add("dragging");
    event.preventDefault();
  });
  document.addEventListener("pointermove", function (event) {
    if (!drag) return;
    pan(drag.group, event.clientX - drag.x, event.clientY - drag.y);
    drag.x = event.clientX;
    drag.y = event.clientY;
  });
  document.addEventListener("pointerup", function () {
    if (!drag) return;
    drag.group.querySelectorAll(".dragging").forEach(function (v) { v.classList.remove("dragging"); });
    drag = null;
  });
  // Trackpad and wheel: scroll pans a zoomed picture; pinch (ctrl+wheel) zooms.
  let wheelAt = 0;
  document.addEventListener("wheel", function (event) {
    const view = event.target.closest("[data-zoom]");
    if (!view) return;
    const group = view.closest("[data-zoom-group]");
    if (event.ctrlKey) {
      event.preventDefault();
      if (Date.now() - wheelAt < 250) return;
      wheelAt = Date.now();
      const index = ZOOM_LEVELS.indexOf(zoomState(group).level);
      const next = ZOOM_LEVELS[Math.max(0, Math.min(ZOOM_LEVELS.length - 1, index + (event.deltaY < 0 ? 1 : -1)))];
      setZoom(group, next);
      return;
    }
    if (pan(group, -event.deltaX, -event.deltaY)) event.preventDefault();
  }, { passive: false });
  window.addEventListener("resize", function () {
    document.querySelectorAll("[data-zoom-group]").forEach(function (group) {
      if (group.zoomState) renderZoom(group);
    });
  });

  // --- the viewer: one image over the grid -----------------------------------------
  const viewer = { element: null, tile: null, afterClose: null };

  function buildViewer() {
    const element = document.createElement("div");
    element.className = "viewer";
    element.hidden = true;
    element.tabIndex = -1;
    element.setAttribute("role", "dialog");
    element.setAttribute("aria-modal", "true");
    element.setAttribute("aria-label", "Image viewer");
    element.setAttribute("data-zoom-group", "");
    element.innerHTML =
      '<div class="viewer-bar">' +
      '<button type="button" data-viewer-do="ArrowLeft" title="Previous (←)" aria-label="Previous">‹</button>' +
      '<span class="viewer-count" data-viewer-count></span>' +
      '<button type="button" data-viewer-do="ArrowRight" title="Next (→)" aria-label="Next">›</button>' +
      '<span class="viewer-meta" data-viewer-meta></span>' +
      '<span class="viewer-marks" data-viewer-marks></span>' +
      '<span class="viewer-actions">' +
      '<button type="button" data-viewer-do="s" title="Star (S)">★ Star</button>' +
      '<button type="button" data-viewer-do="x" title="Reject (X), undo with U">Reject</button>' +
      '<button type="button" data-viewer-do="p" data-viewer-flash title="Promote to Pro (P)">Promote</button>' +
      '<button type="button" data-viewer-do="c" title="Compare with the marked image (C)">Compare</button>' +
      '<button type="button" data-viewer-do="d" title="Download the original (D)">Download</button>' +
      '<button type="button" data-viewer-do="e" title="Edit with words or a painted mask (E)">Edit</button>' +
      "</span>" +
      '<span class="zoom-bar" role="group" aria-label="Zoom">' +
      '<button type="button" data-zoom-to="fit" aria-pressed="true">Fit</button>' +
      '<button type="button" data-zoom-to="1" aria-pressed="false">100 %</button>' +
      '<button type="button" data-zoom-to="2" aria-pressed="false">200 %</button>' +
      '<span class="zoom-size muted" data-zoom-size></span></span>' +
      '<a class="viewer-page" data-viewer-page href="">Image page</a>' +
      '<button type="button" class="viewer-close" data-viewer-close>✕ Close <kbd>Esc</kbd></button>' +
      "</div>" +
      '<div class="viewer-stage"><div class="zoom viewer-zoom" data-zoom><img alt="" draggable="false"></div></div>' +
      '<section class="viewer-comments" data-viewer-comments aria-label="Client comments" hidden></section>' +
      '<p class="viewer-keys muted"><kbd>←</kbd><kbd>→</kbd> move · <kbd>S</kbd> star · <kbd>X</kbd> reject · ' +
      "<kbd>1</kbd>–<kbd>5</kbd> rate · <kbd>P</kbd> promote · <kbd>D</kbd> download · <kbd>C</kbd> compare · <kbd>E</kbd> edit · " +
      "<kbd>Z</kbd> zoom · <kbd>Shift</kbd>+arrows pan · <kbd>Esc</kbd> back</p>";
    document.body.appendChild(element);
    viewer.element = element;
    return element;
  }

  function showInViewer(tile) {
    const element = viewer.element || buildViewer();
    viewer.tile = tile;
    const view = element.querySelector("[data-zoom]");
    const img = view.querySelector("img");
    const thumb = tile.querySelector("img");
    if (view.dataset.original !== imageUrl(tile, "original")) {
      view.dataset.original = imageUrl(tile, "original");
      delete view.dataset.width;
      delete view.dataset.height;
      delete img.dataset.full;
      img.src = imageUrl(tile, "preview");
      img.alt = thumb ? thumb.alt : "";
    }
    const tiles = allTiles(true);
    element.querySelector("[data-viewer-count]").textContent =
      (tiles.indexOf(tile) + 1) + " of " + tiles.length;
    element.querySelector("[data-viewer-meta]").textContent =
      (tile.dataset.tier === "pro" ? "Pro " : "Flash ") + tile.dataset.size + " · seed " + tile.dataset.seed;
    const rating = Number(tile.dataset.rating || 0);
    element.querySelector("[data-viewer-marks]").innerHTML =
      (tile.classList.contains("is-starred") ? '<span class="mark-star" title="Starred">★ starred</span>' : "") +
      (rating ? '<span class="mark-rating" title="Rating">' + "★★★★★".slice(0, rating) + "☆☆☆☆☆".slice(rating) + "</span>" : "") +
      (tile.classList.contains("is-rejected") ? '<span class="pill mark-rejected">rejected</span>' : "") +
      (tile.classList.contains("is-marked") ? '<span class="pill">marked</span>' : "");
    element.querySelector("[data-viewer-page]").href = imageUrl(tile);
    element.querySelector("[data-viewer-flash]").hidden = tile.dataset.tier !== "flash";
    element.dataset.tileId = tile.dataset.id;
    renderZoom(element);
    if (editPanel && !editPanel.hidden && editPanel.dataset.id !== tile.dataset.id) loadEditPanel(tile);
    showClientComments(element, tile);
  }

  // --- the edit panel (E): the image page's edit and vary forms, beside the picture ---
  let editPanel = null;
  function loadEditPanel(tile) {
    if (!editPanel) {
      editPanel = document.createElement("aside");
      editPanel.className = "viewer-edit";
      editPanel.setAttribute("aria-label", "Edit this image");
      viewer.element.appendChild(editPanel);
    }
    const id = tile.dataset.id;
    editPanel.dataset.id = id;
    editPanel.hidden = false;
    // Below the bar, however many rows it wraps to.
    editPanel.style.top = viewer.element.querySelector(".viewer-bar").offsetHeight + "px";
    viewer.element.classList.add("is-editing");
    fetch(teamUrl(tile) + "edit/" + id + "/panel/", { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) {
        if (editPanel.dataset.id !== id) return; // moved on meanwhile
        editPanel.innerHTML = html;
        if (window.ContactSheetMask) window.ContactSheetMask.attach(editPanel);
        const words = editPanel.querySelector("textarea");
        if (words) words.focus({ preventScroll: true });
      })
      .catch(function () { toast("The edit panel could not be loaded; open the image page to edit."); });
  }
  function closeEditPanel() {
    if (!editPanel || editPanel.hidden) return false;
    editPanel.hidden = true;
    viewer.element.classList.remove("is-editing");
    viewer.element.focus({ preventScroll: true });
    return true;
  }

  // The clients' comments on a review link, as the server renders them, with
  // their pins laid over the picture (hidden while zoomed, by CSS).
  function showClientComments(element, tile) {
    const box = element.querySelector("[data-viewer-comments]");
    const stage = element.querySelector("[data-zoom]");
    const old = stage.querySelector("[data-viewer-pins]");
    if (old) old.remove();
    box.hidden = true;
    box.innerHTML = "";
    if (!Number(tile.dataset.clientComments || 0)) return;
    const id = tile.dataset.id;
    fetch(teamUrl(tile) + "review/images/" + id + "/comments/", { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : ""; })
      .then(function (html) {
        if (!html || element.dataset.tileId !== id) return; // moved on meanwhile
        box.innerHTML = html;
        box.hidden = false;
        const pins = box.querySelector("[data-viewer-pins]");
        if (pins) { stage.appendChild(pins); placePins(stage); }
      });
  }
  function placePins(stage) {
    const pins = stage.querySelector("[data-viewer-pins]");
    const img = stage.querySelector("img");
    if (!pins) return;
    if (!img.complete) { img.addEventListener("load", function () { placePins(stage); }, { once: true }); return; }
    const outer = stage.getBoundingClientRect(), inner = img.getBoundingClientRect();
    pins.style.left = (inner.left - outer.left) + "px";
    pins.style.top = (inner.top - outer.top) + "px";
    pins.style.width = inner.width + "px";
    pins.style.height = inner.height + "px";
  }
  window.addEventListener("resize", function () {
    if (viewer.element && !viewer.element.hidden) placePins(viewer.element.querySelector("[data-zoom]"));
  });

  function openViewer(tile) {
    if (!tile || !linkOf(tile).hasAttribute("data-open")) return;
    rememberPlace(tile, true);
    showInViewer(tile);
    viewer.element.hidden = false;
    document.documentElement.classList.add("viewer-open");
    viewer.element.focus({ preventScroll: true });
    // The address bar shows the image's own URL (reload or share it), and
    // Back closes the viewer.
    viewer.pageUrl = location.href;
    history.pushState({ viewer: tile.dataset.id }, "", imageUrl(tile));
  }
  // While the viewer shows an image's URL, the page a request comes from is
  // still the grid beneath it (a promote then adds its Pro grid in place).
  document.addEventListener("htmx:configRequest", function (event) {
    if (viewer.element && !viewer.element.hidden && viewer.pageUrl) {
      event.detail.headers["HX-Current-URL"] = viewer.pageUrl;
    }
  });

  function hideViewer() {
    if (!viewer.element || viewer.element.hidden) return;
    closeEditPanel();
    viewer.element.hidden = true;
    document.documentElement.classList.remove("viewer-open");
    const tile = viewer.tile && viewer.tile.isConnected ? viewer.tile : null;
    if (tile) {
      focusTile(tile);
      rememberPlace(tile, true);
      // The traversal back to "#tile-<id>" may move focus to the page after this
      // (the figure of that id takes no focus): once it settled, put it back.
      [0, 120].forEach(function (delay) {
        setTimeout(function () {
          if (document.activeElement === document.body && tile.isConnected) focusTile(tile);
        }, delay);
      });
    }
  }

  function closeViewer() {
    if (history.state && history.state.viewer) history.back(); // popstate hides it
    else hideViewer();
  }

  // Leave the viewer's history entry first, so Back from the next page lands on the grid.
  function leaveViewerThen(next) {
    if (viewer.element && !viewer.element.hidden && history.state && history.state.viewer) {
      viewer.afterClose = next;
      history.back();
    } else {
      next();
    }
  }

  function moveViewer(step) {
    // A poll may have swapped the tile in view for a newer copy of it.
    if (viewer.tile && !viewer.tile.isConnected) {
      viewer.tile = document.getElementById("tile-" + viewer.element.dataset.tileId) || viewer.tile;
    }
    const tiles = allTiles(true);
    const index = tiles.indexOf(viewer.tile);
    const next = tiles[index + step];
    if (!next) return;
    showInViewer(next);
    history.replaceState({ viewer: next.dataset.id }, "", imageUrl(next));
  }

  window.addEventListener("popstate", function (event) {
    const id = event.state && event.state.viewer;
    const tile = id && document.getElementById("tile-" + id);
    if (tile) {
      showInViewer(tile);
      viewer.element.hidden = false;
      document.documentElement.classList.add("viewer-open");
      return;
    }
    hideViewer();
    if (viewer.afterClose) {
      const next = viewer.afterClose;
      viewer.afterClose = null;
      next();
    }
  });

  // --- never lose your place ---------------------------------------------------------
  // The grid page's URL carries the tile (#tile-<id>) and how far down grids
  // were loaded (?through=<batch id>): Back, a reload or the image page's
  // Close link comes back to the same tile with the same grids.
  let placeTimer = null;
  function rememberPlace(tile, now) {
    if (history.state && history.state.viewer) return; // the viewer's entry is the image's
    const write = function () {
      const url = new URL(location.href);
      const grids = document.querySelectorAll("[data-grids] > section.grid");
      if (grids.length > 3) url.searchParams.set("through", grids[grids.length - 1].id.replace("grid-", ""));
      url.hash = "tile-" + tile.dataset.id;
      if (url.href !== location.href) history.replaceState(history.state, "", url.href);
    };
    clearTimeout(placeTimer);
    // Debounced: browsers throttle history writes, and a held arrow key makes many.
    if (now) write(); else placeTimer = setTimeout(write, 250);
  }
  function restorePlace() {
    const match = /^#tile-(\d+)$/.exec(location.hash);
    const tile = match && document.getElementById("tile-" + match[1]);
    if (tile) {
      linkOf(tile).focus({ preventScroll: true });
      tile.scrollIntoView({ block: "center" });
    }
  }
  document.addEventListener("focusin", function (event) {
    const tile = tileOf(event.target);
    if (tile && event.target === linkOf(tile)) rememberPlace(tile);
    // Focus stays in the viewer while it is open (the dialog above it aside).
    if (viewer.element && !viewer.element.hidden && !viewer.element.contains(event.target) &&
        !event.target.closest("dialog")) {
      viewer.element.focus({ preventScroll: true });
    }
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    // Older grids arrived: the URL says how far down they go.
    if (event.detail.target && event.detail.target.closest && event.detail.target.closest("[data-grids]")) {
      const focused = tileOf(document.activeElement);
      if (focused) rememberPlace(focused, true);
      else {
        const grids = document.querySelectorAll("[data-grids] > section.grid");
        if (grids.length > 3) {
          const url = new URL(location.href);
          url.searchParams.set("through", grids[grids.length - 1].id.replace("grid-", ""));
          history.replaceState(history.state, "", url.href);
        }
      }
    }
  });
  // Going back to "#tile-<id>" makes the browser move focus to the (unfocusable)
  // figure of that id, that is to the page: put it back on the tile's link.
  window.addEventListener("hashchange", function () {
    if (document.activeElement === document.body || document.activeElement === null) restorePlace();
  });
  window.addEventListener("pageshow", function () {
    if (history.state && history.state.viewer) {
      const tile = document.getElementById("tile-" + history.state.viewer);
      if (tile) { showInViewer(tile); viewer.element.hidden = false; return; }
    }
    restorePlace();
  });

  // --- keys ------------------------------------------------------------------------
  // The tile in the row above or below: the nearest by horizontal centre.
  function tileInRow(tile, direction) {
    const here = tile.getBoundingClientRect();
    const centre = here.left + here.width / 2;
    let best = null, bestRow = null, bestDistance = Infinity;
    allTiles(false).forEach(function (other) {
      if (other === tile) return;
      const box = other.getBoundingClientRect();
      const below = box.top > here.top + here.height / 2, above = box.bottom < here.top + here.height / 2;
      if (direction > 0 ? !below : !above) return;
      const row = box.top;
      const closerRow = bestRow === null || (direction > 0 ? row < bestRow - 1 : row > bestRow + 1);
      const sameRow = bestRow !== null && Math.abs(row - bestRow) <= 1;
      const distance = Math.abs(box.left + box.width / 2 - centre);
      if (closerRow || (sameRow && distance < bestDistance)) {
        best = other; bestRow = row; bestDistance = distance;
      }
    });
    return best;
  }

  function tileKey(tile, event) {
    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    const shown = allTiles(false);
    const index = shown.indexOf(tile);
    switch (key) {
      case "ArrowRight": focusTile(shown[index + 1]); return true;
      case "ArrowLeft": focusTile(shown[index - 1]); return true;
      case "ArrowDown": focusTile(tileInRow(tile, 1)); return true;
      case "ArrowUp": focusTile(tileInRow(tile, -1)); return true;
      case " ": case "Enter": openViewer(tile); return linkOf(tile).hasAttribute("data-open");
      case "x":
        if (!linkOf(tile).hasAttribute("data-open")) return false;
        // Focus moves on before the tile disappears from the view.
        if (!tile.classList.contains("is-rejected")) focusTile(shown[index + 1] || shown[index - 1]);
        actions.reject(tile);
        return true;
      case "escape": return false;
      default: return commonKey(tile, key);
    }
  }

  function commonKey(tile, key) {
    if (!linkOf(tile).hasAttribute("data-open")) return false;
    if (key === "s") { actions.star(tile).then(refreshViewer); return true; }
    if (key === "u") { const undone = undoReject(); if (undone) undone.then(refreshViewer); return true; }
    if (key === "p") { actions.promote(tile); return true; }
    if (key === "d") { actions.download(tile); return true; }
    if (key === "c") { actions.compare(tile); refreshViewer(); return true; }
    if (key === "e") { actions.edit(tile); return true; }
    if (/^[0-5]$/.test(key)) { actions.rate(tile, Number(key)).then(refreshViewer); return true; }
    return false;
  }
  function refreshViewer() {
    if (viewer.element && !viewer.element.hidden && viewer.tile && viewer.tile.isConnected) showInViewer(viewer.tile);
  }

  function viewerKey(event) {
    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    const group = viewer.element;
    const tile = viewer.tile;
    if (event.shiftKey && key.indexOf("Arrow") === 0) { panStep(group, key); return true; }
    if (key === "Escape" && closeEditPanel()) return true;
    switch (key) {
      case "Escape": case " ": closeViewer(); return true;
      case "ArrowRight": moveViewer(1); return true;
      case "ArrowLeft": moveViewer(-1); return true;
      case "z": cycleZoom(group); return true;
      case "+": case "=": setZoom(group, zoomState(group).level === "fit" ? 1 : 2); return true;
      case "-": setZoom(group, zoomState(group).level === 2 ? 1 : "fit"); return true;
      case "x": {
        const rejecting = !tile.classList.contains("is-rejected");
        const tiles = allTiles(true);
        const index = tiles.indexOf(tile);
        const next = rejecting ? tiles[index + 1] || tiles[index - 1] : null;
        actions.reject(tile).then(function () {
          // A rejected image leaves the view: the viewer goes on to the next one.
          if (next) { showInViewer(next); history.replaceState({ viewer: next.dataset.id }, "", imageUrl(next)); }
          else refreshViewer();
        });
        return true;
      }
      default: return tile ? commonKey(tile, key) : false;
    }
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest && event.target.closest("input, textarea, select, [contenteditable]")) return;
    const dialog = document.getElementById("dialog");
    if (dialog && dialog.open) return;
    let handled = false;
    if (viewer.element && !viewer.element.hidden) {
      if (event.target.closest("button, a") && (event.key === " " || event.key === "Enter")) return;
      handled = viewerKey(event);
    } else {
      const tile = tileOf(event.target);
      if (tile && event.target === linkOf(tile)) {
        handled = tileKey(tile, event);
      } else {
        // The image page and compare: zoom keys for the page's zoom group.
        const group = document.querySelector("main [data-zoom-group]");
        const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
        if (group && event.shiftKey && key.indexOf("Arrow") === 0) handled = panStep(group, key);
        else if (group && key === "z") { cycleZoom(group); handled = true; }
      }
    }
    if (handled) event.preventDefault();
  });

  // A plain click on a tile opens the viewer; a modified click (new tab) keeps the link.
  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-undo-reject]")) { undoReject(); return; }
    if (event.target.closest("[data-viewer-close]")) { closeViewer(); return; }
    if (event.target.closest("[data-viewer-edit-close]")) { closeEditPanel(); return; }
    const button = event.target.closest("[data-viewer-do]");
    if (button) {
      // The bar's buttons are the keys, for a mouse or a touch screen.
      viewerKey({ key: button.dataset.viewerDo, shiftKey: false });
      return;
    }
    if (event.target.closest("[data-keys-help]")) {
      const button = event.target.closest("[data-keys-help]");
      const help = document.getElementById(button.getAttribute("aria-controls"));
      help.hidden = !help.hidden;
      button.setAttribute("aria-expanded", String(!help.hidden));
      return;
    }
    const page = event.target.closest("[data-viewer-page]");
    if (page) {
      // The image page replaces the viewer's entry, so Back from it lands on the grid.
      event.preventDefault();
      const url = page.href;
      leaveViewerThen(function () { location.assign(url); });
      return;
    }
    if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
    const star = event.target.closest(".tile [data-star]");
    if (star) { actions.star(tileOf(star)); return; }
    const edit = event.target.closest(".tile [data-action='edit']");
    if (edit) { event.preventDefault(); actions.edit(tileOf(edit)); return; }
    const link = event.target.closest(".tile-image[data-open]");
    if (link) { event.preventDefault(); openViewer(tileOf(link)); }
  });

  document.addEventListener("DOMContentLoaded", function () {
    restorePlace();
    document.querySelectorAll("[data-zoom-group]").forEach(renderZoom);
  });
})();
