//! The results: one row per figure with Didban, Prometheus, VictoriaMetrics and the ratios
//! Didban ÷ Prometheus and Didban ÷ VictoriaMetrics, the machine they were measured on, a text
//! table and JSON.

use serde::Serialize;

/// One measured value, or why it could not be measured.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// The value, if measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Why there is no value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Figure {
    /// A measured value.
    pub fn ok(v: f64) -> Self {
        Figure {
            value: Some(v),
            error: None,
        }
    }
    /// No value, and why.
    pub fn na(why: impl Into<String>) -> Self {
        Figure {
            value: None,
            error: Some(why.into()),
        }
    }
    fn text(&self) -> String {
        match (self.value, &self.error) {
            (Some(v), _) => fmt_num(v),
            (None, Some(e)) => format!("n/a ({})", shorten(e, 60)),
            (None, None) => "n/a".into(),
        }
    }
}

fn shorten(s: &str, n: usize) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > n {
        format!("{}…", one_line.chars().take(n).collect::<String>())
    } else {
        one_line
    }
}

fn fmt_num(v: f64) -> String {
    if v.abs() >= 100_000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Whether a larger or a smaller value is better.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    /// e.g. throughput.
    Higher,
    /// e.g. latency, bytes, CPU.
    Lower,
}

/// Didban's value divided by another system's, with the issue's goal for that ratio.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    /// Didban ÷ the other system, when both values exist.
    pub ratio: Option<f64>,
    /// The goal (at least this for `Higher`, at most this for `Lower`); `None` for figures
    /// without a goal against this system.
    pub goal: Option<f64>,
    /// Whether the goal is met, when there is a goal and a ratio.
    pub met: Option<bool>,
}

impl Ratio {
    fn new(didban: &Figure, other: &Figure, goal: Option<f64>, better: Better) -> Self {
        let ratio = match (didban.value, other.value) {
            (Some(d), Some(o)) if o != 0.0 => Some(d / o),
            _ => None,
        };
        let met = match (ratio, goal, better) {
            (Some(r), Some(g), Better::Higher) => Some(r >= g),
            (Some(r), Some(g), Better::Lower) => Some(r <= g),
            _ => None,
        };
        Ratio { ratio, goal, met }
    }

    fn ratio_text(&self) -> String {
        self.ratio.map_or("-".into(), |x| format!("{x:.2}×"))
    }

    fn goal_text(&self, better: Better) -> String {
        let Some(g) = self.goal else {
            return String::new();
        };
        let dir = match better {
            Better::Higher => "≥",
            Better::Lower => "≤",
        };
        let met = match self.met {
            Some(true) => " met",
            Some(false) => " NOT met",
            None => "",
        };
        format!("{dir} {g}×{met}")
    }
}

/// The goals of one row from the issues, as ratios Didban ÷ the other system.
#[derive(Debug, Clone, Copy, Default)]
pub struct Goals {
    /// Against Prometheus.
    pub prometheus: Option<f64>,
    /// Against VictoriaMetrics.
    pub victoriametrics: Option<f64>,
}

/// The three systems' values of one figure.
#[derive(Debug, Clone)]
pub struct Values<'a> {
    /// Didban's.
    pub didban: &'a Figure,
    /// Prometheus'.
    pub prometheus: &'a Figure,
    /// VictoriaMetrics'.
    pub victoriametrics: &'a Figure,
}

/// One line of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// What is measured.
    pub figure: String,
    /// Unit of the values.
    pub unit: String,
    /// Direction of "better".
    pub better: Better,
    /// Didban's value.
    pub didban: Figure,
    /// Prometheus' value.
    pub prometheus: Figure,
    /// VictoriaMetrics' value.
    pub victoriametrics: Figure,
    /// Didban ÷ Prometheus.
    pub vs_prometheus: Ratio,
    /// Didban ÷ VictoriaMetrics.
    pub vs_victoriametrics: Ratio,
}

impl Row {
    /// A row; the ratios and whether the goals are met are computed from the values.
    pub fn new(figure: &str, unit: &str, better: Better, goals: Goals, v: Values<'_>) -> Self {
        Row {
            figure: figure.into(),
            unit: unit.into(),
            better,
            vs_prometheus: Ratio::new(v.didban, v.prometheus, goals.prometheus, better),
            vs_victoriametrics: Ratio::new(v.didban, v.victoriametrics, goals.victoriametrics, better),
            didban: v.didban.clone(),
            prometheus: v.prometheus.clone(),
            victoriametrics: v.victoriametrics.clone(),
        }
    }
}

/// The machine the figures were measured on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// `model name` from /proc/cpuinfo.
    pub cpu: String,
    /// CPUs this process may use.
    pub cores: usize,
    /// MemTotal in GiB.
    pub ram_gib: f64,
    /// `uname -r`.
    pub kernel: String,
    /// `git rev-parse --short HEAD` of the workspace, if known.
    pub git_revision: String,
    /// First line of `prometheus --version`.
    pub prometheus_version: String,
    /// VictoriaMetrics' version (`-version`, or the Debian package's version when the binary
    /// was built without one).
    pub victoriametrics_version: String,
}

