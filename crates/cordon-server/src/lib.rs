//! Cordon over HTTP.
//!
//! This crate owns the HTTP surface: the routes HMA 2.0 clients call (`/h`, `/m`, `/c`,
//! same paths, parameters and response shapes, see `hma.rs`), API keys and roles on every
//! route but `/status`, `/status/live` and `/metrics`, Prometheus metrics, request limits,
//! and graceful shutdown. It holds no business rules: matching, keys and storage are the
//! engine's and the store's, called from here.

mod auth;
mod banking;
mod connections;
mod console;
mod delivery;
mod error;
mod fetch;
mod follow;
mod hma;
mod metrics;
mod native;
mod request_log;
mod state;
pub mod stream;
mod throttle;
mod upload;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::get;
use tokio::net::TcpListener;

pub use delivery::signature;
pub use state::AppState;

/// Multipart framing and form fields around the media itself.
const BODY_OVERHEAD: usize = 1 << 20;

/// Every route, with its role checks.
pub fn router(state: Arc<AppState>) -> Router {
    let body_limit = usize::try_from(state.limits.max_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(BODY_OVERHEAD);
    Router::new()
        .route("/status", get(|| async { "I-AM-ALIVE" }))
        // HMA 2.0's liveness probe (k8s): always 200, never checks the index, no key.
        .route("/status/live", get(|| async { "I-AM-ALIVE" }))
        .route("/metrics", get(metrics::serve))
        .merge(hma::routes(state.clone()))
        .merge(native::routes(state.clone()))
        .merge(console::routes(state.clone()))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            connections::request_deadline,
        ))
        .layer(middleware::map_response(error::json_errors))
        .layer(middleware::from_fn_with_state(state.clone(), metrics::track))
        // Outermost: the id and the log line see every answer as the client gets it.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_log::tag_and_log,
        ))
        .with_state(state)
}

/// The duties every node runs beside its requests: following the store's change feed,
/// leader election, and — on the leader — webhook delivery. They stop when this is dropped.
pub struct Background {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Background {
    /// Starts them on the current tokio runtime. Deliveries pending from before a restart go
    /// out as soon as this node leads.
    pub fn start(state: &Arc<AppState>) -> Background {
        follow::lead_forever(state.clone());
        Background {
            tasks: vec![
                tokio::spawn(delivery::deliver_forever(state.clone())),
                tokio::spawn(follow::follow_forever(state.clone())),
                tokio::spawn(follow::purge_old_rows_forever(state.clone())),
            ],
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Serves until `shutdown` resolves, then finishes the requests in flight.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let background = Background::start(&state);
    let limits = state.policy.limits.clone();
    let served = connections::accept_until(listener, router(state), &limits, shutdown).await;
    drop(background);
    served
}
