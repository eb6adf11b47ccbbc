//! The HMA-compatible API over real HTTP: a real server on a loopback port, a real client,
//! a real SQLite file, the shared reference images.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cordon_engine::access::{Role, issue_key};
use cordon_engine::policy::Policy;
use cordon_server::AppState;
use cordon_signals::DecodeLimits;
use cordon_store::Store;
use cordon_testkit::{BRIDGE, flipped, pictures, reference_image as image, serve_in_background};
use reqwest::blocking::{Client, multipart};
use serde_json::{Value, json};

/// A running server with an admin, a curator, a submitter and a revoked key.
struct Server {
    base: String,
    admin: String,
    curator: String,
    submitter: String,
    revoked: String,
    client: Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    data: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        Server::start_with(DecodeLimits::default())
    }

    fn start_with(limits: DecodeLimits) -> Server {
        Server::start_with_policy(limits, Policy::default())
    }

    fn start_with_policy(limits: DecodeLimits, policy: Policy) -> Server {
        let data = tempfile::tempdir().unwrap();
        let (admin, curator, submitter, revoked) = {
            let mut store = Store::open_at(&test_store(data.path())).unwrap();
            let key = |store: &mut Store, name: &str, role| issue_key(store, name, role).unwrap().key;
            let revoked = key(&mut store, "old", Role::Admin);
            store.revoke_key("old").unwrap();
            (
                key(&mut store, "ops", Role::Admin),
                key(&mut store, "trust-safety", Role::Curator),
                key(&mut store, "platform", Role::Submitter),
                revoked,
            )
        };
        let state = Arc::new(AppState::open_at(&test_store(data.path()), limits, policy).unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, address) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                ready.send(listener.local_addr().unwrap()).unwrap();
                cordon_server::serve(listener, state, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
            });
        });
        let address = address.recv().unwrap();
        Server {
            base: format!("http://{address}"),
            admin,
            curator,
            submitter,
            revoked,
            client: Client::new(),
            stop: Some(stop),
            thread: Some(thread),
            data,
        }
    }

    fn get(&self, key: &str, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(key)
            .send()
            .unwrap();
        (response.status().as_u16(), response.json().unwrap())
    }

    /// A GET without a key: the status and the text of the answer.
    fn get_open(&self, path: &str) -> (u16, String) {
        let response = self.client.get(format!("{}{path}", self.base)).send().unwrap();
        (response.status().as_u16(), response.text().unwrap())
    }

    fn send(&self, method: reqwest::Method, key: &str, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key)
            .json(&body)
            .send()
            .unwrap();
        (response.status().as_u16(), response.json().unwrap())
    }

    fn post(&self, key: &str, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, key, path, body)
    }

    /// `POST /v1/banks/<bank>/import<query>` of `list`, as the curator.
    fn import(&self, bank: &str, list: String, query: &str) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}/v1/banks/{bank}/import{query}", self.base))
            .bearer_auth(&self.curator)
            .timeout(std::time::Duration::from_secs(300))
            .body(list)
            .send()
            .unwrap();
        (response.status().as_u16(), response.json::<Value>().unwrap())
    }

    /// `POST /c/bank/<bank>/content?url=<url>` as the curator.
    fn add_by_url(&self, bank: &str, url: &str) -> (u16, Value) {
        self.post(
            &self.curator,
            &format!("/c/bank/{bank}/content?url={url}"),
            json!(null),
        )
    }

    /// Creates a bank as the curator.
    fn create_bank(&self, name: &str) {
        let (code, body) = self.post(&self.curator, "/c/banks", json!({ "name": name }));
        assert_eq!(code, 201, "{body}");
    }

    fn upload(&self, key: &str, path: &str, file: &str, fields: &[(&str, &str)]) -> (u16, Value) {
        self.upload_bytes(key, path, std::fs::read(image(file)).unwrap(), fields)
    }

    fn upload_bytes(&self, key: &str, path: &str, bytes: Vec<u8>, fields: &[(&str, &str)]) -> (u16, Value) {
        let mut form =
            multipart::Form::new().part("photo", multipart::Part::bytes(bytes).file_name("upload.jpg"));
        for (name, value) in fields {
            form = form.text(name.to_string(), value.to_string());
        }
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(key)
            .multipart(form)
            .send()
            .unwrap();
        (response.status().as_u16(), response.json().unwrap())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn status_is_open_and_everything_else_needs_the_right_key() {
    let server = Server::start();
    assert_eq!(server.get_open("/status"), (200, "I-AM-ALIVE".to_string()));

    let (code, text) = server.get_open("/c/banks");
    assert_eq!(code, 401);
    let body: Value = serde_json::from_str(&text).unwrap();
    assert!(body["message"].as_str().unwrap().contains("API key"));

    assert_eq!(server.get("ck_0000000000000000_00", "/c/banks").0, 401);
    assert_eq!(server.get(&server.revoked, "/c/banks").0, 401);
    let (code, body) = server.get(&server.submitter, "/c/banks");
    assert_eq!(code, 403);
    assert!(body["message"].as_str().unwrap().contains("needs curator"));
    assert_eq!(server.get(&server.curator, "/c/banks").0, 200);
    assert_eq!(server.get(&server.admin, "/c/banks").0, 200);
    let lookup = format!("/m/lookup?signal_type=pdq&signal={BRIDGE}");
    assert_eq!(server.get(&server.curator, &lookup).0, 403);
    assert_eq!(server.get(&server.submitter, &lookup).0, 200);
}

#[test]
fn hashing_answers_like_hma() {
    let server = Server::start();
    let (code, body) = server.upload(&server.submitter, "/h/hash", "misc-images/b.jpg", &[]);
    assert_eq!(code, 200);
    assert_eq!(body, json!({ "pdq": BRIDGE }));
    // Quality below 50: HMA answers an empty hash.
    let (code, body) = server.upload(&server.submitter, "/h/hash", "misc-images/small.jpg", &[]);
    assert_eq!((code, body), (200, json!({ "pdq": "" })));
    // Not an image.
    let (code, body) = server.upload(&server.submitter, "/h/hash", "reg-test-input/haystack.txt", &[]);
    assert_eq!(code, 415, "{body}");
    assert!(body["message"].as_str().unwrap().contains("not an image"));
    // No file.
    let form = multipart::Form::new().text("note", "x");
    let response = server
        .client
        .post(format!("{}/h/hash", server.base))
        .bearer_auth(&server.submitter)
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert!(response.json::<Value>().unwrap()["message"].is_string());
}

#[test]
fn banks_are_curated_with_hma_shapes() {
    let server = Server::start();
    let (code, body) = server.post(&server.curator, "/c/banks", json!({ "name": "TVEC" }));
    assert_eq!(
        (code, body),
        (201, json!({ "matching_enabled_ratio": 1.0, "name": "TVEC" }))
    );
    assert_eq!(
        server
            .post(&server.curator, "/c/banks", json!({ "name": "TVEC" }))
            .0,
        403
    );
    let (code, body) = server.post(&server.curator, "/c/banks", json!({ "name": "lower" }));
    assert_eq!(code, 400);
    assert!(body["message"].as_str().unwrap().contains("invalid bank name"));
    server.post(
        &server.curator,
        "/c/banks",
        json!({ "name": "HALF", "enabled_ratio": 0.5 }),
    );
    let (_, listed) = server.get(&server.curator, "/c/banks");
    assert_eq!(
        listed,
        json!([{ "matching_enabled_ratio": 0.5, "name": "HALF" }, { "matching_enabled_ratio": 1.0, "name": "TVEC" }])
    );
    let (code, renamed) = server.send(
        reqwest::Method::PUT,
        &server.curator,
        "/c/bank/HALF",
        json!({ "name": "ROLLOUT", "enabled": false }),
    );
    assert_eq!(
        (code, renamed),
        (200, json!({ "matching_enabled_ratio": 0.0, "name": "ROLLOUT" }))
    );
    assert_eq!(server.get(&server.curator, "/c/bank/HALF").0, 404);
    let (code, body) = server.send(
        reqwest::Method::DELETE,
        &server.curator,
        "/c/bank/ROLLOUT",
        json!({}),
    );
    assert_eq!((code, body), (200, json!({ "message": "Done" })));
    assert_eq!(server.get(&server.curator, "/c/bank/ROLLOUT").0, 404);

    // Every change is in the audit log under the key that made it.
    let store = Store::open_at(&test_store(server.data.path())).unwrap();
    let entries = store.audit_entries(0).unwrap();
    let by_curator: Vec<&str> = entries
        .iter()
        .filter(|e| e.actor == "key:trust-safety")
        .map(|e| e.event.as_str())
        .collect();
    assert_eq!(
        by_curator,
        ["bank.created", "bank.created", "bank.updated", "bank.deleted"]
    );
    assert!(store.verify_audit().unwrap().problem.is_none());
}

#[test]
fn added_hashes_match_the_very_next_request_and_disabled_content_stops_at_once() {
    let server = Server::start();
    server.post(&server.curator, "/c/banks", json!({ "name": "TVEC" }));
    let (code, added) = server.post(&server.curator, "/c/bank/TVEC/signal", json!({ "pdq": BRIDGE }));
    assert_eq!(code, 200);
    let id = added["id"].as_i64().unwrap();
    assert_eq!(added["signals"]["pdq"], BRIDGE);

    let near = flipped(BRIDGE, 10);
    let lookup = format!("/m/lookup?signal_type=pdq&signal={near}&bypass_coinflip=true");
    let (_, found) = server.get(&server.submitter, &lookup);
    assert_eq!(
        found,
        json!({ "TVEC": [{ "bank_content_id": id, "distance": "10" }] })
    );
    let far = format!("/m/lookup?signal_type=pdq&signal={}", flipped(BRIDGE, 32));
    assert_eq!(server.get(&server.submitter, &far).1, json!({}));

    // The uploaded repost matches too.
    let (_, by_media) = server.upload(&server.submitter, "/m/lookup", "bridge-mods/blur-a-lot.jpg", &[]);
    assert_eq!(by_media["pdq"]["TVEC"][0]["bank_content_id"], id);

    // Disabled: gone from lookup at once, still in raw_lookup; enabled again: back.
    let path = format!("/c/bank/TVEC/content/{id}");
    let (code, content) = server.send(
        reqwest::Method::PUT,
        &server.curator,
        &path,
        json!({ "disable_until_ts": 1 }),
    );
    assert_eq!((code, content["disable_until_ts"].clone()), (200, json!(1)));
    assert_eq!(server.get(&server.submitter, &lookup).1, json!({}));
    let raw = format!("/m/raw_lookup?signal_type=pdq&signal={near}&include_distance=true");
    assert_eq!(
        server.get(&server.submitter, &raw).1,
        json!({ "matches": [{ "bank_content_id": id, "distance": "10" }] })
    );
    server.send(
        reqwest::Method::PUT,
        &server.curator,
        &path,
        json!({ "disable_until_ts": 0 }),
    );
    assert_eq!(
        server.get(&server.submitter, &lookup).1["TVEC"][0]["bank_content_id"],
        id
    );

    // Deleted: gone.
    let (code, deleted) = server.send(reqwest::Method::DELETE, &server.curator, &path, json!({}));
    assert_eq!((code, deleted), (200, json!({ "deleted": 1 })));
    assert_eq!(server.get(&server.submitter, &lookup).1, json!({}));
    assert_eq!(server.get(&server.curator, &path).0, 404);
}

#[test]
fn the_all_zero_hash_of_black_and_tiny_pictures_is_not_banked() {
    let server = Server::start();
    server.create_bank("TVEC");
    let blank = "0".repeat(64);
    let (code, body) = server.post(&server.curator, "/c/bank/TVEC/signal", json!({ "pdq": blank }));
    assert_eq!(code, 400, "{body}");
    assert!(message(&body).contains("all-zero"), "{body}");
    let raw = format!("/m/raw_lookup?signal_type=pdq&signal={blank}");
    assert_eq!(server.get(&server.submitter, &raw).1, json!({ "matches": [] }));
    let store = Store::open_at(&test_store(server.data.path())).unwrap();
    let bank = store.bank("TVEC").unwrap();
    assert_eq!(store.content_count(bank.id).unwrap(), 0, "nothing written");
}

#[test]
fn content_uploads_keep_their_metadata() {
    let server = Server::start();
    server.post(&server.curator, "/c/banks", json!({ "name": "TVEC" }));
    let metadata = r#"{"content_id":"post-123","content_uri":"https://example.org/p/123","json":{"k":1}}"#;
    let (code, added) = server.upload(
        &server.curator,
        "/c/bank/TVEC/content",
        "misc-images/b.jpg",
        &[("metadata", metadata), ("note", "first")],
    );
    assert_eq!(code, 200, "{added}");
    assert_eq!(added["signals"]["pdq"], BRIDGE);
    let path = format!("/c/bank/TVEC/content/{}?include_signals=true", added["id"]);
    let (_, content) = server.get(&server.curator, &path);
    let mut keys: Vec<&String> = content.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "bank",
            "disable_until_ts",
            "id",
            "metadata",
            "note",
            "original_media_uri",
            "signals"
        ]
    );
    assert_eq!(content["metadata"]["content_id"], "post-123");
    assert_eq!(content["metadata"]["json"], json!({ "k": 1 }));
    assert_eq!(content["note"], "first");
    assert_eq!(content["signals"]["pdq"], BRIDGE);
    // Uploaded media also keeps its local features, so crops of it match.
    assert!(
        content["signals"]["features"]
            .as_str()
            .unwrap()
            .starts_with("f1:")
    );
    // A low-quality image is refused, not stored as noise.
    let (code, body) = server.upload(
        &server.curator,
        "/c/bank/TVEC/content",
        "misc-images/small.jpg",
        &[],
    );
    assert_eq!(code, 400);
    assert!(body["message"].as_str().unwrap().contains("quality"));
    let (code, _) = server.upload(
        &server.curator,
        "/c/bank/TVEC/content",
        "misc-images/b.jpg",
        &[("metadata", "[1]")],
    );
    assert_eq!(code, 400);
    // `content_id` becomes the content's external id, which a bank's export carries: one
    // that an import refuses (empty, over 512 bytes) is refused here.
    for content_id in [String::new(), "x".repeat(513)] {
        let metadata = json!({ "content_id": content_id }).to_string();
        let (code, body) = server.upload(
            &server.curator,
            "/c/bank/TVEC/content",
            "misc-images/b.jpg",
            &[("metadata", metadata.as_str())],
        );
        assert_eq!(code, 400, "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("external_id"),
            "{body}"
        );
    }
}

