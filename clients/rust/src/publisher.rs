//! Publishing: loan a slot, write in place, commit.

use crate::bus::Ring;
use crate::layout::Layout;
use crate::registration::Registration;
use gos_bus_protocol::ring::broadcast::{self, ProducerCache};
use gos_bus_protocol::ring::entry::Pinned;
use gos_bus_protocol::ring::{entry, work_queue, Mode, Policy, RingRef};
use gos_bus_protocol::wait::{wait_until, SPACE_SLICE};
use gos_bus_protocol::{Error, Result, WaitStrategy};
use gos_layouts::segment::ROLE_PUBLISHER;
use gos_layouts::Record;
use std::marker::PhantomData;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// Publishes messages of layout `T` on one ring.
pub struct Publisher<T: Layout> {
    ring: Ring,
    entry: usize,
    reg: Registration,
    cache: ProducerCache,
    mode: Mode,
    policy: Policy,
    single: bool,
    /// The ring reuses hot buffers (`RING_HOT_BUFFERS`): each loan takes the buffer of the
    /// newest released message ([`broadcast::take_hot_buffer`]), noting in `swapped` the
    /// released slots it gave a cold buffer (empty when not hot).
    hot: bool,
    swapped: Vec<bool>,
    slot_size: usize,
    /// Payload lengths of the outstanding [`LoanBatch`] (kept to reuse its allocation).
    batch_lens: Vec<usize>,
    raw: Option<u64>,
    /// A sequence claimed but not yet writable when the last loan gave up (timeout).
    pending: Option<u64>,
    /// A claimed sequence whose slot's stamp can never let it be written (damage).
    damaged: Option<u64>,
    wait: WaitStrategy,
    _layout: PhantomData<fn(T)>,
}

impl<T: Layout> Publisher<T> {
    pub(crate) fn new(ring: Ring) -> Result<Self> {
        ring.check_layout::<T>()?;
        let reg = Registration::new(&ring, ROLE_PUBLISHER)?;
        let entry = reg.claim.index;
        let g = ring.seg.geometry();
        let (mode, policy, slot_size) = (g.mode, g.policy, g.slot_size as usize);
        let single = g.single_producer;
        let hot = g.hot_buffers;
        let slot_count = g.slot_count as usize;
        if single {
            let r = ring.seg.ring();
            if let Err(holder) = entry::take_producer_token(&r, reg.claim) {
                let pid = if holder < r.clients.len() {
                    r.clients.get(holder).pid().load(Relaxed)
                } else {
                    0
                };
                return Err(Error::ProducerBusy {
                    ring: ring.name().into(),
                    pid,
                });
            }
        }
        Ok(Publisher {
            ring,
            entry,
            reg,
            cache: ProducerCache::default(),
            mode,
            policy,
            single,
            hot,
            swapped: if hot {
                vec![false; slot_count]
            } else {
                Vec::new()
            },
            slot_size,
            batch_lens: Vec::new(),
            raw: None,
            pending: None,
            damaged: None,
            wait: WaitStrategy::default(),
            _layout: PhantomData,
        })
    }

    /// Sets how `loan` waits when the ring is full (default: spin, then block).
    pub fn set_wait_strategy(&mut self, wait: WaitStrategy) {
        self.wait = wait;
    }

    /// Largest payload of one message.
    pub fn slot_size(&self) -> usize {
        self.slot_size
    }

