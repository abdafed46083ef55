// keybin support console: CSRF header for htmx, keyboard shortcuts, request errors.
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
  document.addEventListener("htmx:beforeRequest", function () {
    var notice = document.getElementById("notice");
    if (notice) notice.hidden = true;
  });

  function typing(target) {
    return target instanceof HTMLElement &&
      (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  function resultLinks() {
    return Array.prototype.slice.call(document.querySelectorAll("#main .row-link"));
  }

  document.addEventListener("keydown", function (event) {
    var search = document.getElementById("q");
    if (!search || event.ctrlKey || event.metaKey || event.altKey) return;
    // "/" jumps to the search box from anywhere but a text field.
    if (event.key === "/" && !typing(event.target)) {
      event.preventDefault();
      search.focus();
      search.select();
      return;
    }
    // Arrow keys walk from the search box through the result rows and back.
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      var links = resultLinks();
      if (!links.length) return;
      var index = links.indexOf(document.activeElement);
      if (event.target === search && event.key === "ArrowDown") {
        event.preventDefault();
        links[0].focus();
      } else if (index >= 0) {
        event.preventDefault();
        if (event.key === "ArrowDown") links[Math.min(index + 1, links.length - 1)].focus();
        else if (index === 0) search.focus();
        else links[index - 1].focus();
      }
    }
  });
})();
