
// Pages script (logs live tail). Progressive enhancement: /logs/tail works without it.
(function () {
  "use strict";
  var MAX_RECORDS = 500;

  function sevClass(text, number) {
    var t = String(text || "").trim().toUpperCase();
    if (/^(FATAL|CRIT|EMERG|ALERT|ERR)/.test(t) || t === "PANIC" || t === "SEVERE") return "error";
    if (/^WARN/.test(t)) return "warn";
    if (/^(INFO|NOTICE)/.test(t)) return "info";
    if (/^(DEBUG|TRACE)/.test(t) || t === "FINE" || t === "FINER" || t === "FINEST") return "debug";
    var n = Number(number) || 0;
    if (n >= 17) return "error";
    if (n >= 13) return "warn";
    if (n >= 9) return "info";
    if (n >= 1) return "debug";
    return "other";
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function formatTime(iso) {
    // "2024-05-01T12:00:00.123456789Z" -> "2024-05-01 12:00:00.123456"
    var s = String(iso || "");
    var m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(\.\d{1,6})?/.exec(s);
    if (!m) return s;
    var frac = (m[3] || ".").padEnd(7, "0");
    return m[1] + " " + m[2] + frac;
  }

  function kvList(obj) {
    var keys = Object.keys(obj || {});
    if (!keys.length) return el("p", "muted", "none");
    var dl = el("dl", "kv");
    keys.forEach(function (k) {
      var v = obj[k];
      dl.appendChild(el("dt", "", k));
      dl.appendChild(el("dd", "", typeof v === "string" ? v : JSON.stringify(v)));
    });
    return dl;
  }

  function recordItem(r) {
    var cls = sevClass(r.severity_text, r.severity_number);
    var li = el("li", "log sev-" + cls + " log-new");
    var time = el("time", "", formatTime(r.time));
    time.setAttribute("datetime", String(r.time || ""));
    li.appendChild(time);
    li.appendChild(el("span", "sev", r.severity_text || ""));
    li.appendChild(el("span", "svc", r.service || ""));
    li.appendChild(el("span", "body", r.body || ""));
    if (r.trace_id && /^[0-9a-f]{1,32}$/.test(r.trace_id)) {
      var a = el("a", "trace-link", "trace");
      a.setAttribute("href", "/traces/" + r.trace_id);
      li.appendChild(a);
    }
    var attrs = r.attributes || {}, res = r.resource || {};
    if (Object.keys(attrs).length || Object.keys(res).length) {
      var d = el("details", "log-attrs");
      d.appendChild(el("summary", "", "Attributes and resource"));
      d.appendChild(el("h3", "", "Attributes"));
      d.appendChild(kvList(attrs));
      d.appendChild(el("h3", "", "Resource"));
      d.appendChild(kvList(res));
      li.appendChild(d);
    }
    return li;
  }

  function startTail(box) {
    if (typeof EventSource === "undefined") return;
    var list = box.querySelector("ol.log-list");
    var status = document.getElementById("log-tail-status");
    if (!list) return;
    var query = box.getAttribute("data-query") || "";
    var paused = false, received = 0, buffered = [];
    var source = null;

    function setStatus(text) { if (status) status.textContent = text; }
    function add(r) {
      list.insertBefore(recordItem(r), list.firstChild);
      while (list.children.length > MAX_RECORDS) list.removeChild(list.lastChild);
    }
    function connect() {
      source = new EventSource("/api/logs/tail?query=" + encodeURIComponent(query));
      source.addEventListener("open", function () { setStatus("Streaming new records" + (paused ? " (paused)" : "") + "…"); });
      source.addEventListener("log", function (ev) {
        var r;
        try { r = JSON.parse(ev.data); } catch (e) { return; }
        received += 1;
        if (paused) { buffered.push(r); setStatus("Paused: " + buffered.length + " new records waiting."); return; }
        add(r);
        setStatus("Streaming: " + received + " new records.");
      });
      source.addEventListener("error", function (ev) {
        if (ev && typeof ev.data === "string" && ev.data) {
          setStatus("The live tail stopped: " + ev.data);
          source.close();
        } else {
          setStatus("Connection lost; retrying…");
        }
      });
    }

    var button = el("button", "tail-pause", "Pause");
    button.type = "button";
    button.setAttribute("aria-pressed", "false");
    button.addEventListener("click", function () {
      paused = !paused;
      button.textContent = paused ? "Resume" : "Pause";
      button.setAttribute("aria-pressed", paused ? "true" : "false");
      if (!paused) {
        buffered.forEach(add);
        buffered = [];
        setStatus("Streaming: " + received + " new records.");
      }
    });
    box.parentNode.insertBefore(button, box);
    connect();
    window.addEventListener("pagehide", function () { if (source) source.close(); });
  }

  // Trace search: the operation list follows the chosen service.
  function linkOperations(form) {
    var byService;
    try { byService = JSON.parse(form.getAttribute("data-operations") || "{}"); } catch (e) { return; }
    var service = form.querySelector("select[name=service]");
    var operation = form.querySelector("select[name=operation]");
    if (!service || !operation) return;
    service.addEventListener("change", function () {
      var names = [];
      if (service.value) {
        names = byService[service.value] || [];
      } else {
        var seen = {};
        Object.keys(byService).forEach(function (s) {
          byService[s].forEach(function (n) { if (!seen[n]) { seen[n] = true; names.push(n); } });
        });
        names.sort();
      }
      var keep = operation.value;
      while (operation.options.length > 1) operation.remove(1);
      names.forEach(function (n) {
        var o = document.createElement("option");
        o.value = n;
        o.textContent = n;
        if (n === keep) o.selected = true;
        operation.appendChild(o);
      });
    });
  }

  function init() {
    var box = document.getElementById("log-tail");
    if (box) startTail(box);
    var search = document.querySelector("form.traces-search[data-operations]");
    if (search) linkOperations(search);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
