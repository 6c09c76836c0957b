//! Reclaim: what the broker does for a client that died (or stopped beating) while it held
//! part of a ring. See the table in docs/ARCHITECTURE.md.
//!
//! - a publisher that claimed a sequence and did not commit it: the broker takes the claim
//!   (one compare-and-swap on its marker) and commits it as a skipped slot, so consumers pass
//!   over it and the ring flows again;
//! - a subscriber: its entry no longer holds producers back, and it no longer counts as a
//!   possible sleeper;
//! - a client whose process still lives (paused, starved) is kept in the REAPED state with the
//!   slot it held pinned (see `gos_bus_protocol::ring::entry`), until it gives its entry up
//!   or its process is gone; one that died is freed;
//! - a worker holding jobs: each job is offered again (copied into a new slot with its
//!   delivery count) and the old slot released: at-least-once;
//! - a claimed sequence or a taken job that no live client owns (the owner died between the
//!   claim and recording it) is treated the same way once it has stayed so for the liveness
//!   timeout.

use gos_bus_protocol::control::ClientCtl;
use gos_bus_protocol::ring::entry::{self, Claim, Pin};
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
    /// Per client entry: its (lifecycle word, heartbeat word) as last seen, and since when
    /// (the broker's monotonic clock) it has not changed.
    beats: HashMap<usize, ((u64, u64), Instant)>,
}

/// What reclaiming one client came to.
enum Outcome {
    /// Not possible now (a slot not yet writable, a full queue): again next scan.
    Retry,
    /// Everything it held is reclaimed: free the entry.
    Free,
    /// Its process lives: the entry is reaped (state REAPED), pinning this.
    Pinned(Pin),
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
            beats: HashMap::new(),
        }
    }

    /// One pass: reaps dead clients, then reclaims orphans.
    pub fn scan(&mut self, liveness: Duration) -> Reaped {
        self.scan_at(liveness, Instant::now())
    }

    /// [`RingWatch::scan`] with the broker's monotonic clock reading `now`, so tests can move
    /// time (a client is silent once its heartbeat has not changed for `liveness` of it).
    pub fn scan_at(&mut self, liveness: Duration, now: Instant) -> Reaped {
        let mut notes = Vec::new();
        let present = std::path::Path::new(self.seg.path()).exists();
        if !present && !self.unlinked {
            notes.push(format!(
                "segment {} was removed from /dev/shm while in use (by `gos-bus rm`, or by systemd's RemoveIPC=yes when its owner logged out: run the broker as a system user or set RemoveIPC=no); attached clients carry on, new ones cannot attach",
                self.seg.path()
            ));
        }
        self.unlinked = !present;
        let mut out = self.scan_ring(liveness, now);
        out.events.splice(0..0, notes);
        out
    }

    fn scan_ring(&mut self, liveness: Duration, now: Instant) -> Reaped {
        // A header another process overwrote is reported (once) and the ring left alone
        // until it is whole again: supervising it could only spread the damage.
        if let Err(problem) = gos_bus_protocol::segment::validate(
            &self.seg.header(),
            self.seg.geometry().segment_size,
        )
        .and_then(|g| self.seg.check_cursors().map(|_| g))
        .and_then(|g| self.seg.check_stamps().map(|_| g))
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
            beats,
            ..
        } = self;
        let mut w = Work {
            seg,
            ring: seg.ring(),
            pending,
            out: Reaped::default(),
        };
        w.flush_pending();
        // Liveness on the broker's own monotonic clock: a client is silent when its heartbeat
        // word has not changed for `liveness`, whatever the wall clock did meanwhile (a jump
        // forward no longer reaps live clients; a jump back no longer keeps dead ones).
        let mut seen_beats = HashMap::new();
        for i in 0..w.ring.clients.len() {
            let e = w.ring.clients.get(i);
            let observed = entry::observe(&w.ring, i);
            let state = entry::state(observed);
            if state == CLIENT_FREE {
                continue;
            }
            let pid = e.pid().load(Relaxed);
            let gone = !proc::alive(pid, e.start_time().load(Relaxed));
            let role = e.role().load(Relaxed);
            if state == CLIENT_REAPED {
                w.watch_reaped(i, observed, e, role, gone);
                continue;
            }
            let beat = (observed, e.heartbeat_ns().load(Relaxed));
            let since = match beats.get(&i) {
                Some(&(b, t)) if b == beat => t,
                _ => now,
            };
            seen_beats.insert(i, (beat, since));
            let silent = now.saturating_duration_since(since) > liveness;
            if !(gone || (state == CLIENT_ACTIVE && silent)) {
                continue;
            }
            let claim = Claim {
                index: i,
                generation: entry::generation(observed),
            };
            let how = match w.reclaim_client(claim, observed, e, role, !gone) {
                Outcome::Retry => continue, // could not finish now (ring full): next scan
                Outcome::Free => {
                    if !entry::reap(&w.ring, i, observed) {
                        continue; // it changed meanwhile (freed by its holder): nothing to reap
                    }
                    if gone {
                        "process gone".to_string()
                    } else {
                        "no heartbeat".to_string()
                    }
                }
                Outcome::Pinned(pin) => format!(
                    "no heartbeat, but its process lives: {}, until it resumes or exits",
                    match pin {
                        Pin::Seq(seq) => format!("the slot of sequence {seq} stays pinned"),
                        Pin::Cursor => "the slots from its cursor on stay pinned".into(),
                        Pin::Nothing => "its entry stays reserved".into(),
                    }
                ),
            };
            w.out.clients += 1;
            w.out.events.push(format!(
                "reaped {} pid {pid} on ring '{}' ({how})",
                role_name(role),
                w.seg.name()
            ));
        }
        *beats = seen_beats;
        w.reclaim_orphans(orphans, liveness, now);
        w.out
    }
}

