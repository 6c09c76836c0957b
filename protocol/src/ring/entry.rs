//! The life of a client-table entry, in one place: this module is the only code that changes
//! an entry's state, and the only code that knows how its claim marker, the single-producer
//! token and work-queue leases name it. Clients (`gos-bus-client`) and the broker's reaper call
//! the small API below; nothing else stores to `ClientEntry::lifecycle`.
//!
//! # The lifecycle word
//! `ClientEntry::lifecycle` holds the state (low 32 bits: free, claiming, active, reaped) and the claim
//! generation (high 32 bits) in one atomic word, so every transition is one compare-and-swap
//! on both, and a stale holder can never act on an entry that was freed and claimed again
//! (the ABA a separate generation word allowed):
//!
//! ```text
//!            claim: CAS (FREE, g) -> (CLAIMING, g+1)      activate: CAS -> (ACTIVE, g+1)
//!   FREE ─────────────────────────────> CLAIMING ─────────────────────────────> ACTIVE
//!    ^                                      |                                     |
//!    |  reap: CAS (observed) -> (FREE, g)   |   release / reap: CAS (ACTIVE, g) -> (FREE, g)
//!    +--------------------------------------+-------------------------------------+
//!    |                                                                            |
//!    |  give_up (the client) / free_reaped (process gone)      reap_pinned (alive) |
//!    +------------------------------------ REAPED <-------------------------------+
//! ```
//!
//! # Reaping a client that still lives
//! A paused (SIGSTOP, debugger, swap) or starved client is reaped like a dead one, so it
//! holds nobody back, but its process may resume and touch the slot it had loaned or was
//! reading. So the broker moves it to REAPED instead of FREE, with the sequence whose slot it
//! held in `ClientEntry::pinned` (a subscriber: the slots from its cursor to the end of the
//! batch it reads, and the one after), and counts it in `RingHeader::pins`. Producers that
//! claim a sequence whose slot is pinned commit it as skipped without touching its payload
//! ([`pinned`]), and claim again. The pin goes when the client, resumed, finds
//! itself reaped and gives the entry up ([`give_up`], after its last access), or when the
//! broker finds the process gone ([`free_reaped`]). A paused client loses its place, not
//! its memory safety.
//!
//! # Who commits a claimed sequence
//! A publisher's claim marker (`ClientEntry::claimed`, sequence + 1) is ended by one
//! compare-and-swap: by the publisher when it commits or abandons ([`end_claim`], which marks
//! it committing until its stamp is out), or by the broker when it reclaims the sequence
//! ([`take_claim`], which leaves a committing claim alone while its process lives). Exactly
//! one of them writes the stamp, and a late commit after a reap returns `Reaped` instead of
//! publishing over the broker's skip.
//!
//! A holder is named by a [`Claim`] (index and generation); [`is_current`] is true while the
//! word still reads `(ACTIVE, generation)`. The generation also makes the work-queue lease
//! (`generation << 32 | index + 1`, [`Claim::lease`]) that a taken slot records.
//!
//! # The subscriber join
//! The join must not let a producer overwrite a message the new subscriber will read. The
//! subscriber stores its cursor `h` and activates (Release), issues a SeqCst fence F_S, and
//! re-reads `head` (Acquire) until it reads `h` again. A producer about to overwrite
//! sequence `x >= h` must have claimed `x + capacity`, so the minimum cursor M of its last
//! scan exceeds `h`; M is at most the `head` value `v > h` it loaded before that scan, whose
//! scan starts with a SeqCst fence F_P. The write of `v` comes after `h` in `head`'s
//! modification order and (claims are AcqRel, the load Acquire) happens before F_P, while the
//! subscriber's last read of `h` follows F_S: so F_S precedes F_P in the SeqCst order
//! (C++20 [atomics.order]), and the scan after F_P sees the subscriber active with a cursor of
//! at least `h` (the Release activation), making M <= h: a contradiction. Checked by loom
//! (`loom_subscriber_join_races_producer`).

