//! Broadcast ring: many producers, many subscribers, every subscriber sees every message.
//!
//! Algorithm: a Disruptor-style sequenced ring (LMAX Disruptor, Thompson et al. 2011) with
//! per-slot sequence stamps as in Vyukov's bounded MPMC queue, so that producers need no
//! separate "published" cursor:
//!
//! - Producers claim sequence `s` by CAS on `head`. Under [`Policy::Block`] they claim only when
//!   `s - min(subscriber cursors) < capacity`; under [`Policy::OverwriteOldest`] they claim at
//!   once and then move every subscriber that is a full ring behind forward (counting its drops).
//! - Nothing here waits: a producer whose slot is not writable yet ([`is_writable`]) or whose
//!   laggard holds a view ([`make_room`]) keeps its claim and retries under its own deadline
//!   (`gos-bus-client`'s publisher), sleeping between tries.
//! - Before writing slot `s & mask` a producer waits until its stamp shows the previous lap
//!   (`s - capacity`) committed, so two producers never write one slot.
//! - Commit stores `stamp = s + 1` with Release. A subscriber at cursor `c` reads slot
//!   `c & mask` once its stamp equals `c + 1` (Acquire), then stores `cursor = c + 1` (Release).
//! - Each producer caches the minimum cursor it last saw (rtrb's cached index) and rescans the
//!   client table only when that cache says the ring is full.
//! - Under overwrite-oldest a subscriber marks its cursor with [`CURSOR_HOLD`] (CAS) while it
//!   holds a view; a producer never moves a held cursor: [`make_room`] reports it, and the
//!   producer keeps its claim and tries again (under its deadline) after the release. So a
//!   view is never overwritten under the reader: zero copy stays safe.
//! - Under [`Policy::Block`] a subscriber may read every committed message from its cursor on
//!   as one batch ([`committed_run`]) and release them with one cursor store
//!   ([`release_batch`]), as a Disruptor batch event processor does.
//!
//! Memory orderings (each Acquire with the Release it pairs with):
//! - commit `stamp.store(s+1, Release)` -> subscriber `stamp.load(Acquire)`: payload visible.
//! - release `cursor.store(c+1, Release)` -> producer scan `cursor.load(Acquire)`: the reader
//!   is done with the slot before the producer rewrites it.
//! - commit of lap `k` `stamp.store(Release)` -> producer of lap `k+1` `stamp.load(Acquire)`.
//! - claims are AcqRel on `head` and producers load `head` with Acquire; every cursor scan
//!   starts with a SeqCst fence that pairs with the SeqCst fence of the subscriber join (see
//!   `clients` for why no producer can miss a joining subscriber).

use super::entry::is_active;
use super::{notify, RingRef};
use crate::sync::{fence, Ordering::*};
use gos_layouts::segment::{CURSOR_HOLD, ROLE_SUBSCRIBER, SLOT_SKIPPED};

/// Per-producer state kept in the producer's own memory.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProducerCache {
    /// Lowest subscriber cursor seen at the last scan (a lower bound of the true minimum).
    pub min_cursor: u64,
}

/// Lowest cursor of the active subscribers, or `head_now` when there are none.
fn min_cursor(ring: &RingRef<'_>, head_now: u64) -> u64 {
    let mut min = head_now;
    // SeqCst fence: pairs with the fence in `entry::join` (see there).
    fence(SeqCst);
    for i in 0..ring.clients.len() {
        let e = ring.clients.get(i);
        // Acquire (in `is_active`): pairs with the Release activation in `entry::join`.
        if is_active(e) && e.role().load(Relaxed) == ROLE_SUBSCRIBER {
            // Acquire: pairs with the subscriber's Release in `release`.
            let c = e.cursor().load(Acquire) & !CURSOR_HOLD;
            min = min.min(c);
        }
    }
    min
}

