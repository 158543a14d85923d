/* 荐星: show the rule engine's view of what is typed, before it is saved.
 *
 * The whole form is posted (debounced) to the page's preview endpoint, which runs the rule engine
 * on the server — the one source of truth — and answers with the level, the totals, each
 * indicator's medal and the reasons; the "按当前填写测算" card shows them. Nothing is saved.
 * Without JavaScript the same view is shown after each save. Loaded as a static file: the CSP
 * forbids inline scripts.
 */
(function () {
  "use strict";

  var form = document.querySelector("form[data-preview-url]");
  var card = document.getElementById("engine-live");
  if (!form || !card || !window.fetch || !window.FormData) {
    return;
  }
  var url = form.getAttribute("data-preview-url");
  var tokenInput = form.querySelector("input[name='csrf_token']");
  var token = tokenInput ? tokenInput.value : "";
  var DELAY = 400;
  var timer = null;
  var sequence = 0;

  function part(name) {
    return card.querySelector("[data-live-" + name + "]");
  }

  function clear(node) {
    while (node.firstChild) {
      node.removeChild(node.firstChild);
    }
  }

  function item(text, className) {
    var li = document.createElement("li");
    if (className) {
      li.className = className;
    }
    li.textContent = text;
    return li;
  }

  function show(data) {
    if (!data) {
      return;
    }
    card.hidden = false;
    var level = part("level");
    var total = part("total");
    var indicators = part("indicators");
    var reasons = part("reasons");
    var message = part("message");
    clear(indicators);
    clear(reasons);
    message.textContent = "";
    if (!data.ok) {
      level.textContent = "";
      total.textContent = "";
      message.textContent = data.message || "";
    } else {
      level.textContent = data.label;
      total.textContent = (card.getAttribute("data-total-label") || "") + " " + data.total;
      (data.indicators || []).forEach(function (row) {
        indicators.appendChild(item(row.label + "：" + row.total + " / " + row.max + " · " + row.medal_label,
          "medal-" + (row.medal || "none")));
      });
      (data.reasons || []).forEach(function (reason) {
        reasons.appendChild(item(reason));
      });
    }
    var errors = data.errors ? Object.keys(data.errors) : [];
    errors.slice(0, 3).forEach(function (name) {
      reasons.appendChild(item(data.errors[name], "error"));
    });
  }

  function send() {
    var body = new FormData(form);
    body.delete("action");
    var mine = ++sequence;
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
        if (mine === sequence) {  // an older answer arriving late must not overwrite a newer one
          show(data);
        }
      })
      .catch(function () {
        /* offline or refused: the view is shown after saving */
      });
  }

  function schedule() {
    window.clearTimeout(timer);
    timer = window.setTimeout(send, DELAY);
  }

  form.addEventListener("input", schedule);
  form.addEventListener("change", schedule);
})();
