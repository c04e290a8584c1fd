// Live progress of a campaign: polls its JSON endpoint and updates the bar and the figures.
(function () {
  "use strict";
  var section = document.getElementById("progress");
  if (!section) return;
  var url = section.getAttribute("data-progress-url");
  var bar = section.querySelector(".progress");
  var fill = bar.querySelector("span");
  var initialStatus = section.getAttribute("data-status");
  var active = { scheduled: true, sending: true, paused: true };

  function set(field, value) {
    var node = section.querySelector('[data-field="' + field + '"]');
    if (node) node.textContent = value;
  }

  function render(data) {
    fill.style.width = data.percent + "%";
    bar.setAttribute("aria-valuenow", data.percent);
    set("percent", data.percent + "%");
    ["sent", "failed", "bounced", "remaining", "recipients", "rate_per_second", "deferred"].forEach(function (f) {
      set(f, data[f]);
    });
    set("time_left", data.seconds_left === null ? "—" : data.seconds_left + " s");
    var reason = section.querySelector('[data-field="pause_reason"]');
    if (reason) { reason.textContent = data.pause_reason; reason.hidden = !data.pause_reason; }
    var badge = document.querySelector('[data-testid="campaign-status"]');
    if (badge) { badge.textContent = data.status_display; badge.className = "status status-" + data.status; }
    // A change of state changes the available actions: reload once to show them.
    if (data.status !== initialStatus) { window.location.reload(); return false; }
    return !!active[data.status];
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { if (!response.ok) throw new Error(response.status); return response.json(); })
      .then(function (data) { if (render(data)) setTimeout(poll, 1500); })
      .catch(function () { setTimeout(poll, 5000); });
  }
  if (active[initialStatus]) setTimeout(poll, 1000);
})();