/// Block policy: claims the next sequence, or `None` when the slowest subscriber is a full
/// ring behind (the caller waits for space and retries). `single` is true on a
/// single-producer ring, whose one publisher claims with a plain store: no locked
/// instruction, which would otherwise wait for the cache lines of the last message.
#[inline]
pub fn try_claim_block(ring: &RingRef<'_>, cache: &mut ProducerCache, single: bool) -> Option<u64> {
    // Acquire: pairs with other producers' AcqRel claims (the join argument needs it).
    let mut s = ring.ctl.head().load(Acquire);
    loop {
        if s.saturating_sub(cache.min_cursor) >= ring.capacity {
            cache.min_cursor = min_cursor(ring, s);
            if s.saturating_sub(cache.min_cursor) >= ring.capacity {
                return None;
            }
        }
        if single {
            // Release: as the AcqRel claim below; we are the only writer of `head`.
            ring.ctl.head().store(s + 1, Release);
            return Some(s);
        }
        // AcqRel / Acquire: claims form a release sequence that scans acquire (see `clients`).
        match ring
            .ctl
            .head()
            .compare_exchange_weak(s, s + 1, AcqRel, Acquire)
        {
            Ok(_) => return Some(s),
            Err(now) => s = now,
        }
    }
}

/// Most sequences one batch claims: the broker looks for orphaned claims (a dead publisher's
/// batch) within 4096 sequences behind `head`, so a batch must fit in that window.
pub const MAX_BATCH: u64 = 1024;

/// Block policy on a single-producer ring: claims up to `max` (at most [`MAX_BATCH`])
/// consecutive sequences with one
/// store of `head` (a batch, as the Disruptor's `next(n)`), or `None` when the ring is full or
/// the first slot is pinned (the caller's one-at-a-time path passes pinned slots over). The
/// batch stops before the first pinned slot. Returns the first sequence and the count.
///
/// Only the single publisher claims on such a ring, so every slot it can claim has its
/// previous lap committed; its claim marker names the first sequence, and the broker counts
/// every uncommitted sequence from there up to `head` as the live token holder's
/// (`entry::held_by_live_publisher`).
#[inline]
pub fn try_claim_block_batch(
    ring: &RingRef<'_>,
    cache: &mut ProducerCache,
    max: u64,
) -> Option<(u64, u64)> {
    let max = max.min(MAX_BATCH);
    // Only this publisher writes `head`: a plain load.
    let s = ring.ctl.head().load(Relaxed);
    let mut free = ring
        .capacity
        .saturating_sub(s.saturating_sub(cache.min_cursor));
    if free < max {
        cache.min_cursor = min_cursor(ring, s);
        free = ring
            .capacity
            .saturating_sub(s.saturating_sub(cache.min_cursor));
    }
    let want = free.min(max);
    let mut n = 0;
    while n < want
        && is_writable(ring, s + n)
        && super::entry::pinned(ring, s + n) == super::entry::Pinned::No
    {
        n += 1;
    }
    if n == 0 {
        return None;
    }
    // Release: as `try_claim_block`'s single-producer store.
    ring.ctl.head().store(s + n, Release);
    Some((s, n))
}

/// Publishes the messages of a batch claimed from `first`: `len(i)` payload bytes for the
/// `i`-th, or skipped when `None`, each with its own stamp (Release), then wakes sleeping
/// consumers once.
#[inline]
pub fn commit_batch(ring: &RingRef<'_>, first: u64, count: u64, len: impl Fn(u64) -> Option<u32>) {
    for i in 0..count {
        let seq = first + i;
        let slot = ring.slot(seq);
        let l = len(i);
        slot.len().store(l.unwrap_or(0), Relaxed);
        slot.flags()
            .store(if l.is_none() { SLOT_SKIPPED } else { 0 }, Relaxed);
        if l.is_none() {
            ring.ctl.skipped().fetch_add(1, Relaxed);
        }
        // Release: pairs with the subscriber's Acquire in `try_read`.
        slot.stamp().store(seq + 1, Release);
    }
    notify::wake_consumers(ring);
}

/// Overwrite-oldest policy: claims the next sequence at once. Before writing it the producer
/// must make room with [`make_room`].
#[inline]
pub fn claim_overwrite(ring: &RingRef<'_>, single: bool) -> u64 {
    if single {
        let s = ring.ctl.head().load(Relaxed);
        // Release: as the AcqRel claim below; we are the only writer of `head`.
        ring.ctl.head().store(s + 1, Release);
        s
    } else {
        // AcqRel: claims form a release sequence that scans acquire (see `clients`).
        ring.ctl.head().fetch_add(1, AcqRel)
    }
}

