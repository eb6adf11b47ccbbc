//! `cordon bank` and `cordon match` against a real store in a temporary data folder.

use std::path::Path;

use crate::common::{cordon_in, expected, image, json_lines, ok_lines, reference_dir};
use cordon_testkit::{BRIDGE, flipped, pictures};
use serde_json::{Value, json};

fn create(data: &Path, name: &str, extra: &[&str]) {
    let mut args = vec!["bank", "create", name];
    args.extend_from_slice(extra);
    ok_lines(&cordon_in(data, &args, None));
}

fn import(data: &Path, bank: &str, text: &str) -> std::process::Output {
    cordon_in(data, &["bank", "import", bank, "-"], Some(text.as_bytes()))
}

/// A bank TVEC holding the bridge photo; the lines `bank add` printed.
fn bank_the_bridge(data: &Path) -> Vec<Value> {
    create(data, "TVEC", &[]);
    ok_lines(&cordon_in(
        data,
        &[
            "bank",
            "add",
            "TVEC",
            image("misc-images/b.jpg").to_str().unwrap(),
        ],
        None,
    ))
}

fn content_count(data: &Path, bank: &str) -> u64 {
    ok_lines(&cordon_in(data, &["bank", "show", bank], None))[0]["content_count"]
        .as_u64()
        .unwrap()
}

fn match_hashes(data: &Path, hashes: &[String]) -> Vec<Value> {
    let mut args = vec!["match".to_string()];
    for h in hashes {
        args.push("--hash".to_string());
        args.push(h.clone());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok_lines(&cordon_in(data, &args, None))
}

fn has_exact_match(line: &Value) -> bool {
    line["matches"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["distance"] == 0)
}

#[test]
fn bank_lifecycle_and_name_rules() {
    let data = tempfile::tempdir().unwrap();
    let created = ok_lines(&cordon_in(
        data.path(),
        &[
            "bank",
            "create",
            "ISIL_EXECUTIONS",
            "--description",
            "d",
            "--label",
            "tvec",
            "--pdq-threshold",
            "20",
        ],
        None,
    ));
    assert_eq!(created[0]["name"], "ISIL_EXECUTIONS");
    assert_eq!(created[0]["labels"], serde_json::json!(["tvec"]));
    assert_eq!(created[0]["thresholds"]["pdq"], 20);
    assert_eq!(created[0]["enabled"], true);
    assert_eq!(created[0]["content_count"], 0);

    for bad in ["lower", "1ABC", "WITH-DASH", ""] {
        let output = cordon_in(data.path(), &["bank", "create", bad], None);
        assert_eq!(output.status.code(), Some(1), "{bad:?}");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("invalid bank name"),
            "{bad:?}"
        );
    }
    let again = cordon_in(data.path(), &["bank", "create", "ISIL_EXECUTIONS"], None);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    create(data.path(), "ANOTHER", &[]);
    let names: Vec<Value> = ok_lines(&cordon_in(data.path(), &["bank", "list"], None))
        .iter()
        .map(|b| b["name"].clone())
        .collect();
    assert_eq!(names, ["ANOTHER", "ISIL_EXECUTIONS"]);
    assert_eq!(
        import(data.path(), "ANOTHER", &format!("pdq {BRIDGE}\n"))
            .status
            .code(),
        Some(0)
    );
    let deleted = ok_lines(&cordon_in(data.path(), &["bank", "delete", "ANOTHER"], None));
    assert_eq!(deleted[0]["content_deleted"], 1);
    let missing = cordon_in(data.path(), &["bank", "show", "ANOTHER"], None);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no bank named ANOTHER"));
}