fn cmd_line(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .and_then(|o| {
            let text = if o.stdout.is_empty() { o.stderr } else { o.stdout };
            String::from_utf8(text).ok()
        })
        .and_then(|s| s.lines().next().map(str::trim).map(String::from))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Debian builds `victoria-metrics` without version information (`-version` prints an empty
/// line); the package database knows it.
fn victoriametrics_version(bin: &std::path::Path) -> String {
    let v = cmd_line(&bin.to_string_lossy(), &["-version"]);
    if v != "unknown" {
        return v;
    }
    match cmd_line("dpkg-query", &["-W", "-f=${Version}", "victoria-metrics"]).as_str() {
        "unknown" => "victoria-metrics unknown version".into(),
        pkg => format!("victoria-metrics {pkg} (Debian package)"),
    }
}

impl Machine {
    /// Reads the machine's description from /proc and a few commands.
    pub fn detect(prometheus_bin: &std::path::Path, victoriametrics_bin: &std::path::Path) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")
                    .and_then(|r| r.split_once(':'))
                    .map(|(_, v)| v.trim())
            })
            .unwrap_or("unknown")
            .to_string();
        let ram_kb = std::fs::read_to_string("/proc/meminfo")
            .unwrap_or_default()
            .lines()
            .find_map(|l| {
                l.strip_prefix("MemTotal:")
                    .map(|v| v.trim().trim_end_matches("kB").trim().to_string())
            })
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            ram_gib: (ram_kb / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            kernel: cmd_line("uname", &["-r"]),
            git_revision: cmd_line("git", &["-C", root, "rev-parse", "--short", "HEAD"]),
            prometheus_version: cmd_line(&prometheus_bin.to_string_lossy(), &["--version"]),
            victoriametrics_version: victoriametrics_version(victoriametrics_bin),
        }
    }
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Where it ran.
    pub machine: Machine,
    /// The data set and the settings, as text key/values.
    pub scenario: Vec<(String, String)>,
    /// The figures.
    pub rows: Vec<Row>,
    /// Remarks (errors of whole phases, caveats).
    pub notes: Vec<String>,
}

impl Report {
    /// The report as a text table.
    pub fn to_text(&self) -> String {
        let m = &self.machine;
        let mut out = format!(
            "Machine: {} | {} cores | {} GiB RAM | kernel {} | didban rev {} | {} | {}\n",
            m.cpu,
            m.cores,
            m.ram_gib,
            m.kernel,
            m.git_revision,
            m.prometheus_version,
            m.victoriametrics_version
        );
        out.push_str("Scenario:");
        for (k, v) in &self.scenario {
            out.push_str(&format!(" {k}={v}"));
        }
        out.push_str("\n\n");
        let header = [
            "figure",
            "unit",
            "Didban",
            "Prometheus",
            "VictoriaM.",
            "D/Prom",
            "goal",
            "D/VM",
            "goal",
        ];
        let cells: Vec<[String; 9]> = self
            .rows
            .iter()
            .map(|r| {
                [
                    r.figure.clone(),
                    r.unit.clone(),
                    r.didban.text(),
                    r.prometheus.text(),
                    r.victoriametrics.text(),
                    r.vs_prometheus.ratio_text(),
                    r.vs_prometheus.goal_text(r.better),
                    r.vs_victoriametrics.ratio_text(),
                    r.vs_victoriametrics.goal_text(r.better),
                ]
            })
            .collect();
        let mut widths = header.map(|h| h.chars().count());
        for c in &cells {
            for (i, s) in c.iter().enumerate() {
                widths[i] = widths[i].max(s.chars().count());
            }
        }
        let line = |c: &[String]| -> String {
            let mut s = String::new();
            for (i, v) in c.iter().enumerate() {
                let pad = widths[i] - v.chars().count();
                s.push_str(v);
                s.push_str(&" ".repeat(pad + 2));
            }
            s.trim_end().to_string() + "\n"
        };
        out.push_str(&line(&header.map(String::from)));
        out.push_str(&line(&widths.map(|w| "-".repeat(w))));
        for c in &cells {
            out.push_str(&line(c));
        }
        if !self.notes.is_empty() {
            out.push_str("\nNotes:\n");
            for n in &self.notes {
                out.push_str(&format!("- {n}\n"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_against_both_systems_render() {
        let (ok, na) = (Figure::ok(200.0), Figure::na("HTTP 404"));
        let goals = Goals {
            prometheus: Some(2.0),
            victoriametrics: Some(1.5),
        };
        let (p, v) = (Figure::ok(100.0), Figure::ok(160.0));
        let values = Values {
            didban: &ok,
            prometheus: &p,
            victoriametrics: &v,
        };
        let r = Row::new("x", "1/s", Better::Higher, goals, values);
        assert_eq!(r.vs_prometheus.ratio, Some(2.0));
        assert_eq!(r.vs_prometheus.met, Some(true));
        assert_eq!(r.vs_victoriametrics.ratio, Some(1.25));
        assert_eq!(r.vs_victoriametrics.met, Some(false));
        let one = Figure::ok(1.0);
        let values = Values {
            didban: &na,
            prometheus: &one,
            victoriametrics: &one,
        };
        let n = Row::new("y", "ms", Better::Lower, Goals::default(), values);
        assert!(n.vs_prometheus.ratio.is_none() && n.vs_victoriametrics.ratio.is_none());
        let nowhere = std::path::Path::new("/nonexistent");
        let rep = Report {
            machine: Machine::detect(nowhere, nowhere),
            scenario: vec![],
            rows: vec![r, n],
            notes: vec![],
        };
        let t = rep.to_text();
        assert!(t.contains("2.00×"));
        assert!(t.contains("≥ 2× met"));
        assert!(t.contains("1.25×"));
        assert!(t.contains("≥ 1.5× NOT met"));
        assert!(t.contains("n/a (HTTP 404)"));
    }
}
