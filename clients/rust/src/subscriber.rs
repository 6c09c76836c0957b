//! Receiving: a view of a slot in shared memory, released when dropped; or a batch of them,
//! released together.

use crate::bus::Ring;
use crate::layout::Layout;
use crate::registration::Registration;
use gos_bus_protocol::ring::broadcast::{self, Read};
use gos_bus_protocol::ring::work_queue::{self, Take};
use gos_bus_protocol::ring::{entry, Mode, Policy, RingRef};
use gos_bus_protocol::wait::{consumer_slice, wait_until};
use gos_bus_protocol::{Corrupt, Error, Result, WaitStrategy};
use gos_layouts::segment::{CLIENT_SLEEPY, ROLE_SUBSCRIBER, ROLE_WORKER, SLOT_SKIPPED};
use gos_layouts::Record;
use std::cell::Cell;
use std::marker::PhantomData;
use std::sync::atomic::Ordering::{AcqRel, Relaxed, SeqCst};
use std::time::{Duration, Instant};

/// Receives messages of layout `T` from one ring: every message on a broadcast ring, or its
/// share of the jobs on a work queue. Hold one message (or one [`Batch`]) at a time; drop it
/// to release it.
pub struct Subscriber<T: Layout> {
    ring: Ring,
    entry: usize,
    reg: Registration,
    lease: u64,
    mode: Mode,
    policy: Policy,
    holding: Cell<bool>,
    wait: Cell<WaitStrategy>,
    /// When this subscriber registered in `sleepy_consumers` (None while busy-polling).
    sleepy_since: Cell<Option<Instant>>,
    /// The message held by `recv_raw`: (seq, len).
    raw: Cell<Option<(u64, usize)>>,
    /// The list a [`Batch`] fills, kept between batches so that receiving allocates once.
    batch: Cell<Vec<Item>>,
    _layout: PhantomData<fn() -> T>,
}

/// One message of a batch: its sequence and its checked payload in shared memory.
#[derive(Clone, Copy)]
struct Item {
    seq: u64,
    ptr: *const u8,
    len: usize,
}

// SAFETY: `ptr` points into the ring's mapping, which the subscriber's `Ring` (an `Arc` of a
// `Send + Sync` segment) keeps mapped wherever it goes; an `Item` is only a record of that
// address, dereferenced by the subscriber that holds the slot, on whatever thread owns it.
unsafe impl Send for Item {}

enum Got {
    Message(u64),
    Skipped,
    Empty,
}

impl<T: Layout> Subscriber<T> {
    pub(crate) fn new(ring: Ring) -> Result<Self> {
        ring.check_layout::<T>()?;
        let role = match ring.seg.geometry().mode {
            Mode::Broadcast => ROLE_SUBSCRIBER,
            Mode::WorkQueue => ROLE_WORKER,
        };
        let reg = Registration::new(&ring, role)?;
        let entry = reg.claim.index;
        let lease = reg.claim.lease();
        let (mode, policy) = (ring.seg.geometry().mode, ring.seg.geometry().policy);
        Ok(Subscriber {
            ring,
            entry,
            reg,
            lease,
            mode,
            policy,
            holding: Cell::new(false),
            wait: Cell::new(WaitStrategy::BusyPoll),
            sleepy_since: Cell::new(None),
            raw: Cell::new(None),
            batch: Cell::new(Vec::new()),
            _layout: PhantomData,
        })
        .inspect(|s| s.set_wait_strategy(WaitStrategy::default()))
    }

    /// Sets how `recv` waits (default: spin briefly, then sleep on the futex). A subscriber
    /// that may sleep makes producers check for sleepers on every commit (a memory fence);
    /// one that busy-polls spares them that.
    pub fn set_wait_strategy(&self, wait: WaitStrategy) {
        let r = self.ring.seg.ring();
        let (ctl, entry) = (r.ctl, r.clients.get(self.entry));
        let sleepy = wait != WaitStrategy::BusyPoll;
        match (sleepy, self.sleepy_since.get()) {
            (true, None) => {
                ctl.sleepy_consumers().fetch_add(1, SeqCst);
                entry.flags().store(CLIENT_SLEEPY, Relaxed);
                self.sleepy_since.set(Some(Instant::now()));
            }
            (false, Some(_)) => {
                // The broker may have reaped us and taken our count back already.
                // Whoever clears the flag (we, or the broker reaping us) takes the count back:
                // one swap decides.
                if self.reg.check().is_ok() && entry.flags().swap(0, AcqRel) & CLIENT_SLEEPY != 0 {
                    ctl.sleepy_consumers().fetch_sub(1, SeqCst);
                }
                self.sleepy_since.set(None);
            }
            _ => {}
        }
        self.wait.set(wait);
    }

