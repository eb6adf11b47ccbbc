//! A server process that cannot outlive the test process that started it.
//!
//! The server runs under a small `sh` watchdog whose standard input is a pipe held only by the
//! test process (Rust opens its pipes close-on-exec, so no other child inherits that end). The
//! watchdog blocks reading the pipe. The pipe reaches end-of-file when the test process closes it
//! (a drop) or when the kernel closes it because the test process is gone, however it ended:
//! normal exit with servers in `static`s that are never dropped, a panic, SIGKILL. The watchdog
//! then signals the server, waits for it to exit, and removes its folder. It ignores SIGINT,
//! SIGTERM and SIGHUP and runs in a process group of its own, so a Ctrl-C or a harness killing
//! the test's process group cannot stop it before it has cleaned up.
//!
//! To stop the server but keep its folder (a restart to come), the test process writes one line,
//! `SIGNAL keep`, before closing the pipe.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// `$1` the folder, `$2` the log file's name in it, `$3` the signal on end-of-file, the rest the
/// server's command line.
const SCRIPT: &str = r#"
trap '' INT TERM HUP
dir=$1 log=$2 signal=$3
shift 3
"$@" >>"$dir/$log" 2>&1 </dev/null &
pid=$!
echo "$pid"
# A line "SIGNAL keep|remove" from the test process, or end-of-file (read then fails).
if IFS=' ' read -r asked keep; then signal=$asked; else keep=remove; fi
kill -"$signal" "$pid" 2>/dev/null
wait "$pid"
[ "$keep" = keep ] || rm -rf "$dir"
"#;

/// A running server and its watchdog.
pub(crate) struct Watched {
    watchdog: Child,
    pipe: Option<ChildStdin>,
    pid: u32,
}

/// Whom to run the server as: a user id and group id (both), or `None` for this process's.
pub(crate) type RunAs = Option<(u32, u32)>;

impl Watched {
    /// Starts `program args…` in `dir` (its output appended to `dir/log`), watched: on the test
    /// process's end, or on a drop, it gets `signal` (a name such as `QUIT`) and `dir` goes.
    pub(crate) fn spawn(
        dir: &Path,
        log: &str,
        signal: &str,
        program: &Path,
        args: &[String],
        run_as: RunAs,
    ) -> Watched {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(SCRIPT)
            .arg("watchdog")
            .arg(dir)
            .arg(log)
            .arg(signal)
            .arg(program)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0);
        if let Some((uid, gid)) = run_as {
            command.uid(uid).gid(gid);
        }
        // SAFETY: close_range(2) only, which is async-signal-safe, between fork and exec. It marks
        // every descriptor from 3 close-on-exec, so the server holds none of what the test process
        // inherited (a harness's pipes, say) and is waited on through no pipe but its own. Kernels
        // before 5.11 lack the call; the error is ignored, the descriptors then stay.
        unsafe {
            command.pre_exec(|| {
                libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC);
                Ok(())
            });
        }
        let mut watchdog = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting the watchdog for {}: {e}", program.display()));
        let mut line = String::new();
        BufReader::new(watchdog.stdout.take().expect("its stdout"))
            .read_line(&mut line)
            .expect("the watchdog's first line");
        let pid = line.trim().parse().unwrap_or_else(|_| {
            panic!(
                "the watchdog for {} said {line:?}, not a process id",
                program.display()
            )
        });
        let pipe = watchdog.stdin.take();
        Watched { watchdog, pipe, pid }
    }

    /// Whether the server process still runs (an exited one, not yet reaped, does not).
    pub(crate) fn alive(&self) -> bool {
        match std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) {
            // "PID (COMM) STATE …": COMM may hold spaces and parentheses, STATE follows the last ')'.
            Ok(stat) => stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
            Err(_) => false,
        }
    }

    /// Sends the server `signal` and waits until it has exited; keeps its folder when `keep`.
    /// Should it outlive `grace`, it is killed (SIGKILL).
    pub(crate) fn stop(&mut self, signal: &str, keep: bool, grace: Duration) {
        if let Some(mut pipe) = self.pipe.take() {
            let keep = if keep { "keep" } else { "remove" };
            // The watchdog may be gone already (killed by hand); nothing is left to tell then.
            let _ = writeln!(pipe, "{signal} {keep}");
        }
        self.wait(grace);
    }

    /// Waits for the watchdog to end, killing the server (SIGKILL) should it outlive `grace`.
    fn wait(&mut self, grace: Duration) {
        let started = Instant::now();
        loop {
            match self.watchdog.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) if started.elapsed() > grace => {
                    // SAFETY: kill(2) on a process id; no memory is involved.
                    unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGKILL) };
                    let _ = self.watchdog.wait();
                    return;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }
}

impl Drop for Watched {
    /// As at the test process's end: the pipe closed, the default signal, the folder removed.
    fn drop(&mut self) {
        if self.pipe.take().is_some() {
            self.wait(Duration::from_secs(10));
        }
    }
}

/// A free port on 127.0.0.1 (free when asked: something else may take it before the server does).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub(crate) fn accepts(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
}
