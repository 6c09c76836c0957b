//! Reclaim: what the broker does for a client that died (or stopped beating) while it held
//! part of a ring. See the table in docs/ARCHITECTURE.md.
//!
//! - a publisher that claimed a sequence and did not commit it: the broker commits it as a
//!   skipped slot, so consumers pass over it and the ring flows again;
//! - a subscriber: its entry is removed, so it no longer holds producers back, and it no
//!   longer counts as a possible sleeper;
//! - a worker holding jobs: each job is offered again (copied into a new slot with its
//!   delivery count) and the old slot released: at-least-once;
//! - a claimed sequence or a taken job that no live client owns (the owner died between the
//!   claim and recording it) is treated the same way once it has stayed so for the liveness
//!   timeout.

use gos_bus_protocol::control::ClientCtl;
use gos_bus_protocol::ring::entry::{self, Claim};
use gos_bus_protocol::ring::{broadcast, work_queue, Mode, RingRef};
use gos_bus_protocol::{proc, Segment};
use gos_layouts::segment::*;
use std::collections::HashMap;
use std::sync::atomic::Ordering::*;
use std::time::{Duration, Instant};

/// Sequences scanned behind `head` / `tail` for orphans.
const ORPHAN_WINDOW: u64 = 4096;

/// What one scan did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reaped {
    /// Client entries freed.
    pub clients: u64,
    /// Claimed sequences committed as skipped.
    pub skipped: u64,
    /// Work-queue jobs offered again.
    pub redelivered: u64,
    /// One line per action, for the broker's log.
    pub events: Vec<String>,
}

/// A ring the broker watches.
pub struct RingWatch {
    /// The ring.
    pub seg: Segment,
    /// Orphan claims and takes, with when they were first seen.
    orphans: HashMap<u64, Instant>,
    /// A job copied out of a full queue, waiting for a free slot: (bytes, deliveries).
    pending: Vec<(Vec<u8>, u32)>,
    /// What was found wrong with the header at the last scan (reported once).
    damaged: Option<String>,
    /// The object was found removed from /dev/shm (reported once).
    unlinked: bool,
}

fn role_name(role: u32) -> &'static str {
    match role {
        ROLE_PUBLISHER => "publisher",
        ROLE_SUBSCRIBER => "subscriber",
        ROLE_WORKER => "worker",
        _ => "client",
    }
}

impl RingWatch {
    /// Watches `seg`.
    pub fn new(seg: Segment) -> RingWatch {
        RingWatch {
            seg,
            orphans: HashMap::new(),
            pending: Vec::new(),
            damaged: None,
            unlinked: false,
        }
    }

    /// One pass: reaps dead clients, then reclaims orphans.
    pub fn scan(&mut self, liveness: Duration) -> Reaped {
        let mut notes = Vec::new();
        let present = std::path::Path::new(self.seg.path()).exists();
        if !present && !self.unlinked {
            notes.push(format!(
                "segment {} was removed from /dev/shm while in use (by `gos-bus rm`, or by systemd's RemoveIPC=yes when its owner logged out: run the broker as a system user or set RemoveIPC=no); attached clients carry on, new ones cannot attach",
                self.seg.path()
            ));
        }
        self.unlinked = !present;
        let mut out = self.scan_ring(liveness);
        out.events.splice(0..0, notes);
        out
    }

