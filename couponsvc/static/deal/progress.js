// The deal page and the embed card: refresh the progress to the tipping point from the
// deal's public progress.json while the page is shown; stop once the deal is over.
(function () {
  "use strict";
  var box = document.querySelector("[data-progress-url]");
  if (!box || box.getAttribute("data-over") === "true" || !window.fetch) {
    return;
  }
  var url = box.getAttribute("data-progress-url");
  var every = Math.max(1, parseInt(box.getAttribute("data-poll-seconds"), 10) || 15) * 1000;
  var bar = box.querySelector("progress");
  var label = box.querySelector("[data-progress-label]");
  var badge = box.querySelector("[data-progress-badge]");
  var sold = box.querySelector("[data-progress-sold]");

  function show(data) {
    bar.value = data.progress;
    bar.textContent = Math.round(data.progress * 100) + "%";
    label.textContent = data.label;
    sold.textContent = data.sold_label;
    badge.textContent = data.badge || "";
    badge.hidden = !data.badge;
    box.setAttribute("data-tipped", data.tipped ? "true" : "false");
    box.setAttribute("data-over", data.over ? "true" : "false");
  }

  function later(ms) {
    window.setTimeout(poll, ms);
  }

  function poll() {
    if (document.hidden) {
      later(every);
      return;
    }
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (data) {
          show(data);
          if (data.over) {
            return;
          }
        }
        later(every);
      })
      .catch(function () { later(every * 2); });
  }

  later(every);
})();
