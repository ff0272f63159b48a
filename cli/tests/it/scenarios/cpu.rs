//! The machine's CPU, measured by the test itself: a 30-second spike on every core, and the
//! host's idle time (from `/proc/stat`, sampled every second) to judge a `HostHighCpu` that
//! fires — was the machine busy without the spike, or did the spike cause it?
//!
//! `HostHighCpu` is `100 * (1 - avg(rate(node_cpu_seconds_total{mode="idle"}[5m]))) > 90`:
//! it is true while each CPU has had fewer than [`IDLE_NEEDED`] idle seconds in the last
//! five minutes (`rate` divides by the whole window, also on a fresh install whose window
//! is not full yet). Rate windows are not scaled by `time_scale`, so the spike lasts 30 real
//! seconds: it weighs in the window exactly as it would in production.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// The rule's rate window.
pub const WINDOW: Duration = Duration::from_secs(300);

/// Idle seconds per CPU in [`WINDOW`] below which the rule is true (10% of it).
pub const IDLE_NEEDED: f64 = 30.0;

/// How long the spike burns.
pub const SPIKE: Duration = Duration::from_secs(30);

/// When the spike burned.
#[derive(Clone, Copy, Debug)]
pub struct Spike {
    /// First instant.
    pub start: Instant,
    /// Last instant.
    pub end: Instant,
}

/// Samples of (when, idle seconds per CPU since boot), every second; stops when dropped.
pub struct Idle {
    samples: Arc<Mutex<Vec<(Instant, f64)>>>,
    stop: Arc<AtomicBool>,
    sampler: Option<JoinHandle<()>>,
}

impl Idle {
    /// Starts sampling `/proc/stat`.
    pub fn start() -> Idle {
        let samples: Arc<Mutex<Vec<(Instant, f64)>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let hz = clock_ticks();
        let sampler = {
            let (samples, stop) = (samples.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    samples.lock().push((Instant::now(), idle_per_cpu(hz)));
                    std::thread::sleep(Duration::from_secs(1));
                }
            })
        };
        Idle {
            samples,
            stop,
            sampler: Some(sampler),
        }
    }

    /// Idle seconds per CPU between the samples nearest to `from` and `to`.
    pub fn between(&self, from: Instant, to: Instant) -> f64 {
        let samples = self.samples.lock();
        let at = |t: Instant| {
            let mut best = samples.first().map(|s| s.1).unwrap_or(0.0);
            for (when, idle) in samples.iter() {
                if *when <= t {
                    best = *idle;
                }
            }
            best
        };
        at(to) - at(from)
    }

    /// Whether the spike made `HostHighCpu` fire at `at`. It did not when the rule was
    /// already true as the spike started (fewer than [`IDLE_NEEDED`] idle seconds in the
    /// window: a busy host, or a fresh install on a busy host, whose window is still filling),
    /// nor when it would still have been true at `at` without the spike (the idle time in the
    /// window plus what the spike took, at the idle share the host had before it). `Err` says
    /// the spike made the difference; `Ok` says why it did not.
    pub fn judge(&self, history_from: Instant, spike: Spike, at: Instant) -> Result<String, String> {
        let window_from = |t: Instant| history_from.max(t.checked_sub(WINDOW).unwrap_or(history_from));
        let at_start = self.between(window_from(spike.start), spike.start);
        let from = window_from(at);
        let idle = self.between(from, at);
        let before = spike.start.saturating_duration_since(history_from).as_secs_f64();
        let share = if before > 0.0 {
            self.between(history_from, spike.start) / before
        } else {
            0.0
        };
        let overlap = spike.end.min(at).saturating_duration_since(spike.start.max(from));
        let without = idle + share * overlap.as_secs_f64();
        let text = format!(
            "{at_start:.1} idle s/CPU in the window as the spike started, {idle:.1} when it \
             fired, {without:.1} without the spike (idle share before it {:.0}%); the rule \
             needs {IDLE_NEEDED} to stay quiet",
            share * 100.0
        );
        if at_start >= IDLE_NEEDED && without >= IDLE_NEEDED {
            Err(text)
        } else {
            Ok(text)
        }
    }
}

impl Drop for Idle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(s) = self.sampler.take() {
            let _ = s.join();
        }
    }
}

/// Burns every core for [`SPIKE`]; returns when it ran.
pub fn spike() -> Spike {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let start = Instant::now();
    let until = start + SPIKE;
    let mut burners = Vec::new();
    for _ in 0..cores {
        burners.push(std::thread::spawn(move || {
            let mut x: u64 = 1;
            while Instant::now() < until {
                for _ in 0..10_000 {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            }
            x
        }));
    }
    for b in burners {
        let _ = b.join();
    }
    Spike {
        start,
        end: Instant::now(),
    }
}

/// `/proc/stat`'s idle time of all CPUs, in seconds per CPU.
fn idle_per_cpu(hz: f64) -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let mut idle = 0.0_f64;
    let mut cpus = 0.0_f64;
    for line in stat.lines() {
        let mut fields = line.split_whitespace();
        let Some(name) = fields.next() else { continue };
        if name == "cpu" {
            idle = fields.nth(3).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        } else if name.starts_with("cpu") {
            cpus += 1.0;
        }
    }
    idle / hz / cpus.max(1.0)
}

/// `getconf CLK_TCK`: the unit of `/proc/stat`.
fn clock_ticks() -> f64 {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// An [`Idle`] over given samples, for checking [`Idle::judge`] without a real machine.
fn from_samples(samples: Vec<(Instant, f64)>) -> Idle {
    Idle {
        samples: Arc::new(Mutex::new(samples)),
        stop: Arc::new(AtomicBool::new(true)),
        sampler: None,
    }
}

/// A host idle `share` of the time, with no idle time while the spike runs (40 s to 70 s);
/// one sample a second for 120 s from `t0`.
fn host(t0: Instant, share: f64) -> (Idle, Spike) {
    let mut samples = Vec::new();
    let mut idle = 0.0;
    for s in 0..120u64 {
        samples.push((t0 + Duration::from_secs(s), idle));
        if !(40..70).contains(&s) {
            idle += share;
        }
    }
    let spike = Spike {
        start: t0 + Duration::from_secs(40),
        end: t0 + Duration::from_secs(70),
    };
    (from_samples(samples), spike)
}

#[test]
fn a_spike_is_blamed_only_when_the_host_would_have_been_quiet_without_it() {
    let t0 = Instant::now();
    // An idle host: 40 idle s before the spike (the rule quiet), none during it. Firing at
    // 60 s (as a rule over a short window would) is the spike's doing: 40 idle s in the
    // window, 60 without the spike.
    let (idle, spike) = host(t0, 1.0);
    let why = idle.judge(t0, spike, t0 + Duration::from_secs(60)).unwrap_err();
    assert!(why.contains("40.0 when it fired, 60.0 without"), "{why}");
    // Half idle: 20 idle s as the spike starts, so the filling window already read > 90%
    // busy before it: the host's load on a fresh install, not the spike.
    let (idle, spike) = host(t0, 0.5);
    let why = idle.judge(t0, spike, t0 + Duration::from_secs(100)).unwrap();
    assert!(
        why.starts_with("20.0 idle s/CPU in the window as the spike started"),
        "{why}"
    );
    // 5% idle: 3.5 idle s at 100 s, 5 without the spike, far under 30: the host's own load.
    let (idle, spike) = host(t0, 0.05);
    let why = idle.judge(t0, spike, t0 + Duration::from_secs(100)).unwrap();
    assert!(why.contains("3.5 when it fired, 5.0 without"), "{why}");
}
