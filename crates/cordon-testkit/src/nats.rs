//! A real NATS server for the tests, JetStream on: Debian's `nats-server` (`apt-get install -y
//! nats-server`, or `scripts/deps test`) on a free loopback port, its store in a temporary folder.
//!
//! The server goes with the test process however that ends (see `crate::watchdog`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::certificates::TlsFiles;
use crate::watchdog::{Watched, free_port};

const INSTALL: &str = "install it with `apt-get install -y nats-server` (or `scripts/deps test`)";

/// A NATS server (JetStream on) of its own, which a test may kill and restart.
pub struct NatsServer {
    server: Option<Watched>,
    port: u16,
    bin: PathBuf,
    /// Set for a server that takes TLS connections only ([`NatsServer::start_tls`]).
    tls: Option<TlsFiles>,
    /// Whether clients must present a certificate the authority signed.
    verify_clients: bool,
    // Last: removed after the server has stopped.
    dir: tempfile::TempDir,
}

impl NatsServer {
    /// Starts `nats-server -js` on a free loopback port, its JetStream store in a new temporary
    /// folder. Panics, saying why, when nats-server is missing or does not start.
    pub fn start() -> NatsServer {
        Self::start_with(false, false)
    }

    /// As [`NatsServer::start`], but clients must connect over TLS: the server's certificate
    /// names `localhost` and is signed by [`TlsFiles::authority`] (see [`NatsServer::tls`]).
    /// Needs the `openssl` program.
    pub fn start_tls() -> NatsServer {
        Self::start_with(true, false)
    }

    /// As [`NatsServer::start_tls`], and every client must present a certificate
    /// [`TlsFiles::authority`] signed ([`TlsFiles::client_certificate`] is one).
    pub fn start_tls_verifying_clients() -> NatsServer {
        Self::start_with(true, true)
    }

    fn start_with(tls: bool, verify_clients: bool) -> NatsServer {
        let dir = tempfile::Builder::new()
            .prefix("cordon-nats-")
            .tempdir()
            .expect("a temporary folder for NATS");
        let tls = tls.then(|| TlsFiles::make(dir.path(), None));
        let mut nats = NatsServer {
            server: None,
            port: 0,
            bin: bin(),
            tls,
            verify_clients,
            dir,
        };
        for attempt in 1.. {
            nats.port = free_port();
            match nats.run() {
                Ok(()) => break,
                // Another process took the port between our look and the server's bind: again.
                Err(log) if log.contains("address already in use") && attempt < 5 => continue,
                Err(log) => panic!("nats-server did not start; its log:\n{log}"),
            }
        }
        nats
    }

    /// `nats://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The certificates of a server started with [`NatsServer::start_tls`].
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// Its folder: JetStream's store in `jetstream/`, the server's log in `nats-server.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the server, keeping its store for [`NatsServer::restart`]. It gets SIGTERM: it closes
    /// every connection and flushes JetStream's store, then exits (within 10 s, else SIGKILL).
    /// Does nothing if it is stopped already.
    pub fn kill(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.stop("TERM", true, Duration::from_secs(10));
        }
    }

    /// Starts it again (stopping it first if it runs), on the same port with the same store.
    pub fn restart(&mut self) {
        self.kill();
        if let Err(log) = self.run() {
            panic!(
                "nats-server did not restart on port {}; its log:\n{log}",
                self.port
            );
        }
    }

    /// Starts the server on `self.port` and waits until it greets clients; or answers its log.
    fn run(&mut self) -> Result<(), String> {
        let started = Instant::now();
        let mut args: Vec<String> = vec![
            "-js".into(),
            "-a".into(),
            "127.0.0.1".into(),
            "-p".into(),
            self.port.to_string(),
            "-sd".into(),
            self.dir.path().to_string_lossy().into_owned(),
        ];
        if let Some(tls) = &self.tls {
            args.extend([
                "--tls".into(),
                "--tlscert".into(),
                tls.server_certificate.to_string_lossy().into_owned(),
                "--tlskey".into(),
                tls.server_key.to_string_lossy().into_owned(),
            ]);
            if self.verify_clients {
                args.extend([
                    "--tlsverify".into(),
                    "--tlscacert".into(),
                    tls.authority.to_string_lossy().into_owned(),
                ]);
            }
        }
        // SIGKILL when the test process ends or on a drop: the store goes with the folder.
        let mut server = Watched::spawn(self.dir.path(), "nats-server.log", "KILL", &self.bin, &args, None);
        let deadline = started + Duration::from_secs(10);
        loop {
            if greets(self.port) {
                self.server = Some(server);
                return Ok(());
            }
            let alive = server.alive();
            if !alive || Instant::now() > deadline {
                server.stop("KILL", true, Duration::from_secs(10));
                let log =
                    std::fs::read_to_string(self.dir.path().join("nats-server.log")).unwrap_or_default();
                let what = if alive {
                    "not greeting clients within 10 s"
                } else {
                    "exited"
                };
                return Err(format!("({what})\n{log}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for NatsServer {
    /// Kills it (SIGKILL) and removes its folder.
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.stop("KILL", false, Duration::from_secs(10));
        }
    }
}

/// Whether a NATS server on 127.0.0.1:`port` greets a new connection (`INFO {…}`).
pub fn greets(port: u16) -> bool {
    let Ok(mut stream) =
        std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
    else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut greeting = [0u8; 6];
    stream.read_exact(&mut greeting).is_ok() && &greeting == b"INFO {"
}

/// `nats-server` on `PATH`, else in the sbin folders (Debian puts it in `/usr/sbin`, which a
/// normal user's `PATH` lacks).
fn bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .chain(["/usr/sbin", "/usr/local/sbin", "/usr/local/bin", "/usr/bin"].map(PathBuf::from))
            .map(|folder| folder.join("nats-server"))
            .find(|program| program.is_file())
            .unwrap_or_else(|| panic!("nats-server not found; {INSTALL}"))
    })
    .clone()
}

/// Waits until `stream` exists on the server behind `context`, as it does once a worker
/// started on it has made it; fails the test after 20 s.
pub async fn wait_for_stream(context: &async_nats::jetstream::Context, stream: &str) {
    let started = Instant::now();
    while context.get_stream(stream).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the worker made no stream {stream}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