    /// The ring.
    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// One non-blocking attempt at a writable sequence. A sequence claimed but not writable
    /// yet (the previous lap's writer is still at it, or a laggard holds a view under
    /// overwrite-oldest) stays this publisher's (`pending`, and marked on its entry for the
    /// broker) and is tried again first next time: claims are never lost to a timeout. A
    /// sequence whose slot a reaped client pins is committed as skipped, untouched, and the
    /// next one claimed. The common case (a fresh claim, writable, nothing pinned) stays
    /// small and inline; the rest is in [`Publisher::try_claim_slow`].
    #[inline]
    fn try_claim(&mut self) -> Option<u64> {
        if self.pending.is_none() {
            let r = self.ring.seg.ring();
            let s = claim_next(
                &r,
                self.mode,
                self.policy,
                self.single,
                &mut self.cache,
                self.reg.claim,
            )?;
            let ready = match (self.mode, self.policy) {
                (Mode::WorkQueue, _) => true,
                (_, Policy::Block) => broadcast::is_writable(&r, s),
                (_, Policy::OverwriteOldest) => {
                    broadcast::make_room(&r, &mut self.cache, s) && broadcast::is_writable(&r, s)
                }
            };
            if ready && entry::pinned(&r, s) == Pinned::No {
                return Some(s);
            }
            self.pending = Some(s);
        }
        self.try_claim_slow()
    }

    /// The pending claim, once writable; pinned slots passed over.
    #[cold]
    #[inline(never)]
    fn try_claim_slow(&mut self) -> Option<u64> {
        let seg = self.ring.seg.clone();
        let r = seg.ring();
        // At most a lap of pinned slots passed over per attempt (a tiny ring can be all
        // pinned): then the caller's wait, and its deadline, take over.
        let mut passed = 0;
        loop {
            let s = match self.pending {
                Some(s) => s,
                None => {
                    let s = claim_next(
                        &r,
                        self.mode,
                        self.policy,
                        self.single,
                        &mut self.cache,
                        self.reg.claim,
                    )?;
                    self.pending = Some(s);
                    s
                }
            };
            if self.mode == Mode::Broadcast {
                if self.policy == Policy::OverwriteOldest
                    && !broadcast::make_room(&r, &mut self.cache, s)
                {
                    return None;
                }
                if !broadcast::is_writable(&r, s) {
                    // Damage only while the claim is still ours: a claim the broker took back
                    // (it reaped us) and committed shows a stamp past ours too.
                    if broadcast::never_writable(&r, s)
                        && entry::claim_marker(&r, self.reg.claim.index) == Some(s)
                    {
                        self.damaged = Some(s);
                    }
                    return None;
                }
            }
            match entry::pinned(&r, s) {
                Pinned::No => {
                    self.pending = None;
                    return Some(s);
                }
                Pinned::Pending => return None, // the broker is writing a pin: a moment
                Pinned::Yes => {
                    // A reaped client that may still touch this slot pins it: pass over it.
                    self.pending = None;
                    if self.finish(s, 0, true).is_err() || self.reg.check().is_err() {
                        return None; // reaped ourselves: the caller's check says so
                    }
                    passed += 1;
                    if passed >= self.ring.seg.geometry().slot_count {
                        return None;
                    }
                }
            }
        }
    }

