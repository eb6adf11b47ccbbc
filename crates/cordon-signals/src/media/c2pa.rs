//! Evidence a file's C2PA Content Credentials give about where it came from: who signed
//! them, with what tool, what was done to the picture (created, cropped, edited) and
//! whether a generative model made it.
//!
//! Read as evidence, never trusted blindly. The manifest is validated as it is read: a
//! signature that does not verify, or a picture whose bytes no longer match the hash the
//! manifest signed, is reported as `invalid` with its failure codes, and a certificate
//! that chains to no trust anchor is reported as such (`signingCredential.untrusted`).
//! Cordon configures no trust list, so a sound manifest reads as `valid`, not `trusted`:
//! a valid signature says only that whoever held the key signed these bytes.
//!
//! Reading needs the `c2pa` feature of this crate (off by default: the C2PA SDK is a heavy
//! build). Without it, [`read_content_credentials`] still exists and always answers `None`,
//! so callers compile either way.

/// What a file's C2PA manifest store says (its active manifest).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContentCredentials {
    /// The tool that made the claim: the claim's generator string (C2PA 1.x claims) or the
    /// first claim generator's name and version (2.x), e.g. "Adobe Photoshop 25.0".
    pub claim_generator: Option<String>,
    /// The signing certificate's subject common name, or its organisation when it has none.
    pub signer: Option<String>,
    /// When it was signed, RFC 3339, as a time-stamp authority countersigned it: `None` for
    /// manifests signed without one. The countersignature is verified, but not whether the
    /// authority is trusted (Cordon holds no trust list); the certificate's validity is
    /// checked at that time.
    pub signed_at: Option<String>,
    /// `"valid"`, `"trusted"` or `"invalid"`.
    pub validation_state: String,
    /// Failure codes, first seen first, e.g. `assertion.dataHash.mismatch`,
    /// `signingCredential.untrusted`.
    pub validation_errors: Vec<String>,
    /// Action names of the active manifest, in order, e.g. `["c2pa.created", "c2pa.cropped"]`.
    pub actions: Vec<String>,
    /// Whether any manifest in the store gives an AI digital source type (trained
    /// algorithmic media, or a composite with it) to an action or an assertion.
    pub ai_generated: bool,
    pub title: Option<String>,
    /// Manifests in the store: the active one and those of its ingredients (its history).
    pub manifests: usize,
}

/// The C2PA Content Credentials in `bytes`, a JPEG, PNG, WebP, GIF or TIFF file named by
/// MIME type or extension (`"image/jpeg"`, `"jpeg"`, `"png"`, ...).
///
/// `None` when the file carries no manifest (the common case, answered without parsing the
/// file), when its format is not one of those, or when it only points at a manifest stored
/// elsewhere (Cordon fetches nothing). `Some` with `validation_state == "invalid"` when a
/// manifest is there but broken or tampered with. Never panics.
///
/// Always `None` when this crate is built without its `c2pa` feature.
pub fn read_content_credentials(bytes: &[u8], mime_or_format: &str) -> Option<ContentCredentials> {
    #[cfg(feature = "c2pa")]
    {
        let mime = sdk::mime_type(mime_or_format)?;
        if !sdk::may_hold_manifest(bytes) {
            return None;
        }
        // The SDK parses hostile bytes (JUMBF, CBOR, COSE, X.509): a panic in it must cost
        // one file's evidence, not the worker. It counts as a broken manifest, since the
        // marker check above found one.
        std::panic::catch_unwind(|| sdk::read(bytes, mime))
            .unwrap_or_else(|_| Some(ContentCredentials::invalid(sdk::SDK_PANIC)))
    }
    #[cfg(not(feature = "c2pa"))]
    {
        let _ = (bytes, mime_or_format);
        None
    }
}

impl ContentCredentials {
    /// A manifest that could not be read at all, with the one reason.
    #[cfg(feature = "c2pa")]
    fn invalid(code: &str) -> Self {
        ContentCredentials {
            validation_state: "invalid".to_string(),
            validation_errors: vec![code.to_string()],
            ..ContentCredentials::default()
        }
    }
}

#[cfg(feature = "c2pa")]
mod sdk {
    use std::io::Cursor;
    use std::sync::{Arc, OnceLock};

    use ::c2pa::validation_results::ValidationResults;
    use ::c2pa::{Context, Error, Manifest, Reader, Settings, ValidationState};
    use serde_json::Value;

    use super::ContentCredentials;

    /// Our code for a panic inside the SDK (C2PA has none: it is not a validation result).
    pub(super) const SDK_PANIC: &str = "cordon.c2pa.panic";
    /// The C2PA code for a failure with no more specific code.
    const GENERAL_ERROR: &str = "general.error";

    /// IPTC digital source types that say a generative model made the pixels, in whole or
    /// in part (the last segment of the IPTC URI, also accepted alone).
    const AI_SOURCE_TYPES: [&str; 2] = ["trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia"];

