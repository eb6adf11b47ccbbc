//! Certificates for test servers that take connections over TLS (PostgreSQL, NATS).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::postgres::CERTIFIED_USER;
use crate::watchdog::RunAs;

/// Certificates for a test server that takes connections over TLS, made with the
/// `openssl` program in the server's folder: the server's for `localhost`, a client's for
/// [`CERTIFIED_USER`], both signed by one authority, and a stranger authority.
pub struct TlsFiles {
    /// The authority (PEM) that signed the server's certificate.
    pub authority: PathBuf,
    /// An authority (PEM) that signed nothing of this server's.
    pub stranger: PathBuf,
    /// A client certificate for [`CERTIFIED_USER`], signed by the authority, and its key
    /// (PKCS#8 PEM, mode 600).
    pub client_certificate: PathBuf,
    pub client_key: PathBuf,
    pub server_certificate: PathBuf,
    pub server_key: PathBuf,
}

impl TlsFiles {
    /// Makes them in `dir`, the server's key owned by `run_as` when given (the server runs
    /// as that user).
    pub(crate) fn make(dir: &Path, run_as: RunAs) -> TlsFiles {
        let openssl = |args: &[&str]| {
            let output = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .unwrap_or_else(|e| {
                    panic!("running openssl: {e}; install it with `apt-get install -y openssl`")
                });
            assert!(
                output.status.success(),
                "openssl {args:?} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        let new_key = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        for name in ["authority", "stranger"] {
            let subject = format!("/CN=Cordon test {name}");
            let (key, pem) = (format!("{name}.key"), format!("{name}.pem"));
            let mut args = vec!["req", "-x509", "-new", "-days", "2", "-subj", &subject];
            args.extend(new_key);
            args.extend(["-keyout", &key, "-out", &pem]);
            openssl(&args);
        }
        let mut args = vec![
            "req",
            "-new",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ];
        args.extend(new_key);
        openssl(&args);
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .expect("writing server.ext");
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "authority.pem",
            "-CAkey",
            "authority.key",
            "-set_serial",
            "1",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.crt",
        ]);
        let client_subject = format!("/CN={CERTIFIED_USER}");
        let mut args = vec![
            "req",
            "-new",
            "-subj",
            &client_subject,
            "-keyout",
            "client.key",
            "-out",
            "client.csr",
        ];
        args.extend(new_key);
        openssl(&args);
        // Version 3 with its use named: rustls (the NATS client) refuses older forms.
        std::fs::write(
            dir.join("client.ext"),
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        )
        .expect("writing client.ext");
        openssl(&[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-CA",
            "authority.pem",
            "-CAkey",
            "authority.key",
            "-set_serial",
            "2",
            "-days",
            "2",
            "-extfile",
            "client.ext",
            "-out",
            "client.crt",
        ]);
        std::fs::set_permissions(
            dir.join("client.key"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .expect("making client.key private");
        let server_key = dir.join("server.key");
        // PostgreSQL refuses a key others can read, or that is not its own.
        std::fs::set_permissions(&server_key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("making server.key private");
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(&server_key, Some(uid), Some(gid))
                .expect("handing server.key to postgres");
        }
        TlsFiles {
            authority: dir.join("authority.pem"),
            stranger: dir.join("stranger.pem"),
            client_certificate: dir.join("client.crt"),
            client_key: dir.join("client.key"),
            server_certificate: dir.join("server.crt"),
            server_key,
        }
    }
}