    /// Loans the next slot without waiting; `None` when the ring is full (or this publisher
    /// was reaped: [`Publisher::loan_timeout`] with a zero timeout tells which).
    pub fn try_loan(&mut self) -> Option<Loan<'_, T>> {
        self.reg.check().ok()?;
        if self.raw.is_some() {
            return None;
        }
        let seq = self.try_claim()?;
        Some(self.make_loan(seq))
    }

    /// Loans the next slot, waiting for space as long as it takes.
    pub fn loan(&mut self) -> Result<Loan<'_, T>> {
        self.loan_until(None)
    }

    /// Loans the next slot, waiting for space at most `timeout`: [`Error::Timeout`] by then,
    /// whatever holds the ring up (a full ring, a paused writer of the slot's previous lap,
    /// a subscriber holding a view). Waits spin briefly, then sleep.
    pub fn loan_timeout(&mut self, timeout: Duration) -> Result<Loan<'_, T>> {
        self.loan_until(Some(Instant::now() + timeout))
            .map_err(|e| match e {
                Error::Timeout(_) => Error::Timeout(timeout),
                e => e,
            })
    }

    fn loan_until(&mut self, deadline: Option<Instant>) -> Result<Loan<'_, T>> {
        let (seq, _) = self.claim_until(1, deadline)?;
        Ok(self.make_loan(seq))
    }

    /// Claims up to `max` slots (see [`Publisher::try_claim_batch`]), waiting for the first
    /// until `deadline`.
    fn claim_until(&mut self, max: usize, deadline: Option<Instant>) -> Result<(u64, usize)> {
        if let Err(e) = self.reg.check() {
            if self.raw.is_none() {
                // Holding nothing: the pin (if any) can go now rather than at drop.
                self.lost();
            }
            return Err(e);
        }
        if self.raw.is_some() {
            return Err(Error::Misuse(
                "a raw loan of this publisher is outstanding: commit_raw or abandon_raw it first"
                    .into(),
            ));
        }
        if let Some(got) = self.try_claim_batch(max) {
            return Ok(got);
        }
        let seg = self.ring.seg.clone();
        let ctl = seg.ring().ctl;
        let wait = self.wait;
        let got = wait_until(
            ctl.space_futex(),
            ctl.space_waiters(),
            wait,
            deadline,
            || Some(SPACE_SLICE),
            || {
                // Stop waiting once reaped (the wait would be for a ring we left), or once
                // the slot shows a stamp no producer could ever clear.
                if self.reg.check().is_err() || self.damaged.is_some() {
                    return Some(None);
                }
                self.try_claim_batch(max).map(Some)
            },
        );
        match got {
            Some(Some(got)) => Ok(got),
            Some(None) => Err(self.damage().unwrap_or_else(|| self.reaped())),
            None => Err(self.damage().unwrap_or(Error::Timeout(Duration::ZERO))),
        }
    }

    /// The error for a slot that can never become writable, once seen.
    fn damage(&self) -> Option<Error> {
        let seq = self.damaged?;
        let r = self.ring.seg.ring();
        Some(Error::Corrupt {
            path: self.ring.seg.path().into(),
            problem: gos_bus_protocol::Corrupt::CursorsOutOfRange {
                what: format!(
                    "slot {} has stamp {}, which can never let sequence {seq} be written (the broker reports the ring damaged; `gos-bus clean` and a restart rebuild it)",
                    r.index(seq),
                    r.slot(seq).stamp().load(Relaxed)
                ),
            },
        })
    }

    fn reaped(&self) -> Error {
        self.reg
            .reaped("it took this loan back: this process stalled past the liveness timeout")
    }

    fn make_loan(&mut self, seq: u64) -> Loan<'_, T> {
        let ptr = self.begin(seq);
        let len = T::LAYOUT.size as usize;
        Loan {
            publisher: self,
            seq,
            ptr,
            len,
            done: false,
        }
    }

    /// The payload pointer of claimed sequence `seq`.
    fn begin(&mut self, seq: u64) -> *mut u8 {
        if self.hot {
            broadcast::take_hot_buffer(&self.ring.seg.ring(), seq, &mut self.swapped);
        }
        let ptr = self.ring.seg.payload_ptr(seq);
        // The next loan will most likely get the next slot: start taking its lines now.
        self.ring.seg.prefetch_for_write(seq + 4);
        ptr
    }

    /// Loans a slot for a caller that cannot hold a [`Loan`] across calls (a foreign-function
    /// interface): the payload pointer stays valid, for `slot_size` bytes, until
    /// [`Publisher::commit_raw`] or [`Publisher::abandon_raw`]. One raw loan at a time, and no
    /// other loan while it is outstanding. `None` waits as long as it takes.
    pub fn loan_raw(&mut self, timeout: Option<Duration>) -> Result<RawLoan> {
        let (seq, _) = self
            .claim_until(1, timeout.map(|t| Instant::now() + t))
            .map_err(|e| match (e, timeout) {
                (Error::Timeout(_), Some(t)) => Error::Timeout(t),
                (e, _) => e,
            })?;
        let ptr = self.begin(seq);
        self.raw = Some(seq);
        Ok(RawLoan {
            seq,
            ptr,
            capacity: self.slot_size,
        })
    }

    /// Publishes the outstanding raw loan with `len` payload bytes. A refused length
    /// ([`Error::PayloadTooLarge`]) leaves the loan outstanding: commit again or abandon it.
    /// [`Error::Reaped`] when the broker took the loan back (this publisher stalled past the
    /// liveness timeout): nothing was published and no loan is left.
    pub fn commit_raw(&mut self, len: usize) -> Result<()> {
        self.check_len(len)?;
        let seq = self
            .raw
            .take()
            .ok_or_else(|| Error::Misuse("commit_raw without an outstanding raw loan".into()))?;
        self.finish(seq, len, false)
    }

    /// Gives the outstanding raw loan back unpublished (consumers skip its slot). Nothing
    /// when none is outstanding; [`Error::Reaped`] when the broker had taken it back already.
    pub fn abandon_raw(&mut self) -> Result<()> {
        match self.raw.take() {
            Some(seq) => self.finish(seq, 0, true),
            None => Ok(()),
        }
    }

    /// True when this publisher can claim several slots with one store of `head`: a
    /// single-producer ring under the block policy, with no claim left over from a timeout.
    fn batchable(&self) -> bool {
        self.single
            && self.mode == Mode::Broadcast
            && self.policy == Policy::Block
            && self.pending.is_none()
    }

    /// One non-blocking attempt at a batch of up to `max` slots: several on a batchable ring,
    /// else (or when the next slot is pinned) one, as [`Publisher::try_loan`] claims it.
    fn try_claim_batch(&mut self, max: usize) -> Option<(u64, usize)> {
        if max > 1 && self.batchable() {
            let r = self.ring.seg.ring();
            if let Some((first, n)) =
                broadcast::try_claim_block_batch(&r, &mut self.cache, max as u64)
            {
                entry::set_claim_marker(&r, self.reg.claim, Some(first));
                return Some((first, n as usize));
            }
        }
        self.try_claim().map(|s| (s, 1))
    }

    /// Loans up to `max` consecutive slots at once (at least one), waiting for space as
    /// long as it takes: a batch, written in place and published by one
    /// [`LoanBatch::commit`], the way the LMAX Disruptor batches. On a single-producer ring
    /// under the block policy the whole batch is one claim (one store of `head`) and one
    /// wake-up; elsewhere a batch holds one slot. It holds as many slots as are free now, so
    /// it never waits for a full `max`.
    pub fn loan_batch(&mut self, max: usize) -> Result<LoanBatch<'_, T>> {
        self.loan_batch_until(max, None)
    }

    fn loan_batch_until(
        &mut self,
        max: usize,
        deadline: Option<Instant>,
    ) -> Result<LoanBatch<'_, T>> {
        if max == 0 {
            return Err(Error::Misuse("a batch of zero slots".into()));
        }
        let (first, count) = self.claim_until(max, deadline)?;
        for i in 0..count as u64 {
            self.begin(first + i);
        }
        self.batch_lens.clear();
        self.batch_lens.resize(count, T::LAYOUT.size as usize);
        Ok(LoanBatch {
            publisher: self,
            first,
            count,
            done: false,
        })
    }

    /// Copies each of `messages` into the ring and publishes them, in batches
    /// ([`Publisher::loan_batch`]), waiting for space at most `timeout` in all (as long as
    /// it takes when `None`). Returns how many were published: all of them, or fewer
    /// when the timeout ran out first. A message over the slot size is refused before
    /// anything is loaned.
    pub fn send_many<B: AsRef<[u8]>>(
        &mut self,
        messages: &[B],
        timeout: Option<Duration>,
    ) -> Result<usize> {
        for m in messages {
            self.check_len(m.as_ref().len())?;
        }
        let mut sent = 0;
        // One deadline for the whole list.
        let deadline = timeout.map(|t| Instant::now() + t);
        while sent < messages.len() {
            let mut batch = match self.loan_batch_until(messages.len() - sent, deadline) {
                Ok(b) => b,
                Err(Error::Timeout(_)) => return Ok(sent),
                Err(e) => return Err(e),
            };
            for i in 0..batch.len() {
                let m = messages[sent + i].as_ref();
                batch.set_len(i, m.len())?;
                batch.bytes_mut(i).copy_from_slice(m);
            }
            let n = batch.len();
            batch.commit()?;
            sent += n;
        }
        Ok(sent)
    }

    /// Commits the batch of `count` sequences from `first` (lengths in `batch_lens`, or all
    /// skipped), if this publisher still owns it: the claim marker, which names `first`,
    /// decides for the whole batch, as [`Publisher::finish`] does for one sequence.
    fn finish_batch(&self, first: u64, count: usize, skipped: bool) -> Result<()> {
        let r = self.ring.seg.ring();
        if !entry::end_claim(&r, self.reg.claim.index, first) {
            return Err(self.lost());
        }
        let lens = &self.batch_lens;
        broadcast::commit_batch(&r, first, count as u64, |i| {
            (!skipped).then(|| lens[i as usize] as u32)
        });
        entry::committed(&r, self.reg.claim);
        if !entry::is_current(&r, self.reg.claim) {
            self.lost();
            return Ok(());
        }
        if !skipped {
            let e = r.clients.get(self.entry);
            e.count()
                .store(e.count().load(Relaxed) + count as u64, Relaxed);
            let bytes: usize = lens[..count].iter().sum();
            e.bytes()
                .store(e.bytes().load(Relaxed) + bytes as u64, Relaxed);
        }
        Ok(())
    }

    /// [`Error::PayloadTooLarge`] when `len` payload bytes do not fit a slot.
    fn check_len(&self, len: usize) -> Result<()> {
        if len > self.slot_size {
            return Err(Error::PayloadTooLarge {
                ring: self.ring.name().into(),
                len,
                slot_size: self.slot_size as u32,
            });
        }
        Ok(())
    }

    /// Copies `bytes` into a loaned slot and commits it (a convenience over `loan`). A
    /// payload over the slot size is refused before anything is loaned.
    pub fn send_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.check_len(bytes.len())?;
        let mut loan = self.loan()?;
        loan.set_len(bytes.len())?;
        loan.bytes_mut().copy_from_slice(bytes);
        loan.commit()
    }

    /// Adds to this publisher's counters, shown by `gos-bus monitor`: messages it failed to
    /// produce, CPU time and GPU time spent producing (the render node reports its frames
    /// this way on `render.output`).
    pub fn report(&self, failed: u64, work: Duration, gpu: Duration) {
        self.reg.report(failed, work, gpu);
    }

    /// Messages committed by this publisher.
    pub fn published(&self) -> u64 {
        let r = self.ring.seg.ring();
        r.clients.get(self.entry).count().load(Relaxed)
    }

    /// Commits claimed sequence `seq` (or skips it), if this publisher still owns it: the
    /// claim marker decides ([`entry::end_claim`]). When the broker took it first (this
    /// publisher was reaped while it held the loan), nothing is written, the pin the broker
    /// put on the slot is released (we are done with it), and [`Error::Reaped`] says so.
    #[inline]
    fn finish(&self, seq: u64, len: usize, skipped: bool) -> Result<()> {
        let r = self.ring.seg.ring();
        // Owned, the entry is ours (active, or reaped with our generation): a claim on an
        // entry someone else took since reads another marker.
        if !entry::end_claim(&r, self.reg.claim.index, seq) {
            return Err(self.lost());
        }
        match self.mode {
            Mode::WorkQueue => work_queue::commit(&r, seq, len as u32, skipped, 0),
            Mode::Broadcast => broadcast::commit(&r, seq, len as u32, skipped),
        }
        entry::committed(&r, self.reg.claim);
        if !entry::is_current(&r, self.reg.claim) {
            // Reaped around the commit (the broker skipped nothing of ours): the message is
            // out, but this publisher is not.
            self.lost();
            return Ok(());
        }
        let e = r.clients.get(self.entry);
        if !skipped {
            // Only this publisher writes its counters: no locked instruction needed.
            e.count().store(e.count().load(Relaxed) + 1, Relaxed);
            e.bytes()
                .store(e.bytes().load(Relaxed) + len as u64, Relaxed);
        }
        Ok(())
    }

    /// This publisher was reaped and is done with the slot it held: the single-producer
    /// token and the entry (with its pin) go back. Returns the error that says so.
    #[cold]
    fn lost(&self) -> Error {
        let r = self.ring.seg.ring();
        if entry::is_reaped(&r, self.reg.claim) {
            if self.single {
                entry::release_producer_token(&r, self.reg.claim);
            }
            entry::give_up(&r, self.reg.claim);
        }
        self.reaped()
    }
}

