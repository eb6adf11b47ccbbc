//! cordon-server's request bodies (JSON, multipart, urlencoded forms) and query strings,
//! through the real router: every route that reads one, with a valid admin key and a
//! console session, on a store that holds a bank, its content, a review item, a suspended
//! account and its appeal. The first byte picks the route, the second the content type
//! (its low three bits: the route's own, another or none) and whether the console's CSRF
//! token leads the body (bit 3); the rest is the body (or the query string).
//!
//! No answer may be a server error other than 503 and 504, and nothing may panic.
#![no_main]

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use cordon_engine::access::{Role, issue_key};
use cordon_engine::policy::Policy;
use cordon_fuzz::{MULTIPART_TYPE as MULTIPART, Part, blocks_jpeg, multipart, write_seeds};
use cordon_server::{AppState, router};
use cordon_signals::DecodeLimits;
use cordon_store::ConsoleSession;
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use tower::ServiceExt;

/// What a route's body is.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Json,
    Multipart,
    Form,
    /// The fuzz bytes are the query string of a GET.
    Query,
    /// A file as it is (a hash list).
    Raw,
}

const ROUTES: &[(Method, &str, Kind)] = &[
    (Method::POST, "/h/hash", Kind::Multipart),
    (Method::POST, "/m/lookup", Kind::Multipart),
    (Method::POST, "/m/compare", Kind::Json),
    (Method::POST, "/c/banks", Kind::Json),
    (Method::PUT, "/c/bank/RENAMED", Kind::Json),
    (Method::POST, "/c/bank/FUZZ/content", Kind::Multipart),
    (Method::POST, "/c/bank/FUZZ/signal", Kind::Json),
    (Method::PUT, "/c/bank/FUZZ/content/1", Kind::Json),
    (Method::POST, "/v1/submissions", Kind::Multipart),
    (Method::POST, "/v1/accounts/account-1/appeal", Kind::Json),
    (Method::POST, "/v1/provenance", Kind::Json),
    (Method::POST, "/v1/provenance", Kind::Multipart),
    (Method::POST, "/v1/banks/IMPORTS/import", Kind::Raw),
    (Method::POST, "/v1/banks/IMPORTS/import?format=csv", Kind::Raw),
    (Method::POST, "/v1/banks/IMPORTS/import?format=json", Kind::Raw),
    (Method::POST, "/console/signin", Kind::Form),
    (Method::POST, "/console/queue/next", Kind::Form),
    (Method::POST, "/console/item/1/claim", Kind::Form),
    (Method::POST, "/console/item/1/reveal", Kind::Form),
    (Method::POST, "/console/item/1/decide", Kind::Form),
    (Method::POST, "/console/item/1/bank", Kind::Form),
    (Method::POST, "/console/banks/FUZZ/content/1", Kind::Form),
    (Method::POST, "/console/appeals/1", Kind::Form),
    (Method::POST, "/console/settings", Kind::Form),
    (Method::GET, "/m/lookup", Kind::Query),
    (Method::GET, "/m/raw_lookup", Kind::Query),
    (Method::GET, "/c/bank/FUZZ/content/1", Kind::Query),
    (Method::GET, "/console/queue", Kind::Query),
    (Method::GET, "/console/banks/FUZZ", Kind::Query),
];

const CSRF: &str = "fuzzcsrf";
const SESSION: &str = "fuzzsession";

/// Every bound small, so that a request is cheap and a bomb shows up as an OOM.
const LIMITS: DecodeLimits = DecodeLimits {
    max_bytes: 1 << 20,
    max_pixels: 2_000_000,
};

/// Matches in the bank go to review and count a strike; two suspend the account.
const POLICY: &str = r#"
[[rules]]
name = "fuzz"
banks = ["FUZZ"]
actions = ["review", "strike"]

[strikes]
warn_at = 1
suspend_at = 2
window_days = 30
"#;

struct Server {
    runtime: tokio::runtime::Runtime,
    router: Router,
    key: String,
    _data: tempfile::TempDir,
}

/// Requests one server answers before a fresh one (a new data folder) takes over: every
/// upload adds to the bank, and a bank that only grows makes each lookup slower. The fuzz
/// images are alike, and so are their local features: with 1000 requests a server's feature
/// lookups compared every query descriptor with most of the bank's (seconds a request under
/// the sanitizer), and the run stalled on replaying its own corpus.
const REQUESTS_PER_SERVER: usize = 200;

/// The server, and how many requests it has answered.
static SERVER: Mutex<Option<(Server, usize)>> = Mutex::new(None);

fn with_server<T>(work: impl FnOnce(&Server) -> T) -> T {
    // A panic (a finding) aborts the process, so the lock is never poisoned in earnest.
    let mut slot = SERVER.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if slot
        .as_ref()
        .is_none_or(|(_, answered)| *answered >= REQUESTS_PER_SERVER)
    {
        // The old one's runtime and data folder go first.
        *slot = None;
        *slot = Some((start(), 0));
    }
    let (server, answered) = slot.as_mut().expect("just made");
    *answered += 1;
    work(server)
}

