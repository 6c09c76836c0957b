//! Running one job: the sandbox's command line, the job's channel, its output, its clock.
//!
//! ```text
//! runner ── bwrap (new user, mount, PID, IPC, network, UTS, cgroup namespaces; a root of
//!   │        read-only binds: /usr, the interpreter's prefix; a tmpfs /work of work_size)
//!   │        └─ gos-dna-sandbox confine (rlimits, no_new_privs, Landlock, seccomp) ─exec→
//!   │             python -I -S -B /run/gos/prelude.py /run/gos/job.py
//!   ├─ output pipe (stdout + stderr): kept up to max_output, then the job is stopped
//!   ├─ calls pipe (job → runner): one JSON line per API call, checked by `api::parse_line`
//!   └─ replies pipe (runner → job): one JSON line per call
//! ```
//!
//! The runner kills the sandbox at the wall-time limit (bubblewrap's `--die-with-parent` and
//! the PID namespace take every process of the job with it), and reads how the job ended from
//! its exit status, its exit report and what the runner itself saw (see [`Outcome`]).

use crate::api::{self, ApiCall, Line};
use crate::limits::{Limit, Limits, Status};
use gos_layouts::WasmValue;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

/// Where the helper, the prelude and the script appear inside the sandbox.
const INSIDE: &str = "/run/gos";
/// The job's private work folder inside the sandbox.
pub const WORK: &str = "/work";

/// How a job is isolated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Isolation {
    /// Every layer: namespaces (bubblewrap), Landlock, seccomp, rlimits.
    Sandbox {
        /// The `bwrap` to run.
        bwrap: PathBuf,
        /// The program that confines (this crate's `gos-dna-sandbox`, run as `confine`).
        helper: PathBuf,
        /// Run with a Landlock that enforces less than asked (an older kernel).
        weaker: bool,
    },
    /// A plain child process with the same channel and limits on time and output, and no
    /// isolation: for trusted code and for measuring what the sandbox costs.
    Plain,
}

/// One job to run.
#[derive(Debug, Clone)]
pub struct Job {
    /// Python source.
    pub code: String,
    /// The `DnaJob::allowed_api_mask` bits it may call.
    pub api_mask: u64,
    /// Its limits.
    pub limits: Limits,
}

/// What runs jobs: the interpreter and the isolation.
#[derive(Debug, Clone)]
pub struct Runner {
    /// The Python interpreter (resolved: no symlink).
    pub python: PathBuf,
    /// Its installation prefix (bound read-only into the sandbox).
    pub python_prefix: PathBuf,
    /// The isolation.
    pub isolation: Isolation,
}

/// How a job ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// ok, error, timeout, rejected.
    pub status: Status,
    /// The exit code (128 + N for signal N); -1 when it did not run.
    pub exit_code: i32,
    /// The limit that ended it.
    pub limit: Limit,
    /// One line: why it ended so.
    pub reason: String,
    /// What it printed (stdout and stderr), at most `max_output` bytes.
    pub output: Vec<u8>,
    /// Calls carried out.
    pub calls: u32,
    /// Calls refused.
    pub refused: u32,
    /// Wall time from start to end.
    pub wall: Duration,
    /// What the confining helper applied (`{"landlock": ..., "seccomp": ...}`), when sandboxed.
    pub confined: Option<Value>,
    /// The values a WebAssembly export returned (none for a script).
    pub values: Vec<WasmValue>,
}

impl Outcome {
    /// Rejected before running.
    pub fn rejected(reason: impl Into<String>) -> Outcome {
        Outcome {
            status: Status::Rejected,
            exit_code: -1,
            limit: Limit::None,
            reason: reason.into(),
            output: Vec::new(),
            calls: 0,
            refused: 0,
            wall: Duration::ZERO,
            confined: None,
            values: Vec::new(),
        }
    }

    /// One line for a person: `ok: why (1 calls, 0 refused, 12.3 ms)`.
    pub fn summary(&self) -> String {
        format!(
            "{}: {} ({} call{}, {} refused, {:.2} ms)",
            self.status.name(),
            self.reason,
            self.calls,
            if self.calls == 1 { "" } else { "s" },
            self.refused,
            self.wall.as_secs_f64() * 1e3
        )
    }

