//! Which colour each series gets: the palette (`s0`–`s9`, by position) unless the series is
//! an HTTP status (or status class), which takes its meaning's colour wherever it is drawn —
//! 2xx green, 3xx blue, 4xx amber, 5xx red — so successful traffic is never painted red.
//! A panel's `colors` (series name → colour name) overrides both.

use didban_store::model::Labels;

use super::options::ChartOptions;
use super::series::Series;

/// Colour names a panel's `colors` may give a series (theme-aware, as threshold colours).
pub const SERIES_COLORS: [&str; 6] = ["green", "blue", "orange", "yellow", "red", "purple"];

/// Labels that carry an HTTP status code or class, in the order they are looked at:
/// Prometheus client libraries (`code`, `status`, `status_code`), OpenTelemetry's
/// `http.response.status_code` as it reaches PromQL, and classes like `2xx`.
pub const STATUS_LABELS: [&str; 7] = [
    "status_code",
    "http_response_status_code",
    "http_status_code",
    "status",
    "code",
    "status_class",
    "http_status_class",
];

/// The colour class of a status text: `200`, `404`, `5xx`, `2XX` → `st-2xx` … `st-5xx`.
/// Anything else (`1xx`, `ok`, `ABC`, `20`) has no status colour.
pub fn status_class_of(text: &str) -> Option<&'static str> {
    let t = text.trim().as_bytes();
    if t.len() != 3 {
        return None;
    }
    let rest_digits = t[1..].iter().all(u8::is_ascii_digit);
    let rest_xx = t[1..].iter().all(|b| *b == b'x' || *b == b'X');
    if !rest_digits && !rest_xx {
        return None;
    }
    match t[0] {
        b'2' => Some("st-2xx"),
        b'3' => Some("st-3xx"),
        b'4' => Some("st-4xx"),
        b'5' => Some("st-5xx"),
        _ => None,
    }
}

/// The status colour class of a series' labels (the first status label present decides).
pub fn status_class(labels: &Labels) -> Option<&'static str> {
    for name in STATUS_LABELS {
        if let Some(v) = labels.get(name) {
            return status_class_of(v);
        }
    }
    None
}

/// The CSS class of series `i`'s colour: the colour `opts.colors` gives its name (`c-red`),
/// else its status colour, else the `i`-th palette colour (ten colours, repeating). The
/// chart, its legend and its tooltip all use this class.
pub fn color_class(series: &Series, i: usize, opts: &ChartOptions) -> String {
    for (name, color) in &opts.colors {
        if *name == series.name && SERIES_COLORS.contains(&color.as_str()) {
            return format!("c-{color}");
        }
    }
    match status_class(&series.labels) {
        Some(class) => class.to_string(),
        None => format!("s{}", i % 10),
    }
}
