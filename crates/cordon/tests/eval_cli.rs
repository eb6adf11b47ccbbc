//! `cordon eval` as a user runs it: the real binary on a small corpus of real photos from
//! the reference images, with one broken file among them.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use crate::common::{cordon, image, json_lines};
use cordon_signals::{DecodeLimits, PixelLayout};
use serde_json::Value;

/// Distinct photos of posting size; none is within 31 bits of another, nor shares
/// keypoints with another (`pen-and-coaster.png` is a crop of `c.png`).
const PHOTOS: [&str; 3] = [
    "misc-images/b.jpg",
    "misc-images/c.png",
    "reg-test-input/exif-rotn/exif-rotn-1.jpg",
];

/// Every signal, and its default threshold.
const SIGNALS: [(&str, u64); 5] = [
    ("pdq", 31),
    ("pdq-dihedral", 31),
    ("pdq-trim", 31),
    ("features", 88),
    ("cordon", 0),
];

/// 256x256 photos, scaled up four times. At 256 px the hash of a rotated copy lands up to
/// 50 bits from the dihedral hash derived from the original: PDQ's blur window has an even
/// width there, off-centre by half a pixel, a quarter of a sample at that size. That is
/// the size of the image, not the transformation under test. Left out: q0003 and q0004
/// (PDQ quality below 50) and q0122 (fine noise whose rotated copies stay 44 bits off
/// even when scaled up).
const SMALL_PHOTOS: [&str; 4] = [
    "reg-test-input/labelme-subset/q0291.jpg",
    "reg-test-input/labelme-subset/q0746.jpg",
    "reg-test-input/labelme-subset/q1050.jpg",
    "reg-test-input/labelme-subset/q2821.jpg",
];

const BROKEN: &str = "broken.jpg";

const LINE_FIELDS: [&str; 8] = [
    "signal",
    "transform",
    "queries",
    "recall",
    "false_matches",
    "threshold",
    "threshold_at_precision",
    "recall_at_precision",
];

const SUMMARY_FIELDS: [&str; 6] = [
    "non_matching_pairs",
    "ms_per_image",
    "decode_ms_per_image",
    "originals",
    "near_duplicates_dropped",
    "skipped",
];

/// The corpus, built once per test run: the photos, the small ones scaled up in a
/// sub-folder (the walk is recursive), and a file that only starts like a JPEG.
fn corpus() -> &'static Path {
    static CORPUS: OnceLock<PathBuf> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("eval-corpus");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("small")).unwrap();
        for photo in PHOTOS {
            let name = photo.replace('/', "_");
            std::fs::write(dir.join(name), std::fs::read(image(photo)).unwrap()).unwrap();
        }
        for photo in SMALL_PHOTOS {
            let name = Path::new(photo).with_extension("png");
            let name = name.file_name().unwrap();
            scaled_up(&image(photo), 4)
                .save(dir.join("small").join(name))
                .unwrap();
        }
        std::fs::write(dir.join(BROKEN), b"\xff\xd8\xff\xe0 and then not a JPEG at all").unwrap();
        dir
    })
}

fn scaled_up(path: &Path, factor: u32) -> image::RgbImage {
    let decoded = cordon_signals::decode(&std::fs::read(path).unwrap(), &DecodeLimits::default()).unwrap();
    assert_eq!(decoded.layout(), PixelLayout::Rgb, "{}", path.display());
    let (width, height) = (decoded.width(), decoded.height());
    let rgb = image::RgbImage::from_raw(width, height, decoded.pixels().to_vec()).unwrap();
    image::imageops::resize(
        &rgb,
        width * factor,
        height * factor,
        image::imageops::FilterType::CatmullRom,
    )
}

/// The full run (every signal and transformation, JSON, with a chart), made once and
/// shared by the tests that read it.
fn full_run() -> &'static (Output, Vec<Value>, PathBuf) {
    static RUN: OnceLock<(Output, Vec<Value>, PathBuf)> = OnceLock::new();
    RUN.get_or_init(|| {
        let chart = Path::new(env!("CARGO_TARGET_TMPDIR")).join("eval-chart.svg");
        let _ = std::fs::remove_file(&chart);
        let corpus = corpus().to_str().unwrap();
        let output = cordon(&["eval", "--corpus", corpus, "--chart", chart.to_str().unwrap()]);
        assert!(
            output.status.success(),
            "exit {:?}: {}",
            output.status.code(),
            String::from_utf8_lossy(&output.stderr)
        );
        let lines = json_lines(&output);
        (output, lines, chart)
    })
}

