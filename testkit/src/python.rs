//! Python helpers of the tests (exporters, SMTP servers, fill scripts, Playwright) as child
//! processes: started, waited for until they print their first line (their "ready" or
//! their result), and killed on drop. A missing `python3` or package fails the test with what
//! to install; nothing is skipped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;

use crate::process::Proc;
use crate::wait::HANG;

/// What to run: a script file, inline code (`python3 -c`) or a module (`python3 -m`).
#[derive(Clone, Copy, Debug)]
pub enum Source<'a> {
    /// A script file.
    Script(&'a Path),
    /// Inline code, run with `-c`.
    Code(&'a str),
    /// A module, run with `-m`.
    Module(&'a str),
}

/// A running Python process; killed when dropped. Its stdin stays open (a helper may read it
/// until EOF to know when to stop) and its stderr goes to a file, read when it fails: a pipe
/// nobody reads would stall a chatty helper once the pipe buffer is full.
pub struct Python {
    proc: Proc,
    stderr: tempfile::NamedTempFile,
}

impl Python {
    /// Starts `python3` on `source` with `args` and waits (up to [`HANG`]) for the first line
    /// it prints on stdout; returns the process and that line, trimmed. Panics with the
    /// helper's stderr when it exits or stays silent.
    pub fn start(source: Source, args: &[&str]) -> (Python, String) {
        match Python::try_start(source, args) {
            Ok(started) => started,
            Err(why) => panic!("{why}"),
        }
    }

    /// Like [`Python::start`], returning why it failed instead of panicking (for callers that
    /// retry, e.g. on a port taken in between).
    pub fn try_start(source: Source, args: &[&str]) -> Result<(Python, String), String> {
        let stderr = tempfile::NamedTempFile::new().unwrap();
        let mut cmd = Command::new("python3");
        match source {
            Source::Script(path) => cmd.arg(path),
            Source::Code(code) => cmd.args(["-c", code]),
            Source::Module(module) => cmd.args(["-m", module]),
        };
        let child = cmd
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr.reopen().unwrap()))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run python3 ({source:?}): {e}; is python3 installed?"));
        let mut python = Python {
            proc: Proc(child),
            stderr,
        };
        let stdout = python.proc.0.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // Reading blocks; a thread lets the wait have a deadline. It then drains the rest, so
        // a helper printing more later does not die of a closed pipe.
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let read = reader.read_line(&mut line);
            let _ = tx.send(read.map(|_| line));
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let line = match rx.recv_timeout(HANG) {
            Ok(Ok(line)) => line,
            Ok(Err(e)) => return Err(format!("{source:?}: reading its stdout failed: {e}")),
            Err(_) => {
                return Err(format!(
                    "{source:?} printed nothing within {HANG:?}; stderr:\n{}",
                    python.stderr_text()
                ))
            }
        };
        if line.trim().is_empty() {
            let _ = python.proc.0.wait();
            return Err(format!(
                "{source:?} {args:?} exited without printing; is `pip install -r tests/requirements.txt` done?\nstderr:\n{}",
                python.stderr_text()
            ));
        }
        Ok((python, line.trim().to_string()))
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.proc.id()
    }

    /// What the process wrote to stderr so far.
    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(self.stderr.path()).unwrap_or_default()
    }
}

/// `None` when `python3` can import `module`, else why not (with what to install).
pub fn missing_module(module: &str) -> Option<String> {
    let probe = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output();
    match probe {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "python3 cannot import {module} (pip install -r tests/requirements.txt): {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("python3 does not run: {e}")),
    }
}
