//! Facts about processes that crash recovery keys on.

/// Start time of process `pid` in clock ticks since boot (`/proc/PID/stat` field 22), which
/// with the pid identifies a process even after its pid is reused. `None` if it is gone.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: skip past it.
    let rest = &stat[stat.rfind(')')? + 1..];
    // Fields after the name start at field 3; field 22 is the 20th of them.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Seconds process `pid`, started at `start_time` (clock ticks since boot, as
/// [`start_time`] reads it), has been running: `/proc/uptime` minus the start. `None` when
/// either cannot be read (a start time of 0: unknown).
pub fn uptime_secs(start_time: u64) -> Option<f64> {
    if start_time == 0 {
        return None;
    }
    let boot = std::fs::read_to_string("/proc/uptime").ok()?;
    let since_boot: f64 = boot.split_whitespace().next()?.parse().ok()?;
    // SAFETY: sysconf reads a configuration value; it has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| (since_boot - start_time as f64 / hz as f64).max(0.0))
}

/// True while process `pid` runs and (when `start_time` is not 0) is the same process that
/// had that start time: a reused pid, a zombie and a vanished process all count as dead.
pub fn alive(pid: u32, start_time: u64) -> bool {
    if pid == 0 {
        return false;
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return false;
    };
    let mut fields = rest.split_whitespace();
    if matches!(fields.next(), Some("Z") | Some("X") | Some("x")) {
        return false;
    }
    if start_time == 0 {
        return true;
    }
    fields.nth(18).and_then(|f| f.parse::<u64>().ok()) == Some(start_time)
}

/// The PID namespace of this process: the inode of `/proc/self/ns/pid` (the number `readlink`
/// shows as `pid:[N]`). Two processes compare pids meaningfully only in the same one.
pub fn pid_namespace() -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/pid").ok().map(|m| m.ino())
}

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Registers fork handlers (`pthread_atfork(3)`): `prepare` runs in the forking thread just
/// before `fork`, `parent` and `child` just after it in each process. For state a lock
/// guards, so that a child never inherits it locked by a thread it does not have. Returns
/// false when the handlers could not be registered (out of memory).
pub fn at_fork(prepare: extern "C" fn(), parent: extern "C" fn(), child: extern "C" fn()) -> bool {
    // SAFETY: the three are plain `extern "C" fn()` with no arguments, as pthread_atfork
    // expects, and live for the whole program (fn items are 'static).
    unsafe { nix::libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) == 0 }
}

static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_stop_signal(_: nix::libc::c_int) {
    STOP.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Turns SIGINT and SIGTERM into a flag the process polls to stop cleanly: returns it (set
/// once either signal arrives). Installing twice is harmless.
pub fn stop_on_signals() -> &'static std::sync::atomic::AtomicBool {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(
        SigHandler::Handler(on_stop_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        let _ = unsafe { sigaction(sig, &action) };
    }
    &STOP
}

/// CPU time the calling thread has used (zero where the clock cannot be read).
pub fn thread_cpu_time() -> std::time::Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(|t| std::time::Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn own_start_time_is_stable_and_others_differ() {
        let me = std::process::id();
        let a = super::start_time(me).unwrap();
        assert_eq!(Some(a), super::start_time(me));
        assert!(super::start_time(u32::MAX).is_none());
        assert!(super::alive(me, a));
        assert!(
            !super::alive(me, a + 1),
            "another start time is another process"
        );
        assert!(!super::alive(u32::MAX, 0));
    }

    #[test]
    fn uptime_counts_from_the_process_start() {
        let me = super::start_time(std::process::id()).unwrap();
        let mine = super::uptime_secs(me).unwrap();
        // Boot itself (start time 1 tick) has been up longer than this process.
        assert!(super::uptime_secs(1).unwrap() >= mine);
        assert!(mine >= 0.0);
        assert_eq!(super::uptime_secs(0), None, "0 is an unknown start time");
    }

    #[test]
    fn a_zombie_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let t = super::start_time(pid);
        // Wait for the exit itself but leave the child unreaped (WNOWAIT): a zombie.
        use nix::sys::wait::{waitid, Id, WaitPidFlag};
        let status = waitid(
            Id::Pid(nix::unistd::Pid::from_raw(pid as i32)),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT,
        )
        .unwrap();
        assert!(matches!(status, nix::sys::wait::WaitStatus::Exited(..)));
        assert!(!super::alive(pid, t.unwrap_or(0)));
        child.wait().unwrap();
    }
}
