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

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn own_start_time_is_stable_and_others_differ() {
        let me = std::process::id();
        let a = super::start_time(me).unwrap();
        assert_eq!(Some(a), super::start_time(me));
        assert!(super::start_time(u32::MAX).is_none());
    }
}
