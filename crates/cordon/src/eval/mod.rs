//! `cordon eval`: how well each image signal matches reposts, per transformation.
//!
//! Every image of a corpus is an original (a bank entry); each transformation of each
//! original is a query. A true pair is a query and its own original; every other pair is
//! non-matching, so the corpus is first cleared of near-duplicates. For each signal and
//! transformation the run reports recall and false matches at the signal's default
//! threshold (or one `--threshold` sets), and the largest threshold that keeps precision
//! at 99.99%. See `bench/eval/README.md` for the corpora and how to read the numbers.

mod font;
mod measure;
mod report;
mod signals;
mod transforms;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use cordon_signals::features::{self, FeatureSet};
use cordon_signals::{DecodeLimits, DecodedImage, PdqHash, PdqHasher};
use rayon::prelude::*;

use crate::inputs::Input;
use crate::media;
use crate::report::{self as output, Format};
use measure::Tally;
use report::{FalseMatch, Miss, Row, SignalReport, Summary};
use signals::{EvalSignal, SignalValue};
use transforms::Transform;

#[derive(Args)]
pub struct EvalArgs {
    /// Folder of original images, searched recursively for .jpg, .jpeg, .png and .webp
    /// files (hidden files and folders are skipped).
    #[arg(long, value_name = "DIR")]
    corpus: PathBuf,
    /// Transformations to apply, comma-separated [default: all]: jpeg30, half, thumb320,
    /// crop5, crop10, crop20, border, frame, caption, logo, grey, bright, contrast, mirror,
    /// rot90, rot180, tilt3, tilt-3, screenshot, text.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    transforms: Vec<String>,
    /// Signals to measure, comma-separated [default: all]: pdq, pdq-dihedral, pdq-trim,
    /// features, cordon.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    signals: Vec<String>,
    /// Measure recall and false matches at these thresholds instead of the defaults,
    /// comma-separated SIGNAL=N: `features=76` asks for 24 agreeing keypoint pairs (a
    /// rule's `min_keypoint_pairs`), `pdq=20` for at most 20 bits. Not for `cordon`, which
    /// matches by its parts' defaults.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    threshold: Vec<String>,
    /// Also write an SVG bar chart of recall by transformation to PATH.
    #[arg(long, value_name = "PATH")]
    chart: Option<PathBuf>,
    /// Also write the text table to PATH (whatever `--format` prints).
    #[arg(long, value_name = "PATH")]
    table: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    format: Format,
    /// Worker threads [default: one per core].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
    /// Evaluate only the first N images, in path order.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_images: Option<u64>,
}

/// Originals with a longer side are scaled down to it first: the signals see reposts,
/// which are rarely larger, and the run stays fast.
const MAX_SIDE: u32 = 1600;

/// Originals whose plain PDQ hashes are this close are one picture, as matching sees it.
const NEAR_DUPLICATE_BITS: u32 = 31;

/// What is known of one original once it has been hashed and transformed.
struct Original {
    path: PathBuf,
    /// Plain PDQ and local features, for finding near-duplicates.
    plain: PdqHash,
    features: FeatureSet,
    downscaled: bool,
    decode_ms: f64,
    /// Per signal, what the bank holds.
    bank: Vec<SignalValue>,
    /// Per transformation, per signal, what is looked up for the repost.
    queries: Vec<Vec<SignalValue>>,
    /// Per signal, the ms its query hashes of this original took.
    hash_ms: Vec<f64>,
}

pub fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let transforms = select(&args.transforms, "transform", &Transform::ALL, Transform::name)?;
    let all_signals = signals::all_signals();
    let known: Vec<&dyn EvalSignal> = all_signals.iter().map(|s| s.as_ref()).collect();
    let signals = select(&args.signals, "signal", &known, |s| s.name())?;
    let thresholds = thresholds(&args.threshold, &signals)?;
    let (mut files, unlisted) = corpus_files(&args.corpus)?;
    if let Some(max) = args.max_images {
        files.truncate(usize::try_from(max).unwrap_or(usize::MAX));
    }
    if files.is_empty() {
        bail!(
            "no images (.jpg, .jpeg, .png, .webp) under {}",
            args.corpus.display()
        );
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(media::thread_count(args.threads))
        .build()
        .context("starting worker threads")?;
    let (originals, skipped) = evaluate_corpus(&files, &pool, &transforms, &signals);
    let (originals, dropped) = drop_near_duplicates(originals);
    if originals.is_empty() {
        bail!("no image under {} could be decoded", args.corpus.display());
    }

    let counts = Counts {
        originals: originals.len(),
        near_duplicates_dropped: dropped,
        skipped: skipped + unlisted,
    };
    let reports: Vec<SignalReport> = pool.install(|| {
        signals
            .par_iter()
            .enumerate()
            .map(|(s, signal)| signal_report(&originals, s, *signal, thresholds[s], &transforms, counts))
            .collect()
    });

    write_results(&args, &reports, originals.len())?;
    Ok(ExitCode::SUCCESS)
}