/// The result lines (one per signal and transformation, and the summaries), without the
/// lines naming each miss.
fn result_lines() -> impl Iterator<Item = &'static Value> {
    full_run().1.iter().filter(|l| l.get("transform").is_some())
}

fn line<'a>(signal: &str, transform: &str) -> &'a Value {
    result_lines()
        .find(|l| l["signal"] == signal && l["transform"] == transform)
        .unwrap_or_else(|| panic!("no line for {signal} on {transform}"))
}

fn recall(signal: &str, transform: &str) -> f64 {
    line(signal, transform)["recall"].as_f64().unwrap()
}

#[test]
fn one_line_per_signal_and_transform_then_a_summary_with_stable_fields() {
    let lines: Vec<&Value> = result_lines().collect();
    // 5 signals x (20 transformations + the summary).
    assert_eq!(lines.len(), SIGNALS.len() * 21, "{lines:?}");
    for line in lines {
        for field in LINE_FIELDS {
            assert!(line.get(field).is_some(), "{field} missing from {line}");
        }
        let threshold = SIGNALS
            .iter()
            .find(|(name, _)| line["signal"] == *name)
            .unwrap()
            .1;
        assert_eq!(line["threshold"], threshold);
    }
    // Every other line names one repost a signal missed.
    for other in full_run().1.iter().filter(|l| l.get("transform").is_none()) {
        let miss = &other["miss"];
        assert!(
            miss["signal"].is_string() && miss["transform"].is_string(),
            "{other}"
        );
        assert!(
            miss["original"].as_str().unwrap().contains("eval-corpus"),
            "{other}"
        );
        // How near the miss came: a number beyond the signal's threshold, or null.
        let threshold = SIGNALS
            .iter()
            .find(|(name, _)| miss["signal"] == *name)
            .unwrap()
            .1;
        assert!(
            miss["distance"].is_null() || miss["distance"].as_u64().unwrap() > threshold,
            "{other}"
        );
    }
    for (signal, _) in SIGNALS {
        let summary = line(signal, "all");
        for field in SUMMARY_FIELDS {
            assert!(summary.get(field).is_some(), "{field} missing from {summary}");
        }
        let originals = PHOTOS.len() + SMALL_PHOTOS.len();
        assert_eq!(summary["originals"], originals);
        assert_eq!(summary["near_duplicates_dropped"], 0);
        assert_eq!(summary["queries"], 20 * originals);
        assert_eq!(summary["non_matching_pairs"], 20 * originals * (originals - 1));
        assert!(summary["ms_per_image"].as_f64().unwrap() > 0.0);
        assert_eq!(line(signal, "rot90")["queries"], originals);
    }
}

#[test]
fn dihedral_lookup_finds_rotations_and_mirrors_that_plain_pdq_misses() {
    for transform in ["mirror", "rot90", "rot180"] {
        assert_eq!(recall("pdq-dihedral", transform), 1.0, "{transform}");
    }
    assert!(recall("pdq", "rot90") <= 0.25, "{}", line("pdq", "rot90"));
    assert!(recall("pdq", "mirror") <= 0.25, "{}", line("pdq", "mirror"));
}

#[test]
fn recompressed_and_resized_reposts_are_all_found() {
    for signal in ["pdq", "pdq-dihedral"] {
        for transform in ["jpeg30", "half"] {
            assert_eq!(recall(signal, transform), 1.0, "{signal} on {transform}");
            // Every repost found and no stranger: the whole range up to 256 bits keeps
            // precision, or some threshold at least does.
            assert!(
                line(signal, transform)["threshold_at_precision"]
                    .as_u64()
                    .unwrap()
                    >= 31
            );
        }
    }
}