#[test]
fn compare_and_index_status() {
    let server = Server::start();
    let near = flipped(BRIDGE, 12);
    let (code, body) = server.post(&server.submitter, "/m/compare", json!({ "pdq": [BRIDGE, near] }));
    assert_eq!((code, body), (200, json!({ "pdq": [true, { "distance": 12 }] })));
    let far = flipped(BRIDGE, 40);
    assert_eq!(
        server
            .post(&server.submitter, "/m/compare", json!({ "pdq": [BRIDGE, far] }))
            .1,
        json!({ "pdq": [false, { "distance": 40 }] })
    );
    let (_, status) = server.get(&server.submitter, "/m/index/status");
    assert_eq!(status["pdq"]["present"], true);
    assert_eq!(status["pdq"]["size"], 0);
    assert!(status["pdq"]["built_to"].as_i64().unwrap() > 1_700_000_000);
}

#[test]
fn malformed_requests_get_a_4xx_json_message_and_the_server_lives_on() {
    let server = Server::start();
    let raw = |method: reqwest::Method, path: &str, body: &'static str| {
        let response = server
            .client
            .request(method, format!("{}{path}", server.base))
            .bearer_auth(&server.admin)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .unwrap();
        let code = response.status().as_u16();
        let body: Value = response.json().unwrap();
        (code, body)
    };
    for (method, path, body) in [
        (reqwest::Method::POST, "/c/banks", "{not json"),
        (reqwest::Method::POST, "/c/banks", r#"{"name": 5}"#),
        (
            reqwest::Method::POST,
            "/c/banks",
            r#"{"name": "OK", "colour": "red"}"#,
        ),
        (
            reqwest::Method::POST,
            "/c/banks",
            r#"{"name": "OK", "enabled_ratio": 7}"#,
        ),
        (reqwest::Method::POST, "/m/compare", r#"{"pdq": ["abc"]}"#),
        (reqwest::Method::POST, "/m/compare", r#"{"pdq": ["zz", "yy"]}"#),
        (reqwest::Method::GET, "/m/lookup?signal_type=pdq&signal=123", ""),
        (reqwest::Method::GET, "/m/lookup?signal_type=md5&signal=123", ""),
        (reqwest::Method::GET, "/m/lookup", ""),
        (reqwest::Method::GET, "/c/bank/NOPE/content/abc", ""),
        (
            reqwest::Method::PUT,
            "/c/bank/NOPE/content/1",
            r#"{"disable_until_ts": -5}"#,
        ),
        (reqwest::Method::GET, "/no/such/route", ""),
    ] {
        let (code, body) = raw(method.clone(), path, body);
        assert!((400..500).contains(&code), "{method} {path}: {code} {body}");
        assert!(body["message"].is_string(), "{method} {path}: {body}");
    }
    assert_eq!(
        server
            .client
            .get(format!("{}/status", server.base))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        200
    );
}

#[test]
fn metrics_count_requests_by_route_template() {
    let server = Server::start();
    server.post(&server.curator, "/c/banks", json!({ "name": "TVEC" }));
    for id in [1, 2, 3] {
        server.get(&server.curator, &format!("/c/bank/TVEC/content/{id}"));
    }
    let lookup = format!("/m/lookup?signal_type=pdq&signal={BRIDGE}");
    server.get(&server.submitter, &lookup);
    let response = server
        .client
        .get(format!("{}/metrics", server.base))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200, "open without a key");
    let text = response.text().unwrap();
    assert!(
        text.contains("# TYPE cordon_http_requests_total counter"),
        "{text}"
    );
    assert!(
        text.contains(
            r#"cordon_http_requests_total{route="/c/bank/{name}/content/{id}",method="GET",status="404"} 3"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"cordon_http_requests_total{route="/m/lookup",method="GET",status="200"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"cordon_http_request_duration_seconds_count{route="/c/banks"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"cordon_index_hashes{signal_type="pdq"} 0"#),
        "{text}"
    );
}

#[test]
fn metrics_keep_no_series_per_unknown_method() {
    // A method is any token a client makes up, up to the header limit: a series for each
    // would grow the server's memory and /metrics by every request.
    let server = Server::start();
    for n in 0..20 {
        let method = reqwest::Method::from_bytes(format!("PROBE{n}{}", "X".repeat(1000)).as_bytes()).unwrap();
        for path in ["/status", "/nowhere"] {
            let response = server
                .client
                .request(method.clone(), format!("{}{path}", server.base))
                .send()
                .unwrap();
            assert!(response.status().is_client_error(), "{method} {path}");
        }
    }
    let text = crate::common::metrics(&server.client, &server.base);
    let series = text.lines().filter(|line| line.contains("PROBE")).count();
    assert_eq!(series, 0, "a series per method");
    for counted in [
        r#"cordon_http_requests_total{route="/status",method="other",status="405"} 20"#,
        r#"cordon_http_requests_total{route="unmatched",method="other",status="404"} 20"#,
    ] {
        assert!(text.contains(counted), "{counted} in {text}");
    }
}

#[test]
fn oversized_uploads_are_refused_with_413_and_a_json_message() {
    let server = Server::start_with(DecodeLimits {
        max_bytes: 300_000,
        max_pixels: 100_000,
    });
    // Within the body limit but over the media limit: the decoder refuses it.
    let (code, body) = server.upload(&server.submitter, "/h/hash", "misc-images/b.jpg", &[]);
    assert_eq!(code, 413, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("over the limit"),
        "{body}"
    );
    // Over the pixel limit, read from the header.
    let (code, body) = server.upload(
        &server.submitter,
        "/h/hash",
        "reg-test-input/labelme-subset/q0122.jpg",
        &[],
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = server.upload(
        &server.submitter,
        "/h/hash",
        "bridge-mods/shrink-a-little.jpg",
        &[],
    );
    assert_eq!(code, 413, "{body}");
    assert!(body["message"].as_str().unwrap().contains("pixels"), "{body}");
}

/// A media host on loopback: the bridge photo, a redirect to it, a redirect to another
/// loopback address, and a 404. Returns `http://127.0.0.1:PORT`.
fn media_host() -> String {
    counted_media_host().0
}

/// [`media_host`], and how many requests it has been sent.
fn counted_media_host() -> (String, Arc<AtomicUsize>) {
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    let bridge = std::fs::read(image("misc-images/b.jpg")).unwrap();
    let app = axum::Router::new()
        .route("/b.jpg", axum::routing::get(move || async move { bridge }))
        .route(
            "/moved",
            axum::routing::get(|| async { axum::response::Redirect::temporary("/b.jpg") }),
        )
        .route(
            "/inside",
            axum::routing::get(|| async { axum::response::Redirect::temporary("http://127.0.0.2:9/b.jpg") }),
        )
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                counter.fetch_add(1, Ordering::SeqCst);
                next.run(request)
            },
        ));
    (format!("http://{}", serve_in_background(app)), requests)
}

