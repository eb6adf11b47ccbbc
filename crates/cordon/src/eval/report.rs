//! How `cordon eval` reports: JSON lines (one per signal and transformation, then one
//! summary per signal; the field names are an interface), a table for people, and an SVG
//! bar chart of recall, written by hand.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use serde::Serialize;

use super::measure::Tally;
use crate::report as out;

/// The name of the row that pools every transformation.
pub const ALL: &str = "all";

/// How one signal did on one transformation (or on all of them).
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub signal: &'static str,
    pub transform: &'static str,
    pub queries: u64,
    /// Share of queries matched to their own original within `threshold`.
    pub recall: f64,
    /// `recall` over only the queries whose original the signal could bank (see
    /// [`Summary::originals_without_hash`]); the same as `recall` when it banked all.
    pub recall_of_hashed: f64,
    /// Pairs of a query and another original within `threshold`.
    pub false_matches: u64,
    /// The signal's threshold (its default unless `--threshold` set it), at which
    /// `recall` and `false_matches` are counted.
    pub threshold: u32,
    /// The largest threshold keeping precision at 99.99% or more; null if none does.
    pub threshold_at_precision: Option<u32>,
    pub recall_at_precision: f64,
}

impl Row {
    /// The row of `tally`, of which `unbanked` queries are reposts of an original the
    /// signal has no bank hash for.
    pub fn new(
        signal: &'static str,
        transform: &'static str,
        threshold: u32,
        tally: &Tally,
        unbanked: u64,
    ) -> Row {
        let hashed = tally.queries.saturating_sub(unbanked);
        Row {
            signal,
            transform,
            queries: tally.queries,
            recall: tally.recall(threshold),
            // A repost of an unbanked original is never found, so every match is counted
            // among the rest.
            recall_of_hashed: match hashed {
                0 => 0.0,
                n => tally.true_within(threshold) as f64 / n as f64,
            },
            false_matches: tally.false_within(threshold),
            threshold,
            threshold_at_precision: tally.threshold_at_precision(),
            recall_at_precision: tally.recall_at_precision(),
        }
    }
}

/// The last line for a signal: its "all" row, the size of the test and its cost.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    #[serde(flatten)]
    pub all: Row,
    pub non_matching_pairs: u64,
    /// Median ms to compute one image's query hashes, on one thread.
    pub ms_per_image: Option<f64>,
    /// Median ms to decode one original file (full size), for scale.
    pub decode_ms_per_image: Option<f64>,
    /// Originals evaluated (after near-duplicates were dropped).
    pub originals: usize,
    pub near_duplicates_dropped: usize,
    /// Originals the signal gives no bank hash (quality too low): their reposts are all
    /// misses, whatever the transformation.
    pub originals_without_hash: usize,
    /// Files that could not be read or decoded.
    pub skipped: usize,
    /// Originals first scaled down to a long side of `max_side`.
    pub downscaled: usize,
    pub max_side: u32,
}

/// One signal's rows, in transformation order, its summary, and its false matches.
pub struct SignalReport {
    pub rows: Vec<Row>,
    pub summary: Summary,
    pub false_matches: Vec<FalseMatch>,
    pub misses: Vec<Miss>,
}

/// A repost its own original's signal did not find (all in the JSON lines; the table names
/// the originals the last signal missed, see [`missed_originals`]).
#[derive(Serialize)]
pub struct Miss {
    pub signal: &'static str,
    pub transform: &'static str,
    pub original: String,
    /// How far the repost was from its original (for local features, 100 minus the
    /// agreeing pairs); `null` when either has no value, so nothing could be compared.
    pub distance: Option<u32>,
}

/// A repost that matched an original it is not a repost of, within the signal's threshold.
#[derive(Serialize)]
pub struct FalseMatch {
    pub signal: &'static str,
    pub transform: &'static str,
    /// The original the query was made from.
    pub repost_of: String,
    /// The original it wrongly matched.
    pub matched: String,
    pub distance: u32,
}

