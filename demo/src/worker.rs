//! The services behind `shop-web`: the `checkout` service (payments through an external
//! provider that sometimes times out, shipping quotes) and the Celery worker `shop-worker`
//! (order e-mails published by checkouts, periodic search-index and sales-report tasks,
//! one queue slowly backing up).

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use super::catalog::q;
use super::otlp::{kv, kv_i, severity, SpanBuilder};
use super::rng::Rng;
use super::trace::{Activity, Svc, Trace};

/// Share of payments whose provider call times out (checkout answers 502).
const PAYMENT_TIMEOUT_RATE: f64 = 0.05;

fn uuid(rng: &mut Rng) -> String {
    let b = rng.id(16);
    let mut hex = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            hex.push('-');
        }
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

/// The server span of `checkout` for a call from shop-web's client span `parent`.
#[allow(clippy::too_many_arguments)]
fn checkout_server(
    t: &mut Trace,
    rng: &mut Rng,
    parent: &[u8],
    id: Vec<u8>,
    method: &str,
    route: &str,
    start: f64,
    status: u16,
    failure: Option<(&str, &str)>,
) {
    let ms = t.cursor - start;
    let mut span = SpanBuilder::new(
        &t.trace_id,
        id.clone(),
        parent,
        &format!("{method} {route}"),
        SpanKind::Server,
        start,
        ms,
    )
    .attrs(vec![
        kv("http.request.method", method),
        kv("http.route", route),
        kv("url.path", route),
        kv("url.scheme", "http"),
        kv("server.address", "checkout.internal"),
        kv("client.address", "10.0.1.12"),
        kv_i("http.response.status_code", i64::from(status)),
    ]);
    if let Some((exc, message)) = failure {
        let tb = format!("Traceback (most recent call last):\n  File \"/app/checkout/payments.py\", line 64, in charge\n    response = session.post(PROVIDER_URL, json=payload, timeout=5)\n{exc}: {message}");
        span = span.exception(exc, message, &tb);
        t.log(
            Svc::Checkout,
            severity::ERROR,
            &format!("Payment provider call failed: {message}\n{tb}"),
            &id,
            vec![
                kv("logger.name", "checkout.payments"),
                kv("exception.type", exc),
                kv("exception.message", message),
            ],
        );
    }
    t.log(
        Svc::Checkout,
        severity::INFO,
        &format!("{method} {route} {status} {ms:.0}ms"),
        &id,
        vec![
            kv("logger.name", "checkout.access"),
            kv("http.request.method", method),
            kv_i("http.response.status_code", i64::from(status)),
            kv("client.address", "10.0.1.12"),
        ],
    );
    let _ = rng;
    t.push(Svc::Checkout, span.build());
}

/// shop-web → checkout `POST /api/payments/`. True when the payment went through.
pub fn payment(rng: &mut Rng, t: &mut Trace, act: &mut Activity, from: Svc, parent: &[u8]) -> bool {
    let client_start = t.cursor;
    let client_id = rng.id(8);
    let server_id = rng.id(8);
    let server_start = client_start + rng.range(0.5, 1.5);
    t.cursor = server_start + rng.range(0.2, 0.6);
    t.db(rng, act, Svc::Checkout, &server_id, q::ORDER_INSERT, 0.0);
    let timed_out = rng.chance(PAYMENT_TIMEOUT_RATE);
    let (ms, status) = if timed_out {
        (5000.0 + rng.range(0.0, 40.0), 0)
    } else {
        (rng.lognormal(180.0, 0.35), 200)
    };
    t.http_client(
        rng,
        Svc::Checkout,
        &server_id,
        "POST",
        "https://api.payments.example/v1/charges",
        "api.payments.example",
        status,
        ms,
    );
    if !timed_out {
        t.db(rng, act, Svc::Checkout, &server_id, q::STOCK_UPDATE, 0.0);
        t.redis(
            rng,
            act,
            Svc::Checkout,
            &server_id,
            "SETEX",
            "checkout:idempotency:?",
            0.0,
        );
    }
    t.cursor += rng.lognormal(4.0, 0.3);
    let answer = if timed_out { 502 } else { 201 };
    let failure = timed_out.then_some((
        "requests.exceptions.ReadTimeout",
        "HTTPSConnectionPool(host='api.payments.example', port=443): Read timed out. (read timeout=5)",
    ));
    checkout_server(
        t,
        rng,
        &client_id,
        server_id,
        "POST",
        "/api/payments/",
        server_start,
        answer,
        failure,
    );
    t.cursor += rng.range(0.5, 1.5);
    act.requests += 1.0;
    if timed_out {
        act.failed_requests += 1.0;
    }
    client_span(
        t,
        rng,
        from,
        parent,
        client_id,
        "POST",
        "/api/payments/",
        client_start,
        answer,
    );
    !timed_out
}