/// A raw TCP peer that answers each connection with `answer` (and then holds it open for
/// a while, so a peer that sends nothing looks like a stalled server).
fn raw_peer(answer: Vec<u8>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let answer = answer.clone();
            std::thread::spawn(move || {
                use std::io::{Read, Write};
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                let _ = stream.write_all(&answer);
                std::thread::sleep(std::time::Duration::from_secs(5));
            });
        }
    });
    format!("http://{address}")
}

fn loopback_fetching() -> Policy {
    Policy::parse(
        "[fetch]\nallow_hosts = [\"127.0.0.1\", \"127.0.0.2\"]\nallow_addresses = [\"127.0.0.1\"]\n\
         timeout_seconds = 1\n",
    )
    .unwrap()
}

fn message(body: &Value) -> &str {
    body["message"].as_str().unwrap_or_default()
}

#[test]
fn media_by_url_is_hashed_matched_and_banked_from_allowed_hosts() {
    let host = media_host();
    let server = Server::start_with_policy(DecodeLimits::default(), loopback_fetching());
    let url = format!("{host}/b.jpg");
    let (code, body) = server.get(&server.submitter, &format!("/h/hash?url={url}"));
    assert_eq!((code, body), (200, json!({ "pdq": BRIDGE })));
    let (code, body) = server.get(&server.submitter, &format!("/h/hash?url={host}/moved"));
    assert_eq!(
        (code, body),
        (200, json!({ "pdq": BRIDGE })),
        "a redirect on the same host"
    );

    let (code, body) = server.get(&server.submitter, &format!("/m/lookup?url={url}"));
    assert_eq!((code, body), (200, json!({ "pdq": {} })));
    server.create_bank("TVEC");
    let (code, added) = server.add_by_url("TVEC", &url);
    assert_eq!(code, 200, "{added}");
    assert_eq!(added["signals"]["pdq"], BRIDGE);
    let (code, body) = server.get(&server.submitter, &format!("/m/lookup?url={url}"));
    assert_eq!(code, 200);
    assert_eq!(
        body,
        json!({ "pdq": { "TVEC": [{ "bank_content_id": added["id"], "distance": "0" }] } })
    );
    let (code, body) = server.get(
        &server.submitter,
        &format!("/h/hash?url={url}&content_type=video"),
    );
    assert_eq!(code, 415, "{body}");
}

