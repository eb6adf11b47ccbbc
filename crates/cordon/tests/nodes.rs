//! Several `cordon serve` processes on one PostgreSQL store: a hash added, disabled or
//! imported anywhere is live everywhere within a second, one node leads the webhook
//! deliveries, and when it is killed another takes over and delivers everything.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use common::{cordon_in, free_port, image, ok_lines, receive_on, serve_on};
use serde_json::{Value, json};

const BRIDGE: &str = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";

/// One node of the cluster.
struct Node {
    base: String,
    child: Child,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_node(data: &Path, store: &str, config: &Path) -> Node {
    let port = free_port();
    Node {
        base: format!("http://127.0.0.1:{port}"),
        child: serve_on(data, store, port, config),
    }
}

/// The CLI on `store`, expected to succeed: its JSON lines.
fn cli_on(data: &Path, store: &str, args: &[&str], stdin: Option<&[u8]>) -> Vec<Value> {
    let mut all = vec!["--store", store];
    all.extend_from_slice(args);
    ok_lines(&cordon_in(data, &all, stdin))
}

/// Bank TVEC holding the bridge photo's hash, on `store`.
fn bank_of_bridge(data: &Path, store: &str) {
    cli_on(data, store, &["bank", "create", "TVEC"], None);
    cli_on(
        data,
        store,
        &["bank", "import", "TVEC", "-"],
        Some(format!("pdq {BRIDGE}\n").as_bytes()),
    );
}

/// A key of `role` made through the CLI on `store`.
fn key(data: &Path, store: &str, role: &str) -> String {
    ok_lines(&cordon_in(
        data,
        &["--store", store, "keys", "create", "--role", role, "--name", role],
        None,
    ))[0]["key"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Whether `node` matches `hash` in bank `bank` now.
fn matches(node: &Node, key: &str, bank: &str, hash: &str) -> bool {
    let answer: Value = reqwest::blocking::Client::new()
        .get(format!("{}/m/lookup?signal_type=pdq&signal={hash}", node.base))
        .bearer_auth(key)
        .send()
        .unwrap()
        .json()
        .unwrap();
    answer.get(bank).is_some()
}

/// How long until `ready` holds for every node (panics after 5 s).
fn until_all(nodes: &[&Node], ready: impl Fn(&Node) -> bool) -> Duration {
    let started = Instant::now();
    while !nodes.iter().all(|node| ready(node)) {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "not live everywhere after 5 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    started.elapsed()
}

fn is_leader(node: &Node) -> bool {
    reqwest::blocking::get(format!("{}/metrics", node.base))
        .and_then(|r| r.text())
        .is_ok_and(|text| text.lines().any(|line| line == "cordon_leader 1"))
}

#[test]
fn three_nodes_share_one_store_live_and_a_killed_leader_loses_no_webhook() {
    let store = cordon_testkit::shared_postgres().new_database("nodes");
    let data = tempfile::tempdir().unwrap();
    let cli = |args: &[&str], stdin: Option<&[u8]>| cli_on(data.path(), &store, args, stdin);
    bank_of_bridge(data.path(), &store);
    let (admin, submitter) = (
        key(data.path(), &store, "admin"),
        key(data.path(), &store, "submitter"),
    );
    let hook_port = free_port();
    let config = common::webhook_config(data.path(), hook_port, r#""remove""#, "");
    let mut nodes: Vec<Node> = (0..3).map(|_| start_node(data.path(), &store, &config)).collect();
    let all: Vec<&Node> = nodes.iter().collect();
    assert!(all.iter().all(|node| matches(node, &admin, "TVEC", BRIDGE)));

    // A hash added through one node is live on every node within a second.
    let http = reqwest::blocking::Client::new();
    let added = cordon_testkit::flipped(BRIDGE, 64);
    let answer: Value = http
        .post(format!("{}/c/bank/TVEC/signal", nodes[0].base))
        .bearer_auth(&admin)
        .json(&json!({ "pdq": added }))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let took = until_all(&all, |node| matches(node, &admin, "TVEC", &added));
    eprintln!("added on one node, live on all three in {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");

    // Disabled through another: matches nowhere within a second.
    let content_id = answer["id"].as_i64().unwrap();
    let disabled = http
        .put(format!("{}/c/bank/TVEC/content/{content_id}", nodes[1].base))
        .bearer_auth(&admin)
        .json(&json!({ "disable_until_ts": 1 }))
        .send()
        .unwrap();
    assert!(disabled.status().is_success());
    let took = until_all(&all, |node| !matches(node, &admin, "TVEC", &added));
    assert!(took < Duration::from_secs(1), "disabled everywhere in {took:?}");

    // A bank imported with the CLI on the side: live on all nodes too.
    let imported = cordon_testkit::flipped(BRIDGE, 128);
    cli(&["bank", "create", "GIFCT"], None);
    cli(
        &["bank", "import", "GIFCT", "-"],
        Some(format!("pdq {imported}\n").as_bytes()),
    );
    let took = until_all(&all, |node| matches(node, &admin, "GIFCT", &imported));
    assert!(
        took < Duration::from_secs(1),
        "imported bank live everywhere in {took:?}"
    );

    // One leader. With the receiver down, decisions wait in the outbox...
    until_all(&all, |_| all.iter().filter(|n| is_leader(n)).count() == 1);
    let leader = nodes.iter().position(is_leader).unwrap();
    let mut decisions = BTreeSet::new();
    for (n, node) in nodes.iter().enumerate() {
        let form = reqwest::blocking::multipart::Form::new()
            .file("media", image("misc-images/b.jpg"))
            .unwrap()
            .text("content_id", format!("post-{n}"))
            .text("account_id", format!("acct-{n}"));
        let answer: Value = http
            .post(format!("{}/v1/submissions", node.base))
            .bearer_auth(&submitter)
            .multipart(form)
            .send()
            .unwrap()
            .json()
            .unwrap();
        for decision in answer["decisions"].as_array().unwrap() {
            decisions.insert(format!("decision-{}", decision["id"]));
        }
    }
    assert_eq!(decisions.len(), 3);
    // ...the leader is killed, the receiver comes up, and another node delivers them all.
    nodes.remove(leader); // SIGKILL
    let received = receive_on(hook_port);
    let survivors: Vec<&Node> = nodes.iter().collect();
    let started = Instant::now();
    let keys = loop {
        let keys: BTreeSet<String> = received
            .lock()
            .unwrap()
            .iter()
            .map(|body| serde_json::from_str::<Value>(body).unwrap()["idempotency_key"].to_string())
            .map(|key| key.trim_matches('"').to_string())
            .collect();
        if decisions.is_subset(&keys) {
            break keys;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "delivered {keys:?} of {decisions:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(keys, decisions);
    assert_eq!(
        survivors.iter().filter(|n| is_leader(n)).count(),
        1,
        "a new leader"
    );

    // A node that was down catches up when it comes back.
    let late = cordon_testkit::flipped(BRIDGE, 192);
    cli(
        &["bank", "import", "GIFCT", "-"],
        Some(format!("pdq {late}\n").as_bytes()),
    );
    let back = start_node(data.path(), &store, &config);
    assert!(matches(&back, &admin, "GIFCT", &late));
    assert!(matches(&back, &admin, "GIFCT", &imported));
}

/// Publishes uploads to the stream `stream` (waiting until a worker has made it): `b.jpg`
/// as `post-<n>` from `acct-<n>`, each acknowledged by JetStream as stored.
fn publish_uploads(nats: &str, stream: &str, count: usize) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(nats).await.unwrap();
        let context = async_nats::jetstream::new(client);
        let started = Instant::now();
        while context.get_stream(stream).await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the worker made no stream"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let photo = std::fs::read(image("misc-images/b.jpg")).unwrap();
        for n in 0..count {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Content-Id", format!("post-{n}").as_str());
            headers.insert("Account-Id", format!("acct-{n}").as_str());
            let subject = format!("{stream}.submissions");
            let stored = context
                .publish_with_headers(subject, headers, photo.clone().into())
                .await
                .unwrap();
            stored.await.unwrap();
        }
        // Not an image: terminated, not retried forever.
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Content-Id", "not-an-image");
        headers.insert("Account-Id", "acct-x");
        let subject = format!("{stream}.submissions");
        let stored = context
            .publish_with_headers(subject, headers, "hello".into())
            .await
            .unwrap();
        stored.await.unwrap();
    });
}

fn start_worker(data: &Path, store: &str, nats: &str, config: &Path) -> Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args(["--data"])
        .arg(data)
        .args([
            "--store", store, "worker", "--nats", nats, "--stream", "UPLOADS", "--config",
        ])
        .arg(config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// The decisions of account `account` (none when Cordon never saw it).
fn account_decisions(node: &Node, key: &str, account: &str) -> Option<usize> {
    let answer = reqwest::blocking::Client::new()
        .get(format!("{}/v1/accounts/{account}", node.base))
        .bearer_auth(key)
        .send()
        .unwrap();
    if answer.status().as_u16() == 404 {
        return None;
    }
    let account: Value = answer.json().unwrap();
    Some(account["history"].as_array().unwrap().len())
}

#[test]
fn a_killed_worker_loses_no_upload_and_decides_none_twice() {
    const UPLOADS: usize = 60;
    let store = cordon_testkit::shared_postgres().new_database("worker");
    let nats = cordon_testkit::NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    bank_of_bridge(data.path(), &store);
    let submitter = key(data.path(), &store, "submitter");
    let hook_port = free_port();
    let received = receive_on(hook_port);
    let config = common::webhook_config(data.path(), hook_port, r#""remove""#, "");
    let node = start_node(data.path(), &store, &config);

    let mut worker = start_worker(data.path(), &store, &nats.url(), &config);
    publish_uploads(&nats.url(), "UPLOADS", UPLOADS);
    // Killed (SIGKILL) once it has decided a few, with more in hand and waiting.
    let started = Instant::now();
    while account_decisions(&node, &submitter, "acct-3").is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the worker decided nothing"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    worker.kill().unwrap();
    worker.wait().unwrap();
    let decided_before = (0..UPLOADS)
        .filter(|n| account_decisions(&node, &submitter, &format!("acct-{n}")).is_some())
        .count();
    let mut worker = start_worker(data.path(), &store, &nats.url(), &config);

    // Every upload decided exactly once; every decision delivered (at least once, one body
    // per idempotency key).
    let started = Instant::now();
    loop {
        let decided: Vec<Option<usize>> = (0..UPLOADS)
            .map(|n| account_decisions(&node, &submitter, &format!("acct-{n}")))
            .collect();
        if decided.iter().all(Option::is_some) {
            assert!(decided.iter().all(|d| *d == Some(1)), "{decided:?}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "undecided: {decided:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("{decided_before} of {UPLOADS} decided before the kill");
    assert!(
        account_decisions(&node, &submitter, "acct-x").is_none(),
        "not an image: nothing decided"
    );
    let started = Instant::now();
    loop {
        let mut by_key = std::collections::BTreeMap::new();
        for body in received.lock().unwrap().iter() {
            let payload: Value = serde_json::from_str(body).unwrap();
            let key = payload["idempotency_key"].as_str().unwrap().to_string();
            assert!(
                by_key
                    .insert(key, body.clone())
                    .is_none_or(|earlier| &earlier == body)
            );
        }
        if by_key.len() == UPLOADS {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{} of {UPLOADS} delivered",
            by_key.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = worker.kill();
    let _ = worker.wait();
}
