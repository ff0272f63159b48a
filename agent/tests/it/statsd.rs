//! StatsD packets over real UDP: counters with sample rates, gauges, timers, sets,
//! DogStatsD tags, malformed lines, and a taken port.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use didban_agent::collectors::statsd::StatsdCollector;
use didban_agent::collectors::Collector;
use didban_agent::config::StatsdConfig;
use didban_agent::model::{MetricKind, Sample};
use didban_testkit::wait::HANG;

fn find<'a>(s: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> &'a Sample {
    s.iter()
        .find(|x| x.name == name && labels.iter().all(|(k, v)| x.label(k) == Some(*v)))
        .unwrap_or_else(|| {
            panic!(
                "no {name}{labels:?} in {:?}",
                s.iter().map(|x| &x.name).collect::<Vec<_>>()
            )
        })
}

/// Collects until the collector has counted `packets` packets (UDP on loopback arrives at
/// once, but its receiver task runs when the machine lets it).
async fn collect_until(c: &mut StatsdCollector, packets: f64) -> Vec<Sample> {
    let deadline = Instant::now() + HANG;
    loop {
        let s = c.collect().await.unwrap();
        let got = find(&s, "didban_agent_statsd_packets_total", &[]).value;
        if got >= packets {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "packets did not arrive: {got} of {packets} after {HANG:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn aggregates_udp_packets() {
    let config = StatsdConfig {
        enabled: true,
        listen: "127.0.0.1:0".into(),
        ..StatsdConfig::default()
    };
    let mut c = StatsdCollector::bind(&config).unwrap();
    let addr = c.local_addr().to_string();
    c.collect().await.unwrap(); // starts the receiver
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    let packets = [
        "api.requests:1|c|#route:/users,method:GET\napi.requests:1|c|#route:/users,method:GET",
        "api.requests:2|c|@0.5|#method:GET,route:/users",
        "queue.depth:10|g\nqueue.depth:-3|g",
        "db.query:120|ms\ndb.query:80|ms\ndb.query:100|ms",
        "payload.size:512|h",
        "users.active:alice|s\nusers.active:bob|s\nusers.active:alice|s",
        "garbage line\nbroken:1|zz",
    ];
    for p in packets {
        client.send_to(p.as_bytes(), &addr).unwrap();
    }
    let s = collect_until(&mut c, 7.0).await;
    let req = find(
        &s,
        "api_requests_total",
        &[("route", "/users"), ("method", "GET")],
    );
    assert_eq!((req.value, req.kind), (6.0, MetricKind::Counter));
    assert_eq!(find(&s, "queue_depth", &[]).value, 7.0);
    assert_eq!(find(&s, "db_query_seconds_count", &[]).value, 3.0);
    assert!((find(&s, "db_query_seconds_sum", &[]).value - 0.3).abs() < 1e-9);
    assert_eq!(find(&s, "db_query_seconds", &[("quantile", "0.5")]).value, 0.1);
    assert_eq!(find(&s, "db_query_seconds", &[("quantile", "0.99")]).value, 0.12);
    assert_eq!(find(&s, "payload_size_sum", &[]).value, 512.0);
    assert_eq!(find(&s, "users_active", &[]).value, 2.0);
    assert_eq!(find(&s, "didban_agent_statsd_parse_errors_total", &[]).value, 2.0);

    // The next flush: counters keep counting, sets start over.
    client
        .send_to(b"api.requests:1|c|#method:GET,route:/users", &addr)
        .unwrap();
    let s = collect_until(&mut c, 8.0).await;
    assert_eq!(find(&s, "api_requests_total", &[]).value, 7.0);
    assert_eq!(find(&s, "users_active", &[]).value, 0.0);
}

#[tokio::test]
async fn taken_port_is_a_clear_error() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let config = StatsdConfig {
        enabled: true,
        listen: addr.clone(),
        ..StatsdConfig::default()
    };
    let err = StatsdCollector::bind(&config).err().unwrap();
    assert!(err.to_string().contains(&addr), "{err}");
}
