/* mailshot pages: a little progressive enhancement, nothing the pages need to work.
 * - [data-counter]: a live character counter that warns past the limit;
 * - [data-progress-url]: polls a sync's progress (JSON) and shows n of N, rate and ETA;
 * - button[data-confirm]: asks before a destructive action. */
(function () {
  "use strict";

  function counters() {
    document.querySelectorAll("input[data-counter], textarea[data-counter]").forEach(function (input) {
      var limit = parseInt(input.getAttribute("data-counter"), 10);
      var out = document.getElementById(input.getAttribute("data-counter-target"));
      var what = input.getAttribute("data-counter-what") || "the limit";
      if (!out) { return; }
      function update() {
        var n = Array.from(input.value).length;
        var over = limit > 0 && n > limit;
        if (!(limit > 0)) {
          out.textContent = n + " characters";
        } else {
          out.textContent = over
            ? n + " / " + limit + " characters: " + (n - limit) + " over " + what + ". Shorten it or the sync will be refused."
            : n + " / " + limit + " characters";
        }
        out.classList.toggle("over", over);
        input.setAttribute("aria-invalid", over ? "true" : "false");
      }
      input.addEventListener("input", update);
      update();
    });
  }

  function fmtInt(n) { return (n === null || n === undefined) ? "—" : Number(n).toLocaleString("en-GB"); }
  function fmtEta(s) {
    if (s === null || s === undefined) { return "—"; }
    s = Math.max(0, Math.round(s));
    if (s < 60) { return s + " s"; }
    var m = Math.floor(s / 60);
    return m + " min " + (s % 60) + " s";
  }
  var TERMINAL = { synchronised: 1, failed: 1, cancelled: 1, not_synchronised: 1 };

  function progress() {
    var box = document.querySelector("[data-progress-url]");
    if (!box) { return; }
    var url = box.getAttribute("data-progress-url");
    var bar = box.querySelector(".bar > span");
    var text = box.querySelector(".progress-text");
    var badge = document.getElementById("sync-state");
    var startState = box.getAttribute("data-state");
    var timer = null;
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
        .then(function (p) {
          var total = p.recipients_total, done = p.recipients_written || 0;
          var pct = total ? Math.min(100, Math.floor(100 * done / total)) : (p.state === "synchronised" ? 100 : 0);
          bar.style.width = pct + "%";
          box.querySelector(".bar").setAttribute("aria-valuenow", String(pct));
          var parts = [pct + " %", fmtInt(done) + " of " + (total === null || total === undefined ? "?" : fmtInt(total)) + " recipients"];
          if (p.rate_per_second) { parts.push(fmtInt(Math.round(p.rate_per_second)) + " per second"); }
          if (p.eta_seconds !== null && p.eta_seconds !== undefined && !TERMINAL[p.state]) { parts.push("about " + fmtEta(p.eta_seconds) + " left"); }
          if (p.queue_position) { parts.push("position " + p.queue_position + " in the queue"); }
          if (p.last_error && !TERMINAL[p.state]) { parts.push("retrying after: " + p.last_error.code); }
          text.textContent = parts.join(" · ");
          var summary = document.getElementById("sync-summary");
          if (summary && p.summary) { summary.textContent = p.summary; }
          if (badge) { badge.textContent = p.state.replace(/_/g, " "); badge.className = "badge badge-" + p.state.replace(/_/g, "-"); }
          box.setAttribute("data-state", p.state);
          if (TERMINAL[p.state]) {
            if (timer) { clearInterval(timer); timer = null; }
            if (startState !== p.state) { window.location.reload(); }
          }
        })
        .catch(function () { text.textContent = "Progress is not available right now; retrying…"; });
    }
    tick();
    timer = setInterval(tick, 1000);
  }

  function confirms() {
    document.addEventListener("click", function (ev) {
      var btn = ev.target.closest && ev.target.closest("button[data-confirm]");
      if (btn && !window.confirm(btn.getAttribute("data-confirm"))) { ev.preventDefault(); }
    });
  }

  document.addEventListener("DOMContentLoaded", function () { counters(); progress(); confirms(); });
}());
