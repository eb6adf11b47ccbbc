//! `cordon_signals::media::read_content_credentials`: the JUMBF check and, past it, the
//! C2PA SDK's parsers (JUMBF, CBOR, COSE, X.509) and validation, on the format sniffed
//! from the bytes as provenance calls it, or on a format named by the first byte.
//!
//! Cordon promises only that the call never panics: a panic inside the SDK is caught and
//! reported as an invalid manifest. libFuzzer's panic hook would abort on it all the
//! same, so this target's hook aborts only for panics in Cordon's own code and logs the
//! SDK's (each place once); one that escaped the catch still aborts, in libfuzzer-sys.
#![no_main]

use std::collections::HashSet;
use std::sync::Mutex;

use cordon_fuzz::{sample_images, write_seeds};
use cordon_signals::ImageFormat;
use cordon_signals::media::read_content_credentials;
use cordon_testkit::content_credentials::{manifest, sign};
use libfuzzer_sys::fuzz_target;

const MIMES: [&str; 5] = ["image/jpeg", "image/png", "image/webp", "image/gif", "image/tiff"];

/// Small files of each format with a manifest signed into them (the SDK's parsers are only
/// reached past a JUMBF box), and a few without.
fn seeds() -> Vec<(String, Vec<u8>)> {
    let images = sample_images();
    let mut seeds = Vec::new();
    // libFuzzer's hook would abort on a signing failure, which only costs a seed.
    let abort_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| eprintln!("c2pa fuzz: {info}")));
    for (name, mime) in [
        ("small.jpg", "image/jpeg"),
        ("rgb.png", "image/png"),
        ("rgb.webp", "image/webp"),
        ("rgb.gif", "image/gif"),
        ("rgb.tiff", "image/tiff"),
    ] {
        let Some((_, asset)) = images.iter().find(|(n, _)| n == name) else {
            continue;
        };
        let definition = manifest("fuzz", "trainedAlgorithmicMedia");
        // The test PKI needs the `openssl` tool; the seeds do without the manifests then.
        match std::panic::catch_unwind(|| sign(asset, mime, &definition)) {
            Ok(signed) => seeds.push((format!("signed-{name}"), signed)),
            Err(_) => eprintln!("c2pa fuzz: could not sign a {mime} seed"),
        }
        seeds.push((name.to_string(), asset.clone()));
    }
    std::panic::set_hook(abort_hook);
    seeds
}

fn init() {
    write_seeds(seeds);
    lenient_panic_hook();
}

fn lenient_panic_hook() {
    let strict = std::panic::take_hook();
    let seen: Mutex<HashSet<String>> = Mutex::default();
    std::panic::set_hook(Box::new(move |info| {
        let place = info.location().map(|l| l.file().to_string()).unwrap_or_default();
        let third_party = place.contains("/.cargo/registry/") || place.contains("/.cargo/git/");
        if !third_party {
            return strict(info);
        }
        let key = info.location().map(|l| l.to_string()).unwrap_or_default();
        if seen.lock().is_ok_and(|mut seen| seen.insert(key)) {
            eprintln!("c2pa fuzz: panic in a dependency (caught by Cordon as an invalid manifest): {info}");
        }
    }));
}

fuzz_target!(init: init(), |bytes: &[u8]| {
    let mime = match ImageFormat::sniff(bytes) {
        Some(format) => format.mime(),
        None => MIMES[usize::from(bytes.first().copied().unwrap_or(0)) % MIMES.len()],
    };
    if let Some(credentials) = read_content_credentials(bytes, mime) {
        assert!(["valid", "trusted", "invalid"].contains(&credentials.validation_state.as_str()));
    }
});