use super::RingRef;
use crate::control::ClientCtl;
use crate::sync::{fence, Ordering::*};
use gos_layouts::segment::{
    CLIENT_ACTIVE, CLIENT_CLAIMING, CLIENT_FREE, CLIENT_REAPED, CURSOR_HOLD, PIN_EXTRA_SHIFT,
    PIN_INDEX_MASK, ROLE_PUBLISHER, ROLE_SUBSCRIBER, ROLE_WORKER,
};

/// The lifecycle word of `state` at `generation`.
#[inline]
pub const fn pack(state: u32, generation: u32) -> u64 {
    ((generation as u64) << 32) | state as u64
}

/// The state of a lifecycle word (`CLIENT_FREE`, `CLIENT_CLAIMING`, `CLIENT_ACTIVE` or
/// `CLIENT_REAPED`).
#[inline]
pub const fn state(word: u64) -> u32 {
    word as u32
}

/// The claim generation of a lifecycle word.
#[inline]
pub const fn generation(word: u64) -> u32 {
    (word >> 32) as u32
}

/// An entry as its holder knows it: the index in the client table and the generation it
/// claimed. Stays valid (see [`is_current`]) until released or reaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// Index in the client table.
    pub index: usize,
    /// Generation written by the claim.
    pub generation: u32,
}

impl Claim {
    /// The work-queue lease a slot taken under this claim records:
    /// `generation << 32 | index + 1` (0 is never a lease).
    #[inline]
    pub fn lease(&self) -> u64 {
        ((self.generation as u64) << 32) | (self.index as u64 + 1)
    }
}

/// Identity written into a claimed entry.
#[derive(Debug, Clone, Copy)]
pub struct Identity {
    /// 1 publisher, 2 subscriber, 3 worker.
    pub role: u32,
    /// Process id.
    pub pid: u32,
    /// Process start time (clock ticks since boot).
    pub start_time: u64,
    /// Heartbeat value to start with.
    pub now_ns: u64,
    /// Name, NUL-padded.
    pub name: [u8; 24],
}

/// Claims a free entry and activates it; for a subscriber, runs the join protocol.
/// Returns the claim, or `None` when the table is full.
pub fn claim(ring: &RingRef<'_>, id: &Identity) -> Option<Claim> {
    for i in 0..ring.clients.len() {
        let e = ring.clients.get(i);
        let word = e.lifecycle().load(Relaxed);
        if state(word) != CLIENT_FREE {
            continue;
        }
        let generation = generation(word).wrapping_add(1);
        let claiming = pack(CLIENT_CLAIMING, generation);
        // Acquire: pairs with the Release of the free, so the last holder's writes to the
        // entry happen before ours.
        if e.lifecycle()
            .compare_exchange(word, claiming, Acquire, Relaxed)
            .is_err()
        {
            continue;
        }
        e.role().store(id.role, Relaxed);
        e.pid().store(id.pid, Relaxed);
        e.start_time().store(id.start_time, Relaxed);
        e.heartbeat_ns().store(id.now_ns, Relaxed);
        e.drops().store(0, Relaxed);
        e.count().store(0, Relaxed);
        e.bytes().store(0, Relaxed);
        e.claimed().store(0, Relaxed);
        e.flags().store(0, Relaxed);
        e.failed().store(0, Relaxed);
        e.work_ns().store(0, Relaxed);
        e.gpu_ns().store(0, Relaxed);
        e.pinned().store(0, Relaxed);
        for (w, chunk) in e.name().iter().zip(id.name.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            w.store(u64::from_le_bytes(b), Relaxed);
        }
        let c = Claim {
            index: i,
            generation,
        };
        let activated = if id.role == ROLE_SUBSCRIBER {
            join(ring, c)
        } else {
            e.cursor().store(0, Relaxed);
            activate(e, c)
        };
        if activated {
            return Some(c);
        }
        // Reaped while claiming (this process looked dead or silent): the entry is not ours.
    }
    None
}

/// CLAIMING -> ACTIVE for `c`. Release: a scan that sees ACTIVE (Acquire) sees the fields
/// written during the claim.
fn activate(e: &ClientCtl, c: Claim) -> bool {
    transition(
        e,
        pack(CLIENT_CLAIMING, c.generation),
        pack(CLIENT_ACTIVE, c.generation),
    )
}

