//! The review console end to end: a real Cordon server, a real webhook receiver, real
//! photos, and real headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`, which `scripts/deps test` installs). Screenshots of every page, at
//! 1280x800 and 400 px wide, are saved under `target/console-screenshots/` for a person
//! to look at.

use crate::common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cordon_engine::access::{Role, issue_key};
use cordon_engine::policy::Policy;
use cordon_server::AppState;
use cordon_signals::DecodeLimits;
use cordon_store::{BankName, NewBank, Store};
use cordon_testkit::{BRIDGE, Received, reference_image as image, wait_for_deliveries, webhook_receiver};
use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::blocking::multipart;
use serde_json::{Value, json};

struct Keys {
    submitter: String,
    reviewer: String,
    second_reviewer: String,
    curator: String,
    admin: String,
}

struct Cordon {
    base: String,
    keys: Keys,
    http: reqwest::blocking::Client,
    data: tempfile::TempDir,
    received: Received,
}

/// A server whose policy sends TVEC matches to review (strikes suspend at 1), with the
/// bridge photo banked from its file in TVEC and an empty negative bank.
fn start() -> Cordon {
    let (hook, received) = webhook_receiver(0);
    let data = tempfile::tempdir().unwrap();
    let keys = {
        let mut store = Store::open_at(&test_store(data.path())).unwrap();
        let tvec = NewBank {
            labels: vec!["tvec".to_string()],
            ..NewBank::default()
        };
        store.create_bank(&BankName::new("TVEC").unwrap(), tvec).unwrap();
        let negative = NewBank {
            negative: true,
            ..NewBank::default()
        };
        store
            .create_bank(&BankName::new("HARMLESS").unwrap(), negative)
            .unwrap();
        Keys {
            submitter: issue_key(&mut store, "platform", Role::Submitter).unwrap().key,
            reviewer: issue_key(&mut store, "ana", Role::Reviewer).unwrap().key,
            second_reviewer: issue_key(&mut store, "ben", Role::Reviewer).unwrap().key,
            curator: issue_key(&mut store, "curator", Role::Curator).unwrap().key,
            admin: issue_key(&mut store, "senior", Role::Admin).unwrap().key,
        }
    };
    let policy = Policy::parse(&format!(
        r#"
        [[webhooks]]
        name = "platform"
        url = "{hook}/hook"
        secret = "change-me-please"

        [[rules]]
        name = "tvec-to-review"
        banks = ["TVEC"]
        actions = ["review"]

        [strikes]
        suspend_at = 1
        window_days = 30

        [review]
        severity = {{ tvec = 3 }}
        "#
    ))
    .unwrap();
    let base =
        common::serve(AppState::open_at(&test_store(data.path()), DecodeLimits::default(), policy).unwrap());
    let cordon = Cordon {
        base,
        keys,
        http: reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        data,
        received,
    };
    let banked = cordon.upload(
        &cordon.keys.curator,
        "/c/bank/TVEC/content",
        "photo",
        "misc-images/b.jpg",
        &[],
    );
    assert_eq!(banked.0, 200, "{}", banked.1);
    cordon
}

impl Cordon {
    fn upload(
        &self,
        key: &str,
        path: &str,
        field: &str,
        file: &str,
        fields: &[(&str, &str)],
    ) -> (u16, Value) {
        let bytes = std::fs::read(image(file)).unwrap();
        let mut form = multipart::Form::new().part(
            field.to_string(),
            multipart::Part::bytes(bytes).file_name("x.jpg"),
        );
        for (name, value) in fields {
            form = form.text(name.to_string(), value.to_string());
        }
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(key)
            .multipart(form)
            .send()
            .unwrap();
        (response.status().as_u16(), response.json().unwrap_or(Value::Null))
    }

    /// Submits the banked photo from `account`: the policy sends it to review.
    fn submit_for_review(&self, content_id: &str, account: &str) -> i64 {
        let (code, answer) = self.upload(
            &self.keys.submitter,
            "/v1/submissions",
            "media",
            "misc-images/b.jpg",
            &[("content_id", content_id), ("account_id", account)],
        );
        assert_eq!(code, 201, "{answer}");
        assert_eq!(answer["decisions"][0]["action"], "review", "{answer}");
        answer["id"].as_i64().unwrap()
    }

