//! Work queue: many producers, many competing consumers; each message is taken by exactly one.
//!
//! Algorithm: Dmitry Vyukov's bounded MPMC queue ("Bounded MPMC queue", 1024cores.net, 2010),
//! with the dequeue split in two so that the consumer works on the slot in place (zero copy):
//!
//! - Slot `i` starts with `stamp = i`. A producer at `head = s` may write the slot when
//!   `stamp == s`; it claims `s` by CAS on `head`, writes, and commits `stamp = s + 1`.
//! - A consumer at `tail = t` may take the slot when `stamp == t + 1`; it claims `t` by CAS on
//!   `tail`, reads the payload in place, and releases with `stamp = t + capacity` (a
//!   compare-and-swap from `t + 1`, [`release_taken`], shared with the broker's re-offer), which makes
//!   the slot writable for the producer of the next lap.
//! - While a consumer holds a slot it records its lease in the slot (`lease`,
//!   `deliveries`), so that the broker can hand the job to another worker if it dies.
//!
//! Memory orderings (each Acquire with the Release it pairs with):
//! - producer commit `stamp.store(s+1, Release)` -> consumer `stamp.load(Acquire)`.
//! - consumer release `stamp` CAS `t+1 -> t+cap` (AcqRel) -> producer `stamp.load(Acquire)`.
//! - the CASes on `head` and `tail` only arbitrate between peers of one side: Relaxed.

use super::{notify, RingRef};
use crate::sync::Ordering::*;
use gos_layouts::segment::SLOT_SKIPPED;

/// Claims the next sequence for a producer, or `None` when the queue is full. `single`: the
/// ring's one publisher claims with a plain store.
#[inline]
pub fn try_claim(ring: &RingRef<'_>, single: bool) -> Option<u64> {
    let mut s = ring.ctl.head().load(Relaxed);
    loop {
        // Acquire: pairs with the consumer's release of the previous lap.
        let stamp = ring.slot(s).stamp().load(Acquire);
        let diff = stamp.wrapping_sub(s) as i64;
        if diff == 0 {
            if single {
                ring.ctl.head().store(s + 1, Relaxed);
                return Some(s);
            }
            match ring
                .ctl
                .head()
                .compare_exchange_weak(s, s + 1, Relaxed, Relaxed)
            {
                Ok(_) => return Some(s),
                Err(now) => s = now,
            }
        } else if diff < 0 {
            return None;
        } else {
            // Another producer took `s` (head moved on): look again. A stamp ahead of an
            // unmoved head is no state the protocol makes (a damaged slot): report the queue
            // full rather than spin on it; the caller's deadline and the broker's check of
            // the stamps take it from there.
            let now = ring.ctl.head().load(Relaxed);
            if now == s {
                return None;
            }
            s = now;
        }
    }
}

/// Publishes the message in the slot of `seq`, then wakes sleeping consumers. `deliveries` is
/// how many times the job was handed out before (0 for a new job; the broker passes the old
/// count when it re-offers a dead worker's job).
#[inline]
pub fn commit(ring: &RingRef<'_>, seq: u64, len: u32, skipped: bool, deliveries: u32) {
    let slot = ring.slot(seq);
    slot.len().store(len, Relaxed);
    slot.flags()
        .store(if skipped { SLOT_SKIPPED } else { 0 }, Relaxed);
    slot.lease().store(0, Relaxed);
    slot.deliveries().store(deliveries, Relaxed);
    if skipped {
        // Counted for the tools (`gos-bus ls`, `info`); never on the path of a message.
        ring.ctl.skipped().fetch_add(1, Relaxed);
    }
    // Release: pairs with the consumer's Acquire in `try_take`.
    slot.stamp().store(seq + 1, Release);
    notify::wake_consumers(ring);
}

/// What a consumer found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// A message at this sequence, now leased to the caller until [`release_taken`].
    Message(u64),
    /// A skipped slot (already released); try again.
    Skipped(u64),
    /// Nothing to take.
    Empty,
}

/// Takes the next message for the consumer whose lease word is `lease`.
#[inline]
pub fn try_take(ring: &RingRef<'_>, lease: u64) -> Take {
    let mut t = ring.ctl.tail().load(Relaxed);
    loop {
        let slot = ring.slot(t);
        // Acquire: pairs with the producer's commit.
        let stamp = slot.stamp().load(Acquire);
        let diff = stamp.wrapping_sub(t + 1) as i64;
        if diff == 0 {
            match ring
                .ctl
                .tail()
                .compare_exchange_weak(t, t + 1, Relaxed, Relaxed)
            {
                Ok(_) => {
                    slot.lease().store(lease, Relaxed);
                    slot.deliveries().fetch_add(1, Relaxed);
                    if slot.flags().load(Relaxed) & SLOT_SKIPPED != 0 {
                        release_taken(ring, t);
                        return Take::Skipped(t);
                    }
                    return Take::Message(t);
                }
                Err(now) => t = now,
            }
        } else if diff < 0 {
            return Take::Empty;
        } else {
            // As in `try_claim`: a stamp ahead of an unmoved tail is damage, not a race.
            let now = ring.ctl.tail().load(Relaxed);
            if now == t {
                return Take::Empty;
            }
            t = now;
        }
    }
}

/// Releases taken slot `t` if it is still taken: one compare-and-swap of its stamp from
/// "committed, taken" (`t + 1`) to "free for the next lap" (`t + capacity`). The worker's
/// release and the broker's re-offer of the same job (when it thinks the worker dead or
/// reaped) both go through it, so exactly one of them releases the slot, and a late release
/// can never move the stamp of a slot that went on to another lap. False when the other did
/// first (for the broker: drop the copy it took; for the worker: the job went to another).
#[inline]
pub fn release_taken(ring: &RingRef<'_>, t: u64) -> bool {
    let slot = ring.slot(t);
    // AcqRel: Release pairs with the producer's Acquire in `try_claim` (our reads of the
    // slot happen before the next lap's writes); Acquire so that the loser sees the winner's
    // release.
    if slot
        .stamp()
        .compare_exchange(t + 1, t + ring.capacity, AcqRel, Relaxed)
        .is_err()
    {
        return false;
    }
    slot.lease().store(0, Relaxed);
    notify::wake_producers(ring);
    true
}
