//! Waiting: futex words inside the shared mapping (process-shared, not `FUTEX_PRIVATE`), and
//! the three strategies a caller can pick.

use crate::sync::AtomicU32;
use std::time::Duration;

/// How a consumer (or a producer facing a full ring) waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitStrategy {
    /// Spin on the ring without ever sleeping: lowest latency, burns a core.
    BusyPoll,
    /// Spin for about `spins` rounds, then sleep on the futex word.
    SpinThenBlock {
        /// Rounds of polling before sleeping.
        spins: u32,
    },
    /// Sleep on the futex word at once.
    Block,
}

impl Default for WaitStrategy {
    fn default() -> Self {
        WaitStrategy::SpinThenBlock { spins: 4096 }
    }
}

/// How long after a consumer registered as a possible sleeper its sleeps stay short: a
/// producer that read `sleepy_consumers` just before the registration skips the wake-up
/// check for the commit it was making (see `ring::notify`). On x86 that window is the time a
/// store waits in the store buffer (nanoseconds); the grace covers it with a wide margin.
pub const REGISTRATION_GRACE: Duration = Duration::from_millis(10);
/// Longest single sleep during the grace.
pub const GRACE_SLICE: Duration = Duration::from_micros(200);
/// Longest single sleep of a consumer after the grace: a backstop that bounds the cost of any
/// wake-up the memory model would allow to be missed, at about 10 wake-ups a second.
pub const CONSUMER_SLICE: Duration = Duration::from_millis(100);

/// The longest sleep for a consumer registered as a possible sleeper at `since`.
pub fn consumer_slice(since: std::time::Instant) -> Duration {
    if since.elapsed() < REGISTRATION_GRACE {
        GRACE_SLICE
    } else {
        CONSUMER_SLICE
    }
}

/// Most pause instructions between two polls of a spinning waiter.
pub const BACKOFF: u32 = 16;

/// Longest single sleep of a producer waiting for space; the wake from consumers is cheap but
/// may be missed in a tiny window (see `ring::notify::wake_producers`), so it re-checks.
pub const SPACE_SLICE: Duration = Duration::from_millis(5);

/// Wakes every thread sleeping on `word`, in any process.
#[cfg(not(loom))]
pub fn wake_all(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE only uses the address as a key; `word` is a valid, aligned u32 in a
    // shared mapping. No memory is read or written by the kernel.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            i32::MAX,
            std::ptr::null::<libc::timespec>(),
        );
    }
}

/// Under loom there is nothing to wake: models never sleep.
#[cfg(loom)]
pub fn wake_all(_word: &AtomicU32) {}

/// Sleeps while `*word == expected`, at most `timeout` (forever when `None`). Returns early on
/// a wake-up, a signal or a value change; the caller re-checks its condition.
#[cfg(not(loom))]
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a valid, aligned u32 that outlives the call; `ts_ptr` is null or points
    // to a timespec on our stack. FUTEX_WAIT (shared) compares and sleeps; any error (EAGAIN,
    // EINTR, ETIMEDOUT) just returns to the caller's re-check.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            ts_ptr,
        );
    }
}

/// Polls `attempt` until it yields a value, waiting between attempts with `strategy` on the
/// futex `word` (with `waiters` counting sleepers, see `ring::notify`), until `deadline`.
/// `slice` gives the cap of each single sleep, asked before every sleep (for wake-ups that may
/// be missed). Returns `None` on timeout.
#[cfg(not(loom))]
pub fn wait_until<R>(
    word: &AtomicU32,
    waiters: &AtomicU32,
    strategy: WaitStrategy,
    deadline: Option<std::time::Instant>,
    slice: impl Fn() -> Option<Duration>,
    mut attempt: impl FnMut() -> Option<R>,
) -> Option<R> {
    use crate::sync::{fence, Ordering::*};
    use std::time::Instant;
    let spins = match strategy {
        WaitStrategy::BusyPoll => u32::MAX,
        WaitStrategy::SpinThenBlock { spins } => spins,
        WaitStrategy::Block => 0,
    };
    let mut round: u32 = 0;
    loop {
        if let Some(r) = attempt() {
            return Some(r);
        }
        // A deadline already passed (a timeout of zero): one attempt was all that was asked.
        if round == 0 && deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        if round < spins {
            round = round.saturating_add(1);
            // Back off a little between polls: a consumer that re-reads the slot the producer
            // is writing steals its cache line on every read and slows the producer down.
            for _ in 0..BACKOFF.min(round) {
                std::hint::spin_loop();
            }
            if round.is_multiple_of(64) && deadline.is_some_and(|d| Instant::now() >= d) {
                return None;
            }
            continue;
        }
        let remaining = match deadline {
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return None;
                }
                Some(d - now)
            }
            None => None,
        };
        let sleep = match (remaining, slice()) {
            (Some(r), Some(s)) => Some(r.min(s)),
            (r, s) => r.or(s),
        };
        // Acquire: pairs with the waker's Release increment of the word.
        let seen = word.load(Acquire);
        waiters.fetch_add(1, Relaxed);
        // SeqCst: pairs with the waker's fence (see `ring::notify`).
        fence(SeqCst);
        if let Some(r) = attempt() {
            waiters.fetch_sub(1, Relaxed);
            return Some(r);
        }
        futex_wait(word, seen, sleep);
        waiters.fetch_sub(1, Relaxed);
    }
}
