//! `/metrics` in the Prometheus text format: requests and latencies by route, and the
//! size of the match index.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Default)]
struct Latency {
    /// Requests at or under each bucket's bound (not cumulative; summed when rendered).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// What the in-memory match index holds, for its gauges.
struct IndexSizes {
    pdq: usize,
    feature_sets: usize,
    feature_descriptors: usize,
}

/// Counters kept since the server started.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latencies: Mutex<BTreeMap<String, Latency>>,
    /// Submissions, matched submissions, and decisions by action.
    submissions: Mutex<(u64, u64, BTreeMap<String, u64>)>,
}

impl Metrics {
    fn record(&self, route: String, method: String, status: u16, seconds: f64) {
        let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        *requests.entry((route.clone(), method, status)).or_insert(0) += 1;
        drop(requests);
        let mut latencies = self.latencies.lock().unwrap_or_else(|p| p.into_inner());
        let latency = latencies.entry(route).or_default();
        if let Some(bucket) = BUCKETS.iter().position(|&bound| seconds <= bound) {
            latency.buckets[bucket] += 1;
        }
        latency.count += 1;
        latency.sum += seconds;
    }

    /// Counts a new submission, whether it matched, and the actions decided on it.
    pub fn record_submission<'a>(&self, matched: bool, actions: impl Iterator<Item = &'a str>) {
        let mut counts = self.submissions.lock().unwrap_or_else(|p| p.into_inner());
        counts.0 += 1;
        counts.1 += u64::from(matched);
        for action in actions {
            *counts.2.entry(action.to_string()).or_insert(0) += 1;
        }
    }

    fn render(&self, index: &IndexSizes, outbox_depth: u64, quarantined: &[(i64, &str)]) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP cordon_http_requests_total HTTP requests by route, method and status."
        );
        let _ = writeln!(out, "# TYPE cordon_http_requests_total counter");
        for ((route, method, status), count) in self.requests.lock().unwrap_or_else(|p| p.into_inner()).iter()
        {
            let _ = writeln!(
                out,
                "cordon_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP cordon_http_request_duration_seconds Time to answer, by route."
        );
        let _ = writeln!(out, "# TYPE cordon_http_request_duration_seconds histogram");
        for (route, latency) in self.latencies.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let mut cumulative = 0;
            for (bound, count) in BUCKETS.iter().zip(latency.buckets) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "cordon_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "cordon_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                latency.count
            );
            let _ = writeln!(
                out,
                "cordon_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                latency.sum
            );
            let _ = writeln!(
                out,
                "cordon_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                latency.count
            );
        }
        let (submissions, matched, actions) = &*self.submissions.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(
            out,
            "# HELP cordon_submissions_total Submissions received (retries not counted)."
        );
        let _ = writeln!(out, "# TYPE cordon_submissions_total counter");
        let _ = writeln!(out, "cordon_submissions_total {submissions}");
        let _ = writeln!(
            out,
            "# HELP cordon_matched_submissions_total Submissions that matched a bank."
        );
        let _ = writeln!(out, "# TYPE cordon_matched_submissions_total counter");
        let _ = writeln!(out, "cordon_matched_submissions_total {matched}");
        let _ = writeln!(out, "# HELP cordon_decisions_total Decisions taken, by action.");
        let _ = writeln!(out, "# TYPE cordon_decisions_total counter");
        for (action, count) in actions {
            let _ = writeln!(out, "cordon_decisions_total{{action=\"{action}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "# HELP cordon_outbox_pending Webhook deliveries not yet made."
        );
        let _ = writeln!(out, "# TYPE cordon_outbox_pending gauge");
        let _ = writeln!(out, "cordon_outbox_pending {outbox_depth}");
        let _ = writeln!(
            out,
            "# HELP cordon_index_hashes Entries in the in-memory match index: PDQ hashes, and \
             contents with local-feature sets."
        );
        let _ = writeln!(out, "# TYPE cordon_index_hashes gauge");
        let _ = writeln!(out, "cordon_index_hashes{{signal_type=\"pdq\"}} {}", index.pdq);
        let _ = writeln!(
            out,
            "cordon_index_hashes{{signal_type=\"features\"}} {}",
            index.feature_sets
        );
        let _ = writeln!(
            out,
            "# HELP cordon_index_feature_descriptors Local-feature descriptors held, over every \
             set: a features lookup's work and the index's memory grow with them."
        );
        let _ = writeln!(out, "# TYPE cordon_index_feature_descriptors gauge");
        let _ = writeln!(
            out,
            "cordon_index_feature_descriptors {}",
            index.feature_descriptors
        );
        render_quarantine(&mut out, quarantined);
        out
    }
}

/// Most quarantined entries listed one by one: beyond that, the count says enough and a
/// series per entry would swamp the metrics store.
const LISTED_QUARANTINES: usize = 100;

fn render_quarantine(out: &mut String, quarantined: &[(i64, &str)]) {
    let _ = writeln!(
        out,
        "# HELP cordon_flood_quarantined_entries Bank entries the flood guard holds for review."
    );
    let _ = writeln!(out, "# TYPE cordon_flood_quarantined_entries gauge");
    let _ = writeln!(out, "cordon_flood_quarantined_entries {}", quarantined.len());
    let _ = writeln!(
        out,
        "# HELP cordon_flood_quarantined One series per quarantined entry (the first {LISTED_QUARANTINES})."
    );
    let _ = writeln!(out, "# TYPE cordon_flood_quarantined gauge");
    for (content_id, bank) in quarantined.iter().take(LISTED_QUARANTINES) {
        let _ = writeln!(
            out,
            "cordon_flood_quarantined{{bank=\"{bank}\",content_id=\"{content_id}\"}} 1"
        );
    }
}

/// Times every request and counts it under its route template (never the raw path, whose
/// ids would make a series per request).
pub async fn track(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let route = route_template(&request);
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    state.metrics.record(
        route,
        method,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// A request's method as metrics count it: a client may send any token as a method, as
/// long as the header limit allows, and a series for each would grow without end.
fn method_label(method: &Method) -> String {
    let known = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    let label = if known.contains(method) {
        method.as_str()
    } else {
        "other"
    };
    label.to_string()
}

/// The route template a request matched (`/c/bank/{name}`), or `unmatched`: what metrics
/// and the request log group requests by.
pub fn route_template(request: &Request) -> String {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string())
}

pub async fn serve(State(state): State<Arc<AppState>>) -> Response {
    let reader = state.clone();
    let depth = crate::state::blocking(move || Ok(reader.store().pending_delivery_count()?))
        .await
        .unwrap_or(0);
    let index = {
        let matcher = state.matcher();
        IndexSizes {
            pdq: matcher.pdq_len(),
            feature_sets: matcher.features_len(),
            feature_descriptors: matcher.feature_descriptors(),
        }
    };
    let text = {
        let flood = state.flood();
        let mut text = state.metrics.render(&index, depth, &flood.quarantined());
        let leading = u8::from(state.leading.load(std::sync::atomic::Ordering::Acquire));
        let cursor = state.feed_cursor.load(std::sync::atomic::Ordering::Acquire);
        text.push_str(&format!(
            "# HELP cordon_leader 1 when this node runs the background duties (webhook deliveries).\n\
             # TYPE cordon_leader gauge\ncordon_leader {leading}\n\
             # HELP cordon_change_feed_seq The last change of the store's feed applied here.\n\
             # TYPE cordon_change_feed_seq gauge\ncordon_change_feed_seq {cursor}\n"
        ));
        text
    };
    ([("content-type", "text/plain; version=0.0.4")], text).into_response()
}
