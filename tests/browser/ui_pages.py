#!/usr/bin/env python3
"""Drives the Didban UI in headless Chromium (Playwright, Debian's /usr/bin/chromium).

Signs in through the form, visits every page in PAGES, checks that the page answers
without an HTTP error, that a CSS selector proving real content exists, that the browser
logged no console error and no uncaught exception, and saves a full-page screenshot per
page. Exits 1 with one line per failure.

Run by cli/tests/it/ui_browser.rs, which starts didban with data; by hand:

    python3 tests/browser/ui_pages.py --base-url http://127.0.0.1:9480 \
        --user admin --password secret --out target/ui-screenshots
"""

import argparse
import json
import os
import sys
import time
import traceback
import urllib.request
from urllib.parse import parse_qs, urlparse

from playwright.sync_api import sync_playwright

# ---------------------------------------------------------------------------------------
# The pages checked after signing in. One row per page:
#   name      screenshot file name (unique)
#   path      URL path and query
#   selector  CSS selector that must match at least `min` elements (default 1): choose one
#             that proves real data rendered, e.g. "svg.chart path.series" for a chart,
#             "table tbody tr" for a table
#   action    optional: a function(page, base_url) run after the selector matched, for
#             interactions (see ACTIONS below); it raises AssertionError on failure
#
# Extending (the lead adds rows here as the page areas are merged), for example:
#   {"name": "explore", "path": "/explore?query=up", "selector": "svg.chart path.series",
#    "action": drag_to_zoom},
#   {"name": "dashboards", "path": "/dashboards", "selector": "table tbody tr"},
#   {"name": "logs", "path": "/logs?query=error", "selector": "table tbody tr"},
#   {"name": "traces", "path": "/traces?service=checkout", "selector": "table tbody tr"},
#   {"name": "silence-new", "path": "/alerts/silences/new", "selector": "form",
#    "action": submit_form({"matchers": 'alertname="Test"', "comment": "browser test"},
#                          expect_selector="table tbody tr")},
# ---------------------------------------------------------------------------------------


# Every visible form control must have an accessible name (a <label>, aria-label,
# aria-labelledby or title; buttons may use their text): what a screen reader announces.
UNNAMED_CONTROLS = """() => {
  const bad = [];
  const controls = document.querySelectorAll(
    'input:not([type=hidden]), select, textarea, button');
  for (const el of controls) {
    if (el.hidden || el.closest('[hidden]')) continue;
    const named = (el.labels && el.labels.length > 0)
      || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')
      || el.getAttribute('title')
      || ((el.tagName === 'BUTTON') && el.textContent.trim())
      || ((el.type === 'submit' || el.type === 'button') && el.value);
    if (!named) bad.push(el.outerHTML.slice(0, 160));
  }
  return bad;
}"""


def drag_to_zoom_on(chart_selector):
    """An action that drags across the first chart matching `chart_selector` and expects
    the time range in the URL to change."""
    return lambda page, base_url: drag_to_zoom(page, base_url, chart_selector)


def drag_to_zoom(page, base_url, chart_selector="svg.chart"):
    """Drags across the first chart and expects the time range in the URL to change."""
    before = page.url
    box = page.locator(chart_selector).first.bounding_box()
    assert box, "no chart to drag on"
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.3, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, y, steps=8)
    page.mouse.up()
    # The script navigates to the zoomed URL; wait for that navigation, not the old page.
    page.wait_for_url(lambda url: url != before, timeout=10_000)
    page.wait_for_load_state("load")
    after = page.url
    q_before = parse_qs(urlparse(before).query)
    q_after = parse_qs(urlparse(after).query)
    assert q_after.get("from") != q_before.get("from") or q_after.get("to") != q_before.get(
        "to"
    ), f"drag-to-zoom did not change from/to: {before} -> {after}"


def toggle_theme(page, base_url):
    """Clicks the theme button twice (auto → light → dark) and expects the page's theme to
    follow and to stay after a reload."""
    button = page.locator("button.theme-toggle")
    assert button.is_visible(), "the theme button is not shown"
    button.click()
    assert page.get_attribute("html", "data-theme") == "light"
    button.click()
    assert page.get_attribute("html", "data-theme") == "dark"
    page.reload()
    page.wait_for_load_state("load")
    assert page.get_attribute("html", "data-theme") == "dark", "the choice did not stick"
    button = page.locator("button.theme-toggle")
    button.click()  # back to auto for the pages after this one
    assert page.get_attribute("html", "data-theme") == "auto"


# Set by main() from --otlp-http / --ingest-token: where and how live_tail pushes a record.
INGEST = {"url": None, "token": None}


