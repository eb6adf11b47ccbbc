//! Running the real `cordon` binary against the shared reference images.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub use cordon_testkit::{reference_dir, reference_image as image};

/// The reference value of `column` for `path` in one of the expected CSV files.
pub fn expected(csv: &str, path: &str, column: &str) -> String {
    let text = std::fs::read_to_string(reference_dir().join("expected").join(csv)).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let index = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let row: Vec<&str> = lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|r| r[index("path")] == path)
        .unwrap_or_else(|| panic!("{path} not in {csv}"));
    row[index(column)].to_string()
}

pub fn cordon(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args(args)
        .output()
        .unwrap()
}

pub fn cordon_paths(first: &[&str], paths: &[&Path]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cordon"));
    command.args(first);
    command.args(paths);
    command.output().unwrap()
}

pub fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect()
}

/// The field names of a JSON object, sorted (whether serde_json keeps insertion order
/// depends on the features other crates turn on).
pub fn keys(value: &Value) -> Vec<String> {
    let mut names: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    names.sort();
    names
}

/// Runs `cordon --data DATA ARGS...`, feeding `stdin` when given.
pub fn cordon_in(data: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_cordon"))
        .arg("--data")
        .arg(data)
        .env("CORDON_STORE", cordon_testkit::store_url_for(data))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

/// Asserts success and returns the JSON lines.
pub fn ok_lines(output: &Output) -> Vec<Value> {
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    json_lines(output)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A minimal HTTP receiver on `port`: records every body, answers 200.
pub fn receive_on(port: u16) -> Arc<Mutex<Vec<String>>> {
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

/// `cordon serve` on the data folder `data` and the store `store`, on `port`; waits until it
/// answers.
pub fn serve_on(data: &Path, store: &str, port: u16, config: &Path) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cordon"))
        .arg("--data")
        .arg(data)
        .env("CORDON_STORE", store)
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

/// Writes `cordon.toml` in `data`: a webhook to a receiver on `hook_port`, one rule acting
/// on bank TVEC with `actions`, and `more` after them; answers its path.
pub fn webhook_config(data: &Path, hook_port: u16, actions: &str, more: &str) -> std::path::PathBuf {
    let config = data.join("cordon.toml");
    std::fs::write(
        &config,
        format!(
            "[[webhooks]]\nname = \"platform\"\nurl = \"http://127.0.0.1:{hook_port}/hook\"\nsecret = \"change-me-please\"\n\n\
             [[rules]]\nname = \"known\"\nbanks = [\"TVEC\"]\nactions = [{actions}]\n\n{more}"
        ),
    )
    .expect("writing cordon.toml");
    config
}

/// `POST /v1/submissions` of the bridge photo to the server at `base`: the status and the
/// answer, or `None` when the server went away before answering.
pub fn submit_bridge(base: &str, key: &str, content_id: &str, account_id: &str) -> Option<(u16, Value)> {
    let form = reqwest::blocking::multipart::Form::new()
        .file("media", image("misc-images/b.jpg"))
        .expect("the bridge photo")
        .text("content_id", content_id.to_string())
        .text("account_id", account_id.to_string());
    let response = reqwest::blocking::Client::new()
        .post(format!("{base}/v1/submissions"))
        .bearer_auth(key)
        .multipart(form)
        .send()
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.json().ok()?))
}
