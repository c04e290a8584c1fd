// Live progress of an import: polls its JSON endpoint and updates the page in place.
(function () {
  "use strict";
  var card = document.getElementById("import-progress");
  if (!card || card.dataset.finished === "true") { return; }
  var url = card.dataset.progressUrl;
  var bar = card.querySelector(".progress-bar");
  var meter = card.querySelector("[role=progressbar]");

  function field(name) { return card.querySelector('[data-field="' + name + '"]'); }
  function setText(name, value) { var node = field(name); if (node) { node.textContent = value; } }
  function number(value) { return Number(value).toLocaleString(); }

  function render(data) {
    bar.style.width = data.percent + "%";
    meter.setAttribute("aria-valuenow", data.percent);
    setText("status_display", data.status_display);
    setText("phase_display", data.finished ? "" : data.phase_display);
    setText("percent", data.percent);
    setText("rows_read", number(data.rows_read));
    setText("rows_estimate", number(data.rows_estimate));
    setText("rows_written", number(data.rows_written));
    setText("rows_per_second", number(data.rows_per_second));
    if (data.seconds_left !== null) {
      setText("time_left", "about " + data.seconds_left + " s left");
    } else if (data.finished) {
      setText("time_left", "took " + data.seconds_elapsed + " s");
    }
    Object.keys(data.counts).forEach(function (key) {
      var cell = card.querySelector('[data-count="' + key + '"]');
      if (cell) { cell.textContent = number(data.counts[key]); }
    });
    var message = field("error_message");
    message.textContent = data.error_message;
    message.hidden = !data.error_message;
    var report = field("error_report");
    if (data.error_report_url) { report.href = data.error_report_url; report.hidden = false; }
    var cancel = field("cancel");
    if (cancel && data.finished) { cancel.hidden = true; }
    card.dataset.finished = data.finished ? "true" : "false";
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { if (!response.ok) { throw new Error(response.status); } return response.json(); })
      .then(function (data) { render(data); if (!data.finished) { window.setTimeout(poll, 1000); } })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 500);
})();