    /// The ring.
    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// Messages this subscriber lost because producers overwrote them (overwrite-oldest).
    pub fn dropped(&self) -> u64 {
        self.ring
            .seg
            .ring()
            .clients
            .get(self.entry)
            .drops()
            .load(Relaxed)
    }

    /// Adds to the counters a handler reports (shown by `gos-bus monitor`): messages whose
    /// handling failed, and time spent handling messages.
    pub fn report(&self, failed: u64, work: Duration) {
        self.reg.report(failed, work, Duration::ZERO);
    }

    /// Messages received so far.
    pub fn received(&self) -> u64 {
        self.ring
            .seg
            .ring()
            .clients
            .get(self.entry)
            .count()
            .load(Relaxed)
    }

    fn attempt(&self) -> Got {
        let r = self.ring.seg.ring();
        match (self.mode, self.policy) {
            (Mode::WorkQueue, _) => match work_queue::try_take(&r, self.lease) {
                Take::Message(t) => Got::Message(t),
                Take::Skipped(_) => Got::Skipped,
                Take::Empty => Got::Empty,
            },
            (Mode::Broadcast, policy) => {
                let read = if policy == Policy::Block {
                    let c = entry::cursor(&r, self.entry);
                    broadcast::try_read_block(&r, self.entry, c)
                } else {
                    broadcast::try_read_overwrite(&r, self.entry)
                };
                match read {
                    Read::Message(c) => Got::Message(c),
                    Read::Skipped(_) => Got::Skipped,
                    Read::Empty => Got::Empty,
                }
            }
        }
    }

    fn poll(&self) -> Option<u64> {
        loop {
            match self.attempt() {
                Got::Message(s) => return Some(s),
                Got::Skipped => continue,
                Got::Empty => return None,
            }
        }
    }

    /// [`Subscriber::poll`] that first makes sure this subscriber was not reaped while it
    /// waited (a paused process resumes here): then it stops, reading nothing more, and gives
    /// its entry up (it holds no message while it waits), which frees the slot the broker
    /// pinned for it.
    #[inline]
    fn poll_live(&self) -> Option<Result<u64>> {
        loop {
            // Before every attempt, skipped slots included: a reaped subscriber reads no slot
            // past those the broker pinned from its cursor.
            if let Err(e) = self.reg.check() {
                entry::give_up(&self.ring.seg.ring(), self.reg.claim);
                return Some(Err(e));
            }
            match self.attempt() {
                Got::Message(s) => return Some(Ok(s)),
                Got::Skipped => continue,
                Got::Empty => return None,
            }
        }
    }

    fn check_free(&self) -> Result<()> {
        if let Err(e) = self.reg.check() {
            if !self.holding.get() {
                entry::give_up(&self.ring.seg.ring(), self.reg.claim);
            }
            return Err(e);
        }
        if self.holding.get() {
            return Err(Error::Misuse(
                "a message from this subscriber is still held: drop it before receiving the next"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Returns the next message if one is ready, without waiting.
    pub fn try_recv(&self) -> Result<Option<Message<'_, T>>> {
        self.check_free()?;
        match self.poll() {
            Some(seq) => self.view(seq).map(Some),
            None => Ok(None),
        }
    }

    /// Waits for the next message as long as it takes.
    pub fn recv(&self) -> Result<Message<'_, T>> {
        self.recv_within(None)
    }

    /// Waits for the next message at most `timeout`; [`Error::Timeout`] when none came.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Message<'_, T>> {
        self.recv_within(Some(timeout))
    }

    fn recv_within(&self, timeout: Option<Duration>) -> Result<Message<'_, T>> {
        self.check_free()?;
        let seq = self.wait_for_message(timeout)?;
        self.view(seq)
    }

    /// Waits (as the wait strategy says) for the next message, at most `timeout` (`None`: as
    /// long as it takes); [`Error::Timeout`] when none came.
    fn wait_for_message(&self, timeout: Option<Duration>) -> Result<u64> {
        let ctl = self.ring.seg.ring().ctl;
        let since = self.sleepy_since.get();
        wait_until(
            ctl.data_futex(),
            ctl.data_waiters(),
            self.wait.get(),
            timeout.map(|t| Instant::now() + t),
            || since.map(consumer_slice),
            || self.poll_live(),
        )
        .ok_or(Error::Timeout(timeout.unwrap_or_default()))?
    }

