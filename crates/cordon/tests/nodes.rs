//! Several `cordon serve` processes on one PostgreSQL store: a hash added, disabled or
//! imported anywhere is live everywhere within a second, one node leads the webhook
//! deliveries, and when it is killed another takes over and delivers everything; the flood
//! guard counts every node's matches and its quarantines hold on every node.

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use crate::common::{cordon_in, free_port, image, ok_lines, receive_on, serve_on};
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
        let (_, answer) =
            common::submit_bridge(&node.base, &submitter, &format!("post-{n}"), &format!("acct-{n}"))
                .unwrap();
        for decision in answer["decisions"].as_array().unwrap() {
            decisions.insert(format!("decision-{}-platform", decision["id"]));
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
    publish_uploads_with(async_nats::ConnectOptions::new(), nats, stream, count);
}

/// [`publish_uploads`], connecting with `options`.
fn publish_uploads_with(options: async_nats::ConnectOptions, nats: &str, stream: &str, count: usize) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = options.connect(nats).await.unwrap();
        let context = async_nats::jetstream::new(client);
        cordon_testkit::nats::wait_for_stream(&context, stream).await;
        let photo = std::fs::read(image("misc-images/b.jpg")).unwrap();
        for n in 0..count {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Content-Id", format!("post-{n}").as_str());
            headers.insert("Account-Id", format!("acct-{n}").as_str());
            let subject = format!("{stream}.submissions");
            // An acknowledgement can time out on a loaded machine: publish again, as a
            // producer would (the same Content-Id is decided once however often it comes).
            for attempt in 1.. {
                let stored = context
                    .publish_with_headers(subject.clone(), headers.clone(), photo.clone().into())
                    .await
                    .unwrap();
                match stored.await {
                    Ok(_) => break,
                    Err(error) if attempt < 5 => eprintln!("publishing post-{n}: {error}; again"),
                    Err(error) => panic!("publishing post-{n}: {error}"),
                }
            }
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
    start_worker_with(data, store, nats, config, &[])
}