fn start() -> Server {
    // In memory when it can be: the store writes on most requests.
    let data = if std::path::Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm")
    } else {
        tempfile::tempdir()
    }
    .expect("a temporary data folder");
    let policy = Policy::parse(POLICY).expect("the fuzz policy parses");
    let state = AppState::open(data.path(), LIMITS, policy).expect("the server state opens");
    let key = issue_key(&mut state.store(), "fuzz", Role::Admin)
        .expect("an admin key")
        .key;
    let now = time::OffsetDateTime::now_utc();
    state
        .store()
        .create_console_session(
            &Sha256::digest(SESSION.as_bytes()),
            &ConsoleSession {
                reviewer: "fuzz".to_string(),
                role: Role::Admin.name().to_string(),
                csrf: CSRF.to_string(),
                expires_at: cordon_store::format_time(now + time::Duration::days(365)),
            },
            &cordon_store::format_time(now),
        )
        .expect("a console session");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let server = Server {
        runtime,
        router: router(Arc::new(state)),
        key,
        _data: data,
    };
    server.populate();
    server
}

impl Server {
    /// The state the routes act on: banks FUZZ (content 1), RENAMED (for the bank update)
    /// and IMPORTS (for hash lists), two submissions that match content 1 (review item 1,
    /// strikes that suspend account-1), and appeal 1.
    fn populate(&self) {
        let image = blocks_jpeg(64, 64);
        let steps: Vec<(Method, &str, &str, Vec<u8>)> = vec![
            (
                Method::POST,
                "/c/banks",
                "application/json",
                br#"{"name": "FUZZ"}"#.to_vec(),
            ),
            (
                Method::POST,
                "/c/banks",
                "application/json",
                br#"{"name": "RENAMED"}"#.to_vec(),
            ),
            (
                Method::POST,
                "/c/banks",
                "application/json",
                br#"{"name": "IMPORTS"}"#.to_vec(),
            ),
            (
                Method::POST,
                "/c/bank/FUZZ/content",
                MULTIPART,
                multipart(&[Part::file("photo", &image), Part::text("note", "fuzz")]),
            ),
            (
                Method::POST,
                "/v1/submissions",
                MULTIPART,
                submission(&image, "content-1"),
            ),
            (
                Method::POST,
                "/v1/submissions",
                MULTIPART,
                submission(&image, "content-2"),
            ),
            (
                Method::POST,
                "/v1/accounts/account-1/appeal",
                "application/json",
                br#"{"reason": "fuzz"}"#.to_vec(),
            ),
        ];
        for (method, path, content_type, body) in steps {
            let (status, answer) = self.send(method, path, Some(content_type), body);
            assert!(
                status.is_success(),
                "setting up: {path} answered {status}: {answer}"
            );
        }
    }

    fn send(
        &self,
        method: Method,
        uri: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, String) {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.key))
            .header(
                header::COOKIE,
                format!("cordon_session={SESSION}; cordon_signin={CSRF}"),
            );
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let request = request.body(Body::from(body)).expect("a request");
        self.runtime.block_on(async {
            let response = self
                .router
                .clone()
                .oneshot(request)
                .await
                .expect("the router answers");
            let status = response.status();
            let location = response
                .headers()
                .get(header::LOCATION)
                .and_then(|l| l.to_str().ok());
            let location = location.map(|l| format!("(to {l}) ")).unwrap_or_default();
            let body = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap_or_default();
            (status, format!("{location}{}", String::from_utf8_lossy(&body)))
        })
    }
}

const CONTENT_TYPES: [&str; 4] = [
    "application/json",
    MULTIPART,
    "application/x-www-form-urlencoded",
    "text/plain",
];