    /// Waits for the next message at most `timeout` (`None`: as long as it takes), then takes
    /// every message already waiting after it, up to `max` in all, as one [`Batch`] that is
    /// released with one cursor store when dropped (the Disruptor's batching, on
    /// block-policy broadcast rings). The batch is also capped at a quarter of the ring
    /// (`entry::max_read_batch`, at most 126), so that a subscriber the broker reaps mid-batch
    /// pins only part of the ring. On overwrite-oldest rings and work queues a batch holds one
    /// message. [`Error::Timeout`] when nothing came; [`Error::Misuse`] when `max` is 0 or a
    /// message is still held.
    pub fn recv_batch(&self, max: usize, timeout: Option<Duration>) -> Result<Batch<'_, T>> {
        if max == 0 {
            return Err(Error::Misuse(
                "a batch holds at least one message: ask for max 1 or more".into(),
            ));
        }
        self.check_free()?;
        let first = self.wait_for_message(timeout)?;
        let mut items = self.batch.take();
        items.clear();
        let r = self.ring.seg.ring();
        if (self.mode, self.policy) != (Mode::Broadcast, Policy::Block) {
            let (ptr, len) = self.checked(first)?;
            items.push(Item {
                seq: first,
                ptr,
                len,
            });
            return Ok(Batch {
                sub: self,
                end: None,
                items,
            });
        }
        // Every committed message from the cursor on, checked before a byte of a payload is
        // read; the batch ends before the first one that fails (a later receive reports it).
        let run =
            broadcast::committed_run(&r, first, entry::max_read_batch(r.capacity).min(max as u64));
        let mut end = first + run.max(1);
        for seq in first..end {
            if r.slot(seq).flags().load(Relaxed) & SLOT_SKIPPED != 0 {
                continue;
            }
            match self.validate(seq) {
                Ok((ptr, len)) => items.push(Item { seq, ptr, len }),
                Err(e) if seq == first => {
                    self.batch.set(items);
                    self.holding.set(true);
                    let _ = self.release(seq, 0);
                    return Err(e);
                }
                Err(_) => {
                    end = seq;
                    break;
                }
            }
        }
        // One message needs no announcement: the broker's default pin (the cursor's slot and
        // the next) covers it, as it covers `recv`.
        if end > first + 1 && !entry::announce_batch(&r, self.reg.claim, end) {
            // Reaped before the batch was announced: read nothing (the broker pinned only
            // the cursor's slots), and give the entry up.
            // (The error first: once given up, the entry no longer says it was reaped.)
            self.batch.set(items);
            let e = self.reg.reaped("reaped while receiving a batch");
            entry::give_up(&r, self.reg.claim);
            return Err(e);
        }
        self.holding.set(true);
        Ok(Batch {
            sub: self,
            end: Some(end),
            items,
        })
    }

    /// An iterator that waits for each message in turn (see [`Subscriber::recv`]).
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { sub: self }
    }

    fn view(&self, seq: u64) -> Result<Message<'_, T>> {
        let (ptr, len) = self.checked(seq)?;
        Ok(Message {
            sub: self,
            // SAFETY: `checked` bounded `len` by the slot size, so the bytes lie in the
            // mapping; the slot is ours (held cursor or work-queue lease) until the message is
            // dropped, so no producer writes it. If the broker reaps this subscriber meanwhile
            // (stalled past the liveness timeout), it pins the slot (`entry::reap_pinned`)
            // until the release gives the entry up.
            view: unsafe { View::new(seq, ptr, len) },
        })
    }

    /// [`Subscriber::validate`]; the slot is held from here, and on error released again.
    fn checked(&self, seq: u64) -> Result<(*const u8, usize)> {
        self.holding.set(true);
        self.validate(seq).inspect_err(|_| {
            let _ = self.release(seq, 0);
        })
    }

    /// Validates what a peer wrote in the slot header of `seq` (no payload byte is read)
    /// before a view of it is handed out: its payload and length.
    fn validate(&self, seq: u64) -> Result<(*const u8, usize)> {
        let seg = &self.ring.seg;
        let r = seg.ring();
        let slot = r.slot(seq);
        let len = slot.len().load(Relaxed);
        let slot_size = seg.geometry().slot_size;
        let min = T::LAYOUT.size;
        if len > slot_size {
            return Err(Error::Corrupt {
                path: seg.path().into(),
                problem: Corrupt::PayloadTooLarge {
                    seq,
                    len,
                    slot_size,
                },
            });
        }
        if len < min {
            return Err(Error::Corrupt {
                path: seg.path().into(),
                problem: Corrupt::BadField {
                    field: "len",
                    value: len as u64,
                    why: "shorter than the record the ring carries",
                },
            });
        }
        Ok((seg.payload_ptr(seq), len as usize))
    }

    /// Receives for a caller that cannot hold a [`Message`] across calls (a foreign-function
    /// interface): the view stays valid until [`Subscriber::release_raw`]. `None` waits as long
    /// as it takes; [`Error::Timeout`] when nothing came.
    pub fn recv_raw(&self, timeout: Option<Duration>) -> Result<RawMessage> {
        self.check_free()?;
        let seq = self.wait_for_message(timeout)?;
        let (ptr, len) = self.checked(seq)?;
        self.raw.set(Some((seq, len)));
        Ok(RawMessage {
            seq,
            ptr,
            len,
            deliveries: self.ring.seg.ring().slot(seq).deliveries().load(Relaxed),
        })
    }

    /// Releases the message received with [`Subscriber::recv_raw`] (nothing if none).
    /// [`Error::Reaped`] when the broker reaped this subscriber while it held the message:
    /// the view was kept intact (its slot pinned) and is let go now.
    pub fn release_raw(&self) -> Result<()> {
        match self.raw.take() {
            Some((seq, len)) => self.release(seq, len),
            None => Ok(()),
        }
    }

    fn release(&self, seq: u64, len: usize) -> Result<()> {
        self.settle(len as u64, |r| match self.mode {
            Mode::WorkQueue => {
                // The lease decides: if the broker took the job back meanwhile, the slot is
                // not ours to release.
                work_queue::release_taken(r, seq);
                let count = r.clients.get(self.entry).count();
                count.store(count.load(Relaxed) + 1, Relaxed);
            }
            Mode::Broadcast => broadcast::release(r, self.entry, seq),
        })
    }

    /// Lets go of what this subscriber holds (`bytes` of payload) with `release`, unless the
    /// broker reaped it meanwhile.
    fn settle(&self, bytes: u64, release: impl FnOnce(&RingRef<'_>)) -> Result<()> {
        self.holding.set(false);
        let r = self.ring.seg.ring();
        if let Err(e) = self.reg.check() {
            // Reaped while holding (stalled past the liveness timeout): our place is gone,
            // and the broker pinned the slots we were reading. We are done with them now:
            // give the entry up, which unpins them. (If it is no longer ours at all,
            // `give_up` changes nothing.)
            entry::give_up(&r, self.reg.claim);
            return Err(e);
        }
        release(&r);
        // Only this subscriber writes its byte counter.
        let counter = r.clients.get(self.entry).bytes();
        counter.store(counter.load(Relaxed) + bytes, Relaxed);
        Ok(())
    }
}

