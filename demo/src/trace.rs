//! Building one trace: the services' resources, a cursor that lays child spans out one
//! after the other, and client spans for PostgreSQL, Redis and outbound HTTP that also count
//! what the database and cache see ([`Activity`]).

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::Span;

use super::catalog::QUERIES;
use super::otlp::{kv, kv_i, log, severity, SpanBuilder};
use super::rng::Rng;

/// A service instance that emits spans and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Svc {
    /// `shop-web` on `web-1` (0) or `web-2` (1).
    Web(u8),
    /// `checkout` on `web-2`.
    Checkout,
    /// `shop-worker` (Celery) on `worker-1`.
    Worker,
}

impl Svc {
    /// `service.name`.
    pub fn name(self) -> &'static str {
        match self {
            Svc::Web(_) => "shop-web",
            Svc::Checkout => "checkout",
            Svc::Worker => "shop-worker",
        }
    }

    /// The host it runs on.
    pub fn host(self) -> &'static str {
        match self {
            Svc::Web(0) => "web-1",
            Svc::Web(_) | Svc::Checkout => "web-2",
            Svc::Worker => "worker-1",
        }
    }

    /// The resource attributes (OpenTelemetry Python SDK with the Django, psycopg2, redis,
    /// requests and Celery instrumentations).
    pub fn resource(self) -> Vec<KeyValue> {
        let (version, port) = match self {
            Svc::Web(_) => ("2.14.1", "8000"),
            Svc::Checkout => ("1.6.0", "8001"),
            Svc::Worker => ("2.14.1", ""),
        };
        let instance = if port.is_empty() {
            format!("{}:celery", self.host())
        } else {
            format!("{}:{port}", self.host())
        };
        vec![
            kv("service.name", self.name()),
            kv("service.version", version),
            kv("service.instance.id", &instance),
            kv("host.name", self.host()),
            kv("deployment.environment.name", "demo"),
            kv("telemetry.sdk.language", "python"),
            kv("telemetry.sdk.name", "opentelemetry"),
            kv("telemetry.sdk.version", "1.28.2"),
            kv("process.runtime.name", "cpython"),
            kv("process.runtime.version", "3.12.7"),
        ]
    }
}

/// What the database and cache saw, cumulative since the demo started; the backend
/// metrics are computed from it.
#[derive(Debug, Clone, Default)]
pub struct Activity {
    /// Calls per statement of [`QUERIES`].
    pub query_calls: Vec<f64>,
    /// Seconds per statement.
    pub query_seconds: Vec<f64>,
    /// Rows per statement.
    pub query_rows: Vec<f64>,
    /// Redis GET hits.
    pub redis_hits: f64,
    /// Redis GET misses.
    pub redis_misses: f64,
    /// Redis commands.
    pub redis_commands: f64,
    /// HTTP requests served by shop-web and checkout.
    pub requests: f64,
    /// Requests that failed with a 5xx.
    pub failed_requests: f64,
    /// Celery tasks finished, per queue of [`super::catalog::QUEUES`].
    pub tasks_done: [f64; 3],
}

impl Activity {
    /// All zero.
    pub fn new() -> Activity {
        Activity {
            query_calls: vec![0.0; QUERIES.len()],
            query_seconds: vec![0.0; QUERIES.len()],
            query_rows: vec![0.0; QUERIES.len()],
            ..Default::default()
        }
    }
}

/// One trace being built: spans and logs per service, and a time cursor.
pub struct Trace {
    /// The trace id.
    pub trace_id: Vec<u8>,
    /// Where the next child span starts (ms since the epoch).
    pub cursor: f64,
    /// Finished spans.
    pub spans: Vec<(Svc, Span)>,
    /// Log records.
    pub logs: Vec<(Svc, LogRecord)>,
}

/// Statement durations above this are logged as slow (WARN).
pub const SLOW_QUERY_MS: f64 = 500.0;

impl Trace {
    /// A new trace whose first child starts at `start_ms`.
    pub fn new(rng: &mut Rng, start_ms: f64) -> Trace {
        Trace {
            trace_id: rng.id(16),
            cursor: start_ms,
            spans: Vec::new(),
            logs: Vec::new(),
        }
    }

    /// Adds a finished span.
    pub fn push(&mut self, svc: Svc, span: Span) {
        self.spans.push((svc, span));
    }

    /// Adds a log record of the trace inside span `span_id`.
    pub fn log(&mut self, svc: Svc, sev: i32, body: &str, span_id: &[u8], attrs: Vec<KeyValue>) {
        let record = log(self.cursor, sev, body, &self.trace_id, span_id, attrs);
        self.logs.push((svc, record));
    }

