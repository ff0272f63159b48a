//! The Django shop `shop-web`: visitors' requests as traces (server span, PostgreSQL, Redis,
//! calls to `checkout`, Celery publishes), their log records (access, slow query, error with
//! traceback, django-axes failed logins, 404s of a scanner) and the Django
//! `prometheus_client` metrics. The checkout service and the Celery worker are in
//! [`super::worker`].

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use super::catalog::{
    q, Route, ATTACKED_USERS, BRUTE_FORCE_CLIENT, CLIENTS, PRODUCTS, ROUTES, SCANNED, SCANNER_CLIENT, USERS,
    USER_AGENTS,
};
use super::django::DjangoMetrics;
use super::otlp::{kv, kv_i, resource_logs, resource_spans, severity, Output, SpanBuilder};
use super::rng::Rng;
use super::trace::{traceback, Activity, Svc, Trace};
use super::worker::{self, Worker};

/// Requests per second at `--rate 1`, before the traffic wave.
pub const BASE_RPS: f64 = 4.0;

/// Share of requests failing with an unhandled exception (500).
const ERROR_RATE: f64 = 0.005;
/// Share of requests with one pathologically slow statement.
const SLOW_RATE: f64 = 0.006;

/// Attack schedule: every `period` an attack runs `active` long, starting `lead` before
/// the demo goes live so that one is on screen at once.
pub struct Schedule {
    /// Minutes between starts.
    pub period_min: f64,
    /// Minutes each lasts.
    pub active_min: f64,
    /// Minutes before the live start when one begins.
    pub lead_min: f64,
}

impl Schedule {
    /// Whether an episode runs at `t_ms`, given the live start.
    pub fn active(&self, t_ms: f64, live_start_ms: f64) -> bool {
        let since = (t_ms - (live_start_ms - self.lead_min * 60_000.0)) / 60_000.0;
        since.rem_euclid(self.period_min) < self.active_min
    }
}

/// The brute-force client: 10 attempts a minute for 6 minutes every 20 minutes.
pub const BRUTE_FORCE: Schedule = Schedule {
    period_min: 20.0,
    active_min: 6.0,
    lead_min: 2.0,
};
/// The scanner: 40 requests a minute for 7 minutes every 30 minutes.
pub const SCANNER: Schedule = Schedule {
    period_min: 30.0,
    active_min: 7.0,
    lead_min: 4.0,
};

/// The web tier's simulation state.
pub struct Web {
    /// What the database and cache saw.
    pub activity: Activity,
    django: DjangoMetrics,
    worker: Worker,
    /// Failed attempts per attacked user name in the current attack (django-axes' count).
    axes_failures: BTreeMap<&'static str, u32>,
    live_start_ms: f64,
}

/// Everything collected in one interval, grouped for sending.
#[derive(Default)]
struct Collected {
    spans: BTreeMap<Svc, Vec<opentelemetry_proto::tonic::trace::v1::Span>>,
    logs: BTreeMap<Svc, Vec<opentelemetry_proto::tonic::logs::v1::LogRecord>>,
}

impl Collected {
    fn take(&mut self, trace: Trace) {
        for (svc, span) in trace.spans {
            self.spans.entry(svc).or_default().push(span);
        }
        for (svc, record) in trace.logs {
            self.logs.entry(svc).or_default().push(record);
        }
    }
}

/// The traffic wave: a slow swell over 45 minutes plus a faster ripple.
pub fn wave(t_ms: f64) -> f64 {
    let minutes = t_ms / 60_000.0;
    1.0 + 0.35 * (2.0 * std::f64::consts::PI * minutes / 45.0).sin()
        + 0.1 * (2.0 * std::f64::consts::PI * minutes / 7.0).sin()
}

impl Web {
    /// A fresh web tier; attacks are scheduled relative to `live_start_ms`.
    pub fn new(live_start_ms: f64) -> Web {
        Web {
            activity: Activity::new(),
            django: DjangoMetrics::default(),
            worker: Worker::new(),
            axes_failures: BTreeMap::new(),
            live_start_ms,
        }
    }

