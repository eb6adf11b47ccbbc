//! `cordon serve` as a process: decisions survive a SIGKILL, SIGTERM stops it cleanly.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{cordon_in, image, ok_lines};
use serde_json::Value;

const BRIDGE: &str = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A minimal HTTP receiver on `port`: records every body, answers 200.
fn receive_on(port: u16) -> Arc<Mutex<Vec<String>>> {
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; length];
            if reader.read_exact(&mut body).is_ok() {
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&body).to_string());
            }
            let mut stream = reader.into_inner();
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    bodies
}

/// A new key of role submitter in the data folder `data`.
fn submitter_key(data: &Path) -> String {
    ok_lines(&cordon_in(
        data,
        &["keys", "create", "--role", "submitter", "--name", "p"],
        None,
    ))[0]["key"]
        .as_str()
        .unwrap()
        .to_string()
}

fn serve(data: &Path, port: u16, config: &Path) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cordon"))
        .arg("--data")
        .arg(data)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if reqwest::blocking::get(format!("http://127.0.0.1:{port}/status"))
            .is_ok_and(|r| r.status().is_success())
        {
            return child;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("cordon serve did not come up on port {port}");
}

#[test]
fn decisions_are_delivered_after_a_sigkill_and_a_restart() {
    let data = tempfile::tempdir().unwrap();
    ok_lines(&cordon_in(data.path(), &["bank", "create", "TVEC"], None));
    ok_lines(&cordon_in(
        data.path(),
        &["bank", "import", "TVEC", "-"],
        Some(format!("pdq {BRIDGE}\n").as_bytes()),
    ));
    let key = submitter_key(data.path());
    // The receiver is down while Cordon decides.
    let hook_port = free_port();
    let config = data.path().join("cordon.toml");
    std::fs::write(
        &config,
        format!(
            "[[webhooks]]\nname = \"platform\"\nurl = \"http://127.0.0.1:{hook_port}/hook\"\nsecret = \"change-me-please\"\n\n\
             [[rules]]\nname = \"known\"\nbanks = [\"TVEC\"]\nactions = [\"remove\", \"strike\"]\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let mut first = serve(data.path(), port, &config);
    let form = reqwest::blocking::multipart::Form::new()
        .file("media", image("misc-images/b.jpg"))
        .unwrap()
        .text("content_id", "post-1")
        .text("account_id", "acct-1");
    let answer: Value = reqwest::blocking::Client::new()
        .post(format!("http://127.0.0.1:{port}/v1/submissions"))
        .bearer_auth(&key)
        .multipart(form)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let decisions: Vec<i64> = answer["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect();
    assert_eq!(decisions.len(), 2, "{answer}");
    std::thread::sleep(Duration::from_millis(300));
    first.kill().unwrap(); // SIGKILL: no shutdown, no flushing
    first.wait().unwrap();

    let received = receive_on(hook_port);
    let port = free_port();
    let mut second = serve(data.path(), port, &config);
    let started = Instant::now();
    while received.lock().unwrap().len() < 2 && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    second.kill().unwrap();
    second.wait().unwrap();
    let delivered: Vec<i64> = received
        .lock()
        .unwrap()
        .iter()
        .map(|body| {
            serde_json::from_str::<Value>(body).unwrap()["decision"]["id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    let mut delivered_sorted = delivered.clone();
    delivered_sorted.sort();
    delivered_sorted.dedup();
    assert_eq!(
        delivered_sorted, decisions,
        "every decision delivered after the restart"
    );
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("cordon.toml");
    std::fs::write(&config, "").unwrap();
    let port = free_port();
    let mut child = serve(data.path(), port, &config);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    loop {
        if let Some(exit) = child.try_wait().unwrap() {
            assert!(exit.success(), "{exit:?}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still running after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The server's peak resident memory so far, from `/proc`.
fn peak_rss_mb(child: &Child) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb / 1024.0
}

#[test]
fn decompression_bombs_are_refused_from_their_headers_fast_and_small() {
    use cordon_testkit::bombs::{gif_declaring, jpeg_declaring, png_declaring, webp_declaring};
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("cordon.toml");
    std::fs::write(&config, "").unwrap();
    let key = submitter_key(data.path());
    let port = free_port();
    let mut child = serve(data.path(), port, &config);
    let photo = std::fs::read(image("misc-images/b.jpg")).unwrap();
    let bombs = [
        ("PNG 100,000 x 100,000", png_declaring(100_000, 100_000), 413),
        ("JPEG 60,000 x 60,000", jpeg_declaring(photo, 60_000, 60_000), 413),
        ("WebP 16,384 x 16,384", webp_declaring(16_384, 16_384), 413),
        ("GIF 65,535 x 65,535", gif_declaring(65_535, 65_535, 1), 413),
        // Only the first frame is ever decoded: ten thousand more cost nothing.
        ("GIF of 10,000 frames", gif_declaring(64, 64, 10_000), 200),
    ];
    let client = reqwest::blocking::Client::new();
    for (name, bytes, expected) in bombs {
        assert!(
            bytes.len() < 400_000,
            "{name} is a small file ({} bytes)",
            bytes.len()
        );
        let started = Instant::now();
        let form = reqwest::blocking::multipart::Form::new().part(
            "photo",
            reqwest::blocking::multipart::Part::bytes(bytes).file_name("bomb"),
        );
        let response = client
            .post(format!("http://127.0.0.1:{port}/h/hash"))
            .bearer_auth(&key)
            .multipart(form)
            .send()
            .unwrap();
        let elapsed = started.elapsed();
        let status = response.status().as_u16();
        let body: Value = response.json().unwrap();
        assert_eq!(status, expected, "{name}: {body}");
        if expected == 413 {
            let message = body["message"].as_str().unwrap();
            assert!(message.contains("pixels"), "{name}: {message}");
        }
        assert!(elapsed < Duration::from_secs(1), "{name} took {elapsed:?}");
        eprintln!("{name}: {status} in {:.1} ms", elapsed.as_secs_f64() * 1e3);
    }
    let peak = peak_rss_mb(&child);
    eprintln!("server peak RSS: {peak:.0} MB");
    assert!(peak < 300.0, "the server peaked at {peak:.0} MB");
    let _ = child.kill();
    let _ = child.wait();
}