/// shop-web → checkout `GET /api/shipping/quote/` (cached, never fails).
pub fn shipping_quote(rng: &mut Rng, t: &mut Trace, act: &mut Activity, from: Svc, parent: &[u8]) {
    let client_start = t.cursor;
    let client_id = rng.id(8);
    let server_id = rng.id(8);
    let server_start = client_start + rng.range(0.5, 1.5);
    t.cursor = server_start + rng.range(0.2, 0.6);
    if !t.redis(
        rng,
        act,
        Svc::Checkout,
        &server_id,
        "GET",
        "checkout:quote:?",
        0.7,
    ) {
        let ms = rng.lognormal(90.0, 0.4);
        t.http_client(
            rng,
            Svc::Checkout,
            &server_id,
            "GET",
            "https://api.carrier.example/v2/rates",
            "api.carrier.example",
            200,
            ms,
        );
        t.redis(
            rng,
            act,
            Svc::Checkout,
            &server_id,
            "SETEX",
            "checkout:quote:?",
            0.0,
        );
    }
    t.cursor += rng.lognormal(2.0, 0.3);
    checkout_server(
        t,
        rng,
        &client_id,
        server_id,
        "GET",
        "/api/shipping/quote/",
        server_start,
        200,
        None,
    );
    t.cursor += rng.range(0.5, 1.5);
    act.requests += 1.0;
    client_span(
        t,
        rng,
        from,
        parent,
        client_id,
        "GET",
        "/api/shipping/quote/",
        client_start,
        200,
    );
}

#[allow(clippy::too_many_arguments)]
fn client_span(
    t: &mut Trace,
    rng: &mut Rng,
    from: Svc,
    parent: &[u8],
    id: Vec<u8>,
    method: &str,
    path: &str,
    start: f64,
    status: u16,
) {
    let ms = t.cursor - start;
    let mut span =
        SpanBuilder::new(&t.trace_id, id, parent, method, SpanKind::Client, start, ms).attrs(vec![
            kv("http.request.method", method),
            kv("url.full", &format!("http://checkout.internal:8001{path}")),
            kv("server.address", "checkout.internal"),
            kv_i("server.port", 8001),
            kv_i("http.response.status_code", i64::from(status)),
        ]);
    if status >= 500 {
        span = span.error(&format!("HTTP {status}"));
    }
    let _ = rng;
    t.push(from, span.build());
}

/// A periodic Celery task (celery beat).
struct Periodic {
    task: &'static str,
    queue: usize,
    every_ms: f64,
    next_ms: f64,
}

/// The Celery worker.
pub struct Worker {
    periodic: Vec<Periodic>,
}

impl Default for Worker {
    fn default() -> Self {
        Worker::new()
    }
}

impl Worker {
    /// The worker with its beat schedule.
    pub fn new() -> Worker {
        Worker {
            periodic: vec![
                Periodic {
                    task: "shop.tasks.update_search_index",
                    queue: 0,
                    every_ms: 60_000.0,
                    next_ms: 0.0,
                },
                Periodic {
                    task: "shop.tasks.generate_sales_report",
                    queue: 2,
                    every_ms: 120_000.0,
                    next_ms: 0.0,
                },
            ],
        }
    }

    /// A checkout publishes the confirmation e-mail task; the worker runs it soon after, in
    /// the same trace.
    pub fn publish_confirmation(&mut self, rng: &mut Rng, t: &mut Trace, from: Svc, parent: &[u8]) {
        let task = "shop.tasks.send_order_confirmation";
        let message_id = uuid(rng);
        let publish_ms = rng.lognormal(1.2, 0.3);
        let producer = SpanBuilder::new(
            &t.trace_id,
            rng.id(8),
            parent,
            &format!("apply_async/{task}"),
            SpanKind::Producer,
            t.cursor,
            publish_ms,
        )
        .attrs(vec![
            kv("celery.action", "apply_async"),
            kv("celery.task_name", task),
            kv("messaging.system", "celery"),
            kv("messaging.destination.name", "emails"),
            kv("messaging.message.id", &message_id),
        ]);
        let producer_id = producer.id().to_vec();
        let consumer_start = t.cursor + publish_ms + rng.lognormal(250.0, 0.6);
        t.push(from, producer.build());
        let resume = t.cursor + publish_ms + rng.range(0.1, 0.3);
        t.cursor = consumer_start + rng.range(0.5, 2.0);
        let consumer_id = rng.id(8);
        let ms = rng.lognormal(220.0, 0.4);
        t.http_client(
            rng,
            Svc::Worker,
            &consumer_id,
            "POST",
            "https://api.mailer.example/v3/messages",
            "api.mailer.example",
            200,
            ms,
        );
        t.cursor += rng.lognormal(6.0, 0.4);
        let ms = t.cursor - consumer_start;
        let consumer = SpanBuilder::new(
            &t.trace_id,
            consumer_id.clone(),
            &producer_id,
            &format!("run/{task}"),
            SpanKind::Consumer,
            consumer_start,
            ms,
        )
        .attrs(vec![
            kv("celery.action", "run"),
            kv("celery.task_name", task),
            kv("celery.state", "SUCCESS"),
            kv("messaging.system", "celery"),
            kv("messaging.destination.name", "emails"),
            kv("messaging.message.id", &message_id),
        ]);
        t.log(
            Svc::Worker,
            severity::INFO,
            &format!("Task {task}[{message_id}] succeeded in {:.3}s: None", ms / 1000.0),
            &consumer_id,
            vec![kv("logger.name", "celery.app.trace")],
        );
        t.push(Svc::Worker, consumer.build());
        t.cursor = resume;
    }