    /// Simulates requests starting in `[t0, t1)` (ms) into `out`.
    pub fn tick(&mut self, rng: &mut Rng, t0: f64, t1: f64, rate: f64, out: &mut Output) {
        let mut got = Collected::default();
        let seconds = (t1 - t0) / 1000.0;
        let n = rng.poisson(BASE_RPS * rate * wave(t0) * seconds);
        let total_weight: f64 = ROUTES.iter().map(|r| r.weight).sum();
        for _ in 0..n {
            let start = rng.range(t0, t1);
            let mut x = rng.range(0.0, total_weight);
            let mut route = &ROUTES[0];
            for r in ROUTES {
                if x < r.weight {
                    route = r;
                    break;
                }
                x -= r.weight;
            }
            // Visitors: a few addresses make most of the traffic.
            let client = CLIENTS[((rng.f64().powi(2)) * CLIENTS.len() as f64) as usize % CLIENTS.len()];
            let ua = *rng.pick(USER_AGENTS);
            let trace = self.request(rng, start, route, client, ua, None);
            got.take(trace);
        }
        if BRUTE_FORCE.active(t0, self.live_start_ms) {
            for _ in 0..rng.poisson(10.0 / 60.0 * seconds) {
                let start = rng.range(t0, t1);
                let user = *rng.pick(ATTACKED_USERS);
                let login = &ROUTES[6];
                let trace = self.request(
                    rng,
                    start,
                    login,
                    BRUTE_FORCE_CLIENT,
                    "python-requests/2.31.0",
                    Some(user),
                );
                got.take(trace);
            }
        } else {
            self.axes_failures.clear();
        }
        if SCANNER.active(t0, self.live_start_ms) {
            for _ in 0..rng.poisson(40.0 / 60.0 * seconds) {
                let start = rng.range(t0, t1);
                let trace = self.scan(rng, start);
                got.take(trace);
            }
        }
        for trace in self.worker.tick(rng, t0, t1, &mut self.activity) {
            got.take(trace);
        }
        for (svc, spans) in got.spans {
            out.spans
                .push(resource_spans(svc.resource(), scope_of(svc), spans));
        }
        for (svc, logs) in got.logs {
            out.logs.push(resource_logs(svc.resource(), scope_of(svc), logs));
        }
    }

    /// The Django metrics as scraped at `t_ms` (sent over remote_write).
    pub fn scrape(&mut self, rng: &mut Rng, t_ms: i64, out: &mut Output) {
        out.remote_write.extend(self.django.scrape(rng, t_ms));
    }

    /// The worker's queue lengths at `t_ms`.
    pub fn queue_lengths(&self, rng: &mut Rng, t_ms: f64) -> [f64; 3] {
        self.worker.queue_lengths(rng, t_ms, self.live_start_ms)
    }

