//! PDQ against the reference's own outputs (`shared/testdata/pdq-reference`): never
//! against values Cordon computed itself.

use crate::common::{decode_file, hash, histogram, read_csv};
use cordon_signals::{Dihedral, PdqFamily, PdqHasher};

/// The reference's column names for the eight dihedral hashes, in Cordon's order.
const DIHEDRAL_COLUMNS: [(&str, Dihedral); 8] = [
    ("orig", Dihedral::Original),
    ("rot90", Dihedral::Rotate90),
    ("rot180", Dihedral::Rotate180),
    ("rot270", Dihedral::Rotate270),
    ("flipx", Dihedral::FlipX),
    ("flipy", Dihedral::FlipY),
    ("flipplus1", Dihedral::FlipPlus1),
    ("flipminus1", Dihedral::FlipMinus1),
];

/// Decoder-independent vectors: the exact pixels the reference hashed, stored losslessly.
/// Both families must give the hash and the quality bit for bit.
fn assert_exact_on_decoded(folder: &str, families: &[PdqFamily]) {
    let rows = read_csv(&format!("{folder}/expected.csv"));
    assert!(rows.len() >= 8, "{folder}: only {} vectors", rows.len());
    for family in families {
        let hasher = PdqHasher::new(*family);
        for row in &rows {
            let image = decode_file(&format!("{folder}/{}", row["file"]));
            let digest = hasher.hash(&image);
            assert_eq!(
                digest.hash,
                hash(&row["hash"]),
                "{folder}/{} ({family:?})",
                row["file"]
            );
            assert_eq!(
                digest.quality.to_string(),
                row["quality"],
                "{folder}/{} quality ({family:?})",
                row["file"]
            );
        }
    }
}

#[test]
fn bit_exact_on_the_cli_family_pixel_vectors() {
    // At most 512x512, so both families hash these pixels alike.
    assert_exact_on_decoded("decoded512", &[PdqFamily::Cli512, PdqFamily::FullRes]);
}

#[test]
fn bit_exact_on_the_full_resolution_pixel_vectors() {
    assert_exact_on_decoded("decodedfull", &[PdqFamily::FullRes]);
}

/// The reference images through Cordon's own decoders, against the full-resolution family
/// (PyPI `pdqhash` on Pillow's pixels, what HMA computes): every dihedral hash within 4
/// bits, exact wherever the pixels are libjpeg-turbo's (JPEG) or lossless (PNG).
#[test]
fn full_resolution_family_on_the_reference_images() {
    let hasher = PdqHasher::new(PdqFamily::FullRes);
    let mut distances = Vec::new();
    let mut inexact = Vec::new();
    for row in read_csv("expected/core-fullres-dihedral.csv") {
        let path = &row["path"];
        let image = decode_file(&format!("images/{path}"));
        let hashes = hasher.hash_dihedral(&image);
        assert_eq!(hashes.quality.to_string(), row["quality"], "{path} quality");
        let lossless_or_turbo = path.ends_with(".jpg") || path.ends_with(".png");
        for (column, variant) in DIHEDRAL_COLUMNS {
            let d = hashes.get(variant).distance(&hash(&row[column]));
            distances.push(d);
            assert!(d <= 4, "{path} {column}: {d} bits from the reference");
            if lossless_or_turbo {
                assert_eq!(
                    d, 0,
                    "{path} {column}: decoded with libjpeg-turbo or losslessly, must be exact"
                );
            } else if d > 0 {
                inexact.push(format!("{path} {column} {d}"));
            }
        }
    }
    assert_eq!(distances.len(), 50 * 8);
    println!(
        "full-res family, 50 images x 8 dihedral hashes: {}",
        histogram(&distances)
    );
    println!("not bit-exact (decoder differs from the reference's): {inexact:?}");
}

