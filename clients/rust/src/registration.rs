//! A client's entry in a ring's client table, kept alive by heartbeats.
//!
//! Every publisher and subscriber holds one entry while attached. A background thread of the
//! process (started with the first entry) stamps `heartbeat_ns` of every live entry every
//! [`HEARTBEAT_PERIOD`], so the broker can tell a live client that is just idle from one that
//! is gone or stuck.

use crate::bus::Ring;
use gos_bus_protocol::ring::clients;
use gos_bus_protocol::{proc, Error, Result, Segment};
use gos_layouts::segment::CLIENT_ACTIVE;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, Once, Weak};
use std::time::Duration;

/// How often a client process stamps its heartbeats.
pub const HEARTBEAT_PERIOD: Duration = Duration::from_millis(250);

struct Beat {
    seg: Weak<Segment>,
    entry: usize,
    generation: u32,
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
        let r = seg.ring();
        let e = r.clients.get(b.entry);
        if e.generation.load(Relaxed) != b.generation || e.state.load(Relaxed) != CLIENT_ACTIVE {
            return false; // reaped, or already freed
        }
        e.heartbeat_ns.store(now, Relaxed);
        true
    });
}

/// An entry of the client table, freed on drop.
pub(crate) struct Registration {
    pub(crate) ring: Ring,
    pub(crate) entry: usize,
    pub(crate) generation: u32,
}

impl Registration {
    pub(crate) fn new(ring: &Ring, role: u32) -> Result<Registration> {
        let entry = ring.register(role)?;
        let generation = ring.seg.ring().clients.get(entry).generation.load(Relaxed);
        BEATS.lock().unwrap_or_else(|p| p.into_inner()).push(Beat {
            seg: Arc::downgrade(&ring.seg),
            entry,
            generation,
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
            entry,
            generation,
        })
    }

    /// Adds to the counters a handler reports (shown by `gos-bus monitor`). Only this client
    /// writes them, so plain loads and stores suffice.
    pub(crate) fn report(&self, failed: u64, work: Duration, gpu: Duration) {
        if self.check().is_ok() {
            let e = self.ring.seg.ring().clients.get(self.entry);
            let add = |c: &std::sync::atomic::AtomicU64, n: u64| {
                c.store(c.load(Relaxed).wrapping_add(n), Relaxed)
            };
            add(&e.failed, failed);
            add(&e.work_ns, work.as_nanos() as u64);
            add(&e.gpu_ns, gpu.as_nanos() as u64);
        }
    }

    /// Fails with [`Error::Reaped`] when the broker has taken this entry back.
    #[inline]
    pub(crate) fn check(&self) -> Result<()> {
        let r = self.ring.seg.ring();
        let e = r.clients.get(self.entry);
        if e.generation.load(Relaxed) == self.generation && e.state.load(Relaxed) == CLIENT_ACTIVE {
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
            .retain(|b| !(b.entry == self.entry && std::ptr::eq(b.seg.as_ptr(), me)));
        if self.check().is_ok() {
            clients::free(&self.ring.seg.ring(), self.entry);
        }
    }
}
