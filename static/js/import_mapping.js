// Column mapping: show a column's custom field key only while the column is mapped to a custom field.
(function () {
  "use strict";
  var form = document.getElementById("import-mapping");
  if (!form) { return; }
  form.querySelectorAll("[data-key-for]").forEach(function (key) {
    var choice = document.getElementById(key.dataset.keyFor);
    function update() { key.hidden = choice.value !== "attribute"; }
    choice.addEventListener("change", update);
    update();
  });
})();