    /// One visitor request; `attacked_user` makes it a brute-force login attempt.
    fn request(
        &mut self,
        rng: &mut Rng,
        start: f64,
        route: &Route,
        client: &str,
        ua: &str,
        attacked_user: Option<&'static str>,
    ) -> Trace {
        let inst = u8::from(rng.chance(0.5));
        let svc = Svc::Web(inst);
        let first = start + rng.range(0.2, 1.0);
        let mut t = Trace::new(rng, first);
        let server_id = rng.id(8);
        let act_before = (
            self.activity.query_calls.iter().sum::<f64>(),
            self.activity.redis_hits,
            self.activity.redis_misses,
        );
        // Extra milliseconds of one statement: a lock wait, a cold cache, a bad plan.
        let slow = if rng.chance(SLOW_RATE) {
            rng.lognormal(1100.0, 0.5)
        } else {
            0.0
        };
        let mut status: u16 = 200;
        let mut path = route.route.to_string();
        let mut failure: Option<(&str, String)> = None;
        if route.view != "healthz" && rng.chance(0.6) {
            t.db(rng, &mut self.activity, svc, &server_id, q::SESSION, 0.0);
        }
        match route.view {
            "product_list" => {
                let page = 1 + rng.below(3);
                if page > 1 {
                    path = format!("/products/?page={page}");
                }
                if !t.redis(
                    rng,
                    &mut self.activity,
                    svc,
                    &server_id,
                    "GET",
                    &format!("shop:product_list:page:{page}"),
                    0.82,
                ) {
                    t.db(rng, &mut self.activity, svc, &server_id, q::PRODUCT_LIST, slow);
                    t.db(rng, &mut self.activity, svc, &server_id, q::PRODUCT_COUNT, 0.0);
                    t.redis(
                        rng,
                        &mut self.activity,
                        svc,
                        &server_id,
                        "SETEX",
                        &format!("shop:product_list:page:{page}"),
                        0.0,
                    );
                }
            }
            "product_detail" => {
                let slug = *rng.pick(PRODUCTS);
                if rng.chance(0.03) {
                    path = format!("/products/{slug}-old/");
                    t.db(rng, &mut self.activity, svc, &server_id, q::PRODUCT_BY_SLUG, 0.0);
                    status = 404;
                } else {
                    path = format!("/products/{slug}/");
                    if !t.redis(
                        rng,
                        &mut self.activity,
                        svc,
                        &server_id,
                        "GET",
                        &format!("shop:product:{slug}"),
                        0.9,
                    ) {
                        t.db(rng, &mut self.activity, svc, &server_id, q::PRODUCT_BY_SLUG, slow);
                        t.redis(
                            rng,
                            &mut self.activity,
                            svc,
                            &server_id,
                            "SETEX",
                            &format!("shop:product:{slug}"),
                            0.0,
                        );
                    }
                }
            }
            "cart" => {
                t.db(rng, &mut self.activity, svc, &server_id, q::CART_ITEMS, slow);
                if rng.chance(0.3) {
                    worker::shipping_quote(rng, &mut t, &mut self.activity, svc, &server_id);
                }
            }
            "cart_add" => {
                t.db(rng, &mut self.activity, svc, &server_id, q::PRODUCT_BY_SLUG, 0.0);
                t.db(rng, &mut self.activity, svc, &server_id, q::CART_INSERT, slow);
                t.redis(
                    rng,
                    &mut self.activity,
                    svc,
                    &server_id,
                    "DEL",
                    "shop:cart:?",
                    0.0,
                );
                status = 302;
            }
            "checkout" => {
                t.db(rng, &mut self.activity, svc, &server_id, q::CART_ITEMS, 0.0);
                let paid = worker::payment(rng, &mut t, &mut self.activity, svc, &server_id);
                if paid {
                    self.worker.publish_confirmation(rng, &mut t, svc, &server_id);
                    status = 302;
                } else {
                    status = 502;
                    failure = Some((
                        "shop.payments.PaymentGatewayError",
                        "checkout service answered 502 Bad Gateway for POST /api/payments/".to_string(),
                    ));
                }
            }
            "search" => {
                let term = *rng.pick(&["mug", "pan", "tea", "knife", "linen", "oak"]);
                path = format!("/search/?q={term}");
                t.db(rng, &mut self.activity, svc, &server_id, q::SEARCH, slow);
            }
            "login" => {
                let user = attacked_user.unwrap_or_else(|| *rng.pick(USERS));
                t.db(rng, &mut self.activity, svc, &server_id, q::USER_BY_NAME, 0.0);
                let failed = attacked_user.is_some() || rng.chance(0.08);
                if failed {
                    status = self.login_failure(
                        rng,
                        &mut t,
                        svc,
                        &server_id,
                        user,
                        client,
                        ua,
                        attacked_user.is_some(),
                    );
                } else {
                    status = 302;
                }
            }
            "admin:orders_order_changelist" => {
                t.db(rng, &mut self.activity, svc, &server_id, q::ADMIN_ORDERS, slow);
                t.db(rng, &mut self.activity, svc, &server_id, q::PRODUCT_COUNT, 0.0);
            }
            _ => {}
        }
        if failure.is_none() && route.view != "healthz" && rng.chance(ERROR_RATE) {
            status = 500;
            failure = Some(
                rng.pick(&[
                    (
                        "django.db.utils.OperationalError",
                        "could not obtain lock on row in relation \"inventory_stock\"".to_string(),
                    ),
                    ("KeyError", "'variant_id'".to_string()),
                    (
                        "decimal.InvalidOperation",
                        "[<class 'decimal.ConversionSyntax'>]".to_string(),
                    ),
                    (
                        "redis.exceptions.ConnectionError",
                        "Error 111 connecting to worker-1:6379. Connection refused.".to_string(),
                    ),
                ])
                .clone(),
            );
        }
        t.cursor += rng.lognormal(route.median_ms, route.sigma);
        let end = t.cursor;
        let ms = end - start;
        let mut span = SpanBuilder::new(
            &t.trace_id,
            server_id.clone(),
            &[],
            &format!("{} {}", route.method, route.route),
            SpanKind::Server,
            start,
            ms,
        )
        .attrs(vec![
            kv("http.request.method", route.method),
            kv("http.route", route.route),
            kv("url.path", path.split('?').next().unwrap_or(&path)),
            kv("url.scheme", "https"),
            kv("server.address", "shop.example.com"),
            kv("network.protocol.version", "1.1"),
            kv("client.address", client),
            kv("user_agent.original", ua),
            kv_i("http.response.status_code", i64::from(status)),
        ]);
        if let Some((exc_type, message)) = &failure {
            let tb = traceback("views.py", route.view, exc_type, message);
            span = span.exception(exc_type, message, &tb);
            let body = if status == 500 {
                format!("Internal Server Error: {path}\n{tb}")
            } else {
                format!("Bad Gateway: {path}\n{tb}")
            };
            t.log(
                svc,
                severity::ERROR,
                &body,
                &server_id,
                vec![
                    kv("logger.name", "django.request"),
                    kv("exception.type", exc_type),
                    kv("exception.message", message),
                    kv("exception.stacktrace", &tb),
                    kv("url.path", &path),
                ],
            );
        } else if status == 404 {
            t.log(
                svc,
                severity::WARN,
                &format!("Not Found: {path}"),
                &server_id,
                vec![kv("logger.name", "django.request")],
            );
        }
        t.log(
            svc,
            severity::INFO,
            &format!("{} {} {} {:.0}ms", route.method, path, status, ms),
            &server_id,
            access_attrs(route.method, &path, route.route, status, client, ms),
        );
        t.push(svc, span.build());
        self.django
            .observe(inst, route.view, route.method, status, ms / 1000.0);
        let (q0, h0, m0) = act_before;
        self.django.backend_calls(
            inst,
            self.activity.query_calls.iter().sum::<f64>() - q0,
            self.activity.redis_hits - h0,
            self.activity.redis_misses - m0,
        );
        self.activity.requests += 1.0;
        if status >= 500 {
            self.activity.failed_requests += 1.0;
        }
        t
    }

