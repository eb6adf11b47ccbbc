//! `cordon worker`'s consumer of a JetStream work queue (`stream.rs`), against a real NATS
//! server: what it refuses, it refuses without dying.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cordon_engine::policy::Policy;
use cordon_server::AppState;
use cordon_server::stream::{NatsTarget, consume, submissions_subject};
use cordon_signals::DecodeLimits;
use cordon_store::Store;
use cordon_testkit::{NatsServer, reference_image as image};
use futures_util::StreamExt;
use serde_json::Value;

const STREAM: &str = "UPLOADS";

#[test]
fn an_upload_posted_at_an_impossible_date_is_refused_and_the_worker_consumes_on() {
    let nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let location = cordon_store::StoreLocation::parse(&cordon_testkit::store_url_for(data.path())).unwrap();
    let state = Arc::new(AppState::open_at(&location, DecodeLimits::default(), Policy::default()).unwrap());
    let target = NatsTarget {
        url: nats.url(),
        ..NatsTarget::default()
    };
    // The worker on its own thread and runtime, as `cordon worker` runs it: a panic ends
    // the thread, and nothing after it is decided.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let _ = runtime.block_on(consume(state, &target, STREAM));
    });

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let reports: Vec<Value> = runtime.block_on(async {
        let client = async_nats::connect(nats.url()).await.unwrap();
        let mut errors = client.subscribe(format!("{STREAM}.errors")).await.unwrap();
        client.flush().await.unwrap();
        let context = async_nats::jetstream::new(client);
        cordon_testkit::nats::wait_for_stream(&context, STREAM).await;
        let photo = std::fs::read(image("misc-images/b.jpg")).unwrap();
        let publish = |content_id: &'static str, posted_at: &'static str| {
            let (context, photo) = (context.clone(), photo.clone());
            async move {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Content-Id", content_id);
                headers.insert("Account-Id", "acct");
                headers.insert("Posted-At", posted_at);
                let stored = context
                    .publish_with_headers(submissions_subject(STREAM), headers, photo.into())
                    .await
                    .unwrap();
                stored.await.unwrap();
            }
        };
        // Past year 9999 in UTC (formatting it panicked), and before year 0 in UTC.
        publish("far-future", "9999-12-31T23:59:59-23:59").await;
        publish("far-past", "0000-01-01T00:00:00+23:59").await;
        publish("fine", "2026-11-29T10:00:00Z").await;
        let mut reports = Vec::new();
        while reports.len() < 2 {
            let report = tokio::time::timeout(Duration::from_secs(20), errors.next())
                .await
                .expect("no refusal reported on UPLOADS.errors")
                .unwrap();
            reports.push(serde_json::from_slice(&report.payload).unwrap());
        }
        reports
    });
    for (report, content_id) in reports.iter().zip(["far-future", "far-past"]) {
        assert_eq!(report["content_id"], content_id, "{report}");
        assert!(
            report["error"].as_str().unwrap().contains("posted_at"),
            "{report}"
        );
    }
    // The worker lives on: the good upload after them is decided.
    let store = Store::open_at(&location).unwrap();
    let started = Instant::now();
    while store.submission_by_content_id("fine").unwrap().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the upload after the refused ones was never decided"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for refused in ["far-future", "far-past"] {
        assert!(
            store.submission_by_content_id(refused).unwrap().is_none(),
            "{refused}"
        );
    }
}
