//! A small real HTTP app and its users: gunicorn serving `tests/python/otel_wsgi_app.py`
//! (OpenTelemetry's WSGI middleware, spans over OTLP/HTTP to the server) and a thread sending
//! it [`PER_SECOND`] requests a second for the whole suite. Every n-th request goes to the
//! failing endpoint; n is what a scenario changes (normal traffic has a few errors, well
//! under `HttpErrorRateHigh`'s 1%).

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use didban_testkit::gunicorn::Gunicorn;

/// The app's `service.name` (the alert's `service_name`).
pub const SERVICE: &str = "checkout";

/// Requests a second: well above the rule's traffic floor (0.1/s, 30 in 5 minutes).
pub const PER_SECOND: u64 = 10;

/// Normal traffic: one request in this many fails (0.2%, under the 1% threshold).
pub const NORMAL_ERROR_EVERY: u64 = 500;

/// What the users got back.
#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    failed: AtomicU64,
    /// Answers other than the expected 200/500 (or no answer): the app misbehaved.
    wrong: AtomicU64,
}

/// The app and its users; both stop when dropped.
pub struct Traffic {
    error_every: Arc<AtomicU64>,
    counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
    users: Option<JoinHandle<()>>,
    _app: Gunicorn,
}

impl Traffic {
    /// Starts the app exporting to the server's OTLP/HTTP address `otlp_http`, and normal
    /// traffic.
    pub fn start(otlp_http: &str, dir: &Path) -> Traffic {
        let app_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/python");
        let endpoint = format!("http://{otlp_http}");
        let app = Gunicorn::start(
            &app_dir,
            "otel_wsgi_app:app",
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
                ("OTEL_SERVICE_NAME", SERVICE),
                ("OTEL_BSP_SCHEDULE_DELAY", "200"),
                // The SDK's own metrics/log exporters are not configured: spans only.
                ("OTEL_METRICS_EXPORTER", "none"),
                ("OTEL_LOGS_EXPORTER", "none"),
            ],
            &dir.join("gunicorn.log"),
            "/ready",
        );
        let error_every = Arc::new(AtomicU64::new(NORMAL_ERROR_EVERY));
        let counts = Arc::new(Counts::default());
        let stop = Arc::new(AtomicBool::new(false));
        let users = {
            let (error_every, counts, stop) = (error_every.clone(), counts.clone(), stop.clone());
            let base = app.url("");
            std::thread::spawn(move || users(&base, &error_every, &counts, &stop))
        };
        Traffic {
            error_every,
            counts,
            stop,
            users: Some(users),
            _app: app,
        }
    }

    /// From now on one request in `n` fails.
    pub fn fail_one_in(&self, n: u64) {
        self.error_every.store(n, Ordering::SeqCst);
    }

    /// (requests sent, of which answered 500). Panics when the app answered anything else:
    /// the figures would then not be the ground truth the scenario assumes.
    pub fn counts(&self) -> (u64, u64) {
        let wrong = self.counts.wrong.load(Ordering::SeqCst);
        assert_eq!(wrong, 0, "the app gave {wrong} unexpected answers (gunicorn.log)");
        (
            self.counts.sent.load(Ordering::SeqCst),
            self.counts.failed.load(Ordering::SeqCst),
        )
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(users) = self.users.take() {
            let _ = users.join();
        }
    }
}

/// Sends requests at [`PER_SECOND`] until `stop`; after a stall (a busy machine) it goes on
/// from now instead of sending the missed ones in a burst.
fn users(base: &str, error_every: &AtomicU64, counts: &Counts, stop: &AtomicBool) {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let period = Duration::from_millis(1000 / PER_SECOND);
    let mut next = Instant::now();
    let mut i: u64 = 0;
    while !stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        if now < next {
            std::thread::sleep(next - now);
        } else if now > next + period {
            next = now;
        }
        next += period;
        i += 1;
        let n = error_every.load(Ordering::SeqCst);
        let fail = n > 0 && i.is_multiple_of(n);
        let path = if fail { "/checkout/fail" } else { "/orders" };
        let want = if fail { 500 } else { 200 };
        counts.sent.fetch_add(1, Ordering::SeqCst);
        match client.get(format!("{base}{path}")).send() {
            Ok(r) if r.status().as_u16() == want => {
                if fail {
                    counts.failed.fetch_add(1, Ordering::SeqCst);
                }
            }
            _ => {
                counts.wrong.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}
