//! A real PostgreSQL server for the tests: `initdb` and `postgres` from the system's PostgreSQL
//! (Debian's `postgresql` package: `apt-get install -y postgresql`, or `scripts/deps test`), in a
//! temporary folder, on a free loopback port, trusting every connection from user `cordon`.
//!
//! The server goes with the test process however that ends (see `crate::watchdog`): dropped,
//! or never dropped as [`shared_postgres`]'s is, or killed.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub use crate::certificates::TlsFiles;
use crate::watchdog::{RunAs, Watched, accepts, free_port};

/// The superuser `initdb` makes, trusted without a password.
pub const USER: &str = "cordon";

const INSTALL: &str = "install it with `apt-get install -y postgresql` (or `scripts/deps test`)";

/// A PostgreSQL server of its own, for one test process.
pub struct PostgresServer {
    server: Watched,
    port: u16,
    bin: PathBuf,
    tls: Option<TlsFiles>,
    // Last: removed after the server has stopped (the watchdog removes it first, normally).
    dir: tempfile::TempDir,
}

impl PostgresServer {
    /// Starts (initdb + postgres) a server in a new temporary folder on a free loopback port.
    /// Panics, saying why, when PostgreSQL is missing or does not start.
    pub fn start() -> PostgresServer {
        Self::start_with(false)
    }