/// Overwrite-oldest policy, for claimed sequence `s`: moves every subscriber that is a full
/// ring behind to the oldest message that survives, adding what it skipped to its drop
/// counter. Never waits: false when a subscriber that must move holds a view (the caller
/// waits, with its deadline, and calls again).
#[inline]
pub fn make_room(ring: &RingRef<'_>, cache: &mut ProducerCache, s: u64) -> bool {
    if s < ring.capacity {
        return true;
    }
    let need = s + 1 - ring.capacity; // every cursor must be at least this
    if cache.min_cursor >= need {
        return true;
    }
    match advance_laggards(ring, need, s) {
        Some(min) => {
            cache.min_cursor = min;
            true
        }
        None => false,
    }
}

fn advance_laggards(ring: &RingRef<'_>, need: u64, head_now: u64) -> Option<u64> {
    let mut min = head_now;
    let mut held = false;
    // SeqCst fence: pairs with the fence in `entry::join` (see there).
    fence(SeqCst);
    for i in 0..ring.clients.len() {
        let e = ring.clients.get(i);
        // Acquire (in `is_active`): pairs with the Release activation in `entry::join`.
        if !is_active(e) || e.role().load(Relaxed) != ROLE_SUBSCRIBER {
            continue;
        }
        loop {
            // Acquire: pairs with the subscriber's Release store / AcqRel CAS of its cursor.
            let c = e.cursor().load(Acquire);
            let base = c & !CURSOR_HOLD;
            if base >= need {
                min = min.min(base);
                break;
            }
            if c & CURSOR_HOLD != 0 {
                // The subscriber is reading a slot we are about to pass: it must release
                // first. Move the others now, and report that we must come back.
                held = true;
                break;
            }
            // AcqRel: acquires the subscriber's release of the slot, publishes the new cursor.
            if e.cursor()
                .compare_exchange(c, need, AcqRel, Acquire)
                .is_ok()
            {
                e.drops().fetch_add(need - base, Relaxed);
                min = min.min(need);
                break;
            }
        }
    }
    (!held).then_some(min)
}

/// True when the stamp of the slot of claimed sequence `seq` can never become the one that
/// makes it writable: it is not a stamp of that slot (0, or one past a sequence of the slot),
/// or it shows a lap at or past `seq` itself. Only a damaged slot does that; a producer
/// waiting for it reports the ring damaged instead of waiting forever.
pub fn never_writable(ring: &RingRef<'_>, seq: u64) -> bool {
    let stamp = ring.slot(seq).stamp().load(Acquire);
    let expected = if seq >= ring.capacity {
        seq - ring.capacity + 1
    } else {
        0
    };
    stamp > expected
        || (stamp != 0 && (stamp - 1) & (ring.capacity - 1) != seq & (ring.capacity - 1))
}

/// Returns true when the slot of `seq` is free to write, without waiting.
#[inline]
pub fn is_writable(ring: &RingRef<'_>, seq: u64) -> bool {
    let expected = if seq >= ring.capacity {
        seq - ring.capacity + 1
    } else {
        0
    };
    ring.slot(seq).stamp().load(Acquire) == expected
}

