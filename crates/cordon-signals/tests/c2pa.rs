//! Reading C2PA Content Credentials from real files: a photo signed in the test itself,
//! with a certificate chain (and a time-stamp authority) made at run time by the `openssl`
//! tool, then read back, tampered with, truncated and garbled.

#![cfg(feature = "c2pa")]

use c2pa::create_signer::from_keys;
use c2pa::{BoxedSigner, Signer, SigningAlg};
use cordon_signals::media::{ContentCredentials, read_content_credentials};
use cordon_signals::{DecodeLimits, PixelLayout, decode};
use image::ImageEncoder;
use image::codecs::png::PngEncoder;
use time::{Duration, OffsetDateTime};

use cordon_testkit::content_credentials::{
    GENERATOR, GENERATOR_VERSION, SIGNER_NAME, manifest, openssl, pki, plain_signer, sign, sign_with, write,
};

/// A signing certificate (and key) from the test CA that expires at `expiry`, issued now.
/// `openssl ca` is the one that takes an exact end date.
fn short_lived_certificate(expiry: OffsetDateTime) -> (Vec<u8>, Vec<u8>) {
    let work = tempfile::tempdir_in(pki().dir.path()).unwrap();
    let w = work.path();
    write(
        w,
        "ca.cnf",
        "[ca]\ndefault_ca = test_ca\n[test_ca]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n\
         default_md = sha256\npolicy = any\nunique_subject = no\n[any]\ncommonName = supplied\n\
         organizationName = supplied\n",
    );
    write(w, "index.txt", "");
    write(w, "serial", "10\n");
    openssl(
        w,
        "genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out short.key",
        &[],
    );
    let subject = format!("/CN={SIGNER_NAME}/O=Cordon Tests");
    openssl(w, "req -new -key short.key -out short.csr -subj", &[&subject]);
    let issue = format!(
        "ca -batch -notext -config ca.cnf -cert ../ca.pem -keyfile ../ca.key -extfile ../signer.ext \
         -in short.csr -out short.pem -startdate {} -enddate {}",
        utc_time(expiry - Duration::HOUR),
        utc_time(expiry)
    );
    openssl(w, &issue, &[]);
    let mut chain = std::fs::read(w.join("short.pem")).unwrap();
    chain.extend(std::fs::read(pki().dir.path().join("ca.pem")).unwrap());
    (chain, std::fs::read(w.join("short.key")).unwrap())
}

/// `YYMMDDHHMMSSZ`, the ASN.1 UTCTime form `openssl ca` takes.
fn utc_time(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:02}{:02}{:02}{:02}{:02}{:02}Z",
        at.year() % 100,
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// A signer whose claims a local time-stamp authority (`openssl ts -reply`) countersigns,
/// as a network TSA would.
struct TimeStampedSigner(BoxedSigner);

impl Signer for TimeStampedSigner {
    fn sign(&self, data: &[u8]) -> c2pa::Result<Vec<u8>> {
        self.0.sign(data)
    }

    fn alg(&self) -> SigningAlg {
        self.0.alg()
    }

    fn certs(&self) -> c2pa::Result<Vec<Vec<u8>>> {
        self.0.certs()
    }

    fn reserve_size(&self) -> usize {
        // Room for the time-stamp token (its certificates and signature).
        self.0.reserve_size() + 8192
    }

    fn send_timestamp_request(&self, message: &[u8]) -> Option<c2pa::Result<Vec<u8>>> {
        let work = tempfile::tempdir_in(pki().dir.path()).unwrap();
        let w = work.path();
        std::fs::write(w.join("message"), message).unwrap();
        openssl(w, "ts -query -data message -sha256 -cert -out request.tsq", &[]);
        openssl(
            w,
            "ts -reply -config ../tsa.cnf -queryfile request.tsq -signer ../tsa.pem -inkey ../tsa.key \
             -chain ../ca.pem -out response.tsr",
            &[],
        );
        Some(Ok(std::fs::read(w.join("response.tsr")).unwrap()))
    }
}

fn bridge_jpeg() -> Vec<u8> {
    std::fs::read(cordon_testkit::reference_image("misc-images/b.jpg")).unwrap()
}