impl<T: Layout> Drop for Subscriber<T> {
    fn drop(&mut self) {
        if !self.reg.owned_here() {
            // Inherited through fork: the loan, view and entry are the parent's.
            return;
        }
        let _ = self.release_raw();
        self.set_wait_strategy(WaitStrategy::BusyPoll);
        // `reg` frees the client entry when it drops, after this.
    }
}

/// A message received with [`Subscriber::recv_raw`].
#[derive(Debug, Clone, Copy)]
pub struct RawMessage {
    /// Sequence number.
    pub seq: u64,
    /// The payload, `len` bytes in shared memory (read-only).
    pub ptr: *const u8,
    /// Payload length.
    pub len: usize,
    /// Work queue: times handed to a worker, this time included.
    pub deliveries: u32,
}

/// A read-only view of one message's slot in shared memory: a [`Message`] (through `Deref`)
/// or one message of a [`Batch`]. It lives no longer than what holds the slot.
pub struct View<'a, T: Layout> {
    seq: u64,
    // A pointer, not a `&'a [u8]`: `'a` may outlive the hold (a `Message` holds a
    // `View<'s>` for the subscriber's borrow `'s`), so no reference to the slot is kept; each
    // method makes one tied to `&self`.
    ptr: *const u8,
    len: usize,
    _holder: PhantomData<&'a [u8]>,
    _layout: PhantomData<fn() -> T>,
}

