//! The NATS server the test suites run on: a real one, JetStream on, killed and restarted at will.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::time::Instant;

use cordon_testkit::NatsServer;

/// The first line a new connection gets.
fn greeting(port: u16) -> String {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("a connection");
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).expect("a greeting");
    line
}

#[test]
fn it_greets_goes_down_and_comes_back_with_its_store() {
    let started = Instant::now();
    let mut nats = NatsServer::start();
    let start = started.elapsed();
    let port = nats.port();
    assert_eq!(nats.url(), format!("nats://127.0.0.1:{port}"));
    let hello = greeting(port);
    assert!(hello.starts_with("INFO {"), "{hello:?}");
    assert!(hello.contains("\"jetstream\":true"), "{hello:?}");
    let dir = nats.dir().to_path_buf();
    assert!(dir.join("jetstream").is_dir(), "no store in {}", dir.display());

    let killing = Instant::now();
    nats.kill();
    let kill = killing.elapsed();
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "still listening after kill"
    );
    assert!(dir.join("jetstream").is_dir(), "the store went with the kill");
    nats.kill(); // twice: nothing more to do

    let restarting = Instant::now();
    nats.restart();
    let restart = restarting.elapsed();
    assert_eq!(nats.port(), port);
    assert!(greeting(port).starts_with("INFO {"));
    nats.restart(); // while running: stopped first
    assert!(greeting(port).starts_with("INFO {"));

    drop(nats);
    assert!(!dir.exists(), "{} still there", dir.display());
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "still listening after drop"
    );
    eprintln!(
        "start {} ms, kill {} ms, restart {} ms",
        start.as_millis(),
        kill.as_millis(),
        restart.as_millis()
    );
}

#[test]
fn a_killed_server_stays_dropped() {
    let mut nats = NatsServer::start();
    let dir = nats.dir().to_path_buf();
    nats.kill();
    drop(nats);
    assert!(!dir.exists(), "{} still there", dir.display());
}