    /// As [`PostgresServer::start`], but the server takes TCP connections over TLS only,
    /// with a certificate for `localhost` (not for `127.0.0.1`) that [`TlsFiles::authority`]
    /// signed, and user [`CERTIFIED_USER`] must present a client certificate the authority
    /// signed for that name: see [`PostgresServer::tls`]. Needs the `openssl` program.
    pub fn start_tls() -> PostgresServer {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> PostgresServer {
        let started = Instant::now();
        let bin = bin_dir();
        let run_as = run_as();
        let dir = tempfile::Builder::new()
            .prefix("cordon-pg-")
            .tempdir()
            .expect("a temporary folder for PostgreSQL");
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .expect("handing the temporary folder to the postgres user");
        }
        let data = dir.path().join("data");
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", USER, "--no-sync", "-E", "UTF8", "--locale=C"])
            .current_dir(dir.path());
        as_user(&mut initdb, run_as);
        let output = initdb
            .output()
            .unwrap_or_else(|e| panic!("running initdb: {e}; {INSTALL}"));
        assert!(output.status.success(), "initdb failed: {}", text(&output));
        let initialised = started.elapsed();
        let tls = tls.then(|| TlsFiles::make(dir.path(), run_as));
        let mut tls_args: Vec<String> = Vec::new();
        if let Some(files) = &tls {
            std::fs::write(
                data.join("pg_hba.conf"),
                format!(
                    "local all all trust\n\
                     hostssl all {CERTIFIED_USER} 127.0.0.1/32 trust clientcert=verify-full\n\
                     hostssl all all 127.0.0.1/32 trust\n\
                     hostnossl all all 127.0.0.1/32 reject\n"
                ),
            )
            .expect("writing pg_hba.conf");
            tls_args = vec![
                "-c".into(),
                "ssl=on".into(),
                "-c".into(),
                format!("ssl_cert_file={}", files.server_certificate.display()),
                "-c".into(),
                format!("ssl_key_file={}", files.server_key.display()),
                "-c".into(),
                format!("ssl_ca_file={}", files.authority.display()),
            ];
        }

        // The socket folder: this one, unless its path is too long for a Unix socket (then none:
        // every client here connects over TCP).
        let sockets = if dir.path().as_os_str().len() < 80 {
            dir.path().to_string_lossy().into_owned()
        } else {
            String::new()
        };
        for attempt in 1.. {
            let port = free_port();
            let args: Vec<String> = vec![
                "-D".into(),
                data.to_string_lossy().into_owned(),
                "-k".into(),
                sockets.clone(),
                "-h".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string(),
                // For tests only: no durability (a crash may lose or corrupt data), much faster.
                "-c".into(),
                "fsync=off".into(),
                "-c".into(),
                "synchronous_commit=off".into(),
                "-c".into(),
                "full_page_writes=off".into(),
                // A test binary's servers live as long as it does, each with a pool of
                // connections, and one binary holds all of a crate's suites.
                "-c".into(),
                "max_connections=1000".into(),
            ]
            .into_iter()
            .chain(tls_args.iter().cloned())
            .collect();
            // SIGQUIT: the postmaster's immediate shutdown (`pg_ctl stop -m immediate`).
            let mut server = Watched::spawn(
                dir.path(),
                "postgres.log",
                "QUIT",
                &bin.join("postgres"),
                &args,
                run_as,
            );
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if accepts(port) && select_1(&bin, port) {
                    eprintln!(
                        "PostgreSQL on 127.0.0.1:{port} in {}: initdb {} ms, ready in {} ms",
                        dir.path().display(),
                        initialised.as_millis(),
                        started.elapsed().as_millis()
                    );
                    let server = PostgresServer {
                        server,
                        port,
                        bin,
                        tls,
                        dir,
                    };
                    if server.tls.is_some() {
                        psql_in(
                            &server.bin,
                            &server.url("postgres"),
                            &format!("CREATE ROLE {CERTIFIED_USER} LOGIN SUPERUSER"),
                        );
                    }
                    return server;
                }
                let alive = server.alive();
                if !alive || Instant::now() > deadline {
                    server.stop("QUIT", true, Duration::from_secs(10));
                    let log = std::fs::read_to_string(dir.path().join("postgres.log")).unwrap_or_default();
                    // Another process took the port between our look and postgres's bind: again.
                    if !alive && log.contains("could not bind") && attempt < 5 {
                        break;
                    }
                    let what = if alive {
                        "did not accept connections within 20 s"
                    } else {
                        "exited"
                    };
                    panic!("postgres {what}; its log:\n{log}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        unreachable!()
    }

    /// A new empty database on it, answered as a URL: `postgres://cordon@127.0.0.1:PORT/NAME`.
    /// NAME is `name_hint` (lower-cased, other than letters, digits and `_` made `_`) and a
    /// number unique to this process.
    pub fn new_database(&self, name_hint: &str) -> String {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut hint: String = name_hint
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        if !hint.starts_with(|c: char| c.is_ascii_lowercase() || c == '_') {
            hint.insert_str(0, "db_");
        }
        let name = format!("{hint}_{n}_{}", std::process::id());
        psql_in(
            &self.bin,
            &self.url("postgres"),
            &format!("CREATE DATABASE \"{name}\""),
        );
        self.url(&name)
    }

    /// The URL of database `name` on it.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{name}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The certificates of a server started with [`PostgresServer::start_tls`].
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// Its folder: the cluster in `data/`, the server's log in `postgres.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PostgresServer {
    /// Stops it at once (an immediate shutdown, as `pg_ctl stop -m immediate`) and removes its folder.
    fn drop(&mut self) {
        self.server.stop("QUIT", false, Duration::from_secs(10));
    }
}

/// The user of a TLS server ([`PostgresServer::start_tls`]) who must present a client
/// certificate.
pub const CERTIFIED_USER: &str = "certified";

/// One server shared by every test in the process (started on first use), so a suite does not pay
/// for initdb per test. Give each test its own database ([`PostgresServer::new_database`]). It
/// stops and its folder goes when the test process ends.
pub fn shared_postgres() -> &'static PostgresServer {
    static SHARED: OnceLock<PostgresServer> = OnceLock::new();
    SHARED.get_or_init(PostgresServer::start)
}

/// Runs `sql` (one or more statements, sent as one query string: one implicit transaction) with
/// `psql` on the database at `url`, and answers what it printed: each row's columns joined by `|`, one row a line. Panics on error.
pub fn psql(url: &str, sql: &str) -> String {
    psql_in(&bin_dir(), url, sql)
}

fn psql_in(bin: &Path, url: &str, sql: &str) -> String {
    let mut command = Command::new(bin.join("psql"));
    command.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql, url]);
    let output = client(&mut command)
        .output()
        .unwrap_or_else(|e| panic!("running psql: {e}; {INSTALL}"));
    assert!(
        output.status.success(),
        "psql on {url} failed on {sql:?}: {}",
        text(&output)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Whether the server on `port` answers a query (it accepts TCP connections a little before).
fn select_1(bin: &Path, port: u16) -> bool {
    let mut command = Command::new(bin.join("psql"));
    command
        .args(["-X", "-q", "-h", "127.0.0.1", "-p", &port.to_string(), "-U", USER])
        .args(["-d", "postgres", "-c", "select 1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    client(&mut command).status().is_ok_and(|status| status.success())
}

/// `command`, a PostgreSQL client, deaf to the environment variables that would send it elsewhere.
fn client(command: &mut Command) -> &mut Command {
    for variable in [
        "PGHOSTADDR",
        "PGSERVICE",
        "PGSERVICEFILE",
        "PGOPTIONS",
        "PGSSLMODE",
        "PGCONNECT_TIMEOUT",
    ] {
        command.env_remove(variable);
    }
    command.env("PGCONNECT_TIMEOUT", "5")
}

/// The newest PostgreSQL's programs: `/usr/lib/postgresql/N/bin` (Debian), else the folder on
/// `PATH` holding `initdb`.
fn bin_dir() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let debian = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let version: u32 = entry.file_name().to_str()?.parse().ok()?;
                let bin = entry.path().join("bin");
                bin.join("initdb").is_file().then_some((version, bin))
            })
            .max();
        if let Some((_, bin)) = debian {
            return bin;
        }
        std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .find(|folder| folder.join("initdb").is_file() && folder.join("postgres").is_file())
            .unwrap_or_else(|| {
                panic!(
                    "PostgreSQL not found (no /usr/lib/postgresql/*/bin/initdb, no initdb on PATH); {INSTALL}"
                )
            })
    })
    .clone()
}

/// initdb and postgres refuse to run as root: as root, they run as the `postgres` system user.
fn run_as() -> RunAs {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let user = user_ids("postgres").unwrap_or_else(|| {
        panic!("running as root, and PostgreSQL will not: it runs as user postgres, who does not exist; {INSTALL}")
    });
    Some(user)
}

/// The user and group ids of user `name`.
fn user_ids(name: &str) -> Option<(u32, u32)> {
    let name = std::ffi::CString::new(name).ok()?;
    let mut buffer = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: a zeroed passwd is a valid one (integers and null pointers).
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is to a live value of the right type, `buffer` is as long as said,
    // and the strings `entry` points into (unused here) live in `buffer`.
    let status = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut found,
        )
    };
    (status == 0 && !found.is_null()).then_some((entry.pw_uid, entry.pw_gid))
}

fn as_user(command: &mut Command, run_as: RunAs) {
    if let Some((uid, gid)) = run_as {
        command.uid(uid).gid(gid);
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