    fn scan_ring(&mut self, liveness: Duration) -> Reaped {
        // A header another process overwrote is reported (once) and the ring left alone
        // until it is whole again: supervising it could only spread the damage.
        if let Err(problem) = gos_bus_protocol::segment::validate(
            &self.seg.header(),
            self.seg.geometry().segment_size,
        )
        .and_then(|g| self.seg.check_cursors().map(|_| g))
        .and_then(|g| {
            if g == *self.seg.geometry() {
                Ok(())
            } else {
                Err(gos_bus_protocol::Corrupt::BadField {
                    field: "header",
                    value: 0,
                    why: "changed since the broker created or adopted the ring",
                })
            }
        }) {
            let mut out = Reaped::default();
            let text = problem.to_string();
            if self.damaged.as_deref() != Some(text.as_str()) {
                out.events.push(format!(
                    "segment {} is damaged ({text}); not supervising ring '{}' until it is whole; `gos-bus clean` and a restart rebuild it",
                    self.seg.path(),
                    self.seg.name()
                ));
                self.damaged = Some(text);
            }
            return out;
        }
        self.damaged = None;
        let RingWatch {
            seg,
            orphans,
            pending,
            ..
        } = self;
        let mut w = Work {
            seg,
            ring: seg.ring(),
            pending,
            out: Reaped::default(),
        };
        w.flush_pending();
        let now = proc::now_ns();
        for i in 0..w.ring.clients.len() {
            let e = w.ring.clients.get(i);
            let observed = entry::observe(&w.ring, i);
            let state = entry::state(observed);
            if state == CLIENT_FREE {
                continue;
            }
            let pid = e.pid().load(Relaxed);
            let gone = !proc::alive(pid, e.start_time().load(Relaxed));
            let silent =
                now.saturating_sub(e.heartbeat_ns().load(Relaxed)) > liveness.as_nanos() as u64;
            if !(gone || (state == CLIENT_ACTIVE && silent)) {
                continue;
            }
            let role = e.role().load(Relaxed);
            let claim = Claim {
                index: i,
                generation: entry::generation(observed),
            };
            if !w.reclaim_client(claim, e, role) {
                continue; // could not finish now (ring full): try again next scan
            }
            if !entry::reap(&w.ring, i, observed) {
                continue; // it changed meanwhile (freed by its holder): nothing to reap
            }
            w.out.clients += 1;
            w.out.events.push(format!(
                "reaped {} pid {pid} on ring '{}' ({})",
                role_name(role),
                w.seg.name(),
                if gone { "process gone" } else { "no heartbeat" }
            ));
        }
        w.reclaim_orphans(orphans, liveness);
        w.out
    }
}

/// One scan's working state.
struct Work<'a> {
    seg: &'a Segment,
    ring: RingRef<'a>,
    pending: &'a mut Vec<(Vec<u8>, u32)>,
    out: Reaped,
}

