// Didban's one script: progressive enhancement only. Every page works without it.
// Contracts (docs/ui.md, "Charts, units and the script"):
//  - svg.chart[data-plot]: cross-hair, tooltip (path.series[data-values] and the path's vertices) and drag-to-zoom
//    (rewrites the page URL's from/to to epoch milliseconds and navigates).
//  - [data-refresh-url][data-refresh-seconds]: innerHTML replaced every N seconds.
//  - .legend .legend-toggle[data-series]: toggles that series in its chart.
//  - textarea[data-complete-metrics]: metric, label name and label value completion.
"use strict";
(function () {
  // ---- units: a port of ui/src/units.rs `format` (keep in step) ----
  var IEC = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
  var SI = ["", "k", "M", "G", "T", "P", "E"];
  var CUR = ["", "K", "M", "B", "T"];
  function sc(b, p, pre, suf, sp) { return { b: b, p: p, pre: pre, suf: suf, sp: sp }; }
  var UNITS = {
    bytes: sc(1024, IEC, "", "B", true), decbytes: sc(1000, SI, "", "B", true),
    bits: sc(1000, SI, "", "b", true), bps: sc(1000, SI, "", "bps", true),
    Bps: sc(1000, SI, "", "B/s", true), binBps: sc(1024, IEC, "", "B/s", true),
    ops: { rate: "ops/s" }, reqps: { rate: "req/s" },
    currencyUSD: sc(1000, CUR, "$", "", false), short: sc(1000, SI, "", "", false),
    ns: { dur: 1e-9 }, "µs": { dur: 1e-6 }, us: { dur: 1e-6 }, ms: { dur: 1e-3 },
    s: { dur: 1 }, seconds: { dur: 1 }, m: { dur: 60 }, h: { dur: 3600 }, d: { dur: 86400 },
    percent: { pct: 1 }, percentunit: { pct: 100 }
  };
  function autoDec(v) {
    var a = Math.abs(v);
    if (a === 0 || !isFinite(a)) return 0;
    return Math.min(10, Math.max(0, 2 - Math.floor(Math.log10(a))));
  }
  function num(v, d) {
    if (d != null) return v.toFixed(d);
    var a = Math.abs(v);
    if (a >= 1e15 || (a > 0 && a < 1e-6)) {
      var parts = v.toExponential(2).split("e");
      return parts[0].replace(/0+$/, "").replace(/\.$/, "") + "e" + parts[1].replace("+", "");
    }
    var s = v.toFixed(autoDec(v));
    if (s.indexOf(".") >= 0) s = s.replace(/0+$/, "").replace(/\.$/, "");
    return s === "-0" ? "0" : s;
  }
  function special(v) {
    if (isNaN(v)) return "NaN";
    if (v === Infinity) return "+Inf";
    if (v === -Infinity) return "-Inf";
    return null;
  }
  function duration(s, d) {
    var sp = special(s);
    if (sp) return sp;
    if (s < 0) return "-" + duration(-s, d);
    if (s === 0) return "0s";
    if (s < 1e-6) return num(s * 1e9, d) + "ns";
    if (s < 1e-3) return num(s * 1e6, d) + "µs";
    if (s < 1) { var ms = num(s * 1e3, d); if (ms !== "1000") return ms + "ms"; }
    if (s < 59.995) return num(s, d) + "s";
    var t = Math.round(s), D = Math.floor(t / 86400), h = Math.floor(t / 3600) % 24,
      m = Math.floor(t / 60) % 60, x = t % 60, a, au, b, bu;
    if (D > 0) { a = D; au = "d"; b = h; bu = "h"; }
    else if (h > 0) { a = h; au = "h"; b = m; bu = "m"; }
    else { a = m; au = "m"; b = x; bu = "s"; }
    return b === 0 ? a + au : a + au + " " + b + bu;
  }
  function format(v, unit, d) {
    var sp = special(v);
    if (sp) return sp;
    var k = Object.prototype.hasOwnProperty.call(UNITS, unit) ? UNITS[unit] : null;
    if (!k) { var n0 = num(v, d); return (!unit || unit === "none") ? n0 : n0 + " " + unit; }
    if (k.rate) return format(v, "short", d) + " " + k.rate;
    if (k.dur) return duration(v * k.dur, d);
    if (k.pct) return num(v * k.pct, d) + "%";
    var e = 0, a = Math.abs(v);
    while (a >= k.b && e < k.p.length - 1) { a /= k.b; e++; }
    if (e + 1 < k.p.length && d == null && parseFloat(num(Math.abs(v) / Math.pow(k.b, e))) >= k.b) e++;
    var n = num(v / Math.pow(k.b, e), d), sign = "";
    if (n.charAt(0) === "-") { sign = "-"; n = n.slice(1); }
    var u = k.p[e] + k.suf;
    return u ? sign + k.pre + n + (k.sp ? " " : "") + u : sign + k.pre + n;
  }
  window.didbanFormat = format;

  var SVGNS = "http://www.w3.org/2000/svg";
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function utc(ms) {
    var t = new Date(ms);
    return t.getUTCFullYear() + "-" + pad(t.getUTCMonth() + 1) + "-" + pad(t.getUTCDate()) + " " +
      pad(t.getUTCHours()) + ":" + pad(t.getUTCMinutes()) + ":" + pad(t.getUTCSeconds()) + " UTC";
  }

  // ---- charts: data parsed once per <svg> ----
  var chartCache = new WeakMap();
  function chartData(svg) {
    var c = chartCache.get(svg);
    if (c) return c;
    var plot = (svg.getAttribute("data-plot") || "").split(" ").map(parseFloat);
    var vb = svg.viewBox && svg.viewBox.baseVal;
    if (plot.length !== 4 || plot.some(isNaN) || !vb || !vb.width) return null;
    var dec = svg.getAttribute("data-decimals");
    c = {
      l: plot[0], t: plot[1], w: plot[2], h: plot[3], vbw: vb.width, vbh: vb.height,
      start: parseFloat(svg.getAttribute("data-start-ms")),
      end: parseFloat(svg.getAttribute("data-end-ms")),
      unit: svg.getAttribute("data-unit") || "",
      dec: dec === null ? null : parseInt(dec, 10),
      series: []
    };
    svg.querySelectorAll("path.series[data-values]").forEach(function (p) {
      // one value per vertex of the path ("M x,y" / "L x,y"), in order
      var xs = [], vs = (p.getAttribute("data-values") || "").split(" ").map(parseFloat);
      (p.getAttribute("d") || "").split(/[ML]/).forEach(function (pt) {
        if (pt) xs.push(parseFloat(pt));
      });
      if (vs.length > xs.length) vs.length = xs.length;
      xs.length = vs.length;
      var title = p.querySelector("title");
      c.series.push({ el: p, idx: p.getAttribute("data-series"), name: title ? title.textContent : "",
        cls: (p.getAttribute("class") || "").replace("series", "").trim(), xs: xs, vs: vs });
    });
    chartCache.set(svg, c);
    return c;
  }
  function toView(svg, c, ev) {
    var r = svg.getBoundingClientRect();
    if (!r.width || !r.height) return null;
    return { x: (ev.clientX - r.left) * c.vbw / r.width, y: (ev.clientY - r.top) * c.vbh / r.height };
  }
  function nearest(xs, x) {
    var lo = 0, hi = xs.length - 1;
    if (hi < 0) return -1;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (xs[mid] < x) lo = mid + 1; else hi = mid; }
    if (lo > 0 && Math.abs(xs[lo - 1] - x) <= Math.abs(xs[lo] - x)) lo--;
    return lo;
  }
  function svgEl(svg, name, cls) {
    var el = svg.querySelector(name + "." + cls);
    if (!el) { el = document.createElementNS(SVGNS, name); el.setAttribute("class", cls); svg.appendChild(el); }
    return el;
  }
  var tip = null;
  function tooltip() {
    if (!tip) {
      tip = document.createElement("div");
      tip.className = "chart-tooltip";
      tip.setAttribute("role", "status");
      document.body.appendChild(tip);
    }
    return tip;
  }
  function hideHover(svg) {
    if (tip) tip.hidden = true;
    if (svg) { var l = svg.querySelector("line.crosshair"); if (l) l.setAttribute("visibility", "hidden"); }
  }
  function showHover(svg, c, p, ev) {
    var line = svgEl(svg, "line", "crosshair");
    line.setAttribute("x1", p.x); line.setAttribute("x2", p.x);
    line.setAttribute("y1", c.t); line.setAttribute("y2", c.t + c.h);
    line.setAttribute("visibility", "visible");
    var t = c.start + (p.x - c.l) / c.w * (c.end - c.start);
    var box = tooltip();
    box.textContent = "";
    var head = document.createElement("div");
    head.className = "tt-time";
    head.textContent = utc(t);
    box.appendChild(head);
    var shown = 0;
    c.series.forEach(function (s) {
      if (shown >= 20 || s.el.classList.contains("series-hidden")) return;
      var i = nearest(s.xs, p.x);
      if (i < 0) return;
      var spacing = s.xs.length > 1 ? c.w / (s.xs.length - 1) : c.w;
      if (Math.abs(s.xs[i] - p.x) > Math.max(10, spacing)) return;
      var row = document.createElement("div");
      row.className = "tt-row";
      var sw = document.createElement("span");
      sw.className = "swatch " + s.cls;
      var name = document.createElement("span");
      name.className = "tt-name";
      name.textContent = s.name;
      var val = document.createElement("span");
      val.className = "tt-value";
      val.textContent = format(s.vs[i], c.unit, c.dec);
      row.appendChild(sw); row.appendChild(name); row.appendChild(val);
      box.appendChild(row);
      shown++;
    });
    box.hidden = false;
    var x = ev.clientX + 14, y = ev.clientY + 14;
    var bw = box.offsetWidth, bh = box.offsetHeight;
    if (x + bw > window.innerWidth - 4) x = Math.max(4, ev.clientX - bw - 14);
    if (y + bh > window.innerHeight - 4) y = Math.max(4, ev.clientY - bh - 14);
    box.style.left = x + "px";
    box.style.top = y + "px";
  }

  var drag = null, hoverSvg = null;
  function chartOf(target) {
    var svg = target && target.closest ? target.closest("svg.chart[data-plot]") : null;
    return svg && chartData(svg) ? svg : null;
  }
  function inPlot(c, p) { return p && p.x >= c.l && p.x <= c.l + c.w && p.y >= c.t && p.y <= c.t + c.h; }
  document.addEventListener("mousemove", function (ev) {
    if (drag) {
      var dp = toView(drag.svg, drag.c, ev);
      if (!dp) return;
      var x = Math.min(Math.max(dp.x, drag.c.l), drag.c.l + drag.c.w);
      drag.rect.setAttribute("x", Math.min(x, drag.x0));
      drag.rect.setAttribute("width", Math.abs(x - drag.x0));
      drag.x1 = x;
      return;
    }
    var svg = chartOf(ev.target);
    if (hoverSvg && hoverSvg !== svg) { hideHover(hoverSvg); hoverSvg = null; }
    if (!svg) return;
    var c = chartData(svg), p = toView(svg, c, ev);
    if (inPlot(c, p)) { hoverSvg = svg; showHover(svg, c, p, ev); } else hideHover(svg);
  });
  document.addEventListener("mouseleave", function () { hideHover(null); });
  document.addEventListener("mousedown", function (ev) {
    if (ev.button !== 0) return;
    // an exemplar dot is a link to its trace, not the start of a zoom
    if (ev.target.closest && ev.target.closest("a.exemplar")) return;
    var svg = chartOf(ev.target);
    if (!svg) return;
    var c = chartData(svg), p = toView(svg, c, ev);
    if (!inPlot(c, p) || !(c.end > c.start)) return;
    ev.preventDefault();
    var rect = svgEl(svg, "rect", "zoom-sel");
    rect.setAttribute("x", p.x); rect.setAttribute("y", c.t);
    rect.setAttribute("width", 0); rect.setAttribute("height", c.h);
    rect.setAttribute("visibility", "visible");
    drag = { svg: svg, c: c, x0: p.x, x1: p.x, rect: rect };
  });
  function endDrag(apply) {
    if (!drag) return;
    var d = drag;
    drag = null;
    d.rect.setAttribute("visibility", "hidden");
    if (!apply || Math.abs(d.x1 - d.x0) < 4) return;
    var c = d.c, span = c.end - c.start;
    var a = Math.round(c.start + (Math.min(d.x0, d.x1) - c.l) / c.w * span);
    var b = Math.round(c.start + (Math.max(d.x0, d.x1) - c.l) / c.w * span);
    if (!(b > a)) return;
    var url = new URL(window.location.href);
    url.searchParams.set("from", String(a));
    url.searchParams.set("to", String(b));
    window.location.assign(url.toString());
  }
  document.addEventListener("mouseup", function () { endDrag(true); });
  document.addEventListener("keydown", function (ev) { if (ev.key === "Escape") endDrag(false); });

  // ---- legend: toggle a series; remembered per chart id across refreshes ----
  var hidden = {};
  function legendChart(legend) {
    var id = legend.getAttribute("data-chart");
    var svg = id ? document.getElementById(id) : null;
    if (!svg && legend.parentElement) svg = legend.parentElement.querySelector("svg.chart");
    return svg;
  }
  function setHidden(svg, legend, idx, off) {
    if (svg) svg.querySelectorAll('[data-series="' + idx + '"]').forEach(function (el) {
      el.classList.toggle("series-hidden", off);
    });
    if (legend) legend.querySelectorAll('.legend-toggle[data-series="' + idx + '"]').forEach(function (b) {
      b.setAttribute("aria-pressed", off ? "false" : "true");
      var row = b.closest("tr");
      if (row) row.classList.toggle("off", off);
    });
  }
  document.addEventListener("click", function (ev) {
    var btn = ev.target && ev.target.closest ? ev.target.closest(".legend-toggle[data-series]") : null;
    if (!btn) return;
    var legend = btn.closest(".legend");
    if (!legend) return;
    var svg = legendChart(legend), idx = btn.getAttribute("data-series");
    var off = btn.getAttribute("aria-pressed") !== "false";
    setHidden(svg, legend, idx, off);
    if (svg && svg.id) {
      var set = hidden[svg.id] || (hidden[svg.id] = {});
      if (off) set[idx] = true; else delete set[idx];
    }
  });
  function reapplyHidden(root) {
    root.querySelectorAll(".legend").forEach(function (legend) {
      var svg = legendChart(legend);
      var set = svg && svg.id ? hidden[svg.id] : null;
      if (set) Object.keys(set).forEach(function (idx) { setHidden(svg, legend, idx, true); });
    });
  }

  // ---- auto-refresh: [data-refresh-url][data-refresh-seconds] ----
  var due = new WeakMap(), busy = new WeakSet();
  function refreshTick() {
    if (document.hidden || drag) return;
    var now = Date.now();
    document.querySelectorAll("[data-refresh-url][data-refresh-seconds]").forEach(function (el) {
      var n = parseFloat(el.getAttribute("data-refresh-seconds"));
      if (!(n > 0)) return;
      var next = due.get(el);
      if (next === undefined) { due.set(el, now + n * 1000); return; }
      if (now < next || busy.has(el)) return;
      var url;
      try { url = new URL(el.getAttribute("data-refresh-url"), window.location.href); } catch (e) { return; }
      if (url.origin !== window.location.origin) return;
      busy.add(el);
      fetch(url.toString(), { credentials: "include", headers: { "X-Didban-Refresh": "1" } })
        .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.text(); })
        .then(function (html) { el.innerHTML = html; reapplyHidden(el); })
        .catch(function () { /* keep the old content; try again next time */ })
        .then(function () { busy.delete(el); due.set(el, Date.now() + n * 1000); });
    });
  }
  setInterval(refreshTick, 1000);

  // ---- PromQL editor: completion and Ctrl+Enter ----
  var FUNCS = ["abs", "absent", "absent_over_time", "avg", "avg_over_time", "bottomk", "ceil",
    "changes", "clamp", "clamp_max", "clamp_min", "count", "count_over_time", "count_values",
    "day_of_week", "delta", "deriv", "exp", "floor", "group", "histogram_quantile",
    "idelta", "increase", "irate", "label_join", "label_replace", "last_over_time", "ln", "log2",
    "log10", "max", "max_over_time", "min", "min_over_time", "predict_linear", "quantile",
    "quantile_over_time", "rate", "resets", "round", "scalar", "sort", "sort_desc", "sqrt",
    "stddev", "stddev_over_time", "sum", "sum_over_time", "time", "timestamp", "topk", "vector",
    "without", "by", "on", "ignoring", "group_left", "group_right", "offset"];
  var fetched = {};
  function getJSON(path, done) {
    if (fetched[path]) { if (fetched[path].data) done(fetched[path].data); return; }
    fetched[path] = {};
    fetch(path, { credentials: "include" }).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (j) { if (j && Array.isArray(j.data)) { fetched[path].data = j.data; done(j.data); } })
      .catch(function () {});
  }
  function listFrom(id, api, state, key) {
    if (state[key]) return state[key];
    var dl = id ? document.getElementById(id) : null;
    var vals = dl ? Array.prototype.map.call(dl.querySelectorAll("option"), function (o) { return o.value; }) : [];
    if (vals.length) { state[key] = vals; return vals; }
    getJSON(api, function (d) { state[key] = d; });
    return [];
  }
  function context(text) {
    var depth = 0, inStr = null;
    for (var i = 0; i < text.length; i++) {
      var ch = text.charAt(i);
      if (inStr) { if (ch === "\\") i++; else if (ch === inStr) inStr = null; continue; }
      if (ch === '"' || ch === "'" || ch === "`") inStr = ch;
      else if (ch === "{") depth++;
      else if (ch === "}") depth = Math.max(0, depth - 1);
    }
    if (inStr) {
      var m = /([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*["'`]([^"'`]*)$/.exec(text);
      return m && depth > 0 ? { kind: "value", label: m[1], word: m[3] } : null;
    }
    var w = /[a-zA-Z_:][a-zA-Z0-9_:]*$/.exec(text);
    var word = w ? w[0] : "";
    var before = text.slice(0, text.length - word.length);
    var grouping = /(by|without|on|ignoring|group_left|group_right)\s*\([^)]*$/.test(before);
    return { kind: depth > 0 || grouping ? "label" : "metric", word: word };
  }
  function setupEditor(ta) {
    var state = {}, list = document.createElement("ul"), items = [], active = -1, ctx = null;
    list.className = "completions";
    list.id = ta.id + "-completions";
    list.setAttribute("role", "listbox");
    list.hidden = true;
    ta.parentNode.insertBefore(list, ta.nextSibling);
    ta.setAttribute("aria-autocomplete", "list");
    ta.setAttribute("aria-controls", list.id);
    function close() { list.hidden = true; items = []; active = -1; ta.removeAttribute("aria-activedescendant"); }
    function mark(i) {
      active = i;
      Array.prototype.forEach.call(list.children, function (li, j) { li.setAttribute("aria-selected", j === i ? "true" : "false"); });
      if (i >= 0) ta.setAttribute("aria-activedescendant", list.id + "-" + i);
    }
    function accept(i) {
      if (!ctx || i < 0 || i >= items.length) return;
      var pos = ta.selectionStart, start = pos - ctx.word.length;
      ta.value = ta.value.slice(0, start) + items[i] + ta.value.slice(pos);
      ta.selectionStart = ta.selectionEnd = start + items[i].length;
      close();
      ta.focus();
    }
    function show(cands) {
      var word = ctx.word.toLowerCase();
      items = cands.filter(function (c) { return c.toLowerCase().indexOf(word) === 0 && c !== ctx.word; }).slice(0, 12);
      list.textContent = "";
      if (!items.length || (!word && ctx.kind === "metric")) { close(); return; }
      items.forEach(function (c, i) {
        var li = document.createElement("li");
        li.id = list.id + "-" + i;
        li.setAttribute("role", "option");
        li.textContent = c;
        li.addEventListener("mousedown", function (e) { e.preventDefault(); accept(i); });
        list.appendChild(li);
      });
      list.hidden = false;
      mark(0);
    }
    function update() {
      if (ta.selectionStart !== ta.selectionEnd) { close(); return; }
      ctx = context(ta.value.slice(0, ta.selectionStart));
      if (!ctx) { close(); return; }
      if (ctx.kind === "value") {
        var c0 = ctx, path = "/api/v1/label/" + encodeURIComponent(ctx.label) + "/values";
        getJSON(path, function (vals) { if (ctx === c0) show(vals); });
        if (fetched[path] && fetched[path].data) show(fetched[path].data); else close();
        return;
      }
      if (ctx.kind === "label") {
        show(listFrom(ta.getAttribute("data-complete-labels"), "/api/v1/labels", state, "labels"));
      } else {
        var metrics = listFrom(ta.getAttribute("data-complete-metrics"), "/api/v1/label/__name__/values", state, "metrics");
        show(metrics.concat(FUNCS));
      }
    }
    ta.addEventListener("input", update);
    ta.addEventListener("blur", close);
    ta.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
        ev.preventDefault();
        if (ta.form) { if (ta.form.requestSubmit) ta.form.requestSubmit(); else ta.form.submit(); }
        return;
      }
      if (list.hidden) return;
      if (ev.key === "ArrowDown") { ev.preventDefault(); mark((active + 1) % items.length); }
      else if (ev.key === "ArrowUp") { ev.preventDefault(); mark((active - 1 + items.length) % items.length); }
      else if (ev.key === "Enter" || ev.key === "Tab") { ev.preventDefault(); accept(active); }
      else if (ev.key === "Escape") { ev.preventDefault(); close(); }
    });
  }
  function init() {
    document.querySelectorAll("textarea[data-complete-metrics]").forEach(setupEditor);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
// ---- theme: the header button cycles auto → light → dark, remembered in this browser.
// Without the script the theme follows the system's prefers-color-scheme.
(function () {
  if (typeof document === "undefined" || !document.documentElement || !document.querySelector) return;
  var KEY = "didban-theme", ORDER = ["auto", "light", "dark"];
  function stored() {
    try { return localStorage.getItem(KEY); } catch (e) { return null; }
  }
  function apply(theme) {
    if (ORDER.indexOf(theme) < 0) theme = "auto";
    document.documentElement.setAttribute("data-theme", theme);
    var b = document.querySelector("button.theme-toggle");
    if (b) {
      b.textContent = "Theme: " + theme;
      b.setAttribute("aria-label", "Colour theme: " + theme + " (click to change)");
    }
    return theme;
  }
  apply(stored() || document.documentElement.getAttribute("data-theme"));
  function init() {
    var b = document.querySelector("button.theme-toggle");
    if (!b) return;
    b.hidden = false;
    apply(stored() || "auto");
    b.addEventListener("click", function () {
      var now = document.documentElement.getAttribute("data-theme");
      var next = ORDER[(ORDER.indexOf(now) + 1) % ORDER.length];
      try { localStorage.setItem(KEY, next); } catch (e) { /* private mode: this page only */ }
      apply(next);
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
