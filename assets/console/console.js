// symbiose console — the little JavaScript the pages use: code search as you type.
"use strict";
(function () {
  function debounce(fn, ms) {
    var timer = null;
    return function () {
      var args = arguments;
      clearTimeout(timer);
      timer = setTimeout(function () { fn.apply(null, args); }, ms);
    };
  }
  document.querySelectorAll("input[data-codes]").forEach(function (input) {
    var list = document.getElementById(input.getAttribute("list"));
    if (!list) { return; }
    var search = debounce(function () {
      var q = input.value.trim();
      if (q.length < 2) { return; }
      fetch("/console/codes/" + input.dataset.codes + "?q=" + encodeURIComponent(q), {
        credentials: "same-origin", headers: { "Accept": "application/json" }
      }).then(function (r) { return r.ok ? r.json() : { items: [] }; })
        .then(function (page) {
          list.textContent = "";
          (page.items || []).forEach(function (item) {
            var option = document.createElement("option");
            option.value = item.display || item.code;
            option.label = item.code + " — " + (document.documentElement.lang === "en"
              ? (item.label_en || item.label || item.label_fr || "")
              : (item.label_fr || item.label || item.label_en || ""));
            list.appendChild(option);
          });
        }).catch(function () { /* no suggestions */ });
    }, 200);
    input.addEventListener("input", search);
  });
})();
