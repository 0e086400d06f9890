// The hand-off inbox refreshes its list in place: the server renders the rows, this only
// fetches them again every few seconds and swaps them in, so nobody has to reload the page.
(function () {
  "use strict";
  var inbox = document.getElementById("inbox");
  if (!inbox || !window.fetch) {
    return;
  }
  var url = inbox.dataset.refreshUrl;
  var every = Number(inbox.dataset.refreshSeconds || 15) * 1000;

  function refresh() {
    // A hidden tab asks for nothing; it refreshes as soon as it is shown again.
    if (document.hidden) {
      return;
    }
    fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "XMLHttpRequest" } })
      .then(function (response) {
        // Logged out (sent to the login page) or a busy server: keep what is shown and try
        // again at the next turn.
        return response.ok && !response.redirected ? response.text() : null;
      })
      .then(function (html) {
        if (html !== null) {
          inbox.innerHTML = html;
        }
      })
      .catch(function () {});
  }

  window.setInterval(refresh, every);
  document.addEventListener("visibilitychange", refresh);
})();