#[test]
fn local_features_find_crops_frames_captions_tilts_and_screenshots() {
    for signal in ["features", "cordon"] {
        for transform in [
            "crop5",
            "crop20",
            "frame",
            "caption",
            "tilt3",
            "tilt-3",
            "screenshot",
            "text",
        ] {
            assert_eq!(recall(signal, transform), 1.0, "{signal} on {transform}");
        }
    }
    // PDQ alone cannot: a fifth cropped away moves every hash bit's region.
    assert_eq!(recall("pdq-dihedral", "crop20"), 0.0);
    // Trimming undoes borders and frames for PDQ.
    assert_eq!(recall("pdq-trim", "border"), 1.0);
    assert_eq!(recall("pdq", "border"), 0.0);
}

#[test]
fn distinct_photos_never_match_each_other() {
    for line in result_lines() {
        assert_eq!(line["false_matches"], 0, "{line}");
    }
    assert!(!full_run().1.iter().any(|l| l.get("false_match").is_some()));
}

#[test]
fn the_chart_is_written_with_every_signal_named() {
    let svg = std::fs::read_to_string(&full_run().2).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for name in ["pdq", "pdq-dihedral", "screenshot", "tilt-3"] {
        assert!(svg.contains(name), "{name} not in the chart");
    }
}

#[test]
fn a_broken_file_is_skipped_and_named() {
    let (output, lines, _) = full_run();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let broken = corpus().join(BROKEN);
    assert!(stderr.contains(broken.to_str().unwrap()), "{stderr}");
    assert_eq!(line("pdq", "all")["skipped"], 1, "{lines:?}");
}

/// A picture drawn in its opacity alone (here a white layer, opaque in a disc) re-saves as
/// plain white, so its reposts would show nothing: it is left out and named, and the rest
/// of the corpus is measured. With any colour in it, the same file is measured.
#[test]
fn a_picture_that_is_blank_without_its_opacity_is_left_out_and_named() {
    let tempdir = tempfile::tempdir().unwrap();
    let dir = tempdir.path();
    for photo in &PHOTOS[..2] {
        std::fs::copy(image(photo), dir.join(photo.replace('/', "_"))).unwrap();
    }
    let disc = |colour: fn(u32, u32) -> [u8; 3]| {
        image::RgbaImage::from_fn(400, 300, |x, y| {
            let inside = (x as i64 - 200).pow(2) + (y as i64 - 150).pow(2) < 100 * 100;
            let [r, g, b] = colour(x, y);
            image::Rgba([r, g, b, if inside { 255 } else { 40 }])
        })
    };
    let white = dir.join("white-layer.png");
    disc(|_, _| [255; 3]).save(&white).unwrap();
    let (summary, stderr) = quick_run(dir);
    assert_eq!(
        (summary["originals"].as_u64(), summary["skipped"].as_u64()),
        (Some(2), Some(1)),
        "{summary}"
    );
    let named = stderr
        .lines()
        .find(|l| l.contains(white.to_str().unwrap()))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(named.contains("one plain colour"), "{named}");

    disc(|x, y| [(x % 256) as u8, (y % 256) as u8, 90])
        .save(&white)
        .unwrap();
    let (summary, stderr) = quick_run(dir);
    assert_eq!(
        (summary["originals"].as_u64(), summary["skipped"].as_u64()),
        (Some(3), Some(0)),
        "{summary} {stderr}"
    );
}

