//! A client's entry in a ring's client table, kept alive by heartbeats.
//!
//! Every publisher and subscriber holds one entry while attached, named by the
//! [`Claim`] (index and generation) that `ring::entry` handed out; every change of the entry's
//! state goes through that module. A background thread of the process (started with the
//! first entry) stamps the heartbeat of every live entry every [`HEARTBEAT_PERIOD`], so the
//! broker can tell a live client that is just idle from one that is gone or stuck.

use crate::bus::Ring;
use gos_bus_protocol::ring::entry::{self, Claim};
use gos_bus_protocol::{proc, Error, Result, Segment};
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// How often a client process stamps its heartbeats.
pub const HEARTBEAT_PERIOD: Duration = Duration::from_millis(250);

struct Beat {
    seg: Weak<Segment>,
    claim: Claim,
    /// The process that claimed the entry (a forked child inherits the list).
    pid: u32,
}

static BEATS: Mutex<Vec<Beat>> = Mutex::new(Vec::new());

thread_local! {
    /// `BEATS` locked across a `fork` by the forking thread (see `hold_beats`).
    static HELD: std::cell::RefCell<Option<std::sync::MutexGuard<'static, Vec<Beat>>>> =
        const { std::cell::RefCell::new(None) };
}

/// Fork handlers: `BEATS` is locked just before `fork` and unlocked just after it in both
/// processes, so a child never inherits it locked by the heartbeat thread (which the child
/// does not have) and can make clients of its own.
extern "C" fn hold_beats() {
    let guard = BEATS.lock().unwrap_or_else(|p| p.into_inner());
    HELD.with(|h| *h.borrow_mut() = Some(guard));
}

extern "C" fn free_beats() {
    HELD.with(|h| drop(h.borrow_mut().take()));
}

/// This process's pid, kept by the fork handler (a `getpid` per call would cost a system
/// call on every loan); 0 until the first client.
static CURRENT_PID: AtomicU32 = AtomicU32::new(0);

extern "C" fn child_after_fork() {
    CURRENT_PID.store(std::process::id(), Relaxed);
    free_beats();
}

static AT_FORK: std::sync::Once = std::sync::Once::new();
/// The process whose heartbeat thread runs (threads do not survive `fork`: a child that
/// makes clients starts its own).
static BEATING_IN: AtomicU32 = AtomicU32::new(0);

fn beat_all() {
    let now = proc::now_ns();
    let me = std::process::id();
    let mut beats = BEATS.lock().unwrap_or_else(|p| p.into_inner());
    // Entries a forked child inherited are its parent's: never beat them from here (a dead
    // parent would look alive).
    beats.retain(|b| b.pid == me);
    beats.retain(|b| {
        let Some(seg) = b.seg.upgrade() else {
            return false;
        };
        // False once reaped or freed: then this entry is no longer ours to stamp.
        entry::heartbeat(&seg.ring(), b.claim, now)
    });
}

/// An entry of the client table, freed on drop.
pub(crate) struct Registration {
    pub(crate) ring: Ring,
    pub(crate) claim: Claim,
    /// The process that claimed the entry.
    pid: u32,
}

impl Registration {
    pub(crate) fn new(ring: &Ring, role: u32) -> Result<Registration> {
        let claim = ring.register(role)?;
        AT_FORK.call_once(|| {
            CURRENT_PID.store(std::process::id(), Relaxed);
            proc::at_fork(hold_beats, free_beats, child_after_fork);
        });
        let pid = std::process::id();
        BEATS.lock().unwrap_or_else(|p| p.into_inner()).push(Beat {
            seg: Arc::downgrade(&ring.seg),
            claim,
            pid,
        });
        if BEATING_IN.swap(pid, Relaxed) != pid {
            let _ = std::thread::Builder::new()
                .name("gos-bus-heartbeat".into())
                .spawn(move || loop {
                    std::thread::sleep(HEARTBEAT_PERIOD);
                    if BEATING_IN.load(Relaxed) != std::process::id() {
                        return;
                    }
                    beat_all();
                });
        }
        Ok(Registration {
            ring: ring.clone(),
            claim,
            pid,
        })
    }

    /// Adds to the counters a handler reports (shown by `gos-bus monitor`). Only this client
    /// writes them, so plain loads and stores suffice.
    pub(crate) fn report(&self, failed: u64, work: Duration, gpu: Duration) {
        if self.check().is_ok() {
            let e = self.ring.seg.ring().clients.get(self.claim.index);
            let add = |c: &std::sync::atomic::AtomicU64, n: u64| {
                c.store(c.load(Relaxed).wrapping_add(n), Relaxed)
            };
            add(e.failed(), failed);
            add(e.work_ns(), work.as_nanos() as u64);
            add(e.gpu_ns(), gpu.as_nanos() as u64);
        }
    }

    /// True in the process that claimed the entry; false in a child forked after it, which
    /// must leave the entry (its parent's) alone: no loan, release or free from there.
    #[inline]
    pub(crate) fn owned_here(&self) -> bool {
        self.pid == CURRENT_PID.load(Relaxed)
    }

    /// Fails with [`Error::Reaped`] when the broker has taken this entry back.
    #[inline]
    pub(crate) fn check(&self) -> Result<()> {
        let r = self.ring.seg.ring();
        if entry::is_current(&r, self.claim) && self.owned_here() {
            return Ok(());
        }
        if !self.owned_here() {
            return Err(Error::Misuse(format!(
                "this client of ring '{}' was made by process {} before a fork: make a new one in this process",
                self.ring.name(),
                self.pid
            )));
        }
        Err(Error::Reaped {
            ring: self.ring.name().into(),
            why: if entry::is_reaped(&r, self.claim) {
                "no heartbeat within the liveness timeout: this process was paused or starved"
            } else {
                "it judged this process gone: is it in the broker's PID namespace?"
            },
        })
    }

    /// The error of a client that found itself taken back: [`Registration::check`]'s, or
    /// [`Error::Reaped`] with `why` when the entry reads current again.
    pub(crate) fn reaped(&self, why: &'static str) -> Error {
        self.check().err().unwrap_or(Error::Reaped {
            ring: self.ring.name().into(),
            why,
        })
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if !self.owned_here() {
            // A forked child dropping what it inherited: the entry is its parent's.
            return;
        }
        let me = Arc::as_ptr(&self.ring.seg);
        BEATS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|b| !(b.claim == self.claim && std::ptr::eq(b.seg.as_ptr(), me)));
        // A compare-and-swap on state and generation: an entry the broker reaped (and maybe
        // gave to another client since) is left alone.
        entry::release(&self.ring.seg.ring(), self.claim);
    }
}