pub fn print_json(reports: &[SignalReport]) -> io::Result<()> {
    for report in reports {
        out::json_lines(&report.rows)?;
        out::json_line(&report.summary)?;
        for false_match in &report.false_matches {
            out::json_line(&serde_json::json!({ "false_match": false_match }))?;
        }
        for miss in &report.misses {
            out::json_line(&serde_json::json!({ "miss": miss }))?;
        }
    }
    Ok(())
}

/// Transformations down, signals across, recall at each signal's own threshold in %,
/// then per-signal totals.
pub fn text_table(reports: &[SignalReport], corpus: &str) -> String {
    let Some(first) = reports.first() else {
        return String::new();
    };
    let s = &first.summary;
    let mut lines = vec![
        format!(
            "cordon eval: {} originals from {corpus} (near-duplicates dropped: {}, files skipped: {}; \
             scaled down to a long side of {} px first: {})",
            s.originals, s.near_duplicates_dropped, s.skipped, s.max_side, s.downscaled
        ),
        format!(
            "recall at each signal's threshold (the `threshold` row), {} queries per transformation",
            s.originals
        ),
        String::new(),
    ];
    let names: Vec<&str> = reports.iter().map(|r| r.summary.all.signal).collect();
    let widths: Vec<usize> = names.iter().map(|n| n.len().max(9)).collect();
    let row = |label: &str, cells: Vec<String>| {
        let mut line = format!("{label:<20}");
        for (cell, width) in cells.iter().zip(&widths) {
            line.push_str(&format!("  {cell:>width$}"));
        }
        line.trim_end().to_string()
    };
    let recall_rows = |recall: fn(&Row) -> f64| -> Vec<String> {
        let mut lines = vec![row("transform", names.iter().map(|n| n.to_string()).collect())];
        for (i, transform_row) in first.rows.iter().enumerate() {
            let cells = reports.iter().map(|r| percent(r.rows.get(i).map_or(0.0, recall)));
            lines.push(row(transform_row.transform, cells.collect()));
        }
        lines.push(row(
            ALL,
            reports.iter().map(|r| percent(recall(&r.summary.all))).collect(),
        ));
        lines
    };
    lines.extend(recall_rows(|row| row.recall));
    let per_signal = |f: &dyn Fn(&Summary) -> String| reports.iter().map(|r| f(&r.summary)).collect();
    lines.push(String::new());
    lines.push(row("threshold", per_signal(&|s| s.all.threshold.to_string())));
    lines.push(row(
        "originals, no hash",
        per_signal(&|s| s.originals_without_hash.to_string()),
    ));
    lines.push(row(
        "false matches",
        per_signal(&|s| format!("{}/{}", s.all.false_matches, s.non_matching_pairs)),
    ));
    lines.push(row(
        "threshold @99.99%",
        per_signal(&|s| {
            s.all
                .threshold_at_precision
                .map_or("-".to_string(), |t| t.to_string())
        }),
    ));
    lines.push(row(
        "recall @99.99%",
        per_signal(&|s| percent(s.all.recall_at_precision)),
    ));
    lines.push(row("ms per image", per_signal(&|s| milliseconds(s.ms_per_image))));
    lines.push(format!(
        "decode ms per image (median, full-size originals): {}",
        milliseconds(s.decode_ms_per_image)
    ));
    if reports.iter().any(|r| r.summary.originals_without_hash > 0) {
        lines.push(String::new());
        lines.push(
            "recall over the originals each signal could bank (reposts of an original it has no \
             hash for left out)"
                .to_string(),
        );
        lines.push(String::new());
        lines.extend(recall_rows(|row| row.recall_of_hashed));
    }
    for report in reports {
        for m in &report.false_matches {
            lines.push(format!(
                "false match ({}, {}): a repost of {} matched {} at distance {}",
                m.signal, m.transform, m.repost_of, m.matched, m.distance
            ));
        }
    }
    if let Some(last) = reports.last() {
        lines.extend(missed_originals(last, corpus));
    }
    lines.join("\n")
}

/// Originals named under "missed by" at most; the JSON lines list every miss.
const MISSED_NAMED: usize = 25;

