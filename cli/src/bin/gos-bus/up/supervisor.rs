//! The processes `gos-bus up` starts: each in its own process group (Ctrl-C reaches only
//! `up`, which stops them in order) with `PR_SET_PDEATHSIG` (killed if `up` dies), output to
//! `logs/NAME.log`; waited for until ready; stopped in reverse order (SIGTERM, 5 s, SIGKILL).

use gos_bus_protocol::proc;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A process `up` started.
pub struct Child {
    /// What it is (`broker`, `render-node`, ...), also its log's name.
    pub name: &'static str,
    /// The process.
    pub proc: std::process::Child,
    /// Its start time (with the pid, its identity; 0 if unknown).
    pub start_time: u64,
    /// Its log file (stdout and stderr).
    pub log: PathBuf,
    ready: Arc<AtomicBool>,
    /// How it exited, once it did.
    pub exit: Option<String>,
}

impl Child {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.proc.id()
    }

    /// The last lines of its log, for an error message.
    pub fn tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n    ")
    }
}

/// Starts `cmd` as `name`: own process group (Ctrl-C reaches only `up`, which stops the
/// children in order), killed if `up` dies, output to `logs/NAME.log`; ready once it prints a
/// line containing `ready` (or any line, when `ready` is `None`).
pub fn spawn(
    name: &'static str,
    mut cmd: Command,
    logs: &Path,
    ready: Option<&str>,
) -> Result<Child, String> {
    use std::os::unix::process::CommandExt;
    let log = logs.join(format!("{name}.log"));
    let file =
        std::fs::File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err = file.try_clone().map_err(|e| e.to_string())?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(err)
        .process_group(0);
    // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)
                .map_err(std::io::Error::from)
        });
    }
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {name} ({program}): {e}"))?;
    let flag = Arc::new(AtomicBool::new(false));
    let stdout = child.stdout.take().expect("piped");
    let (seen, want) = (flag.clone(), ready.map(str::to_string));
    let mut out = file;
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
            let _ = writeln!(out, "{line}");
            if want.as_deref().is_none_or(|w| line.contains(w)) {
                seen.store(true, Relaxed);
            }
        }
    });
    let start_time = proc::start_time(child.id()).unwrap_or(0);
    Ok(Child {
        name,
        proc: child,
        start_time,
        log,
        ready: flag,
        exit: None,
    })
}

/// Waits until `c` is ready (it printed its ready line), failing with its last log lines if it
/// exits first, `limit` passes, or `stop` is set.
pub fn wait_ready(
    c: &mut Child,
    what: &str,
    limit: Duration,
    stop: &AtomicBool,
) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    while !c.ready.load(Relaxed) {
        if let Ok(Some(status)) = c.proc.try_wait() {
            c.exit = Some(status.to_string());
            std::thread::sleep(Duration::from_millis(100));
            return Err(format!(
                "{} exited ({status}) before {what}:\n    {}",
                c.name,
                c.tail(6)
            ));
        }
        if Instant::now() > deadline || stop.load(Relaxed) {
            return Err(format!(
                "{} was not {what} after {limit:?}:\n    {}",
                c.name,
                c.tail(6)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Records the exit of every child that ended; returns an error line for each (a child that
/// ends before the run does is an error).
pub fn reap_exited(children: &mut [Child]) -> Vec<String> {
    let mut errors = Vec::new();
    for c in children.iter_mut() {
        if c.exit.is_none() {
            if let Ok(Some(status)) = c.proc.try_wait() {
                c.exit = Some(status.to_string());
                errors.push(format!(
                    "{} exited early ({status}):\n    {}",
                    c.name,
                    c.tail(6)
                ));
            }
        }
    }
    errors
}

/// The children still alive (by pid and start time), as `name (pid N)`.
pub fn still_running(children: &[Child]) -> Vec<String> {
    children
        .iter()
        .filter(|c| c.start_time != 0 && proc::alive(c.pid(), c.start_time))
        .map(|c| format!("{} (pid {})", c.name, c.pid()))
        .collect()
}

/// Asks every child to stop (SIGTERM), the render node first and then the others in the
/// reverse of their start, waiting up to 5 s for each before killing it.
pub fn stop_all(children: &mut [Child]) {
    // The render node first: its last frames and snapshots show the system as it ran, not
    // the producers' windows closing one by one.
    for c in children.iter_mut().filter(|c| c.name == "render-node") {
        stop(c);
    }
    for c in children.iter_mut().rev() {
        stop(c);
    }
}

/// SIGTERM, then SIGKILL after 5 s; records how `c` ended (once).
fn stop(c: &mut Child) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    if c.exit.is_some() {
        return;
    }
    let _ = kill(Pid::from_raw(c.pid() as i32), Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(Some(status)) = c.proc.try_wait() {
            c.exit = Some(status.to_string());
            break;
        }
        if Instant::now() > deadline {
            let _ = c.proc.kill();
            let status = c.proc.wait().map(|s| s.to_string()).unwrap_or_default();
            c.exit = Some(format!("killed after 5 s ({status})"));
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