/// Hot buffers (a single-producer ring with `RING_HOT_BUFFERS`): called by the publisher for
/// its claimed, writable, unpinned sequence `s` before it writes. It swaps `SlotHeader::buffer`
/// of `s`'s slot with that of the newest sequence every subscriber has released and whose
/// buffer it has not swapped out yet (`d`, below the lowest cursor, scanned afresh): the
/// buffer the publisher wrote last among the free ones, most likely still in its cache, as
/// iceoryx2's pool hands back its hottest chunk. Without the swap a ring of large slots
/// cycles through every slot's buffer and each message is written into memory that left the
/// cache a lap ago (see `docs/ARCHITECTURE.md`, "Large messages").
///
/// `swapped` is the publisher's own note, one flag per slot, of the released slots it gave a
/// cold buffer (so that a subscriber that stalls does not make it take those back: the free
/// buffers are used newest first, a stack). It only steers the choice; a fresh publisher
/// starts with all false.
///
/// Why no reader can see the swap: nobody reads `d` again (every cursor is past it, a joining
/// subscriber starts at or past the scan's minimum by the join argument in `entry`, and a
/// reaped subscriber's pin is checked), and `s` is read only after its commit, whose Release
/// publishes the new buffer index. The slot of `d` is written next at `d + capacity`, by this
/// same publisher (the only writer of buffer indices while it holds the producer token).
///
/// A publisher that dies between its two stores leaves `s`'s buffer named twice; the broker,
/// which commits `s` as skipped, gives `s` the missing buffer ([`repair_buffers`]).
///
/// Returns the buffer `s` now holds.
#[inline]
pub fn take_hot_buffer(ring: &RingRef<'_>, s: u64, swapped: &mut [bool]) -> u32 {
    /// Released slots looked at, newest first, before giving up on a hot buffer.
    const LOOK_BACK: u64 = 8;
    let own_slot = ring.slot(s);
    let own = own_slot.buffer().load(Relaxed);
    if let Some(f) = swapped.get_mut(ring.index(s)) {
        *f = false; // its slot holds the newest message from here
    }
    // The newest sequence all subscribers released is `min - 1`; candidates go back from
    // there while their slot is another than `s`'s (`s - d < capacity`).
    let min = min_cursor(ring, s).min(s);
    let oldest = (s + 1)
        .saturating_sub(ring.capacity)
        .max(min.saturating_sub(LOOK_BACK));
    for d in (oldest..min).rev() {
        let donor = ring.slot(d);
        // Only a committed message's buffer (Acquire: pairs with its commit): a sequence
        // still claimed (this publisher's own batch, or a dead one's, waiting to be skipped
        // and repaired) keeps its buffer.
        if swapped.get(ring.index(d)).copied().unwrap_or(false)
            || donor.stamp().load(Acquire) != d + 1
            || super::entry::is_pinned(ring, d)
        {
            continue;
        }
        let hot = donor.buffer().load(Relaxed);
        // Relaxed: the next reader of either slot acquires a later commit of this publisher.
        // The donor first: dying between the stores leaves `own` named twice, never `hot`
        // (which the donor's committed message no longer needs).
        donor.buffer().store(own, Relaxed);
        own_slot.buffer().store(hot, Relaxed);
        // The swap before the payload writes that follow, for a tool that copies a released
        // slot and then checks its buffer index (`gos-bus inspect`, as a seqlock reader).
        fence(Release);
        if let Some(f) = swapped.get_mut(ring.index(d)) {
            *f = true;
        }
        return hot;
    }
    own
}

/// Hot buffers: the broker, about to commit sequence `s` of a publisher that died (or was
/// reaped) holding it, makes the slot buffers a permutation again. A publisher that died
/// inside [`take_hot_buffer`] left `s`'s slot naming a buffer the donor names too, and one
/// buffer named by no slot: `s`, whose message is skipped, takes the missing one. Changes
/// nothing when the buffers are a permutation. Safe while another publisher runs: only `s`'s
/// slot changes, it is never read (skipped), and no publisher takes an uncommitted slot's
/// buffer ([`take_hot_buffer`] checks the donor's stamp), so `s`'s buffer is never a live
/// swap's.
pub fn repair_buffers(ring: &RingRef<'_>, s: u64) {
    let n = ring.capacity as usize;
    let mask = ring.capacity - 1;
    let mut named = vec![0u32; n];
    for i in 0..n {
        named[(ring.slots.get(i).buffer().load(Relaxed) as u64 & mask) as usize] += 1;
    }
    let Some(missing) = named.iter().position(|&c| c == 0) else {
        return;
    };
    let own = ring.slot(s).buffer().load(Relaxed) as u64 & mask;
    if named[own as usize] > 1 {
        ring.slot(s).buffer().store(missing as u32, Relaxed);
    }
}