#[test]
fn threshold_edges_31_matches_32_does_not() {
    let data = tempfile::tempdir().unwrap();
    create(data.path(), "DEFAULT", &[]);
    create(data.path(), "STRICT", &["--pdq-threshold", "10"]);
    import(data.path(), "DEFAULT", &format!("pdq {BRIDGE}\n"));
    import(data.path(), "STRICT", &format!("pdq {BRIDGE}\n"));
    let lines = match_hashes(
        data.path(),
        &[
            flipped(BRIDGE, 31),
            flipped(BRIDGE, 32),
            flipped(BRIDGE, 10),
            flipped(BRIDGE, 11),
        ],
    );
    let banks = |line: &Value| -> Vec<(String, u64)> {
        line["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["bank"].as_str().unwrap().to_string(),
                    m["distance"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(banks(&lines[0]), [("DEFAULT".to_string(), 31)]);
    assert!(banks(&lines[1]).is_empty());
    assert_eq!(
        banks(&lines[2]),
        [("DEFAULT".to_string(), 10), ("STRICT".to_string(), 10)]
    );
    assert_eq!(banks(&lines[3]), [("DEFAULT".to_string(), 11)]);
    assert_eq!(lines[0]["hash"], flipped(BRIDGE, 31));
}

#[test]
fn a_bank_of_exactly_one_hash_matches_after_a_reload() {
    let data = tempfile::tempdir().unwrap();
    create(data.path(), "ONE", &[]);
    assert!(
        import(data.path(), "ONE", &format!("pdq {BRIDGE}\n"))
            .status
            .success()
    );
    // Every `cordon match` is a fresh process: the index is rebuilt from the store.
    for _ in 0..2 {
        let lines = match_hashes(data.path(), &[BRIDGE.to_string()]);
        assert_eq!(lines[0]["matches"][0]["distance"], 0);
        assert_eq!(lines[0]["matches"][0]["bank"], "ONE");
    }
}

#[test]
fn added_images_match_their_reposts_and_rotations() {
    let data = tempfile::tempdir().unwrap();
    create(data.path(), "TVEC", &[]);
    let added = json_lines(&cordon_in(
        data.path(),
        &[
            "bank",
            "add",
            "TVEC",
            image("bridge-mods/aaa-orig.jpg").to_str().unwrap(),
            image("misc-images/small.jpg").to_str().unwrap(),
        ],
        None,
    ));
    assert_eq!(added[0]["signals"]["pdq"], BRIDGE);
    let content_id = added[0]["content_id"].clone();
    assert!(added[1]["error"].as_str().unwrap().contains("quality 0"));
    assert_eq!(content_count(data.path(), "TVEC"), 1);

    let rotated = image("reg-test-input/dih/bridge-2-rotate-90.jpg");
    let small = image("misc-images/small.jpg");
    let plain = ok_lines(&cordon_in(
        data.path(),
        &[
            "match",
            image("bridge-mods/blur-a-lot.jpg").to_str().unwrap(),
            rotated.to_str().unwrap(),
            small.to_str().unwrap(),
        ],
        None,
    ));
    let mut fields: Vec<String> = plain[0]["matches"][0]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        ["bank", "content_id", "distance", "signal_type", "transform"]
    );
    assert_eq!(plain[0]["matches"][0]["content_id"], content_id);
    assert_eq!(plain[0]["matches"][0]["transform"], "original");
    assert_eq!(plain[0]["quality"], 100);
    // The rotated copy: PDQ as given misses it, the bank's local features find it.
    assert_eq!(plain[1]["matches"][0]["signal_type"], "features", "{}", plain[1]);
    assert_eq!(plain[1]["matches"][0]["content_id"], content_id);
    assert_eq!(plain[2]["low_quality"], true);
    assert!(plain[2]["matches"].as_array().unwrap().is_empty());
    let pdq_only = ok_lines(&cordon_in(
        data.path(),
        &["match", "--no-features", rotated.to_str().unwrap()],
        None,
    ));
    assert!(
        pdq_only[0]["matches"].as_array().unwrap().is_empty(),
        "rotation needs --dihedral or features: {}",
        pdq_only[0]
    );

    let dihedral = ok_lines(&cordon_in(
        data.path(),
        &["match", "--dihedral", "--no-features", rotated.to_str().unwrap()],
        None,
    ));
    assert_eq!(dihedral[0]["matches"][0]["transform"], "rotate270");
    assert_eq!(dihedral[0]["matches"][0]["distance"], 0);
}

#[test]
fn a_picture_too_plain_for_pdq_is_banked_by_its_features_and_a_blank_one_is_refused() {
    let data = tempfile::tempdir().unwrap();
    create(data.path(), "TVEC", &[]);
    let (strewn, blank) = (data.path().join("strewn.png"), data.path().join("blank.png"));
    std::fs::write(&strewn, pictures::strewn_triangles_png()).unwrap();
    std::fs::write(&blank, pictures::blank_png()).unwrap();
    let added = json_lines(&cordon_in(
        data.path(),
        &[
            "bank",
            "add",
            "TVEC",
            strewn.to_str().unwrap(),
            blank.to_str().unwrap(),
        ],
        None,
    ));
    // PDQ quality 38: no PDQ hash is banked (it would match unrelated images), the
    // local features are.
    assert_eq!(added[0]["signals"], json!({ "pdq": "" }), "{}", added[0]);
    assert!(added[0]["keypoints"].as_u64().unwrap() >= 12, "{}", added[0]);
    let error = added[1]["error"].as_str().unwrap();
    assert!(error.contains("too little detail"), "{error}");
    assert_eq!(content_count(data.path(), "TVEC"), 1);
    let found = json_lines(&cordon_in(
        data.path(),
        &["match", strewn.to_str().unwrap()],
        None,
    ));
    assert_eq!(found[0]["low_quality"], true, "{}", found[0]);
    assert_eq!(found[0]["matches"][0]["signal_type"], "features", "{}", found[0]);
    assert_eq!(found[0]["matches"][0]["content_id"], added[0]["content_id"]);
}

#[test]
fn a_framed_picture_is_banked_with_the_hash_inside_its_frame() {
    // The bridge photo on a white mat: its own PDQ hash is another picture's, but the
    // bank also keeps the hash of what is inside the mat, so the photo posted without
    // it matches by PDQ alone.
    let bytes = std::fs::read(image("misc-images/b.jpg")).unwrap();
    let photo = cordon_signals::decode(&bytes, &Default::default()).unwrap();
    let width = photo.width() as usize;
    let png = pictures::on_white_mat_png(photo.pixels(), width, width / 8);
    let data = tempfile::tempdir().unwrap();
    let path = data.path().join("framed.png");
    std::fs::write(&path, png).unwrap();
    create(data.path(), "TVEC", &[]);
    let added = ok_lines(&cordon_in(
        data.path(),
        &["bank", "add", "TVEC", path.to_str().unwrap()],
        None,
    ));
    assert_ne!(added[0]["signals"]["pdq"], BRIDGE);
    let exported =
        String::from_utf8(cordon_in(data.path(), &["bank", "export", "TVEC", "--format", "tx"], None).stdout)
            .unwrap();
    // Each line may carry one of the content's features sets after the hash.
    let hashes: Vec<&str> = exported
        .lines()
        .filter_map(|l| l.strip_prefix("pdq ")?.split(' ').next())
        .collect();
    assert!(hashes.contains(&BRIDGE), "{hashes:?}");
    let found = ok_lines(&cordon_in(
        data.path(),
        &[
            "match",
            "--no-features",
            image("misc-images/b.jpg").to_str().unwrap(),
        ],
        None,
    ));
    let best = &found[0]["matches"][0];
    assert_eq!(best["content_id"], added[0]["content_id"], "{}", found[0]);
    assert_eq!(
        (&best["signal_type"], &best["distance"]),
        (&json!("pdq"), &json!(0))
    );
}

#[test]
fn a_screenshot_of_a_post_matches_by_the_pdq_hash_of_its_picture() {
    // The bridge photo in a phone screenshot: a status bar and lines of words above and
    // below. The page is trimmed off, words and all, and the picture inside matches the
    // banked photo by PDQ alone.
    let bytes = std::fs::read(image("misc-images/b.jpg")).unwrap();
    let photo = cordon_signals::decode(&bytes, &Default::default()).unwrap();
    let png = pictures::on_screenshot_page_png(photo.pixels(), photo.width() as usize);
    let data = tempfile::tempdir().unwrap();
    let screenshot = data.path().join("screenshot.png");
    std::fs::write(&screenshot, png).unwrap();
    let added = bank_the_bridge(data.path());
    let found = ok_lines(&cordon_in(
        data.path(),
        &["match", "--no-features", screenshot.to_str().unwrap()],
        None,
    ));
    let best = &found[0]["matches"][0];
    assert_eq!(best["content_id"], added[0]["content_id"], "{}", found[0]);
    assert_eq!(best["signal_type"], "pdq", "{}", found[0]);
    assert!(best["distance"].as_u64().unwrap() <= 8, "{}", found[0]);
}

#[test]
fn a_picture_on_a_wide_plain_ground_is_found_tilted() {
    // The bridge photo a third of the width of a plain blue poster. Trimmed of the ground,
    // the bank's features see the photo alone; a repost tilted by 3 degrees keeps the
    // ground (its black corners stop the trim) and shows the photo three times smaller,
    // beyond the reach of the pyramid of levels. The whole poster's features, banked too
    // for a picture on such a ground, find it.
    let bytes = std::fs::read(image("misc-images/b.jpg")).unwrap();
    let photo = cordon_signals::decode(&bytes, &Default::default()).unwrap();
    let png = pictures::on_plain_ground_png(photo.pixels(), photo.width() as usize, 3);
    let poster = cordon_signals::decode(&png, &Default::default()).unwrap();
    let turned = pictures::tilted(poster.pixels(), poster.width() as usize, -3.0);
    let data = tempfile::tempdir().unwrap();
    let (banked, repost) = (data.path().join("poster.png"), data.path().join("tilted.jpg"));
    std::fs::write(&banked, &png).unwrap();
    let jpeg = cordon_signals::media::encode_jpeg(&turned, poster.width(), poster.height(), 85).unwrap();
    std::fs::write(&repost, jpeg).unwrap();
    create(data.path(), "TVEC", &[]);
    let added = ok_lines(&cordon_in(
        data.path(),
        &["bank", "add", "TVEC", banked.to_str().unwrap()],
        None,
    ));
    let found = ok_lines(&cordon_in(
        data.path(),
        &["match", repost.to_str().unwrap()],
        None,
    ));
    let best = &found[0]["matches"][0];
    assert_eq!(best["content_id"], added[0]["content_id"], "{}", found[0]);
    assert_eq!(best["signal_type"], "features", "{}", found[0]);
}

#[test]
fn a_picture_drawn_in_transparency_is_banked_as_people_see_it() {
    // The bridge photo drawn in the opacity of a black image: without its opacity (as the
    // PDQ reference hashes it) it is black, too plain to bank; as people see it, it is the
    // photo, and a screenshot of it (over white, as a JPEG) matches by PDQ.
    let bytes = std::fs::read(image("misc-images/b.jpg")).unwrap();
    let photo = cordon_signals::decode(&bytes, &Default::default()).unwrap();
    let png = pictures::drawn_in_transparency_png(photo.pixels(), photo.width() as usize);
    let (shown, width, height) = pictures::shown_over_white(&png);
    let data = tempfile::tempdir().unwrap();
    let (drawn, screenshot) = (data.path().join("drawn.png"), data.path().join("screenshot.jpg"));
    std::fs::write(&drawn, &png).unwrap();
    std::fs::write(
        &screenshot,
        cordon_signals::media::encode_jpeg(&shown, width, height, 85).unwrap(),
    )
    .unwrap();
    create(data.path(), "TVEC", &[]);
    let added = ok_lines(&cordon_in(
        data.path(),
        &["bank", "add", "TVEC", drawn.to_str().unwrap()],
        None,
    ));
    assert_eq!(added[0]["signals"]["pdq"], "", "black: no usable reference hash");
    assert!(added[0]["keypoints"].as_u64().unwrap() > 100, "{}", added[0]);
    let found = |path: &std::path::Path| {
        ok_lines(&cordon_in(
            data.path(),
            &["match", "--no-features", path.to_str().unwrap()],
            None,
        ))
        .remove(0)
    };
    let by_screenshot = found(&screenshot);
    let best = &by_screenshot["matches"][0];
    assert_eq!(best["content_id"], added[0]["content_id"], "{by_screenshot}");
    assert_eq!(
        (&best["signal_type"], &best["transform"]),
        (&json!("pdq"), &json!("original"))
    );
    assert!(best["distance"].as_u64().unwrap() <= 16, "{by_screenshot}");
    // The file itself matches as seen too (by the hash of the whole picture or of what
    // trimming keeps of it: the bank holds both).
    let by_file = found(&drawn);
    let transform = by_file["matches"][0]["transform"].as_str().unwrap_or("");
    assert!(["composited", "trimmed"].contains(&transform), "{by_file}");
    assert_eq!(by_file["matches"][0]["distance"], 0, "{by_file}");
}

#[test]
fn disabled_banks_do_not_match() {
    let data = tempfile::tempdir().unwrap();
    create(data.path(), "OFF", &["--disabled"]);
    import(data.path(), "OFF", &format!("pdq {BRIDGE}\n"));
    assert!(
        match_hashes(data.path(), &[BRIDGE.to_string()])[0]["matches"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn negative_banks_are_marked_in_banks_and_matches() {
    let data = tempfile::tempdir().unwrap();
    create(data.path(), "TVEC", &[]);
    create(data.path(), "FLAT_COLOURS", &["--negative"]);
    let banks = ok_lines(&cordon_in(data.path(), &["bank", "list"], None));
    let negative: Vec<bool> = banks.iter().map(|b| b["negative"] == json!(true)).collect();
    assert_eq!(negative, [true, false], "listed by name: FLAT_COLOURS, TVEC");
    import(data.path(), "TVEC", &format!("pdq {BRIDGE}\n"));
    import(
        data.path(),
        "FLAT_COLOURS",
        &format!("pdq {}\n", flipped(BRIDGE, 3)),
    );
    let matches = match_hashes(data.path(), &[BRIDGE.to_string()])[0]["matches"].clone();
    assert_eq!(matches[0]["bank"], "TVEC");
    assert_eq!(
        matches[0].get("negative"),
        None,
        "only negative banks' matches say so"
    );
    assert_eq!(matches[1]["bank"], "FLAT_COLOURS");
    assert_eq!(matches[1]["negative"], json!(true));
}

/// A tx list with metadata, from the upstream MIH regression's haystack hashes.
fn tx_fixture(count: usize) -> String {
    let haystack =
        std::fs::read_to_string(reference_dir().join("images/reg-test-input/haystack.txt")).unwrap();
    let hashes: Vec<&str> = haystack
        .lines()
        .filter_map(|l| l.split(|c: char| !c.is_ascii_hexdigit()).find(|t| t.len() == 64))
        .take(count)
        .collect();
    assert_eq!(hashes.len(), count);
    hashes
        .iter()
        .enumerate()
        .map(|(i, h)| match i % 3 {
            0 => format!("pdq {h}\n"),
            1 => format!("pdq {h} {{\"external_id\":\"ext-{i}\",\"labels\":[\"tvec\",\"isil\"]}}\n"),
            _ => format!("pdq {h} {{\"note\":\"a \\\"quoted\\\", comma'd note {i}\"}}\n"),
        })
        .collect()
}

#[test]
fn export_then_import_gives_the_same_bank_in_every_format() {
    let data = tempfile::tempdir().unwrap();
    create(data.path(), "SOURCE", &[]);
    let imported = ok_lines(&import(data.path(), "SOURCE", &tx_fixture(300)));
    assert_eq!(imported[0]["imported"], 300);
    assert_eq!(imported[0]["format"], "tx");
    let export = |bank: &str, format: &str| -> String {
        let output = cordon_in(data.path(), &["bank", "export", bank, "--format", format], None);
        assert!(output.status.success());
        String::from_utf8(output.stdout).unwrap()
    };
    let original = export("SOURCE", "tx");
    let mut previous = "SOURCE".to_string();
    for (i, format) in ["csv", "json", "tx"].iter().enumerate() {
        let text = export(&previous, format);
        let next = format!("COPY_{i}");
        create(data.path(), &next, &[]);
        let result = ok_lines(&import(data.path(), &next, &text));
        assert_eq!(result[0]["format"], *format, "recognised from the content");
        assert_eq!(result[0]["imported"], 300);
        assert_eq!(
            export(&next, "tx"),
            original,
            "after a round trip through {format}"
        );
        previous = next;
    }
}

#[test]
fn a_bad_line_is_reported_by_number_and_nothing_is_imported() {
    let data = tempfile::tempdir().unwrap();
    create(data.path(), "TARGET", &[]);
    let good = tx_fixture(50);
    let cases: Vec<(String, u64, &str)> = vec![
        (format!("{good}pdq 12345\n"), 51, "64 hex"),
        (
            format!("{good}md5 d41d8cd98f00b204e9800998ecf8427e\n"),
            51,
            "unsupported signal type",
        ),
        (
            format!("{good}pdq {BRIDGE} {{\"labels\":\"not-a-list\"}}\n"),
            51,
            "JSON object",
        ),
        (format!("{good}pdq {BRIDGE} {{broken\n"), 51, "JSON object"),
        (format!("{good}pdq\n"), 51, "expected"),
        (format!("pdq pdq {BRIDGE}\n"), 1, "64 hex"),
        (
            format!("signal_type,signal\npdq,{BRIDGE}\npdq,{BRIDGE},extra\n"),
            3,
            "fields",
        ),
        (
            format!("signal_type,signal,colour\npdq,{BRIDGE},red\n"),
            1,
            "unknown column",
        ),
        (format!("[\"{BRIDGE}\",\n\"{BRIDGE}\",\n42]"), 3, "element 3"),
        (
            format!("[\"{BRIDGE}\",\n{{\"signal_type\":\"pdq\"}}]"),
            2,
            "missing field",
        ),
        (format!("[\"{BRIDGE}\",\n\"{BRIDGE}\""), 2, "EOF"),
    ];
    for (text, line, words) in cases {
        let output = import(data.path(), "TARGET", &text);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{text:?}: {stderr}");
        assert!(stderr.contains(&format!("line {line}:")), "{text:?}: {stderr}");
        assert!(stderr.contains(words), "{text:?}: {stderr}");
        assert!(stderr.contains("nothing was imported"), "{stderr}");
        assert_eq!(content_count(data.path(), "TARGET"), 0, "{text:?}");
    }
    // Not text at all.
    let output = cordon_in(
        data.path(),
        &["bank", "import", "TARGET", "-"],
        Some(&[0xff, 0xfe, 0x00, 0x01][..]),
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(content_count(data.path(), "TARGET"), 0);
    // Into a bank that does not exist.
    let output = import(data.path(), "NOWHERE", &good);
    assert!(String::from_utf8_lossy(&output.stderr).contains("no bank named NOWHERE"));
}

#[test]
fn labels_an_export_could_not_carry_are_refused_and_a_byte_order_mark_is_read_past() {
    let data = tempfile::tempdir().unwrap();
    for label in ["", "a;b", "x\ty"] {
        let output = cordon_in(
            data.path(),
            &["bank", "create", "LABELLED", "--label", label],
            None,
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{label:?}: {stderr}");
        assert!(stderr.contains("--label: bad label"), "{label:?}: {stderr}");
    }
    create(data.path(), "LABELLED", &[]);
    let photo = image("misc-images/b.jpg");
    let photo = photo.to_str().unwrap();
    for extra in [["--label", "a;b"], ["--note", &"n".repeat(5000)]] {
        let mut args = vec!["bank", "add", "LABELLED", photo];
        args.extend_from_slice(&extra);
        let output = cordon_in(data.path(), &args, None);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{extra:?}: {stderr}");
        assert!(stderr.contains("--label/--note"), "{extra:?}: {stderr}");
    }
    assert_eq!(content_count(data.path(), "LABELLED"), 0);
    // A spreadsheet's CSV starts with a byte-order mark.
    let csv = format!("\u{feff}signal_type,signal,labels\npdq,{BRIDGE},tvec\n");
    let imported = ok_lines(&import(data.path(), "LABELLED", &csv));
    assert_eq!(imported[0]["format"], "csv");
    assert_eq!(imported[0]["imported"], 1);
}

#[test]
fn match_reads_hashes_from_standard_input_in_order() {
    let data = tempfile::tempdir().unwrap();
    create(data.path(), "TVEC", &[]);
    import(data.path(), "TVEC", &tx_fixture(40));
    let fixture = tx_fixture(40);
    let wanted: Vec<&str> = fixture.lines().map(|l| l.split(' ').nth(1).unwrap()).collect();
    let mut stdin = String::new();
    for h in wanted.iter().rev() {
        stdin.push_str(h);
        stdin.push('\n');
    }
    stdin.push_str("not-a-hash\n");
    let output = cordon_in(
        data.path(),
        &["match", "--hashes", "-", "--threads", "2"],
        Some(stdin.as_bytes()),
    );
    assert_eq!(output.status.code(), Some(1), "one bad line");
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 41);
    for (line, h) in lines.iter().zip(wanted.iter().rev()) {
        assert_eq!(line["hash"], *h);
        assert!(has_exact_match(line));
    }
    assert!(lines[40]["error"].as_str().unwrap().contains("64 hex"));

    // A byte-order mark is read past; a line that is not text stops the list there,
    // naming it, after answering the lines before it.
    let mut bytes = format!("\u{feff}{}\n{}\n", wanted[0], wanted[1]).into_bytes();
    bytes.extend_from_slice(b"\xff\xfe\n");
    bytes.extend_from_slice(format!("{}\n", wanted[2]).as_bytes());
    let output = cordon_in(data.path(), &["match", "--hashes", "-"], Some(&bytes[..]));
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("- line 3: not UTF-8 text"), "{stderr}");
    let answered: Vec<Value> = json_lines(&output);
    assert_eq!(answered.len(), 2, "{answered:?}");
    assert!(answered.iter().all(has_exact_match));
    // Nor does a line without end.
    let endless = "a".repeat(5000);
    let output = cordon_in(data.path(), &["match", "--hashes", "-"], Some(endless.as_bytes()));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("- line 1: longer than 4096 bytes"), "{stderr}");
    assert!(stderr.len() < 500, "{stderr}");
}

#[test]
fn the_reference_bank_answers_like_the_reference_hashes() {
    // Every reference image added, then each matched: it must find itself at distance 0.
    let data = tempfile::tempdir().unwrap();
    create(data.path(), "REF", &[]);
    let dir = reference_dir().join("images/bridge-mods");
    ok_lines(&cordon_in(
        data.path(),
        &["bank", "add", "REF", dir.to_str().unwrap()],
        None,
    ));
    let lines = ok_lines(&cordon_in(data.path(), &["match", dir.to_str().unwrap()], None));
    assert_eq!(lines.len(), 12);
    let square = image("bridge-mods/square-256x256.jpg");
    let hash = expected("core-fullres.csv", "bridge-mods/square-256x256.jpg", "hash");
    let line = lines
        .iter()
        .find(|l| l["path"] == square.display().to_string())
        .unwrap();
    assert!(has_exact_match(line));
    let by_hash = match_hashes(data.path(), &[hash]);
    assert_eq!(
        by_hash[0]["matches"].as_array().unwrap().len(),
        line["matches"].as_array().unwrap().len()
    );
}

#[test]
fn text_format_is_for_people() {
    let data = tempfile::tempdir().unwrap();
    create(data.path(), "TVEC", &[]);
    import(data.path(), "TVEC", &format!("pdq {BRIDGE}\n"));
    let path = image("bridge-mods/aaa-orig.jpg");
    let output = cordon_in(
        data.path(),
        &["match", "--format", "text", path.to_str().unwrap()],
        None,
    );
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        text,
        format!("{}  q=100  TVEC#1 pdq d=0 original\n", path.display())
    );
    let listed = cordon_in(data.path(), &["bank", "list", "--format", "text"], None);
    assert!(String::from_utf8(listed.stdout).unwrap().starts_with("TVEC "));
}

#[test]
fn keys_are_printed_once_listed_without_secrets_and_revoked() {
    let data = tempfile::tempdir().unwrap();
    let created = ok_lines(&cordon_in(
        data.path(),
        &["keys", "create", "--role", "curator", "--name", "ts-team"],
        None,
    ));
    let key = created[0]["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("ck_"));
    assert_eq!(created[0]["role"], "curator");
    let listed = cordon_in(data.path(), &["keys", "list"], None);
    let text = String::from_utf8(listed.stdout.clone()).unwrap();
    assert!(text.contains("ts-team") && !text.contains(&key[20..]), "{text}");
    let again = cordon_in(
        data.path(),
        &["keys", "create", "--role", "admin", "--name", "ts-team"],
        None,
    );
    assert_eq!(again.status.code(), Some(1));
    let bad_role = cordon_in(
        data.path(),
        &["keys", "create", "--role", "root", "--name", "x"],
        None,
    );
    assert_eq!(bad_role.status.code(), Some(2));
    let revoked = ok_lines(&cordon_in(data.path(), &["keys", "revoke", "ts-team"], None));
    assert!(revoked[0]["revoked_at"].is_string());
}

#[test]
fn audit_verify_checks_the_chain_of_cli_changes() {
    let data = tempfile::tempdir().unwrap();
    create(data.path(), "TVEC", &[]);
    import(data.path(), "TVEC", &format!("pdq {BRIDGE}\n"));
    let check = ok_lines(&cordon_in(data.path(), &["audit", "verify"], None));
    assert_eq!(check[0]["entries"], 2);
    assert!(check[0]["problem"].is_null());
    let entries = ok_lines(&cordon_in(data.path(), &["audit", "list"], None));
    assert_eq!(entries[0]["event"], "bank.created");
    assert_eq!(entries[1]["event"], "content.added");
    assert!(entries[0]["actor"].as_str().unwrap().starts_with("cli:"));
}

#[test]
fn added_images_keep_local_features_that_find_crops_and_survive_export() {
    let data = tempfile::tempdir().unwrap();
    let added = bank_the_bridge(data.path());
    assert!(added[0]["keypoints"].as_u64().unwrap() > 100, "{}", added[0]);
    // A repost with a fifth cut off the left and a tenth off the bottom.
    let bytes = std::fs::read(image("misc-images/b.jpg")).unwrap();
    let decoded = cordon_signals::decode(&bytes, &Default::default()).unwrap();
    let original =
        image::RgbImage::from_raw(decoded.width(), decoded.height(), decoded.pixels().to_vec()).unwrap();
    let (width, height) = original.dimensions();
    let crop = image::imageops::crop_imm(&original, width / 5, 0, width - width / 5, height - height / 10);
    let repost = data.path().join("repost.png");
    crop.to_image().save(&repost).unwrap();
    let matched = |bank_data: &Path| {
        ok_lines(&cordon_in(bank_data, &["match", repost.to_str().unwrap()], None))[0]["matches"].clone()
    };
    let found = matched(data.path());
    assert_eq!(found[0]["signal_type"], "features", "{found}");
    assert_eq!(found[0]["bank"], "TVEC");

    for format in ["tx", "csv", "json"] {
        let exported = cordon_in(data.path(), &["bank", "export", "TVEC", "--format", format], None);
        assert!(exported.status.success());
        let text = String::from_utf8(exported.stdout).unwrap();
        assert!(text.contains("f1:"), "{format}: the features ride along");
        let copy = tempfile::tempdir().unwrap();
        create(copy.path(), "COPY", &[]);
        let imported = cordon_in(
            copy.path(),
            &["bank", "import", "COPY", "-"],
            Some(text.as_bytes()),
        );
        assert!(
            imported.status.success(),
            "{}",
            String::from_utf8_lossy(&imported.stderr)
        );
        let again = cordon_in(copy.path(), &["bank", "export", "COPY", "--format", format], None);
        assert_eq!(String::from_utf8(again.stdout).unwrap(), text, "{format}");
        assert_eq!(
            content_count(copy.path(), "COPY"),
            1,
            "{format}: one content, two signals"
        );
        assert_eq!(matched(copy.path())[0]["signal_type"], "features", "{format}");
    }
}

#[test]
fn provenance_finds_the_bank_sighting_of_a_near_copy() {
    let data = tempfile::tempdir().unwrap();
    bank_the_bridge(data.path());
    let near = image("bridge-mods/shrink-a-lot.jpg");
    let other = image("reg-test-input/labelme-subset/q0291.jpg");
    let lines = ok_lines(&cordon_in(
        data.path(),
        &[
            "provenance",
            "--posted-at",
            "2027-02-01T00:00:00Z",
            near.to_str().unwrap(),
            other.to_str().unwrap(),
        ],
        None,
    ));
    let first = &lines[0]["first_seen"];
    assert_eq!(
        (first["kind"].clone(), first["bank"].clone()),
        (json!("bank"), json!("TVEC")),
        "{}",
        lines[0]
    );
    assert_eq!(first["format"], "jpeg");
    assert!(first["sha256"].as_str().unwrap().len() == 64);
    assert_eq!(lines[0]["verdict"]["label"], "recycled", "{}", lines[0]);
    assert_eq!(lines[0]["sightings_total"], 1, "{}", lines[0]);
    assert_eq!(lines[1]["first_seen"], Value::Null);
    assert_eq!(lines[1]["verdict"]["reasons"], json!(["no earlier sighting"]));
    for (option, bad_value) in [("--posted-at", "soon"), ("--limit", "0"), ("--limit", "10001")] {
        let bad = cordon_in(
            data.path(),
            &["provenance", option, bad_value, near.to_str().unwrap()],
            None,
        );
        assert!(!bad.status.success(), "{option} {bad_value}");
        assert!(
            String::from_utf8_lossy(&bad.stderr).contains(option),
            "{option} {bad_value}"
        );
    }
}
