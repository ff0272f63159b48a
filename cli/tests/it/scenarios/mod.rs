//! The scenario suite (issue 11's acceptance): one stack of real services and the real
//! `didban serve` and `didban-agent` binaries (see [`stack`]) driven through outages and abuse, asserting which built-in alerts fire, that
//! each arrives by e-mail and webhook exactly once, that outages resolve, and that the idle
//! stack stays quiet. Rule intervals and `for` durations run at `time_scale = 0.1`; nothing
//! else is tuned. Prints `scenario | expected | fired (time) | verdict` (docs/alerting.md,
//! "Scenario suite", keeps the measured table).

mod agent;
mod auth_failures;
mod cache_collapse;
mod celery_worker_down;
mod cpu;
mod failed_logins;
mod http_errors;
mod postgres_down;
mod quiet;
mod slow_query;
mod stack;
mod task_failures;
mod traffic;

use stack::{Row, Stack};

fn print_table(rows: &[Row]) {
    eprintln!("| scenario | expected | fired (time) | verdict |");
    eprintln!("|---|---|---|---|");
    for r in rows {
        eprintln!(
            "| {} | {} | {} | {} |",
            r.scenario, r.expected, r.fired, r.verdict
        );
    }
}

#[test]
fn built_in_packs_catch_each_outage_and_stay_quiet_when_idle() {
    for module in ["celery", "gunicorn", "opentelemetry.instrumentation.wsgi"] {
        if let Some(why) = didban_testkit::python::missing_module(module) {
            panic!("{why}");
        }
    }
    let started = std::time::Instant::now();
    let mut stack = Stack::start();
    let mut rows = Vec::new();
    let mut done = |row: Row| {
        eprintln!("scenario done: {} -> {}", row.scenario, row.fired);
        rows.push(row);
    };
    let (row, spike) = quiet::run(&stack);
    done(row);
    // Fires early: its resolution needs the rule's unscaled 5-minute window to dilute the
    // errors, so it is awaited after the other scenarios.
    let http = http_errors::run(&stack);
    done(failed_logins::run(&stack));
    done(auth_failures::run(&stack));
    done(slow_query::run(&stack));
    done(task_failures::run(&stack));
    done(celery_worker_down::run(&mut stack));
    done(postgres_down::run(&stack));
    done(cache_collapse::run(&stack));
    done(http.finish(&stack));
    done(quiet::judge_spike(&stack, spike));
    let ambient = stack.ambient_firing();
    rows.push(Row {
        scenario: "ambient: the machine running the suite",
        expected: format!("{} only when true", stack::AMBIENT.join("/")),
        fired: format!("firing at the end: {ambient:?}"),
        verdict: "info",
    });
    print_table(&rows);
    eprintln!("suite wall time {:.0?}", started.elapsed());
}
