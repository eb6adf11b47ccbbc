//! `/v1/submissions` end to end: a real Cordon server, a real webhook receiver on another
//! loopback port, real SQLite, real photos.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use cordon_engine::access::{Role, issue_key};
use cordon_engine::policy::Policy;
use cordon_server::AppState;
use cordon_signals::DecodeLimits;
use cordon_store::{BankName, NewBank, NewContent, Signal, Store};
use cordon_testkit::{BRIDGE, Received, reference_image as image, wait_for_deliveries, webhook_receiver};
use reqwest::blocking::{Client, multipart};
use serde_json::{Value, json};

const SECRET: &str = "change-me-please";

fn receiver(failures: usize) -> (String, Received) {
    webhook_receiver(failures)
}

struct Cordon {
    base: String,
    key: String,
    curator: String,
    client: Client,
    data: tempfile::TempDir,
}

fn start(hook: &str) -> Cordon {
    start_with(hook, "")
}

/// A server whose policy is the test policy followed by `more_policy`.
fn start_with(hook: &str, more_policy: &str) -> Cordon {
    start_configured(hook, "", more_policy)
}

/// [`start_with`], with `rule_setting` added to the test policy's `known-tvec` rule.
fn start_configured(hook: &str, rule_setting: &str, more_policy: &str) -> Cordon {
    let data = tempfile::tempdir().unwrap();
    let key = {
        let mut store = Store::open_at(&test_store(data.path())).unwrap();
        let bank = BankName::new("TVEC").unwrap();
        store
            .create_bank(
                &bank,
                NewBank {
                    labels: vec!["tvec".to_string()],
                    ..NewBank::default()
                },
            )
            .unwrap();
        let mut writer = store.content_writer("TVEC").unwrap();
        let bridge = std::fs::read(image("misc-images/b.jpg")).unwrap();
        let bridge = cordon_signals::decode(&bridge, &DecodeLimits::default()).unwrap();
        writer
            .insert(&NewContent {
                signals: vec![
                    Signal {
                        signal_type: "pdq".to_string(),
                        value: BRIDGE.to_string(),
                    },
                    Signal {
                        signal_type: "features".to_string(),
                        value: cordon_signals::features::extract(&bridge).to_string(),
                    },
                ],
                ..NewContent::default()
            })
            .unwrap();
        writer.commit().unwrap();
        let submitter = issue_key(&mut store, "platform", Role::Submitter).unwrap().key;
        (
            submitter,
            issue_key(&mut store, "curator", Role::Curator).unwrap().key,
        )
    };
    let (key, curator) = key;
    let policy = Policy::parse(&format!(
        r#"
        [[webhooks]]
        name = "platform"
        url = "{hook}/hook"
        secret = "{SECRET}"

        [[rules]]
        name = "known-tvec"
        banks = ["TVEC"]
        max_distance = 31
        actions = ["remove", "strike"]
        {rule_setting}

        [strikes]
        suspend_at = 2
        window_days = 30

        {more_policy}
        "#
    ))
    .unwrap();
    let base =
        common::serve(AppState::open_at(&test_store(data.path()), DecodeLimits::default(), policy).unwrap());
    Cordon {
        base,
        key,
        curator,
        client: Client::new(),
        data,
    }
}

impl Cordon {
    fn submit(&self, file: &str, fields: &[(&str, &str)]) -> (u16, Value) {
        self.submit_bytes(std::fs::read(image(file)).unwrap(), fields)
    }

    fn submit_bytes(&self, bytes: Vec<u8>, fields: &[(&str, &str)]) -> (u16, Value) {
        let mut form = multipart::Form::new().part("media", multipart::Part::bytes(bytes).file_name("x.jpg"));
        for (name, value) in fields {
            form = form.text(name.to_string(), value.to_string());
        }
        let response = self
            .client
            .post(format!("{}/v1/submissions", self.base))
            .bearer_auth(&self.key)
            .multipart(form)
            .send()
            .unwrap();
        (response.status().as_u16(), response.json().unwrap())
    }
}

impl Cordon {
    /// Posts `bytes` as the multipart field `field` to `path`.
    fn upload(&self, key: &str, path: &str, field: &str, bytes: Vec<u8>) -> reqwest::blocking::Response {
        let form = multipart::Form::new().part(
            field.to_string(),
            multipart::Part::bytes(bytes).file_name("upload"),
        );
        self.client
            .post(format!("{}{path}", self.base))
            .bearer_auth(key)
            .multipart(form)
            .send()
            .unwrap()
    }

    /// A request as the curator; JSON in and out (`None`: no body), or the metrics text.
    fn curate(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.curator);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().unwrap();
        (response.status().as_u16(), response.json().unwrap_or(Value::Null))
    }

    fn metrics(&self) -> String {
        crate::common::metrics(&self.client, &self.base)
    }
}

fn wait_for(received: &Received, count: usize, within: Duration) -> Vec<(BTreeMap<String, String>, String)> {
    wait_for_deliveries(received, count, within)
}

