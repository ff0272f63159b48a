//! Issue 13: a burst of concurrent wrong passwords against the real `didban serve` costs at
//! most the rate limit's worth of Argon2 verifications — and so bounded memory — and the
//! rest are told to come back later (429 with `Retry-After`), on basic auth and on the
//! sign-in page alike.

use std::thread;

use crate::auth_support::*;
use reqwest::header::RETRY_AFTER;

const ADMIN: (&str, &str) = ("admin", "admin-pass-1");

/// Failed sign-ins per address per window (`Auth::open`).
const LIMIT: usize = 10;

/// The process's peak resident set (`VmHWM`) in kB.
fn vm_hwm_kb(server: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// `(status, Retry-After)` of a basic-auth API request from `address` (through the trusted
/// proxy 127.0.0.1).
fn basic(server: &Server, address: &str, user: &str, pass: &str) -> (u16, Option<String>) {
    let r = client()
        .get(server.url("/api/v1/query?query=1"))
        .basic_auth(user, Some(pass))
        .header("x-forwarded-for", address)
        .send()
        .unwrap();
    let retry = r
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (r.status().as_u16(), retry)
}

#[test]
fn a_burst_of_wrong_passwords_is_answered_429_without_argon2() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("didban.toml");
    std::fs::write(&config, "[auth]\ntrusted_proxies = [\"127.0.0.1\"]\n").unwrap();
    let config = config.to_str().unwrap().to_string();
    let envs = [("DIDBAN_ADMIN_USER", ADMIN.0), ("DIDBAN_ADMIN_PASSWORD", ADMIN.1)];
    let server = start(
        &dir.path().join("data"),
        &["--auth", "true", "--config", &config],
        &envs,
        &dir.path().join("stderr.txt"),
    );

    let before_kb = vm_hwm_kb(&server);
    let answers: Vec<(u16, Option<String>)> = thread::scope(|s| {
        let burst: Vec<_> = (0..64)
            .map(|i| {
                let server = &server;
                s.spawn(move || basic(server, "198.51.100.1", ADMIN.0, &format!("wrong-{i}")))
            })
            .collect();
        burst.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let after_kb = vm_hwm_kb(&server);
    let verified = answers.iter().filter(|(s, _)| *s == 401).count();
    let limited = answers
        .iter()
        .filter(|(s, retry)| *s == 429 && retry.as_deref().is_some_and(|r| r.parse::<u64>().is_ok()))
        .count();
    assert!(
        verified <= LIMIT,
        "{verified} wrong passwords verified: {answers:?}"
    );
    assert_eq!(verified + limited, 64, "{answers:?}");
    // At most 4 Argon2 runs of 19 MiB at once; 64 at once would be over 1 GiB.
    let grown_mib = after_kb.saturating_sub(before_kb) / 1024;
    assert!(
        grown_mib < 600,
        "VmHWM grew {grown_mib} MiB ({before_kb} → {after_kb} kB)"
    );

    // The address stays refused, also with the right password; another one gets in.
    assert_eq!(basic(&server, "198.51.100.1", ADMIN.0, ADMIN.1).0, 429);
    assert_eq!(basic(&server, "198.51.100.2", ADMIN.0, ADMIN.1).0, 200);

    // The sign-in page says the same with a page.
    let r = client()
        .post(server.url("/login"))
        .header("x-forwarded-for", "198.51.100.1")
        .form(&[("user", ADMIN.0), ("password", ADMIN.1), ("next", "/")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().get(RETRY_AFTER).is_some());
    let html = r.text().unwrap();
    assert!(html.contains("Too many failed sign-ins"), "{html}");
}
