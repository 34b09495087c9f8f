// The key pool page: select every key on the page at once, confirm a bulk delete, and follow a
// running check job by polling GET /admin/api/jobs/<id> (the page shows the job again after a reload).
(function () {
  "use strict";

  document.addEventListener("change", function (event) {
    var all = event.target.closest("[data-select-all]");
    if (!all) return;
    var form = all.getAttribute("data-select-all");
    document.querySelectorAll('input[type=checkbox][name=ids][form="' + form + '"]').forEach(function (box) {
      box.checked = all.checked;
    });
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var button = event.submitter;
    if (form.id !== "selection" || (button && button.hasAttribute("formaction"))) return;
    var action = form.querySelector("[name=action]");
    if (action && action.value === "delete" && !window.confirm(form.getAttribute("data-confirm-delete"))) {
      event.preventDefault();
    }
  });

  var card = document.querySelector("[data-job]");
  if (!card) return;
  var state = card.getAttribute("data-job-state");
  if (state !== "queued" && state !== "running") return;

  var bar = card.querySelector("[data-job-bar]");
  var done = card.querySelector("[data-job-done]");
  var total = card.querySelector("[data-job-total]");
  var counts = card.querySelector("[data-job-counts]");
  var title = card.querySelector("h2");

  function showCounts(byResult) {
    counts.textContent = "";
    Object.keys(byResult || {}).sort().forEach(function (name) {
      var item = document.createElement("li");
      var badge = document.createElement("span");
      badge.className = name === "ok" ? "badge-green" : (name === "invalid" || name === "failed" ? "badge-red" : "badge-amber");
      badge.textContent = name + ": " + byResult[name];
      item.appendChild(badge);
      counts.appendChild(item);
    });
  }

  function poll() {
    fetch(card.getAttribute("data-job-url"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (job) {
        bar.max = job.total || 1;
        bar.value = job.total ? job.done : 1;
        bar.textContent = job.done + " of " + job.total;
        done.textContent = job.done.toLocaleString();
        total.textContent = job.total.toLocaleString();
        showCounts(job.counts);
        card.setAttribute("data-job-state", job.state);
        if (job.state === "queued" || job.state === "running") {
          setTimeout(poll, 1000);
        } else {
          title.textContent = job.state === "done" ? "Check finished: reload to see each key's new state" : "Check failed";
        }
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 500);
})();
