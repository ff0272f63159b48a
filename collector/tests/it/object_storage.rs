//! The server's stores with metric blocks in a real Garage bucket (`[storage] object_store =
//! "s3"`): what one server pushed and cut into a block is answered by a second server that
//! shares only the bucket, over a fresh data directory.

use std::time::Duration;

use crate::ingest_support::{gauge_request, now_ns, start, values};
use didban_store::{BlockStorage, S3Config};
use didban_testkit::garage::{Garage, REGION};
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
