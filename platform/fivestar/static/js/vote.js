/* 议星测评: the slip's QR code opens …/vote/#CODE. Browsers never send the part after "#" to the
 * server, so the code reaches no access log; this script moves it into the form's code field, wipes
 * it from the address bar and the history entry, and continues to the ballot. Without JavaScript
 * the voter types the code. Loaded as a static file: the CSP forbids inline scripts.
 */
(function () {
  "use strict";

  var form = document.getElementById("vote-code-form");
  var field = document.getElementById("code");
  if (!form || !field) {
    return;
  }
  var fragment = window.location.hash ? window.location.hash.slice(1) : "";
  if (!fragment) {
    return;
  }
  if (window.history && window.history.replaceState) {
    window.history.replaceState(null, "", window.location.pathname + window.location.search);
  } else {
    window.location.hash = "";
  }
  var code = decodeURIComponent(fragment).replace(/[^0-9A-Za-z]/g, "").toUpperCase();
  if (code.length !== 10) {
    return;
  }
  field.value = code.slice(0, 5) + "-" + code.slice(5);
  if (form.requestSubmit) {
    form.requestSubmit();
  } else {
    form.submit();
  }
})();
