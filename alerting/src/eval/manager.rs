//! The rule manager: loads the rule packs and directories, runs one evaluation loop per group in the
//! group's time slot, counts missed iterations, and reloads keeping the last good rule set
//! when the new one is bad.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{watch, Mutex as AsyncMutex};
use tokio::task::JoinHandle;

use super::group::{EvalContext, GroupRuntime};
use crate::rules::{load_sources, Rule, RuleError, RuleGroup, RuleSources};

/// A group shared between its loop and the APIs.
pub type SharedGroup = Arc<AsyncMutex<GroupRuntime>>;

/// Outcome of the last (re)load, for the API and logs.
#[derive(Debug, Clone, Default)]
pub struct ReloadStatus {
    /// True when the last attempt succeeded.
    pub ok: bool,
    /// The problems of the last failed attempt.
    pub errors: Vec<String>,
    /// Wall-clock time of the last attempt (ms).
    pub at_ms: i64,
}

/// Owns the rule groups and their loops.
pub struct RuleManager {
    sources: Mutex<RuleSources>,
    default_interval: Duration,
    /// Factor applied to every group's interval and every rule's `for` and
    /// `keep_firing_for` when rules are loaded (`[alerting] time_scale`; 1 = as written).
    time_scale: Mutex<f64>,
    ctx: EvalContext,
    groups: Mutex<Vec<SharedGroup>>,
    tasks: Mutex<Vec<(watch::Sender<bool>, JoinHandle<()>)>>,
    status: Mutex<ReloadStatus>,
    /// Serialises reloads (SIGHUP and the API may ask at once).
    reloading: AsyncMutex<()>,
}

impl RuleManager {
    /// A manager over rule directories `dirs` only (missing ones hold no rules; no packs);
    /// nothing is loaded until [`RuleManager::reload`].
    pub fn new(dirs: Vec<PathBuf>, default_interval: Duration, ctx: EvalContext) -> Arc<RuleManager> {
        RuleManager::with_sources(RuleSources::dirs_only(dirs), default_interval, ctx)
    }

    /// A manager over `sources` (packs, rule directories, overrides); nothing is loaded
    /// until [`RuleManager::reload`].
    pub fn with_sources(
        sources: RuleSources,
        default_interval: Duration,
        ctx: EvalContext,
    ) -> Arc<RuleManager> {
        Arc::new(RuleManager {
            sources: Mutex::new(sources),
            default_interval,
            time_scale: Mutex::new(1.0),
            ctx,
            groups: Mutex::new(Vec::new()),
            tasks: Mutex::new(Vec::new()),
            status: Mutex::new(ReloadStatus::default()),
            reloading: AsyncMutex::new(()),
        })
    }

    /// Where the rules are loaded from.
    pub fn sources(&self) -> RuleSources {
        self.sources.lock().clone()
    }

    /// Replaces the sources; the next [`RuleManager::reload`] loads from them. A reload that
    /// fails keeps the old rules running but not the old sources.
    pub fn set_sources(&self, sources: RuleSources) {
        *self.sources.lock() = sources;
    }

    /// Sets the factor applied to group intervals and `for`/`keep_firing_for` durations of
    /// every rule (packs and files alike) from the next [`RuleManager::reload`] on, so a test
    /// or a demo runs the shipped rules faster without editing them. Values that are not
    /// finite and positive are ignored (the settings validation refuses them first).
    pub fn set_time_scale(&self, scale: f64) {
        if scale.is_finite() && scale > 0.0 {
            *self.time_scale.lock() = scale;
        }
    }

    /// The evaluation context (storage, engine, notifier).
    pub fn context(&self) -> &EvalContext {
        &self.ctx
    }

    /// The groups currently loaded, in load order.
    pub fn groups(&self) -> Vec<SharedGroup> {
        self.groups.lock().clone()
    }

    /// The outcome of the last load.
    pub fn status(&self) -> ReloadStatus {
        self.status.lock().clone()
    }