    /// As one JSON object (the runner's `result` line).
    pub fn to_json(&self) -> Value {
        json!({
            "status": self.status.name(),
            "status_code": self.status.code(),
            "exit_code": self.exit_code,
            "limit": self.limit.name(),
            "limit_code": self.limit.code(),
            "reason": self.reason,
            "output": String::from_utf8_lossy(&self.output),
            "calls": self.calls,
            "refused": self.refused,
            "wall_ms": self.wall.as_secs_f64() * 1e3,
            "confined": self.confined,
            "values": self.values.iter().map(|v| v.to_json()).collect::<Vec<_>>(),
        })
    }
}

/// What carries out a checked call: `Ok(value)` is returned to the job, `Err(text)` raised in
/// it as `gos.ApiError`.
pub type Handler<'h> = dyn FnMut(&ApiCall) -> Result<Value, String> + Send + 'h;

impl Runner {
    /// A runner for `python` (a path, a name looked up on `PATH`, or `auto`: the system's
    /// `/usr/bin/python3` when there is one, else `python3` on `PATH`) with `isolation`.
    ///
    /// # Errors
    /// The interpreter cannot be found, or (sandboxed, run as root) the sandbox's user
    /// `nobody` could not reach it.
    pub fn new(python: &str, isolation: Isolation) -> Result<Runner, String> {
        let python = match python {
            "auto" if Path::new("/usr/bin/python3").is_file() => "/usr/bin/python3",
            "auto" => "python3",
            p => p,
        };
        let found = if python.contains('/') {
            PathBuf::from(python)
        } else {
            std::env::var_os("PATH")
                .and_then(|p| {
                    std::env::split_paths(&p)
                        .map(|d| d.join(python))
                        .find(|p| p.is_file())
                })
                .ok_or_else(|| format!("{python} is not on PATH (pass --python PATH)"))?
        };
        let python = found
            .canonicalize()
            .map_err(|e| format!("cannot use the interpreter {}: {e}", found.display()))?;
        // …/bin/python3.11 → …
        let python_prefix = python
            .parent()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .ok_or_else(|| format!("{} is not inside a bin folder", python.display()))?;
        if python_prefix == Path::new("/") {
            return Err(format!(
                "{} sits at the top of the file system: give an interpreter inside a prefix (such as /usr/bin/python3)",
                python.display()
            ));
        }
        if matches!(isolation, Isolation::Sandbox { .. }) && nix::unistd::geteuid().is_root() {
            use std::os::unix::fs::PermissionsExt;
            let closed = python
                .ancestors()
                .skip(1)
                .find(|d| std::fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o001 == 0));
            if let Some(d) = closed {
                return Err(format!(
                    "jobs run as nobody, who cannot reach the interpreter {} ({} is closed to \
                     others): pass --python with a Python 3 outside it (such as /usr/bin/python3)",
                    python.display(),
                    d.display()
                ));
            }
        }
        Ok(Runner {
            python,
            python_prefix,
            isolation,
        })
    }

    /// The folders of the interpreter's prefix a sandbox binds (none under `/usr`, which is
    /// bound whole): `bin`, `lib` and `lib64`, never the prefix itself (a home folder, say).
    fn prefix_dirs(&self) -> Vec<PathBuf> {
        if self.python_prefix.starts_with("/usr") {
            return Vec::new();
        }
        ["bin", "lib", "lib64"]
            .iter()
            .map(|d| self.python_prefix.join(d))
            .filter(|d| d.is_dir())
            .collect()
    }

    /// Runs `job`, answering its API calls with `handler`. Never fails: a sandbox that cannot
    /// be set up is a [`Status::Rejected`] outcome naming why.
    pub fn run(&self, job: &Job, handler: &mut Handler<'_>) -> Outcome {
        let dir = match Scratch::new(&job.code) {
            Ok(d) => d,
            Err(e) => return Outcome::rejected(format!("cannot write the job's files: {e}")),
        };
        match self.run_in(job, &dir, handler) {
            Ok(o) => o,
            Err(e) => Outcome::rejected(e),
        }
    }

    /// The command that runs `job`, its channel on file descriptors `fds` (calls, replies),
    /// the files it binds opened as `paths`.
    fn command(&self, job: &Job, dir: &Scratch, fds: (i32, i32), paths: &Bound) -> Command {
        let (cfd, rfd) = (fds.0.to_string(), fds.1.to_string());
        let py_args = |prelude: &Path, script: &Path| {
            vec![
                self.python.as_os_str().to_owned(),
                "-I".into(),
                "-S".into(),
                "-B".into(),
                prelude.as_os_str().to_owned(),
                script.as_os_str().to_owned(),
            ]
        };
        match &self.isolation {
            Isolation::Plain => {
                let args = py_args(&dir.prelude, &dir.script);
                let mut c = Command::new(&args[0]);
                c.args(&args[1..])
                    .current_dir(&dir.path)
                    .env_clear()
                    .env("PATH", "/usr/bin:/bin")
                    .env("LANG", "C.UTF-8")
                    .env("GOS_DNA_CALLS_FD", &cfd)
                    .env("GOS_DNA_REPLIES_FD", &rfd)
                    .process_group(0);
                c
            }
            Isolation::Sandbox { bwrap, weaker, .. } => {
                let l = &job.limits;
                let mut c = Command::new(bwrap);
                c.args([
                    "--unshare-all",
                    "--unshare-user",
                    "--disable-userns",
                    "--uid",
                    "65534",
                    "--gid",
                    "65534",
                    "--hostname",
                    "dna",
                    "--die-with-parent",
                    "--new-session",
                ]);
                let mut read: Vec<PathBuf> = Vec::new();
                for top in [
                    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
                ] {
                    let p = Path::new(top);
                    match std::fs::read_link(p) {
                        Ok(target) => {
                            c.arg("--symlink").arg(target).arg(p);
                        }
                        Err(_) if p.is_dir() => {
                            c.arg("--ro-bind").arg(p).arg(p);
                            read.push(p.into());
                        }
                        Err(_) => {}
                    }
                }
                for dir in self.prefix_dirs() {
                    c.arg("--ro-bind").arg(&dir).arg(&dir);
                    read.push(dir);
                }
                let inside = Path::new(INSIDE);
                let (helper_in, prelude_in, script_in) = (
                    inside.join("gos-dna-sandbox"),
                    inside.join("prelude.py"),
                    inside.join("job.py"),
                );
                // Copied in from descriptors this runner opened: the sandbox's user needs no way
                // through the folders above them (a root-only home, the runner's scratch).
                for (fd, inside, perms) in [
                    (&paths.files[0], &helper_in, "0555"),
                    (&paths.files[1], &prelude_in, "0444"),
                    (&paths.files[2], &script_in, "0444"),
                ] {
                    c.args(["--perms", perms, "--ro-bind-data"])
                        .arg(fd.as_raw_fd().to_string())
                        .arg(inside);
                }
                if nix::unistd::geteuid().is_root() {
                    // A job mapped to root outside its user namespace would escape
                    // RLIMIT_NPROC (the kernel exempts root): run it as nobody.
                    c.uid(NOBODY).gid(NOBODY);
                }
                read.push(inside.into());
                c.args(["--dev", "/dev", "--size"])
                    .arg(l.work_size.to_string())
                    .args(["--tmpfs", WORK, "--chdir", WORK, "--clearenv"])
                    .args(["--setenv", "PATH", "/usr/bin:/bin"])
                    .args(["--setenv", "HOME", WORK])
                    .args(["--setenv", "TMPDIR", WORK])
                    .args(["--setenv", "LANG", "C.UTF-8"])
                    .args(["--setenv", "GOS_DNA_CALLS_FD", &cfd])
                    .args(["--setenv", "GOS_DNA_REPLIES_FD", &rfd]);
                c.arg("--").arg(&helper_in).arg("confine");
                c.arg("--cpu").arg(l.cpu_secs.to_string());
                c.arg("--memory").arg(l.memory.to_string());
                c.arg("--processes").arg(l.processes.to_string());
                c.arg("--file-size").arg(l.file_size.to_string());
                c.arg("--open-files").arg(l.open_files.to_string());
                for r in read.iter().chain([&PathBuf::from("/dev")]) {
                    c.arg("--read").arg(r);
                }
                c.args(["--write", WORK, "--write", "/dev/null"]);
                if *weaker {
                    c.arg("--weaker");
                }
                c.arg("--").args(py_args(&prelude_in, &script_in));
                c
            }
        }
    }

    fn run_in(
        &self,
        job: &Job,
        dir: &Scratch,
        handler: &mut Handler<'_>,
    ) -> Result<Outcome, String> {
        let (calls_r, calls_w) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
        let (replies_r, replies_w) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
        let (out_r, out_w) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
        let bound = Bound::open(self, dir)
            .map_err(|e| format!("cannot open what the sandbox binds: {e}"))?;
        let mut cmd = self.command(
            job,
            dir,
            (calls_w.as_raw_fd(), replies_r.as_raw_fd()),
            &bound,
        );
        // The child keeps exactly stdio, the channel and what bwrap copies in: every other
        // descriptor (this process's, or inherited by it) is closed at exec. Done in the child
        // alone, so jobs started at once from one process never hold each other's pipes.
        let keep: Vec<i32> = [calls_w.as_raw_fd(), replies_r.as_raw_fd()]
            .into_iter()
            .chain(bound.files.iter().map(|f| f.as_raw_fd()))
            .collect();
        // SAFETY: runs in the forked child before exec, and calls only close_range(2) and
        // fcntl(2), which are async-signal-safe; `keep` was built before the fork and is only
        // read.
        unsafe {
            cmd.pre_exec(move || {
                const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
                if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, CLOSE_RANGE_CLOEXEC) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                for &fd in &keep {
                    if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let out_w2 = out_w.try_clone().map_err(|e| format!("pipe: {e}"))?;
        cmd.stdin(Stdio::null()).stdout(out_w).stderr(out_w2);
        let started = Instant::now();
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", cmd.get_program().to_string_lossy()))?;
        // Only the child holds its ends now: EOF comes when the job is gone.
        drop(cmd);
        drop(bound);
        drop(calls_w);
        drop(replies_r);
        let pid = child.id() as i32;
        let plain = self.isolation == Isolation::Plain;
        // Whether the child is reaped. `stop` signals only under this lock and only while the
        // child is not reaped, so its pid cannot belong to another process yet.
        let reaped = Mutex::new(false);
        let killed = AtomicBool::new(false);
        let target = Pid::from_raw(if plain { -pid } else { pid });
        let stop = || {
            let reaped = reaped.lock().unwrap_or_else(|e| e.into_inner());
            if !*reaped {
                // The process group (plain) or bwrap, whose death takes the PID namespace.
                killed.store(true, Ordering::Relaxed);
                let _ = kill(target, Signal::SIGKILL);
            }
        };
        let finished = AtomicBool::new(false);
        let output_over = AtomicBool::new(false);
        let calls = AtomicU32::new(0);
        let refused = AtomicU32::new(0);
        let max_out = job.limits.max_output;
        let (waited, timed_out, output, relay) = std::thread::scope(|s| {
            let out = s.spawn(|| {
                let mut kept = Vec::new();
                let mut r = Watched::new(out_r, &finished);
                let mut buf = [0u8; 16384];
                loop {
                    match r.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let room = max_out.saturating_sub(kept.len());
                            kept.extend_from_slice(&buf[..n.min(room)]);
                            if n > room {
                                output_over.store(true, Ordering::Release);
                                stop();
                                break;
                            }
                        }
                    }
                }
                kept
            });
            let calls_r = Watched::new(calls_r, &finished);
            let relay =
                s.spawn(|| relay(calls_r, replies_w, job, !plain, handler, &calls, &refused));
            let (tx, rx) = mpsc::channel();
            let (reaped, stop_group) = (&reaped, plain);
            s.spawn(move || {
                let _ = tx.send(reap(pid, reaped, stop_group));
            });
            let mut timed_out = false;
            let waited = match rx.recv_timeout(job.limits.wall) {
                Ok(w) => w,
                Err(_) => {
                    timed_out = true;
                    stop();
                    rx.recv()
                        .unwrap_or_else(|_| Err("the waiter is gone".into()))
                }
            };
            // A pipe a stray process still holds (a plain job's child in a session of its own)
            // is read for a moment more, then let go.
            finished.store(true, Ordering::Release);
            let output = out.join().unwrap_or_default();
            let relay = relay.join().unwrap_or_default();
            (waited, timed_out, output, relay)
        });
        drop(child);
        let status = waited?;
        let wall = started.elapsed();
        let mut o = Outcome {
            status: Status::Ok,
            exit_code: exit_code(status),
            limit: Limit::None,
            reason: String::new(),
            output,
            calls: calls.load(Ordering::Relaxed),
            refused: refused.load(Ordering::Relaxed),
            wall,
            confined: relay.confined.clone(),
            values: Vec::new(),
        };
        if !plain && relay.confined.is_none() {
            let why = String::from_utf8_lossy(&o.output);
            let why = why
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no message");
            let mut r = Outcome::rejected(format!("the sandbox could not start: {why}"));
            r.output = o.output;
            return Ok(r);
        }
        let seen = Seen {
            timed_out,
            output_over: output_over.load(Ordering::Acquire),
            killed_by_runner: killed.load(Ordering::Relaxed),
        };
        classify(&mut o, job, &seen, &relay);
        Ok(o)
    }
}