#[test]
fn media_by_url_for_a_bank_that_does_not_exist_is_never_fetched() {
    let (host, requests) = counted_media_host();
    let server = Server::start_with_policy(DecodeLimits::default(), loopback_fetching());
    let url = format!("{host}/b.jpg");
    let (code, body) = server.add_by_url("NOPE", &url);
    assert_eq!(code, 404, "{body}");
    assert!(message(&body).contains("NOPE"), "{body}");
    assert_eq!(requests.load(Ordering::SeqCst), 0, "fetched for a missing bank");

    // The same URL for a bank that exists is fetched: the count above is not vacuous.
    server.create_bank("TVEC");
    let (code, body) = server.add_by_url("TVEC", &url);
    assert_eq!(code, 200, "{body}");
    assert_eq!(requests.load(Ordering::SeqCst), 1);
}

#[test]
fn an_upload_for_a_bank_that_does_not_exist_is_refused_before_it_is_decoded() {
    let server = Server::start();
    // Not an image: decoded, it would be refused as such; the missing bank comes first.
    let bytes = b"\xff\xd8\xff\xe0 and then not a JPEG at all".to_vec();
    let (code, body) = server.upload_bytes(&server.curator, "/c/bank/NOPE/content", bytes.clone(), &[]);
    assert_eq!(code, 404, "{body}");
    assert!(message(&body).contains("NOPE"), "{body}");
    // To a bank that exists, the same bytes are decoded and refused.
    server.create_bank("TVEC");
    let (code, body) = server.upload_bytes(&server.curator, "/c/bank/TVEC/content", bytes, &[]);
    assert_eq!(code, 400, "{body}");
}

