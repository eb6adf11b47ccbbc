//! Errors as HTTP answers. The HMA-compatible routes answer `{"message": "..."}`, as HMA
//! does, so its clients read Cordon's errors unchanged.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cordon_signals::DecodeError;
use cordon_store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Seconds for a `Retry-After` header (429 answers).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response =
            (self.status, Json(serde_json::json!({ "message": self.message }))).into_response();
        if let Some(seconds) = self.retry_after
            && let Ok(value) = seconds.to_string().parse()
        {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, value);
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        let status = match &error {
            StoreError::NoSuchBank(_)
            | StoreError::NoSuchContent(_)
            | StoreError::NoSuchKey(_)
            | StoreError::NotQuarantined(_)
            | StoreError::NoSuchReview(_)
            | StoreError::NoSuchAppeal(_) => StatusCode::NOT_FOUND,
            StoreError::ReviewDecided(_)
            | StoreError::ReviewClaimed { .. }
            | StoreError::ReviewNotClaimed { .. }
            | StoreError::NotSuspended(_)
            | StoreError::AppealPending { .. }
            | StoreError::AppealDecided(_) => StatusCode::CONFLICT,
            // HMA answers 403 to a bank that already exists.
            StoreError::BankExists(_) | StoreError::KeyExists(_) => StatusCode::FORBIDDEN,
            StoreError::InvalidBankName { .. } => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, error.to_string())
    }
}

impl From<DecodeError> for ApiError {
    fn from(error: DecodeError) -> ApiError {
        let status = match &error {
            DecodeError::TooManyBytes { .. } | DecodeError::TooManyPixels { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            DecodeError::UnknownFormat | DecodeError::Unsupported { .. } => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            DecodeError::OutOfMemory { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, error.to_string())
    }
}

impl From<cordon_engine::matcher::MatcherError> for ApiError {
    fn from(error: cordon_engine::matcher::MatcherError) -> ApiError {
        ApiError::internal(error.to_string())
    }
}

/// Turns the plain-text errors axum's own extractors and router produce (a body that is
/// not JSON, a missing query parameter, an unknown route, a body over the limit) into the
/// same `{"message": ...}` every other error has, so clients parse one shape.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    // HTML errors are the console's own pages.
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let text = match axum::body::to_bytes(response.into_body(), 64 * 1024).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_string(),
        Err(_) => String::new(),
    };
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    ApiError::new(status, message).into_response()
}
