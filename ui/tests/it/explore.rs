//! `/explore` over real stores: graph, table, errors with their position, completion lists.
#![allow(clippy::unwrap_used)]

use crate::support::{append, enc, get, now_ms, test_ui};
use axum::http::StatusCode;

/// Two series over the last 30 minutes, one sample every 15 s.
async fn seed(ctx: &didban_ui::UiContext) -> i64 {
    let now = now_ms();
    let start = now - 30 * 60 * 1000;
    let times: Vec<i64> = (0..120).map(|i| start + i * 15_000).collect();
    let temps: Vec<(i64, f64)> = times.iter().map(|&t| (t, 21.5)).collect();
    append(ctx, &[("__name__", "room_temperature"), ("room", "lab")], &temps).await;
    let reqs: Vec<(i64, f64)> = times
        .iter()
        .enumerate()
        .map(|(i, &t)| (t, i as f64 * 10.0))
        .collect();
    append(ctx, &[("__name__", "http_requests_total"), ("job", "api")], &reqs).await;
    now
}

#[tokio::test]
async fn graph_draws_the_series_with_legend_and_inspector() {
    let ui = test_ui();
    seed(&ui.ctx).await;
    let (status, html) = get(&ui.ctx, "/explore?q=room_temperature&from=now-1h&to=now").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    // one data path with real points (a move and many lines)
    let path = html
        .split(r#"<path class="series s0""#)
        .nth(1)
        .expect("a series path");
    let d = path.split(r#" d=""#).nth(1).unwrap().split('"').next().unwrap();
    assert!(d.starts_with('M') && d.matches('L').count() > 50, "{d}");
    assert!(
        path.contains(r#"data-values="21.5 21.5 "#),
        "tooltip data carries the value"
    );
    assert!(html.contains(r#"id="explore-chart""#) && html.contains(r#"data-chart="explore-chart""#));
    // legend with the series name and its value; inspector with the work done
    assert!(
        html.contains(r#"room_temperature{room=&quot;lab&quot;}"#),
        "{html}"
    );
    assert!(html.contains(r#"<td class="num">21.5</td>"#), "{html}");
    assert!(html.contains("Query inspector") && html.contains("Samples loaded"));
    assert!(html.contains("<dt>Step</dt><dd>3s (3000 ms)</dd>"), "{html}");
    // the editor keeps the query and the range
    assert!(html.contains(">room_temperature</textarea>"));
    assert!(html.contains(r#"value="now-1h""#));
    // the resolved range in words
    assert!(
        html.contains(r#"<p class="hint explore-range">20"#) && html.contains(" UTC – 20"),
        "{html}"
    );
}

#[tokio::test]
async fn table_shows_the_instant_values() {
    let ui = test_ui();
    seed(&ui.ctx).await;
    let q = enc("rate(http_requests_total[5m]) or room_temperature");
    let (status, html) = get(&ui.ctx, &format!("/explore?q={q}&view=table")).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains(r#"<table class="series-table">"#), "{html}");
    assert!(html.contains("<td>lab</td>"), "{html}");
    assert!(html.contains(r#"<td class="num">21.5</td>"#), "{html}");
    // 10 per 15 s is 0.666… per second
    assert!(html.contains(r#"<td class="num">0.666"#), "{html}");
    assert!(html.contains("Evaluated at"));
}

#[tokio::test]
async fn parse_errors_point_at_the_position() {
    let ui = test_ui();
    let q = enc("sum(rate(http_requests_total[5m]) by (job)");
    let (status, html) = get(&ui.ctx, &format!("/explore?q={q}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        html.contains("Parse error:") && html.contains("unclosed left parenthesis"),
        "{html}"
    );
    // the unclosed parenthesis is the fourth character
    assert!(html.contains("at line 1, column 4"), "{html}");
    assert!(html.contains("\n   <span class=\"caret\">^</span>"), "{html}");

    let (status, html) = get(&ui.ctx, &format!("/explore?q={}", enc("up{job=\"a\"} foo"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("column 13"), "{html}");
    // the query text is escaped in the marker and the editor
    assert!(html.contains("up{job=&quot;a&quot;} foo\n"), "{html}");
}

#[tokio::test]
async fn bad_parameters_are_named() {
    let ui = test_ui();
    let (status, html) = get(&ui.ctx, "/explore?q=up&from=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("yesterday"), "{html}");
    let (status, html) = get(&ui.ctx, "/explore?q=up&step=1ms&from=now-7d").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("11000 points"), "{html}");
    let (status, html) = get(&ui.ctx, "/explore?q=up&view=pie").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("pie"), "{html}");
    let (status, html) = get(&ui.ctx, &format!("/explore?q={}", enc("rate(up)"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("expected type matrix"), "{html}");
}

#[tokio::test]
async fn names_for_completion_work_without_script() {
    let ui = test_ui();
    seed(&ui.ctx).await;
    let (status, html) = get(&ui.ctx, "/explore").await;
    assert_eq!(status, StatusCode::OK);
    let metrics = html.split(r#"<datalist id="explore-metrics">"#).nth(1).unwrap();
    let metrics = metrics.split("</datalist>").next().unwrap();
    assert!(
        metrics.contains(
            r#"<option value="http_requests_total"></option><option value="room_temperature"></option>"#
        ),
        "{html}"
    );
    assert!(html.contains(r#"<option value="room"></option>"#), "{html}");
    assert!(!html.contains(r#"<option value="__name__">"#));
    assert!(
        html.contains(r#"href="/explore?q=room_temperature&amp;from=now-1h&amp;to=now&amp;view=graph""#),
        "{html}"
    );
    assert!(
        html.contains("Metrics seen in the last 15 minutes of the range (2)"),
        "{html}"
    );
    assert!(html.contains(r#"<label for="explore-q">PromQL query</label>"#));
}

#[tokio::test]
async fn query_text_is_escaped() {
    let ui = test_ui();
    let (_, html) = get(
        &ui.ctx,
        &format!("/explore?q={}", enc("up{a=\"</textarea><script>x</script>\"}")),
    )
    .await;
    assert!(!html.contains("<script>x</script>"), "{html}");
    assert!(
        html.contains(r#"&lt;/textarea&gt;&lt;script&gt;x&lt;/script&gt;&quot;}</textarea>"#),
        "{html}"
    );
    assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"), "{html}");
}