#[test]
fn a_picture_too_plain_for_pdq_is_banked_by_its_local_features_alone() {
    let server = Server::start();
    server.create_bank("TVEC");
    let picture = pictures::strewn_triangles_png();
    let (code, hashed) = server.upload_bytes(&server.submitter, "/h/hash", picture.clone(), &[]);
    assert_eq!(code, 200, "{hashed}");
    // Below quality 50, as HMA does, hashing answers no hash.
    assert_eq!(hashed, json!({ "pdq": "" }));
    let (code, added) = server.upload_bytes(&server.curator, "/c/bank/TVEC/content", picture.clone(), &[]);
    assert_eq!(code, 200, "{added}");
    assert_eq!(
        added["signals"],
        json!({ "pdq": "" }),
        "no PDQ hash is banked: {added}"
    );
    assert!(added["keypoints"].as_u64().unwrap() >= 12, "{added}");
    let path = format!("/c/bank/TVEC/content/{}?include_signals=true", added["id"]);
    let (_, content) = server.get(&server.curator, &path);
    assert!(content["signals"].get("pdq").is_none(), "{content}");
    assert!(
        content["signals"]["features"]
            .as_str()
            .unwrap()
            .starts_with("f1:")
    );
    // A repost finds it by its features.
    let (code, body) = server.upload_bytes(&server.submitter, "/m/lookup", picture, &[]);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["pdq"], json!({}), "{body}");
    assert_eq!(
        body["features"]["TVEC"][0]["bank_content_id"], added["id"],
        "{body}"
    );

    // A blank picture has nothing to match by and is refused, naming why.
    let (code, body) = server.upload_bytes(
        &server.curator,
        "/c/bank/TVEC/content",
        pictures::blank_png(),
        &[],
    );
    assert_eq!(code, 400, "{body}");
    assert!(message(&body).contains("too little detail"), "{body}");
}

#[test]
fn framed_content_matches_the_picture_without_its_frame_by_pdq() {
    let server = Server::start();
    server.create_bank("TVEC");
    let bytes = std::fs::read(image("misc-images/b.jpg")).unwrap();
    let photo = cordon_signals::decode(&bytes, &DecodeLimits::default()).unwrap();
    let width = photo.width() as usize;
    let framed = pictures::on_white_mat_png(photo.pixels(), width, width / 8);
    let (code, added) = server.upload_bytes(&server.curator, "/c/bank/TVEC/content", framed, &[]);
    assert_eq!(code, 200, "{added}");
    assert_ne!(added["signals"]["pdq"], BRIDGE, "{added}");
    // The bank keeps the hash of the picture inside the mat too: the bare photo's hash
    // finds the content, at once.
    let lookup = format!("/m/lookup?signal_type=pdq&signal={BRIDGE}");
    let (_, found) = server.get(&server.submitter, &lookup);
    assert_eq!(found["TVEC"][0]["bank_content_id"], added["id"], "{found}");
    assert_eq!(found["TVEC"][0]["distance"], "0", "{found}");
}

