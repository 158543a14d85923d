/* 报表: move the progress bars of queued and running reports without reloading the page.
 *
 * While a listed report is queued or running, the page asks its status endpoint (same origin, JSON)
 * every two seconds and updates each row: the state, the bar, and — once done — the download link,
 * or the reason it failed. Polling stops when nothing is pending. Without JavaScript the page shows
 * the state it was loaded with. Loaded as a static file: the CSP forbids inline scripts.
 */
(function () {
  "use strict";

  var table = document.querySelector("table[data-status-url]");
  if (!table || !window.fetch) {
    return;
  }
  var url = table.getAttribute("data-status-url");
  var PENDING = { queued: true, running: true };
  var DELAY = 2000;
  var timer = null;

  function rows() {
    return table.querySelectorAll("tr[data-job]");
  }

  function pending() {
    var list = rows();
    for (var i = 0; i < list.length; i += 1) {
      if (PENDING[list[i].getAttribute("data-state")]) {
        return true;
      }
    }
    return false;
  }

  function clear(node) {
    while (node.firstChild) {
      node.removeChild(node.firstChild);
    }
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text) {
      node.textContent = text;
    }
    return node;
  }

  function update(row, job) {
    var state = row.querySelector("[data-role=state]");
    var bar = row.querySelector("[data-role=progress]");
    var percent = row.querySelector("[data-role=percent]");
    var outcome = row.querySelector("[data-role=outcome]");
    var changed = row.getAttribute("data-state") !== job.state;
    row.setAttribute("data-state", job.state);
    if (state) {
      state.textContent = job.label;
      state.className = "badge job-state state-" + job.state;
    }
    if (bar) {
      bar.value = job.progress;
      bar.textContent = job.progress + "%";
    }
    if (percent) {
      percent.textContent = job.progress + "%";
    }
    if (!changed || !outcome) {
      return;
    }
    clear(outcome);
    if (job.download) {
      var link = element("a", "button small", outcome.getAttribute("data-download-label") || "下载");
      link.href = job.download;
      link.setAttribute("download", "");
      outcome.appendChild(link);
      if (job.size) {
        outcome.appendChild(document.createTextNode(" "));
        outcome.appendChild(element("span", "muted", job.size));
      }
    } else if (job.failure) {
      outcome.appendChild(element("span", "error", job.failure));
    }
  }

  function poll() {
    timer = null;
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("status " + response.status);
        }
        return response.json();
      })
      .then(function (data) {
        var byId = {};
        (data.jobs || []).forEach(function (job) {
          byId[String(job.id)] = job;
        });
        var list = rows();
        for (var i = 0; i < list.length; i += 1) {
          var job = byId[list[i].getAttribute("data-job")];
          if (job) {
            update(list[i], job);
          }
        }
        schedule();
      })
      .catch(function () {
        // A failed poll (the server restarting, a lost connection) waits longer and tries again.
        schedule(DELAY * 3);
      });
  }

  function schedule(delay) {
    if (timer === null && pending()) {
      timer = window.setTimeout(poll, delay || DELAY);
    }
  }

  schedule();
})();
