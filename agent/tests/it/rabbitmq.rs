//! RabbitMQ queue depth from the management API of a private broker started by the test,
//! with a queue filled by real kombu over AMQP; every sample names the broker's address.

use std::time::{Duration, Instant};

use crate::common::scripts::spawn_python;
use didban_agent::collectors::rabbitmq::RabbitmqCollector;
use didban_agent::collectors::Collector;
use didban_agent::config::RabbitmqConfig;
use didban_agent::model::Sample;
use didban_testkit::rabbitmq::Rabbitmq;

fn config(port: u16, password: &str) -> RabbitmqConfig {
    RabbitmqConfig {
        url: format!("http://127.0.0.1:{port}"),
        username: "guest".into(),
        password: password.into(),
        vhost: String::new(),
        queues: vec![],
        tls_ca_file: String::new(),
        max_queues: 500,
        interval: None,
        timeout: Duration::from_secs(5),
        amqp_url: String::new(),
        celery_events: true,
        celery_event_exchange: "celeryev".into(),
        celery_max_task_names: 100,
        celery_worker_forget_after: Duration::from_secs(600),
    }
}

fn value(s: &[Sample], name: &str) -> Option<f64> {
    s.iter()
        .find(|x| x.name == name && x.label("queue") == Some("orders"))
        .map(|x| x.value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_depth_ready_unacked() {
    let broker = Rabbitmq::start();
    let url = format!("amqp://guest:guest@127.0.0.1:{}//", broker.amqp_port);
    let (_client, ready) = spawn_python("rabbit_fill.py", &[&url]);
    assert_eq!(ready, "READY");

    let mut c = RabbitmqCollector::new(&config(broker.management_port, "guest"));
    // The management API refreshes queue statistics every 500 ms in the test broker.
    let deadline = Instant::now() + Duration::from_secs(30);
    let samples = loop {
        let s = c.collect().await.unwrap();
        if value(&s, "rabbitmq_queue_messages_unacknowledged") == Some(2.0)
            && value(&s, "rabbitmq_queue_messages_ready") == Some(3.0)
        {
            break s;
        }
        assert!(Instant::now() < deadline, "depth never matched: {s:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(value(&samples, "rabbitmq_queue_messages"), Some(5.0));
    assert_eq!(value(&samples, "rabbitmq_queue_consumers"), Some(0.0));
    let ready = samples
        .iter()
        .find(|x| x.name == "rabbitmq_queue_messages_ready")
        .unwrap();
    assert_eq!(ready.label("vhost"), Some("/"));
    let instance = format!("127.0.0.1:{}", broker.management_port);
    for sample in &samples {
        assert_eq!(sample.label("instance"), Some(instance.as_str()), "{sample:?}");
    }
    let identity = samples
        .iter()
        .find(|x| x.name == "rabbitmq_identity_info")
        .unwrap();
    assert_eq!(identity.label("rabbitmq_node"), Some(broker.node()));
    assert!(!identity.label("rabbitmq_cluster").unwrap_or_default().is_empty());
    assert_eq!(
        samples.iter().find(|x| x.name == "rabbitmq_up").unwrap().value,
        1.0
    );

    let mut wrong = RabbitmqCollector::new(&config(broker.management_port, "nope"));
    let s = wrong.collect().await.unwrap();
    assert_eq!(s.iter().find(|x| x.name == "rabbitmq_up").unwrap().value, 0.0);
}
