//! A burst of 401s from one client in an nginx access log tailed by the agent, next to
//! ordinary traffic of another client → `AuthFailuresBurst` for that client only.

use std::time::Instant;

use super::stack::{Row, Stack};

const ATTACKER: &str = "198.51.100.23";

pub fn run(stack: &Stack) -> Row {
    let since = stack.delivered().len();
    let clf = chrono::Utc::now().format("%d/%b/%Y:%H:%M:%S +0000");
    let mut lines = String::new();
    for _ in 0..40 {
        lines.push_str(&format!(
            "{ATTACKER} - - [{clf}] \"POST /api/token HTTP/1.1\" 401 27 \"-\" \"python-requests/2.31\" 0.004\n"
        ));
        lines.push_str(&format!(
            "203.0.113.7 - - [{clf}] \"GET /api/orders HTTP/1.1\" 200 512 \"-\" \"Mozilla/5.0\" 0.012\n"
        ));
    }
    for _ in 0..5 {
        lines.push_str(&format!(
            "203.0.113.7 - - [{clf}] \"GET /api/orders HTTP/1.1\" 401 27 \"-\" \"Mozilla/5.0\" 0.002\n"
        ));
    }
    let t0 = Instant::now();
    stack.append_log("access.log", &lines);
    let d = stack.wait_delivery("AuthFailuresBurst", "firing", since);
    let took = d.at - t0;
    assert_eq!(d.labels["client"], ATTACKER, "{:?}", d.labels);
    stack.assert_once("AuthFailuresBurst", "firing");
    let mut clients = Vec::new();
    for a in stack.alerts("firing") {
        if a["labels"]["alertname"] == "AuthFailuresBurst" {
            clients.push(a["labels"]["client"].clone());
        }
    }
    assert_eq!(clients, vec![serde_json::json!(ATTACKER)], "only the attacker");
    let unexpected = stack.unexpected_since(since, &["AuthFailuresBurst"]);
    assert!(unexpected.is_empty(), "{unexpected:?}");
    Row {
        scenario: "40 x 401 from one client (nginx log, agent tail)",
        expected: format!("AuthFailuresBurst client={ATTACKER}"),
        fired: format!(
            "AuthFailuresBurst client={} \"{}\" ({took:.1?})",
            d.labels["client"].as_str().unwrap_or_default(),
            d.annotations["summary"].as_str().unwrap_or_default()
        ),
        verdict: "ok",
    }
}