/// The one way an entry's word changes after its claim: `from -> to` in one compare-and-swap,
/// false when the word is no longer `from`. Release: what the caller wrote before (the
/// claim's fields, the client's last use, the reaper's reclaim) happens before whoever
/// acquires the new word (a scan's `is_active`, the next claim's CAS).
fn transition(e: &ClientCtl, from: u64, to: u64) -> bool {
    e.lifecycle()
        .compare_exchange(from, to, Release, Relaxed)
        .is_ok()
}

/// Activates subscriber entry `c` at the current head (see the module docs for why it loops).
fn join(ring: &RingRef<'_>, c: Claim) -> bool {
    let e = ring.clients.get(c.index);
    let mut h = ring.ctl.head().load(Acquire);
    e.cursor().store(h, Relaxed);
    // Release (in `activate`): a scan that sees ACTIVE (Acquire) sees the cursor above.
    if !activate(e, c) {
        return false;
    }
    loop {
        // SeqCst fence F_S: pairs with the fence that starts every producer scan.
        fence(SeqCst);
        // Acquire: pairs with the producers' AcqRel claims.
        let now = ring.ctl.head().load(Acquire);
        if now == h {
            return true;
        }
        // A producer may have moved our cursor already (overwrite-oldest): then it saw us.
        match e.cursor().compare_exchange(h, now, AcqRel, Acquire) {
            Ok(_) => h = now,
            Err(_) => return true,
        }
    }
}

/// True while `c` still holds its entry: the word reads `(ACTIVE, c.generation)`.
#[inline]
pub fn is_current(ring: &RingRef<'_>, c: Claim) -> bool {
    ring.clients.get(c.index).lifecycle().load(Relaxed) == pack(CLIENT_ACTIVE, c.generation)
}

/// True when entry `e` is active. Acquire: pairs with the Release activation, so the fields
/// written at the claim (cursor, role, pid) are visible.
#[inline]
pub fn is_active(e: &ClientCtl) -> bool {
    state(e.lifecycle().load(Acquire)) == CLIENT_ACTIVE
}

/// The holder frees its entry: `(ACTIVE, g) -> (FREE, g)`, or, when the broker reaped it
/// while its process lived, gives the reaped entry up ([`give_up`]). False (and nothing
/// changed) when the entry is no longer `c`'s in either state.
pub fn release(ring: &RingRef<'_>, c: Claim) -> bool {
    transition(
        ring.clients.get(c.index),
        pack(CLIENT_ACTIVE, c.generation),
        pack(CLIENT_FREE, c.generation),
    ) || give_up(ring, c)
}

/// True when the broker reaped `c` while its process lived: the entry reads
/// `(REAPED, c.generation)` and pins a slot until [`give_up`].
#[inline]
pub fn is_reaped(ring: &RingRef<'_>, c: Claim) -> bool {
    ring.clients.get(c.index).lifecycle().load(Relaxed) == pack(CLIENT_REAPED, c.generation)
}

/// A reaped client that is done with the memory it held (its late commit or release failed,
/// or it detaches) gives its entry up: `(REAPED, g) -> (FREE, g)`, and the slot it pinned is
/// free for producers again. False when it was not reaped (or the broker freed it already).
pub fn give_up(ring: &RingRef<'_>, c: Claim) -> bool {
    // Release (in `transition`): our last reads and writes of the pinned slot happen before a
    // producer that sees the entry free (Acquire in `is_pinned`) writes it.
    let freed = transition(
        ring.clients.get(c.index),
        pack(CLIENT_REAPED, c.generation),
        pack(CLIENT_FREE, c.generation),
    );
    if freed {
        ring.ctl.pins().fetch_sub(1, Release);
    }
    freed
}