    /// The MIME type the SDK reads for a format Cordon handles, from a MIME type or an
    /// extension in any case.
    pub(super) fn mime_type(mime_or_format: &str) -> Option<&'static str> {
        let name = mime_or_format.trim().to_ascii_lowercase();
        let name = name.strip_prefix("image/").unwrap_or(&name);
        match name {
            "jpeg" | "jpg" | "pjpeg" => Some("image/jpeg"),
            "png" => Some("image/png"),
            "webp" => Some("image/webp"),
            "gif" => Some("image/gif"),
            "tiff" | "tif" => Some("image/tiff"),
            _ => None,
        }
    }

    /// Whether `bytes` hold a JUMBF superbox (box type `jumb`), which every embedded C2PA
    /// manifest store is, in every format. Files without one (nearly all) never reach the
    /// SDK: the common case costs one SIMD scan, and the SDK's parsers see hostile bytes
    /// only when there is a manifest to read.
    pub(super) fn may_hold_manifest(bytes: &[u8]) -> bool {
        memchr::memmem::find(bytes, b"jumb").is_some()
    }

    /// Reads and validates the manifest store in `bytes`.
    pub(super) fn read(bytes: &[u8], mime: &str) -> Option<ContentCredentials> {
        let reader = match shared_context() {
            Some(context) => Reader::from_shared_context(context),
            // Not reached (the settings are constant); the SDK's defaults are the fallback.
            None => Reader::from_context(Context::new()),
        };
        match reader.with_stream(mime, Cursor::new(bytes)) {
            Ok(reader) => Some(credentials(&reader)),
            Err(error) if means_no_manifest(&error) => None,
            Err(error) => Some(ContentCredentials::invalid(error_code(&error))),
        }
    }

    /// The settings every read shares, built once: the SDK's defaults (validate on read,
    /// check the signer's trust, fetch nothing), not its thread-local settings, which other
    /// code on the thread could change; except that a time-stamp authority need not be
    /// trusted for its time stamp to date the signature. Cordon has no trust list, so with
    /// the SDK's default every time stamp would be ignored in validation, the certificate
    /// checked against today, and every photo signed with a certificate that has since
    /// expired (old photos: the recycled ones) would read as invalid. The time stamp's own
    /// signature and hash are still checked.
    fn shared_context() -> Option<&'static Arc<Context>> {
        static CONTEXT: OnceLock<Option<Arc<Context>>> = OnceLock::new();
        CONTEXT
            .get_or_init(|| {
                let settings = Settings::new()
                    .with_value("verify.verify_timestamp_trust", false)
                    .ok()?;
                Some(Context::new().with_settings(settings).ok()?.into_shared())
            })
            .as_ref()
    }

    /// Errors that say the file holds no manifest to read (the `jumb` bytes were a
    /// coincidence, or the manifest is remote), rather than a broken one.
    fn means_no_manifest(error: &Error) -> bool {
        matches!(
            error,
            Error::JumbfNotFound
                | Error::UnsupportedType
                | Error::RemoteManifestUrl(_)
                | Error::RemoteManifestFetch(_)
        )
    }

    /// The C2PA validation code for an error that stopped reading, as the SDK maps those
    /// it logs (its own mapping is private).
    fn error_code(error: &Error) -> &'static str {
        match error {
            Error::ClaimMissing { .. } | Error::ProvenanceMissing => "claim.missing",
            Error::AssertionMissing { .. } => "assertion.missing",
            Error::HashMismatch(_) => "assertion.dataHash.mismatch",
            Error::CoseSignature | Error::CoseVerifier => "claimSignature.mismatch",
            _ => GENERAL_ERROR,
        }
    }

    fn credentials(reader: &Reader) -> ContentCredentials {
        let active = reader.active_manifest();
        let signature = active.and_then(Manifest::signature_info);
        ContentCredentials {
            claim_generator: active.and_then(claim_generator),
            signer: signature.and_then(|s| s.common_name.clone().or_else(|| s.issuer.clone())),
            signed_at: signature.and_then(|s| s.time.clone()),
            validation_state: state_name(reader.validation_state()).to_string(),
            validation_errors: failure_codes(reader),
            actions: active.map(action_names).unwrap_or_default(),
            ai_generated: reader.iter_manifests().any(names_ai_source),
            title: active.and_then(Manifest::title).map(str::to_string),
            manifests: reader.manifests().len(),
        }
    }

    fn state_name(state: ValidationState) -> &'static str {
        match state {
            ValidationState::Invalid => "invalid",
            ValidationState::Valid => "valid",
            ValidationState::Trusted => "trusted",
        }
    }

    /// The 1.x generator string, else the first 2.x generator as "name version".
    fn claim_generator(manifest: &Manifest) -> Option<String> {
        if let Some(generator) = manifest.claim_generator() {
            return Some(generator.to_string());
        }
        let first = manifest.claim_generator_info.as_ref()?.first()?;
        Some(match &first.version {
            Some(version) => format!("{} {version}", first.name),
            None => first.name.clone(),
        })
    }

    /// Failure codes of the active manifest and of its ingredients, without repeats.
    fn failure_codes(reader: &Reader) -> Vec<String> {
        let codes: Vec<&str> = match reader.validation_results() {
            Some(results) => result_failures(results),
            // Only when the SDK kept no structured results: its flat status list.
            None => reader
                .validation_status()
                .unwrap_or_default()
                .iter()
                .filter(|status| !status.passed())
                .map(|status| status.code())
                .collect(),
        };
        let mut unique: Vec<String> = Vec::with_capacity(codes.len());
        for code in codes {
            if !unique.iter().any(|seen| seen == code) {
                unique.push(code.to_string());
            }
        }
        unique
    }

    fn result_failures(results: &ValidationResults) -> Vec<&str> {
        let active = results
            .active_manifest()
            .into_iter()
            .flat_map(|codes| codes.failure());
        let ingredients = results
            .ingredient_deltas()
            .into_iter()
            .flatten()
            .flat_map(|delta| delta.validation_deltas().failure());
        active.chain(ingredients).map(|status| status.code()).collect()
    }

    /// The actions of every actions assertion (`c2pa.actions`, `c2pa.actions.v2`), in order.
    fn action_names(manifest: &Manifest) -> Vec<String> {
        manifest
            .assertions()
            .iter()
            .filter(|assertion| is_actions_label(assertion.label()))
            .filter_map(|assertion| assertion.value().ok())
            .filter_map(|value| value.get("actions")?.as_array())
            .flatten()
            .filter_map(|action| action.get("action")?.as_str())
            .map(str::to_string)
            .collect()
    }

    fn is_actions_label(label: &str) -> bool {
        label == "c2pa.actions" || label.starts_with("c2pa.actions.v") || label.starts_with("c2pa.actions__")
    }

    /// Whether any assertion of `manifest` gives an AI digital source type, wherever it
    /// says it: in an action, a template or IPTC metadata (`Iptc4xmpExt:DigitalSourceType`).
    fn names_ai_source(manifest: &Manifest) -> bool {
        manifest
            .assertions()
            .iter()
            .filter_map(|assertion| assertion.value().ok())
            .any(|value| holds_ai_source(value, MAX_DEPTH))
    }

    /// Assertions nest a few levels; a bound keeps a crafted one from exhausting the stack.
    const MAX_DEPTH: usize = 16;

    fn holds_ai_source(value: &Value, depth: usize) -> bool {
        if depth == 0 {
            return false;
        }
        match value {
            Value::Object(fields) => fields.iter().any(|(key, field)| {
                (is_source_type_key(key) && field.as_str().is_some_and(is_ai_source))
                    || holds_ai_source(field, depth - 1)
            }),
            Value::Array(items) => items.iter().any(|item| holds_ai_source(item, depth - 1)),
            _ => false,
        }
    }

    fn is_source_type_key(key: &str) -> bool {
        key.to_ascii_lowercase().ends_with("digitalsourcetype")
    }

    fn is_ai_source(uri: &str) -> bool {
        let term = uri.rsplit(['/', '#', ':']).next().unwrap_or(uri);
        AI_SOURCE_TYPES.contains(&term)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes the SDK would look at: a JPEG start and a JUMBF superbox header.
    const JUMBF_ISH: &[u8] = b"\xff\xd8\xff\xeb\x00\x20JP\x00\x00\x00\x00\x00\x01\x00\x00\x00\x18jumb";

    #[cfg(not(feature = "c2pa"))]
    #[test]
    fn without_the_feature_nothing_is_read() {
        assert_eq!(read_content_credentials(JUMBF_ISH, "image/jpeg"), None);
    }

    #[cfg(feature = "c2pa")]
    #[test]
    fn format_names_map_to_the_sdks() {
        for (name, mime) in [
            ("image/jpeg", Some("image/jpeg")),
            ("JPEG", Some("image/jpeg")),
            (" jpg ", Some("image/jpeg")),
            ("png", Some("image/png")),
            ("image/PNG", Some("image/png")),
            ("image/webp", Some("image/webp")),
            ("tif", Some("image/tiff")),
            ("image/bmp", None),
            ("video/mp4", None),
            ("", None),
        ] {
            assert_eq!(sdk::mime_type(name), mime, "{name:?}");
        }
    }

    #[cfg(feature = "c2pa")]
    #[test]
    fn only_files_with_a_jumbf_box_reach_the_sdk() {
        assert!(sdk::may_hold_manifest(JUMBF_ISH));
        assert!(!sdk::may_hold_manifest(b"\xff\xd8\xff\xe0 a plain JPEG"));
        assert!(!sdk::may_hold_manifest(b""));
        // A broken manifest is reported, not taken for none.
        let read = read_content_credentials(JUMBF_ISH, "image/jpeg");
        assert!(read.is_none_or(|c| c.validation_state == "invalid" && !c.validation_errors.is_empty()));
    }
}
