//! The PostgreSQL server the test suites run on: a real one, its databases apart, gone with its
//! drop or with the test process.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cordon_testkit::postgres::{PostgresServer, psql, shared_postgres};

#[test]
fn the_shared_server_keeps_each_database_apart() {
    let server = shared_postgres();
    assert!(std::ptr::eq(server, shared_postgres()), "one server per process");
    let first = server.new_database("Signals-Test!");
    let second = server.new_database("signals-test!");
    let prefix = format!("postgres://cordon@127.0.0.1:{}/", server.port());
    assert!(
        first.starts_with(&prefix) && second.starts_with(&prefix),
        "{first} {second}"
    );
    assert_ne!(first, second);
    assert!(first[prefix.len()..].starts_with("signals_test__"), "{first}");

    for (url, word) in [(&first, "alpha"), (&second, "beta")] {
        psql(
            url,
            &format!(
                "CREATE TABLE hashes (id int PRIMARY KEY, name text); INSERT INTO hashes VALUES (1, '{word}'), (2, '{word}-2')"
            ),
        );
    }
    assert_eq!(
        psql(&first, "SELECT id, name FROM hashes ORDER BY id"),
        "1|alpha\n2|alpha-2\n"
    );
    assert_eq!(
        psql(&second, "SELECT id, name FROM hashes ORDER BY id"),
        "1|beta\n2|beta-2\n"
    );
    assert_eq!(psql(&first, "SHOW server_encoding"), "UTF8\n");
    assert_eq!(psql(&first, "SHOW fsync"), "off\n");
}

#[test]
fn databases_are_made_concurrently() {
    let server = shared_postgres();
    let urls: Vec<String> = std::thread::scope(|scope| {
        let makers: Vec<_> = (0..6)
            .map(|_| scope.spawn(|| server.new_database("concurrent")))
            .collect();
        makers
            .into_iter()
            .map(|maker| maker.join().expect("a database"))
            .collect()
    });
    for url in &urls {
        assert_eq!(
            psql(url, "SELECT count(*) FROM pg_class WHERE relname = 'hashes'"),
            "0\n"
        );
    }
    let mut names = urls.clone();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), urls.len());
}

#[test]
fn a_dropped_server_is_gone_with_its_folder() {
    let started = Instant::now();
    let server = PostgresServer::start();
    let start = started.elapsed();
    let (dir, port) = (server.dir().to_path_buf(), server.port());
    assert!(dir.join("data/PG_VERSION").is_file());
    let url = server.new_database("dropped");
    assert_eq!(psql(&url, "SELECT 40 + 2"), "42\n");

    let dropping = Instant::now();
    drop(server);
    let stop = dropping.elapsed();
    assert!(!dir.exists(), "{} still there", dir.display());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still open"
    );
    assert!(
        processes_in(&dir).is_empty(),
        "left running: {:?}",
        processes_in(&dir)
    );
    eprintln!("start {} ms, drop {} ms", start.as_millis(), stop.as_millis());
}

/// Not a test by itself: what `the_shared_server_goes_with_the_process` runs in a child process.
#[test]
#[ignore = "run by the_shared_server_goes_with_the_process, in a child process"]
fn child_holding_the_shared_server() {
    let Some(how) = std::env::var_os("CORDON_TESTKIT_CHILD") else {
        return;
    };
    let server = shared_postgres();
    let nats = cordon_testkit::NatsServer::start();
    println!("PG={} {}", server.port(), server.dir().display());
    println!("NATS={} {}", nats.port(), nats.dir().display());
    // As a static's would be: never dropped.
    std::mem::forget(nats);
    if how == "killed" {
        std::thread::sleep(Duration::from_secs(60));
    } else {
        // Exit only once the parent has seen the servers up (it closes our stdin then):
        // exiting at once raced the parent's check that they were up.
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    }
}

#[test]
fn the_shared_server_goes_with_the_process() {
    for how in ["exits", "killed"] {
        let mut child = Command::new(std::env::current_exe().expect("this test program"))
            .args([
                "postgres::child_holding_the_shared_server",
                "--exact",
                "--include-ignored",
                "--nocapture",
            ])
            .env("CORDON_TESTKIT_CHILD", how)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the child test");
        let mut servers = Vec::new();
        for line in BufReader::new(child.stdout.take().expect("its output")).lines() {
            let line = line.expect("a line");
            if let Some((_, server)) = line.split_once("PG=").or_else(|| line.split_once("NATS=")) {
                let (port, dir) = server.split_once(' ').expect("port and folder");
                servers.push((port.parse::<u16>().expect("a port"), PathBuf::from(dir)));
                if servers.len() == 2 {
                    break;
                }
            }
        }
        assert_eq!(servers.len(), 2, "the child ({how}) started no servers");
        for (port, _) in &servers {
            assert!(
                std::net::TcpStream::connect(("127.0.0.1", *port)).is_ok(),
                "port {port} closed"
            );
        }
        if how == "killed" {
            child.kill().expect("SIGKILL");
        } else {
            drop(child.stdin.take());
        }
        child.wait().expect("the child's end");
        let ended = Instant::now();
        let deadline = ended + Duration::from_secs(15);
        for (port, dir) in &servers {
            while (dir.exists() || !processes_in(dir).is_empty()) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            assert!(
                !dir.exists(),
                "{} still there after the child {how}",
                dir.display()
            );
            assert!(
                processes_in(dir).is_empty(),
                "left running: {:?}",
                processes_in(dir)
            );
            assert!(
                std::net::TcpStream::connect(("127.0.0.1", *port)).is_err(),
                "port {port} open"
            );
        }
        eprintln!(
            "the child {how}: its servers gone {} ms later",
            ended.elapsed().as_millis()
        );
    }
}

/// The processes whose command line names `dir` (`pgrep -f`).
fn processes_in(dir: &std::path::Path) -> Vec<String> {
    let output = Command::new("pgrep").arg("-af").arg(dir).output().expect("pgrep");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(String::from)
        .collect()
}
