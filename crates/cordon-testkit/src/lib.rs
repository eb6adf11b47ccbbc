//! What Cordon's test suites share, and nothing else: where the reference data lives, hash
//! fixtures, a way to run an HTTP app on a loopback port, and real PostgreSQL and NATS servers.
//! A dev-dependency only; no product code may depend on it.

pub mod bombs;
pub mod certificates;
pub mod content_credentials;
pub mod nats;
pub mod pictures;
pub mod postgres;
pub mod store;
mod watchdog;

pub use nats::NatsServer;
pub use postgres::{CERTIFIED_USER, PostgresServer, shared_postgres};
pub use store::store_url_for;

use std::net::SocketAddr;
use std::path::PathBuf;

/// The reference PDQ hash of `images/misc-images/b.jpg` (bridge-1), full-resolution family.
pub const BRIDGE: &str = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";

/// Real photos among the reference images, under `images/`: each a different scene.
pub const DISTINCT_PHOTOS: [&str; 8] = [
    "misc-images/b.jpg",
    "reg-test-input/labelme-subset/q0003.jpg",
    "reg-test-input/labelme-subset/q0004.jpg",
    "reg-test-input/labelme-subset/q0122.jpg",
    "reg-test-input/labelme-subset/q0291.jpg",
    "reg-test-input/labelme-subset/q0746.jpg",
    "reg-test-input/labelme-subset/q1050.jpg",
    "reg-test-input/labelme-subset/q2821.jpg",
];

/// `$CORDON_SHARED/testdata/pdq-reference`, or the `shared/` folder beside the checkout.
pub fn reference_dir() -> PathBuf {
    let shared = std::env::var_os("CORDON_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let dir = shared.join("testdata/pdq-reference");
    assert!(
        dir.join("README.md").is_file(),
        "reference vectors not found at {}; set CORDON_SHARED to the shared/ folder",
        dir.display()
    );
    dir
}

/// A reference image, by its path under `images/`.
pub fn reference_image(relative: &str) -> PathBuf {
    reference_dir().join("images").join(relative)
}

/// The saved inputs of one fuzz target, `CRATE_DIR/tests/fuzz-regressions/TARGET/*`, each
/// with its path, in path order; a missing or empty folder fails the test, so a renamed
/// target cannot silently test nothing.
pub fn fuzz_regressions(crate_dir: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(crate_dir)
        .join("tests/fuzz-regressions")
        .join(target);
    let mut inputs: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path, bytes)
        })
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "no inputs in {}", dir.display());
    inputs
}

/// `hash` (64 hex digits) with its first `bits` bits flipped.
pub fn flipped(hash: &str, bits: usize) -> String {
    let mut nibbles: Vec<u32> = hash
        .chars()
        .map(|c| c.to_digit(16).unwrap_or_else(|| panic!("{hash:?} is not hex")))
        .collect();
    for bit in 0..bits {
        nibbles[bit / 4] ^= 1 << (bit % 4);
    }
    nibbles.iter().map(|n| format!("{n:x}")).collect()
}

/// Serves `app` on a loopback port from its own thread and runtime, for as long as the
/// test process lives.
pub fn serve_in_background(app: axum::Router) -> SocketAddr {
    let (ready, address) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("a loopback port");
            ready
                .send(listener.local_addr().expect("its address"))
                .expect("the test waits");
            axum::serve(listener, app).await.expect("serving");
        });
    });
    address.recv().expect("the server thread started")
}

/// What a webhook receiver saw: the headers and body of each POST it accepted.
pub type Received =
    std::sync::Arc<std::sync::Mutex<Vec<(std::collections::BTreeMap<String, String>, String)>>>;

/// A webhook receiver on a loopback port (`http://127.0.0.1:PORT`, POSTs to `/hook`) that
/// answers 500 to the first `failures` POSTs, then 200, keeping what it accepted.
pub fn webhook_receiver(failures: usize) -> (String, Received) {
    let received: Received = std::sync::Arc::default();
    let seen = received.clone();
    let count = std::sync::Arc::new(std::sync::Mutex::new(0usize));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let seen = seen.clone();
            let count = count.clone();
            async move {
                let mut n = count.lock().expect("the counter");
                *n += 1;
                if *n <= failures {
                    return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                }
                let headers = headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                    .collect();
                seen.lock().expect("the log").push((headers, body));
                axum::http::StatusCode::OK
            }
        }),
    );
    (format!("http://{}", serve_in_background(app)), received)
}

/// Waits up to `within` for `received` to hold `count` deliveries; returns what it holds.
pub fn wait_for_deliveries(
    received: &Received,
    count: usize,
    within: std::time::Duration,
) -> Vec<(std::collections::BTreeMap<String, String>, String)> {
    let started = std::time::Instant::now();
    while started.elapsed() < within {
        if received.lock().expect("the log").len() >= count {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    received.lock().expect("the log").clone()
}