/// The bridge photo re-encoded as PNG.
fn bridge_png() -> Vec<u8> {
    let image = decode(&bridge_jpeg(), &DecodeLimits::default()).unwrap();
    assert_eq!(image.layout(), PixelLayout::Rgb);
    let mut png = Vec::new();
    PngEncoder::new(&mut png)
        .write_image(
            image.pixels(),
            image.width(),
            image.height(),
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    png
}

fn read(bytes: &[u8], format: &str) -> ContentCredentials {
    read_content_credentials(bytes, format).expect("a manifest is read")
}

/// What every sound manifest signed here reads as: a valid signature from a certificate
/// that chains to no trust anchor Cordon knows.
fn assert_sound(credentials: &ContentCredentials) {
    assert_eq!(credentials.validation_state, "valid", "{credentials:?}");
    assert_eq!(
        credentials.validation_errors,
        ["signingCredential.untrusted"],
        "{credentials:?}"
    );
    assert_eq!(credentials.signer.as_deref(), Some(SIGNER_NAME));
    assert_eq!(
        credentials.claim_generator,
        Some(format!("{GENERATOR} {GENERATOR_VERSION}"))
    );
    assert_eq!(credentials.actions, ["c2pa.created", "c2pa.cropped"]);
    assert_eq!(credentials.manifests, 1);
}

#[test]
fn a_signed_jpeg_reads_back() {
    let signed = sign(
        &bridge_jpeg(),
        "image/jpeg",
        &manifest("bridge.jpg", "digitalCapture"),
    );
    let credentials = read(&signed, "image/jpeg");
    assert_sound(&credentials);
    assert_eq!(credentials.title.as_deref(), Some("bridge.jpg"));
    assert!(!credentials.ai_generated);
    // Signed without a time-stamp authority: no trustworthy signing time to give.
    assert_eq!(credentials.signed_at, None);
    // The short format names read the same.
    assert_eq!(
        read_content_credentials(&signed, "jpeg"),
        Some(credentials.clone())
    );
    assert_eq!(read_content_credentials(&signed, " JPG "), Some(credentials));
}

#[test]
fn a_signed_png_reads_back() {
    let signed = sign(
        &bridge_png(),
        "image/png",
        &manifest("bridge.png", "digitalCapture"),
    );
    let credentials = read(&signed, "image/png");
    assert_sound(&credentials);
    assert_eq!(credentials.title.as_deref(), Some("bridge.png"));
    assert!(!credentials.ai_generated);
    assert_eq!(read_content_credentials(&signed, "png"), Some(credentials));
}

#[test]
fn a_generated_image_says_so_in_jpeg_and_png() {
    let definition = manifest("generated", "trainedAlgorithmicMedia");
    for (asset, format) in [(bridge_jpeg(), "image/jpeg"), (bridge_png(), "image/png")] {
        let credentials = read(&sign(&asset, format, &definition), format);
        assert_sound(&credentials);
        assert!(credentials.ai_generated, "{format}: {credentials:?}");
    }
}

#[test]
fn an_inpainted_image_counts_as_generated() {
    let definition = manifest("inpainted", "compositeWithTrainedAlgorithmicMedia");
    let credentials = read(&sign(&bridge_jpeg(), "image/jpeg", &definition), "image/jpeg");
    assert_sound(&credentials);
    assert!(credentials.ai_generated);
}

#[test]
fn a_time_stamped_manifest_gives_its_signing_time() {
    let signer = TimeStampedSigner(plain_signer());
    let definition = manifest("stamped", "digitalCapture");
    let signed = sign_with(&signer, &bridge_jpeg(), "image/jpeg", &definition);
    let credentials = read(&signed, "image/jpeg");
    assert_sound(&credentials);
    let signed_at = credentials.signed_at.expect("the time stamp's time");
    let signed_at =
        OffsetDateTime::parse(&signed_at, &time::format_description::well_known::Rfc3339).unwrap();
    let age = OffsetDateTime::now_utc() - signed_at;
    assert!(
        age.whole_seconds().abs() < 600,
        "signed at {signed_at}, {age} ago"
    );
}

#[test]
fn a_time_stamp_keeps_a_since_expired_certificate_valid() {
    // Old photos are the recycled ones, and their certificates have often expired since. A
    // time stamp proves the certificate was valid when it signed; without one, C2PA checks
    // it against the present. Seconds of life are enough to sign with it here.
    let expiry = OffsetDateTime::now_utc() + Duration::seconds(4);
    let (chain, key) = short_lived_certificate(expiry);
    let signer = || from_keys(&chain, &key, SigningAlg::Es256, None).unwrap();
    let definition = manifest("old photo", "digitalCapture");
    let stamped = sign_with(
        &TimeStampedSigner(signer()),
        &bridge_jpeg(),
        "image/jpeg",
        &definition,
    );
    let unstamped = sign_with(signer().as_ref(), &bridge_jpeg(), "image/jpeg", &definition);
    let wait = expiry + Duration::milliseconds(1500) - OffsetDateTime::now_utc();
    std::thread::sleep(wait.try_into().unwrap_or_default());

    let credentials = read(&stamped, "image/jpeg");
    assert_sound(&credentials);
    assert!(credentials.signed_at.is_some());
    let credentials = read(&unstamped, "image/jpeg");
    assert_eq!(credentials.validation_state, "invalid", "{credentials:?}");
    assert!(
        credentials
            .validation_errors
            .iter()
            .any(|code| code == "signingCredential.expired"),
        "{credentials:?}"
    );
}

/// The offset of the first byte of the JPEG's entropy-coded data (after the first SOS
/// segment's header).
fn scan_data_start(jpeg: &[u8]) -> usize {
    let sos = jpeg
        .windows(2)
        .position(|w| w == [0xff, 0xda])
        .expect("a start of scan");
    let header_len = usize::from(u16::from_be_bytes([jpeg[sos + 2], jpeg[sos + 3]]));
    sos + 2 + header_len
}

#[test]
fn changed_pixels_break_the_data_hash() {
    let mut signed = sign(
        &bridge_jpeg(),
        "image/jpeg",
        &manifest("bridge.jpg", "digitalCapture"),
    );
    // Flip bits in the middle of the compressed pixels, far from the manifest (which sits
    // in APP11 segments before the scan). 0xff and 0xfe are skipped so no marker appears.
    let start = scan_data_start(&signed);
    let middle = start + (signed.len() - start) / 2;
    let mut flipped = 0;
    for byte in &mut signed[middle..middle + 64] {
        if *byte < 0xfe {
            *byte ^= 0x01;
            flipped += 1;
        }
    }
    assert!(flipped > 0);
    let credentials = read(&signed, "image/jpeg");
    assert_eq!(credentials.validation_state, "invalid", "{credentials:?}");
    assert!(
        credentials
            .validation_errors
            .iter()
            .any(|code| code == "assertion.dataHash.mismatch"),
        "{credentials:?}"
    );
    // What the manifest says is still reported, for the analyst to weigh.
    assert_eq!(credentials.signer.as_deref(), Some(SIGNER_NAME));
    assert_eq!(credentials.actions, ["c2pa.created", "c2pa.cropped"]);
}

#[test]
fn an_edited_claim_breaks_the_signature() {
    let title = "the original title, long enough to find";
    let mut signed = sign(&bridge_jpeg(), "image/jpeg", &manifest(title, "digitalCapture"));
    // The title is in the signed claim: change one letter of it, as a forger would.
    let at = signed
        .windows(title.len())
        .position(|w| w == title.as_bytes())
        .expect("the title in the claim");
    signed[at + 4] = b'X';
    let credentials = read(&signed, "image/jpeg");
    assert_eq!(credentials.validation_state, "invalid", "{credentials:?}");
    assert!(
        credentials
            .validation_errors
            .iter()
            .any(|code| code.starts_with("claimSignature.")),
        "{credentials:?}"
    );
}

#[test]
fn files_without_a_manifest_have_none() {
    assert_eq!(read_content_credentials(&bridge_jpeg(), "image/jpeg"), None);
    assert_eq!(read_content_credentials(&bridge_png(), "image/png"), None);
    assert_eq!(read_content_credentials(&bridge_jpeg(), "image/png"), None);
}

#[test]
fn formats_without_credentials_support_have_none() {
    let signed = sign(
        &bridge_jpeg(),
        "image/jpeg",
        &manifest("bridge.jpg", "digitalCapture"),
    );
    assert_eq!(read_content_credentials(&signed, "image/bmp"), None);
    assert_eq!(read_content_credentials(&signed, ""), None);
}

/// Every outcome for broken input: nothing, or a manifest read as invalid.
fn assert_none_or_invalid(bytes: &[u8], what: &str) {
    if let Some(credentials) = read_content_credentials(bytes, "image/jpeg") {
        assert_eq!(credentials.validation_state, "invalid", "{what}: {credentials:?}");
        assert!(
            !credentials.validation_errors.is_empty(),
            "{what}: {credentials:?}"
        );
    }
}

#[test]
fn garbage_and_truncated_files_never_panic() {
    assert_eq!(read_content_credentials(b"", "image/jpeg"), None);
    assert_eq!(read_content_credentials(b"jumb", "image/jpeg"), None);
    let noise: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    assert_eq!(read_content_credentials(&noise, "image/png"), None);
    let mut jpeg_ish = vec![0xff, 0xd8, 0xff, 0xeb];
    jpeg_ish.extend_from_slice(b"\x00\x20JP\x00\x00\x00\x00\x00\x01\x00\x00\x00\x18jumb");
    jpeg_ish.extend_from_slice(&noise);
    assert_none_or_invalid(&jpeg_ish, "a JPEG with a JUMBF header and noise");

    let signed = sign(
        &bridge_jpeg(),
        "image/jpeg",
        &manifest("bridge.jpg", "digitalCapture"),
    );
    let manifest_end = scan_data_start(&signed);
    // Cut everywhere in the manifest, and a few places in the pixels.
    let mut cuts: Vec<usize> = (0..manifest_end).step_by(97).collect();
    cuts.extend((manifest_end..signed.len()).step_by(signed.len() / 7));
    for cut in cuts {
        assert_none_or_invalid(&signed[..cut], &format!("cut at {cut}"));
    }
    // Single-byte corruption all through the manifest: whatever still reads as valid
    // (a flip in the signature's zero padding) must say exactly what the original says.
    let original = read(&signed, "image/jpeg");
    for at in (0..manifest_end).step_by(7) {
        let mut corrupt = signed.clone();
        corrupt[at] ^= 0x5a;
        if let Some(credentials) = read_content_credentials(&corrupt, "image/jpeg")
            && credentials.validation_state != "invalid"
        {
            assert_eq!(credentials, original, "byte {at}");
        }
    }
}