/// The originals the last column's signal (every signal together, unless `--signals` said
/// otherwise) missed reposts of, most missed first, each with the transformations: where
/// a corpus's gaps are, which the percentages do not say.
fn missed_originals(report: &SignalReport, corpus: &str) -> Vec<String> {
    let mut by_original: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for miss in &report.misses {
        by_original
            .entry(&miss.original)
            .or_default()
            .push(miss.transform);
    }
    if by_original.is_empty() {
        return Vec::new();
    }
    let mut missed: Vec<(&str, Vec<&str>)> = by_original.into_iter().collect();
    missed.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
    let mut lines = vec![
        String::new(),
        format!(
            "missed by {} ({} original{}, most missed first):",
            report.summary.all.signal,
            missed.len(),
            if missed.len() == 1 { "" } else { "s" }
        ),
    ];
    for (original, transforms) in missed.iter().take(MISSED_NAMED) {
        let name = Path::new(original)
            .strip_prefix(corpus)
            .map_or(original.to_string(), |inside| inside.display().to_string());
        let which = if transforms.len() == report.rows.len() {
            "every transformation".to_string()
        } else {
            transforms.join(", ")
        };
        lines.push(format!("  {name}: {which}"));
    }
    if missed.len() > MISSED_NAMED {
        lines.push(format!(
            "  and {} more (the JSON lines list every miss)",
            missed.len() - MISSED_NAMED
        ));
    }
    lines
}

fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

fn milliseconds(ms: Option<f64>) -> String {
    ms.map_or("-".to_string(), |ms| format!("{ms:.2}"))
}

/// Colours for the signals' bars, told apart by most readers including the colour-blind
/// (Tableau 10); they repeat after ten signals.
const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
    "#bab0ac",
];

/// Layout of the chart, in SVG user units.
const PLOT_HEIGHT: f64 = 320.0;
const MARGIN_LEFT: f64 = 70.0;
const MARGIN_RIGHT: f64 = 20.0;
const MARGIN_TOP: f64 = 70.0;
const MARGIN_BOTTOM: f64 = 100.0;

