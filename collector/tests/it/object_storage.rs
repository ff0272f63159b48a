//! The server's stores with metric blocks in a real Garage bucket (`[storage] object_store =
//! "s3"`): what one server pushed and cut into a block is answered by a second server that
//! shares only the bucket, over a fresh data directory; with the PostgreSQL metastore two
//! servers share the bucket at once, each answering for the other's blocks, one compacting.

use std::time::Duration;

use crate::ingest_support::{gauge_request, now_ns, start, values};
use didban_store::{BlockStorage, MetastoreConfig, S3Config};
use didban_testkit::garage::{Garage, REGION};
use didban_testkit::postgres::Postgres;
use didban_testkit::wait::until_async;
use prost::Message;

fn bucket(garage: &Garage) -> BlockStorage {
    BlockStorage::S3(S3Config {
        endpoint: garage.endpoint(0),
        bucket: garage.bucket.clone(),
        region: REGION.to_string(),
        access_key_id: garage.access_key_id.clone(),
        secret_access_key: garage.secret_access_key.clone(),
        allow_http: true,
        cache_bytes: 64 << 20,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_an_empty_data_dir_answers_from_the_bucket() {
    let garage = tokio::task::spawn_blocking(Garage::start).await.unwrap();
    let storage = bucket(&garage);

    let first = {
        let storage = storage.clone();
        start(move |c| c.storage.blocks = storage).await
    };
    let body = gauge_request("bucket.gauge", &[4.25], now_ns()).encode_to_vec();
    let response = reqwest::Client::new()
        .post(format!("{}/v1/metrics", first.otlp_http))
        .header("content-type", "application/x-protobuf")
        .timeout(Duration::from_secs(30))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let db = first.state.stores.metrics.clone();
    tokio::task::spawn_blocking(move || db.flush_head())
        .await
        .unwrap()
        .unwrap();
    // One process per bucket at a time (docs/deployment.md): the first stops before the
    // second opens.
    first.state.stores.close().await.unwrap();
    drop(first);
    let second = start(move |c| c.storage.blocks = storage).await;
    assert_eq!(
        values(&second.state, "bucket_gauge", &[("job", "test")]),
        vec![4.25],
        "the second server has only the bucket in common with the first"
    );
}

/// Pushes one gauge sample to `server` over OTLP/HTTP and writes its head as a block.
async fn push_and_flush(server: &crate::ingest_support::Server, name: &str, value: f64) {
    let body = gauge_request(name, &[value], now_ns()).encode_to_vec();
    let response = reqwest::Client::new()
        .post(format!("{}/v1/metrics", server.otlp_http))
        .header("content-type", "application/x-protobuf")
        .timeout(Duration::from_secs(30))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let db = server.state.stores.metrics.clone();
    tokio::task::spawn_blocking(move || db.flush_head())
        .await
        .unwrap()
        .unwrap();
}

/// One maintenance round of `server`'s metric database (refresh from the metastore).
async fn maintain(server: &crate::ingest_support::Server) {
    let db = server.state.stores.metrics.clone();
    tokio::task::spawn_blocking(move || db.maintain(didban_testkit::now_ms()))
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_a_bucket_through_the_metastore() {
    let garage = tokio::task::spawn_blocking(Garage::start).await.unwrap();
    let pg = tokio::task::spawn_blocking(Postgres::start).await.unwrap();
    let storage = bucket(&garage);
    let mut metastore = MetastoreConfig::new(pg.dsn("postgres"));
    metastore.compactor_lease_ttl = Duration::from_secs(2);
    let config = |c: &mut didban_collector::config::Config| {
        c.storage.blocks = storage.clone();
        c.storage.metastore = Some(metastore.clone());
    };
    let first = start(config).await;
    let second = start(config).await;

    push_and_flush(&first, "first.gauge", 1.5).await;
    push_and_flush(&second, "second.gauge", 2.5).await;
    maintain(&first).await;
    maintain(&second).await;
    for server in [&first, &second] {
        assert_eq!(
            values(&server.state, "first_gauge", &[("job", "test")]),
            vec![1.5]
        );
        assert_eq!(
            values(&server.state, "second_gauge", &[("job", "test")]),
            vec![2.5]
        );
    }
    // Exactly one of them is the compactor.
    until_async(
        "one server to hold the compactor lease",
        Duration::from_secs(10),
        || async {
            let a = first.state.stores.metrics.stats().compactor;
            let b = second.state.stores.metrics.stats().compactor;
            if a != b {
                Ok(())
            } else {
                Err(format!("first {a}, second {b}"))
            }
        },
    )
    .await;
}