    /// Signs in over plain HTTP; returns the session cookie and the CSRF token of a page.
    fn sign_in(&self, key: &str) -> (String, String) {
        let page = self
            .http
            .get(format!("{}/console/signin", self.base))
            .send()
            .unwrap();
        let signin_cookie = set_cookie(&page, "cordon_signin").unwrap();
        let html = page.text().unwrap();
        let csrf = hidden_csrf(&html);
        let signed = self
            .http
            .post(format!("{}/console/signin", self.base))
            .header("cookie", format!("cordon_signin={signin_cookie}"))
            .form(&[("key", key), ("csrf", csrf.as_str())])
            .send()
            .unwrap();
        assert_eq!(signed.status().as_u16(), 303);
        let raw = signed
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|c| c.starts_with("cordon_session="))
            .unwrap();
        assert!(
            raw.contains("HttpOnly") && raw.contains("SameSite=Strict"),
            "{raw}"
        );
        let session = set_cookie(&signed, "cordon_session").unwrap();
        let queue = self
            .http
            .get(format!("{}/console/queue", self.base))
            .header("cookie", format!("cordon_session={session}"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        (session, hidden_csrf(&queue))
    }
}

fn set_cookie(response: &reqwest::blocking::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            c.strip_prefix(&format!("{name}="))?
                .split(';')
                .next()
                .map(str::to_string)
        })
}