impl<T: Layout> Drop for Publisher<T> {
    fn drop(&mut self) {
        if !self.reg.owned_here() {
            // Inherited through fork: the loan, view and entry are the parent's.
            return;
        }
        let _ = self.abandon_raw();
        if let Some(seq) = self.pending.take() {
            // Claimed, never loaned (a timeout): pass it over when it becomes writable, or
            // leave it to the broker, which skips orphaned claims.
            let r = self.ring.seg.ring();
            let room = self.policy != Policy::OverwriteOldest
                || broadcast::make_room(&r, &mut self.cache, seq);
            if self.mode == Mode::WorkQueue || (room && broadcast::is_writable(&r, seq)) {
                let _ = self.finish(seq, 0, true);
            }
        }
        if self.single {
            entry::release_producer_token(&self.ring.seg.ring(), self.reg.claim);
        }
        // `reg` frees the client entry when it drops, after this.
    }
}

/// Claims the next sequence and marks it on the publisher's entry (`claim`): which sequence
/// it holds, for the broker if the process dies or stalls before committing. (Kept in the
/// publisher's own entry: a store into the slot's first line here, while a caught-up consumer
/// polls that line, measurably slows publishing.)
#[inline]
fn claim_next(
    r: &RingRef<'_>,
    mode: Mode,
    policy: Policy,
    single: bool,
    cache: &mut ProducerCache,
    claim: entry::Claim,
) -> Option<u64> {
    let s = match (mode, policy) {
        (Mode::WorkQueue, _) => work_queue::try_claim(r, single)?,
        (Mode::Broadcast, Policy::Block) => broadcast::try_claim_block(r, cache, single)?,
        (Mode::Broadcast, Policy::OverwriteOldest) => broadcast::claim_overwrite(r, single),
    };
    entry::set_claim_marker(r, claim, Some(s));
    Some(s)
}