    /// Loads the rule files again. On any error the current groups stay as they are and
    /// keep running; the errors are returned and remembered. On success, unchanged rules
    /// keep their alert state; when `start` is true the new groups' loops are started (the
    /// old ones stopped). Returns the number of groups.
    pub async fn reload(self: &Arc<Self>, start: bool) -> Result<usize, Vec<RuleError>> {
        let _one_at_a_time = self.reloading.lock().await;
        let sources = self.sources();
        let loaded = tokio::task::spawn_blocking(move || load_sources(&sources)).await;
        let now = crate::now_ms();
        let groups = match loaded {
            Ok(Ok(g)) => g,
            Ok(Err(errors)) => {
                for e in &errors {
                    tracing::error!(error = %e, "rule file is invalid; keeping the previous rules");
                }
                *self.status.lock() = ReloadStatus {
                    ok: false,
                    errors: errors.iter().map(ToString::to_string).collect(),
                    at_ms: now,
                };
                return Err(errors);
            }
            Err(e) => {
                let err = RuleError {
                    file: PathBuf::new(),
                    line: None,
                    group: None,
                    rule: None,
                    reason: format!("loading task failed: {e}"),
                };
                return Err(vec![err]);
            }
        };
        let old = self.groups();
        let scale = *self.time_scale.lock();
        let default_interval = scale_duration(self.default_interval, scale);
        let mut fresh: Vec<SharedGroup> = Vec::with_capacity(groups.len());
        for mut g in groups {
            if scale != 1.0 {
                scale_group(&mut g, scale);
            }
            let mut rt = GroupRuntime::new(g, default_interval);
            for o in &old {
                let o = o.lock().await;
                if o.key() == rt.key() {
                    rt.adopt_state(&o);
                    break;
                }
            }
            fresh.push(Arc::new(AsyncMutex::new(rt)));
        }
        let count = fresh.len();
        self.stop_loops().await;
        *self.groups.lock() = fresh.clone();
        *self.status.lock() = ReloadStatus {
            ok: true,
            errors: Vec::new(),
            at_ms: now,
        };
        tracing::info!(groups = count, "rules loaded");
        if start {
            let mut tasks = Vec::with_capacity(fresh.len());
            for g in fresh {
                let (tx, rx) = watch::channel(false);
                let handle = tokio::spawn(group_loop(g, self.ctx.clone(), rx));
                tasks.push((tx, handle));
            }
            *self.tasks.lock() = tasks;
        }
        Ok(count)
    }

    /// Stops every group loop and waits for them (an evaluation in progress finishes).
    pub async fn stop_loops(&self) {
        let tasks: Vec<_> = std::mem::take(&mut *self.tasks.lock());
        for (tx, _) in &tasks {
            let _ = tx.send(true);
        }
        for (_, h) in tasks {
            let _ = h.await;
        }
    }

    /// Evaluates every group once at `ts` (tests, and tools that drive time themselves).
    pub async fn eval_all_at(&self, ts: i64) {
        for g in self.groups() {
            g.lock().await.eval(ts, &self.ctx).await;
        }
    }

    /// Loads the rules (a bad set is logged and the manager starts empty), runs the loops,
    /// and stops everything when `stop` turns true. Reloads are the caller's (SIGHUP and
    /// `POST /-/reload` in [`crate::service`]).
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let _ = self.reload(true).await;
        while !*stop.borrow() {
            if stop.changed().await.is_err() {
                break;
            }
        }
        self.stop_loops().await;
    }
}

/// Where the loop goes after evaluating slot `done` when the clock reads `now`: the next
/// slot, and how many slots were skipped because the evaluation overran.
pub fn next_slot(done: i64, now: i64, interval_ms: i64) -> (i64, u64) {
    let interval = interval_ms.max(1);
    let behind = (now - done) / interval;
    let missed = (behind - 1).max(0);
    (done + (missed + 1) * interval, u64::try_from(missed).unwrap_or(0))
}

/// One group's loop: wait for its slot, evaluate at the slot time, repeat.
async fn group_loop(group: SharedGroup, ctx: EvalContext, mut stop: watch::Receiver<bool>) {
    let (mut next, interval) = {
        let g = group.lock().await;
        let interval = g.interval_ms();
        (g.slot_at_or_before(crate::now_ms()) + interval, interval)
    };
    loop {
        let wait = u64::try_from(next - crate::now_ms()).unwrap_or(0);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
            r = stop.changed() => {
                if r.is_err() || *stop.borrow() {
                    return;
                }
                continue;
            }
        }
        let mut g = group.lock().await;
        g.eval(next, &ctx).await;
        let (after, missed) = next_slot(next, crate::now_ms(), interval);
        if missed > 0 {
            tracing::warn!(group = %g.group.name, missed, "rule group evaluation overran its interval");
            g.missed_iterations += missed;
        }
        next = after;
    }
}

/// `d` times `scale`, at least 1 ms.
fn scale_duration(d: Duration, scale: f64) -> Duration {
    Duration::from_secs_f64(d.as_secs_f64() * scale).max(Duration::from_millis(1))
}

/// Scales the group's own interval and each alerting rule's `for` and `keep_firing_for`
/// (zero stays zero). Range windows in expressions are left alone: they describe the data.
fn scale_group(g: &mut RuleGroup, scale: f64) {
    if let Some(i) = g.interval {
        g.interval = Some(scale_duration(i, scale));
    }
    for r in &mut g.rules {
        if let Rule::Alerting(a) = r {
            if !a.for_.is_zero() {
                a.for_ = scale_duration(a.for_, scale);
            }
            if !a.keep_firing_for.is_zero() {
                a.keep_firing_for = scale_duration(a.keep_firing_for, scale);
            }
        }
    }
}
