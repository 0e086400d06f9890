// The support desk on every admin page: the waiting count in the header and the tab's title,
// a sound and a desktop notification when a new customer waits (also in a background tab),
// and the workspace's keys: "/" for a canned reply, Ctrl+Enter to send, confirmations, and
// forms that submit once. No inline script: the Content-Security-Policy allows only this file.
(function () {
  "use strict";

  // --- The waiting count ---------------------------------------------------------------
  var bar = document.getElementById("desk-bar");
  if (bar && window.fetch) {
    var count = document.getElementById("desk-waiting");
    var notifyButton = document.getElementById("desk-notify");
    var every = Number(bar.dataset.every || 15) * 1000;
    // Read from plain-number attributes: the page shows counts the Brazilian way ("1.234"),
    // which Number() would read as one and a bit.
    var newest = Number(bar.dataset.newest || 0);
    var shown = Number(bar.dataset.waiting || 0);
    // The title as the page rendered it, without the count the server put in front.
    var baseTitle = document.title.replace(/^\(\d+\)\s*/, "");

    var showCount = function (waiting) {
      var words = waiting.toLocaleString("pt-BR");
      count.textContent = words;
      document.title = (waiting ? "(" + words + ") " : "") + baseTitle;
    };

    var beep = function () {
      var Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) {
        return;
      }
      try {
        var audio = new Context();
        var tone = audio.createOscillator();
        var volume = audio.createGain();
        tone.frequency.value = 880;
        volume.gain.value = 0.1;
        tone.connect(volume);
        volume.connect(audio.destination);
        tone.start();
        tone.stop(audio.currentTime + 0.25);
      } catch (error) {
        // A browser that refuses sound before a click still shows the count and the notice.
      }
    };

    var announce = function () {
      beep();
      if ("Notification" in window && Notification.permission === "granted") {
        var notice = new Notification(bar.dataset.notifyTitle, { body: bar.dataset.notifyBody, tag: "sara-desk" });
        notice.onclick = function () {
          window.focus();
          window.location.href = bar.dataset.inbox;
        };
      }
      window.saraDeskAnnounced = (window.saraDeskAnnounced || 0) + 1;
    };

    var poll = function () {
      fetch(bar.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          return response.ok && !response.redirected ? response.json() : null;
        })
        .then(function (data) {
          if (!data) {
            return;
          }
          showCount(data.waiting);
          // A conversation newer than any seen, or more waiting than before: a customer who
          // writes back after a resolve waits again in an older conversation.
          if ((data.newest && data.newest > newest) || data.waiting > shown) {
            announce();
          }
          newest = Math.max(newest, data.newest || 0);
          shown = data.waiting;
        })
        .catch(function () {});
    };

    // Polled in a background tab too (browsers slow timers there, never stop them); a tab
    // shown again asks at once.
    window.setInterval(poll, every);
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) {
        poll();
      }
    });

    // Desktop notifications need the person's permission, asked on a click.
    if ("Notification" in window && Notification.permission === "default") {
      notifyButton.hidden = false;
      notifyButton.addEventListener("click", function () {
        Notification.requestPermission().then(function () {
          notifyButton.hidden = Notification.permission !== "default";
        });
      });
    }
  }

  // --- Confirmations and forms that submit once ------------------------------------------
  // Listened to on the document: the inbox swaps its rows in without a reload.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset.confirm) {
      if (!window.confirm(form.dataset.confirm)) {
        event.preventDefault();
        return;
      }
      var flag = form.querySelector("input[name=confirmed]");
      if (flag) {
        flag.value = "1";
      }
    }
    if (form.hasAttribute("data-once")) {
      if (form.dataset.sent) {
        event.preventDefault();
        return;
      }
      form.dataset.sent = "1";
      form.querySelectorAll("[type=submit]").forEach(function (button) {
        // Disabled after this turn, so the submit that is leaving still carries the button.
        window.setTimeout(function () {
          button.disabled = true;
        }, 0);
      });
    }
  });

  // --- The reply box: "/" for a canned reply, Ctrl+Enter to send -------------------------
  var box = document.getElementById("id_text");
  var replyForm = document.getElementById("reply-form");
  var cannedData = document.getElementById("canned-replies");
  var menu = document.getElementById("canned-menu");
  if (box && replyForm) {
    box.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        replyForm.requestSubmit();
      }
    });
  }
  if (box && cannedData && menu) {
    var canned = JSON.parse(cannedData.textContent);
    var slashAt = -1;

    var close = function () {
      menu.hidden = true;
      menu.innerHTML = "";
      slashAt = -1;
    };

    var choose = function (reply) {
      var end = box.selectionStart;
      box.value = box.value.slice(0, slashAt) + reply.text + box.value.slice(end);
      var caret = slashAt + reply.text.length;
      close();
      box.focus();
      box.setSelectionRange(caret, caret);
    };

    var open = function () {
      var typed = box.value.slice(slashAt + 1, box.selectionStart).toLowerCase();
      var found = canned.filter(function (reply) {
        return reply.title.toLowerCase().indexOf(typed) !== -1;
      });
      menu.innerHTML = "";
      found.forEach(function (reply, index) {
        var item = document.createElement("li");
        var button = document.createElement("button");
        button.type = "button";
        button.className = "sara-canned-choice" + (index === 0 ? " sara-canned-active" : "");
        button.textContent = reply.title;
        button.title = reply.text;
        button.addEventListener("mousedown", function (event) {
          event.preventDefault();
          choose(reply);
        });
        item.appendChild(button);
        menu.appendChild(item);
      });
      menu.hidden = found.length === 0;
      menu.found = found;
    };

    box.addEventListener("input", function () {
      var caret = box.selectionStart;
      if (slashAt === -1) {
        var before = box.value.charAt(caret - 2);
        if (box.value.charAt(caret - 1) === "/" && (caret === 1 || /\s/.test(before))) {
          slashAt = caret - 1;
        }
      }
      if (slashAt !== -1) {
        if (caret <= slashAt) {
          close();
        } else {
          open();
        }
      }
    });
    box.addEventListener("keydown", function (event) {
      if (menu.hidden || !menu.found) {
        return;
      }
      if (event.key === "Enter" && !event.ctrlKey && !event.metaKey) {
        event.preventDefault();
        choose(menu.found[0]);
      } else if (event.key === "Escape") {
        close();
      }
    });
    box.addEventListener("blur", close);
  }
})();