/// Consecutive slots loaned with [`Publisher::loan_batch`]. Write each message in place,
/// then [`commit`](LoanBatch::commit) them all. Dropping the batch without committing
/// publishes every slot as skipped.
pub struct LoanBatch<'p, T: Layout> {
    publisher: &'p mut Publisher<T>,
    first: u64,
    count: usize,
    done: bool,
}

impl<T: Layout> LoanBatch<'_, T> {
    /// Number of slots in the batch (1 to the `max` asked for).
    pub fn len(&self) -> usize {
        self.count
    }

    /// Always false: a batch holds at least one slot.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Sequence number of the first message.
    pub fn first_seq(&self) -> u64 {
        self.first
    }

    fn index(&self, i: usize) -> u64 {
        assert!(i < self.count, "slot {i} of a batch of {}", self.count);
        self.first + i as u64
    }

    /// Sets the payload length of the `i`-th message (at most the slot size). Panics when
    /// `i` is not below [`LoanBatch::len`].
    pub fn set_len(&mut self, i: usize, len: usize) -> Result<()> {
        self.index(i);
        self.publisher.check_len(len)?;
        self.publisher.batch_lens[i] = len;
        Ok(())
    }

    /// The whole payload of the `i`-th slot (`slot_size` bytes), writable in place. Panics
    /// when `i` is not below [`LoanBatch::len`].
    pub fn slot_mut(&mut self, i: usize) -> &mut [u8] {
        let seq = self.index(i);
        let n = self.publisher.slot_size();
        let ptr = self.publisher.ring.seg.payload_ptr(seq);
        // SAFETY: as in `Loan::slot_mut`: the batch's sequences are claimed by this publisher
        // (one claim, its marker on the first), so no producer writes them and no consumer
        // reads them before the commit; `&mut self` keeps one view per call.
        unsafe { std::slice::from_raw_parts_mut(ptr, n) }
    }

    /// The `i`-th payload up to its length, writable in place.
    pub fn bytes_mut(&mut self, i: usize) -> &mut [u8] {
        self.index(i);
        let n = self.publisher.batch_lens[i];
        &mut self.slot_mut(i)[..n]
    }

    /// Publishes every message of the batch, with one wake-up. [`Error::Reaped`] when the
    /// broker took the batch back (this publisher stalled past the liveness timeout): then
    /// none of it was published.
    pub fn commit(mut self) -> Result<()> {
        self.done = true;
        let (first, count) = (self.first, self.count);
        if count == 1 {
            let len = self.publisher.batch_lens[0];
            return self.publisher.finish(first, len, false);
        }
        self.publisher.finish_batch(first, count, false)
    }
}