def live_tail(page, base_url):
    """With the tail page open, pushes a log record over OTLP/HTTP and expects the page to
    show it without a reload (the script streams it from the SSE tail)."""
    if not INGEST["url"]:
        raise AssertionError("--otlp-http and --ingest-token are needed for the live tail check")
    page.wait_for_function(
        "() => (document.getElementById('log-tail-status') || {}).textContent"
        " && document.getElementById('log-tail-status').textContent.startsWith('Streaming')",
        timeout=10_000,
    )
    marker = f"tailcheck-{int(time.time() * 1000)}"
    now = time.time_ns()
    body = {"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "tail"}}]},
        "scopeLogs": [{"logRecords": [{
            "timeUnixNano": str(now), "severityNumber": 13,
            "body": {"stringValue": f"{marker} <b>not bold</b>"}}]}]}]}
    req = urllib.request.Request(
        INGEST["url"] + "/v1/logs", data=json.dumps(body).encode(), method="POST",
        headers={"content-type": "application/json",
                 "authorization": f"Bearer {INGEST['token']}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200, f"OTLP log push: HTTP {r.status}"
    page.wait_for_selector(f"text={marker}", timeout=15_000)
    assert page.locator("ol.log-list b").count() == 0, "a streamed body was rendered as HTML"


def open_exemplar(page, base_url):
    """Clicks an exemplar dot (a link drawn over a latency chart) and expects the waterfall
    of the trace it names."""
    dot = page.locator("a.exemplar").first
    href = dot.get_attribute("href")
    assert href and href.startswith("/traces/"), f"exemplar link {href!r}"
    with page.expect_navigation():
        page.locator("a.exemplar circle").first.click()
    assert urlparse(page.url).path == href, f"{page.url} is not {href}"
    page.wait_for_selector(".crit-seg", timeout=10_000)


def submit_form(fields, form="main form", expect_selector=None):
    """An action that fills `fields` (input name -> value) in `form`, submits it and
    expects `expect_selector` on the page that comes back."""

    def action(page, base_url):
        for name, value in fields.items():
            page.fill(f'{form} [name="{name}"]', value)
        with page.expect_navigation():
            page.click(f'{form} [type="submit"]')
        if expect_selector:
            page.wait_for_selector(expect_selector, timeout=10_000)

    return action


PAGES = [
    {"name": "home", "path": "/", "selector": "dl.summary dd", "min": 3},
    {"name": "admin-users", "path": "/admin/users", "selector": "table.users tbody tr"},
    {"name": "admin-tokens", "path": "/admin/tokens", "selector": "form.auth-form"},
    {"name": "theme", "path": "/", "selector": "button.theme-toggle", "action": toggle_theme},
    {"name": "dashboards", "path": "/dashboards", "selector": 'a[href="/dashboards/host"]'},
    # The server started seconds ago: its own host and self metrics have a few points each,
    # so the legends (min/max/avg/last of every series) are what proves data was drawn.
    {"name": "dashboard-host", "path": "/dashboards/host?from=now-5m",
     "selector": ".panel .legend tbody tr", "min": 10,
     "action": drag_to_zoom_on(".panel-timeseries svg.chart")},
    {"name": "dashboard-didban", "path": "/dashboards/didban?from=now-5m",
     "selector": ".panel .legend tbody tr", "min": 3},
    {"name": "dashboard-import", "path": "/dashboards/import", "selector": "textarea#grafana-json"},
    # A native histogram as heatmap cells; its p95 with exemplar dots that open the trace.
    {"name": "dashboard-native", "path": "/dashboards/native?from=now-15m",
     "selector": "svg.chart-heatmap .cells rect", "action": open_exemplar},
    {"name": "explore-graph", "path": "/explore?q=queue_depth&from=now-10m",
     "selector": "svg.chart path.series", "min": 2, "action": drag_to_zoom},
    {"name": "explore-table", "path": "/explore?q=queue_depth&view=table&from=now-10m",
     "selector": "table tbody tr", "min": 2},
    {"name": "logs", "path": "/logs?q=*&from=now-15m", "selector": ".log.sev-error"},
    {"name": "logs-tail", "path": "/logs/tail?q=tailcheck", "selector": "#log-tail-status",
     "action": live_tail},
    {"name": "traces", "path": "/traces?service=checkout&from=now-15m", "selector": "svg .dot"},
    {"name": "trace", "path": "/traces/5b8efff798038103d269b633813fc60c", "selector": ".crit-seg"},
    {"name": "services", "path": "/services?from=now-15m", "selector": "table tbody tr"},
    {"name": "serverless", "path": "/serverless?from=now-15m", "selector": "table tbody tr"},
    {"name": "alerts", "path": "/alerts", "selector": ".state-firing"},
    {"name": "cardinality", "path": "/cardinality", "selector": "table.cardinality-table tbody tr",
     "min": 4},
    {"name": "silence-new", "path": "/alerts/silences/new?matcher=alertname%3D%22BrowserTestAlert%22",
     "selector": "main form",
     "action": submit_form({"created_by": "browser", "comment": "silenced by the browser test"},
                           expect_selector="text=silenced by the browser test")},
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--out", required=True, help="directory for the screenshots")
    ap.add_argument("--otlp-http", help="OTLP/HTTP base URL, for the live tail check")
    ap.add_argument("--ingest-token", help="API token with the ingest scope, for the same")
    ap.add_argument(
        "--chromium",
        default=os.environ.get("DIDBAN_CHROMIUM", "/usr/bin/chromium"),
        help="Chromium executable (no browser download needed)",
    )
    args = ap.parse_args()
    base = args.base_url.rstrip("/")
    INGEST["url"] = args.otlp_http.rstrip("/") if args.otlp_http else None
    INGEST["token"] = args.ingest_token
    os.makedirs(args.out, exist_ok=True)
    failures = []
    problems = []  # console errors and page errors of the page being checked

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=args.chromium, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.on(
            "console",
            lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        # Console errors about failed loads do not name the URL; this does.
        page.on(
            "response",
            lambda r: problems.append(f"HTTP {r.status} for {r.url}")
            if r.status >= 400 and r.request.resource_type != "document"
            else None,
        )

        def shot(name):
            path = os.path.join(args.out, f"{name}.png")
            page.screenshot(path=path, full_page=True)
            return path

        def check(name, fn):
            problems.clear()
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - every failure is reported, not raised
                failures.append(f"{name}: {type(e).__name__}: {e}")
                traceback.print_exc()
            if problems:
                failures.append(f"{name}: " + "; ".join(problems))
            try:
                print(f"  {name}: screenshot {shot(name)}")
            except Exception as e:  # noqa: BLE001
                failures.append(f"{name}: screenshot failed: {e}")

        # Anonymous: any page leads to the sign-in form, which remembers where to go.
        def anonymous_redirect():
            r = page.goto(f"{base}/admin/users")
            assert r is not None and r.ok, f"status {r and r.status}"
            assert urlparse(page.url).path == "/login", f"not redirected to /login: {page.url}"
            page.wait_for_selector('form.auth-form label[for="login-user"]')

        check("login", anonymous_redirect)

        def wrong_password():
            page.fill("#login-user", args.user)
            page.fill("#login-password", "definitely-wrong")
            with page.expect_navigation():
                page.click('form.auth-form button[type="submit"]')
            text = page.inner_text(".auth-error")
            assert "Wrong user name or password" in text, text

        # A 401 answer is expected here and Chromium logs it as a console error.
        def wrong_password_check():
            wrong_password()
            problems[:] = [x for x in problems if "401" not in x]

        check("login-wrong-password", wrong_password_check)

        def sign_in():
            page.goto(f"{base}/login?next=/admin/users")
            page.fill("#login-user", args.user)
            page.fill("#login-password", args.password)
            with page.expect_navigation():
                page.click('form.auth-form button[type="submit"]')
            assert urlparse(page.url).path == "/admin/users", f"after sign-in: {page.url}"
            cookies = {c["name"]: c for c in context.cookies()}
            c = cookies.get("didban_session")
            assert c and c["httpOnly"] and c["sameSite"] == "Lax", f"session cookie: {c}"

        check("signed-in", sign_in)

        for row in PAGES:
            def visit(row=row):
                r = page.goto(base + row["path"])
                assert r is not None, "no response"
                assert r.status < 400, f"HTTP {r.status}"
                page.wait_for_selector(row["selector"], timeout=10_000)
                n = page.locator(row["selector"]).count()
                assert n >= row.get("min", 1), f"{n} × {row['selector']!r}, want ≥ {row.get('min', 1)}"
                unnamed = page.evaluate(UNNAMED_CONTROLS)
                assert not unnamed, f"form controls without an accessible name: {unnamed}"
                if row.get("action"):
                    row["action"](page, base)

            check(row["name"], visit)

        # Sign out through the frame's link and the confirmation button.
        def sign_out():
            page.goto(f"{base}/")
            with page.expect_navigation():
                page.click("header .account a.signout")
            with page.expect_navigation():
                page.click('form[action="/logout"] button[type="submit"]')
            assert urlparse(page.url).path == "/login", f"after sign-out: {page.url}"
            page.goto(f"{base}/admin/users")
            assert urlparse(page.url).path == "/login", "the session still works after sign-out"

        check("signed-out", sign_out)

        browser.close()

    if failures:
        print(f"\n{len(failures)} UI check(s) failed:", file=sys.stderr)
        for f in failures:
            print(f"  FAIL {f}", file=sys.stderr)
        sys.exit(1)
    print(f"all {len(PAGES) + 4} UI checks passed; screenshots in {args.out}")


if __name__ == "__main__":
    main()
