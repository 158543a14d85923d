/* Self-assessment page (templates/rounds/member/edit.html): running subtotals per aspect and the
   total while a member types. The page works without it: the server shows the same sums after
   each save. Loaded with <script src> (the CSP allows scripts from this site only). */
(function () {
  "use strict";
  var form = document.querySelector("form[data-self-assessment]");
  if (!form) { return; }

  function read(input) {
    var text = (input.value || "").replace("，", ".").trim();
    if (text === "") { return null; }
    var number = Number(text);
    return isFinite(number) ? number : NaN;
  }

  function show(number) {
    return String(Math.round(number * 100) / 100);
  }

  function sum(inputs) {
    var total = 0, seen = false, bad = false;
    Array.prototype.forEach.call(inputs, function (input) {
      var number = read(input);
      if (number === null) { return; }
      if (isNaN(number)) { bad = true; return; }
      seen = true;
      total += number;
    });
    if (bad) { return "?"; }
    return seen ? show(total) : "—";
  }

  function update() {
    Array.prototype.forEach.call(form.querySelectorAll("[data-group]"), function (group) {
      var out = group.querySelector("[data-subtotal]");
      if (out) { out.textContent = sum(group.querySelectorAll("input[data-score]")); }
    });
    var total = form.querySelector("[data-total]");
    if (total) { total.textContent = sum(form.querySelectorAll("input[data-score]")); }
  }

  form.addEventListener("input", update);
  update();
}());
