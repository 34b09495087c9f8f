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

  // Busy states: a POST form, once sent, shows that it is working and cannot be sent again (the
  // server refuses a repeated form token too; see vault/idempotency.py). Runs after the
  // confirmation above, so a cancelled form stays usable. A form that only downloads a file
  // opts out with data-no-busy.
  var SPINNER = '<svg class="busy-spinner" viewBox="0 0 24 24" aria-hidden="true"><circle cx="12" cy="12" r="9" fill="none" stroke="currentColor" stroke-width="3" stroke-opacity="0.25"/><path d="M21 12a9 9 0 0 0-9-9" fill="none" stroke="currentColor" stroke-width="3" stroke-linecap="round"/></svg>';

  function markBusy(form, submitter) {
    form.setAttribute("aria-busy", "true");
    form.querySelectorAll("button[type=submit], button:not([type]), input[type=submit]").forEach(function (button) {
      button.setAttribute("data-busy-label", button.tagName === "INPUT" ? button.value : button.innerHTML);
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
      if (button !== submitter) return;
      if (button.tagName === "INPUT") button.value = "Working…";
      else button.innerHTML = SPINNER + "<span>Working…</span>";
    });
  }

  function clearBusy(form) {
    form.removeAttribute("data-busy-sent");
    form.removeAttribute("aria-busy");
    form.querySelectorAll("[data-busy-label]").forEach(function (button) {
      if (button.tagName === "INPUT") button.value = button.getAttribute("data-busy-label");
      else button.innerHTML = button.getAttribute("data-busy-label");
      button.removeAttribute("data-busy-label");
      button.removeAttribute("aria-busy");
      button.disabled = false;
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || (form.getAttribute("method") || "").toLowerCase() !== "post") return;
    if (form.hasAttribute("data-no-busy")) return;
    if (form.hasAttribute("data-busy-sent")) {
      event.preventDefault();
      return;
    }
    form.setAttribute("data-busy-sent", "");
    // Disabled after this event: a disabled submit button would drop its own name and value.
    var submitter = event.submitter || null;
    setTimeout(function () { markBusy(form, submitter); }, 0);
  });

  // Back to a page from the history cache: its forms are usable again (with their old tokens,
  // which the server refuses if they were already used).
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) document.querySelectorAll("form[data-busy-sent]").forEach(clearBusy);
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