/// Publishes the message in the slot of `seq` (`len` payload bytes, or skipped when
/// `skipped`), then wakes sleeping consumers.
#[inline]
pub fn commit(ring: &RingRef<'_>, seq: u64, len: u32, skipped: bool) {
    let slot = ring.slot(seq);
    slot.len().store(len, Relaxed);
    slot.flags()
        .store(if skipped { SLOT_SKIPPED } else { 0 }, Relaxed);
    if skipped {
        // Counted for the tools (`gos-bus ls`, `info`); never on the path of a message.
        ring.ctl.skipped().fetch_add(1, Relaxed);
    }
    // Release: pairs with the subscriber's Acquire in `try_read`; payload, len, flags visible.
    slot.stamp().store(seq + 1, Release);
    notify::wake_consumers(ring);
}

/// What a subscriber found at its cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// A message at this sequence; the caller holds it until [`release`].
    Message(u64),
    /// A skipped slot at this sequence (already released); try again.
    Skipped(u64),
    /// Nothing published yet.
    Empty,
}

/// Block policy: looks at the slot of the subscriber's cursor `c` (kept locally by the
/// subscriber, which is its only writer under this policy).
#[inline]
pub fn try_read_block(ring: &RingRef<'_>, entry: usize, c: u64) -> Read {
    let slot = ring.slot(c);
    // Acquire: pairs with `commit`'s Release.
    if slot.stamp().load(Acquire) != c + 1 {
        return Read::Empty;
    }
    if slot.flags().load(Relaxed) & SLOT_SKIPPED != 0 {
        advance(ring, entry, c + 1, 0);
        return Read::Skipped(c);
    }
    Read::Message(c)
}

/// Block policy: how many sequences from `c` (the subscriber's cursor) on, at most `max`, are
/// committed (messages and skips alike): the batch a subscriber may read at once. Each
/// stamp is loaded with Acquire, pairing with its commit's Release.
#[inline]
pub fn committed_run(ring: &RingRef<'_>, c: u64, max: u64) -> u64 {
    let mut n = 0;
    while n < max && ring.slot(c + n).stamp().load(Acquire) == c + n + 1 {
        n += 1;
    }
    n
}

/// Block policy: releases the batch of sequences up to `end` (exclusive) that the subscriber
/// read at once, `messages` of them messages (the rest skipped): one cursor store, one wake.
#[inline]
pub fn release_batch(ring: &RingRef<'_>, entry: usize, end: u64, messages: u64) {
    advance(ring, entry, end, messages);
}

/// Overwrite policy: reads the cursor (which producers may have moved), then marks it held.
#[inline]
pub fn try_read_overwrite(ring: &RingRef<'_>, entry: usize) -> Read {
    let e = ring.clients.get(entry);
    loop {
        // Acquire: pairs with a producer's AcqRel CAS that moved the cursor.
        let c = e.cursor().load(Acquire) & !CURSOR_HOLD;
        let slot = ring.slot(c);
        // Acquire: pairs with `commit`'s Release.
        if slot.stamp().load(Acquire) != c + 1 {
            if e.cursor().load(Acquire) & !CURSOR_HOLD != c {
                continue; // moved by a producer meanwhile: look again
            }
            return Read::Empty;
        }
        // A producer rewrites this slot only after moving our cursor past `c`; the CAS fails if
        // that happened since we loaded it, so once it succeeds the slot is ours until release.
        if e.cursor()
            .compare_exchange(c, c | CURSOR_HOLD, AcqRel, Relaxed)
            .is_err()
        {
            continue;
        }
        if slot.flags().load(Relaxed) & SLOT_SKIPPED != 0 {
            advance(ring, entry, c + 1, 0);
            return Read::Skipped(c);
        }
        return Read::Message(c);
    }
}

/// Releases the message at `c`: the subscriber's cursor moves to `c + 1`.
#[inline]
pub fn release(ring: &RingRef<'_>, entry: usize, c: u64) {
    advance(ring, entry, c + 1, 1);
}

/// Moves the subscriber's cursor to `next`, counting `received` messages (skips are not).
#[inline]
fn advance(ring: &RingRef<'_>, entry: usize, next: u64, received: u64) {
    let e = ring.clients.get(entry);
    // Release: pairs with the producer scan's load; our reads of the slots happen before a
    // producer rewrites them.
    e.cursor().store(next, Release);
    if received > 0 {
        // Only this subscriber writes its count: a plain load and store, no locked instruction.
        e.count().store(e.count().load(Relaxed) + received, Relaxed);
    }
    notify::wake_producers(ring);
}
