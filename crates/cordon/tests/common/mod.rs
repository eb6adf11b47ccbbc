//! Running the real `cordon` binary against the shared reference images.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

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