impl Work<'_> {
    fn reclaim_client(&mut self, claim: Claim, e: &ClientCtl, role: u32) -> bool {
        let ring = self.ring;
        match role {
            ROLE_PUBLISHER => {
                if let Some(seq) = entry::claim_marker(&ring, claim.index) {
                    if !self.skip(seq) {
                        return false;
                    }
                }
                // A single-producer ring's token goes back with its holder.
                entry::release_producer_token(&ring, claim.index);
            }
            ROLE_SUBSCRIBER if e.flags().load(Relaxed) & CLIENT_SLEEPY != 0 => {
                e.flags().store(0, Relaxed);
                ring.ctl.sleepy_consumers().fetch_sub(1, SeqCst);
            }
            ROLE_WORKER => {
                let lease = claim.lease();
                let tail = ring.ctl.tail().load(Acquire);
                for seq in tail.saturating_sub(ring.capacity)..tail {
                    let slot = ring.slot(seq);
                    if slot.stamp().load(Acquire) == seq + 1
                        && slot.lease().load(Relaxed) == lease
                        && !self.redeliver(seq)
                    {
                        return false;
                    }
                }
                if e.flags().load(Relaxed) & CLIENT_SLEEPY != 0 {
                    e.flags().store(0, Relaxed);
                    ring.ctl.sleepy_consumers().fetch_sub(1, SeqCst);
                }
            }
            _ => {}
        }
        true
    }

    /// Commits claimed sequence `seq` as skipped if it is still uncommitted. False when it
    /// cannot be done yet (the previous lap of the slot is still being written).
    fn skip(&mut self, seq: u64) -> bool {
        let ring = &self.ring;
        let out = &mut self.out;
        let stamp = ring.slot(seq).stamp().load(Acquire);
        if stamp > seq {
            // It did commit (the stamp shows `seq` or a later lap: a dead publisher's
            // `claimed` can be stale when it died between committing and clearing it).
            return true;
        }
        match self.seg.geometry().mode {
            Mode::Broadcast => {
                if !broadcast::is_writable(ring, seq) {
                    return false;
                }
                broadcast::commit(ring, seq, 0, true);
            }
            Mode::WorkQueue => {
                if stamp != seq {
                    return false;
                }
                work_queue::commit(ring, seq, 0, true, 0);
            }
        }
        out.skipped += 1;
        out.events.push(format!(
            "committed abandoned sequence {seq} of ring '{}' as skipped",
            self.seg.name()
        ));
        true
    }

    /// Offers the job in taken slot `seq` again and releases the slot.
    fn redeliver(&mut self, seq: u64) -> bool {
        let ring = &self.ring;
        let slot = ring.slot(seq);
        let len = (slot.len().load(Relaxed) as usize).min(self.seg.geometry().slot_size as usize);
        let deliveries = slot.deliveries().load(Relaxed);
        let src = self.seg.payload_ptr(seq);
        match work_queue::try_claim(ring, false) {
            Some(new) => {
                // SAFETY: both slots are inside the mapping with `slot_size` bytes of payload;
                // the old one is held (taken, unreleased) and the new one claimed by us, so no
                // one else writes either.
                unsafe { std::ptr::copy_nonoverlapping(src, self.seg.payload_ptr(new), len) };
                work_queue::commit(ring, new, len as u32, false, deliveries);
            }
            None => {
                // The queue is full, possibly because of this very slot: keep the job here
                // and free the slot; it is committed as soon as a slot frees up.
                // SAFETY: as above; the old slot is still ours until the release below.
                let bytes = unsafe { std::slice::from_raw_parts(src, len) }.to_vec();
                self.pending.push((bytes, deliveries));
            }
        }
        work_queue::release(ring, seq);
        self.out.redelivered += 1;
        self.out.events.push(format!(
            "offered job {seq} of ring '{}' to another worker (delivery {})",
            self.seg.name(),
            deliveries + 1
        ));
        true
    }

    fn flush_pending(&mut self) {
        while let Some((bytes, deliveries)) = self.pending.pop() {
            let ring = self.ring;
            let Some(new) = work_queue::try_claim(&ring, false) else {
                self.pending.push((bytes, deliveries));
                return;
            };
            // SAFETY: the claimed slot's payload has `slot_size` >= bytes.len() bytes and is
            // ours until commit.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    bytes.as_ptr(),
                    self.seg.payload_ptr(new),
                    bytes.len(),
                )
            };
            work_queue::commit(&ring, new, bytes.len() as u32, false, deliveries);
        }
    }

    fn reclaim_orphans(&mut self, orphans: &mut HashMap<u64, Instant>, liveness: Duration) {
        let ring = self.ring;
        let head = ring.ctl.head().load(Acquire);
        let window = ring.capacity.min(ORPHAN_WINDOW);
        let mut seen = Vec::new();
        // Claimed, uncommitted, and no live publisher says it holds it.
        for seq in head.saturating_sub(window)..head {
            let stamp = ring.slot(seq).stamp().load(Acquire);
            let committed = match self.seg.geometry().mode {
                Mode::Broadcast => stamp == seq + 1,
                Mode::WorkQueue => stamp != seq, // committed, taken or released
            };
            if committed || entry::held_by_live_publisher(&ring, seq) {
                continue;
            }
            seen.push(seq);
        }
        // Work queue: taken, unreleased, and its lease names no live worker.
        let mut stale_takes = Vec::new();
        if self.seg.geometry().mode == Mode::WorkQueue {
            let tail = ring.ctl.tail().load(Acquire);
            for seq in tail.saturating_sub(window)..tail {
                let slot = ring.slot(seq);
                if slot.stamp().load(Acquire) == seq + 1
                    && !entry::lease_is_live(&ring, slot.lease().load(Relaxed))
                {
                    stale_takes.push(seq);
                }
            }
        }
        let now = Instant::now();
        let keys: Vec<u64> = seen
            .iter()
            .copied()
            .chain(stale_takes.iter().map(|s| s | 1 << 63))
            .collect();
        orphans.retain(|k, _| keys.contains(k));
        for key in keys {
            let first = *orphans.entry(key).or_insert(now);
            if now.duration_since(first) < liveness {
                continue;
            }
            let seq = key & !(1 << 63);
            let done = if key & (1 << 63) != 0 {
                self.redeliver(seq)
            } else {
                self.skip(seq)
            };
            if done {
                orphans.remove(&key);
            }
        }
    }
}