/// Claims a work-queue slot for a job the broker re-offers, passing over (committing as
/// skipped, untouched) any slot a reaped client pins, as every producer does.
fn claim_unpinned(ring: &RingRef<'_>) -> Option<u64> {
    loop {
        let s = work_queue::try_claim(ring, false)?;
        if !entry::is_pinned(ring, s) {
            return Some(s);
        }
        work_queue::commit(ring, s, 0, true, 0);
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
    /// Takes back what client `claim` (whose word was `observed`) held. A client whose
    /// process still lives (`alive`: it stopped beating) may resume and touch the slot it
    /// held, so that slot is pinned (see `entry::reap_pinned`) before anything of it is
    /// handed on.
    fn reclaim_client(
        &mut self,
        claim: Claim,
        observed: u64,
        e: &ClientCtl,
        role: u32,
        alive: bool,
    ) -> Outcome {
        let ring = self.ring;
        let i = claim.index;
        match role {
            ROLE_PUBLISHER => {
                let mut pin = Pin::Nothing;
                if let Some(seq) = entry::claim_marker(&ring, i) {
                    if ring.slot(seq).stamp().load(Acquire) <= seq {
                        if !self.committable(seq) {
                            return Outcome::Retry;
                        }
                        pin = Pin::Seq(seq);
                        // Pinned first (when alive): a publisher that then loses the claim
                        // finds itself reaped, and the pin is there before the skip makes the
                        // slot's next lap writable.
                        if alive && !entry::reap_pinned(&ring, i, observed, pin) {
                            return Outcome::Retry; // it changed meanwhile: look again
                        }
                        // The claim marker decides who commits: it or us. (A live publisher
                        // that is committing finishes its commit; the pin holds the slot.)
                        if entry::take_claim(&ring, i, seq, !alive) {
                            self.commit_skipped(seq);
                        } else if !alive {
                            return Outcome::Retry; // it committed meanwhile: look again
                        }
                    }
                }
                if alive {
                    // Kept reaped, not freed, even with nothing loaned: a claim it makes
                    // in the instant of the reap stays marked on an entry nobody else
                    // takes, and a single-producer ring's token stays with a publisher that
                    // may resume mid-claim (its plain store of `head` would undo another's
                    // claims). Both go when the process is gone.
                    if pin == Pin::Nothing && !entry::reap_pinned(&ring, i, observed, pin) {
                        return Outcome::Retry;
                    }
                    return Outcome::Pinned(pin);
                }
                entry::release_producer_token(&ring, claim);
                Outcome::Free
            }
            ROLE_SUBSCRIBER => {
                if alive {
                    // Pinned from its cursor, read after the reap, to the end of the batch
                    // it announced, and the slot after.
                    if entry::reap_pinned(&ring, i, observed, Pin::Cursor) {
                        self.unsleep(e);
                        return Outcome::Pinned(Pin::Cursor);
                    }
                    return Outcome::Retry;
                }
                self.unsleep(e);
                Outcome::Free
            }
            ROLE_WORKER => {
                let lease = claim.lease();
                let tail = ring.ctl.tail().load(Acquire);
                let taken: Vec<u64> = (tail.saturating_sub(ring.capacity)..tail)
                    .filter(|&seq| {
                        let slot = ring.slot(seq);
                        slot.stamp().load(Acquire) == seq + 1 && slot.lease().load(Relaxed) == lease
                    })
                    .collect();
                let pin = match taken.first() {
                    Some(&seq) => Pin::Seq(seq),
                    None => Pin::Nothing,
                };
                if alive && !entry::reap_pinned(&ring, i, observed, pin) {
                    return Outcome::Retry;
                }
                for seq in taken {
                    // `redeliver` never fails: a job that finds the queue full waits in the
                    // broker's pending list.
                    self.redeliver(seq);
                }
                self.unsleep(e);
                if alive {
                    Outcome::Pinned(pin)
                } else {
                    Outcome::Free
                }
            }
            _ => Outcome::Free,
        }
    }

    /// A reaped entry whose process lived when it was reaped: freed once the process is
    /// gone (a claim it made after the reap is skipped first), and a claim it made after
    /// the reap taken back and pinned when it lives on.
    fn watch_reaped(&mut self, i: usize, observed: u64, e: &ClientCtl, role: u32, gone: bool) {
        let ring = self.ring;
        // A subscriber's pin left unwritten (a broker that died between the reap and the pin):
        // write it now, or producers would wait on it.
        entry::finish_pin(&ring, i);
        if role == ROLE_PUBLISHER {
            if let Some(seq) = entry::claim_marker(&ring, i) {
                if ring.slot(seq).stamp().load(Acquire) <= seq
                    && self.committable(seq)
                    && entry::take_claim(&ring, i, seq, gone)
                {
                    if !gone {
                        entry::repin(&ring, i, seq);
                    }
                    self.commit_skipped(seq);
                }
            }
        }
        if role == ROLE_WORKER {
            // A job the worker took in the instant of its reap (its lease is dead now): pin
            // it while the process lives, then offer it again.
            let lease = Claim {
                index: i,
                generation: entry::generation(observed),
            }
            .lease();
            let tail = ring.ctl.tail().load(Acquire);
            for seq in tail.saturating_sub(ring.capacity)..tail {
                let slot = ring.slot(seq);
                if slot.stamp().load(Acquire) == seq + 1 && slot.lease().load(Relaxed) == lease {
                    if !gone {
                        entry::repin(&ring, i, seq);
                    }
                    self.redeliver(seq);
                }
            }
        }
        if !gone || !entry::free_reaped(&ring, i, observed) {
            return;
        }
        if role == ROLE_PUBLISHER {
            let claim = Claim {
                index: i,
                generation: entry::generation(observed),
            };
            entry::release_producer_token(&ring, claim);
        }
        self.out.events.push(format!(
            "freed the entry of reaped {} pid {} on ring '{}' (its process is gone)",
            role_name(role),
            e.pid().load(Relaxed),
            self.seg.name()
        ));
    }

    /// A consumer that counted itself among the possible sleepers no longer does.
    fn unsleep(&self, e: &ClientCtl) {
        // One swap decides between us and the client clearing its own flag.
        if e.flags().swap(0, AcqRel) & CLIENT_SLEEPY != 0 {
            self.ring.ctl.sleepy_consumers().fetch_sub(1, SeqCst);
        }
    }

    /// True when claimed sequence `seq` can be committed now: its slot's previous lap is
    /// committed (broadcast) or it is the slot's turn (work queue).
    fn committable(&self, seq: u64) -> bool {
        let stamp = self.ring.slot(seq).stamp().load(Acquire);
        match self.seg.geometry().mode {
            Mode::Broadcast => broadcast::is_writable(&self.ring, seq),
            Mode::WorkQueue => stamp == seq,
        }
    }

    /// Commits `seq`, which we own, as skipped.
    fn commit_skipped(&mut self, seq: u64) {
        match self.seg.geometry().mode {
            Mode::Broadcast => {
                if self.seg.geometry().hot_buffers {
                    // A publisher that died inside its buffer swap left one buffer named
                    // twice: the skipped sequence takes the missing one.
                    broadcast::repair_buffers(&self.ring, seq);
                }
                broadcast::commit(&self.ring, seq, 0, true)
            }
            Mode::WorkQueue => work_queue::commit(&self.ring, seq, 0, true, 0),
        }
        self.out.skipped += 1;
        self.out.events.push(format!(
            "committed abandoned sequence {seq} of ring '{}' as skipped",
            self.seg.name()
        ));
    }

    /// Commits claimed sequence `seq` as skipped if it is still uncommitted. False when it
    /// cannot be done yet (the previous lap of the slot is still being written).
    fn skip(&mut self, seq: u64) -> bool {
        if self.ring.slot(seq).stamp().load(Acquire) > seq {
            // It did commit (the stamp shows `seq` or a later lap: a dead publisher's
            // `claimed` can be stale when it died between committing and clearing it).
            return true;
        }
        if !self.committable(seq) {
            return false;
        }
        self.commit_skipped(seq);
        true
    }

    /// Offers the job in taken slot `seq` again and releases the slot.
    fn redeliver(&mut self, seq: u64) -> bool {
        let ring = &self.ring;
        let slot = ring.slot(seq);
        if slot.stamp().load(Acquire) != seq + 1 {
            return true; // released meanwhile
        }
        let len = (slot.len().load(Relaxed) as usize).min(self.seg.geometry().slot_size as usize);
        let deliveries = slot.deliveries().load(Relaxed);
        let skipped = slot.flags().load(Relaxed) & SLOT_SKIPPED != 0;
        // Copy the job out while the slot is still taken (the worker, if it lives, only reads
        // it), then release it: the stamp's compare-and-swap decides between us and a worker
        // releasing it itself. If the worker won, the copy is dropped: the job was done.
        // SAFETY: the slot's payload has `slot_size` >= len bytes inside the mapping; it is
        // taken and not released (stamp `seq + 1`), so no producer writes it until one of the
        // two releases below succeeds, and a copy made before that is whole.
        let bytes = unsafe { std::slice::from_raw_parts(self.seg.payload_ptr(seq), len) }.to_vec();
        if !work_queue::release_taken(ring, seq) {
            return true;
        }
        if skipped {
            return true; // a skipped slot caught inside a take: nothing to offer
        }
        self.pending.push((bytes, deliveries));
        self.flush_pending();
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
            let Some(new) = claim_unpinned(&ring) else {
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

    fn reclaim_orphans(
        &mut self,
        orphans: &mut HashMap<u64, Instant>,
        liveness: Duration,
        now: Instant,
    ) {
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
        let keys: Vec<u64> = seen
            .iter()
            .copied()
            .chain(stale_takes.iter().map(|s| s | 1 << 63))
            .collect();
        orphans.retain(|k, _| keys.contains(k));
        for key in keys {
            let first = *orphans.entry(key).or_insert(now);
            if now.saturating_duration_since(first) < liveness {
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

#[cfg(test)]
mod tests {
    use super::*;
    use gos_bus_protocol::ring::entry::Identity;
    use gos_bus_protocol::RingConfig;

    /// Liveness is judged on the broker's monotonic clock (moved by hand here), by whether
    /// the heartbeat word changes, never by its wall-clock value: a heartbeat that reads an
    /// hour old (the clock jumped forward) reaps nobody, and one that reads an hour ahead
    /// (the clock jumped back) keeps nobody alive once it stops changing.
    #[test]
    fn liveness_follows_the_monotonic_clock_not_the_heartbeat_value() {
        let bus = format!("reaptest{}", std::process::id());
        let seg = Segment::create(&bus, "r", &RingConfig::default()).unwrap();
        let r = seg.ring();
        let me = std::process::id();
        let hour = 3_600_000_000_000u64;
        let id = Identity {
            role: ROLE_PUBLISHER,
            pid: me,
            start_time: proc::start_time(me).unwrap(),
            now_ns: proc::now_ns() - hour,
            name: [0; 24],
        };
        let c = entry::claim(&r, &id).unwrap();
        let mut watch = RingWatch::new(Segment::open(&bus, "r").unwrap());
        let live = Duration::from_secs(1);
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert_eq!(
            watch.scan_at(live, at(0)).clients,
            0,
            "an hour-old value reaps no one"
        );
        assert_eq!(watch.scan_at(live, at(900)).clients, 0);
        // A beat, with a value an hour ahead of the wall clock.
        r.clients
            .get(c.index)
            .heartbeat_ns()
            .store(proc::now_ns() + hour, Relaxed);
        assert_eq!(watch.scan_at(live, at(1500)).clients, 0, "it beat at 1.5 s");
        assert_eq!(watch.scan_at(live, at(2400)).clients, 0);
        let reaped = watch.scan_at(live, at(2600));
        assert_eq!(reaped.clients, 1, "silent for 1.1 s: {:?}", reaped.events);
        assert!(
            entry::is_reaped(&r, c),
            "its process lives: reaped, not freed"
        );
        drop(watch);
        drop(seg);
        Segment::unlink(&bus, "r").unwrap();
    }
}