    /// A failed login: django-axes' WARN record; once a name has 5 failures it is locked
    /// out (429). Returns the status.
    #[allow(clippy::too_many_arguments)]
    fn login_failure(
        &mut self,
        rng: &mut Rng,
        t: &mut Trace,
        svc: Svc,
        span: &[u8],
        user: &'static str,
        client: &str,
        ua: &str,
        attack: bool,
    ) -> u16 {
        let who = format!("{{username: \"{user}\", ip_address: \"{client}\", user_agent: \"{ua}\", path_info: \"/accounts/login/\"}}");
        let attrs = || {
            vec![
                kv("logger.name", "axes.handlers.database"),
                kv("user.name", user),
                kv("client.address", client),
            ]
        };
        if !attack {
            t.log(
                svc,
                severity::WARN,
                &format!("AXES: New login failure by {who}. Creating new record in the database."),
                span,
                attrs(),
            );
            return 200;
        }
        let count = self.axes_failures.entry(user).or_insert(0);
        *count += 1;
        let n = *count;
        if n > 5 {
            t.log(
                svc,
                severity::WARN,
                &format!("AXES: Locked out {who} tried to log in."),
                span,
                attrs(),
            );
            return 429;
        }
        t.log(svc, severity::WARN, &format!("AXES: Repeated login failure by {who}. Count = {n} of 5. Updating existing record in the database."), span, attrs());
        if n == 5 {
            t.cursor += rng.range(0.2, 1.0);
            t.log(
                svc,
                severity::WARN,
                &format!("AXES: Locking out {who} after repeated login failures."),
                span,
                attrs(),
            );
            return 429;
        }
        200
    }

    /// One probe of the scanner: no route matches, Django answers 404.
    fn scan(&mut self, rng: &mut Rng, start: f64) -> Trace {
        let inst = u8::from(rng.chance(0.5));
        let svc = Svc::Web(inst);
        let path = *rng.pick(SCANNED);
        let mut t = Trace::new(rng, start);
        let ms = rng.lognormal(2.5, 0.3);
        t.cursor = start + ms;
        let id = rng.id(8);
        let span =
            SpanBuilder::new(&t.trace_id, id.clone(), &[], "GET", SpanKind::Server, start, ms).attrs(vec![
                kv("http.request.method", "GET"),
                kv("url.path", path),
                kv("url.scheme", "https"),
                kv("server.address", "shop.example.com"),
                kv("client.address", SCANNER_CLIENT),
                kv("user_agent.original", "Mozilla/5.0 zgrab/0.x"),
                kv_i("http.response.status_code", 404),
            ]);
        t.log(
            svc,
            severity::WARN,
            &format!("Not Found: {path}"),
            &id,
            vec![kv("logger.name", "django.request")],
        );
        t.log(
            svc,
            severity::INFO,
            &format!("GET {path} 404 {ms:.0}ms"),
            &id,
            access_attrs("GET", path, "", 404, SCANNER_CLIENT, ms),
        );
        t.push(svc, span.build());
        self.django
            .observe(inst, "<unnamed view>", "GET", 404, ms / 1000.0);
        self.activity.requests += 1.0;
        t
    }
}

fn access_attrs(
    method: &str,
    path: &str,
    route: &str,
    status: u16,
    client: &str,
    ms: f64,
) -> Vec<opentelemetry_proto::tonic::common::v1::KeyValue> {
    let mut attrs = vec![
        kv("logger.name", "shop.access"),
        kv("http.request.method", method),
        kv("url.path", path.split('?').next().unwrap_or(path)),
        kv_i("http.response.status_code", i64::from(status)),
        kv("client.address", client),
        kv_i("duration_ms", ms.round() as i64),
    ];
    if !route.is_empty() {
        attrs.push(kv("http.route", route));
    }
    attrs
}

/// The instrumentation scope of a service's spans.
fn scope_of(svc: Svc) -> &'static str {
    match svc {
        Svc::Web(_) | Svc::Checkout => "opentelemetry.instrumentation.django",
        Svc::Worker => "opentelemetry.instrumentation.celery",
    }
}
