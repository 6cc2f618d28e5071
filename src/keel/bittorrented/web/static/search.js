// Progressive enhancement only: the form works without this file.
// Changing the sort or the type runs the search again (from the first page).
(function () {
  "use strict";
  var form = document.getElementById("search");
  if (!form) return;
  ["sort", "type"].forEach(function (id) {
    var select = document.getElementById(id);
    if (select) select.addEventListener("change", function () { form.requestSubmit(); });
  });
})();
