//! Which lines continue the record before them. `Auto` keeps stack traces with the line they
//! follow: indented lines (Python `  File …`, Java `\tat …`, `\t... 3 more`),
//! `Traceback (most recent call last):`, `Caused by: …`, Python's chained-exception lines and
//! the blank lines between them, and the final `SomeError: message` line of a traceback.
//! `Start` is the configured `multiline_start` regex: a matching line starts a record.

use regex::Regex;

/// How lines are grouped into records.
#[derive(Debug, Clone)]
pub enum Joiner {
    /// Every line is a record.
    Off,
    /// A line matching the regex starts a record; other lines continue it.
    Start(Regex),
    /// Stack traces are recognised.
    Auto,
}

/// What [`Joiner::Auto`] remembers about the record being assembled.
#[derive(Debug, Default, Clone)]
pub struct JoinState {
    /// Lines in the record.
    pub lines: usize,
    in_traceback: bool,
    last_indented: bool,
}

const CONTINUATION_STARTS: &[&str] = &[
    "Caused by: ",
    "During handling of the above exception",
    "The above exception was the direct cause",
];

/// `ValueError: bad`, `django.db.utils.OperationalError: …`, `KeyboardInterrupt`.
fn is_exception_line(line: &str) -> bool {
    let name = match line.split_once(": ") {
        Some((name, _)) => name,
        None => line,
    };
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

impl JoinState {
    /// Starts a new record with `line`.
    pub fn start(&mut self, line: &str) {
        self.lines = 1;
        self.in_traceback = line.starts_with("Traceback (most recent call last)");
        self.last_indented = false;
    }
}

impl Joiner {
    /// Whether `line` continues the record described by `state` (updated when it does).
    pub fn continues(&self, state: &mut JoinState, line: &str) -> bool {
        let joined = match self {
            Joiner::Off => false,
            Joiner::Start(start) => !start.is_match(line),
            Joiner::Auto => auto(state, line),
        };
        if joined {
            state.lines += 1;
        }
        joined
    }
}

fn auto(state: &mut JoinState, line: &str) -> bool {
    if line.starts_with(' ') || line.starts_with('\t') {
        if line.trim().is_empty() {
            return state.in_traceback;
        }
        state.last_indented = true;
        return true;
    }
    if line.is_empty() {
        return state.in_traceback;
    }
    if line.starts_with("Traceback (most recent call last)") {
        state.in_traceback = true;
        state.last_indented = false;
        return true;
    }
    if CONTINUATION_STARTS.iter().any(|s| line.starts_with(s)) {
        state.last_indented = false;
        return true;
    }
    if state.in_traceback && state.last_indented && is_exception_line(line) {
        state.last_indented = false;
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Groups `lines` as the tailer does.
    fn group(lines: &[&str]) -> Vec<String> {
        let joiner = Joiner::Auto;
        let mut state = JoinState::default();
        let mut out: Vec<String> = Vec::new();
        for line in lines {
            match out.last_mut() {
                Some(last) if joiner.continues(&mut state, line) => {
                    last.push('\n');
                    last.push_str(line);
                }
                _ => {
                    state.start(line);
                    out.push(line.to_string());
                }
            }
        }
        out
    }

    #[test]
    fn python_and_java_traces() {
        let got = group(&[
            "ERROR:root:payment failed",
            "Traceback (most recent call last):",
            "  File \"app.py\", line 3, in pay",
            "    charge()",
            "KeyError: 'card'",
            "",
            "During handling of the above exception, another exception occurred:",
            "",
            "Traceback (most recent call last):",
            "  File \"app.py\", line 5, in pay",
            "ValueError: no card",
            "INFO:root:next request",
            "Exception in thread \"main\" java.lang.IllegalStateException: boom",
            "\tat com.example.App.run(App.java:10)",
            "Caused by: java.io.IOException: gone",
            "\t... 3 more",
            "WARNING:root:after",
        ]);
        assert_eq!(got.len(), 4, "{got:#?}");
        assert!(got[0].ends_with("ValueError: no card"), "{}", got[0]);
        assert_eq!(got[1], "INFO:root:next request");
        assert!(got[2].ends_with("\t... 3 more"));
        assert_eq!(got[3], "WARNING:root:after");
        // A plain line after a plain line is not glued to it.
        assert_eq!(group(&["a", "b: c", "Error: x"]).len(), 3);
    }
}