#[test]
fn a_known_photo_is_decided_and_delivered_signed_once() {
    let (hook, received) = receiver(0);
    let cordon = start(&hook);
    let fields = [
        ("content_id", "post-1"),
        ("account_id", "acct-9"),
        ("posted_at", "2026-11-29T10:00:00+01:00"),
    ];
    let (code, answer) = cordon.submit("bridge-mods/blur-a-lot.jpg", &fields);
    assert_eq!(code, 201, "{answer}");
    assert_eq!(answer["matches"][0]["bank"], "TVEC");
    let actions = actions(&answer);
    assert_eq!(actions, ["remove", "strike"]);
    assert!(
        answer["decisions"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("TVEC")
    );

    let deliveries = wait_for(&received, 2, Duration::from_secs(10));
    assert_eq!(deliveries.len(), 2);
    for (headers, body) in &deliveries {
        assert_eq!(
            headers["x-cordon-signature"],
            cordon_server::signature(SECRET, body.as_bytes()).unwrap()
        );
        let payload: Value = serde_json::from_str(body).unwrap();
        assert_eq!(payload["submission"]["content_id"], "post-1");
        assert_eq!(payload["account"]["id"], "acct-9");
        assert_eq!(payload["decision"]["rule"], "known-tvec");
        assert!(headers["idempotency-key"].starts_with("decision-"));
    }

    // A retry: the first answer, nothing decided or delivered again.
    let (code, again) = cordon.submit("bridge-mods/blur-a-lot.jpg", &fields);
    assert_eq!((code, &again), (200, &answer));
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(received.lock().unwrap().len(), 2);

    // The stored answer, by id.
    let by_id: Value = cordon
        .client
        .get(format!("{}/v1/submissions/{}", cordon.base, answer["id"]))
        .bearer_auth(&cordon.key)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(by_id, answer);

    // Counted once, retry or not.
    let metrics = crate::common::metrics(&cordon.client, &cordon.base);
    assert!(metrics.contains("cordon_submissions_total 1\n"), "{metrics}");
    assert!(
        metrics.contains("cordon_decisions_total{action=\"remove\"} 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("cordon_outbox_pending 0\n"), "{metrics}");
}

#[test]
fn two_webhooks_on_one_receiver_each_carry_their_own_key_in_header_and_body() {
    let (hook, received) = receiver(0);
    let archive = format!("[[webhooks]]\nname = \"archive\"\nurl = \"{hook}/hook\"\nsecret = \"{SECRET}\"\n");
    let cordon = start_with(&hook, &archive);
    let (code, answer) = cordon.submit(
        "bridge-mods/blur-a-lot.jpg",
        &[("content_id", "post-1"), ("account_id", "acct-9")],
    );
    assert_eq!(code, 201, "{answer}");
    let expected: std::collections::BTreeSet<String> = answer["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| ["platform", "archive"].map(|hook| format!("decision-{}-{hook}", d["id"])))
        .collect();
    assert_eq!(expected.len(), 4, "{answer}");

    // A receiver deduplicating on the body's key keeps every webhook's delivery, as one
    // deduplicating on the header does.
    let deliveries = wait_for(&received, expected.len(), Duration::from_secs(10));
    let mut keys = std::collections::BTreeSet::new();
    for (headers, body) in &deliveries {
        let payload: Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            payload["idempotency_key"],
            headers["idempotency-key"].as_str(),
            "{body}"
        );
        assert_eq!(
            headers["x-cordon-signature"],
            cordon_server::signature(SECRET, body.as_bytes()).unwrap()
        );
        keys.insert(headers["idempotency-key"].clone());
    }
    assert_eq!(keys, expected);
}

/// A reference image with its left quarter cut off and a black caption bar over the
/// bottom fifth, as PNG: a repost PDQ misses.
fn cropped_and_captioned(file: &str) -> Vec<u8> {
    let bytes = std::fs::read(image(file)).unwrap();
    let decoded = cordon_signals::decode(&bytes, &DecodeLimits::default()).unwrap();
    let (width, height) = (decoded.width(), decoded.height());
    let mut repost = image::RgbImage::from_raw(width, height, decoded.pixels().to_vec()).unwrap();
    repost = image::imageops::crop_imm(&repost, width / 4, 0, width - width / 4, height).to_image();
    let caption_top = repost.height() * 4 / 5;
    for (_, y, pixel) in repost.enumerate_pixels_mut() {
        if y >= caption_top {
            *pixel = image::Rgb([10, 10, 10]);
        }
    }
    let mut png = std::io::Cursor::new(Vec::new());
    repost.write_to(&mut png, image::ImageFormat::Png).unwrap();
    png.into_inner()
}

#[test]
fn a_cropped_and_captioned_repost_is_removed_by_local_features() {
    let (hook, received) = receiver(0);
    let cordon = start(&hook);
    let (code, answer) = cordon.submit_bytes(
        cropped_and_captioned("misc-images/b.jpg"),
        &[("content_id", "post-crop"), ("account_id", "acct-9")],
    );
    assert_eq!(code, 201, "{answer}");
    assert_eq!(answer["matches"][0]["signal_type"], "features", "{answer}");
    let actions = actions(&answer);
    assert!(actions.contains(&"remove"), "{answer}");
    let reason = answer["decisions"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("by features"), "{reason}");
    assert!(!wait_for(&received, 1, Duration::from_secs(5)).is_empty());
}

#[test]
fn a_rule_asking_more_keypoint_pairs_than_a_repost_has_leaves_it_to_review() {
    const REVIEW_RULE: &str =
        "[[rules]]\nname = \"tvec-review\"\nbanks = [\"TVEC\"]\nactions = [\"review\"]\n";
    let repost = cropped_and_captioned("misc-images/b.jpg");
    let decide = |rule_setting: &str| {
        let (hook, _received) = receiver(0);
        let cordon = start_configured(&hook, rule_setting, REVIEW_RULE);
        let (code, answer) = cordon.submit_bytes(
            repost.clone(),
            &[("content_id", "post-crop"), ("account_id", "acct-9")],
        );
        assert_eq!(code, 201, "{answer}");
        assert_eq!(answer["matches"][0]["signal_type"], "features", "{answer}");
        let distance = answer["matches"][0]["distance"].as_u64().unwrap();
        let decisions: Vec<String> = answer["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                format!(
                    "{} by {}",
                    d["action"].as_str().unwrap(),
                    d["rule"].as_str().unwrap()
                )
            })
            .collect();
        (distance, decisions)
    };
    let (distance, decisions) = decide("");
    assert_eq!(
        decisions,
        [
            "remove by known-tvec",
            "strike by known-tvec",
            "review by tvec-review"
        ]
    );
    // Distances stop at 0 from 100 pairs on: below that the pairs are exactly known.
    assert!(distance > 0, "{distance}");
    let pairs = 100 - distance;
    let (_, decisions) = decide(&format!("min_keypoint_pairs = {pairs}"));
    assert_eq!(
        decisions,
        [
            "remove by known-tvec",
            "strike by known-tvec",
            "review by tvec-review"
        ]
    );
    let (_, decisions) = decide(&format!("min_keypoint_pairs = {}", pairs + 1));
    assert_eq!(decisions, ["review by tvec-review"], "{pairs} pairs");
}

#[test]
fn an_unknown_photo_is_not_acted_on() {
    let (hook, received) = receiver(0);
    let cordon = start(&hook);
    let (code, answer) = cordon.submit(
        "reg-test-input/labelme-subset/q0122.jpg",
        &[("content_id", "post-2"), ("account_id", "acct-1")],
    );
    assert_eq!(code, 201);
    assert!(answer["matches"].as_array().unwrap().is_empty());
    assert!(answer["decisions"].as_array().unwrap().is_empty());
    std::thread::sleep(Duration::from_millis(600));
    assert!(received.lock().unwrap().is_empty());
}

#[test]
fn a_failing_receiver_gets_the_decision_on_a_retry() {
    let (hook, received) = receiver(1);
    let cordon = start(&hook);
    let (code, _) = cordon.submit(
        "misc-images/b.jpg",
        &[("content_id", "post-3"), ("account_id", "a")],
    );
    assert_eq!(code, 201);
    // The first try fails; the retry comes after the two-second backoff.
    let deliveries = wait_for(&received, 2, Duration::from_secs(15));
    assert_eq!(deliveries.len(), 2, "both decisions delivered after a retry");
}

#[test]
fn bad_submissions_get_native_json_errors() {
    let (hook, _) = receiver(0);
    let cordon = start(&hook);
    for (file, fields, status, code) in [
        ("misc-images/b.jpg", vec![("account_id", "a")], 400, "bad_request"),
        ("misc-images/b.jpg", vec![("content_id", "c")], 400, "bad_request"),
        (
            "misc-images/b.jpg",
            vec![
                ("content_id", "c"),
                ("account_id", "a"),
                ("posted_at", "yesterday"),
            ],
            400,
            "bad_request",
        ),
        (
            "misc-images/b.jpg",
            vec![("content_id", "c"), ("account_id", "a"), ("metadata", "[1]")],
            400,
            "bad_request",
        ),
        (
            "reg-test-input/haystack.txt",
            vec![("content_id", "c"), ("account_id", "a")],
            415,
            "unsupported_media",
        ),
    ] {
        let (got, body) = cordon.submit(file, &fields);
        assert_eq!(got, status, "{fields:?}: {body}");
        assert_eq!(body["error"]["code"], code, "{fields:?}: {body}");
        assert!(body["error"]["message"].is_string());
    }
    // A text field is kept to 64 KiB: metadata just under it is stored, just over it is
    // refused by name, with the fields after it read to the end.
    let metadata = |len: usize| format!("{{\"x\":\"{}\"}}", "m".repeat(len - 8));
    let (under, over) = (metadata(64 * 1024), metadata(64 * 1024 + 1));
    let fields = |content_id, metadata| {
        [
            ("content_id", content_id),
            ("account_id", "a"),
            ("metadata", metadata),
            ("source_url", "https://example.org/after-the-metadata"),
        ]
    };
    let (got, body) = cordon.submit("misc-images/b.jpg", &fields("long-1", &over));
    assert_eq!(got, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("`metadata` is longer than 65536 bytes"),
        "{message}"
    );
    let (got, body) = cordon.submit("misc-images/b.jpg", &fields("long-2", &under));
    assert_eq!(got, 201, "{body}");

    let anonymous = cordon
        .client
        .post(format!("{}/v1/submissions", cordon.base))
        .send()
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    assert_eq!(
        anonymous.json::<Value>().unwrap()["error"]["code"],
        "unauthorized"
    );
}

#[test]
fn posted_at_outside_1970_to_a_day_ahead_is_refused_and_the_server_serves_on() {
    let (hook, _) = receiver(0);
    let cordon = start(&hook);
    let in_two_days = (time::OffsetDateTime::now_utc() + time::Duration::days(2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    for (n, posted_at) in [
        // Valid RFC 3339 whose UTC form is past year 9999: formatting it panicked and
        // the connection was dropped.
        "9999-12-31T23:59:59-23:59",
        // Before year 0 in UTC: stored as "-001-…", not RFC 3339.
        "0000-01-01T00:00:00+23:59",
        "1969-12-31T23:59:59Z",
        &in_two_days,
    ]
    .into_iter()
    .enumerate()
    {
        let content_id = format!("c{n}");
        let (code, body) = cordon.submit(
            "misc-images/b.jpg",
            &[
                ("content_id", &content_id),
                ("account_id", "a"),
                ("posted_at", posted_at),
            ],
        );
        assert_eq!(code, 400, "{posted_at}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains("posted_at"),
            "{posted_at}: {body}"
        );
    }
    let (code, body) = cordon.submit(
        "misc-images/b.jpg",
        &[
            ("content_id", "fine"),
            ("account_id", "a"),
            ("posted_at", "2026-11-29T10:00:00+01:00"),
        ],
    );
    assert_eq!(code, 201, "a sane posted_at is taken: {body}");
}

#[test]
fn a_form_field_given_twice_is_refused_not_last_one_wins() {
    let (hook, _) = receiver(0);
    let cordon = start(&hook);
    for (fields, twice) in [
        (
            vec![("content_id", "c"), ("account_id", "a"), ("content_id", "d")],
            "content_id",
        ),
        (
            vec![("content_id", "c"), ("account_id", "a"), ("account_id", "b")],
            "account_id",
        ),
        (
            vec![
                ("content_id", "c"),
                ("account_id", "a"),
                ("metadata", "{}"),
                ("metadata", "{}"),
            ],
            "metadata",
        ),
        (
            vec![("content_id", "c"), ("account_id", "a"), ("media", "more")],
            "media",
        ),
    ] {
        let (code, body) = cordon.submit("misc-images/b.jpg", &fields);
        assert_eq!(code, 400, "{fields:?}: {body}");
        assert_eq!(body["error"]["code"], "bad_request", "{body}");
        assert_eq!(
            body["error"]["message"],
            format!("field `{twice}` given twice"),
            "{body}"
        );
    }
}

#[test]
fn the_first_strike_warns_the_second_suspends_and_the_account_says_why() {
    let (hook, _) = receiver(0);
    // The test policy ends in its [strikes] table: this line lands there.
    let cordon = start_with(&hook, "warn_at = 1");
    let account = |id: &str| -> (u16, Value) {
        let response = cordon
            .client
            .get(format!("{}/v1/accounts/{id}", cordon.base))
            .bearer_auth(&cordon.key)
            .send()
            .unwrap();
        (response.status().as_u16(), response.json().unwrap())
    };
    assert_eq!(account("acct-7").0, 404);
    let (_, first) = cordon.submit(
        "misc-images/b.jpg",
        &[("content_id", "p1"), ("account_id", "acct-7")],
    );
    let first_actions = actions(&first);
    assert_eq!(first_actions, ["remove", "strike", "warn_account"]);
    assert!(
        first["decisions"][2]["reason"]
            .as_str()
            .unwrap()
            .contains("warning threshold of 1"),
        "{first}"
    );
    let (_, state) = account("acct-7");
    assert_eq!(
        (state["state"].clone(), state["strike_weight"].clone()),
        (Value::from("active"), Value::from(1))
    );

    let (_, second) = cordon.submit(
        "bridge-mods/blur-a-lot.jpg",
        &[("content_id", "p2"), ("account_id", "acct-7")],
    );
    let actions = actions(&second);
    assert_eq!(actions, ["remove", "strike", "suspend_account"]);
    let (code, state) = account("acct-7");
    assert_eq!(code, 200);
    assert_eq!(state["state"], "suspended");
    assert!(
        state["reason"]
            .as_str()
            .unwrap()
            .contains("2 strikes within 30 days"),
        "{state}"
    );
    assert_eq!(state["strike_weight"], 2);
    assert_eq!(state["history"].as_array().unwrap().len(), 6);
    // Another account is untouched.
    cordon.submit(
        "misc-images/b.jpg",
        &[("content_id", "p3"), ("account_id", "acct-8")],
    );
    assert_eq!(account("acct-8").1["state"], "active");
}

/// The actions of an answer's decisions, in order.
fn actions(answer: &Value) -> Vec<&str> {
    answer["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["action"].as_str().unwrap())
        .collect()
}

impl Cordon {
    fn provenance(&self, body: Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}/v1/provenance", self.base))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .unwrap();
        (response.status().as_u16(), response.json().unwrap())
    }
}

#[test]
fn a_recycled_photo_is_traced_to_its_first_sighting() {
    let (hook, _) = receiver(0);
    let cordon = start(&hook);
    // Posted in January by one account, then in August, shrunk and re-encoded, by another.
    let (code, first) = cordon.submit(
        "misc-images/b.jpg",
        &[
            ("content_id", "post-1"),
            ("account_id", "acct-a"),
            ("posted_at", "2026-01-10T08:00:00Z"),
            ("source_url", "https://example.org/a/1"),
        ],
    );
    assert_eq!(code, 201, "{first}");
    let (code, second) = cordon.submit(
        "bridge-mods/shrink-a-lot.jpg",
        &[
            ("content_id", "post-2"),
            ("account_id", "acct-b"),
            ("posted_at", "2026-08-10T08:00:00Z"),
        ],
    );
    assert_eq!(code, 201, "{second}");

    let (code, answer) = cordon.provenance(json!({ "submission_id": second["id"] }));
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["first_seen"]["account_id"], "acct-a", "{answer}");
    assert_eq!(answer["first_seen"]["source_url"], "https://example.org/a/1");
    assert_eq!(answer["first_seen"]["seen_at"], "2026-01-10T08:00:00.000Z");
    assert_eq!(answer["first_seen"]["format"], "jpeg");
    assert_eq!(
        answer["sightings"].as_array().unwrap().len(),
        1,
        "itself left out"
    );
    assert_eq!(
        (answer["accounts"].clone(), answer["sources"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(answer["variants"].as_array().unwrap().len(), 1);
    assert_eq!(answer["verdict"]["label"], "recycled");
    let reason = answer["verdict"]["reasons"][0].as_str().unwrap();
    assert!(
        reason.starts_with("first seen 212 days before this post, at https://example.org/a/1"),
        "{reason}"
    );

    // Asked about a third copy by upload: both earlier files, nearest first among variants.
    let bytes = std::fs::read(image("bridge-mods/blur-a-little.jpg")).unwrap();
    let response = cordon.upload(&cordon.key, "/v1/provenance", "media", bytes);
    assert_eq!(response.status().as_u16(), 200);
    let by_upload: Value = response.json().unwrap();
    assert_eq!(by_upload["sightings"].as_array().unwrap().len(), 2, "{by_upload}");
    assert_eq!(by_upload["sightings_total"], 2);
    assert_eq!(by_upload["accounts"], 2);
    assert_eq!(by_upload["variants"].as_array().unwrap().len(), 2);
    assert_eq!(by_upload["first_seen"]["account_id"], "acct-a");

    // Asked to list one: the earliest, and everything still counted.
    let bytes = std::fs::read(image("bridge-mods/blur-a-little.jpg")).unwrap();
    let response = cordon.upload(&cordon.key, "/v1/provenance?limit=1", "media", bytes.clone());
    assert_eq!(response.status().as_u16(), 200);
    let one: Value = response.json().unwrap();
    let listed = one["sightings"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{one}");
    assert_eq!(listed[0]["account_id"], "acct-a");
    assert_eq!(
        (&one["sightings_total"], &one["accounts"]),
        (&json!(2), &json!(2))
    );
    assert_eq!(one["verdict"], by_upload["verdict"]);
    for limit in ["0", "10001", "-1", "many"] {
        let path = format!("/v1/provenance?limit={limit}");
        let response = cordon.upload(&cordon.key, &path, "media", bytes.clone());
        assert_eq!(response.status().as_u16(), 400, "limit={limit}");
        let error: Value = response.json().unwrap();
        assert!(error["error"]["message"].is_string(), "{error}");
    }

    // A picture never seen.
    let (code, unseen) = cordon.provenance(json!({ "pdq": "0".repeat(64) }));
    assert_eq!(code, 200);
    assert_eq!(unseen["first_seen"], Value::Null);
    assert_eq!(unseen["verdict"]["label"], "first_sighting");
    assert_eq!(unseen["verdict"]["reasons"], json!(["no earlier sighting"]));

    for (body, status) in [
        (json!({}), 400),
        (json!({ "pdq": "zz" }), 400),
        (json!({ "pdq": BRIDGE, "submission_id": 1 }), 400),
        (json!({ "submission_id": 999 }), 404),
        (json!({ "colour": "red" }), 400),
    ] {
        let (code, error) = cordon.provenance(body.clone());
        assert_eq!(code, status, "{body}: {error}");
        assert!(error["error"]["message"].is_string(), "{error}");
    }
}

#[test]
fn exif_evidence_is_kept_with_the_sighting_and_weighed() {
    let (hook, _) = receiver(0);
    let cordon = start(&hook);
    let (code, posted) = cordon.submit(
        "reg-test-input/exif-rotn/exif-rotn-1.jpg",
        &[
            ("content_id", "post-9"),
            ("account_id", "acct-c"),
            ("posted_at", "2026-08-10T08:00:00Z"),
        ],
    );
    assert_eq!(code, 201, "{posted}");
    let (code, answer) = cordon.provenance(json!({ "submission_id": posted["id"] }));
    assert_eq!(code, 200, "{answer}");
    let exif = &answer["evidence"]["exif"];
    assert_eq!(exif["make"], "samsung", "{answer}");
    assert!(exif["capture_time"].is_string(), "{answer}");
    assert!(exif["gps"]["latitude"].is_number(), "{answer}");
    let reasons = answer["verdict"]["reasons"].to_string();
    assert!(reasons.contains("no earlier sighting"), "{reasons}");
    // The camera says it was taken long before it was posted: recycled.
    assert!(reasons.contains("EXIF capture time 20"), "{reasons}");
    assert_eq!(answer["verdict"]["label"], "recycled", "{answer}");
}

#[test]
fn a_match_that_also_hits_a_negative_bank_goes_to_review_not_removal() {
    let (hook, received) = receiver(0);
    let cordon = start(&hook);
    let (code, bank) = cordon.curate(
        reqwest::Method::POST,
        "/c/banks",
        Some(json!({ "name": "HARMLESS", "is_negative": true })),
    );
    assert_eq!((code, &bank["is_negative"]), (201, &json!(true)), "{bank}");
    // The same photo stands for a harmless image that collides with the TVEC entry.
    let bytes = std::fs::read(image("misc-images/b.jpg")).unwrap();
    let added = cordon.upload(&cordon.curator, "/c/bank/HARMLESS/content", "photo", bytes);
    assert_eq!(added.status().as_u16(), 200);

    let (code, answer) = cordon.submit(
        "misc-images/b.jpg",
        &[("content_id", "collides"), ("account_id", "innocent")],
    );
    assert_eq!(code, 201, "{answer}");
    let negative: Vec<&Value> = answer["matches"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["negative"] == json!(true))
        .collect();
    assert_eq!(negative.len(), 1, "{answer}");
    assert_eq!(negative[0]["bank"], "HARMLESS");
    let decisions = answer["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 1, "{answer}");
    assert_eq!(decisions[0]["action"], "review");
    let reason = decisions[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("held for review instead of remove, strike: also matches negative bank HARMLESS"),
        "{reason}"
    );
    let delivered = wait_for(&received, 1, Duration::from_secs(10));
    assert_eq!(delivered.len(), 1);
    assert!(delivered[0].1.contains(r#""action":"review""#));
    let account: Value = cordon
        .client
        .get(format!("{}/v1/accounts/innocent", cordon.base))
        .bearer_auth(&cordon.key)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(account["state"], "active");
    assert_eq!(account["active_strikes"], json!([]), "{account}");
}

#[test]
fn a_flooding_bank_entry_is_quarantined_reported_and_released() {
    let (hook, _received) = receiver(0);
    let cordon = start_with(&hook, "[flood_guard]\nmin_hits = 3\n");
    let submit = |n: usize| {
        let (code, answer) = cordon.submit(
            "misc-images/b.jpg",
            &[
                ("content_id", &format!("wave-{n}")),
                ("account_id", &format!("acct-{n}")),
            ],
        );
        assert_eq!(code, 201, "{answer}");
        answer
    };
    for n in 0..2 {
        let answer = submit(n);
        assert_eq!(answer["decisions"][0]["action"], "remove", "{answer}");
        assert_eq!(answer["matches"][0].get("quarantined"), None);
    }
    // The third match within ten minutes of an entry with no history is a flood.
    let third = submit(2);
    assert_eq!(third["matches"][0]["quarantined"], json!(true), "{third}");
    let decisions = third["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 1, "{third}");
    assert_eq!(decisions[0]["action"], "review");
    assert!(
        decisions[0]["reason"]
            .as_str()
            .unwrap()
            .contains("is quarantined by the flood guard")
    );

    let metrics = cordon.metrics();
    assert!(
        metrics.contains("cordon_flood_quarantined_entries 1"),
        "{metrics}"
    );
    assert!(metrics.contains("cordon_flood_quarantined{bank=\"TVEC\",content_id=\"1\"} 1"));
    let (code, listed) = cordon.curate(reqwest::Method::GET, "/v1/quarantine", None);
    assert_eq!(code, 200);
    assert_eq!(listed["quarantined"][0]["content_id"], 1, "{listed}");
    assert!(
        listed["quarantined"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("3 matches in 10 minutes")
    );
    let forbidden = cordon
        .client
        .get(format!("{}/v1/quarantine", cordon.base))
        .bearer_auth(&cordon.key)
        .send()
        .unwrap();
    assert_eq!(
        forbidden.status().as_u16(),
        403,
        "submitters cannot see or release quarantines"
    );

    let (code, released) = cordon.curate(reqwest::Method::POST, "/v1/quarantine/1/release", None);
    assert_eq!(code, 200, "{released}");
    assert_eq!(released["released_by"], "key:curator");
    assert_eq!(
        cordon
            .curate(reqwest::Method::POST, "/v1/quarantine/1/release", None)
            .0,
        404,
        "released already"
    );
    for n in 3..8 {
        assert_eq!(
            submit(n)["decisions"][0]["action"],
            "remove",
            "a released entry acts again"
        );
    }
    assert!(cordon.metrics().contains("cordon_flood_quarantined_entries 0"));

    // What the guard learnt is in the store: a restarted server remembers it.
    let store = Store::open_at(&test_store(cordon.data.path())).unwrap();
    let kept = store.quarantines().unwrap();
    assert_eq!(kept.len(), 1);
    assert!(kept[0].released_at.is_some());
    let audit = store.audit_entries(0).unwrap();
    let events: Vec<&str> = audit.iter().map(|e| e.event.as_str()).collect();
    assert!(events.contains(&"flood.quarantined") && events.contains(&"flood.released"));
    // ...and so do other nodes on the same store, through the change feed.
    let told: Vec<(Option<i64>, cordon_store::ChangeKind)> = store
        .changes_after(0, 10_000)
        .unwrap()
        .into_iter()
        .filter(|c| {
            matches!(
                c.kind,
                cordon_store::ChangeKind::ContentQuarantined { .. }
                    | cordon_store::ChangeKind::ContentReleased
            )
        })
        .map(|c| (c.content_id, c.kind))
        .collect();
    assert_eq!(
        told,
        [
            (
                Some(1),
                cordon_store::ChangeKind::ContentQuarantined { bank: "TVEC".into() }
            ),
            (Some(1), cordon_store::ChangeKind::ContentReleased)
        ]
    );
    // The counts are there for every node to read, and the leader purges the old ones.
    let counted = store.content_hits(&[1], "2000-01-01T00:00:00Z").unwrap();
    assert_eq!(counted.iter().map(|c| c.hits).sum::<u32>(), 8, "{counted:?}");
    let mut store = store;
    assert_eq!(store.purge_content_hits("2000-01-01T00:00:00Z").unwrap(), 0);
    assert_eq!(
        store.purge_content_hits("9999-01-01T00:00:00Z").unwrap(),
        counted.len() as u64
    );
    assert!(
        store
            .content_hits(&[1], "2000-01-01T00:00:00Z")
            .unwrap()
            .is_empty()
    );
}

#[test]
fn simultaneous_uploads_of_a_flood_are_each_counted() {
    // Ten uploads of one entry at once, the guard at five hits: each upload's hit is
    // counted before it is judged, so the six from the fifth hit on (in whatever order
    // they land) are quarantined, however many are in flight together. One counted
    // earlier may be held too: judged after a later one has stored the quarantine, it
    // finds the entry quarantined already (CI saw 7 once). A lost count would hold fewer.
    let (hook, _received) = receiver(0);
    let cordon = start_with(&hook, "[flood_guard]\nmin_hits = 5\n");
    let answers: Vec<Value> = std::thread::scope(|scope| {
        let uploads: Vec<_> = (0..10)
            .map(|n| {
                let cordon = &cordon;
                scope.spawn(move || {
                    let fields = [
                        ("content_id", format!("burst-{n}")),
                        ("account_id", format!("acct-{n}")),
                    ];
                    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
                    let (code, answer) = cordon.submit("misc-images/b.jpg", &fields);
                    assert_eq!(code, 201, "{answer}");
                    answer
                })
            })
            .collect();
        uploads.into_iter().map(|u| u.join().unwrap()).collect()
    });
    let held = answers
        .iter()
        .filter(|a| a["matches"][0]["quarantined"] == json!(true))
        .count();
    assert!((6..=10).contains(&held), "{held} held: {answers:?}");
}

#[test]
fn a_cropped_repost_is_traced_through_the_bank_content_its_features_match() {
    let (hook, _received) = receiver(0);
    let cordon = start(&hook);
    // A curator banks the photo from the file: a bank sighting with PDQ and features.
    assert_eq!(
        cordon
            .curate(
                reqwest::Method::POST,
                "/c/banks",
                Some(json!({ "name": "ORIGINALS" }))
            )
            .0,
        201
    );
    let bytes = std::fs::read(image("misc-images/b.jpg")).unwrap();
    let banked = cordon.upload(&cordon.curator, "/c/bank/ORIGINALS/content", "photo", bytes);
    assert_eq!(banked.status().as_u16(), 200);
    // Months earlier, the photo itself was posted by another account.
    let (code, _) = cordon.submit(
        "misc-images/b.jpg",
        &[
            ("content_id", "first-post"),
            ("account_id", "early-acct"),
            ("posted_at", "2026-03-01T00:00:00Z"),
            ("source_url", "https://example.org/first"),
        ],
    );
    assert_eq!(code, 201);

    // Asked about a cropped and captioned copy: PDQ finds no sighting; the local features
    // match the bank content, whose sightings and their near copies answer.
    let asked = cordon.upload(
        &cordon.key,
        "/v1/provenance",
        "media",
        cropped_and_captioned("misc-images/b.jpg"),
    );
    assert_eq!(asked.status().as_u16(), 200);
    let answer: Value = asked.json().unwrap();
    let sightings = answer["sightings"].as_array().unwrap();
    assert_eq!(
        sightings.len(),
        2,
        "the bank sighting and the first post: {answer}"
    );
    assert!(
        sightings.iter().all(|s| s["signal_type"] == "features"),
        "{answer}"
    );
    assert_eq!(answer["first_seen"]["source_url"], "https://example.org/first");
    assert_eq!(answer["first_seen"]["account_id"], "early-acct");
    assert_eq!(answer["variants"][0]["signal_type"], "features");
    assert_eq!(answer["verdict"]["label"], "recycled", "{answer}");

    // By hash alone there is nothing to tie the copy to.
    let crop_hash = {
        let png = cropped_and_captioned("misc-images/b.jpg");
        let decoded = cordon_signals::decode(&png, &DecodeLimits::default()).unwrap();
        cordon_signals::PdqHasher::default().hash(&decoded).hash.to_hex()
    };
    let by_hash: Value = cordon
        .client
        .post(format!("{}/v1/provenance", cordon.base))
        .bearer_auth(&cordon.key)
        .json(&json!({ "pdq": crop_hash }))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(by_hash["sightings"], json!([]), "{by_hash}");
}

#[test]
fn content_credentials_are_kept_with_the_sighting_and_outlive_a_stripped_copy() {
    use cordon_testkit::content_credentials::{SIGNER_NAME, manifest, sign};
    let (hook, _received) = receiver(0);
    let cordon = start(&hook);
    let photo = std::fs::read(image("misc-images/b.jpg")).unwrap();
    // A news photo, signed (created by a camera, then cropped), posted months ago.
    let signed = sign(&photo, "image/jpeg", &manifest("bridge", "digitalCapture"));
    let (code, answer) = cordon.submit_bytes(
        signed.clone(),
        &[
            ("content_id", "signed-1"),
            ("account_id", "news-desk"),
            ("posted_at", "2026-03-01T00:00:00Z"),
            ("source_url", "https://news.example/1"),
        ],
    );
    assert_eq!(code, 201, "{answer}");
    let ask = |bytes: Vec<u8>| -> Value {
        let response = cordon.upload(&cordon.key, "/v1/provenance", "media", bytes);
        assert_eq!(response.status().as_u16(), 200);
        response.json().unwrap()
    };

    // The signed file itself: its credentials are read and weighed.
    let answer = ask(signed);
    let c2pa = &answer["evidence"]["c2pa"];
    assert_eq!(c2pa["signer"], SIGNER_NAME, "{answer}");
    assert_eq!(c2pa["validation_state"], "valid");
    assert_eq!(c2pa["actions"], json!(["c2pa.created", "c2pa.cropped"]));
    let reasons = answer["verdict"]["reasons"].to_string();
    assert!(
        reasons.contains(&format!("C2PA: signed by {SIGNER_NAME} with Cordon Test Camera")),
        "{reasons}"
    );
    assert!(reasons.contains("edited (cropped)"), "{reasons}");

    // The same photo without them (as a platform that strips metadata serves it): the
    // ledger kept what the signed copy carried.
    let answer = ask(photo.clone());
    assert_eq!(answer["evidence"]["c2pa"], Value::Null);
    assert_eq!(
        answer["evidence"]["c2pa_in_sightings"]["signer"], SIGNER_NAME,
        "{answer}"
    );
    let reasons = answer["verdict"]["reasons"].to_string();
    assert!(
        reasons.contains("this file carries no Content Credentials, but an earlier copy"),
        "{reasons}"
    );
    assert_eq!(answer["first_seen"]["source_url"], "https://news.example/1");

    // A generated picture says so.
    let generated = sign(
        &photo,
        "image/jpeg",
        &manifest("synthetic", "trainedAlgorithmicMedia"),
    );
    let reasons = ask(generated)["verdict"]["reasons"].to_string();
    assert!(
        reasons.contains("declares the picture made by a generative model"),
        "{reasons}"
    );
}

#[test]
fn wrong_keys_lock_an_address_out_and_a_key_is_held_to_its_rate() {
    let (hook, _received) = receiver(0);
    let cordon = start_with(
        &hook,
        "[limits]\nfailed_auth_per_minute = 3\nkey_requests_per_second = 2\nkey_burst = 4\n",
    );
    let status = |key: &str| {
        let response = cordon
            .client
            .get(format!("{}/v1/submissions/1", cordon.base))
            .bearer_auth(key)
            .send()
            .unwrap();
        let retry = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        (response.status().as_u16(), retry)
    };
    // A key at its rate: four at once (the burst), then 429 with Retry-After.
    let answers: Vec<u16> = (0..5).map(|_| status(&cordon.key).0).collect();
    assert_eq!(answers, [404, 404, 404, 404, 429]);
    assert_eq!(status(&cordon.key).1.as_deref(), Some("1"));
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        status(&cordon.key).0,
        404,
        "the allowance refills at 2 per second"
    );

    // Three wrong keys, then the address waits out the minute, whatever key it shows.
    for _ in 0..3 {
        assert_eq!(status("ck_0000000000000000_guess").0, 401);
    }
    let (code, retry) = status("ck_0000000000000000_guess");
    assert_eq!(code, 429);
    let seconds: u64 = retry.unwrap().parse().unwrap();
    assert!((50..=61).contains(&seconds), "{seconds}");
    assert_eq!(status(&cordon.key).0, 429, "a locked-out address gets nothing");
}

/// Sends `request` on a new raw connection, then reads until the server closes it or
/// `patience` passes; answers what was read and how long it took.
fn raw_exchange(base: &str, request: &[u8], trickle: &[u8], patience: Duration) -> (String, Duration) {
    use std::io::{Read, Write};
    let address = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let started = std::time::Instant::now();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    let mut sent = 0;
    while started.elapsed() < patience {
        // A slow client: one byte of `trickle` every 200 ms.
        if sent < trickle.len() && started.elapsed() > Duration::from_millis(200 * (sent as u64 + 1)) {
            if stream.write_all(&trickle[sent..=sent]).is_err() {
                break;
            }
            sent += 1;
        }
        let mut buffer = [0u8; 4096];
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    (String::from_utf8_lossy(&answer).to_string(), started.elapsed())
}

#[test]
fn slow_and_oversized_requests_are_cut_off_and_the_server_serves_on() {
    let (hook, _received) = receiver(0);
    let cordon = start_with(
        &hook,
        "[limits]\nheader_timeout_seconds = 1\nrequest_timeout_seconds = 2\nmax_header_bytes = 16384\n",
    );
    let patience = Duration::from_secs(8);

    // Headers that never finish: the connection is closed after the header deadline.
    let (answer, took) = raw_exchange(
        &cordon.base,
        b"GET /status HTTP/1.1\r\nHost: x\r\n",
        b"",
        patience,
    );
    assert!(took < Duration::from_secs(4), "held for {took:?}: {answer}");
    // ...even when they trickle in a byte at a time.
    let (_, took) = raw_exchange(
        &cordon.base,
        b"GET /status HTTP/1.1\r\n",
        b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        patience,
    );
    assert!(
        took < Duration::from_secs(4),
        "a trickling header held for {took:?}"
    );

    // A body that trickles: 408 with a JSON message once the request deadline passes.
    let head = format!(
        "POST /v1/submissions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\n",
        cordon.key
    );
    let (answer, took) = raw_exchange(&cordon.base, head.as_bytes(), &[b'x'; 40], patience);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive within 2 s"), "{answer}");
    assert!(took < Duration::from_secs(5), "{took:?}");

    // Headers over the size cap, or too many of them: 431.
    let big = format!(
        "GET /status HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(32 << 10)
    );
    let (answer, _) = raw_exchange(&cordon.base, big.as_bytes(), b"", patience);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    let many: String = (0..200).map(|i| format!("X-H{i}: 1\r\n")).collect();
    let many = format!("GET /status HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    let (answer, _) = raw_exchange(&cordon.base, many.as_bytes(), b"", patience);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    // And everyone else is served as before.
    let status = cordon
        .client
        .get(format!("{}/status", cordon.base))
        .send()
        .unwrap();
    assert_eq!(status.status().as_u16(), 200);
}

#[test]
fn limits_in_the_config_are_checked() {
    for bad in [
        "[limits]\nheader_timeout_seconds = 0\n",
        "[limits]\nrequest_timeout_seconds = 0\n",
        "[limits]\nmax_header_bytes = 100\n",
        "[limits]\nheader_timeout = 5\n",
    ] {
        assert!(Policy::parse(bad).is_err(), "{bad}");
    }
}

/// The store of a test's data folder: SQLite in it, or PostgreSQL (`CORDON_TEST_STORE`).
fn test_store(data: &std::path::Path) -> cordon_store::StoreLocation {
    cordon_store::StoreLocation::parse(&cordon_testkit::store_url_for(data)).unwrap()
}