/// [`start_worker`] with `more` arguments.
fn start_worker_with(data: &Path, store: &str, nats: &str, config: &Path, more: &[&str]) -> Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args(["--data"])
        .arg(data)
        .args([
            "--store", store, "worker", "--nats", nats, "--stream", "UPLOADS", "--config",
        ])
        .arg(config)
        .args(more)
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
fn a_worker_reaches_nats_over_tls() {
    let store = cordon_testkit::shared_postgres().new_database("workertls");
    let nats = cordon_testkit::NatsServer::start_tls_verifying_clients();
    let tls = nats.tls().unwrap();
    let authority = tls.authority.clone();
    let (certificate, private_key) = (tls.client_certificate.clone(), tls.client_key.clone());
    // The server's certificate names `localhost`.
    let url = format!("tls://localhost:{}", nats.port());
    let data = tempfile::tempdir().unwrap();
    bank_of_bridge(data.path(), &store);
    let admin = key(data.path(), &store, "admin");
    let config = common::webhook_config(data.path(), free_port(), r#""remove""#, "");
    let node = start_node(data.path(), &store, &config);
    let ca = authority.to_str().unwrap();
    let (cert, key_file) = (certificate.to_str().unwrap(), private_key.to_str().unwrap());
    let mut worker = start_worker_with(
        data.path(),
        &store,
        &url,
        &config,
        &["--nats-ca", ca, "--nats-cert", cert, "--nats-key", key_file],
    );
    let client = async_nats::ConnectOptions::new()
        .add_root_certificates(authority.clone())
        .add_client_certificate(certificate.clone(), private_key.clone())
        .require_tls(true);
    publish_uploads_with(client, &url, "UPLOADS", 3);
    let started = Instant::now();
    while !(0..3).all(|n| account_decisions(&node, &admin, &format!("acct-{n}")) == Some(1)) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "uploads sent over TLS not decided"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = worker.kill();
    let _ = worker.wait();
    // A file of authorities that is not there is named, and nothing starts.
    let missing = cordon_in(
        data.path(),
        &[
            "--store",
            &store,
            "worker",
            "--nats",
            &url,
            "--stream",
            "UPLOADS",
            "--nats-ca",
            "/no/such/ca.pem",
        ],
        None,
    );
    let said = String::from_utf8_lossy(&missing.stderr);
    assert!(
        !missing.status.success() && said.contains("/no/such/ca.pem"),
        "{said}"
    );
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

/// One upload sent by a client of the cluster, and Cordon's answer when there was one.
struct Sent {
    content_id: String,
    account_id: String,
    answer: Option<Value>,
}

/// `POST /v1/submissions` of the bridge photo: the answer, or `None` when the node went
/// away before answering.
fn submit(node: &str, key: &str, content: &str, account: &str) -> Option<Value> {
    let (status, answer) = common::submit_bridge(node, key, content, account)?;
    assert!(status == 200 || status == 201, "{status}: {answer}");
    Some(answer)
}

/// Submits as client `client` through `node` until `stop`, or until the node is gone;
/// accounts are shared by every client, so that nodes decide for one account at once.
fn submit_until(node: String, key: String, client: usize, stop: &std::sync::atomic::AtomicBool) -> Vec<Sent> {
    let mut sent = Vec::new();
    for n in 0.. {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        let content_id = format!("c{client}-{n}");
        let account_id = format!("shared-{}", n % 3);
        let answer = submit(&node, &key, &content_id, &account_id);
        let gone = answer.is_none();
        sent.push(Sent {
            content_id,
            account_id,
            answer,
        });
        if gone {
            break;
        }
    }
    sent
}

#[test]
fn a_node_killed_amid_submissions_loses_nothing_and_strikes_stay_in_order() {
    const SUSPEND_AT: usize = 3;
    let store = cordon_testkit::shared_postgres().new_database("nodekill");
    let data = tempfile::tempdir().unwrap();
    bank_of_bridge(data.path(), &store);
    let (admin, submitter) = (
        key(data.path(), &store, "admin"),
        key(data.path(), &store, "submitter"),
    );
    let hook_port = free_port();
    let received = receive_on(hook_port);
    let config = common::webhook_config(
        data.path(),
        hook_port,
        r#""remove", "strike""#,
        &format!(
            "[strikes]\nwarn_at = 2\nsuspend_at = {SUSPEND_AT}\nwindow_days = 30\n\n[flood_guard]\nenabled = false\n"
        ),
    );
    let mut nodes: Vec<Node> = (0..3).map(|_| start_node(data.path(), &store, &config)).collect();
    until_all(&[&nodes[0]], |_| {
        nodes.iter().filter(|n| is_leader(n)).count() == 1
    });
    let victim = nodes.iter().position(|n| !is_leader(n)).unwrap();

    // Three clients, one per node, on three shared accounts; the victim is SIGKILLed
    // while its client is sending, the others go on a little longer.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let sent: Vec<Sent> = std::thread::scope(|scope| {
        let clients: Vec<_> = nodes
            .iter()
            .enumerate()
            .map(|(client, node)| {
                let (base, key, stop) = (node.base.clone(), submitter.clone(), &stop);
                scope.spawn(move || submit_until(base, key, client, stop))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(1500));
        let mut killed = nodes.remove(victim);
        killed.child.kill().unwrap(); // SIGKILL
        killed.child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(1000));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        clients.into_iter().flat_map(|c| c.join().unwrap()).collect()
    });
    let unanswered = sent.iter().filter(|s| s.answer.is_none()).count();
    eprintln!("{} uploads sent, {unanswered} unanswered at the kill", sent.len());
    assert!(sent.len() > 3 * SUSPEND_AT, "too few uploads: {}", sent.len());

    // What the platform does with an upload nobody answered: send it again, elsewhere. It
    // is decided once: either the first answer comes back, or it is decided now.
    let http = reqwest::blocking::Client::new();
    let survivor = nodes[0].base.clone();
    let mut answers: Vec<(String, Value)> = Vec::new();
    for upload in &sent {
        let answer = match &upload.answer {
            Some(answer) => answer.clone(),
            None => submit(&survivor, &submitter, &upload.content_id, &upload.account_id)
                .expect("a surviving node answers"),
        };
        // What was answered is what is stored.
        let stored: Value = http
            .get(format!("{survivor}/v1/submissions/{}", answer["id"]))
            .bearer_auth(&submitter)
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(stored["decisions"], answer["decisions"], "{}", upload.content_id);
        answers.push((upload.account_id.clone(), answer));
    }
    let ids: BTreeSet<i64> = answers.iter().map(|(_, a)| a["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), sent.len(), "one submission per upload");

    // Strikes counted across nodes in order: per account, in the order they were recorded,
    // the upload that brings the strikes to the threshold and every later one suspend.
    for account in ["shared-0", "shared-1", "shared-2"] {
        let mut of_account: Vec<&Value> = answers
            .iter()
            .filter(|(a, _)| a == account)
            .map(|(_, answer)| answer)
            .collect();
        of_account.sort_by_key(|answer| answer["id"].as_i64());
        for (i, answer) in of_account.iter().enumerate() {
            let suspends = answer["decisions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["action"] == "suspend_account");
            assert_eq!(
                suspends,
                i + 1 >= SUSPEND_AT,
                "{account}'s upload {} of {}: {answer}",
                i + 1,
                of_account.len()
            );
        }
    }

    // Every decision delivered, exactly once: the leader never died.
    let decisions: BTreeSet<String> = answers
        .iter()
        .flat_map(|(_, answer)| answer["decisions"].as_array().unwrap().clone())
        .map(|decision| format!("decision-{}-platform", decision["id"]))
        .collect();
    let started = Instant::now();
    loop {
        let keys: Vec<String> = received
            .lock()
            .unwrap()
            .iter()
            .map(|body| {
                let payload: Value = serde_json::from_str(body).unwrap();
                payload["idempotency_key"].as_str().unwrap().to_string()
            })
            .collect();
        let distinct: BTreeSet<String> = keys.iter().cloned().collect();
        if distinct == decisions {
            assert_eq!(keys.len(), distinct.len(), "a decision delivered twice");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "delivered {} of {}",
            distinct.len(),
            decisions.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The killed node, started again, has what was banked while it was down.
    let late = cordon_testkit::flipped(BRIDGE, 96);
    cli_on(
        data.path(),
        &store,
        &["bank", "import", "TVEC", "-"],
        Some(format!("pdq {late}\n").as_bytes()),
    );
    let back = start_node(data.path(), &store, &config);
    assert!(matches(&back, &admin, "TVEC", &late));

    // And the audit log's chain is whole.
    let check = cli_on(data.path(), &store, &["audit", "verify"], None);
    assert!(check[0]["problem"].is_null(), "{}", check[0]);
}

/// `GET /metrics` of `node`: how many entries its flood guard holds quarantined.
fn quarantined_entries(node: &Node) -> Option<u64> {
    let text = reqwest::blocking::get(format!("{}/metrics", node.base))
        .and_then(|r| r.text())
        .ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("cordon_flood_quarantined_entries "))
        .and_then(|n| n.parse().ok())
}

#[test]
fn nodes_count_a_flood_together_and_follow_each_others_quarantines() {
    let store = cordon_testkit::shared_postgres().new_database("nodeflood");
    let data = tempfile::tempdir().unwrap();
    bank_of_bridge(data.path(), &store);
    let (curator, submitter) = (
        key(data.path(), &store, "curator"),
        key(data.path(), &store, "submitter"),
    );
    let config = common::webhook_config(
        data.path(),
        free_port(),
        r#""remove""#,
        "[flood_guard]\nmin_hits = 6\n",
    );
    let nodes: Vec<Node> = (0..3).map(|_| start_node(data.path(), &store, &config)).collect();
    let all: Vec<&Node> = nodes.iter().collect();
    let quarantined = |answer: &Value| answer["matches"][0]["quarantined"] == json!(true);

    // Six matches of one entry within ten minutes, two through each node: a flood of six,
    // though no node saw more than two of them.
    for n in 0..6 {
        let answer = submit(
            &nodes[n % 3].base,
            &submitter,
            &format!("wave-{n}"),
            &format!("acct-{n}"),
        )
        .unwrap();
        assert_eq!(quarantined(&answer), n == 5, "upload {n}: {answer}");
    }
    // The node that quarantined it told the others.
    until_all(&all, |node| quarantined_entries(node) == Some(1));
    for (n, node) in nodes.iter().enumerate() {
        let answer = submit(&node.base, &submitter, &format!("after-{n}"), "acct-after").unwrap();
        assert!(quarantined(&answer), "node {n}: {answer}");
        assert_eq!(answer["decisions"][0]["action"], "review", "node {n}: {answer}");
    }

    // Released through one node: it acts again on every node.
    let released = reqwest::blocking::Client::new()
        .post(format!("{}/v1/quarantine/1/release", nodes[0].base))
        .bearer_auth(&curator)
        .send()
        .unwrap();
    assert_eq!(released.status().as_u16(), 200);
    until_all(&all, |node| quarantined_entries(node) == Some(0));
    for (n, node) in nodes.iter().enumerate() {
        let answer = submit(&node.base, &submitter, &format!("released-{n}"), "acct-released").unwrap();
        assert!(!quarantined(&answer), "node {n}: {answer}");
        assert_eq!(answer["decisions"][0]["action"], "remove", "node {n}: {answer}");
    }
}