impl<T: Layout> View<'_, T> {
    /// # Safety
    /// `len` bytes from `ptr` lie in the mapping, and no producer writes them while what
    /// holds the slot (the `Message` or `Batch` this view belongs to, which it never
    /// outlives: `View` is not `Clone` and is never moved out of its holder) lives.
    unsafe fn new(seq: u64, ptr: *const u8, len: usize) -> Self {
        View {
            seq,
            ptr,
            len,
            _holder: PhantomData,
            _layout: PhantomData,
        }
    }

    /// Sequence number of the message in its ring.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The payload bytes, in place in shared memory.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: as `View::new`'s caller promised: the bytes lie in the mapping and no
        // producer writes them while the holder lives, which `&self` outlives no longer.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// Payload length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<T: Record> View<'_, T> {
    /// The record at the start of the payload (its length was checked on receipt).
    pub fn header(&self) -> &T {
        bytemuck::from_bytes(&self.bytes()[..std::mem::size_of::<T>()])
    }

    /// The bytes after the record.
    pub fn tail(&self) -> &[u8] {
        &self.bytes()[std::mem::size_of::<T>()..]
    }
}

/// A received message: a read-only view of the slot in shared memory (its [`View`] methods:
/// `seq`, `bytes`, `header`, `tail`, `len`). Dropping it releases the slot to the producers.
pub struct Message<'s, T: Layout> {
    sub: &'s Subscriber<T>,
    view: View<'s, T>,
}

impl<'s, T: Layout> std::ops::Deref for Message<'s, T> {
    type Target = View<'s, T>;

    fn deref(&self) -> &View<'s, T> {
        &self.view
    }
}

impl<T: Layout> Message<'_, T> {
    /// Work queue: how many times this job has been handed to a worker, this time included
    /// (more than 1 when a worker died holding it and the broker offered it again). Always 0
    /// on a broadcast ring.
    pub fn deliveries(&self) -> u32 {
        self.sub
            .ring
            .seg
            .ring()
            .slot(self.view.seq)
            .deliveries()
            .load(Relaxed)
    }
}

impl<T: Layout> Drop for Message<'_, T> {
    fn drop(&mut self) {
        // A drop cannot report a reap: the next receive does.
        let _ = self.sub.release(self.view.seq, self.view.len());
    }
}

/// Messages received at once ([`Subscriber::recv_batch`]), in order: read-only views of their
/// slots, all released with one cursor store when the batch is dropped.
pub struct Batch<'s, T: Layout> {
    sub: &'s Subscriber<T>,
    /// Block-policy broadcast: the sequence after the batch (the cursor its release stores).
    /// `None`: one message, released as [`Message`] releases.
    end: Option<u64>,
    items: Vec<Item>,
}

impl<T: Layout> Batch<'_, T> {
    /// How many messages the batch holds (at least 1; skipped slots are not messages).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when the batch holds no message (never, for a batch `recv_batch` returned).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Message `i` (0-based), or `None` past the end.
    pub fn get(&self, i: usize) -> Option<View<'_, T>> {
        self.items.get(i).map(|item| self.view(item))
    }

    /// The messages in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = View<'_, T>> + '_ {
        self.items.iter().map(|item| self.view(item))
    }

    fn view(&self, item: &Item) -> View<'_, T> {
        // SAFETY: `validate` bounded the length by the slot size, so the bytes lie in the
        // mapping. The batch holds its slots until it is dropped, and the view borrows the
        // batch: on a block-policy broadcast ring the cursor stays at the batch's first
        // sequence (and if the broker reaps the subscriber, it pins the whole announced batch,
        // `entry::announce_batch`, until the release gives the entry up); a batch of one on
        // another ring holds its message as a `Message` does (held cursor or work-queue lease).
        unsafe { View::new(item.seq, item.ptr, item.len) }
    }
}

impl<T: Layout> Drop for Batch<'_, T> {
    fn drop(&mut self) {
        let items = std::mem::take(&mut self.items);
        let bytes = items.iter().map(|m| m.len as u64).sum();
        // A drop cannot report a reap: the next receive does.
        let _ = match (self.end, items.first()) {
            (Some(end), _) => self.sub.settle(bytes, |r| {
                broadcast::release_batch(r, self.sub.entry, end, items.len() as u64)
            }),
            (None, Some(m)) => self.sub.release(m.seq, m.len),
            (None, None) => Ok(()),
        };
        self.sub.batch.set(items);
    }
}

/// Iterator over received messages; each item waits for the next message.
pub struct Iter<'s, T: Layout> {
    sub: &'s Subscriber<T>,
}

impl<'s, T: Layout> Iterator for Iter<'s, T> {
    type Item = Result<Message<'s, T>>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.sub.recv())
    }
}
