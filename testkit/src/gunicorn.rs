//! A real gunicorn serving a test's WSGI app on a reserved loopback port, ready once the app
//! answers, killed on drop. Its output goes to a file, read when it does not come up.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::ports::reserve;
use crate::process::Proc;
use crate::wait::{until, HANG};

/// A running gunicorn (one sync worker); killed when dropped.
pub struct Gunicorn {
    /// The server process.
    pub proc: Proc,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
}

impl Gunicorn {
    /// Serves `app` (`module:callable`) from `dir` with extra environment `envs`, logging to
    /// `log`, and waits (up to [`HANG`]) until `GET ready_path` answers 200. Panics with the
    /// log when it does not (e.g. gunicorn or a package of tests/requirements.txt missing).
    pub fn start(dir: &Path, app: &str, envs: &[(&str, &str)], log: &Path, ready_path: &str) -> Gunicorn {
        let out = std::fs::File::create(log).unwrap();
        let port = reserve().release();
        let child = Command::new("python3")
            .args(["-m", "gunicorn", "--workers", "1", "--bind"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--chdir")
            .arg(dir)
            .arg(app)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run python3 -m gunicorn: {e}"));
        let mut gunicorn = Gunicorn {
            proc: Proc(child),
            port,
        };
        let url = gunicorn.url(ready_path);
        until(&format!("gunicorn to answer {url}"), HANG, || {
            if gunicorn.proc.exited() {
                panic!(
                    "gunicorn exited (pip install -r tests/requirements.txt?):\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            match reqwest::blocking::get(&url) {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(r.status().to_string()),
                Err(e) => Err(e.to_string()),
            }
        });
        gunicorn
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}
