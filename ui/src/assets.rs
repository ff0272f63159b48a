//! Static assets compiled into the binary: the stylesheet (light and dark themes) and the one
//! progressive-enhancement script. Served with a long cache lifetime under a versioned path
//! so a new release is never mixed with a stale cached file. Open to everyone: the sign-in
//! page needs them.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use didban_auth::Need;

use crate::UiContext;

/// The stylesheet's URL, versioned by the crate version.
pub const CSS_PATH: &str = concat!("/ui/static/", env!("CARGO_PKG_VERSION"), "/didban.css");
/// The script's URL, versioned by the crate version.
pub const JS_PATH: &str = concat!("/ui/static/", env!("CARGO_PKG_VERSION"), "/didban.js");

/// One stylesheet from one file per area, so work on one area does not touch another's file.
const CSS: &str = concat!(
    include_str!("../assets/base.css"),
    include_str!("../assets/charts.css"),
    include_str!("../assets/dashboards.css"),
    include_str!("../assets/pages.css"),
    include_str!("../assets/auth.css"),
);
const JS: &str = concat!(
    include_str!("../assets/didban.js"),
    include_str!("../assets/pages.js")
);

/// Routes for the static assets and `/favicon.ico`; nobody needs to sign in for them.
pub fn router() -> Router<UiContext> {
    Router::new()
        .route(CSS_PATH, get(css))
        .route(JS_PATH, get(js))
        .route("/favicon.ico", get(favicon))
        .route_layer(crate::pages::require(Need::Open))
}

/// Browsers ask for `/favicon.ico` on every site; an empty answer instead of a 404 keeps
/// their consoles free of errors (no icon yet).
async fn favicon() -> Response {
    (
        StatusCode::NO_CONTENT,
        [(header::CACHE_CONTROL, "public, max-age=86400")],
    )
        .into_response()
}

async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        CSS,
    )
}

async fn js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        JS,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `--name: #rrggbb` custom properties of the first rule starting at `selector`.
    fn palette(selector: &str) -> Vec<(String, [f64; 3])> {
        let at = CSS.find(selector).unwrap_or_else(|| panic!("no rule {selector}"));
        let start = at + CSS[at..].find('{').unwrap() + 1;
        let body = &CSS[start..start + CSS[start..].find('}').unwrap()];
        let mut out = Vec::new();
        for decl in body.split(';') {
            let Some((name, value)) = decl.split_once(':') else {
                continue;
            };
            let (Some(name), Some(hex)) = (name.trim().rsplit("--").next(), value.trim().strip_prefix('#'))
            else {
                continue;
            };
            if hex.len() != 6 || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
                continue;
            }
            let channel = |i: usize| f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap()) / 255.0;
            out.push((name.to_string(), [channel(0), channel(2), channel(4)]));
        }
        out
    }

    fn luminance(rgb: [f64; 3]) -> f64 {
        let lin = |c: f64| {
            if c <= 0.03928 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * lin(rgb[0]) + 0.7152 * lin(rgb[1]) + 0.0722 * lin(rgb[2])
    }

    fn contrast(a: [f64; 3], b: [f64; 3]) -> f64 {
        let (la, lb) = (luminance(a), luminance(b));
        (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
    }

    #[test]
    fn text_colours_meet_wcag_aa_contrast_in_both_themes() {
        let light = palette(r#":root, [data-theme="light"]"#);
        let mut dark = light.clone();
        for (name, rgb) in palette(r#"[data-theme="dark"]"#) {
            if let Some(slot) = dark.iter_mut().find(|(n, _)| *n == name) {
                slot.1 = rgb;
            }
        }
        let auto_dark = palette(r#"[data-theme="auto"]"#);
        let names = |p: &[(String, [f64; 3])]| p.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(&auto_dark),
            names(&palette(r#"[data-theme="dark"]"#)),
            "the auto theme's dark block defines the same colours as the dark theme"
        );
        for (theme, colours) in [("light", &light), ("dark", &dark)] {
            let get = |n: &str| {
                colours
                    .iter()
                    .find(|(c, _)| c == n)
                    .unwrap_or_else(|| panic!("--{n}"))
                    .1
            };
            for text in ["fg", "muted", "accent", "danger", "warn", "ok"] {
                for background in ["bg", "panel"] {
                    let ratio = contrast(get(text), get(background));
                    assert!(
                        ratio >= 4.5,
                        "{theme}: --{text} on --{background} has contrast {ratio:.2}, below WCAG AA 4.5"
                    );
                }
            }
        }
        for (name, rgb) in &auto_dark {
            let dark_rgb = dark.iter().find(|(n, _)| n == name).unwrap().1;
            assert_eq!(*rgb, dark_rgb, "--{name} differs between dark and auto-dark");
        }
    }
}