/// What a reaped entry pins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pin {
    /// The slot of this sequence (a publisher's loan, a worker's job).
    Seq(u64),
    /// The slots from the subscriber's cursor to the end of the batch it announced
    /// ([`announce_batch`]), and the one after: both are read after the entry is reaped, and a
    /// subscriber that was running meanwhile may be one slot past the values the broker read
    /// (its cursor store still on its way).
    Cursor,
    /// No slot (nothing was held); the entry is kept only so that the client's late calls
    /// fail instead of acting on an entry someone else claimed.
    Nothing,
}

/// `ClientEntry::pinned` of a reaped entry that pins no slot (an index past every ring).
pub const NO_PIN: u32 = PIN_INDEX_MASK;
/// `ClientEntry::pinned` while the broker has not yet written the pin (a subscriber's, read
/// after the transition): producers wait rather than guess.
const PIN_PENDING: u32 = 0;

/// The most slots one pin covers beyond its first (the 7 bits above the index).
const PIN_EXTRA_MAX: u64 = (u32::MAX >> PIN_EXTRA_SHIFT) as u64;

/// The pin of the slot of `seq` and the `extra` slots after it (at most [`PIN_EXTRA_MAX`],
/// and never more than the whole ring).
fn pin_word(ring: &RingRef<'_>, seq: u64, extra: u64) -> u32 {
    let extra = extra.min(PIN_EXTRA_MAX).min(ring.capacity - 1) as u32;
    (ring.index(seq) as u32 + 1) | extra << PIN_EXTRA_SHIFT
}

/// The most messages a subscriber reads as one batch on a ring of `capacity` slots: its pin
/// (the batch and the slot after it) stays within [`PIN_EXTRA_MAX`] and leaves producers
/// most of the ring.
pub fn max_read_batch(capacity: u64) -> u64 {
    (capacity / 4).clamp(1, PIN_EXTRA_MAX - 1)
}

/// A subscriber (`c`, not reaped) is about to read the batch of messages from its cursor up
/// to `end` (exclusive): it announces `end` in `ClientEntry::claimed`, then checks that it
/// was not reaped meanwhile. True when it may read the batch. False when it was reaped: it
/// must read nothing more (and give its entry up).
///
/// A Dekker hand-shake with [`finish_pin`]: the subscriber stores `end`, then a SeqCst fence,
/// then loads its state; the broker changes the state, then a SeqCst fence, then loads
/// `end`. Whichever fence comes first in the single total order, the other side's load sees
/// the first side's store (C++20 [atomics.order]): either the subscriber sees itself
/// reaped, or the broker pins the whole batch. Checked by loom
/// (`loom_a_reaped_subscriber_keeps_its_batch_pinned`).
pub fn announce_batch(ring: &RingRef<'_>, c: Claim, end: u64) -> bool {
    ring.clients.get(c.index).claimed().store(end, Relaxed);
    fence(SeqCst);
    is_current(ring, c)
}

/// The broker takes entry `i` (observed as `observed`, claiming or active) from a client
/// whose process still lives, pinning what `pin` says: `observed -> (REAPED, generation)`.
/// Producers pass over a pinned slot ([`pinned`]) until the client gives the entry up or the
/// broker finds its process gone ([`free_reaped`]), so memory a paused client may still
/// touch is never handed to another message. False when the entry changed meanwhile.
///
/// A subscriber's pin starts at its cursor read *after* the transition (its locked
/// instruction is a full fence on x86) and runs to the end of the batch it announced
/// ([`announce_batch`]), plus the slot after: once a subscriber can see itself reaped it
/// reads no further slot, so those cover every slot it may still read (a subscriber checks
/// its state before each read). Until that pin is written, producers
/// that would write a slot wait ([`Pinned::Pending`]).
pub fn reap_pinned(ring: &RingRef<'_>, i: usize, observed: u64, pin: Pin) -> bool {
    let e = ring.clients.get(i);
    e.pinned().store(
        match pin {
            Pin::Seq(seq) => pin_word(ring, seq, 0),
            Pin::Nothing => NO_PIN,
            Pin::Cursor => PIN_PENDING,
        },
        Relaxed,
    );
    // Counted before the state changes: a producer that sees the reaped state (Acquire) or a
    // stamp the broker commits after this (Acquire) sees the count.
    ring.ctl.pins().fetch_add(1, Release);
    if !transition(e, observed, pack(CLIENT_REAPED, generation(observed))) {
        ring.ctl.pins().fetch_sub(1, Release);
        return false;
    }
    if pin == Pin::Cursor {
        finish_pin(ring, i);
    }
    true
}

