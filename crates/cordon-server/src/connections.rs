//! Accepting connections: HTTP/1 with a deadline for the headers, a cap on their size, and a
//! deadline for the request to arrive, so that slow or oversized clients cannot tie up the
//! server. `axum::serve` sets no header deadline, so this loop drives hyper itself.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cordon_engine::policy::RequestLimits;
use hyper::body::{Body as _, Incoming};
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

/// Middleware: a request whose body has not arrived whole within `request_timeout_seconds`
/// (a trickled upload, most often) is answered 408 and its work dropped. Once the body is in,
/// the answer waits for the work, however long it takes: a 408 for an import or upload that
/// then commits anyway would tell the client to retry, and the retry would do it twice.
pub async fn request_deadline(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let seconds = state.policy.limits.request_timeout_seconds;
    let arrived = Arc::new(AtomicBool::new(false));
    let request = request.map(|body| {
        if body.is_end_stream() {
            arrived.store(true, Ordering::Release);
        }
        Body::new(ArrivalWatch {
            body,
            arrived: arrived.clone(),
        })
    });
    let mut work = std::pin::pin!(next.run(request));
    match tokio::time::timeout(deadline(seconds), &mut work).await {
        Ok(response) => response,
        Err(_) if arrived.load(Ordering::Acquire) => work.await,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!("the request did not arrive within {seconds} s"),
        )
        .into_response(),
    }
}

/// A request body that says when it has been read to its end.
struct ArrivalWatch {
    body: Body,
    arrived: Arc<AtomicBool>,
}

impl hyper::body::Body for ArrivalWatch {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) {
            self.arrived.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}
