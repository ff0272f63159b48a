//! Headless Chromium driven by Playwright (Python) for tests of the UI in a real browser.
//! The browser test runs where both are installed; elsewhere it is skipped loudly, unless
//! `DIDBAN_REQUIRE_BROWSER` is set (as `scripts/test.sh` and CI do), which turns a missing
//! browser into a failure, so CI never skips silently.

use std::path::PathBuf;

use crate::python::missing_module;

/// The Chromium binary: `$DIDBAN_CHROMIUM`, else Debian's `/usr/bin/chromium`.
pub fn chromium() -> PathBuf {
    PathBuf::from(std::env::var("DIDBAN_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()))
}

/// Why a browser test cannot run here (no Chromium, or python3 without Playwright), if it
/// cannot.
pub fn missing() -> Option<String> {
    let chromium = chromium();
    if !chromium.exists() {
        return Some(format!(
            "{} does not exist (apt-get install chromium)",
            chromium.display()
        ));
    }
    missing_module("playwright.sync_api")
}

/// True when the browser test `test` can run. When it cannot: panics if
/// `DIDBAN_REQUIRE_BROWSER` is set, else prints a loud skip notice and returns false.
pub fn available(test: &str) -> bool {
    let Some(why) = missing() else {
        return true;
    };
    if std::env::var_os("DIDBAN_REQUIRE_BROWSER").is_some() {
        panic!("DIDBAN_REQUIRE_BROWSER is set but the browser test cannot run: {why}");
    }
    eprintln!(
        "\n!!!!!!!! SKIPPING {test}: {why}\n!!!!!!!! (set DIDBAN_REQUIRE_BROWSER=1 to make this a failure)\n"
    );
    false
}
