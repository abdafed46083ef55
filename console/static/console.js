// keybin support console: CSRF header for htmx, keyboard, focus and announcements after swaps,
// request errors.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // Every htmx request carries the session's CSRF token (forms also carry it as a field).
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrfToken();
  });

  // A refused request (403, 404, 500) is not swapped in: say so instead of doing nothing.
  document.addEventListener("htmx:responseError", function (event) {
    var notice = document.getElementById("notice");
    if (!notice) return;
    var status = event.detail.xhr.status;
    notice.textContent = status === 403
      ? "Not allowed, or the page has expired: reload it and try again."
      : status === 404 ? "That account or item no longer exists."
      : "Something went wrong (" + status + "). Reload the page and try again.";
    notice.hidden = false;
  });
  // Which element asked for each request (htmx's later events name the swapped one instead).
  var requesters = new WeakMap();
  document.addEventListener("htmx:beforeRequest", function (event) {
    requesters.set(event.detail.xhr, event.target);
    var notice = document.getElementById("notice");
    if (notice) notice.hidden = true;
  });

  function typing(target) {
    return target instanceof HTMLElement &&
      (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  // The live region says what an in-place change did. Emptied first, so the same words
  // said twice in a row (two removals) are read twice.
  function announce(text) {
    var region = document.getElementById("announce");
    if (!region || !text) return;
    region.textContent = "";
    window.setTimeout(function () { region.textContent = text; }, 50);
  }

  function within(root, selector) {
    if (root.matches && root.matches(selector)) return root;
    return root.querySelector ? root.querySelector(selector) : null;
  }

  // Search results as a combobox: the search box keeps the focus while Up/Down move a
  // highlight (aria-activedescendant), Enter opens the highlighted row or the only one.
  var openWhenFound = false;

  function resultLinks() {
    return Array.prototype.slice.call(document.querySelectorAll("#results .row-link"));
  }

  function highlighted(search) {
    var id = search.getAttribute("aria-activedescendant");
    return id ? document.getElementById(id) : null;
  }

  function highlight(search, link) {
    var current = highlighted(search);
    if (current) current.closest("tr").classList.remove("highlighted");
    if (!link) {
      search.removeAttribute("aria-activedescendant");
      return;
    }
    link.closest("tr").classList.add("highlighted");
    search.setAttribute("aria-activedescendant", link.id);
    link.scrollIntoView({ block: "nearest" });
  }

  function resultsAnswer(search) {
    var results = document.getElementById("results");
    return results && results.getAttribute("data-query").trim() === search.value.trim();
  }

  function openResult(search) {
    var links = resultLinks();
    var chosen = highlighted(search) || (links.length === 1 ? links[0] : null);
    if (chosen) {
      window.location.assign(chosen.href);
    } else if (links.length > 1) {
      announce(links.length + " accounts match: press the Down arrow to choose one.");
    } else if (search.value.trim().length >= 2) {
      announce("No account matches.");
    }
  }

  function onSearchKey(event, search) {
    var links = resultLinks();
    if (event.key === "Enter") {
      // Not a page reload: the rows are already here, or on their way.
      event.preventDefault();
      if (resultsAnswer(search)) {
        openResult(search);
      } else {
        openWhenFound = true;
        htmx.trigger(search, "search");
      }
    } else if ((event.key === "ArrowDown" || event.key === "ArrowUp") && links.length) {
      event.preventDefault();
      var index = links.indexOf(highlighted(search));
      if (event.key === "ArrowDown") index = Math.min(index + 1, links.length - 1);
      else index = index <= 0 ? -1 : index - 1;
      highlight(search, index >= 0 ? links[index] : null);
    } else if (event.key === "Escape" && highlighted(search)) {
      highlight(search, null);
    }
  }

  document.addEventListener("keydown", function (event) {
    var search = document.getElementById("q");
    if (!search || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target === search) {
      onSearchKey(event, search);
    } else if (event.key === "/" && !typing(event.target)) {
      // "/" jumps to the search box from anywhere but a text field.
      event.preventDefault();
      search.focus();
      search.select();
    }
  });

  function resultsArrived(search) {
    var links = resultLinks();
    search.setAttribute("aria-expanded", links.length ? "true" : "false");
    search.removeAttribute("aria-activedescendant");
    if (openWhenFound && resultsAnswer(search)) {
      openWhenFound = false;
      openResult(search);
    }
  }

  // After a swap: say what happened (data-announce) and put the focus where the work goes on
  // (data-focus, or htmx's own autofocus) when the element that asked for it is gone.
  // A section's own refresh (data-quiet) does neither.
  document.addEventListener("htmx:afterSettle", function (event) {
    var source = requesters.get(event.detail.xhr);
    var swapped = event.target;
    if (source && source.hasAttribute && source.hasAttribute("data-quiet")) return;
    var search = document.getElementById("q");
    if (search && within(swapped, "#results")) resultsArrived(search);
    var told = within(swapped, "[data-announce]");
    if (told) announce(told.getAttribute("data-announce"));
    // The focus is still on something (the search box while typing, an autofocused field).
    var active = document.activeElement;
    if (active && active !== document.body && document.contains(active)) return;
    var target = within(swapped, "[data-focus]");
    if (target) target.focus();
  });

  document.addEventListener("DOMContentLoaded", function () {
    var search = document.getElementById("q");
    if (!search) return;
    resultsArrived(search);
    // Enter pressed before the rows came: typing on means it was not for these.
    search.addEventListener("input", function () { openWhenFound = false; });
  });
})();
