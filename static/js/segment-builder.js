/* Segment builder: edits the rules JSON of the segment form and shows a live count.
   Without JavaScript the rules textarea stays and works on its own. */
(function () {
  "use strict";
  var root = document.getElementById("segment-builder");
  var dataNode = document.getElementById("segment-builder-data");
  if (!root || !dataNode) return;
  var data = JSON.parse(dataNode.textContent);
  var textarea = document.querySelector("#segment-rules-field textarea");
  var list = document.getElementById("segment-conditions");
  var match = document.getElementById("segment-match");
  var countNode = document.getElementById("segment-count");
  var errorNode = document.getElementById("segment-error");
  var OP_LABELS = {
    eq: "is", neq: "is not", contains: "contains", starts_with: "starts with", ends_with: "ends with",
    exists: "is set", gt: "is greater than", lt: "is less than", within_days: "within the last (days)",
    before_days: "more than (days) ago", in_list: "is on", not_in_list: "is not on"
  };
  var NO_VALUE = ["exists"];
  var rules;
  try { rules = JSON.parse(textarea.value || "{}"); } catch (e) { rules = {}; }
  if (!rules || typeof rules !== "object") rules = {};
  rules.match = rules.match === "any" ? "any" : "all";
  if (!Array.isArray(rules.conditions)) rules.conditions = [];

  function fieldInfo(field) {
    if (field && field.indexOf("attribute:") === 0) field = "attribute:";
    for (var i = 0; i < data.fields.length; i++) if (data.fields[i].value === field) return data.fields[i];
    return data.fields[0];
  }

  function option(select, value, label, selected) {
    var node = document.createElement("option");
    node.value = value; node.textContent = label; node.selected = !!selected;
    select.appendChild(node);
  }

  function valueInput(condition) {
    var info = fieldInfo(condition.field);
    if (NO_VALUE.indexOf(condition.op) !== -1) return null;
    var input;
    if (info.value === "list") {
      input = document.createElement("select");
      data.lists.forEach(function (l) { option(input, String(l.id), l.name, String(condition.value) === String(l.id)); });
      if (!data.lists.length) option(input, "", "(no lists yet)", true);
    } else if (info.value === "status") {
      input = document.createElement("select");
      data.statuses.forEach(function (s) { option(input, s.value, s.label, condition.value === s.value); });
    } else {
      input = document.createElement("input");
      var numeric = condition.op === "within_days" || condition.op === "before_days";
      input.type = numeric ? "number" : "text";
      if (numeric) input.min = "0";
      input.value = condition.value === undefined || condition.value === null ? "" : condition.value;
    }
    input.setAttribute("aria-label", "Value");
    input.className = "condition-value";
    return input;
  }

  function readValue(condition, input) {
    if (!input) { delete condition.value; return; }
    var raw = input.value;
    if (fieldInfo(condition.field).value === "list") { condition.value = raw ? parseInt(raw, 10) : null; return; }
    if (condition.op === "within_days" || condition.op === "before_days") {
      condition.value = raw === "" ? null : parseInt(raw, 10); return;
    }
    if ((condition.op === "gt" || condition.op === "lt") && raw !== "" && !isNaN(Number(raw))) { condition.value = Number(raw); return; }
    condition.value = raw;
  }

  function render() {
    list.innerHTML = "";
    match.value = rules.match;
    rules.conditions.forEach(function (condition, index) {
      var row = document.createElement("li");
      row.className = "condition inline-form";
      var info = fieldInfo(condition.field);
      var fieldSelect = document.createElement("select");
      fieldSelect.setAttribute("aria-label", "Field");
      data.fields.forEach(function (f) { option(fieldSelect, f.value, f.label, f.value === info.value); });
      row.appendChild(fieldSelect);
      var attrInput = null;
      if (info.value === "attribute:") {
        attrInput = document.createElement("input");
        attrInput.type = "text"; attrInput.placeholder = "attribute name"; attrInput.setAttribute("aria-label", "Attribute name");
        attrInput.value = (condition.field || "").replace(/^attribute:/, "");
        row.appendChild(attrInput);
      }
      var opSelect = document.createElement("select");
      opSelect.setAttribute("aria-label", "Comparison");
      if (info.ops.indexOf(condition.op) === -1) condition.op = info.ops[0];
      info.ops.forEach(function (op) { option(opSelect, op, OP_LABELS[op] || op, op === condition.op); });
      row.appendChild(opSelect);
      var input = valueInput(condition);
      if (input) row.appendChild(input);
      var remove = document.createElement("button");
      remove.type = "button"; remove.className = "button small"; remove.textContent = "Remove";
      row.appendChild(remove);

      fieldSelect.addEventListener("change", function () {
        condition.field = fieldSelect.value === "attribute:" ? "attribute:" : fieldSelect.value;
        condition.op = fieldInfo(condition.field).ops[0];
        delete condition.value;
        render(); changed();
      });
      if (attrInput) attrInput.addEventListener("input", function () { condition.field = "attribute:" + attrInput.value.trim(); changed(); });
      opSelect.addEventListener("change", function () { condition.op = opSelect.value; render(); changed(); });
      if (input) {
        readValue(condition, input);
        input.addEventListener(input.tagName === "SELECT" ? "change" : "input", function () { readValue(condition, input); changed(); });
      }
      remove.addEventListener("click", function () { rules.conditions.splice(index, 1); render(); changed(); });
      list.appendChild(row);
    });
  }

  var timer = null, sequence = 0;
  function changed() {
    textarea.value = JSON.stringify(rules);
    clearTimeout(timer);
    timer = setTimeout(count, 300);
  }

  function count() {
    var mine = ++sequence;
    countNode.textContent = "Counting…";
    fetch(root.dataset.countUrl + "?rules=" + encodeURIComponent(textarea.value), {
      headers: { "Accept": "application/json" }, credentials: "same-origin"
    }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; });
    }).then(function (result) {
      if (mine !== sequence) return;
      if (result.ok) {
        errorNode.textContent = "";
        countNode.textContent = result.body.count.toLocaleString() + (result.body.count === 1 ? " subscriber matches" : " subscribers match");
      } else {
        countNode.textContent = "";
        errorNode.textContent = result.body.error || "These rules cannot be counted.";
      }
    }).catch(function () {
      if (mine === sequence) { countNode.textContent = ""; errorNode.textContent = "The count could not be fetched; try again."; }
    });
  }

  match.addEventListener("change", function () { rules.match = match.value; changed(); });
  document.getElementById("segment-add").addEventListener("click", function () {
    rules.conditions.push({ field: "email", op: "contains", value: "" });
    render(); changed();
  });
  root.hidden = false;
  document.getElementById("segment-rules-field").hidden = true;
  render();
  changed();
})();
