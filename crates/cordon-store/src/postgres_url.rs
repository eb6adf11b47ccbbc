//! How Cordon reaches PostgreSQL: a `postgres://` URL whose `sslmode` and `sslrootcert`
//! mean what they mean to libpq (and so to `psql` with the same URL), TLS through the
//! system's OpenSSL.
//!
//! * `disable`: no TLS. `allow` and `prefer` (the default): TLS when the server offers it,
//!   plain otherwise. `require`: TLS or no connection. With these the certificate is not
//!   checked unless `sslrootcert` names a file of authorities to check it against.
//! * `verify-ca`: the certificate must chain to the authorities of the `sslrootcert` file
//!   (one must be named). `verify-full`: and name the host connected to; only this mode
//!   may trust the system's authorities (no `sslrootcert`, or `sslrootcert=system`), as
//!   any public certificate chains to those. A store off the machine should use it.
//!
//! * `sslcert` and `sslkey` (together): the client certificate to present, for a server
//!   that asks for one (`clientcert=` in `pg_hba.conf`); the key in PKCS#8 PEM, readable by
//!   its owner only.
//!
//! The PostgreSQL client itself knows neither `verify-*` nor the `ssl*` files: they are
//! taken out of the URL here and become the TLS connector's settings.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use percent_encoding::percent_decode_str;
use postgres_native_tls::MakeTlsConnector;

use crate::StoreError;

/// How much of the server's certificate is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    /// Encrypted, but any certificate will do (libpq's `prefer` and `require`).
    Nothing,
    /// Signed by a trusted authority, whatever host it names.
    Authority,
    /// Signed by a trusted authority, for the host connected to.
    AuthorityAndHost,
}

/// A parsed store URL: the client's settings and the TLS settings beside them.
#[derive(Debug)]
pub(crate) struct PostgresTarget {
    pub(crate) config: postgres::Config,
    check: Check,
    /// Authorities to trust instead of the system's (`sslrootcert`).
    roots: Option<PathBuf>,
    /// The client certificate and its key (`sslcert`, `sslkey`).
    identity: Option<(PathBuf, PathBuf)>,
}

impl PostgresTarget {
    /// Reads a `postgres://` (or `postgresql://`) URL; the error says what is wrong with it.
    pub(crate) fn parse(url: &str) -> Result<PostgresTarget, String> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut kept: Vec<&str> = Vec::new();
        let (mut mode, mut roots, mut certificate, mut private_key) = (None, None, None, None);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| format!("{key} is not UTF-8 text"))?;
            match key {
                "sslmode" => mode = Some(value.into_owned()),
                "sslrootcert" => roots = Some(value.into_owned()),
                "sslcert" => certificate = Some(PathBuf::from(value.as_ref())),
                "sslkey" => private_key = Some(PathBuf::from(value.as_ref())),
                _ => kept.push(pair),
            }
        }
        let system_roots = matches!(roots.as_deref(), None | Some("" | "system"));
        let (client_mode, check) = match mode.as_deref() {
            Some("disable") => ("disable", Check::Nothing),
            Some("verify-full") => ("require", Check::AuthorityAndHost),
            // Any public certificate chains to the system's authorities: without the host
            // name checked, trusting them would check nothing.
            Some(weaker) if roots.is_some() && system_roots => {
                return Err(format!(
                    "sslrootcert={} trusts the system's authorities, allowed only with \
                     sslmode=verify-full (not {weaker})",
                    roots.as_deref().unwrap_or_default()
                ));
            }
            None if roots.as_deref() == Some("system") => {
                return Err("sslrootcert=system needs sslmode=verify-full".to_string());
            }
            Some("verify-ca") if system_roots => {
                return Err(
                    "sslmode=verify-ca needs sslrootcert, a file of the authorities to \
                            check the server's certificate against (the system's are allowed \
                            only with verify-full)"
                        .to_string(),
                );
            }
            Some("verify-ca") => ("require", Check::Authority),
            // As libpq: with a file of authorities named, they are checked against.
            Some("require") if !system_roots => ("require", Check::Authority),
            Some("require") => ("require", Check::Nothing),
            None | Some("allow" | "prefer") if !system_roots => ("prefer", Check::Authority),
            None | Some("allow" | "prefer") => ("prefer", Check::Nothing),
            Some(other) => {
                return Err(format!(
                    "sslmode {other:?} is none of disable, allow, prefer, require, verify-ca, verify-full"
                ));
            }
        };
        kept.push(match client_mode {
            "disable" => "sslmode=disable",
            "require" => "sslmode=require",
            _ => "sslmode=prefer",
        });
        let config = format!("{base}?{}", kept.join("&"))
            .parse::<postgres::Config>()
            .map_err(|e| with_causes(&e))?;
        let roots = match roots.as_deref() {
            None | Some("" | "system") => None,
            Some(_) if client_mode == "disable" => {
                return Err("sslrootcert is given but sslmode=disable".to_string());
            }
            Some(path) => Some(PathBuf::from(path)),
        };
        let identity = match (certificate, private_key) {
            (None, None) => None,
            (Some(_), Some(_)) if client_mode == "disable" => {
                return Err("sslcert and sslkey are given but sslmode=disable".to_string());
            }
            (Some(certificate), Some(key)) => Some((certificate, key)),
            _ => return Err("sslcert and sslkey go together: give both or neither".to_string()),
        };
        Ok(PostgresTarget {
            config,
            check,
            roots,
            identity,
        })
    }

    /// Opens a connection as the URL says.
    pub(crate) fn connect(&self, shown_as: &str) -> Result<postgres::Client, StoreError> {
        let tls = self.tls_connector().map_err(|reason| StoreError::StoreUrl {
            url: shown_as.to_string(),
            reason,
        })?;
        self.config.connect(tls).map_err(|e| StoreError::Connect {
            url: shown_as.to_string(),
            reason: with_causes(&e),
        })
    }

    /// The connector for these settings, built once per process: building one takes
    /// ~55 ms here (OpenSSL 3 reads the system's authorities every time), and a node opens
    /// a connection per pool slot. So an `sslrootcert` file is read once, at the first
    /// connection, and so are `sslcert` and `sslkey`: rotated files need a restart.
    fn tls_connector(&self) -> Result<MakeTlsConnector, String> {
        type Settings = (Check, Option<PathBuf>, Option<(PathBuf, PathBuf)>);
        static BUILT: Mutex<Vec<(Settings, MakeTlsConnector)>> = Mutex::new(Vec::new());
        let settings = (self.check, self.roots.clone(), self.identity.clone());
        let mut built = BUILT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, connector)) = built.iter().find(|(made, _)| *made == settings) {
            return Ok(connector.clone());
        }
        let connector = self.build_tls_connector()?;
        built.push((settings, connector.clone()));
        Ok(connector)
    }

    fn build_tls_connector(&self) -> Result<MakeTlsConnector, String> {
        let mut builder = native_tls::TlsConnector::builder();
        builder
            .danger_accept_invalid_certs(self.check == Check::Nothing)
            .danger_accept_invalid_hostnames(self.check != Check::AuthorityAndHost);
        if let Some(path) = &self.roots {
            let pem = std::fs::read(path).map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
            let authorities = native_tls::Certificate::stack_from_pem(&pem)
                .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
            if authorities.is_empty() {
                return Err(format!(
                    "sslrootcert {}: no PEM certificate in it",
                    path.display()
                ));
            }
            // The named authorities and no others, as libpq.
            builder.disable_built_in_roots(true);
            for authority in authorities {
                builder.add_root_certificate(authority);
            }
        }
        if let Some((certificate, key)) = &self.identity {
            builder.identity(client_identity(certificate, key)?);
        }
        let connector = builder.build().map_err(|e| format!("setting up TLS: {e}"))?;
        Ok(MakeTlsConnector::new(connector))
    }
}

