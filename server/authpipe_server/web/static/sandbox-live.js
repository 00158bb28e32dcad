// Sandbox pages: keep the part marked data-live current while the user watches Authpipe react
// (a background refresh, a webhook arriving). Re-reads this same page every two seconds while it
// is visible and swaps that part only when it changed; without JavaScript, reloading does the same.
(function () {
  var live = document.querySelector("[data-live]");
  if (!live || !window.fetch || !window.DOMParser) return;
  var busy = false;
  function update() {
    if (busy || document.hidden) return;
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-live]");
        if (fresh && fresh.innerHTML !== live.innerHTML && !live.contains(document.activeElement)) {
          live.innerHTML = fresh.innerHTML;
        }
      })
      .catch(function () { /* the sandbox stopped: keep what is shown */ })
      .then(function () { busy = false; });
  }
  window.setInterval(update, 2000);
})();
