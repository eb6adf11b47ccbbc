//! `Authorization: Bearer KEY` on every route that needs it, and the role it must have.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use cordon_engine::access::Role;

use crate::error::ApiError;
use crate::request_log::LoggedKey;
use crate::state::{AppState, Caller, blocking};

/// Lets a request through if it carries a valid key whose role allows `needed`:
/// 401 without a (valid) key, 403 with a key of the wrong role.
pub async fn require(
    needed: Role,
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let address = client_address(&request);
    let now = std::time::Instant::now();
    if let Some(wait) = address.and_then(|a| state.throttle.locked_out(a, now)) {
        return Err(too_many(
            format!(
                "too many wrong keys from this address; try again in {} s",
                wait.as_secs() + 1
            ),
            wait,
        ));
    }
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .map(str::to_string);
    let Some(presented) = presented else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "this route needs an API key: Authorization: Bearer KEY",
        ));
    };
    // From memory when the key was checked lately; else from the store (blocking work).
    let checked = match state.keys.lookup(&presented) {
        Some(known) => known,
        None => {
            let store_state = state.clone();
            blocking(move || Ok(store_state.keys.fetch(&store_state.store(), &presented)?)).await?
        }
    };
    match checked {
        None => {
            if let Some(address) = address {
                state.throttle.failed(address, now);
            }
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unknown or revoked API key",
            ))
        }
        Some((key, role)) if !role.allows(needed) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("key {} has role {role}; this route needs {needed}", key.name),
        )),
        Some((key, _)) => {
            if let Err(wait) = state.throttle.allow(&key.name, now) {
                return Err(too_many(
                    format!("key {} is over its request rate", key.name),
                    wait,
                ));
            }
            if let Some(logged) = request.extensions().get::<LoggedKey>() {
                logged.set(&key.name);
            }
            request.extensions_mut().insert(Caller(key.name));
            Ok(next.run(request).await)
        }
    }
}

/// The key in an `Authorization` value: `Bearer KEY`, the scheme in any case (auth schemes
/// are case-insensitive, RFC 7235 section 2.1: `bearer KEY` is the same header).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, key) = value.trim_start().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
}

/// The client's address, when the server was started with it (`cordon serve` is).
pub fn client_address(request: &Request) -> Option<std::net::IpAddr> {
    request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip())
}

/// 429 with `Retry-After`, rounded up to whole seconds.
fn too_many(message: String, wait: std::time::Duration) -> ApiError {
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, message).retry_after(wait.as_secs() + 1)
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_is_read_in_any_case() {
        for value in ["Bearer ck_1", "bearer ck_1", "BEARER  ck_1 ", "bEaReR ck_1"] {
            assert_eq!(bearer_token(value), Some("ck_1"), "{value:?}");
        }
        for value in ["Basic ck_1", "Bearerck_1", "ck_1", ""] {
            assert_eq!(bearer_token(value), None, "{value:?}");
        }
    }
}