/// The client certificate `certificate` with its private key `key` (PEM files), refused
/// when the key is readable by anyone but its owner, as libpq refuses it.
fn client_identity(certificate: &Path, key: &Path) -> Result<native_tls::Identity, String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(key)
        .map_err(|e| format!("sslkey {}: {e}", key.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "sslkey {}: others can read it (mode {:o}); make it u=rw (chmod 600)",
            key.display(),
            mode & 0o777
        ));
    }
    let certificate_pem =
        std::fs::read(certificate).map_err(|e| format!("sslcert {}: {e}", certificate.display()))?;
    let key_pem = std::fs::read(key).map_err(|e| format!("sslkey {}: {e}", key.display()))?;
    native_tls::Identity::from_pkcs8(&certificate_pem, &key_pem).map_err(|e| {
        format!(
            "sslcert {} with sslkey {}: {e} (the key must be PKCS#8 PEM: -----BEGIN PRIVATE KEY-----)",
            certificate.display(),
            key.display()
        )
    })
}

/// An error's message followed by its causes' (the client's parse error says only
/// "invalid configuration", its cause which option).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let text = inner.to_string();
        // OpenSSL's errors repeat their cause's text in their own.
        if !message.contains(&text) {
            message.push_str(&format!(": {text}"));
        }
        cause = inner.source();
    }
    message
}