#[test]
fn uploaded_content_matches_cropped_reposts_by_local_features() {
    let server = Server::start();
    server.create_bank("TVEC");
    let (code, added) = server.upload(&server.curator, "/c/bank/TVEC/content", "misc-images/b.jpg", &[]);
    assert_eq!(code, 200, "{added}");
    // What a features lookup's work grows with is in /metrics.
    let gauges = || {
        let text = crate::common::metrics(&server.client, &server.base);
        let value = |series: &str| -> u64 {
            let line = text.lines().find(|l| l.starts_with(series)).unwrap_or_default();
            line.rsplit(' ')
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(u64::MAX)
        };
        (
            value(r#"cordon_index_hashes{signal_type="features"} "#),
            value("cordon_index_feature_descriptors "),
        )
    };
    let (sets, descriptors) = gauges();
    assert_eq!(sets, 1);
    assert!((100..=800).contains(&descriptors), "{descriptors} descriptors");
    // A fifth cut off the left and a tenth off the bottom: PDQ no longer matches.
    let bytes = std::fs::read(image("misc-images/b.jpg")).unwrap();
    let decoded = cordon_signals::decode(&bytes, &DecodeLimits::default()).unwrap();
    let (width, height) = (decoded.width() as usize, decoded.height() as usize);
    let (left, kept_height) = (width / 5, height - height / 10);
    let cropped: Vec<u8> = (0..kept_height)
        .flat_map(|y| decoded.pixels()[(y * width + left) * 3..(y + 1) * width * 3].to_vec())
        .collect();
    let png = pictures::rgb_png(&cropped, (width - left) as u32, kept_height as u32);
    let (code, body) = server.upload_bytes(&server.submitter, "/m/lookup", png, &[]);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["pdq"], json!({}), "{body}");
    assert_eq!(
        body["features"]["TVEC"][0]["bank_content_id"], added["id"],
        "{body}"
    );
    // Deleted content stops matching by features too.
    let path = format!("/c/bank/TVEC/content/{}", added["id"]);
    assert_eq!(
        server
            .send(reqwest::Method::DELETE, &server.curator, &path, json!(null))
            .0,
        200
    );
    assert_eq!(gauges(), (0, 0), "the deleted content's features left the gauges");
    let form = multipart::Form::new().part(
        "photo",
        multipart::Part::bytes(std::fs::read(image("misc-images/b.jpg")).unwrap()).file_name("b.jpg"),
    );
    let body: Value = server
        .client
        .post(format!("{}/m/lookup", server.base))
        .bearer_auth(&server.submitter)
        .multipart(form)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(body, json!({ "pdq": {} }));
}

#[test]
fn media_by_url_never_reaches_inside_addresses() {
    let host = media_host();
    let server = Server::start_with_policy(DecodeLimits::default(), loopback_fetching());
    let port = host.rsplit(':').next().unwrap();
    for (url, words) in [
        (format!("{host}/inside"), "127.0.0.2 is a loopback address"),
        (
            format!("http://127.0.0.2:{port}/b.jpg"),
            "127.0.0.2 is a loopback address",
        ),
        (
            "http://169.254.169.254/latest/meta-data/".to_string(),
            "not in [fetch] allow_hosts",
        ),
        (
            format!("http://media.example.invalid:{port}/b.jpg"),
            "not in [fetch] allow_hosts",
        ),
        ("file:///etc/passwd".to_string(), "only http and https"),
        ("not a url".to_string(), "bad url"),
    ] {
        let (code, body) = server.get(&server.submitter, &format!("/h/hash?url={url}"));
        assert_eq!(code, 400, "{url}: {body}");
        assert!(message(&body).contains(words), "{url}: {body}");
    }

    // Any host allowed, no address exceptions: a name resolving to loopback is refused
    // after DNS, and so is the metadata address.
    let any_host = Policy::parse("[fetch]\nallow_hosts = [\"*\"]\n").unwrap();
    let open = Server::start_with_policy(DecodeLimits::default(), any_host);
    for (url, words) in [
        (format!("http://localhost:{port}/b.jpg"), "loopback address"),
        (
            "http://169.254.169.254/latest/meta-data/".to_string(),
            "cloud metadata",
        ),
        (
            format!("http://[::ffff:127.0.0.1]:{port}/b.jpg"),
            "loopback address",
        ),
    ] {
        let (code, body) = open.get(&open.submitter, &format!("/m/lookup?url={url}"));
        assert_eq!(code, 400, "{url}: {body}");
        assert!(message(&body).contains(words), "{url}: {body}");
    }

    // Without [fetch], nothing is fetched.
    let closed = Server::start();
    let (code, body) = closed.get(&closed.submitter, &format!("/h/hash?url={host}/b.jpg"));
    assert_eq!(code, 400, "{body}");
    assert!(message(&body).contains("off on this server"), "{body}");
}