/// A grouped bar chart of recall at each signal's threshold: one group per transformation
/// (and one for all of them), one bar per signal, a legend naming the signals.
pub fn svg_chart(reports: &[SignalReport], title: &str) -> String {
    let Some(first) = reports.first() else {
        return String::new();
    };
    let mut groups: Vec<&str> = first.rows.iter().map(|r| r.transform).collect();
    groups.push(ALL);
    let recall = |signal: &SignalReport, group: usize| {
        signal
            .rows
            .get(group)
            .map_or(signal.summary.all.recall, |row| row.recall)
    };
    let bar_width = 12.0;
    let group_width = bar_width * reports.len() as f64 + 12.0;
    let legend: Vec<String> = reports
        .iter()
        .map(|r| format!("{} (threshold {})", r.summary.all.signal, r.summary.all.threshold))
        .collect();
    let legend_width: f64 = legend.iter().map(|label| legend_entry_width(label)).sum();
    let plot_width = (group_width * groups.len() as f64)
        .max(text_width(title, 14.0) - MARGIN_LEFT)
        .max(legend_width);
    let width = MARGIN_LEFT + plot_width + MARGIN_RIGHT;
    let height = MARGIN_TOP + PLOT_HEIGHT + MARGIN_BOTTOM;
    let bottom = MARGIN_TOP + PLOT_HEIGHT;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{MARGIN_LEFT}\" y=\"22\" font-size=\"14\" font-weight=\"bold\">{}</text>\n",
        escape(title)
    );
    for percent in (0..=100).step_by(20) {
        let y = bottom - PLOT_HEIGHT * f64::from(percent) / 100.0;
        svg.push_str(&format!(
            "<line x1=\"{MARGIN_LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{percent}%</text>\n",
            width - MARGIN_RIGHT,
            MARGIN_LEFT - 6.0,
            y + 4.0
        ));
    }
    for (g, group) in groups.iter().enumerate() {
        let left = MARGIN_LEFT + group_width * g as f64 + 6.0;
        for (s, signal) in reports.iter().enumerate() {
            let value = recall(signal, g);
            let bar_height = PLOT_HEIGHT * value;
            svg.push_str(&format!(
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{bar_width}\" height=\"{bar_height:.1}\" fill=\"{}\">\
                 <title>{} on {}: {:.1}%</title></rect>\n",
                left + bar_width * s as f64,
                bottom - bar_height,
                PALETTE[s % PALETTE.len()],
                escape(signal.summary.all.signal),
                escape(group),
                value * 100.0
            ));
        }
        let label_x = left + group_width / 2.0 - 6.0;
        svg.push_str(&format!(
            "<text x=\"{label_x:.1}\" y=\"{:.1}\" text-anchor=\"end\" transform=\"rotate(-45 {label_x:.1} {:.1})\">{}</text>\n",
            bottom + 14.0,
            bottom + 14.0,
            escape(group)
        ));
    }
    svg.push_str(&format!(
        "<line x1=\"{MARGIN_LEFT}\" y1=\"{bottom}\" x2=\"{:.1}\" y2=\"{bottom}\" stroke=\"black\"/>\n\
         <line x1=\"{MARGIN_LEFT}\" y1=\"{MARGIN_TOP}\" x2=\"{MARGIN_LEFT}\" y2=\"{bottom}\" stroke=\"black\"/>\n\
         <text transform=\"translate(18 {:.1}) rotate(-90)\" text-anchor=\"middle\">recall at each signal's threshold</text>\n\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">transformation</text>\n",
        width - MARGIN_RIGHT,
        MARGIN_TOP + PLOT_HEIGHT / 2.0,
        MARGIN_LEFT + (width - MARGIN_LEFT - MARGIN_RIGHT) / 2.0,
        height - 8.0
    ));
    let mut legend_x = MARGIN_LEFT;
    for (s, label) in legend.iter().enumerate() {
        svg.push_str(&format!(
            "<rect x=\"{legend_x:.1}\" y=\"38\" width=\"12\" height=\"12\" fill=\"{}\"/>\n\
             <text x=\"{:.1}\" y=\"48\">{}</text>\n",
            PALETTE[s % PALETTE.len()],
            legend_x + 16.0,
            escape(label)
        ));
        legend_x += legend_entry_width(label);
    }
    svg.push_str("</svg>\n");
    svg
}

/// Roughly how wide `text` is in a sans-serif font of `size`: there is no font to measure
/// with, and an average glyph is a little over half as wide as the font is tall.
fn text_width(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * size * 0.6
}

/// A legend entry: swatch, gap, label, space before the next.
fn legend_entry_width(label: &str) -> f64 {
    16.0 + text_width(label, 11.0) + 20.0
}