#[test]
fn text_format_prints_a_table() {
    let corpus = corpus().to_str().unwrap();
    let output = cordon(&[
        "eval",
        "--corpus",
        corpus,
        "--format",
        "text",
        "--transforms",
        "jpeg30,rot90",
        "--signals",
        "pdq,pdq-dihedral",
        "--max-images",
        "4",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let header = text.lines().find(|l| l.starts_with("transform")).unwrap();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["transform", "pdq", "pdq-dihedral"]
    );
    let jpeg = text.lines().find(|l| l.starts_with("jpeg30")).unwrap();
    assert_eq!(
        jpeg.split_whitespace().collect::<Vec<_>>(),
        ["jpeg30", "100.0%", "100.0%"]
    );
    assert!(text.lines().any(|l| l.starts_with("rot90")), "{text}");
    // The first four files in path order include the broken one.
    assert!(
        text.contains("3 originals") && text.contains("files skipped: 1"),
        "{text}"
    );
}

#[test]
fn unknown_names_are_refused_by_name() {
    let corpus = corpus().to_str().unwrap();
    for (option, list, unknown) in [
        ("--transforms", "jpeg30,sepia", "sepia"),
        ("--signals", "pdq,pdq-magic", "pdq-magic"),
    ] {
        let output = cordon(&["eval", "--corpus", corpus, option, list]);
        assert!(!output.status.success(), "{option} {list}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(unknown), "{stderr}");
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn thresholds_can_be_set_per_signal_and_bad_ones_are_refused() {
    let corpus = corpus().to_str().unwrap();
    let run = |threshold: &str| {
        cordon(&[
            "eval",
            "--corpus",
            corpus,
            "--signals",
            "pdq,features",
            "--transforms",
            "rot90",
            "--max-images",
            "4",
            "--threshold",
            threshold,
        ])
    };
    let output = run("pdq=256,features=76");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = json_lines(&output);
    let rot90 = |signal: &str| {
        lines
            .iter()
            .find(|l| l["signal"] == signal && l["transform"] == "rot90")
            .unwrap()
            .clone()
    };
    // At 256 bits every pair is within reach: every repost found, and every other
    // original (3 originals: 2 each) a false match.
    assert_eq!(rot90("pdq")["threshold"], 256);
    assert_eq!(rot90("pdq")["recall"], 1.0);
    assert_eq!(rot90("pdq")["false_matches"], 6);
    assert_eq!(rot90("features")["threshold"], 76);

    for (bad, says) in [
        ("features", "write SIGNAL=N"),
        ("features=x", "whole number from 0 to 256"),
        ("features=257", "whole number from 0 to 256"),
        (
            "pdq-trim=20",
            "\"pdq-trim\" is not a measured signal; measured: pdq, features",
        ),
        ("cordon=3", "parts' default thresholds"),
        ("features=70,features=80", "more than one threshold"),
    ] {
        let output = run(bad);
        assert!(!output.status.success(), "{bad}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        // The message quotes the setting at fault (the first of a list).
        let named = bad.split(',').next().unwrap();
        assert!(stderr.contains(named) && stderr.contains(says), "{bad}: {stderr}");
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn an_empty_corpus_is_an_error_naming_the_folder() {
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("notes.txt"), "not an image").unwrap();
    let output = cordon(&["eval", "--corpus", empty.path().to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(empty.path().to_str().unwrap()), "{stderr}");
}

#[test]
fn near_duplicates_in_the_corpus_are_dropped_and_named() {
    // The bridge photo, a smaller copy of it (close by PDQ) and a crop of `c.png` (the
    // same picture by local features): two pictures, not four.
    let dir = tempfile::tempdir().unwrap();
    for (photo, name) in [
        ("misc-images/b.jpg", "a-bridge.jpg"),
        ("bridge-mods/shrink-a-lot.jpg", "b-bridge-small.jpg"),
        ("misc-images/c.png", "c-coaster.png"),
        ("reg-test-input/pen-and-coaster.png", "d-pen-and-coaster.png"),
    ] {
        std::fs::copy(image(photo), dir.path().join(name)).unwrap();
    }
    let (all, stderr) = quick_run(dir.path());
    assert_eq!(
        (&all["originals"], &all["near_duplicates_dropped"]),
        (&2.into(), &2.into())
    );
    for dropped in [
        "b-bridge-small.jpg: a near-duplicate of",
        "d-pen-and-coaster.png: a near-duplicate of",
    ] {
        assert!(stderr.contains(dropped), "{stderr}");
    }
}

/// `cordon eval` on `dir`, PDQ on JPEG reposts only: the summary line and stderr.
fn quick_run(dir: &Path) -> (Value, String) {
    let output = cordon(&[
        "eval",
        "--corpus",
        dir.to_str().unwrap(),
        "--transforms",
        "jpeg30",
        "--signals",
        "pdq",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = json_lines(&output)
        .into_iter()
        .find(|l| l["transform"] == "all")
        .unwrap();
    (summary, String::from_utf8_lossy(&output.stderr).into_owned())
}