#[test]
fn media_by_url_is_bounded_in_bytes_and_time() {
    let limits = DecodeLimits {
        max_bytes: 1_000_000,
        ..DecodeLimits::default()
    };
    let server = Server::start_with_policy(limits, loopback_fetching());
    // No Content-Length: the cap is enforced on what arrives.
    let mut endless = b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nConnection: close\r\n\r\n".to_vec();
    endless.resize(endless.len() + 3_000_000, 0xff);
    let big = raw_peer(endless);
    let (code, body) = server.get(&server.submitter, &format!("/h/hash?url={big}/big.jpg"));
    assert_eq!(code, 413, "{body}");
    assert!(message(&body).contains("larger than 1000000 bytes"), "{body}");

    let stalled = raw_peer(Vec::new());
    let started = std::time::Instant::now();
    let (code, body) = server.get(&server.submitter, &format!("/h/hash?url={stalled}/b.jpg"));
    assert_eq!(code, 504, "{body}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    let host = media_host();
    let (code, body) = server.get(&server.submitter, &format!("/h/hash?url={host}/missing.jpg"));
    assert_eq!(code, 502, "{body}");
    assert!(message(&body).contains("404"), "{body}");
}

/// A method and a path.
type Route = (&'static str, &'static str);

/// Every route but `/status` and `/metrics` needs a key, and a key of its role (or admin):
/// 401 without one, 403 with another role's, through with the right one.
#[test]
fn every_route_checks_its_role() {
    // Many revoked-key requests from one address: raise the wrong-key throttle for them.
    let policy = Policy::parse("[limits]\nfailed_auth_per_minute = 1000\n").unwrap();
    let server = Server::start_with_policy(DecodeLimits::default(), policy);
    let submitter_routes = [
        ("GET", "/h/hash"),
        ("POST", "/h/hash"),
        ("GET", "/m/lookup"),
        ("POST", "/m/lookup"),
        ("GET", "/m/raw_lookup"),
        ("POST", "/m/compare"),
        ("GET", "/m/index/status"),
        ("POST", "/v1/submissions"),
        ("GET", "/v1/submissions/1"),
        ("GET", "/v1/accounts/a"),
        ("POST", "/v1/accounts/a/appeal"),
        ("POST", "/v1/provenance"),
    ];
    let curator_routes = [
        ("GET", "/c/banks"),
        ("POST", "/c/banks"),
        ("GET", "/c/bank/NONE"),
        ("PUT", "/c/bank/NONE"),
        ("DELETE", "/c/bank/NONE"),
        ("POST", "/c/bank/NONE/content"),
        ("POST", "/c/bank/NONE/signal"),
        ("GET", "/c/bank/NONE/content/1"),
        ("PUT", "/c/bank/NONE/content/1"),
        ("DELETE", "/c/bank/NONE/content/1"),
        ("GET", "/v1/quarantine"),
        ("POST", "/v1/quarantine/1/release"),
        ("POST", "/v1/banks/NONE/import"),
    ];
    let admin_routes = [("GET", "/v1/outbox")];
    let status = |key: Option<&str>, method: &str, path: &str| {
        let mut request = server
            .client
            .request(method.parse().unwrap(), format!("{}{path}", server.base));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send().unwrap().status().as_u16()
    };
    let groups: [(&[Route], &str, &str); 3] = [
        (&submitter_routes, &server.submitter, &server.curator),
        (&curator_routes, &server.curator, &server.submitter),
        (&admin_routes, &server.admin, &server.curator),
    ];
    for (routes, right, wrong) in groups {
        for (method, path) in routes {
            assert_eq!(status(None, method, path), 401, "{method} {path} without a key");
            assert_eq!(
                status(Some(&server.revoked), method, path),
                401,
                "{method} {path} revoked"
            );
            assert_eq!(
                status(Some(wrong), method, path),
                403,
                "{method} {path} with another role"
            );
            for key in [right, &server.admin] {
                let got = status(Some(key), method, path);
                assert!(got != 401 && got != 403, "{method} {path} with its role: {got}");
            }
        }
    }
    for open in ["/status", "/metrics"] {
        assert_eq!(status(None, "GET", open), 200, "{open} is open");
    }
}

#[test]
fn an_import_still_working_at_the_request_deadline_is_answered_once_done_not_timed_out() {
    // The deadline is for bodies that trickle in; this one arrives at once, and importing
    // it takes longer than the deadline. A 408 here, while the import committed anyway,
    // would make the client retry and bank every hash twice.
    let policy = Policy::parse("[limits]\nrequest_timeout_seconds = 1\n").unwrap();
    let server = Server::start_with_policy(DecodeLimits::default(), policy);
    server.create_bank("SLOW_IMPORT");
    let lines = 150_000u64;
    let list: String = (1..=lines)
        .map(|i| {
            format!(
                "pdq {:016x}{:016x}{:016x}{:016x}\n",
                i,
                i.wrapping_mul(7),
                i ^ 0x5555,
                !i
            )
        })
        .collect();
    let (status, body) = server.import("SLOW_IMPORT", list, "");
    assert_eq!((status, &body["imported"]), (200, &json!(lines)), "{body}");
    let (_, index) = server.get(&server.submitter, "/m/index/status");
    assert_eq!(index["pdq"]["size"], json!(lines), "{index}");
}

#[test]
fn hash_lists_are_imported_over_http_all_or_nothing_and_match_at_once() {
    let policy = Policy::parse("[limits]\nmax_import_bytes = 4096\n").unwrap();
    let server = Server::start_with_policy(DecodeLimits::default(), policy);
    server.create_bank("GIFCT_IMPORT");
    let import = |body: String, query: &str| server.import("GIFCT_IMPORT", body, query);
    let lookup = |hash: &str| {
        server
            .get(
                &server.submitter,
                &format!("/m/lookup?signal_type=pdq&signal={hash}"),
            )
            .1
    };
    let other = flipped(BRIDGE, 64);

    // A bad line: nothing lands, the error names the line.
    let (code, body) = import(format!("pdq {other}\npdq 12345\n"), "");
    assert_eq!(code, 400, "{body}");
    assert!(body.to_string().contains("line 2"), "{body}");
    assert!(body.to_string().contains("nothing was imported"), "{body}");
    assert_eq!(
        lookup(&other),
        json!({}),
        "the good first line did not land either"
    );

    // A good list (tx, sniffed), matchable by the very next request.
    let (code, body) = import(
        format!("# from a partner\npdq {BRIDGE}\npdq {other} {{\"note\": \"x\"}}\n"),
        "",
    );
    assert_eq!(
        (code, &body["imported"], &body["format"]),
        (200, &json!(2), &json!("tx")),
        "{body}"
    );
    assert!(lookup(&other).get("GIFCT_IMPORT").is_some(), "{}", lookup(&other));
    // JSON by name, and CSV sniffed from its header.
    let third = flipped(BRIDGE, 128);
    let (code, body) = import(format!("[\"{third}\"]"), "?format=json");
    assert_eq!((code, &body["imported"]), (200, &json!(1)), "{body}");
    assert!(lookup(&third).get("GIFCT_IMPORT").is_some());
    let fourth = flipped(BRIDGE, 192);
    let (code, body) = import(format!("signal_type,signal,note\npdq,{fourth},csv\n"), "");
    assert_eq!((code, &body["format"]), (200, &json!("csv")), "{body}");
    assert!(lookup(&fourth).get("GIFCT_IMPORT").is_some());

    // Bounded, named, and for curators only.
    let (code, body) = import(format!("pdq {BRIDGE}\n").repeat(100), "");
    assert_eq!(code, 413, "{body}");
    assert_eq!(import(String::new(), "?format=xml").0, 400);
    let missing = server
        .client
        .post(format!("{}/v1/banks/NO_SUCH_BANK/import", server.base))
        .bearer_auth(&server.curator)
        .body(format!("pdq {BRIDGE}\n"))
        .send()
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
}

/// The store of a test's data folder: SQLite in it, or PostgreSQL (`CORDON_TEST_STORE`).
fn test_store(data: &std::path::Path) -> cordon_store::StoreLocation {
    cordon_store::StoreLocation::parse(&cordon_testkit::store_url_for(data)).unwrap()
}

#[test]
fn status_live_answers_200_without_a_key() {
    // HMA 2.0's liveness probe: always 200, no key, whatever the index.
    let server = Server::start();
    assert_eq!(server.get_open("/status/live"), (200, "I-AM-ALIVE".to_string()));
}

#[test]
fn huge_timeouts_in_the_limits_never_crash_a_connection() {
    // Set in code, past the config file's own checks: whatever the limits say, adding a
    // deadline to the clock must not panic (it did on every connection: "overflow when
    // adding duration to instant").
    let mut policy = Policy::default();
    policy.limits.header_timeout_seconds = u64::MAX;
    policy.limits.request_timeout_seconds = u64::MAX;
    let server = Server::start_with_policy(DecodeLimits::default(), policy);
    for _ in 0..2 {
        assert_eq!(server.get_open("/status").0, 200);
    }
    let (code, body) = server.get(
        &server.submitter,
        &format!("/m/lookup?signal_type=pdq&signal={BRIDGE}"),
    );
    assert_eq!(code, 200, "{body}");
}

#[test]
fn a_body_over_the_size_limit_gets_413_saying_so() {
    let server = Server::start_with(DecodeLimits {
        max_bytes: 1000,
        ..DecodeLimits::default()
    });
    // The body limit is max_bytes plus 1 MiB for the form: a little over it. The async
    // client, since the server answers before it has read the whole body, and the
    // blocking client reports the body it could not finish sending instead of the answer.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (code, body) = runtime.block_on(async {
        let form = reqwest::multipart::Form::new().part(
            "photo",
            reqwest::multipart::Part::bytes(vec![0xff; (1 << 20) + 64 * 1024]).file_name("upload.jpg"),
        );
        let response = reqwest::Client::new()
            .post(format!("{}/h/hash", server.base))
            .bearer_auth(&server.submitter)
            .multipart(form)
            .send()
            .await
            .unwrap();
        (
            response.status().as_u16(),
            response.json::<Value>().await.unwrap(),
        )
    });
    assert_eq!(code, 413, "{body}");
    assert!(message(&body).contains("too large"), "{body}");
}