/// `url` with its password, if any, hidden: for messages and logs. The password may sit
/// in the credentials (`user:password@`, itself holding `@`, `/` or `?` unencoded) or in
/// a `password=` option; when unsure, more is hidden rather than less.
pub(crate) fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    if !scheme.starts_with("postgres") {
        return url.to_string();
    }
    let (credentials_end, after) = match rest.rfind('@') {
        Some(at) if rest[..at].contains(':') => {
            let user = rest[..at].split(':').next().unwrap_or("");
            (format!("{user}:…@"), &rest[at + 1..])
        }
        _ => (String::new(), rest),
    };
    let shown = match after.split_once('?') {
        Some((place, query)) => {
            let options: Vec<&str> = query
                .split('&')
                .map(|pair| {
                    if pair.starts_with("password=") {
                        "password=…"
                    } else {
                        pair
                    }
                })
                .collect();
            format!("{place}?{}", options.join("&"))
        }
        None => after.to_string(),
    };
    format!("{scheme}://{credentials_end}{shown}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_modes_become_client_modes_and_checks() {
        let cases = [
            ("", "Prefer", Check::Nothing, false),
            ("?sslmode=disable", "Disable", Check::Nothing, false),
            ("?sslmode=allow", "Prefer", Check::Nothing, false),
            ("?sslmode=require", "Require", Check::Nothing, false),
            (
                "?sslmode=require&sslrootcert=/ca.pem",
                "Require",
                Check::Authority,
                true,
            ),
            (
                "?sslmode=verify-ca&sslrootcert=/ca.pem",
                "Require",
                Check::Authority,
                true,
            ),
            ("?sslrootcert=/ca.pem", "Prefer", Check::Authority, true),
            (
                "?sslrootcert=%2Fetc%2Fca.pem&sslmode=verify-full",
                "Require",
                Check::AuthorityAndHost,
                true,
            ),
            (
                "?sslmode=verify-full&sslrootcert=system",
                "Require",
                Check::AuthorityAndHost,
                false,
            ),
        ];
        for (query, client, check, roots) in cases {
            let target = PostgresTarget::parse(&format!("postgres://cordon@db.example:5433/cordon{query}"))
                .unwrap_or_else(|e| panic!("{query}: {e}"));
            assert_eq!(format!("{:?}", target.config.get_ssl_mode()), client, "{query}");
            assert_eq!(target.check, check, "{query}");
            assert_eq!(target.roots.is_some(), roots, "{query}");
            assert_eq!(target.config.get_dbname(), Some("cordon"));
            assert_eq!(target.config.get_ports(), [5433]);
        }
        let target =
            PostgresTarget::parse("postgres://u@h/d?sslrootcert=%2Fetc%2Fca.pem&sslmode=verify-full")
                .unwrap();
        assert_eq!(target.roots, Some(PathBuf::from("/etc/ca.pem")));
        let kept =
            PostgresTarget::parse("postgres://u@h/d?application_name=node-1&sslmode=verify-full").unwrap();
        assert_eq!(kept.config.get_application_name(), Some("node-1"));
    }

    #[test]
    fn bad_settings_are_named() {
        let error = |url: &str| PostgresTarget::parse(url).unwrap_err();
        assert!(error("postgres://u@h/d?sslmode=verify").contains("sslmode \"verify\" is none of"));
        assert!(error("postgres://u@h/d?sslmode=disable&sslrootcert=/ca.pem").contains("sslmode=disable"));
        assert!(error("postgres://u@h/d?sslrootcert=%FF").contains("sslrootcert is not UTF-8"));
        // The system's authorities with anything but verify-full would check nothing.
        assert!(error("postgres://u@h/d?sslmode=verify-ca").contains("needs sslrootcert"));
        assert!(error("postgres://u@h/d?sslmode=verify-ca&sslrootcert=system").contains("only with"));
        assert!(error("postgres://u@h/d?sslmode=require&sslrootcert=system").contains("only with"));
        assert!(error("postgres://u@h/d?sslrootcert=system").contains("needs sslmode=verify-full"));
        assert!(error("postgres://u@h/d?no_such_option=1").contains("no_such_option"));
        assert!(error("postgres://u@h/d?sslcert=/c.pem").contains("go together"));
        assert!(
            error("postgres://u@h/d?sslmode=disable&sslcert=/c.pem&sslkey=/k.pem")
                .contains("sslmode=disable")
        );
        let target = PostgresTarget::parse("postgres://u@h/d?sslcert=/c.pem&sslkey=%2Fk.pem").unwrap();
        assert_eq!(target.identity, Some(("/c.pem".into(), "/k.pem".into())));
    }

    #[test]
    fn a_missing_or_empty_authority_file_is_named_when_connecting() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        for (file, expected) in [
            (dir.path().join("absent.pem"), "No such file"),
            (empty.clone(), "empty.pem"),
        ] {
            let url = format!(
                "postgres://u@127.0.0.1:1/d?sslmode=verify-full&sslrootcert={}",
                file.display()
            );
            let target = PostgresTarget::parse(&url).unwrap();
            let Err(error) = target.connect("postgres://u@127.0.0.1:1/d") else {
                panic!("connected with {}", file.display());
            };
            let error = error.to_string();
            assert!(
                error.contains("sslrootcert") && error.contains(expected),
                "{error}"
            );
        }
    }

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            without_password("postgres://cordon:s3cret@db:5432/cordon?sslmode=require"),
            "postgres://cordon:…@db:5432/cordon?sslmode=require"
        );
        assert_eq!(
            without_password("postgres://cordon@db/cordon"),
            "postgres://cordon@db/cordon"
        );
        assert_eq!(without_password("sqlite:///tmp/a:b@c"), "sqlite:///tmp/a:b@c");
        for (url, shown) in [
            (
                "postgres://u@db/d?password=s3cret&sslmode=require",
                "postgres://u@db/d?password=…&sslmode=require",
            ),
            ("postgres://u:s3/cr?t@db:5432/d", "postgres://u:…@db:5432/d"),
            ("postgres://u:s3@cr@db/d", "postgres://u:…@db/d"),
        ] {
            assert_eq!(without_password(url), shown);
        }
    }
}
