//! Accepting connections: HTTP/1 with a deadline for the headers, a cap on their size, and a
//! deadline for the whole request, so that slow or oversized clients cannot tie up the server.
//! `axum::serve` sets no header deadline, so this loop drives hyper itself.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cordon_engine::policy::RequestLimits;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::error::ApiError;
use crate::state::AppState;

/// How long requests in flight may take to finish once shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The smallest header buffer hyper accepts.
const MIN_HEADER_BUFFER: usize = 8 << 10;

/// The longest deadline given to hyper or tokio: a year, far beyond any wait meant.
const LONGEST_DEADLINE: Duration = Duration::from_secs(365 * 24 * 3600);

/// `seconds` as a deadline that can always be added to the current instant. hyper adds the
/// header timeout to `Instant::now()` with a plain `+`, which panics ("overflow when adding
/// duration to instant") on every connection when the timeout is huge (`u64::MAX` in the
/// config): whatever the config says, no deadline goes past [`LONGEST_DEADLINE`].
fn deadline(seconds: u64) -> Duration {
    Duration::from_secs(seconds).min(LONGEST_DEADLINE)
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets the requests in flight
/// finish (for at most [`DRAIN_TIMEOUT`]).
pub async fn accept_until(
    listener: TcpListener,
    router: Router,
    limits: &RequestLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(deadline(limits.header_timeout_seconds))
        // hyper asserts a buffer of at least 8 KiB; the policy's check refuses less, and
        // this keeps a policy built in code from panicking here too.
        .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BUFFER));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: pause rather than spin; the
                    // connections already open go on.
                    eprintln!("cordon: accepting a connection failed: {error}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(WithRemote {
            router: router.clone(),
            remote,
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // A client that hangs up or breaks the protocol ends its own connection only.
            let _ = connection.await;
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        eprintln!("cordon: requests still running after {DRAIN_TIMEOUT:?}; stopping anyway");
    }
    Ok(())
}

/// The router, told which address each request came from (for the failed-auth throttle).
#[derive(Clone)]
struct WithRemote {
    router: Router,
    remote: SocketAddr,
}

impl tower_service::Service<hyper::Request<Incoming>> for WithRemote {
    type Response = Response;
    type Error = Infallible;
    type Future = <Router as tower_service::Service<Request>>::Future;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // A router is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: hyper::Request<Incoming>) -> Self::Future {
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(self.remote));
        self.router.call(request)
    }
}

/// Middleware: a request not answered within `request_timeout_seconds` (a trickled upload,
/// most often) is answered 408. Work already handed to a blocking thread still finishes;
/// the client, not told, may retry.
pub async fn request_deadline(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let seconds = state.policy.limits.request_timeout_seconds;
    match tokio::time::timeout(deadline(seconds), next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!("the request took longer than {seconds} s"),
        )
        .into_response(),
    }
}