#[test]
fn a_remote_refusing_the_connection_is_a_bad_gateway_not_a_bad_request() {
    let server = Server::start_with_policy(DecodeLimits::default(), loopback_fetching());
    // A port nothing listens on: "Connection refused" comes from the remote side.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let (code, body) = server.get(
        &server.submitter,
        &format!("/h/hash?url=http://127.0.0.1:{port}/b.jpg"),
    );
    assert_eq!(code, 502, "{body}");
}

#[test]
fn every_answer_carries_a_request_id_the_callers_own_when_usable() {
    let server = Server::start();
    let id_of = |path: &str, sent: Option<&str>| {
        let mut request = server
            .client
            .get(format!("{}{path}", server.base))
            .bearer_auth(&server.submitter);
        if let Some(sent) = sent {
            request = request.header("X-Request-Id", sent);
        }
        let response = request.send().unwrap();
        response
            .headers()
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_string())
    };
    assert_eq!(id_of("/status", Some("trace-42")).as_deref(), Some("trace-42"));
    // Errors too, unmatched routes included.
    assert_eq!(
        id_of("/c/banks", Some("trace-43")).as_deref(),
        Some("trace-43"),
        "a 403"
    );
    assert_eq!(id_of("/no/such/route", Some("t-44")).as_deref(), Some("t-44"));
    // None sent, or one too long: a new one, different every time.
    let first = id_of("/status", None).unwrap();
    let second = id_of("/status", None).unwrap();
    assert!(!first.is_empty() && first != second, "{first} {second}");
    let long = "x".repeat(500);
    let replaced = id_of("/status", Some(&long)).unwrap();
    assert!(replaced != long && !replaced.is_empty());
}

#[test]
fn the_bearer_scheme_is_read_in_any_case() {
    let server = Server::start();
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let response = server
            .client
            .get(format!("{}/c/banks", server.base))
            .header("Authorization", format!("{scheme} {}", server.curator))
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{scheme}");
    }
}
