//! The review console at `/console`: server-rendered pages where moderators decide what
//! the policy sent to review. The people using it look at violent imagery all day, so it
//! protects them by default: media is blurred and greyscale until they reveal one item,
//! and each of them sees how much they revealed today.
//!
//! Sign-in is with an API key of role `reviewer` (or `admin`): there are no passwords to
//! manage, and revoking the key ends the access. A session is an HttpOnly, SameSite=Strict
//! cookie whose token is stored only as a hash; every form carries the session's CSRF
//! token. Pages work without JavaScript; a few lines of it add keyboard shortcuts.
//!
//! Decisions taken here go through the engine and the store exactly as automatic ones do
//! (webhooks, strikes, audit log); this module only renders and asks.

mod appeals;
mod banks;
mod item;
mod page;
mod queue;
mod session;
mod settings;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, map_response};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use cordon_store::StoreError;

use crate::error::ApiError;
use crate::state::AppState;

pub use session::Reviewer;

pub fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    let open = Router::new()
        .route("/console/signin", get(session::signin_page).post(session::signin))
        .route("/console/console.js", get(page::script))
        .route("/console/style.css", get(page::style));
    let signed_in = Router::new()
        .route("/console", get(|| async { Redirect::to("/console/queue") }))
        .route("/console/signout", post(session::signout))
        .route("/console/queue", get(queue::page))
        .route("/console/queue/next", post(queue::claim_next))
        .route("/console/item/{id}", get(item::page))
        .route("/console/item/{id}/claim", post(item::claim))
        .route("/console/item/{id}/reveal", post(item::reveal))
        .route("/console/item/{id}/decide", post(item::decide))
        .route("/console/item/{id}/bank", post(item::add_to_bank))
        .route("/console/media/submission/{id}", get(item::submission_media))
        .route("/console/media/content/{id}", get(item::content_media))
        .route("/console/banks", get(banks::list))
        .route("/console/banks/{name}", get(banks::contents))
        .route("/console/banks/{name}/content/{id}", post(banks::toggle))
        .route("/console/appeals", get(appeals::list))
        .route("/console/appeals/{id}", post(appeals::decide))
        .route("/console/settings", get(settings::page).post(settings::save))
        .route_layer(middleware::from_fn_with_state(state, session::require));
    open.merge(signed_in).layer(map_response(protective_headers))
}

/// Every console response: never cached, never framed, no referrer leaked, and only this
/// server's own scripts, styles and images.
async fn protective_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; img-src 'self'; style-src 'self'; script-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// An error shown as a page, with the way back.
#[derive(Debug)]
pub struct ConsoleError {
    status: StatusCode,
    message: String,
}

impl ConsoleError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ConsoleError {
        ConsoleError {
            status,
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> ConsoleError {
        ConsoleError::new(StatusCode::FORBIDDEN, message)
    }

    pub fn bad_request(message: impl Into<String>) -> ConsoleError {
        ConsoleError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl From<ApiError> for ConsoleError {
    fn from(error: ApiError) -> ConsoleError {
        ConsoleError::new(error.status, error.message)
    }
}

impl From<StoreError> for ConsoleError {
    fn from(error: StoreError) -> ConsoleError {
        ConsoleError::from(ApiError::from(error))
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        (self.status, page::error_page(self.status, &self.message)).into_response()
    }
}

type Shared = axum::extract::State<Arc<AppState>>;

/// Runs blocking work (SQLite, decoding) off the async workers, for a page.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ConsoleError> + Send + 'static,
) -> Result<T, ConsoleError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ConsoleError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("worker failed: {e}")))?
}

/// After a form: back to a page, as a GET.
fn see_other(location: &str) -> Response {
    Redirect::to(location).into_response()
}