impl<T: Layout> Drop for LoanBatch<'_, T> {
    fn drop(&mut self) {
        if !self.done {
            let _ = if self.count == 1 {
                self.publisher.finish(self.first, 0, true)
            } else {
                self.publisher.finish_batch(self.first, self.count, true)
            };
        }
    }
}

/// A slot loaned with [`Publisher::loan_raw`].
#[derive(Debug, Clone, Copy)]
pub struct RawLoan {
    /// Sequence number.
    pub seq: u64,
    /// The payload, `capacity` writable bytes in shared memory.
    pub ptr: *mut u8,
    /// Slot size.
    pub capacity: usize,
}

/// A loaned slot. Write the payload in place, then [`commit`](Loan::commit). Dropping a loan
/// without committing publishes an empty "skipped" slot that consumers pass over.
pub struct Loan<'p, T: Layout> {
    publisher: &'p mut Publisher<T>,
    seq: u64,
    ptr: *mut u8,
    len: usize,
    done: bool,
}

impl<T: Layout> Loan<'_, T> {
    /// Sequence number of this message.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Sets the payload length to commit (at most the slot size).
    pub fn set_len(&mut self, len: usize) -> Result<()> {
        self.publisher.check_len(len)?;
        self.len = len;
        Ok(())
    }

    /// The payload length that `commit` will publish.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the payload length is zero.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The whole slot payload (`slot_size` bytes), writable in place.
    pub fn slot_mut(&mut self) -> &mut [u8] {
        let n = self.publisher.slot_size();
        // SAFETY: the payload of a claimed slot is `slot_size` bytes inside the mapping. The
        // ring protocol gives this loan exclusive use of it until commit: no other producer
        // claims the sequence, and no consumer reads it before the commit's stamp. If the
        // broker reaps this publisher meanwhile, it pins the slot (`entry::reap_pinned`), so
        // no later message is written there while this loan lives either.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, n) }
    }

    /// The payload bytes up to the current length, writable in place.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        let n = self.len;
        &mut self.slot_mut()[..n]
    }

    /// Publishes the message. [`Error::Reaped`] when the broker took the loan back while
    /// this publisher was stalled past the liveness timeout: then nothing was published (the
    /// broker had committed the sequence as skipped) and the publisher must attach again.
    pub fn commit(mut self) -> Result<()> {
        self.done = true;
        self.publisher.finish(self.seq, self.len, false)
    }
}

impl<T: Record> Loan<'_, T> {
    /// The record at the start of the payload, writable in place.
    pub fn header_mut(&mut self) -> &mut T {
        let size = std::mem::size_of::<T>();
        bytemuck::from_bytes_mut(&mut self.slot_mut()[..size])
    }

    /// The bytes after the record (pixels, code, output), writable in place.
    pub fn tail_mut(&mut self) -> &mut [u8] {
        let size = std::mem::size_of::<T>();
        &mut self.slot_mut()[size..]
    }

    /// Sets the length to the record plus `tail` bytes after it.
    pub fn set_tail_len(&mut self, tail: usize) -> Result<()> {
        self.set_len(std::mem::size_of::<T>() + tail)
    }
}

impl<T: Layout> Drop for Loan<'_, T> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.publisher.finish(self.seq, 0, true);
        }
    }
}
