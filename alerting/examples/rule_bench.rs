//! Rule evaluation throughput: N alerting rules, each over ~100 series of a real `Db` in a
//! temporary directory, evaluated group by group as the server does.
//!
//! `cargo run --release -p didban-alerting --example rule_bench -- [rules] [groups]`
//! (defaults: 10000 rules in 100 groups). Prints rules/s and the time one full round takes,
//! to compare with the 15 s evaluation interval of the goal.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use didban_alerting::eval::{EvalContext, RuleManager};
use didban_store::promql::{Engine, EngineOptions};
use didban_store::{Db, DbOptions, FsyncMode, Labels, Sample, SeriesSamples};

const SHARDS: usize = 100;
const SERIES_PER_SHARD: usize = 100;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rules: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let groups: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100).max(1);
    let dir = tempfile::tempdir().unwrap();
    let mut opts = DbOptions::new(dir.path().join("data"));
    opts.fsync = FsyncMode::Off;
    let db = Arc::new(Db::open(opts).unwrap());
    let now = didban_alerting::now_ms();
    // 10 minutes of samples every 15 s for SHARDS × SERIES_PER_SHARD series.
    for step in 0..40i64 {
        let t = now - (40 - step) * 15_000;
        let mut batch = Vec::with_capacity(SHARDS * SERIES_PER_SHARD);
        for shard in 0..SHARDS {
            for i in 0..SERIES_PER_SHARD {
                batch.push(SeriesSamples {
                    labels: Labels::from_pairs([
                        ("__name__", "bench_metric".to_string()),
                        ("shard", shard.to_string()),
                        ("instance", i.to_string()),
                    ]),
                    samples: vec![Sample::new(t, i as f64)],
                    histograms: Vec::new(),
                });
            }
        }
        db.append(batch).await.unwrap();
    }
    let rules_dir = dir.path().join("rules");
    std::fs::create_dir_all(&rules_dir).unwrap();
    let mut yaml = String::from("groups:\n");
    let per_group = rules.div_ceil(groups);
    for g in 0..groups {
        yaml.push_str(&format!("  - name: g{g}\n    interval: 15s\n    rules:\n"));
        for r in 0..per_group {
            let n = g * per_group + r;
            if n >= rules {
                break;
            }
            yaml.push_str(&format!(
                "      - alert: Bench{n}\n        expr: bench_metric{{shard=\"{}\"}} > 98\n        annotations:\n          summary: \"{{{{ $labels.instance }}}} is {{{{ $value }}}}\"\n",
                n % SHARDS
            ));
        }
    }
    std::fs::write(rules_dir.join("bench.yaml"), yaml).unwrap();
    let ctx = EvalContext {
        storage: db.clone(),
        engine: Arc::new(Engine::new(EngineOptions::default())),
        external_labels: Default::default(),
        external_url: "http://localhost:9480".into(),
        sink: None,
        resend_delay: Duration::from_secs(60),
        logs: None,
    };
    let manager = RuleManager::new(vec![rules_dir], Duration::from_secs(15), ctx);
    manager.reload(false).await.unwrap();
    manager.eval_all_at(now).await; // warm-up (and restore)
    let rounds = 3;
    let started = Instant::now();
    for k in 1..=rounds {
        manager.eval_all_at(now + k * 15_000).await;
    }
    let elapsed = started.elapsed();
    let per_round = elapsed / u32::try_from(rounds).unwrap();
    println!(
        "{rules} rules × {SERIES_PER_SHARD} series in {groups} groups: {:.0} rules/s, {:.2} s per round (goal: < 15 s)",
        (rules as f64 * rounds as f64) / elapsed.as_secs_f64(),
        per_round.as_secs_f64()
    );
}
