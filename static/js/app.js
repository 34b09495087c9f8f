// Small, dependable helpers: copy buttons, confirmations, local dates. No framework, and no
// inline handlers in the templates: the Content-Security-Policy forbids inline scripts.
(function () {
  "use strict";

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = document.execCommand("copy");
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy failed"));
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy-target"));
    if (!source) return;
    var text = source.value !== undefined && source.tagName !== "PRE" ? source.value : source.textContent;
    var label = button.querySelector("[data-copy-label]") || button;
    var original = label.textContent;
    copyText(text.trim()).then(function () {
      label.textContent = "Copied";
    }, function () {
      label.textContent = "Press Ctrl+C";
      if (source.select) source.select();
    }).finally(function () {
      setTimeout(function () { label.textContent = original; }, 2000);
    });
  });

  // A click in a read-only field (a new key, an invite link) selects all of it for copying.
  document.addEventListener("click", function (event) {
    var field = event.target;
    if (field.tagName === "INPUT" && field.readOnly && field.select) field.select();
  });

  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
    }
  });

  function localizeTimes() {
    var dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
    var dateOnly = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });
    document.querySelectorAll("time[datetime]").forEach(function (node) {
      var moment = new Date(node.getAttribute("datetime"));
      if (isNaN(moment)) return;
      node.textContent = (node.hasAttribute("data-date-only") ? dateOnly : dateTime).format(moment);
      node.title = moment.toISOString();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localizeTimes();
    var toggle = document.getElementById("nav-toggle");
    var menu = document.getElementById("nav-menu");
    if (toggle && menu) {
      toggle.addEventListener("click", function () {
        var open = menu.classList.toggle("hidden") === false;
        toggle.setAttribute("aria-expanded", open ? "true" : "false");
      });
    }
  });
})();