/// Text made safe for SVG element content and attribute values.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(signal: &'static str, recalls: &[f64]) -> SignalReport {
        let row = |transform: &'static str, recall: f64| Row {
            signal,
            transform,
            queries: 10,
            recall,
            recall_of_hashed: recall,
            false_matches: 0,
            threshold: 31,
            threshold_at_precision: Some(40),
            recall_at_precision: recall,
        };
        let names = ["jpeg30", "rot90"];
        SignalReport {
            rows: names.iter().zip(recalls).map(|(n, r)| row(n, *r)).collect(),
            summary: Summary {
                all: row(ALL, 0.5),
                non_matching_pairs: 180,
                ms_per_image: Some(2.5),
                decode_ms_per_image: Some(10.0),
                originals: 10,
                near_duplicates_dropped: 1,
                originals_without_hash: 2,
                skipped: 0,
                downscaled: 3,
                max_side: 1600,
            },
            false_matches: Vec::new(),
            misses: Vec::new(),
        }
    }

    #[test]
    fn the_summary_line_holds_the_all_row_flattened() {
        let line = serde_json::to_value(&report("pdq", &[1.0, 0.0]).summary).unwrap();
        for field in [
            "signal",
            "transform",
            "queries",
            "recall",
            "recall_of_hashed",
            "false_matches",
            "threshold",
            "threshold_at_precision",
            "recall_at_precision",
            "non_matching_pairs",
            "ms_per_image",
            "decode_ms_per_image",
            "originals",
            "near_duplicates_dropped",
            "originals_without_hash",
            "skipped",
        ] {
            assert!(line.get(field).is_some(), "{field} missing from {line}");
        }
        assert_eq!(line["transform"], "all");
    }

    #[test]
    fn the_table_has_a_row_per_transform_and_a_column_per_signal() {
        let table = text_table(
            &[report("pdq", &[1.0, 0.05]), report("pdq-dihedral", &[1.0, 1.0])],
            "dir",
        );
        let row = table.lines().find(|l| l.starts_with("rot90")).unwrap();
        assert_eq!(
            row.split_whitespace().collect::<Vec<_>>(),
            ["rot90", "5.0%", "100.0%"]
        );
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("transform") && l.ends_with("pdq-dihedral"))
        );
    }

    #[test]
    fn recall_of_hashed_leaves_out_the_reposts_of_unbanked_originals() {
        let mut tally = Tally::default();
        // Two found, one too far, one repost of an original without a bank hash.
        [Some(3), Some(10), Some(40), None]
            .into_iter()
            .for_each(|d| tally.add_true(d));
        let row = Row::new("pdq", "jpeg30", 31, &tally, 1);
        assert_eq!(row.recall, 0.5);
        assert!((row.recall_of_hashed - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(Row::new("pdq", "jpeg30", 31, &tally, 0).recall_of_hashed, 0.5);
        assert_eq!(Row::new("pdq", "jpeg30", 31, &tally, 4).recall_of_hashed, 0.0);
    }

    #[test]
    fn the_table_adds_recall_over_banked_originals_only_when_some_are_not() {
        let heading = "recall over the originals each signal could bank";
        let mut banked_all = report("pdq", &[1.0, 0.5]);
        banked_all.summary.originals_without_hash = 0;
        assert!(!text_table(&[banked_all], "dir").contains(heading));
        let mut missing = report("pdq", &[1.0, 0.5]);
        missing.rows[1].recall_of_hashed = 0.625;
        let table = text_table(&[missing], "dir");
        let after = table.split(heading).nth(1).unwrap();
        let row = after.lines().find(|l| l.starts_with("rot90")).unwrap();
        assert_eq!(row.split_whitespace().collect::<Vec<_>>(), ["rot90", "62.5%"]);
    }

    #[test]
    fn the_table_names_the_originals_the_last_signal_missed_most_missed_first() {
        let miss = |signal, transform, original: &str| Miss {
            signal,
            transform,
            original: format!("/corpus/{original}"),
            distance: None,
        };
        let mut pdq = report("pdq", &[0.5, 0.5]);
        pdq.misses = vec![miss("pdq", "rot90", "only-pdq.jpg")];
        let mut every = report("cordon", &[0.5, 0.5]);
        every.misses = vec![
            miss("cordon", "rot90", "b.png"),
            miss("cordon", "jpeg30", "a.png"),
            miss("cordon", "rot90", "a.png"),
        ];
        let table = text_table(&[pdq, every], "/corpus");
        let missed: Vec<&str> = table
            .lines()
            .skip_while(|l| !l.starts_with("missed by"))
            .collect();
        assert_eq!(
            missed,
            [
                "missed by cordon (2 originals, most missed first):",
                "  a.png: every transformation",
                "  b.png: rot90",
            ]
        );
        assert!(!text_table(&[report("cordon", &[1.0, 1.0])], "/corpus").contains("missed by"));
    }

    #[test]
    fn the_chart_has_a_bar_per_signal_and_group_and_escapes_names() {
        let svg = svg_chart(&[report("pdq", &[1.0, 0.0]), report("a<b", &[0.5, 0.5])], "t & t");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        // Two signals times three groups (two transforms and "all"), plus the background
        // and two legend swatches.
        assert_eq!(svg.matches("<rect").count(), 6 + 1 + 2);
        assert!(svg.contains("a&lt;b") && svg.contains("t &amp; t") && !svg.contains("a<b"));
    }
}
