// crontabber's status page: local times, and refreshing the jobs without a reload.
// The page reads the same without this script.
(function () {
  "use strict";

  function localise(root) {
    var zone = "";
    try {
      zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (e) {
      zone = "";
    }
    var label = document.getElementById("zone");
    if (label && zone && zone !== "UTC") {
      label.textContent = " and in your zone (" + zone + ")";
    }
    if (!zone || zone === "UTC") {
      return;
    }
    var times = root.querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i++) {
      var time = times[i];
      if (time.getAttribute("data-local") === "1") {
        continue;
      }
      var when = new Date(time.getAttribute("datetime"));
      if (isNaN(when.getTime())) {
        continue;
      }
      var local = document.createElement("span");
      local.className = "local";
      local.textContent = when.toLocaleString(undefined, {
        year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short"
      });
      time.setAttribute("data-local", "1");
      time.parentNode.insertBefore(local, time.nextSibling);
    }
  }

  function openKeys(root) {
    var keys = {};
    var open = root.querySelectorAll("details[open][data-key]");
    for (var i = 0; i < open.length; i++) {
      keys[open[i].getAttribute("data-key")] = true;
    }
    return keys;
  }

  function reopen(root, keys) {
    var all = root.querySelectorAll("details[data-key]");
    for (var i = 0; i < all.length; i++) {
      if (keys[all[i].getAttribute("data-key")]) {
        all[i].open = true;
      }
    }
  }

  function updateTitle(root) {
    var summary = root.querySelector(".summary[data-failing]");
    if (!summary) {
      return;
    }
    var failing = Number(summary.getAttribute("data-failing")) || 0;
    document.title = (failing ? "(" + failing + " failing) " : "") + "crontabber";
  }

  function keepRefreshed(box) {
    var url = box.getAttribute("data-refresh-url");
    var seconds = Number(box.getAttribute("data-refresh-seconds")) || 10;

    function stale(on) {
      var note = box.querySelector(".stale");
      if (note) {
        note.hidden = !on;
      }
    }

    function tick() {
      if (document.hidden) {
        window.setTimeout(tick, seconds * 1000);
        return;
      }
      fetch(url, { cache: "no-store", credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) {
            throw new Error("status " + response.status);
          }
          return response.text();
        })
        .then(function (html) {
          var keys = openKeys(box);
          box.innerHTML = html;
          reopen(box, keys);
          localise(box);
          updateTitle(box);
          box.setAttribute("data-refreshed", String(Date.now()));
        })
        .catch(function () {
          stale(true);
        })
        .then(function () {
          window.setTimeout(tick, seconds * 1000);
        });
    }

    window.setTimeout(tick, seconds * 1000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    localise(document);
    var box = document.getElementById("status");
    if (box && box.getAttribute("data-refresh-url")) {
      keepRefreshed(box);
    }
  });
})();
