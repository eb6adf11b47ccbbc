//! Upload streams: submissions consumed from a NATS JetStream work queue instead of
//! `POST /v1/submissions`, decided the same way (`native::decide`).
//!
//! A message on subject `<STREAM>.submissions` is one upload: the media as its payload, the
//! form fields as headers (`Content-Id`, `Account-Id`, and optionally `Source-Url`,
//! `Posted-At`, `Metadata`). A message is acknowledged only after its decisions are
//! committed, so a worker that dies mid-way leaves it to be redelivered; a redelivered
//! message whose `Content-Id` was already decided gets the first answer and decides nothing
//! again. An upload that can never be decided (not an image, a missing header, a header
//! `new_submission` refuses, such as a `Posted-At` outside 1970 to a day ahead) is
//! terminated, and why is published on `<STREAM>.errors`: redelivering it would fail the
//! same way forever. One that failed for a passing reason (the store unreachable) is
//! redelivered after `RETRY_AFTER`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer, stream};
use futures_util::StreamExt;

use crate::error::ApiError;
use crate::native::{decide, new_submission};
use crate::state::{AppState, Caller, blocking};

/// How long a message may be held unacknowledged before JetStream hands it to another
/// worker (deciding one takes milliseconds; a very large image, a second or two).
const ACK_WAIT: Duration = Duration::from_secs(10);
/// Messages a worker holds at once: what a dead worker delays by up to [`ACK_WAIT`].
const BATCH: usize = 16;
/// When an upload that failed for a passing reason is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// The durable consumer every worker shares: each message goes to one of them.
const CONSUMER: &str = "cordon-workers";
/// Headers, and the form fields they carry.
const FIELDS: &[(&str, &str)] = &[
    ("Content-Id", "content_id"),
    ("Account-Id", "account_id"),
    ("Source-Url", "source_url"),
    ("Posted-At", "posted_at"),
    ("Metadata", "metadata"),
];

/// Why consuming stopped.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("NATS: {0}")]
    Nats(String),
}

fn nats(error: impl std::fmt::Display) -> StreamError {
    StreamError::Nats(error.to_string())
}

/// The subject uploads are published on for stream `stream`.
pub fn submissions_subject(stream: &str) -> String {
    format!("{stream}.submissions")
}

/// Where the NATS server is and how to reach it.
#[derive(Clone, Debug, Default)]
pub struct NatsTarget {
    /// `nats://HOST:PORT`, or `tls://HOST:PORT` for TLS with the system's authorities.
    pub url: String,
    /// Authorities (PEM) to check the server's certificate against; TLS is then required.
    pub authorities: Option<PathBuf>,
    /// A client certificate and its key (PEM), for a server that asks for one.
    pub client_certificate: Option<(PathBuf, PathBuf)>,
}

impl NatsTarget {
    async fn connect(&self) -> Result<async_nats::Client, StreamError> {
        let mut options = async_nats::ConnectOptions::new();
        if let Some(authorities) = &self.authorities {
            options = options
                .add_root_certificates(authorities.clone())
                .require_tls(true);
        }
        if let Some((certificate, key)) = &self.client_certificate {
            options = options.add_client_certificate(certificate.clone(), key.clone());
        }
        options.connect(self.url.as_str()).await.map_err(nats)
    }
}

/// Consumes `stream` (made as a work queue when absent) on the NATS server at `target`,
/// deciding each upload, until the connection fails for good.
pub async fn consume(
    state: Arc<AppState>,
    target: &NatsTarget,
    stream_name: &str,
) -> Result<(), StreamError> {
    let client = target.connect().await?;
    let context = jetstream::new(client.clone());
    let stream = context
        .get_or_create_stream(stream::Config {
            name: stream_name.to_string(),
            subjects: vec![submissions_subject(stream_name)],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .map_err(nats)?;
    let consumer = stream
        .get_or_create_consumer(
            CONSUMER,
            consumer::pull::Config {
                durable_name: Some(CONSUMER.to_string()),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: ACK_WAIT,
                ..Default::default()
            },
        )
        .await
        .map_err(nats)?;
    eprintln!(
        "cordon: consuming {} from {}",
        submissions_subject(stream_name),
        target.url
    );
    let caller = Caller(format!("stream:{stream_name}"));
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(BATCH)
        .messages()
        .await
        .map_err(nats)?;
    while let Some(message) = messages.next().await {
        let message = message.map_err(nats)?;
        let outcome = decide_message(&state, &caller, &message).await;
        let ack = match &outcome {
            Ok(()) => message.double_ack().await,
            Err(error) if error.status.is_client_error() => {
                let content_id = header(&message, "Content-Id").unwrap_or_default();
                let report = serde_json::json!({ "content_id": content_id, "error": error.message });
                let _ = client
                    .publish(format!("{stream_name}.errors"), report.to_string().into())
                    .await;
                message.ack_with(AckKind::Term).await
            }
            Err(error) => {
                eprintln!("cordon: an upload will be tried again: {}", error.message);
                message.ack_with(AckKind::Nak(Some(RETRY_AFTER))).await
            }
        };
        // Not acknowledged: JetStream redelivers it after ACK_WAIT, and the repeat is
        // recognised by its content id.
        if let Err(error) = ack {
            eprintln!("cordon: acknowledging an upload: {error}");
        }
    }
    Err(StreamError::Nats("the message stream ended".to_string()))
}

fn header(message: &jetstream::Message, name: &str) -> Option<String> {
    let value = message.headers.as_ref()?.get(name)?;
    Some(value.as_str().to_string())
}

/// Decides one upload and commits it (the answer itself goes out as webhooks).
async fn decide_message(
    state: &Arc<AppState>,
    caller: &Caller,
    message: &jetstream::Message,
) -> Result<(), ApiError> {
    let bytes = message.payload.clone();
    if bytes.len() as u64 > state.limits.max_bytes {
        return Err(ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!("the upload is larger than {} bytes", state.limits.max_bytes),
        ));
    }
    let fields: BTreeMap<String, String> = FIELDS
        .iter()
        .filter_map(|(name, field)| header(message, name).map(|value| (field.to_string(), value)))
        .collect();
    let submission = new_submission(&fields, &bytes)?;
    let (state, caller) = (state.clone(), caller.clone());
    blocking(move || decide(&state, &caller, &bytes, submission).map(drop)).await
}