/// `core-fullres.csv` agrees with the dihedral file's first column and gives the sizes.
#[test]
fn full_resolution_hash_and_size_of_every_reference_image() {
    let hasher = PdqHasher::new(PdqFamily::FullRes);
    for row in read_csv("expected/core-fullres.csv") {
        let path = &row["path"];
        let image = decode_file(&format!("images/{path}"));
        assert_eq!(
            format!("{}x{}", image.width(), image.height()),
            row["size"],
            "{path}"
        );
        let digest = hasher.hash(&image);
        assert!(digest.hash.distance(&hash(&row["hash"])) <= 4, "{path}");
        assert_eq!(digest.quality.to_string(), row["quality"], "{path}");
    }
}

/// The C++ command-line family (`--pdq-family cli512`) against `pdq-photo-hasher` itself.
/// It decodes through ImageMagick, so it is exact wherever ImageMagick's pixels equal
/// libjpeg-turbo's or the lossless ones; CMYK and WebP colour conversions differ.
#[test]
fn cli512_family_on_the_reference_images() {
    let hasher = PdqHasher::new(PdqFamily::Cli512);
    let mut distances = Vec::new();
    for row in read_csv("expected/pdq-photo-hasher-dihedral.csv") {
        let path = &row["path"];
        let image = decode_file(&format!("images/{path}"));
        let hashes = hasher.hash_dihedral(&image);
        let same_pixels = (path.ends_with(".jpg") && !path.contains("CMYK")) || path.ends_with(".png");
        for (column, variant) in DIHEDRAL_COLUMNS {
            let d = hashes.get(variant).distance(&hash(&row[column]));
            distances.push(d);
            assert!(d <= 4, "{path} {column}: {d} bits from pdq-photo-hasher");
            if same_pixels {
                assert_eq!(d, 0, "{path} {column}");
                assert_eq!(hashes.quality.to_string(), row["quality"], "{path} quality");
            }
        }
    }
    println!(
        "cli512 family, 50 images x 8 dihedral hashes: {}",
        histogram(&distances)
    );
}

/// Hashes hard-coded in upstream tests (Java, the Rust crate's corrected values) for the
/// full-resolution family.
#[test]
fn upstream_embedded_full_resolution_values() {
    let hasher = PdqHasher::new(PdqFamily::FullRes);
    let mut checked = 0;
    for row in read_csv("expected/upstream-embedded.csv") {
        if row.get("dist_to_expected_core-fullres").map(String::as_str) != Some("0") {
            continue;
        }
        let image = decode_file(&format!("images/{}", row["image_path"]));
        assert_eq!(
            hasher.hash(&image).hash,
            hash(&row["hash"]),
            "{}",
            row["image_path"]
        );
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} upstream values checked");
}

/// Dihedral consistency: hashing the rotated and mirrored files (`dih/bridge-*`) gives,
/// within a few bits, the variant derived from the original's DCT.
#[test]
fn derived_dihedral_hashes_match_hashes_of_transformed_files() {
    let hasher = PdqHasher::new(PdqFamily::FullRes);
    let original = hasher.hash_dihedral(&decode_file("images/reg-test-input/dih/bridge-1-original.jpg"));
    let files = [
        ("bridge-2-rotate-90.jpg", Dihedral::Rotate90),
        ("bridge-3-rotate-180.jpg", Dihedral::Rotate180),
        ("bridge-4-rotate-270.jpg", Dihedral::Rotate270),
        ("bridge-5-flipx.jpg", Dihedral::FlipX),
        ("bridge-6-flipy.jpg", Dihedral::FlipY),
        ("bridge-7-flip-plus-1.jpg", Dihedral::FlipPlus1),
        ("bridge-8-flip-minus-1.jpg", Dihedral::FlipMinus1),
    ];
    for (file, variant) in files {
        let transformed = hasher.hash(&decode_file(&format!("images/reg-test-input/dih/{file}")));
        let d = transformed.hash.distance(&original.get(variant));
        assert!(d <= 16, "{file}: {d} bits from the derived {variant:?} hash");
        // And far from the untransformed original, or the check would prove nothing.
        assert!(
            transformed.hash.distance(&original.get(Dihedral::Original)) > 64,
            "{file}"
        );
    }
}
