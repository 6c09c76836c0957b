//! What the command lines of `gos-dna-sandbox` and `gos-dna-wasm` share: sizes, time limits,
//! and dying with the executor that started them.

use std::time::Duration;

/// A byte count with an optional K, M or G suffix (powers of 1024): `4096`, `64K`, `16M`, `1G`.
///
/// # Errors
/// Not such a count, or more than `u64` holds.
pub fn bytes(s: &str) -> Result<u64, String> {
    let (num, mul) = match s.trim().to_ascii_uppercase() {
        t if t.ends_with('G') => (t[..t.len() - 1].to_string(), 1u64 << 30),
        t if t.ends_with('M') => (t[..t.len() - 1].to_string(), 1 << 20),
        t if t.ends_with('K') => (t[..t.len() - 1].to_string(), 1 << 10),
        t => (t, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mul))
        .ok_or_else(|| format!("'{s}' is not a byte count (like 4096, 64K, 16M, 1G)"))
}

/// The longest time limit a job may have, in seconds (a week).
pub const MAX_TIMEOUT: f64 = 7.0 * 24.0 * 3600.0;

/// `--timeout SECONDS` as a duration: from 0.001 to [`MAX_TIMEOUT`] seconds.
///
/// # Errors
/// Out of that range, or not a number.
pub fn timeout(seconds: f64) -> Result<Duration, String> {
    if (0.001..=MAX_TIMEOUT).contains(&seconds) {
        Ok(Duration::from_secs_f64(seconds))
    } else {
        let shown = if seconds.abs() < 1e9 {
            seconds.to_string()
        } else {
            format!("{seconds:e}")
        };
        Err(format!(
            "--timeout {shown}: give a number of seconds from 0.001 to {MAX_TIMEOUT} (a week)"
        ))
    }
}

/// Makes this process die (SIGKILL) when the process that started it does, so that nothing a
/// job started outlives its executor.
///
/// # Errors
/// The request failed, or the parent was already gone when it was made.
pub fn die_with_parent() -> Result<(), String> {
    let parent = nix::unistd::getppid();
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(|e| format!("prctl(PR_SET_PDEATHSIG): {e}"))?;
    // A parent gone before the request was made is caught here.
    if nix::unistd::getppid() != parent {
        return Err("the executor that started this process is gone".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_timeouts_are_checked() {
        assert_eq!(bytes("64K"), Ok(64 << 10));
        assert_eq!(bytes("16m"), Ok(16 << 20));
        assert!(bytes("99999999999G").is_err());
        assert!(bytes("lots").is_err());
        assert_eq!(timeout(0.5), Ok(Duration::from_millis(500)));
        for bad in [0.0, 1e-9, -1.0, f64::NAN, f64::INFINITY, 1e20] {
            assert!(timeout(bad).is_err(), "{bad}");
        }
    }
}