/// Evaluates every file on the pool, with a progress bar; returns the originals in path
/// order and how many files were skipped (each named on stderr).
fn evaluate_corpus(
    files: &[PathBuf],
    pool: &rayon::ThreadPool,
    transforms: &[Transform],
    signals: &[&dyn EvalSignal],
) -> (Vec<Original>, usize) {
    let bar = output::progress(files.len(), "originals");
    let results: Vec<anyhow::Result<Original>> = pool.install(|| {
        files
            .par_iter()
            .enumerate()
            .map(|(index, path)| {
                let result = evaluate_original(path, index, transforms, signals);
                bar.inc(1);
                result
            })
            .collect()
    });
    bar.finish_and_clear();
    let mut skipped = 0;
    let mut originals = Vec::with_capacity(files.len());
    for (path, result) in files.iter().zip(results) {
        match result {
            Ok(original) => originals.push(original),
            Err(error) => {
                eprintln!("cordon eval: skipped {}: {error:#}", path.display());
                skipped += 1;
            }
        }
    }
    (originals, skipped)
}

/// The lines or the table on stdout, and the chart if one was asked for.
fn write_results(args: &EvalArgs, reports: &[SignalReport], originals: usize) -> anyhow::Result<()> {
    let table = || report::text_table(reports, &args.corpus.display().to_string());
    match args.format {
        Format::Json => report::print_json(reports).context("writing results")?,
        Format::Text => output::text_line(&table()).context("writing results")?,
    }
    if let Some(path) = &args.table {
        std::fs::write(path, table() + "\n")
            .with_context(|| format!("writing the table to {}", path.display()))?;
    }
    if let Some(chart) = &args.chart {
        let title = format!(
            "Recall of reposts by transformation: {originals} originals from {}",
            args.corpus.display()
        );
        std::fs::write(chart, report::svg_chart(reports, &title))
            .with_context(|| format!("writing the chart to {}", chart.display()))?;
    }
    Ok(())
}

/// The named items of `all`, in the order given, or every item when no name is given; an
/// unknown name is an error that names it and lists the known ones.
fn select<T: Copy>(
    names: &[String],
    what: &str,
    all: &[T],
    name_of: impl Fn(T) -> &'static str,
) -> anyhow::Result<Vec<T>> {
    if names.is_empty() {
        return Ok(all.to_vec());
    }
    names
        .iter()
        .map(|name| {
            let name = name.trim();
            all.iter()
                .copied()
                .find(|&item| name_of(item) == name)
                .with_context(|| {
                    let known: Vec<&str> = all.iter().map(|&item| name_of(item)).collect();
                    format!("unknown {what} {name:?}; known: {}", known.join(", "))
                })
        })
        .collect()
}

/// Each selected signal's threshold: its default, or what `--threshold SIGNAL=N` says.
fn thresholds(overrides: &[String], signals: &[&dyn EvalSignal]) -> anyhow::Result<Vec<u32>> {
    let mut thresholds: Vec<u32> = signals.iter().map(|s| s.default_threshold()).collect();
    // The setting that named each signal first, so that a second one is refused by it.
    let mut named_first: HashMap<&str, &String> = HashMap::new();
    for setting in overrides {
        let (name, value) = setting
            .trim()
            .split_once('=')
            .with_context(|| format!("--threshold {setting:?}: write SIGNAL=N, e.g. features=76"))?;
        if name == "cordon" {
            bail!("--threshold {setting:?}: `cordon` matches by each of its parts' default thresholds");
        }
        if let Some(first) = named_first.insert(name, setting) {
            bail!("--threshold {first:?}: {name:?} is given more than one threshold");
        }
        let Some(s) = signals.iter().position(|signal| signal.name() == name) else {
            let known: Vec<&str> = signals.iter().map(|s| s.name()).collect();
            bail!(
                "--threshold {setting:?}: {name:?} is not a measured signal; measured: {}",
                known.join(", ")
            );
        };
        thresholds[s] = value
            .parse()
            .ok()
            .filter(|&n| n <= measure::MAX_DISTANCE)
            .with_context(|| {
                format!(
                    "--threshold {setting:?}: the threshold must be a whole number from 0 to {}",
                    measure::MAX_DISTANCE
                )
            })?;
    }
    Ok(thresholds)
}

