//! `cordon hash` as a user runs it: the real binary, real files, JSON lines on stdout.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::common::{cordon, cordon_paths, expected, image, json_lines, keys, reference_dir};

#[test]
fn one_json_line_per_input_with_the_reference_hash() {
    let path = image("misc-images/b.jpg");
    let output = cordon_paths(&["hash"], &[&path]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    // Field order is part of the contract, not only the names.
    assert!(stdout.starts_with(r#"{"path":"#), "{stdout}");
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 1);
    let mut names = keys(&lines[0]);
    names.sort();
    assert_eq!(names, ["hash", "path", "quality", "signal_type"]);
    assert_eq!(lines[0]["path"], path.display().to_string());
    assert_eq!(lines[0]["signal_type"], "pdq");
    assert_eq!(
        lines[0]["hash"],
        expected("core-fullres.csv", "misc-images/b.jpg", "hash")
    );
    assert_eq!(lines[0]["quality"], 100);
}

#[test]
fn dihedral_adds_the_eight_reference_variants() {
    let relative = "reg-test-input/dih/bridge-2-rotate-90.jpg";
    let output = cordon_paths(&["hash", "--dihedral"], &[&image(relative)]);
    assert!(output.status.success());
    let line = &json_lines(&output)[0];
    let dihedral = &line["dihedral"];
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    let order = [
        "original",
        "rotate90",
        "rotate180",
        "rotate270",
        "flipx",
        "flipy",
        "flip_plus1",
        "flip_minus1",
    ];
    let columns = [
        "orig",
        "rot90",
        "rot180",
        "rot270",
        "flipx",
        "flipy",
        "flipplus1",
        "flipminus1",
    ];
    let mut last = 0;
    for (name, column) in order.iter().zip(columns) {
        assert_eq!(
            dihedral[name],
            expected("core-fullres-dihedral.csv", relative, column),
            "{name}"
        );
        let at = stdout.find(&format!("\"{name}\":")).unwrap();
        assert!(at > last, "{name} out of order");
        last = at;
    }
    assert_eq!(line["hash"], dihedral["original"]);
}

#[test]
fn directories_recurse_in_sorted_order_and_skip_what_is_not_an_image() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("b")).unwrap();
    std::fs::copy(image("misc-images/wee.jpg"), dir.path().join("b/2.jpg")).unwrap();
    std::fs::copy(image("misc-images/c.png"), dir.path().join("b/1.png")).unwrap();
    // Recognised by content, not by name.
    std::fs::copy(image("misc-images/modes/PA.webp"), dir.path().join("a-photo.bin")).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not an image").unwrap();
    std::fs::write(dir.path().join("b/fake.jpg.txt"), "neither").unwrap();

    let output = cordon_paths(&["hash"], &[dir.path()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let paths: Vec<String> = json_lines(&output)
        .iter()
        .map(|l| l["path"].as_str().unwrap().to_string())
        .collect();
    let expected: Vec<String> = ["a-photo.bin", "b/1.png", "b/2.jpg"]
        .iter()
        .map(|p| dir.path().join(p).display().to_string())
        .collect();
    assert_eq!(paths, expected);
}

#[test]
fn failed_inputs_get_an_error_line_and_the_rest_still_run() {
    let dir = tempfile::tempdir().unwrap();
    let good = image("misc-images/wee.jpg");
    let empty = dir.path().join("empty.jpg");
    std::fs::write(&empty, b"").unwrap();
    let text = dir.path().join("text.jpg");
    std::fs::write(&text, b"just words").unwrap();
    let truncated = dir.path().join("truncated.jpg");
    let bytes = std::fs::read(image("misc-images/b.jpg")).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let missing = dir.path().join("missing.png");

    let output = cordon_paths(&["hash"], &[&good, &empty, &text, &truncated, &missing, &good]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[0]["quality"], 100);
    assert_eq!(lines[5]["hash"], lines[0]["hash"]);
    for (line, path, words) in [
        (&lines[1], &empty, "empty"),
        (&lines[2], &text, "not an image"),
        (&lines[3], &truncated, "truncated"),
        (&lines[4], &missing, "No such file"),
    ] {
        assert_eq!(keys(line), ["error", "path"], "{line}");
        assert_eq!(line["path"], path.display().to_string());
        let error = line["error"].as_str().unwrap();
        assert!(error.contains(words), "{path:?}: {error}");
    }
}

#[test]
fn limits_are_options_and_name_what_was_exceeded() {
    let path = image("misc-images/b.jpg");
    let output = cordon_paths(&["hash", "--max-pixels", "1000000"], &[&path]);
    assert_eq!(output.status.code(), Some(1));
    let error = json_lines(&output)[0]["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("1600x1004") && error.contains("1000000"),
        "{error}"
    );

    let output = cordon_paths(&["hash", "--max-bytes", "1000"], &[&path]);
    assert_eq!(output.status.code(), Some(1));
    let error = json_lines(&output)[0]["error"].as_str().unwrap().to_string();
    assert!(error.contains("over the limit of 1000 bytes"), "{error}");
}

#[test]
fn dash_reads_standard_input_once() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args(["hash", "-", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let bytes = std::fs::read(image("misc-images/c.png")).unwrap();
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    let output = child.wait_with_output().unwrap();
    // The second `-` is refused, by name: standard input can be read once.
    assert_eq!(output.status.code(), Some(1));
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["path"], "-");
    assert_eq!(
        lines[0]["hash"],
        expected("core-fullres.csv", "misc-images/c.png", "hash")
    );
    assert!(
        lines[1]["error"].as_str().unwrap().contains("named twice"),
        "{}",
        lines[1]
    );
}

#[test]
fn thread_count_does_not_change_the_output() {
    let dir = reference_dir().join("images");
    let one = cordon_paths(&["hash", "--threads", "1"], &[&dir]);
    let two = cordon_paths(&["hash", "--threads", "2"], &[&dir]);
    assert!(one.status.success() && two.status.success());
    assert_eq!(json_lines(&one).len(), 50);
    assert_eq!(one.stdout, two.stdout);
}

#[test]
fn cli512_family_matches_pdq_photo_hasher() {
    let relative = "reg-test-input/exif-rotn/exif-rotn-6.jpg";
    let output = cordon_paths(&["hash", "--pdq-family", "cli512"], &[&image(relative)]);
    assert!(output.status.success());
    assert_eq!(
        json_lines(&output)[0]["hash"],
        expected("pdq-photo-hasher.csv", relative, "hash")
    );
}

#[test]
fn text_format_is_hash_quality_path() {
    let path = image("misc-images/small.jpg");
    let output = cordon_paths(&["hash", "--format", "text"], &[&path]);
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let hash = expected("core-fullres.csv", "misc-images/small.jpg", "hash");
    assert_eq!(stdout, format!("{hash}   0 {}\n", path.display()));
}

#[test]
fn usage_errors_exit_2_without_output() {
    for args in [
        &["hash"][..],
        &["hash", "--threads", "0", "x"],
        &["hash", "--pdq-family", "x", "y"],
    ] {
        let output = cordon(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn bench_pdq_reports_timings_in_the_peer_format() {
    let relative = "bridge-mods/shrink-a-lot.jpg";
    let output = cordon_paths(&["bench", "pdq", "--reps", "2"], &[&image(relative)]);
    assert!(output.status.success());
    let line = &json_lines(&output)[0];
    let mut names = keys(line);
    names.sort();
    assert_eq!(
        names,
        [
            "decode_ms",
            "hash",
            "hash_ms",
            "height",
            "path",
            "quality",
            "width"
        ]
    );
    assert_eq!(line["hash"], expected("core-fullres.csv", relative, "hash"));
    assert_eq!(
        (line["width"].as_u64(), line["height"].as_u64()),
        (Some(160), Some(100))
    );
    assert!(line["decode_ms"].as_f64().unwrap() >= 0.0);
}
