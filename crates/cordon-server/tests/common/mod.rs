//! What the server's test suites share.

use std::sync::Arc;

use cordon_server::AppState;

/// Serves `state` (webhook deliveries included) on a loopback port from its own thread and
/// runtime, for as long as the test process lives; returns `http://127.0.0.1:PORT`.
pub fn serve(state: AppState) -> String {
    let state = Arc::new(state);
    let (ready, address) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            ready.send(listener.local_addr().unwrap()).unwrap();
            cordon_server::serve(listener, state, std::future::pending())
                .await
                .unwrap();
        });
    });
    format!("http://{}", address.recv().unwrap())
}

/// The `/metrics` text of the server at `base`.
pub fn metrics(client: &reqwest::blocking::Client, base: &str) -> String {
    client
        .get(format!("{base}/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap()
}
