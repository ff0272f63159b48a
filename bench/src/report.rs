//! The results: one row per figure with Didban, Prometheus and their ratio, the machine they
//! were measured on, a text table and JSON.

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

/// One line of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// What is measured.
    pub figure: String,
    /// Unit of the values.
    pub unit: String,
    /// Didban's value.
    pub didban: Figure,
    /// Prometheus' value.
    pub prometheus: Figure,
    /// Didban ÷ Prometheus, when both exist.
    pub ratio: Option<f64>,
    /// Direction of "better".
    pub better: Better,
    /// The goal from the issue as a ratio Didban ÷ Prometheus (at least this for `Higher`,
    /// at most this for `Lower`); `None` for figures without a goal.
    pub goal_ratio: Option<f64>,
    /// Whether the goal is met, when there is a goal and a ratio.
    pub goal_met: Option<bool>,
}

impl Row {
    /// A row; the ratio and whether the goal is met are computed from the two values.
    pub fn new(
        figure: &str,
        unit: &str,
        better: Better,
        goal_ratio: Option<f64>,
        didban: &Figure,
        prometheus: &Figure,
    ) -> Self {
        let ratio = match (didban.value, prometheus.value) {
            (Some(d), Some(p)) if p != 0.0 => Some(d / p),
            _ => None,
        };
        let goal_met = match (ratio, goal_ratio, better) {
            (Some(r), Some(g), Better::Higher) => Some(r >= g),
            (Some(r), Some(g), Better::Lower) => Some(r <= g),
            _ => None,
        };
        Row {
            figure: figure.into(),
            unit: unit.into(),
            didban: didban.clone(),
            prometheus: prometheus.clone(),
            ratio,
            better,
            goal_ratio,
            goal_met,
        }
    }

    fn goal_text(&self) -> String {
        let Some(g) = self.goal_ratio else {
            return String::new();
        };
        let dir = match self.better {
            Better::Higher => "≥",
            Better::Lower => "≤",
        };
        let met = match self.goal_met {
            Some(true) => " met",
            Some(false) => " NOT met",
            None => "",
        };
        format!("{dir} {g}×{met}")
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
        .unwrap_or_else(|| "unknown".into())
}

impl Machine {
    /// Reads the machine's description from /proc and a few commands.
    pub fn detect(prometheus_bin: &std::path::Path) -> Self {
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
            "Machine: {} | {} cores | {} GiB RAM | kernel {} | didban rev {} | {}\n",
            m.cpu, m.cores, m.ram_gib, m.kernel, m.git_revision, m.prometheus_version
        );
        out.push_str("Scenario:");
        for (k, v) in &self.scenario {
            out.push_str(&format!(" {k}={v}"));
        }
        out.push_str("\n\n");
        let header = ["figure", "unit", "Didban", "Prometheus", "Didban/Prom", "goal"];
        let cells: Vec<[String; 6]> = self
            .rows
            .iter()
            .map(|r| {
                [
                    r.figure.clone(),
                    r.unit.clone(),
                    r.didban.text(),
                    r.prometheus.text(),
                    r.ratio.map_or("-".into(), |x| format!("{x:.2}×")),
                    r.goal_text(),
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
    fn ratio_and_na_render() {
        let (ok, na) = (Figure::ok(200.0), Figure::na("HTTP 404"));
        let r = Row::new("x", "1/s", Better::Higher, Some(2.0), &ok, &Figure::ok(100.0));
        assert_eq!(r.ratio, Some(2.0));
        assert_eq!(r.goal_met, Some(true));
        let n = Row::new("y", "ms", Better::Lower, Some(1.0), &na, &Figure::ok(1.0));
        assert!(n.ratio.is_none());
        let rep = Report {
            machine: Machine::detect(std::path::Path::new("/nonexistent")),
            scenario: vec![],
            rows: vec![r, n],
            notes: vec![],
        };
        let t = rep.to_text();
        assert!(t.contains("2.00×"));
        assert!(t.contains("≥ 2× met"));
        assert!(t.contains("≥ 2× met"));
        assert!(t.contains("n/a (HTTP 404)"));
    }
}