/// Writes the cursor pin of reaped subscriber entry `i` if it is still pending (see
/// [`reap_pinned`]); the broker calls it again on every scan of a reaped entry, so a broker
/// that died between the reap and the pin leaves no pin pending for its successor.
pub fn finish_pin(ring: &RingRef<'_>, i: usize) {
    let e = ring.clients.get(i);
    if e.pinned().load(Acquire) != PIN_PENDING {
        return;
    }
    // SeqCst: the broker's side of the hand-shake in `announce_batch` (the reap's transition
    // comes before this fence in program order).
    fence(SeqCst);
    // Acquire: pairs with the subscriber's Release cursor stores.
    let c = e.cursor().load(Acquire) & !CURSOR_HOLD;
    // The batch end it announced (at most its cursor when it reads one message at a time;
    // a hostile value pins at most what one pin word holds, `pin_word`).
    let batch = e.claimed().load(Relaxed).saturating_sub(c);
    // The batch and the slot after it; at least the cursor's slot and the next.
    let extra = batch.max(1);
    // Release: pairs with the Acquire load in `pinned`. (Only a pending pin is replaced.)
    let _ = e
        .pinned()
        .compare_exchange(PIN_PENDING, pin_word(ring, c, extra), Release, Relaxed);
}

/// The broker moves the pin of reaped entry `i` to the slot of `seq` (a claim the client made
/// after it was reaped, or a job it took then, that the broker took back). Before the broker
/// hands the slot on, so the producer of its next lap sees the pin.
pub fn repin(ring: &RingRef<'_>, i: usize, seq: u64) {
    // Release: pairs with the Acquire load in `pinned`.
    ring.clients
        .get(i)
        .pinned()
        .store(pin_word(ring, seq, 0), Release);
}

/// The broker frees reaped entry `i` (observed as `observed`) whose process is gone.
pub fn free_reaped(ring: &RingRef<'_>, i: usize, observed: u64) -> bool {
    if state(observed) != CLIENT_REAPED {
        return false;
    }
    let freed = transition(
        ring.clients.get(i),
        observed,
        pack(CLIENT_FREE, generation(observed)),
    );
    if freed {
        ring.ctl.pins().fetch_sub(1, Release);
    }
    freed
}

/// Whether a producer may write the slot of a sequence it claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pinned {
    /// Nobody pins it: write it.
    No,
    /// A reaped client that may still touch it pins it: commit the sequence as skipped,
    /// without touching the payload, and claim another.
    Yes,
    /// A reaped subscriber's pin is being written: try again in a moment.
    Pending,
}

/// Whether the slot of `seq` is pinned by a reaped client whose process may still use it.
/// One load of `RingHeader::pins` while nothing is pinned.
#[inline]
pub fn pinned(ring: &RingRef<'_>, seq: u64) -> Pinned {
    // Acquire: pairs with the Release increment in `reap_pinned`.
    if ring.ctl.pins().load(Acquire) == 0 {
        return Pinned::No;
    }
    pinned_slow(ring, seq)
}

#[cold]
fn pinned_slow(ring: &RingRef<'_>, seq: u64) -> Pinned {
    let mask = ring.capacity - 1;
    let slot = seq & mask;
    let mut out = Pinned::No;
    for i in 0..ring.clients.len() {
        let e = ring.clients.get(i);
        // Acquire: pairs with the Release of `reap_pinned`'s transition (the pin stored
        // before it is visible).
        if state(e.lifecycle().load(Acquire)) != CLIENT_REAPED {
            continue;
        }
        // Acquire: pairs with the Release pin stores of `reap_pinned` and `repin`.
        let word = e.pinned().load(Acquire);
        if word == PIN_PENDING {
            out = Pinned::Pending;
            continue;
        }
        if word == NO_PIN {
            continue;
        }
        // A hostile index 0 wraps to a slot no ring has, never a panic.
        let first = ((word & PIN_INDEX_MASK) as u64).wrapping_sub(1);
        let extra = (word >> PIN_EXTRA_SHIFT) as u64;
        if slot.wrapping_sub(first) & mask <= extra {
            return Pinned::Yes;
        }
    }
    out
}