    /// Runs the periodic tasks due in `[t0, t1)`.
    pub fn tick(&mut self, rng: &mut Rng, t0: f64, t1: f64, act: &mut Activity) -> Vec<Trace> {
        let mut traces = Vec::new();
        for i in 0..self.periodic.len() {
            if self.periodic[i].next_ms == 0.0 {
                let every = self.periodic[i].every_ms;
                self.periodic[i].next_ms = (t0 / every).ceil() * every + rng.range(0.0, 2000.0);
            }
            while self.periodic[i].next_ms < t1 {
                let start = self.periodic[i].next_ms;
                self.periodic[i].next_ms += self.periodic[i].every_ms;
                let (task, queue) = (self.periodic[i].task, self.periodic[i].queue);
                traces.push(run_periodic(rng, act, task, queue, start));
            }
        }
        traces
    }

    /// `celery`, `emails`, `reports` queue lengths at `t_ms`: the first two hover near
    /// zero; `reports` grows by about 1.2 tasks a minute (the report task is slower than
    /// its schedule), above 100 from the live start on.
    pub fn queue_lengths(&self, rng: &mut Rng, t_ms: f64, live_start_ms: f64) -> [f64; 3] {
        let minutes = (t_ms - live_start_ms) / 60_000.0;
        let reports = (112.0 + 1.2 * minutes + rng.range(-2.0, 2.0)).max(0.0).round();
        [rng.poisson(1.5) as f64, rng.poisson(0.6) as f64, reports]
    }
}

fn run_periodic(rng: &mut Rng, act: &mut Activity, task: &str, queue: usize, start: f64) -> Trace {
    let first = start + rng.range(1.0, 5.0);
    let mut t = Trace::new(rng, first);
    let id = rng.id(8);
    let message_id = uuid(rng);
    match queue {
        2 => {
            t.db(rng, act, Svc::Worker, &id, q::SALES_REPORT, 0.0);
            let ms = rng.lognormal(140.0, 0.3);
            t.http_client(
                rng,
                Svc::Worker,
                &id,
                "PUT",
                "https://reports.s3.amazonaws.com/daily/sales.csv",
                "reports.s3.amazonaws.com",
                200,
                ms,
            );
            t.cursor += rng.lognormal(900.0, 0.3);
        }
        _ => {
            t.db(rng, act, Svc::Worker, &id, q::PRODUCT_LIST, 0.0);
            for _ in 0..3 {
                t.redis(rng, act, Svc::Worker, &id, "SETEX", "shop:search:?", 0.0);
            }
            t.cursor += rng.lognormal(40.0, 0.4);
        }
    }
    let ms = t.cursor - start;
    let queue_name = super::catalog::QUEUES.get(queue).copied().unwrap_or("celery");
    let span = SpanBuilder::new(
        &t.trace_id,
        id.clone(),
        &[],
        &format!("run/{task}"),
        SpanKind::Consumer,
        start,
        ms,
    )
    .attrs(vec![
        kv("celery.action", "run"),
        kv("celery.task_name", task),
        kv("celery.state", "SUCCESS"),
        kv("messaging.system", "celery"),
        kv("messaging.destination.name", queue_name),
        kv("messaging.message.id", &message_id),
    ]);
    t.log(
        Svc::Worker,
        severity::INFO,
        &format!("Task {task}[{message_id}] succeeded in {:.3}s: None", ms / 1000.0),
        &id,
        vec![kv("logger.name", "celery.app.trace")],
    );
    t.push(Svc::Worker, span.build());
    if let Some(done) = act.tasks_done.get_mut(queue) {
        *done += 1.0;
    }
    t
}
