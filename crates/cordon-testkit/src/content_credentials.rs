//! Content Credentials for tests: a throwaway PKI made at run time with the `openssl` tool
//! (an ES256 root CA, a C2PA signing certificate and a time-stamp authority it issued),
//! and signing of C2PA manifests into real files with the `c2pa` crate.

use std::io::Cursor;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use c2pa::create_signer::from_keys;
use c2pa::{BoxedSigner, Builder, Context, Signer, SigningAlg};
use serde_json::json;

/// The common name on the test signing certificate.
pub const SIGNER_NAME: &str = "Cordon Test Signer";
/// The claim generator the test manifests name.
pub const GENERATOR: &str = "Cordon Test Camera";
pub const GENERATOR_VERSION: &str = "4.2";
/// Where IPTC's digital source types live (append e.g. `digitalCapture`).
pub const IPTC: &str = "http://cv.iptc.org/newscodes/digitalsourcetype/";

/// A throwaway PKI: an ES256 (P-256) root CA, a C2PA signing certificate it issued, and a
/// time-stamp authority certificate it issued, with the keys. Made once per test binary.
pub struct Pki {
    /// Signing certificate then CA certificate, PEM.
    pub chain: Vec<u8>,
    /// The signing key, PKCS#8 PEM.
    pub key: Vec<u8>,
    /// Kept for the time-stamp authority, which `openssl ts` runs from these files.
    pub dir: tempfile::TempDir,
}

pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(make_pki)
}

/// Runs `openssl` in `dir` with the words of `command`, then `last` (arguments that hold
/// spaces).
pub fn openssl(dir: &Path, command: &str, last: &[&str]) {
    let output = Command::new("openssl")
        .args(command.split_whitespace())
        .args(last)
        .current_dir(dir)
        .output()
        .expect("the openssl tool runs");
    assert!(
        output.status.success(),
        "openssl {command}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

pub fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn make_pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for name in ["ca", "signer", "tsa"] {
        let command = format!("genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out {name}.key");
        openssl(d, &command, &[]);
    }
    openssl(
        d,
        "req -x509 -new -key ca.key -sha256 -days 30 -addext basicConstraints=critical,CA:TRUE \
         -addext keyUsage=critical,keyCertSign,cRLSign -out ca.pem -subj",
        &["/CN=Cordon Test Root/O=Cordon Tests"],
    );
    // What the C2PA certificate profile asks of a signer: v3, not a CA, digitalSignature,
    // an allowed extended key usage, key identifiers, and an organisation in the subject
    // (the SDK reports it as the issuer and refuses a certificate without one).
    write(
        d,
        "signer.ext",
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
         extendedKeyUsage=emailProtection\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n",
    );
    write(
        d,
        "tsa.ext",
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
         extendedKeyUsage=critical,timeStamping\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n",
    );
    for (name, subject, serial) in [("signer", SIGNER_NAME, 2), ("tsa", "Cordon Test TSA", 3)] {
        let subject = format!("/CN={subject}/O=Cordon Tests");
        openssl(
            d,
            &format!("req -new -key {name}.key -out {name}.csr -subj"),
            &[&subject],
        );
        let issue = format!(
            "x509 -req -in {name}.csr -CA ca.pem -CAkey ca.key -set_serial {serial} -days 30 -sha256 \
             -extfile {name}.ext -out {name}.pem"
        );
        openssl(d, &issue, &[]);
    }
    write(
        d,
        "tsa.cnf",
        "[tsa]\ndefault_tsa = tsa_config\n[tsa_config]\nserial = ./tsa.serial\nsigner_digest = sha256\n\
         default_policy = 1.2.3.4.1\ndigests = sha256\ness_cert_id_alg = sha256\n",
    );
    write(d, "tsa.serial", "01\n");
    let mut chain = std::fs::read(d.join("signer.pem")).unwrap();
    chain.extend(std::fs::read(d.join("ca.pem")).unwrap());
    let key = std::fs::read(d.join("signer.key")).unwrap();
    Pki { chain, key, dir }
}

/// A signer with the test signing certificate, without a time stamp.
pub fn plain_signer() -> BoxedSigner {
    let pki = pki();
    from_keys(&pki.chain, &pki.key, SigningAlg::Es256, None).unwrap()
}

/// A manifest: a title, a generator, and an actions assertion whose first action
/// (`c2pa.created`) has `source_type`, followed by a crop.
pub fn manifest(title: &str, source_type: &str) -> String {
    json!({
        "title": title,
        "claim_generator_info": [{"name": GENERATOR, "version": GENERATOR_VERSION}],
        "assertions": [{
            "label": "c2pa.actions",
            "data": {"actions": [
                {"action": "c2pa.created", "digitalSourceType": format!("{IPTC}{source_type}")},
                {"action": "c2pa.cropped"},
            ]},
        }],
    })
    .to_string()
}

/// `asset` (a `format` file: `image/jpeg`, `png`, ...) with a manifest made from `definition`
/// signed into it by `signer`.
pub fn sign_with(signer: &dyn Signer, asset: &[u8], format: &str, definition: &str) -> Vec<u8> {
    let mut builder = Builder::from_context(Context::new())
        .with_definition(definition)
        .unwrap();
    let mut signed = Cursor::new(Vec::new());
    builder
        .sign(signer, format, &mut Cursor::new(asset), &mut signed)
        .unwrap();
    signed.into_inner()
}

/// [`sign_with`] the plain test signer.
pub fn sign(asset: &[u8], format: &str, definition: &str) -> Vec<u8> {
    sign_with(plain_signer().as_ref(), asset, format, definition)
}
