//! `cordon serve` as a process: decisions survive a SIGKILL, SIGTERM stops it cleanly.

use crate::common;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{cordon_in, free_port, image, ok_lines, receive_on, serve_on};
use serde_json::{Value, json};

const BRIDGE: &str = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";

/// A new key of role submitter in the data folder `data`.
fn submitter_key(data: &Path) -> String {
    key_with_role(data, "submitter")
}

/// A new key of `role` in the data folder `data`.
fn key_with_role(data: &Path, role: &str) -> String {
    ok_lines(&cordon_in(
        data,
        &["keys", "create", "--role", role, "--name", role],
        None,
    ))[0]["key"]
        .as_str()
        .unwrap()
        .to_string()
}

fn serve(data: &Path, port: u16, config: &Path) -> Child {
    serve_on(data, &cordon_testkit::store_url_for(data), port, config)
}

#[test]
fn decisions_are_delivered_after_a_sigkill_and_a_restart() {
    let data = tempfile::tempdir().unwrap();
    ok_lines(&cordon_in(data.path(), &["bank", "create", "TVEC"], None));
    ok_lines(&cordon_in(
        data.path(),
        &["bank", "import", "TVEC", "-"],
        Some(format!("pdq {BRIDGE}\n").as_bytes()),
    ));
    let key = submitter_key(data.path());
    // The receiver is down while Cordon decides.
    let hook_port = free_port();
    let config = common::webhook_config(data.path(), hook_port, r#""remove", "strike""#, "");
    let port = free_port();
    let mut first = serve(data.path(), port, &config);
    let (_, answer) =
        common::submit_bridge(&format!("http://127.0.0.1:{port}"), &key, "post-1", "acct-1").unwrap();
    let decisions: Vec<i64> = answer["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect();
    assert_eq!(decisions.len(), 2, "{answer}");
    std::thread::sleep(Duration::from_millis(300));
    first.kill().unwrap(); // SIGKILL: no shutdown, no flushing
    first.wait().unwrap();

    let received = receive_on(hook_port);
    let port = free_port();
    let mut second = serve(data.path(), port, &config);
    let started = Instant::now();
    while received.lock().unwrap().len() < 2 && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    second.kill().unwrap();
    second.wait().unwrap();
    let delivered: Vec<i64> = received
        .lock()
        .unwrap()
        .iter()
        .map(|body| {
            serde_json::from_str::<Value>(body).unwrap()["decision"]["id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    let mut delivered_sorted = delivered.clone();
    delivered_sorted.sort();
    delivered_sorted.dedup();
    assert_eq!(
        delivered_sorted, decisions,
        "every decision delivered after the restart"
    );
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("cordon.toml");
    std::fs::write(&config, "").unwrap();
    let port = free_port();
    let mut child = serve(data.path(), port, &config);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    loop {
        if let Some(exit) = child.try_wait().unwrap() {
            assert!(exit.success(), "{exit:?}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still running after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serve_warns_of_rules_naming_missing_banks_and_logs_each_request() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("cordon.toml");
    std::fs::write(
        &config,
        "[[rules]]\nname = \"typo\"\nbanks = [\"TVEC_TYPO\"]\nactions = [\"remove\"]\n",
    )
    .unwrap();
    let key = submitter_key(data.path());
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_cordon"))
        .arg("--data")
        .arg(data.path())
        // The store the key was made in: PostgreSQL in the suite's second run.
        .env("CORDON_STORE", cordon_testkit::store_url_for(data.path()))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !reqwest::blocking::get(format!("http://127.0.0.1:{port}/status"))
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "cordon serve did not come up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let answer = reqwest::blocking::Client::new()
        .get(format!("http://127.0.0.1:{port}/status/live"))
        .header("X-Request-Id", "probe-42")
        .send()
        .unwrap();
    assert_eq!(answer.headers()["x-request-id"], "probe-42");
    // A refused request is logged with the key it came with, though an error rewriter
    // built its answer.
    let refused = reqwest::blocking::Client::new()
        .get(format!(
            "http://127.0.0.1:{port}/m/lookup?signal_type=pdq&signal=xyz"
        ))
        .bearer_auth(&key)
        .header("X-Request-Id", "probe-43")
        .send()
        .unwrap();
    assert_eq!(refused.status(), 400);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("warning: rule \"typo\" names bank \"TVEC_TYPO\", which does not exist"),
        "{stderr}"
    );
    // Without --quiet every request is one JSON line on stderr.
    let logged_as = |id: &str| -> Vec<Value> {
        stderr
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|line| line["request_id"] == id)
            .collect()
    };
    let logged = logged_as("probe-42");
    assert_eq!(logged.len(), 1, "{stderr}");
    assert_eq!(logged[0]["path"], "/status/live");
    assert_eq!(logged[0]["status"], 200);
    assert_eq!(logged[0]["key"], Value::Null, "no key was sent");
    let refused = logged_as("probe-43");
    assert_eq!(refused.len(), 1, "{stderr}");
    assert_eq!(
        (&refused[0]["status"], &refused[0]["key"]),
        (&json!(400), &json!("submitter"))
    );
    assert_eq!(refused[0]["route"], "/m/lookup");
}

/// The server's peak resident memory so far, from `/proc`.
fn peak_rss_mb(child: &Child) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb / 1024.0
}

#[test]
fn decompression_bombs_are_refused_from_their_headers_fast_and_small() {
    use cordon_testkit::bombs::{gif_declaring, jpeg_declaring, png_declaring, webp_declaring};
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("cordon.toml");
    std::fs::write(&config, "").unwrap();
    let key = submitter_key(data.path());
    let port = free_port();
    let mut child = serve(data.path(), port, &config);
    let photo = std::fs::read(image("misc-images/b.jpg")).unwrap();
    let bombs = [
        ("PNG 100,000 x 100,000", png_declaring(100_000, 100_000), 413),
        ("JPEG 60,000 x 60,000", jpeg_declaring(photo, 60_000, 60_000), 413),
        ("WebP 16,384 x 16,384", webp_declaring(16_384, 16_384), 413),
        ("GIF 65,535 x 65,535", gif_declaring(65_535, 65_535, 1), 413),
        // Only the first frame is ever decoded: ten thousand more cost nothing.
        ("GIF of 10,000 frames", gif_declaring(64, 64, 10_000), 200),
    ];
    let client = reqwest::blocking::Client::new();
    for (name, bytes, expected) in bombs {
        assert!(
            bytes.len() < 400_000,
            "{name} is a small file ({} bytes)",
            bytes.len()
        );
        let started = Instant::now();
        let form = reqwest::blocking::multipart::Form::new().part(
            "photo",
            reqwest::blocking::multipart::Part::bytes(bytes).file_name("bomb"),
        );
        let response = client
            .post(format!("http://127.0.0.1:{port}/h/hash"))
            .bearer_auth(&key)
            .multipart(form)
            .send()
            .unwrap();
        let elapsed = started.elapsed();
        let status = response.status().as_u16();
        let body: Value = response.json().unwrap();
        assert_eq!(status, expected, "{name}: {body}");
        if expected == 413 {
            let message = body["message"].as_str().unwrap();
            assert!(message.contains("pixels"), "{name}: {message}");
        }
        assert!(elapsed < Duration::from_secs(1), "{name} took {elapsed:?}");
        eprintln!("{name}: {status} in {:.1} ms", elapsed.as_secs_f64() * 1e3);
    }
    let peak = peak_rss_mb(&child);
    eprintln!("server peak RSS: {peak:.0} MB");
    assert!(peak < 300.0, "the server peaked at {peak:.0} MB");
    let _ = child.kill();
    let _ = child.wait();
}

/// A hash list of `lines` distinct PDQ hashes, different for each `seed`.
fn hash_list(seed: u64, lines: u64) -> String {
    (0..lines)
        .map(|i| {
            let x = (seed << 40 | i).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            format!("pdq {x:016x}{:016x}{x:016x}{:016x}\n", !x, x.rotate_left(17))
        })
        .collect()
}

/// A request body that hands out `text` a little at a time, slowly, as a platform's
/// upload over a poor link would.
struct Trickle {
    text: Vec<u8>,
    at: usize,
}

impl Read for Trickle {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        std::thread::sleep(Duration::from_millis(20));
        let n = buffer.len().min(2048).min(self.text.len() - self.at);
        buffer[..n].copy_from_slice(&self.text[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// The content count of bank `name`, from the CLI.
fn bank_count(data: &Path, name: &str) -> u64 {
    ok_lines(&cordon_in(data, &["bank", "show", name], None))[0]["content_count"]
        .as_u64()
        .unwrap()
}

/// `POST /v1/banks/<bank>/import`: the status, or the error when the server went away.
fn post_import(base: &str, key: &str, bank: &str, body: reqwest::blocking::Body) -> reqwest::Result<u16> {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?
        .post(format!("{base}/v1/banks/{bank}/import"))
        .bearer_auth(key)
        .body(body)
        .send()
        .map(|r| r.status().as_u16())
}

/// Submits photos as `post-<client>-<n>` until the server goes away; answers what was
/// acknowledged.
fn submit_until_gone(base: String, key: String, client: usize) -> Vec<Value> {
    let mut acknowledged = Vec::new();
    for n in 0.. {
        let Some((status, answer)) = common::submit_bridge(
            &base,
            &key,
            &format!("post-{client}-{n}"),
            &format!("acct-{client}-{n}"),
        ) else {
            break;
        };
        assert_eq!(status, 201, "{answer}");
        acknowledged.push(answer);
    }
    acknowledged
}

#[test]
fn a_sigkill_amid_submissions_and_imports_loses_nothing_acknowledged_and_half_imports_nothing() {
    const BIG: u64 = 200_000;
    let data = tempfile::tempdir().unwrap();
    for bank in ["TVEC", "DONE_IMPORT", "BIG_IMPORT", "SLOW_IMPORT"] {
        ok_lines(&cordon_in(data.path(), &["bank", "create", bank], None));
    }
    ok_lines(&cordon_in(
        data.path(),
        &["bank", "import", "TVEC", "-"],
        Some(format!("pdq {BRIDGE}\n").as_bytes()),
    ));
    let submitter = submitter_key(data.path());
    let curator = key_with_role(data.path(), "curator");
    let admin = key_with_role(data.path(), "admin");
    let hook_port = free_port();
    let received = receive_on(hook_port);
    let config = common::webhook_config(
        data.path(),
        hook_port,
        r#""remove", "strike""#,
        "[flood_guard]\nenabled = false\n",
    );
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut first = serve(data.path(), port, &config);
    // One import acknowledged before the crash.
    let done = post_import(&base, &curator, "DONE_IMPORT", hash_list(1, 1000).into());
    assert_eq!(done.unwrap(), 200);

    let submitting: Vec<_> = (0..3)
        .map(|client| {
            let (base, key) = (base.clone(), submitter.clone());
            std::thread::spawn(move || submit_until_gone(base, key, client))
        })
        .collect();
    // One import trickles in (still uploading at the kill); a big one is sent at once, so
    // that its transaction is being written when the kill comes.
    let slow = {
        let (base, key) = (base.clone(), curator.clone());
        let body = Trickle {
            text: hash_list(3, 50_000).into_bytes(),
            at: 0,
        };
        std::thread::spawn(move || {
            post_import(&base, &key, "SLOW_IMPORT", reqwest::blocking::Body::new(body))
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let big = {
        let (base, key) = (base.clone(), curator.clone());
        std::thread::spawn(move || post_import(&base, &key, "BIG_IMPORT", hash_list(2, BIG).into()))
    };
    std::thread::sleep(Duration::from_millis(700));
    first.kill().unwrap(); // SIGKILL: no shutdown, no flushing
    first.wait().unwrap();
    let acknowledged: Vec<Value> = submitting.into_iter().flat_map(|t| t.join().unwrap()).collect();
    assert!(
        acknowledged.len() >= 3,
        "only {} acknowledged",
        acknowledged.len()
    );
    let big_acknowledged = big.join().unwrap().is_ok_and(|status| status == 200);
    assert!(
        slow.join().unwrap().is_err(),
        "the trickled import cannot have finished"
    );

    // Nothing half-imported; what was acknowledged is all there.
    assert_eq!(bank_count(data.path(), "DONE_IMPORT"), 1000);
    assert_eq!(bank_count(data.path(), "SLOW_IMPORT"), 0);
    let big_count = bank_count(data.path(), "BIG_IMPORT");
    assert!(big_count == 0 || big_count == BIG, "BIG_IMPORT holds {big_count}");
    if big_acknowledged {
        assert_eq!(big_count, BIG);
    }
    eprintln!(
        "at the kill: {} submissions acknowledged; the big import {} ({big_count} rows)",
        acknowledged.len(),
        if big_acknowledged {
            "acknowledged"
        } else {
            "not acknowledged"
        }
    );

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut second = serve(data.path(), port, &config);
    let http = reqwest::blocking::Client::new();
    // Every acknowledged submission is there with its decisions...
    let mut decisions = std::collections::BTreeSet::new();
    for answer in &acknowledged {
        let stored: Value = http
            .get(format!("{base}/v1/submissions/{}", answer["id"]))
            .bearer_auth(&submitter)
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(
            stored["decisions"], answer["decisions"],
            "submission {}",
            answer["id"]
        );
        for decision in answer["decisions"].as_array().unwrap() {
            decisions.insert(format!("decision-{}-platform", decision["id"]));
        }
    }
    // ...and every decision reaches the receiver: at least once, the same body under the
    // same idempotency key each time, so that deduplicating on it gives exactly once.
    let started = Instant::now();
    let by_key = loop {
        let mut by_key: std::collections::BTreeMap<String, String> = Default::default();
        for body in received.lock().unwrap().iter() {
            let payload: Value = serde_json::from_str(body).unwrap();
            let key = payload["idempotency_key"].as_str().unwrap().to_string();
            let earlier = by_key.insert(key.clone(), body.clone());
            assert!(
                earlier.is_none_or(|earlier| &earlier == body),
                "{key} delivered with two bodies"
            );
        }
        let outbox: Value = http
            .get(format!("{base}/v1/outbox"))
            .bearer_auth(&admin)
            .send()
            .unwrap()
            .json()
            .unwrap();
        let drained = outbox["pending"] == serde_json::json!([]) && outbox["failed"] == serde_json::json!([]);
        if drained && decisions.iter().all(|d| by_key.contains_key(d)) {
            break by_key;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "undelivered: {outbox}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(by_key.len() >= decisions.len());
    second.kill().unwrap();
    second.wait().unwrap();

    // The audit log's chain is whole.
    let check = ok_lines(&cordon_in(data.path(), &["audit", "verify"], None));
    assert!(check[0]["problem"].is_null(), "{}", check[0]);
}

#[test]
fn a_key_revoked_with_the_cli_is_refused_by_a_running_server_at_once() {
    let data = tempfile::tempdir().unwrap();
    let submitter = submitter_key(data.path());
    let config = common::webhook_config(data.path(), free_port(), r#""remove""#, "");
    let port = free_port();
    let mut server = serve(data.path(), port, &config);
    let lookup = || {
        reqwest::blocking::Client::new()
            .get(format!(
                "http://127.0.0.1:{port}/m/lookup?signal_type=pdq&signal={BRIDGE}"
            ))
            .bearer_auth(&submitter)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    // Checked once, so the server now answers for this key from memory.
    assert_eq!(lookup(), 200);
    assert_eq!(lookup(), 200);
    ok_lines(&cordon_in(data.path(), &["keys", "revoke", "submitter"], None));
    // The change feed tells the server (every 250 ms at most), long before the 30 s its
    // memory of a key may last.
    let started = Instant::now();
    while lookup() != 401 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the revoked key still works"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server.kill().unwrap();
    server.wait().unwrap();
}
