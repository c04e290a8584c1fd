// Live preview for the template editor: posts the unsaved content to the preview endpoint
// (debounced) and shows the rendered subject, HTML (in a sandboxed frame) and text, or the
// problems next to the fields they belong to.
(function () {
  "use strict";
  var editor = document.querySelector(".editor");
  var form = document.getElementById("template-form");
  if (!editor || !form) return;
  var url = editor.getAttribute("data-preview-url");
  var subscriber = document.getElementById("preview-subscriber");
  var status = document.getElementById("preview-status");
  var fields = ["name", "subject", "preheader", "html", "text"];
  var timer = null;
  var sequence = 0;

  function csrfToken() {
    var input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function showErrors(errors) {
    var boxes = document.querySelectorAll("[data-errors-for]");
    for (var i = 0; i < boxes.length; i++) {
      var name = boxes[i].getAttribute("data-errors-for");
      boxes[i].textContent = "";
      if (errors && errors[name]) {
        var p = document.createElement("p");
        p.className = "field-error";
        p.textContent = errors[name];
        boxes[i].appendChild(p);
      }
    }
  }

  function refresh() {
    var body = new FormData();
    fields.forEach(function (name) {
      var input = form.elements.namedItem(name);
      body.append(name, input ? input.value : "");
    });
    body.append("subscriber", subscriber.value);
    var mine = ++sequence;
    status.textContent = "Rendering…";
    fetch(url, { method: "POST", body: body, headers: { "X-CSRFToken": csrfToken() }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error("The preview failed (" + response.status + ").");
        return response.json();
      })
      .then(function (data) {
        if (mine !== sequence) return; // a newer request is on its way
        if (!data.ok) {
          showErrors(data.errors);
          status.textContent = "Fix the problems shown to see the preview.";
          return;
        }
        showErrors(null);
        document.getElementById("preview-subject").textContent = data.subject;
        document.getElementById("preview-preheader").textContent = data.preheader;
        document.getElementById("preview-html").srcdoc = data.html;
        document.getElementById("preview-text").textContent = data.text;
        status.textContent = data.sample ? "Shown for a sample subscriber." : "Shown for " + data.subscriber + ".";
      })
      .catch(function (error) {
        if (mine === sequence) status.textContent = error.message;
      });
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 400);
  }

  form.addEventListener("input", later);
  subscriber.addEventListener("change", refresh);
  document.getElementById("preview-refresh").addEventListener("click", refresh);
  refresh();
})();