/// [`pinned`] as a yes or no (a pending pin counts as pinned), for tests and tools.
pub fn is_pinned(ring: &RingRef<'_>, seq: u64) -> bool {
    pinned(ring, seq) != Pinned::No
}

/// Stamps the heartbeat of `c` with `now_ns`. False when `c` no longer holds its entry.
pub fn heartbeat(ring: &RingRef<'_>, c: Claim, now_ns: u64) -> bool {
    if !is_current(ring, c) {
        return false;
    }
    ring.clients
        .get(c.index)
        .heartbeat_ns()
        .store(now_ns, Relaxed);
    true
}

/// The broker's look at entry `i`: its lifecycle word. Acquire: pairs with the Release
/// activation, so the identity written at the claim is visible.
#[inline]
pub fn observe(ring: &RingRef<'_>, i: usize) -> u64 {
    ring.clients.get(i).lifecycle().load(Acquire)
}

/// The broker frees entry `i`, whose word it observed as `observed` and whose holdings it has
/// reclaimed: `observed -> (FREE, generation)`. False when the entry changed since.
pub fn reap(ring: &RingRef<'_>, i: usize, observed: u64) -> bool {
    transition(
        ring.clients.get(i),
        observed,
        pack(CLIENT_FREE, generation(observed)),
    )
}

/// Records on `c`'s entry that it claimed sequence `seq` and has not committed it (`Some`), or
/// that it committed or abandoned it (`None`), for the reaper.
#[inline]
pub fn set_claim_marker(ring: &RingRef<'_>, c: Claim, seq: Option<u64>) {
    let marker = seq.map_or(0, |s| s + 1);
    ring.clients.get(c.index).claimed().store(marker, Relaxed);
}

/// Bit 63 of `ClientEntry::claimed`: the publisher took its claim to commit it, and is
/// between that and its stamp store. Still a claim (not an orphan), but no longer the
/// broker's to take while the publisher lives.
pub const CLAIM_COMMITTING: u64 = 1 << 63;

/// The publisher ends its claim of `seq` on entry `i` to commit (or abandon) it: one
/// compare-and-swap from "claimed" to "committing". True when it still owned the claim;
/// false when the broker took it first ([`take_claim`]: it was reaped, and must not publish).
/// After its stamp store the publisher clears the marker ([`committed`]).
#[inline]
pub fn end_claim(ring: &RingRef<'_>, i: usize, seq: u64) -> bool {
    // AcqRel: the one that takes the claim acquires the other's earlier writes to the entry
    // (the marker itself is stored Relaxed: the compare-and-swap only decides who commits).
    ring.clients
        .get(i)
        .claimed()
        .compare_exchange(seq + 1, CLAIM_COMMITTING | (seq + 1), AcqRel, Relaxed)
        .is_ok()
}

/// The publisher of `c` wrote the stamp of the sequence it was committing: no claim left.
#[inline]
pub fn committed(ring: &RingRef<'_>, c: Claim) {
    // Release: a broker that sees no claim (Acquire in `claim_marker`) sees the stamp.
    ring.clients.get(c.index).claimed().store(0, Release);
}

/// The broker takes the claim of `seq` on entry `i` to commit it as skipped: true when it
/// did. A claim the publisher is committing is taken only when its process is `gone` (it died
/// between its compare-and-swap and its stamp): a live one finishes its commit, so the stamp
/// of `seq` is written exactly once, and never after a later lap of the slot.
#[inline]
pub fn take_claim(ring: &RingRef<'_>, i: usize, seq: u64, gone: bool) -> bool {
    let marker = ring.clients.get(i).claimed();
    // AcqRel: as in `end_claim`.
    marker.compare_exchange(seq + 1, 0, AcqRel, Relaxed).is_ok()
        || (gone
            && marker
                .compare_exchange(CLAIM_COMMITTING | (seq + 1), 0, AcqRel, Relaxed)
                .is_ok())
}