/// What the runner saw of a job's end, besides its exit status.
struct Seen {
    timed_out: bool,
    output_over: bool,
    killed_by_runner: bool,
}

/// Waits for `pid` to end without reaping it (so `stop` may still signal it), kills what is
/// left of its process group when `group` (a plain job), then reaps it under the `reaped`
/// lock and returns its exit status.
fn reap(pid: i32, reaped: &Mutex<bool>, group: bool) -> Result<ExitStatus, String> {
    use nix::sys::wait::{waitid, Id, WaitPidFlag};
    loop {
        match waitid(
            Id::Pid(Pid::from_raw(pid)),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT,
        ) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("waiting for the job: {e}")),
            Ok(_) => break,
        }
    }
    if group {
        // The leader is a zombie: its group id cannot be reused yet.
        let _ = kill(Pid::from_raw(-pid), Signal::SIGKILL);
    }
    let mut reaped = reaped.lock().unwrap_or_else(|e| e.into_inner());
    let mut status: libc::c_int = 0;
    // SAFETY: `status` is valid for a write; `pid` is our unreaped child.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    *reaped = true;
    if r != pid {
        return Err(format!(
            "waiting for the job: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(ExitStatus::from_raw(status))
}

/// A pipe read with `poll`, so that a reader can give up once the job has ended
/// (`finished`) and the pipe stayed silent for [`GRACE`]: a descriptor held open by a stray
/// process never hangs the runner.
struct Watched<'a> {
    pipe: std::io::PipeReader,
    finished: &'a AtomicBool,
    quiet_since: Option<Instant>,
}

/// How long a pipe may stay silent after its job ended before the runner stops reading it.
const GRACE: Duration = Duration::from_millis(500);

impl<'a> Watched<'a> {
    fn new(pipe: std::io::PipeReader, finished: &'a AtomicBool) -> Self {
        Watched {
            pipe,
            finished,
            quiet_since: None,
        }
    }
}

impl Read for Watched<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        loop {
            let mut fds = [PollFd::new(self.pipe.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(100u16)) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => {
                    if self.finished.load(Ordering::Acquire) {
                        let since = *self.quiet_since.get_or_insert_with(Instant::now);
                        if since.elapsed() >= GRACE {
                            return Ok(0);
                        }
                    }
                }
                Ok(_) => return self.pipe.read(buf),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// The exit code as a shell reports it: the code, or 128 + the signal.
fn exit_code(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        _ => -1,
    }
}

fn classify(o: &mut Outcome, job: &Job, seen: &Seen, relay: &Relayed) {
    let l = &job.limits;
    let (timed_out, output_over) = (seen.timed_out, seen.output_over);
    if timed_out {
        o.status = Status::Timeout;
        o.limit = Limit::WallTime;
        o.reason = format!(
            "stopped at the wall-time limit of {:.3} s",
            l.wall.as_secs_f64()
        );
        return;
    }
    if output_over {
        o.status = Status::Error;
        o.limit = Limit::Output;
        o.reason = format!(
            "stopped when its output passed the limit of {} bytes",
            l.max_output
        );
        return;
    }
    if o.exit_code == 0 {
        o.reason = "exit code 0".into();
        return;
    }
    o.status = Status::Error;
    let signal = (o.exit_code > 128).then(|| o.exit_code - 128);
    if let Some(sig) = signal {
        o.limit = Limit::from_signal(sig);
        // RLIMIT_CPU's hard limit ends a job that ignored SIGXCPU with SIGKILL, one CPU
        // second after the soft limit. The job's CPU time does not come back through
        // bubblewrap, so a SIGKILL the runner did not send, after at least that long, is taken
        // for it (the job's memory is bounded by RLIMIT_AS, so the OOM killer is unlikely).
        if sig == libc::SIGKILL
            && !seen.killed_by_runner
            && o.wall >= Duration::from_secs(l.cpu_secs + 1)
        {
            o.limit = Limit::CpuTime;
        }
        if o.limit == Limit::CpuTime {
            o.status = Status::Timeout;
        }
    }
    if o.limit == Limit::None {
        if let Some((exc, errno, _)) = &relay.exit {
            o.limit = Limit::from_exception(exc, *errno);
        }
    }
    let what = match &relay.exit {
        Some((exc, _, msg)) if !msg.is_empty() => format!("{exc}: {msg}"),
        Some((exc, Some(e), _)) => format!("{exc} (errno {e})"),
        Some((exc, None, _)) => exc.clone(),
        None => match signal {
            Some(s) => format!("signal {s}"),
            None => String::new(),
        },
    };
    let limit = match o.limit {
        Limit::None => String::new(),
        Limit::WallTime | Limit::Output => unreachable!("handled above"),
        Limit::CpuTime if signal == Some(libc::SIGKILL) => format!(
            " (CPU-time limit of {} s: SIGKILL after an ignored SIGXCPU)",
            l.cpu_secs
        ),
        Limit::CpuTime => format!(" (CPU-time limit of {} s)", l.cpu_secs),
        Limit::Memory => format!(" (memory limit of {} MiB)", l.memory >> 20),
        Limit::Processes => format!(" (process limit of {})", l.processes),
        Limit::FileSize => format!(" (file-size limit of {} MiB)", l.file_size >> 20),
        Limit::WorkFolder => format!(" (work folder full: {} MiB)", l.work_size >> 20),
        Limit::OpenFiles => format!(" (open-files limit of {})", l.open_files),
        Limit::Forbidden => " (forbidden by the sandbox)".into(),
    };
    o.reason = if what.is_empty() {
        format!("exit code {}{limit}", o.exit_code)
    } else {
        format!("exit code {}, {what}{limit}", o.exit_code)
    };
}

#[derive(Default)]
struct Relayed {
    confined: Option<Value>,
    exit: Option<(String, Option<i64>, String)>,
}

/// Reads the job's calls until it closes its end; answers each. With `sandboxed`, the first
/// line is the confining helper's report (written before the job could write anything).
fn relay(
    calls: Watched<'_>,
    mut replies: std::io::PipeWriter,
    job: &Job,
    sandboxed: bool,
    handler: &mut Handler<'_>,
    done: &AtomicU32,
    refused: &AtomicU32,
) -> Relayed {
    let mut r = BufReader::new(calls);
    let mut got = Relayed::default();
    let mut first = true;
    let mut line = Vec::new();
    loop {
        let too_long = match read_line_bounded(&mut r, &mut line, api::MAX_LINE) {
            Ok(None) => break,
            Ok(Some(t)) => t,
            Err(_) => break,
        };
        if std::mem::take(&mut first) && sandboxed {
            // The first line is the confining helper's, written before the job started.
            if let Ok(Value::Object(mut o)) = serde_json::from_slice::<Value>(&line) {
                if let Some(c) = o.remove("confined") {
                    got.confined = Some(c);
                    continue;
                }
            }
        }
        let parsed = if too_long {
            Err(api::CallError::TooLong)
        } else {
            api::parse_line(&line, job.api_mask)
        };
        let reply = match parsed {
            Ok(Line::Exit {
                exception,
                errno,
                message,
            }) => {
                got.exit = Some((exception, errno, message));
                continue;
            }
            Ok(Line::Call(_)) if done.load(Ordering::Relaxed) >= job.limits.max_calls => {
                refused.fetch_add(1, Ordering::Relaxed);
                json!({ "error": format!("the limit of {} API calls is reached", job.limits.max_calls) })
            }
            Ok(Line::Call(call)) => {
                done.fetch_add(1, Ordering::Relaxed);
                match handler(&call) {
                    Ok(v) => json!({ "ok": v }),
                    Err(e) => json!({ "error": e }),
                }
            }
            Err(e) => {
                refused.fetch_add(1, Ordering::Relaxed);
                json!({ "error": e.to_string() })
            }
        };
        let mut text = reply.to_string();
        text.push('\n');
        if replies.write_all(text.as_bytes()).is_err() {
            break;
        }
    }
    got
}

/// Reads one line into `line` (without its newline), keeping at most `max + 1` bytes and
/// discarding the rest of a longer one. `None` at end of input; `Some(true)` for a line that
/// was longer than `max`.
fn read_line_bounded(
    r: &mut impl BufRead,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<bool>> {
    line.clear();
    let mut too_long = false;
    let mut any = false;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(any.then_some(too_long));
        }
        any = true;
        let (chunk, end) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        if !too_long {
            let room = (max + 1).saturating_sub(line.len());
            line.extend_from_slice(&chunk[..chunk.len().min(room)]);
            too_long = line.len() > max;
        }
        let used = end.unwrap_or(chunk.len());
        r.consume(used);
        if end.is_some() {
            return Ok(Some(too_long));
        }
    }
}

/// The user a sandbox runs as when the runner is root (`nobody`).
pub const NOBODY: u32 = 65534;

/// What a sandbox gets copied in from descriptors (inherited by bwrap): the helper, the
/// prelude and the script.
struct Bound {
    files: Vec<std::fs::File>,
}

impl Bound {
    fn open(runner: &Runner, dir: &Scratch) -> std::io::Result<Bound> {
        let open = |p: &Path| {
            let f = std::fs::File::open(p)?;
            nix::fcntl::fcntl(
                f.as_raw_fd(),
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
            )
            .map_err(std::io::Error::from)?;
            Ok::<_, std::io::Error>(f)
        };
        let Isolation::Sandbox { helper, .. } = &runner.isolation else {
            return Ok(Bound { files: Vec::new() });
        };
        Ok(Bound {
            files: vec![open(helper)?, open(&dir.prelude)?, open(&dir.script)?],
        })
    }
}

/// The runner's own folder for one job: the prelude and the script, removed when dropped.
struct Scratch {
    path: PathBuf,
    prelude: PathBuf,
    script: PathBuf,
}

impl Scratch {
    fn new(code: &str) -> std::io::Result<Scratch> {
        use std::os::unix::fs::DirBuilderExt;
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "gos-dna-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        let s = Scratch {
            prelude: path.join("prelude.py"),
            script: path.join("job.py"),
            path,
        };
        std::fs::write(&s.prelude, api::python_prelude())?;
        std::fs::write(&s.script, code)?;
        Ok(s)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_and_flagged_and_the_next_line_is_whole() {
        let data = format!("{}\nshort\nlast", "x".repeat(10_000));
        let mut r = BufReader::with_capacity(64, data.as_bytes());
        let mut line = Vec::new();
        assert_eq!(
            read_line_bounded(&mut r, &mut line, 100).unwrap(),
            Some(true)
        );
        assert_eq!(line.len(), 101);
        assert_eq!(
            read_line_bounded(&mut r, &mut line, 100).unwrap(),
            Some(false)
        );
        assert_eq!(line, b"short");
        assert_eq!(
            read_line_bounded(&mut r, &mut line, 100).unwrap(),
            Some(false)
        );
        assert_eq!(line, b"last");
        assert_eq!(read_line_bounded(&mut r, &mut line, 100).unwrap(), None);
    }
}
