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
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, Once, Weak};
use std::time::Duration;

/// How often a client process stamps its heartbeats.
pub const HEARTBEAT_PERIOD: Duration = Duration::from_millis(250);

struct Beat {
    seg: Weak<Segment>,
    claim: Claim,
}

static BEATS: Mutex<Vec<Beat>> = Mutex::new(Vec::new());
static START: Once = Once::new();

fn beat_all() {
    let now = proc::now_ns();
    let mut beats = BEATS.lock().unwrap_or_else(|p| p.into_inner());
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
}

impl Registration {
    pub(crate) fn new(ring: &Ring, role: u32) -> Result<Registration> {
        let claim = ring.register(role)?;
        BEATS.lock().unwrap_or_else(|p| p.into_inner()).push(Beat {
            seg: Arc::downgrade(&ring.seg),
            claim,
        });
        START.call_once(|| {
            let _ = std::thread::Builder::new()
                .name("gos-bus-heartbeat".into())
                .spawn(|| loop {
                    std::thread::sleep(HEARTBEAT_PERIOD);
                    beat_all();
                });
        });
        Ok(Registration {
            ring: ring.clone(),
            claim,
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

    /// Fails with [`Error::Reaped`] when the broker has taken this entry back.
    #[inline]
    pub(crate) fn check(&self) -> Result<()> {
        if entry::is_current(&self.ring.seg.ring(), self.claim) {
            return Ok(());
        }
        Err(Error::Reaped {
            ring: self.ring.name().into(),
        })
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
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
