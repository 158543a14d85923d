/* 支部审评: show each member's level as the secretary types.
 *
 * A row's values are posted (debounced) to the page's preview endpoint, which runs the rule engine
 * on the server — the one source of truth — and answers with the total, the level's name and the
 * reasons; the row's level cell shows them. Nothing is saved. Without JavaScript the level is shown
 * after saving. Loaded as a static file: the CSP forbids inline scripts.
 */
(function () {
  "use strict";

  var form = document.querySelector("form[data-preview-url]");
  if (!form || !window.fetch || !window.FormData) {
    return;
  }
  var url = form.getAttribute("data-preview-url");
  var tokenInput = form.querySelector("input[name='csrf_token']");
  var token = tokenInput ? tokenInput.value : "";
  var DELAY = 350;
  var timers = {};
  var sequence = {};

  function rowOf(element) {
    return element && element.closest ? element.closest("tr[data-evaluation]") : null;
  }

  function clear(node) {
    while (node.firstChild) {
      node.removeChild(node.firstChild);
    }
  }

  function span(className, text) {
    var element = document.createElement("span");
    element.className = className;
    element.textContent = text;
    return element;
  }

  function show(row, data) {
    var cell = row.querySelector("[data-level]");
    if (!cell || !data) {
      return;
    }
    clear(cell);
    if (!data.ok) {
      var first = data.errors ? Object.keys(data.errors)[0] : null;
      if (first) {
        cell.appendChild(span("muted level-reason", data.errors[first]));
      }
      return;
    }
    var label = document.createElement("strong");
    label.className = "level-label";
    label.textContent = data.label;
    cell.appendChild(label);
    cell.appendChild(span("level-total", (cell.getAttribute("data-total-prefix") || "总分 ") + data.total));
    (data.reasons || []).forEach(function (reason) {
      cell.appendChild(span("level-reason", reason));
    });
  }

  function send(row) {
    var id = row.getAttribute("data-evaluation");
    var prefix = "r" + id + ".";
    var body = new FormData();
    var fields = row.querySelectorAll("input[name], select[name], textarea[name]");
    Array.prototype.forEach.call(fields, function (field) {
      if (field.name.indexOf(prefix) === 0 && field.name !== prefix + "version") {
        body.append(field.name.slice(prefix.length), field.value);
      }
    });
    body.append("csrf_token", token);
    var mine = (sequence[id] || 0) + 1;
    sequence[id] = mine;
    fetch(url, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-CSRFToken": token, "Accept": "application/json" }
    })
      .then(function (response) {
        return response.ok ? response.json() : null;
      })
      .then(function (data) {
        if (sequence[id] === mine) {  // an older answer arriving late must not overwrite a newer one
          show(row, data);
        }
      })
      .catch(function () {
        /* offline or refused: the level is shown after saving */
      });
  }

  function schedule(event) {
    var row = rowOf(event.target);
    if (!row) {
      return;
    }
    var id = row.getAttribute("data-evaluation");
    window.clearTimeout(timers[id]);
    timers[id] = window.setTimeout(function () {
      send(row);
    }, DELAY);
  }

  form.addEventListener("input", schedule);
  form.addEventListener("change", schedule);
})();
