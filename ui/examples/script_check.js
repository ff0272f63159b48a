// Drives didban.js in a real browser; see chart_gallery.rs. Results go into #result.
document.addEventListener("DOMContentLoaded", function () {
  var out = document.getElementById("result");
  function say(line) { out.textContent += line + "\n"; }
  var results = [];
  function check(ok, what) { results.push((ok ? "PASS " : "FAIL ") + what); }
  var svg = document.querySelector("svg.chart");
  var vb = svg.viewBox.baseVal, r = svg.getBoundingClientRect();
  var plot = svg.getAttribute("data-plot").split(" ").map(Number);
  function client(fx, fy) {
    return { x: r.left + (plot[0] + plot[2] * fx) * r.width / vb.width, y: r.top + (plot[1] + plot[3] * fy) * r.height / vb.height };
  }
  function mouse(type, p, target) {
    (target || svg).dispatchEvent(new MouseEvent(type, { bubbles: true, clientX: p.x, clientY: p.y, button: 0 }));
  }
  mouse("mousemove", client(0.5, 0.5));
  var tip = document.querySelector(".chart-tooltip");
  check(tip && !tip.hidden && /1 MiB/.test(tip.textContent) && /2 MiB/.test(tip.textContent), "tooltip: " + (tip ? tip.textContent : "none"));
  var line = svg.querySelector("line.crosshair");
  check(line && line.getAttribute("visibility") === "visible", "crosshair");
  var btn = document.querySelector('.legend-toggle[data-series="1"]');
  btn.click();
  var path = svg.querySelector('path.series[data-series="1"]');
  check(path.classList.contains("series-hidden") && btn.getAttribute("aria-pressed") === "false", "legend hides series 1");
  mouse("mousemove", client(0.5, 0.5));
  check(!/2 MiB/.test(tip.textContent), "tooltip skips the hidden series");
  btn.click();
  check(!path.classList.contains("series-hidden"), "legend shows it again");
  var ta = document.getElementById("q"), list = document.getElementById("q-completions");
  function type(text) {
    ta.value = text;
    ta.selectionStart = ta.selectionEnd = text.length;
    ta.dispatchEvent(new Event("input", { bubbles: true }));
  }
  function key(k) { ta.dispatchEvent(new KeyboardEvent("keydown", { key: k, bubbles: true, cancelable: true })); }
  type("rate(http_requests_t");
  check(list && !list.hidden && list.textContent === "http_requests_total", "metric completion offers " + (list && list.textContent));
  key("Enter");
  check(ta.value === "rate(http_requests_total" && list.hidden, "Enter accepts: " + ta.value);
  type("sum(up{jo");
  check(!list.hidden && list.textContent === "job", "label completion inside braces");
  key("Escape");
  check(list.hidden, "Escape closes");
  type("sum by (ins");
  key("Tab");
  check(ta.value === "sum by (instance", "label completion in by (): " + ta.value);
  setTimeout(function () {
    check(document.getElementById("r").innerHTML === "new <b>fragment</b>", "auto-refresh replaced the content");
    // the zoom navigates: catch the navigation (Navigation API) and check its URL
    window.navigation.addEventListener("navigate", function (ev) {
      ev.preventDefault();
      var u = new URL(ev.destination.url);
      var a = Number(u.searchParams.get("from")), b = Number(u.searchParams.get("to"));
      var s = Number(svg.getAttribute("data-start-ms")), e = Number(svg.getAttribute("data-end-ms"));
      var third = (e - s) / 4;
      check(Math.abs(a - (s + third)) < 2000 && Math.abs(b - (e - third)) < 2000, "zoom to " + u.search);
      results.forEach(say);
    });
    mouse("mousedown", client(0.25, 0.5));
    mouse("mousemove", client(0.75, 0.5));
    mouse("mouseup", client(0.75, 0.5));
  }, 3500);
});