fn hidden_csrf(html: &str) -> String {
    let at = html
        .find(r#"name="csrf" value=""#)
        .unwrap_or_else(|| panic!("a form with a CSRF token in {html}"));
    let rest = &html[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

#[test]
fn console_pages_need_a_session_and_forms_need_its_csrf_token() {
    let cordon = start();
    let id = cordon.submit_for_review("post-1", "acct-1");
    let get = |path: &str, cookie: Option<&str>| {
        let mut request = cordon.http.get(format!("{}{path}", cordon.base));
        if let Some(cookie) = cookie {
            request = request.header("cookie", format!("cordon_session={cookie}"));
        }
        request.send().unwrap()
    };
    for path in [
        "/console/queue",
        &format!("/console/item/{id}"),
        "/console/banks",
        "/console/settings",
        &format!("/console/media/submission/{id}"),
    ] {
        let response = get(path, None);
        assert_eq!(response.status().as_u16(), 303, "{path}");
        assert_eq!(response.headers()["location"], "/console/signin");
        assert_eq!(get(path, Some("forged")).status().as_u16(), 303, "{path}");
    }
    // A key of another role cannot sign in.
    let page = cordon
        .http
        .get(format!("{}/console/signin", cordon.base))
        .send()
        .unwrap();
    let token = set_cookie(&page, "cordon_signin").unwrap();
    let csrf = hidden_csrf(&page.text().unwrap());
    let refused = cordon
        .http
        .post(format!("{}/console/signin", cordon.base))
        .header("cookie", format!("cordon_signin={token}"))
        .form(&[("key", cordon.keys.submitter.as_str()), ("csrf", csrf.as_str())])
        .send()
        .unwrap();
    assert_eq!(refused.status().as_u16(), 403);
    assert!(refused.text().unwrap().contains("needs a reviewer key"));

    let (session, csrf) = cordon.sign_in(&cordon.keys.reviewer);
    let post = |path: &str, form: &[(&str, &str)]| {
        cordon
            .http
            .post(format!("{}{path}", cordon.base))
            .header("cookie", format!("cordon_session={session}"))
            .form(form)
            .send()
            .unwrap()
    };
    let claim = format!("/console/item/{id}/claim");
    assert_eq!(post(&claim, &[("csrf", "not-the-token")]).status().as_u16(), 403);
    assert_eq!(post(&claim, &[("csrf", &csrf)]).status().as_u16(), 303);
    let media = get(&format!("/console/media/submission/{id}"), Some(&session));
    assert_eq!(media.status().as_u16(), 200);
    assert_eq!(media.headers()["content-type"], "image/jpeg");
    assert_eq!(media.headers()["cache-control"], "no-store");
    // A decision without the token changes nothing.
    let decide = format!("/console/item/{id}/decide");
    let forged = post(
        &decide,
        &[("csrf", "x"), ("verdict", "confirm"), ("remove", "on")],
    );
    assert_eq!(forged.status().as_u16(), 403);
    let store = Store::open_at(&test_store(cordon.data.path())).unwrap();
    assert_eq!(store.review_item(id).unwrap().unwrap().state, "pending");

    // One reviewer at a time: ana holds the item, so ben cannot take or decide it.
    let (ben, ben_csrf) = cordon.sign_in(&cordon.keys.second_reviewer);
    let as_ben = |path: &str, form: &[(&str, &str)]| {
        cordon
            .http
            .post(format!("{}{path}", cordon.base))
            .header("cookie", format!("cordon_session={ben}"))
            .form(form)
            .send()
            .unwrap()
    };
    let taken = as_ben(&claim, &[("csrf", &ben_csrf)]);
    assert_eq!(taken.status().as_u16(), 409);
    assert!(taken.text().unwrap().contains("claimed by ana until"));
    let decided = as_ben(&decide, &[("csrf", &ben_csrf), ("verdict", "overturn")]);
    assert_eq!(decided.status().as_u16(), 409);

    // Settings change how media is shown to that reviewer only.
    let saved = as_ben("/console/settings", &[("csrf", &ben_csrf), ("blur", "8")]);
    assert_eq!(saved.status().as_u16(), 303);
    let style = |session: &str| get("/console/style.css", Some(session)).text().unwrap();
    assert!(style(&ben).contains("filter: blur(8px); }"), "{}", style(&ben));
    assert!(style(&session).contains("filter: blur(24px) grayscale(1);"));
    assert_eq!(
        as_ben("/console/settings", &[("csrf", &ben_csrf), ("blur", "900")])
            .status()
            .as_u16(),
        400
    );

    // Disabling bank content from the console stops it matching at once.
    let lookup = || -> Value {
        cordon
            .http
            .get(format!(
                "{}/m/lookup?signal_type=pdq&signal={BRIDGE}",
                cordon.base
            ))
            .bearer_auth(&cordon.keys.submitter)
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    assert!(
        lookup()["TVEC"].as_array().is_some_and(|m| !m.is_empty()),
        "{}",
        lookup()
    );
    let disabled = post(
        "/console/banks/TVEC/content/1",
        &[("csrf", &csrf), ("enable", "false")],
    );
    assert_eq!(disabled.status().as_u16(), 303);
    assert!(
        lookup()
            .get("TVEC")
            .is_none_or(|m| m.as_array().is_some_and(Vec::is_empty)),
        "{}",
        lookup()
    );
}

/// Chromium under its WebDriver, on a free loopback port, stopped when dropped.
struct ChromeDriver {
    process: Child,
    port: u16,
}

impl ChromeDriver {
    fn start() -> ChromeDriver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let process = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian's chromium-driver) is installed by `scripts/deps test`");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        ChromeDriver { process, port }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

async fn browser(driver: &ChromeDriver) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_string(),
        json!({ "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,800"] }),
    );
    ClientBuilder::native()
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a Chromium session")
}

fn screenshot_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    std::fs::write(screenshot_dir().join(format!("{name}.png")), png).unwrap();
}

async fn script(client: &Client, code: &str) -> Value {
    client.execute(code, vec![]).await.unwrap()
}

async fn main_text(client: &Client) -> String {
    client
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Presses a key on the page, as a reviewer would for a shortcut.
async fn press(client: &Client, key: &str) {
    client
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys(key)
        .await
        .unwrap();
}

async fn wait_for_path(client: &Client, path: &str) {
    let started = Instant::now();
    loop {
        let url = client.current_url().await.unwrap();
        if url.path() == path {
            return;
        }
        if started.elapsed() > Duration::from_secs(10) {
            let text = client.source().await.unwrap_or_default();
            panic!("still at {url}, wanted {path}; the page says: {text}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for an element to be on the page (after a form posts back to the same path).
async fn wait_for_element(client: &Client, css: &str) {
    let started = Instant::now();
    while client.find_all(Locator::Css(css)).await.unwrap().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no {css} on the page"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The page fits its window (nothing wider than the screen, a 400 px phone included),
/// every control has a label, and text and buttons are readable: a contrast of at least
/// 4.5:1 (WCAG AA) for every element with text of its own.
async fn check_page(client: &Client, page: &str) {
    let overflow = script(
        client,
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
    )
    .await;
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "{page} is wider than the window by {overflow} px"
    );
    let unlabelled = script(
        client,
        "return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
             .filter(e => e.labels.length === 0 && !e.getAttribute('aria-label')).map(e => e.name);",
    )
    .await;
    assert_eq!(unlabelled, json!([]), "{page}: controls without a label");
    let worst = script(client, CONTRAST).await;
    assert!(
        worst["ratio"].as_f64().unwrap() >= 4.5,
        "{page}: text with too little contrast: {worst}"
    );
}

/// The lowest contrast between an element's text colour and the background behind it,
/// over every element with text of its own (WCAG relative luminance).
const CONTRAST: &str = r#"
function rgb(text) { const m = text.match(/[\d.]+/g); return m ? m.map(Number) : [0, 0, 0, 0]; }
function luminance([r, g, b]) {
  const f = c => { c /= 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
}
function background(el) {
  for (; el; el = el.parentElement) {
    const c = rgb(getComputedStyle(el).backgroundColor);
    if (c.length < 4 || c[3] > 0) return c;
  }
  return [255, 255, 255];
}
let worst = { ratio: 99, text: '' };
for (const el of document.body.querySelectorAll('*')) {
  const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
  if (!own || el.closest('.media')) continue;
  const a = luminance(rgb(getComputedStyle(el).color)), b = luminance(background(el));
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  if (ratio < worst.ratio) worst = { ratio, text: el.textContent.trim().slice(0, 40), tag: el.tagName };
}
return worst;
"#;

#[test]
fn a_reviewer_signs_in_reveals_and_decides_in_chromium() {
    let cordon = start();
    let first = cordon.submit_for_review("post-1", "acct-1");
    let second = cordon.submit_for_review("post-2", "acct-2");
    let driver = ChromeDriver::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = browser(&driver).await;
        let base = &cordon.base;

        // Without a session every page leads to sign-in.
        client.goto(&format!("{base}/console/queue")).await.unwrap();
        wait_for_path(&client, "/console/signin").await;
        check_page(&client, "signin").await;
        screenshot(&client, "signin-1280").await;
        let key = client.find(Locator::Css("input#key")).await.unwrap();
        assert_eq!(
            script(
                &client,
                "return document.querySelector('label[for=key]').textContent;"
            )
            .await,
            "Reviewer key"
        );
        key.send_keys(&cordon.keys.reviewer).await.unwrap();
        click(&client, "form button[type=submit]").await;
        wait_for_path(&client, "/console/queue").await;
        let rows = client.find_all(Locator::Css("tbody tr")).await.unwrap();
        assert_eq!(rows.len(), 2);
        let text = main_text(&client).await;
        assert!(text.contains("2 waiting"), "{text}");
        screenshot(&client, "queue-1280").await;
        check_page(&client, "queue").await;

        // "Review next" (N) claims the oldest of two equal items and opens it, blurred.
        press(&client, "n").await;
        wait_for_path(&client, &format!("/console/item/{first}")).await;
        let filter = script(
            &client,
            "return getComputedStyle(document.querySelector('.media img')).filter;",
        )
        .await;
        assert!(
            filter.as_str().unwrap().contains("blur(24px)")
                && filter.as_str().unwrap().contains("grayscale(1)"),
            "media is blurred and greyscale by default: {filter}"
        );
        let images = script(&client, "return document.querySelectorAll('.media img').length;").await;
        assert_eq!(images, 2, "the upload beside the bank content it matched");
        let text = main_text(&client).await;
        assert!(text.contains("You hold this item"), "{text}");
        assert!(text.contains("tvec-to-review"), "the rule that sent it: {text}");
        assert!(text.contains("Matched TVEC"), "{text}");
        check_page(&client, "item").await;
        screenshot(&client, "item-blurred-1280").await;

        // R reveals this one item and counts it.
        press(&client, "r").await;
        wait_for_element(&client, ".media.revealed").await;
        let filter = script(
            &client,
            "return getComputedStyle(document.querySelector('.media img')).filter;",
        )
        .await;
        assert_eq!(filter, "none");
        let revealed = client
            .find(Locator::Css("#reveals-today"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(revealed, "1");
        screenshot(&client, "item-revealed-1280").await;

        // Confirm (C) with a strike: the account is suspended at one strike.
        click(&client, "input[name=strike]").await;
        client
            .find(Locator::Css("textarea#note"))
            .await
            .unwrap()
            .send_keys("execution video still")
            .await
            .unwrap();
        press(&client, "c").await;
        wait_for_path(&client, "/console/queue").await;
        assert_eq!(client.find_all(Locator::Css("tbody tr")).await.unwrap().len(), 1);

        // The second item, overturned as a false positive into the negative bank.
        client
            .goto(&format!("{base}/console/item/{second}"))
            .await
            .unwrap();
        press(&client, "k").await;
        wait_for_element(&client, "select#negative-bank").await;
        click(&client, "select#negative-bank option[value=HARMLESS]").await;
        screenshot(&client, "item-decision-1280").await;
        press(&client, "o").await;
        wait_for_path(&client, "/console/queue").await;
        let text = main_text(&client).await;
        assert!(text.contains("Nothing waits for review"), "{text}");

        // Banks, appeals and settings pages, and everything at 400 px wide.
        client
            .goto(&format!("{base}/console/banks/HARMLESS"))
            .await
            .unwrap();
        let rows = client.find_all(Locator::Css("tbody tr")).await.unwrap();
        assert_eq!(rows.len(), 1, "the overturned upload is in the negative bank");
        screenshot(&client, "bank-1280").await;
        client.goto(&format!("{base}/console/settings")).await.unwrap();
        screenshot(&client, "settings-1280").await;
        client.set_window_size(400, 800).await.unwrap();
        for (path, name) in [
            ("/console/queue".to_string(), "queue-400"),
            (format!("/console/item/{first}"), "item-400"),
            ("/console/banks".to_string(), "banks-400"),
            ("/console/banks/TVEC".to_string(), "bank-400"),
            ("/console/settings".to_string(), "settings-400"),
            ("/console/appeals".to_string(), "appeals-400"),
        ] {
            client.goto(&format!("{base}{path}")).await.unwrap();
            check_page(&client, name).await;
            screenshot(&client, name).await;
        }
        client.set_window_size(1280, 800).await.unwrap();

        // The suspended account appeals through the API; a reviewer grants it.
        let appeal = reqwest::Client::new()
            .post(format!("{base}/v1/accounts/acct-1/appeal"))
            .bearer_auth(&cordon.keys.submitter)
            .json(&json!({ "reason": "that was a news report" }))
            .send()
            .await
            .unwrap();
        assert_eq!(appeal.status().as_u16(), 201);
        client.goto(&format!("{base}/console/appeals")).await.unwrap();
        let text = main_text(&client).await;
        assert!(text.contains("that was a news report"), "{text}");
        check_page(&client, "appeals").await;
        screenshot(&client, "appeals-1280").await;
        click(&client, "button[name=grant][value=true]").await;
        let started = Instant::now();
        while !client.source().await.unwrap().contains("No appeal waits") {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the appeal was not decided"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        client.close().await.unwrap();
    });

    // What the platform heard, signed and in order: the review requests, the reviewer's
    // decisions, and the reinstatement.
    let delivered = wait_for_deliveries(&cordon.received, 7, Duration::from_secs(15));
    let actions: Vec<String> = delivered
        .iter()
        .map(|(_, body)| {
            serde_json::from_str::<Value>(body).unwrap()["decision"]["action"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for wanted in [
        "review",
        "remove",
        "strike",
        "suspend_account",
        "dismiss",
        "reinstate_account",
    ] {
        assert!(
            actions.iter().any(|a| a == wanted),
            "{wanted} not delivered: {actions:?}"
        );
    }
    let confirmed = delivered
        .iter()
        .find(|(_, body)| body.contains(r#""action":"remove""#))
        .unwrap();
    assert!(
        confirmed
            .1
            .contains("confirmed by reviewer ana: execution video still")
    );
    assert!(confirmed.0.contains_key("x-cordon-signature"));

    let store = Store::open_at(&test_store(cordon.data.path())).unwrap();
    let account = store.account("acct-1").unwrap().unwrap();
    assert_eq!(account.state, "active", "reinstated after the appeal");
    assert_eq!(
        account.strike_weight, 0,
        "its strikes lapsed with the reinstatement"
    );
    assert_eq!(
        store.review_item(first).unwrap().unwrap().outcome.as_deref(),
        Some("confirmed")
    );
    assert_eq!(
        store.review_item(second).unwrap().unwrap().outcome.as_deref(),
        Some("overturned")
    );
    let audit = store.audit_entries(0).unwrap();
    let reviewed: Vec<&Value> = audit
        .iter()
        .filter(|e| e.event == "review.decided")
        .map(|e| &e.data)
        .collect();
    assert_eq!(reviewed.len(), 2);
    assert!(
        audit
            .iter()
            .any(|e| e.event == "appeal.decided" && e.actor == "key:ana")
    );
    assert_eq!(store.verify_audit().unwrap().broken_at, None);
    assert_eq!(
        store.reveals("ana", &today()).unwrap(),
        1,
        "the reveal count is kept"
    );
}

fn today() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!("{:04}-{:02}-{:02}", now.year(), u8::from(now.month()), now.day())
}

#[test]
fn an_escalated_item_goes_to_senior_reviewers_only() {
    let cordon = start();
    let id = cordon.submit_for_review("post-1", "acct-1");
    let (ana, ana_csrf) = cordon.sign_in(&cordon.keys.reviewer);
    let (senior, senior_csrf) = cordon.sign_in(&cordon.keys.admin);
    let post = |session: &str, path: &str, form: &[(&str, &str)]| {
        cordon
            .http
            .post(format!("{}{path}", cordon.base))
            .header("cookie", format!("cordon_session={session}"))
            .form(form)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    let claim = format!("/console/item/{id}/claim");
    let decide = format!("/console/item/{id}/decide");
    assert_eq!(post(&ana, &claim, &[("csrf", &ana_csrf)]), 303);
    assert_eq!(
        post(
            &ana,
            &decide,
            &[("csrf", &ana_csrf), ("verdict", "escalate"), ("note", "unsure")]
        ),
        303
    );
    let store = Store::open_at(&test_store(cordon.data.path())).unwrap();
    let item = store.review_item(id).unwrap().unwrap();
    assert_eq!(
        (item.state.as_str(), item.claimed_by.as_deref()),
        ("escalated", None)
    );

    // Out of ana's hands; a senior (admin key) takes it from the top of the queue.
    assert_eq!(post(&ana, &claim, &[("csrf", &ana_csrf)]), 403);
    assert_eq!(post(&ana, "/console/queue/next", &[("csrf", &ana_csrf)]), 303);
    assert_eq!(
        store.review_item(id).unwrap().unwrap().claimed_by,
        None,
        "review next skips it for ana"
    );
    assert_eq!(
        post(&senior, "/console/queue/next", &[("csrf", &senior_csrf)]),
        303
    );
    assert_eq!(
        store.review_item(id).unwrap().unwrap().claimed_by.as_deref(),
        Some("senior")
    );
    let confirm = [
        ("csrf", senior_csrf.as_str()),
        ("verdict", "confirm"),
        ("remove", "on"),
    ];
    assert_eq!(post(&senior, &decide, &confirm), 303);
    let item = store.review_item(id).unwrap().unwrap();
    assert_eq!(
        (item.state.as_str(), item.outcome.as_deref()),
        ("decided", Some("confirmed"))
    );
    assert_eq!(item.decided_by.as_deref(), Some("senior"));
    assert_eq!(
        post(&senior, &decide, &confirm),
        409,
        "a decided item takes no more decisions"
    );

    let delivered = wait_for_deliveries(&cordon.received, 3, Duration::from_secs(10));
    // Deliveries due together go out at once, so they may arrive in any order: the
    // decisions' ids give the order they were made in.
    let mut decisions: Vec<Value> = delivered
        .iter()
        .map(|(_, body)| serde_json::from_str::<Value>(body).unwrap()["decision"].clone())
        .collect();
    decisions.sort_by_key(|decision| decision["id"].as_i64());
    let actions: Vec<String> = decisions.iter().map(|d| d["action"].to_string()).collect();
    assert_eq!(actions, [r#""review""#, r#""escalate""#, r#""remove""#]);
}

/// The store of a test's data folder: SQLite in it, or PostgreSQL (`CORDON_TEST_STORE`).
fn test_store(data: &std::path::Path) -> cordon_store::StoreLocation {
    cordon_store::StoreLocation::parse(&cordon_testkit::store_url_for(data)).unwrap()
}