/// The sequence entry `i` marked as claimed and not committed (committing included), if any.
#[inline]
pub fn claim_marker(ring: &RingRef<'_>, i: usize) -> Option<u64> {
    // The marker is a hint, stored Relaxed by its publisher: whoever acts on it (the reaper's
    // `skip`) first checks the slot's stamp with Acquire, which pairs with the commit's
    // Release, so a stale marker is never acted on.
    (ring.clients.get(i).claimed().load(Acquire) & !CLAIM_COMMITTING).checked_sub(1)
}

/// True when a publisher's marker says it holds sequence `seq` (committing included): an
/// active one, or a reaped one whose process lived (the broker settles those through
/// [`take_claim`], never as orphans).
///
/// On a single-producer ring the token holder's marker names the first sequence of its
/// batch (`broadcast::try_claim_block_batch`): every sequence from there up to `head` is its.
pub fn held_by_live_publisher(ring: &RingRef<'_>, seq: u64) -> bool {
    // Acquire: pairs with the AcqRel token take (the holder's entry is visible).
    let token = ring.ctl.producer_token().load(Acquire);
    let holder = ((token & 0xffff_ffff) as usize).checked_sub(1);
    (0..ring.clients.len()).any(|i| {
        let e = ring.clients.get(i);
        // Acquire: pairs with the Release activation (the role and marker are visible).
        let st = state(e.lifecycle().load(Acquire));
        (st == CLIENT_ACTIVE || st == CLIENT_REAPED)
            && e.role().load(Relaxed) == ROLE_PUBLISHER
            && match claim_marker(ring, i) {
                Some(first) if holder == Some(i) => first <= seq,
                marker => marker == Some(seq),
            }
    })
}

/// True when `lease` (see [`Claim::lease`]) names an active (or reaped) worker at that
/// generation.
pub fn lease_is_live(ring: &RingRef<'_>, lease: u64) -> bool {
    let entry = (lease & 0xffff_ffff) as usize;
    if entry == 0 || entry > ring.clients.len() {
        return false;
    }
    let e = ring.clients.get(entry - 1);
    // A reaped worker's jobs are the broker's to settle (pinned, then offered again), never
    // orphans.
    let word = e.lifecycle().load(Acquire);
    (word == pack(CLIENT_ACTIVE, (lease >> 32) as u32)
        || word == pack(CLIENT_REAPED, (lease >> 32) as u32))
        && e.role().load(Relaxed) == ROLE_WORKER
}

/// The subscriber cursor of entry `i` (without the hold bit).
#[inline]
pub fn cursor(ring: &RingRef<'_>, i: usize) -> u64 {
    ring.clients.get(i).cursor().load(Acquire) & !CURSOR_HOLD
}

/// Single-producer ring: makes `c` the one publisher. The token holds `c`'s lease
/// (generation and index), so a stale holder can never give back a token another claim of
/// the same entry took since. Returns the entry index of the current holder when another
/// publisher has it.
pub fn take_producer_token(ring: &RingRef<'_>, c: Claim) -> Result<(), usize> {
    // AcqRel: acquires the previous holder's release (its last claims of `head`), and
    // publishes ours.
    match ring
        .ctl
        .producer_token()
        .compare_exchange(0, c.lease(), AcqRel, Acquire)
    {
        Ok(_) => Ok(()),
        Err(holder) => Err(((holder & 0xffff_ffff) as usize).saturating_sub(1)),
    }
}

/// Gives the single-producer token back if `c` (index and generation) holds it: by its
/// publisher when it drops, or by the reaper for a dead one. A compare-and-swap on the whole
/// lease: nothing changes when another claim holds it now.
pub fn release_producer_token(ring: &RingRef<'_>, c: Claim) {
    // Release: pairs with the AcqRel CAS of the next holder.
    let _ = ring
        .ctl
        .producer_token()
        .compare_exchange(c.lease(), 0, Release, Relaxed);
}