/// Image files under `dir` in path order, recognised by extension, and how many entries
/// could not be listed. Hidden files and folders are skipped: the corpus scripts keep
/// their downloaded packages in `.debs`.
fn corpus_files(dir: &Path) -> anyhow::Result<(Vec<PathBuf>, usize)> {
    if !dir.is_dir() {
        bail!("{}: not a folder", dir.display());
    }
    let hidden =
        |entry: &walkdir::DirEntry| entry.depth() > 0 && entry.file_name().to_string_lossy().starts_with('.');
    let mut files = Vec::new();
    let mut unlisted = 0;
    for entry in walkdir::WalkDir::new(dir)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| !hidden(entry))
    {
        match entry {
            Ok(entry) if entry.file_type().is_file() && has_image_extension(entry.path()) => {
                files.push(entry.into_path())
            }
            Ok(_) => {}
            // A folder that cannot be listed hides its images: say so, go on with the rest.
            Err(error) => {
                eprintln!("cordon eval: skipped {error}");
                unlisted += 1;
            }
        }
    }
    Ok((files, unlisted))
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["jpg", "jpeg", "png", "webp"].contains(&e.to_ascii_lowercase().as_str()))
}

/// Decodes one original, hashes it for every signal's bank, and hashes every
/// transformation of it for every signal; the pixels are dropped at the end, so memory
/// holds hashes, not images.
fn evaluate_original(
    path: &Path,
    index: usize,
    transforms: &[Transform],
    signals: &[&dyn EvalSignal],
) -> anyhow::Result<Original> {
    let limits = DecodeLimits::default();
    let bytes = Input::File(path.to_path_buf()).read(limits.max_bytes)?;
    let started = Instant::now();
    let decoded = cordon_signals::decode(&bytes, &limits)?;
    let decode_ms = started.elapsed().as_secs_f64() * 1e3;
    drop(bytes);
    let (rgb, bank_image, downscaled) = prepare(decoded)?;
    // A picture drawn in its opacity alone (a white or black layer, say) re-saves as one
    // plain colour: its reposts would show nothing any signal could recognise, nor any
    // person, so it is no test of matching.
    if transforms::is_one_colour(&rgb) {
        bail!("its pixels are one plain colour once its opacity is dropped: a repost of it shows nothing");
    }
    let plain = PdqHasher::default().hash(&bank_image).hash;
    let features = features::extract(&bank_image);
    let bank = signals.iter().map(|s| s.bank_value(&bank_image)).collect();
    let hash_ms = signals
        .iter()
        .map(|s| {
            let started = Instant::now();
            let hashes = s.query_value(&bank_image);
            let ms = started.elapsed().as_secs_f64() * 1e3;
            drop(hashes);
            ms
        })
        .collect();
    drop(bank_image);
    let queries = transforms
        .iter()
        .map(|transform| {
            let repost = transform
                .apply(&rgb, index)
                .with_context(|| format!("transformation {}", transform.name()))?;
            Ok(signals.iter().map(|s| s.query_value(&repost)).collect())
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(Original {
        path: path.to_path_buf(),
        plain,
        features,
        downscaled,
        decode_ms,
        bank,
        queries,
        hash_ms,
    })
}

/// The original as RGB for transforming and as the image the bank hashes, scaled down to
/// [`MAX_SIDE`] if larger; a smaller one is banked exactly as decoded.
fn prepare(decoded: DecodedImage) -> anyhow::Result<(image::RgbImage, DecodedImage, bool)> {
    // Reposts are made of the pixels without their opacity, as Pillow's convert("RGB")
    // (HMA's pipeline) re-saves a picture with transparency; over a white or black page it
    // could show another picture, or none (a glow drawn for a dark screen vanishes on
    // white). The bank gets the file as it is, transparency and all.
    let rgb = transforms::to_rgb(&decoded)?;
    if decoded.width().max(decoded.height()) <= MAX_SIDE {
        return Ok((rgb, decoded, false));
    }
    let size = transforms::fit_long_side(rgb.dimensions(), MAX_SIDE);
    let smaller = transforms::resize(&rgb, size);
    let mut bank_image = transforms::to_decoded(smaller.clone())?;
    if let Some(alpha) = decoded.alpha() {
        let plane = image::GrayImage::from_raw(decoded.width(), decoded.height(), alpha.to_vec())
            .context("the opacity does not fit the image")?;
        let smaller = image::imageops::resize(&plane, size.0, size.1, image::imageops::FilterType::Triangle);
        bank_image = bank_image.with_alpha(smaller.into_raw())?;
    }
    drop(decoded);
    Ok((smaller, bank_image, true))
}

/// Keeps the first of every group of near-duplicates, in path order, and says on stderr
/// which were dropped. Two originals are near-duplicates when they are close by PDQ or
/// verify by local features (the same artwork cut to another aspect ratio is the same
/// picture), and groups are closed under that: if a and b are, and b and c are, a and c
/// are one picture too, whatever their order.
fn drop_near_duplicates(originals: Vec<Original>) -> (Vec<Original>, usize) {
    let n = originals.len();
    // Pairs are made as they are compared, never held: a list of them would take 16 bytes
    // for each of n²/2 pairs (800 MB for 10,000 originals).
    let links: Vec<(usize, usize, String)> = (0..n)
        .into_par_iter()
        .flat_map_iter(|i| {
            let originals = &originals;
            (0..i).filter_map(move |k| same_picture(&originals[k], &originals[i]).map(|why| (k, i, why)))
        })
        .collect();
    // Union-find, rooted at the group's first original.
    let mut root: Vec<usize> = (0..n).collect();
    fn find(root: &mut [usize], mut i: usize) -> usize {
        while root[i] != i {
            root[i] = root[root[i]];
            i = root[i];
        }
        i
    }
    for (k, i, _) in &links {
        let (a, b) = (find(&mut root, *k), find(&mut root, *i));
        root[a.max(b)] = a.min(b);
    }
    let first: Vec<usize> = (0..n).map(|i| find(&mut root, i)).collect();
    let mut told = vec![false; n];
    for (k, i, why) in &links {
        if first[*i] != *i && !std::mem::replace(&mut told[*i], true) {
            eprintln!(
                "cordon eval: dropped {}: a near-duplicate of {} ({why})",
                originals[*i].path.display(),
                originals[*k].path.display()
            );
        }
    }
    let kept: Vec<Original> = originals
        .into_iter()
        .enumerate()
        .filter(|(i, _)| first[*i] == *i)
        .map(|(_, original)| original)
        .collect();
    let dropped = n - kept.len();
    (kept, dropped)
}

/// Why two originals are one picture, if they are.
fn same_picture(a: &Original, b: &Original) -> Option<String> {
    let distance = a.plain.distance(&b.plain);
    if distance <= NEAR_DUPLICATE_BITS {
        return Some(format!("PDQ {distance} bits apart"));
    }
    let inliers = features::verify(&a.features, &b.features)
        .inliers
        .max(features::verify(&b.features, &a.features).inliers);
    (inliers >= features::MIN_INLIERS).then(|| format!("{inliers} keypoint pairs agree"))
}

/// Sizes reported alongside every signal.
#[derive(Clone, Copy)]
struct Counts {
    originals: usize,
    near_duplicates_dropped: usize,
    skipped: usize,
}

/// One signal's rows and summary from the hashes of every original and repost.
fn signal_report(
    originals: &[Original],
    s: usize,
    signal: &dyn EvalSignal,
    threshold: u32,
    transforms: &[Transform],
    counts: Counts,
) -> SignalReport {
    let bank: Vec<&SignalValue> = originals.iter().map(|o| &o.bank[s]).collect();
    let unbanked = bank.iter().filter(|value| value.is_empty()).count();
    let mut all = Tally::default();
    let mut rows = Vec::with_capacity(transforms.len());
    let mut false_matches = Vec::new();
    let mut misses = Vec::new();
    for (t, transform) in transforms.iter().enumerate() {
        let queries: Vec<&SignalValue> = originals.iter().map(|o| &o.queries[t][s]).collect();
        let tally = measure::tally(&bank, &queries, SignalValue::distance, threshold);
        for &(original, distance) in &tally.misses {
            misses.push(Miss {
                signal: signal.name(),
                transform: transform.name(),
                original: originals[original].path.display().to_string(),
                distance,
            });
        }
        for &(query, matched, distance) in &tally.false_matches {
            false_matches.push(FalseMatch {
                signal: signal.name(),
                transform: transform.name(),
                repost_of: originals[query].path.display().to_string(),
                matched: originals[matched].path.display().to_string(),
                distance,
            });
        }
        rows.push(Row::new(
            signal.name(),
            transform.name(),
            threshold,
            &tally,
            unbanked as u64,
        ));
        all.merge(&tally);
    }
    let hash_ms: Vec<f64> = originals.iter().map(|o| o.hash_ms[s]).collect();
    let decode_ms: Vec<f64> = originals.iter().map(|o| o.decode_ms).collect();
    let summary = Summary {
        all: Row::new(
            signal.name(),
            report::ALL,
            threshold,
            &all,
            (unbanked * transforms.len()) as u64,
        ),
        non_matching_pairs: all.non_matching_pairs,
        ms_per_image: measure::median(&hash_ms).map(round_ms),
        decode_ms_per_image: measure::median(&decode_ms).map(round_ms),
        originals: counts.originals,
        near_duplicates_dropped: counts.near_duplicates_dropped,
        originals_without_hash: unbanked,
        skipped: counts.skipped,
        downscaled: originals.iter().filter(|o| o.downscaled).count(),
        max_side: MAX_SIDE,
    };
    SignalReport {
        rows,
        summary,
        false_matches,
        misses,
    }
}

/// Microseconds are noise at this scale.
fn round_ms(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}
