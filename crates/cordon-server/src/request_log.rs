//! Request ids and the request log: every answer carries an `X-Request-Id` (the caller's
//! own, when it sent a usable one, else a new one), and, unless the server is quiet
//! (`cordon serve --quiet`), every request is one JSON line on stderr, so that a
//! client's complaint quoting its id finds the request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Value, json};

use crate::metrics::route_template;
use crate::state::AppState;

pub const REQUEST_ID: &str = "x-request-id";

/// The longest request id taken from a caller; a longer one is replaced, so that a client
/// cannot make every log line (and answer header) as long as its own headers.
const MAX_ID_LEN: usize = 128;

/// Where the key check writes the name of the key a request came with, for its log line.
/// Put on the request by [`tag_and_log`]: the answer cannot carry the name back, since the
/// error rewriters answer anew.
#[derive(Clone, Default)]
pub struct LoggedKey(Arc<OnceLock<String>>);

impl LoggedKey {
    pub fn set(&self, name: &str) {
        // A request passes one key check; should it pass another, the first name stays.
        let _ = self.0.set(name.to_string());
    }
}

/// Middleware, outermost: tags the answer with the request id and logs the request.
pub async fn tag_and_log(State(state): State<Arc<AppState>>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| usable_id(v))
        .map_or_else(new_id, str::to_string);
    let method = request.method().to_string();
    // The path only: query strings may carry what does not belong in a log (media URLs,
    // hashes asked about).
    let path = request.uri().path().to_string();
    let route = route_template(&request);
    let key = LoggedKey::default();
    request.extensions_mut().insert(key.clone());
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    if state.log_requests {
        let line = log_line(&Logged {
            at: &cordon_store::now_rfc3339(),
            id: &id,
            method: &method,
            route: &route,
            path: &path,
            status: response.status().as_u16(),
            started,
            key: key.0.get().map(String::as_str),
        });
        eprintln!("{line}");
    }
    response
}

/// What one log line tells.
struct Logged<'a> {
    at: &'a str,
    id: &'a str,
    method: &'a str,
    /// The route template matched, or `unmatched`.
    route: &'a str,
    path: &'a str,
    status: u16,
    started: Instant,
    /// The API key's name, when the request passed the key check.
    key: Option<&'a str>,
}

fn log_line(logged: &Logged<'_>) -> Value {
    // Milliseconds to the microsecond.
    let ms = logged.started.elapsed().as_micros() as f64 / 1000.0;
    json!({
        "at": logged.at,
        "request_id": logged.id,
        "method": logged.method,
        "route": logged.route,
        "path": logged.path,
        "status": logged.status,
        "ms": ms,
        "key": logged.key,
    })
}

/// A caller's id is kept when it is short, printable ASCII without spaces: what proxies
/// and tracing systems send, and safe to echo in a header.
fn usable_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

/// A new request id: 16 random hex digits, or, should the system have no randomness to
/// give, a process-wide count (unique in this process, which is what a log needs).
fn new_id() -> String {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    cordon_engine::access::random_hex(8)
        .unwrap_or_else(|_| format!("n{}", COUNT.fetch_add(1, Ordering::Relaxed)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_line_names_the_request_and_its_outcome() {
        let line = log_line(&Logged {
            at: "2026-12-06T10:00:00.000Z",
            id: "abc",
            method: "POST",
            route: "/v1/submissions/{id}",
            path: "/v1/submissions/7",
            status: 201,
            started: Instant::now(),
            key: Some("platform"),
        });
        assert_eq!(line["at"], "2026-12-06T10:00:00.000Z");
        assert_eq!(line["request_id"], "abc");
        assert_eq!(line["method"], "POST");
        assert_eq!(line["route"], "/v1/submissions/{id}");
        assert_eq!(line["path"], "/v1/submissions/7");
        assert_eq!(line["status"], 201);
        assert!(line["ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{line}");
        assert_eq!(line["key"], "platform");
        // One line, whatever the values hold.
        assert!(!line.to_string().contains('\n'));
    }

    #[test]
    fn only_short_printable_ids_are_taken_from_callers() {
        assert!(usable_id("0f3c-req_42"));
        for bad in ["", "a b", "a\tb", &"x".repeat(MAX_ID_LEN + 1), "é"] {
            assert!(!usable_id(bad), "{bad:?}");
        }
        assert_ne!(new_id(), new_id());
    }
}
