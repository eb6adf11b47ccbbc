//! `Authorization: Bearer KEY` on every route that needs it, and the role it must have.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use cordon_engine::access::{Role, check_key};

use crate::error::ApiError;
use crate::state::{AppState, Caller, blocking};

/// Lets a request through if it carries a valid key whose role allows `needed`:
/// 401 without a (valid) key, 403 with a key of the wrong role.
pub async fn require(
    needed: Role,
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|k| k.trim().to_string());
    let Some(presented) = presented else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "this route needs an API key: Authorization: Bearer KEY",
        ));
    };
    let checked = blocking(move || Ok(check_key(&state.store(), &presented)?)).await?;
    match checked {
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unknown or revoked API key",
        )),
        Some((key, role)) if !role.allows(needed) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("key {} has role {role}; this route needs {needed}", key.name),
        )),
        Some((key, _)) => {
            request.extensions_mut().insert(Caller(key.name));
            Ok(next.run(request).await)
        }
    }
}