fn submission(image: &[u8], content_id: &str) -> Vec<u8> {
    multipart(&[
        Part::file("media", image),
        Part::text("content_id", content_id),
        Part::text("account_id", "account-1"),
        Part::text("posted_at", "2024-01-02T03:04:05Z"),
        Part::text("metadata", r#"{"k": 1}"#),
    ])
}

/// One seed per route: a body it accepts (the selector bytes in front).
fn seeds() -> Vec<(String, Vec<u8>)> {
    let image = blocks_jpeg(32, 32);
    let hash = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
    let photo = multipart(&[
        Part::file("photo", &image),
        Part::text("note", "n"),
        Part::text("metadata", "{}"),
    ]);
    let media = multipart(&[Part::file("media", &image)]);
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("/h/hash", photo.clone()),
        ("/m/lookup", photo.clone()),
        (
            "/m/compare",
            format!(r#"{{"pdq": ["{hash}", "{hash}"]}}"#).into_bytes(),
        ),
        (
            "/c/banks",
            br#"{"name": "NEW_BANK", "enabled": true, "enabled_ratio": 0.5, "is_negative": false}"#.to_vec(),
        ),
        (
            "/c/bank/RENAMED",
            br#"{"enabled_ratio": 1.0, "enabled": false}"#.to_vec(),
        ),
        ("/c/bank/FUZZ/content", photo),
        (
            "/c/bank/FUZZ/signal",
            format!(r#"{{"pdq": "{hash}", "note": "n"}}"#).into_bytes(),
        ),
        (
            "/c/bank/FUZZ/content/1",
            br#"{"disable_until_ts": 0, "note": "n"}"#.to_vec(),
        ),
        ("/v1/submissions", submission(&image, "content-3")),
        ("/v1/accounts/account-1/appeal", br#"{"reason": "r"}"#.to_vec()),
        ("/v1/provenance", format!(r#"{{"pdq": "{hash}"}}"#).into_bytes()),
        ("/v1/provenance", media),
        ("/v1/banks/IMPORTS/import", format!("pdq {hash}\n").into_bytes()),
        (
            "/v1/banks/IMPORTS/import?format=csv",
            format!("signal_type,signal,labels\npdq,{hash},a;b\n").into_bytes(),
        ),
        (
            "/v1/banks/IMPORTS/import?format=json",
            format!(r#"["{hash}", {{"signal_type": "pdq", "signal": "{hash}"}}]"#).into_bytes(),
        ),
        ("/console/signin", b"key=ck_0011223344556677_00".to_vec()),
        ("/console/queue/next", b"bank=FUZZ&label=".to_vec()),
        ("/console/item/1/claim", Vec::new()),
        ("/console/item/1/reveal", Vec::new()),
        (
            "/console/item/1/decide",
            b"verdict=confirm&remove=on&strike=on&note=n".to_vec(),
        ),
        ("/console/item/1/bank", b"bank=FUZZ".to_vec()),
        ("/console/banks/FUZZ/content/1", b"enable=false".to_vec()),
        ("/console/appeals/1", b"grant=true&note=n".to_vec()),
        ("/console/settings", b"blur=12&greyscale=on".to_vec()),
        (
            "/m/lookup",
            format!("signal_type=pdq&signal={hash}&bypass_coinflip=true").into_bytes(),
        ),
        (
            "/m/raw_lookup",
            format!("signal_type=pdq&signal={hash}&include_distance=true&banks=FUZZ").into_bytes(),
        ),
        (
            "/c/bank/FUZZ/content/1",
            b"include_signals=true&include_metadata=false".to_vec(),
        ),
        ("/console/queue", b"bank=FUZZ".to_vec()),
        ("/console/banks/FUZZ", b"page=1".to_vec()),
    ];
    bodies
        .into_iter()
        .enumerate()
        .map(|(index, (path, body))| {
            assert_eq!(ROUTES[index].1, path, "seeds follow the routes");
            // The route's own content type; the CSRF token in front for console forms.
            let flags = if ROUTES[index].2 == Kind::Form { 8 } else { 0 };
            let mut input = vec![index as u8, flags];
            input.extend(body);
            (format!("{index:02}"), input)
        })
        .collect()
}

fn init() {
    write_seeds(seeds);
    // Started before the first input, so that a setup failure is not taken for one.
    with_server(|_| ());
}

fuzz_target!(init: init(), |data: &[u8]| {
    let [route, flags, body @ ..] = data else {
        return;
    };
    let (method, path, kind) = &ROUTES[usize::from(*route) % ROUTES.len()];
    let mut body = body.to_vec();
    if flags & 8 != 0 {
        body.splice(0..0, format!("csrf={CSRF}&").into_bytes());
    }
    let (uri, content_type, body) = if *kind == Kind::Query {
        // Only what makes a valid URI reaches a handler: hyper refuses the rest.
        let Ok(query) = std::str::from_utf8(&body) else {
            return;
        };
        let uri = format!("{path}?{query}");
        if uri.parse::<axum::http::Uri>().is_err() {
            return;
        }
        (uri, None, Vec::new())
    } else {
        let own = match kind {
            Kind::Json => CONTENT_TYPES[0],
            Kind::Multipart => CONTENT_TYPES[1],
            Kind::Form => CONTENT_TYPES[2],
            Kind::Raw | Kind::Query => CONTENT_TYPES[3],
        };
        // 0 the route's own, then each of the others (and none at all).
        let content_type = match flags & 7 {
            0 => Some(own),
            n @ 1..=4 => Some(CONTENT_TYPES[usize::from(n) - 1]),
            _ => None,
        };
        (path.to_string(), content_type, body)
    };
    let (status, answer) = with_server(|server| server.send(method.clone(), &uri, content_type, body));
    if std::env::var_os("CORDON_FUZZ_VERBOSE").is_some() {
        eprintln!("{method} {uri} {content_type:?}: {status} {}", answer.chars().take(160).collect::<String>());
    }
    assert!(
        !status.is_server_error()
            || status == StatusCode::SERVICE_UNAVAILABLE
            || status == StatusCode::GATEWAY_TIMEOUT,
        "{method} {uri} answered {status}: {answer}"
    );
});