    /// A PostgreSQL statement by `svc` under `parent`; `slow_ms` is added to its duration
    /// (an outlier). Returns the duration in ms.
    pub fn db(
        &mut self,
        rng: &mut Rng,
        act: &mut Activity,
        svc: Svc,
        parent: &[u8],
        qi: usize,
        slow_ms: f64,
    ) -> f64 {
        let Some(query) = QUERIES.get(qi) else {
            return 0.0;
        };
        let ms = rng.lognormal(query.median_ms, query.sigma) + slow_ms.max(0.0);
        let rows = (query.rows * rng.range(0.5, 1.5)).round().max(1.0);
        let span = SpanBuilder::new(
            &self.trace_id,
            rng.id(8),
            parent,
            &format!("{} {}", query.op, query.table),
            SpanKind::Client,
            self.cursor,
            ms,
        )
        .attrs(vec![
            kv("db.system", "postgresql"),
            kv("db.system.name", "postgresql"),
            kv("db.name", "shop"),
            kv("db.namespace", "shop"),
            kv("db.user", "shop"),
            kv("db.operation", query.op),
            kv("db.sql.table", query.table),
            kv("db.statement", query.text),
            kv("server.address", super::catalog::DB_HOST),
            kv_i("server.port", 5432),
        ]);
        let span_id = span.id().to_vec();
        self.cursor += ms;
        if ms > SLOW_QUERY_MS {
            let body = format!("Slow query ({:.2} s): {}", ms / 1000.0, query.text);
            self.log(
                svc,
                severity::WARN,
                &body,
                &span_id,
                vec![
                    kv("logger.name", "django.db.backends"),
                    kv("db.statement", query.text),
                    kv_i("db.duration_ms", ms.round() as i64),
                ],
            );
        }
        self.push(svc, span.build());
        self.cursor += rng.range(0.05, 0.3);
        act.query_calls[qi] += 1.0;
        act.query_seconds[qi] += ms / 1000.0;
        act.query_rows[qi] += rows;
        ms
    }

    #[allow(clippy::too_many_arguments)]
    /// A Redis command (`GET`, `SETEX`, …) on `key`; for `GET` returns whether it hit.
    pub fn redis(
        &mut self,
        rng: &mut Rng,
        act: &mut Activity,
        svc: Svc,
        parent: &[u8],
        cmd: &str,
        key: &str,
        hit_ratio: f64,
    ) -> bool {
        let ms = rng.lognormal(0.35, 0.35);
        let statement = if cmd == "GET" || cmd == "DEL" {
            format!("{cmd} {key}")
        } else {
            format!("{cmd} {key} ? ?")
        };
        let span = SpanBuilder::new(
            &self.trace_id,
            rng.id(8),
            parent,
            cmd,
            SpanKind::Client,
            self.cursor,
            ms,
        )
        .attrs(vec![
            kv("db.system", "redis"),
            kv("db.system.name", "redis"),
            kv("db.statement", &statement),
            kv_i("db.redis.database_index", 0),
            kv("server.address", super::catalog::REDIS_HOST),
            kv_i("server.port", 6379),
        ]);
        self.push(svc, span.build());
        self.cursor += ms + rng.range(0.05, 0.2);
        act.redis_commands += 1.0;
        if cmd == "GET" {
            let hit = rng.chance(hit_ratio);
            if hit {
                act.redis_hits += 1.0;
            } else {
                act.redis_misses += 1.0;
            }
            return hit;
        }
        false
    }

    /// An outbound HTTP client span (the `requests` instrumentation) to `url` lasting
    /// `ms` with `status` (0: no answer, a timeout). Returns the span id, for the callee's
    /// server span.
    #[allow(clippy::too_many_arguments)]
    pub fn http_client(
        &mut self,
        rng: &mut Rng,
        svc: Svc,
        parent: &[u8],
        method: &str,
        url: &str,
        host: &str,
        status: u16,
        ms: f64,
    ) -> Vec<u8> {
        let mut attrs = vec![
            kv("http.request.method", method),
            kv("url.full", url),
            kv("server.address", host),
        ];
        if status > 0 {
            attrs.push(kv_i("http.response.status_code", i64::from(status)));
        }
        let mut span = SpanBuilder::new(
            &self.trace_id,
            rng.id(8),
            parent,
            method,
            SpanKind::Client,
            self.cursor,
            ms,
        )
        .attrs(attrs);
        if status == 0 {
            span = span.exception(
                "requests.exceptions.ReadTimeout",
                &format!("HTTPSConnectionPool(host='{host}', port=443): Read timed out. (read timeout=5)"),
                &format!("Traceback (most recent call last):\n  File \"/app/.venv/lib/python3.12/site-packages/urllib3/connectionpool.py\", line 536, in _make_request\n    response = conn.getresponse()\nTimeoutError: The read operation timed out\n\nrequests.exceptions.ReadTimeout: HTTPSConnectionPool(host='{host}', port=443): Read timed out. (read timeout=5)"),
            );
        } else if status >= 500 {
            span = span.error(&format!("HTTP {status}"));
        }
        let id = span.id().to_vec();
        self.push(svc, span.build());
        self.cursor += ms + rng.range(0.05, 0.3);
        id
    }
}

/// A Python traceback ending in `exc_type: message`, as Django logs it.
pub fn traceback(view_file: &str, function: &str, exc_type: &str, message: &str) -> String {
    format!(
        "Traceback (most recent call last):\n  File \"/app/.venv/lib/python3.12/site-packages/django/core/handlers/exception.py\", line 55, in inner\n    response = get_response(request)\n  File \"/app/.venv/lib/python3.12/site-packages/django/core/handlers/base.py\", line 197, in _get_response\n    response = wrapped_callback(request, *callback_args, **callback_kwargs)\n  File \"/app/shop/{view_file}\", line 88, in {function}\n    return render(request, template, context)\n{exc_type}: {message}"
    )
}
