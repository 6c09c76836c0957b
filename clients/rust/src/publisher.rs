//! Publishing: loan a slot, write in place, commit.

use crate::bus::Ring;
use crate::layout::Layout;
use crate::registration::Registration;
use gos_bus_protocol::ring::broadcast::{self, ProducerCache};
use gos_bus_protocol::ring::{entry, work_queue, Mode, Policy};
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
    slot_size: usize,
    raw: Option<u64>,
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
            slot_size,
            raw: None,
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

    fn try_claim(&mut self) -> Option<u64> {
        let r = self.ring.seg.ring();
        match (self.mode, self.policy) {
            (Mode::WorkQueue, _) => work_queue::try_claim(&r, self.single),
            (Mode::Broadcast, Policy::Block) => {
                let s = broadcast::try_claim_block(&r, &mut self.cache, self.single)?;
                broadcast::wait_writable(&r, s);
                Some(s)
            }
            (Mode::Broadcast, Policy::OverwriteOldest) => {
                let s = broadcast::claim_overwrite(&r, &mut self.cache, self.single);
                broadcast::wait_writable(&r, s);
                Some(s)
            }
        }
    }

    /// Loans the next slot without waiting; `None` when the ring is full.
    pub fn try_loan(&mut self) -> Option<Loan<'_, T>> {
        self.reg.check().ok()?;
        let seq = self.try_claim()?;
        Some(self.make_loan(seq))
    }

    /// Loans the next slot, waiting for space as long as it takes.
    pub fn loan(&mut self) -> Result<Loan<'_, T>> {
        self.loan_until(None)
    }

    /// Loans the next slot, waiting for space at most `timeout`.
    pub fn loan_timeout(&mut self, timeout: Duration) -> Result<Loan<'_, T>> {
        self.loan_until(Some(Instant::now() + timeout))
            .map_err(|e| match e {
                Error::Timeout(_) => Error::Timeout(timeout),
                e => e,
            })
    }

    fn loan_until(&mut self, deadline: Option<Instant>) -> Result<Loan<'_, T>> {
        let seq = self.claim_until(deadline)?;
        Ok(self.make_loan(seq))
    }

    fn claim_until(&mut self, deadline: Option<Instant>) -> Result<u64> {
        self.reg.check()?;
        if self.raw.is_some() {
            return Err(Error::InvalidConfig(
                "a raw loan of this publisher is outstanding: commit_raw or abandon_raw it first"
                    .into(),
            ));
        }
        if let Some(seq) = self.try_claim() {
            return Ok(seq);
        }
        let seg = self.ring.seg.clone();
        let ctl = seg.ring().ctl;
        let wait = self.wait;
        let seq = wait_until(
            ctl.space_futex(),
            ctl.space_waiters(),
            wait,
            deadline,
            || Some(SPACE_SLICE),
            || self.try_claim(),
        )
        .ok_or(Error::Timeout(Duration::ZERO))?;
        Ok(seq)
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

    /// Records the claim of `seq` and returns its payload pointer.
    fn begin(&mut self, seq: u64) -> *mut u8 {
        let r = self.ring.seg.ring();
        // Which sequence this publisher holds, for the broker if the process dies before
        // committing. (Kept in the publisher's own entry: a store into the slot's first line
        // here, while a caught-up consumer polls that line, measurably slows publishing.)
        entry::set_claim_marker(&r, self.reg.claim, Some(seq));
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
        let seq = self
            .claim_until(timeout.map(|t| Instant::now() + t))
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

    /// Publishes the outstanding raw loan with `len` payload bytes.
    pub fn commit_raw(&mut self, len: usize) -> Result<()> {
        if len > self.slot_size {
            return Err(Error::PayloadTooLarge {
                ring: self.ring.name().into(),
                len,
                slot_size: self.slot_size as u32,
            });
        }
        let seq = self.raw.take().ok_or_else(|| {
            Error::InvalidConfig("commit_raw without an outstanding raw loan".into())
        })?;
        self.finish(seq, len, false);
        Ok(())
    }

    /// Gives the outstanding raw loan back unpublished (consumers skip its slot).
    pub fn abandon_raw(&mut self) {
        if let Some(seq) = self.raw.take() {
            self.finish(seq, 0, true);
        }
    }

    /// Copies `bytes` into a loaned slot and commits it (a convenience over `loan`).
    pub fn send_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        let mut loan = self.loan()?;
        loan.set_len(bytes.len())?;
        loan.bytes_mut().copy_from_slice(bytes);
        loan.commit();
        Ok(())
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

    fn finish(&mut self, seq: u64, len: usize, skipped: bool) {
        if self.reg.check().is_err() {
            // Reaped during the loan (stopped longer than the liveness timeout): the broker
            // committed this sequence as skipped already; committing again could publish over
            // a later message in the slot.
            return;
        }
        let r = self.ring.seg.ring();
        match self.mode {
            Mode::WorkQueue => work_queue::commit(&r, seq, len as u32, skipped, 0),
            Mode::Broadcast => broadcast::commit(&r, seq, len as u32, skipped),
        }
        entry::set_claim_marker(&r, self.reg.claim, None);
        let e = r.clients.get(self.entry);
        if !skipped {
            // Only this publisher writes its counters: no locked instruction needed.
            e.count().store(e.count().load(Relaxed) + 1, Relaxed);
            e.bytes()
                .store(e.bytes().load(Relaxed) + len as u64, Relaxed);
        }
    }
}

impl<T: Layout> Drop for Publisher<T> {
    fn drop(&mut self) {
        self.abandon_raw();
        if self.single {
            entry::release_producer_token(&self.ring.seg.ring(), self.entry);
        }
        // `reg` frees the client entry when it drops, after this.
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
        let max = self.publisher.slot_size();
        if len > max {
            return Err(Error::PayloadTooLarge {
                ring: self.publisher.ring.name().into(),
                len,
                slot_size: max as u32,
            });
        }
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
        // SAFETY: the payload of a claimed slot is `slot_size` bytes inside the mapping, and the
        // ring protocol gives this loan exclusive use of it until commit.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, n) }
    }

    /// The payload bytes up to the current length, writable in place.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        let n = self.len;
        &mut self.slot_mut()[..n]
    }

    /// Publishes the message.
    pub fn commit(mut self) {
        self.done = true;
        self.publisher.finish(self.seq, self.len, false);
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
            self.publisher.finish(self.seq, 0, true);
        }
    }
}
