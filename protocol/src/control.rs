//! Atomic views of the segment records of `gos_layouts::segment`.
//!
//! The structs here have exactly the layout of `RingHeader`, `ClientEntry` and `SlotHeader`
//! (asserted at compile time), with the words that change at run time typed as atomics. They
//! are never constructed in shared memory; a mapped segment is viewed through them, and under
//! loom they are built on the heap so that the same protocol code is model-checked.

use crate::sync::{AtomicU32, AtomicU64};
use std::marker::PhantomData;
use std::ptr::NonNull;

/// The run-time words of a ring header (see `gos_layouts::RingHeader`).
#[repr(C)]
pub struct RingCtl {
    _fixed0: [u8; 8],
    /// `RingHeader::state`, written last at creation with release ordering.
    pub state: AtomicU32,
    _fixed1: [u8; 180],
    /// Producers' claim counter.
    pub head: AtomicU64,
    _pad_head: [u8; 56],
    /// Work-queue consumers' claim counter.
    pub tail: AtomicU64,
    _pad_tail: [u8; 56],
    /// Futex word consumers sleep on.
    pub data_futex: AtomicU32,
    /// Consumers asleep or about to sleep.
    pub data_waiters: AtomicU32,
    /// Futex word producers sleep on when the ring is full.
    pub space_futex: AtomicU32,
    /// Producers asleep or about to sleep.
    pub space_waiters: AtomicU32,
    /// Attached consumers that may sleep (not busy-polling).
    pub sleepy_consumers: AtomicU32,
    _pad_wait: [u8; 44],
    /// Pid of the owning broker.
    pub broker_pid: AtomicU32,
    /// Single-producer ring: entry + 1 of the publisher holding it.
    pub producer_token: AtomicU32,
    /// Broker heartbeat (ns since the epoch, as `u64`).
    pub broker_heartbeat_ns: AtomicU64,
    _reserved4: [u8; 112],
}

/// The words of one client entry (see `gos_layouts::ClientEntry`).
#[repr(C)]
pub struct ClientCtl {
    /// Free, claiming or active.
    pub state: AtomicU32,
    /// Publisher, subscriber or worker.
    pub role: AtomicU32,
    /// Process id.
    pub pid: AtomicU32,
    /// Claim generation.
    pub generation: AtomicU32,
    /// Process start time in clock ticks since boot.
    pub start_time: AtomicU64,
    /// Last heartbeat, ns since the epoch.
    pub heartbeat_ns: AtomicU64,
    /// Broadcast cursor; bit 63 while a view is held.
    pub cursor: AtomicU64,
    /// Messages lost to overwrite-oldest.
    pub drops: AtomicU64,
    /// Messages published or received.
    pub count: AtomicU64,
    /// Name, NUL-padded, 8 bytes per word (little-endian).
    pub name: [AtomicU64; 3],
    /// Publisher: sequence + 1 claimed and not yet committed (0 = none).
    pub claimed: AtomicU64,
    /// Payload bytes published or received.
    pub bytes: AtomicU64,
    /// `CLIENT_SLEEPY` while counted in `sleepy_consumers`.
    pub flags: AtomicU32,
    _reserved0: [u8; 4],
    /// Messages whose handling failed (reported by daemons).
    pub failed: AtomicU64,
    /// Time spent handling messages, ns (reported by daemons).
    pub work_ns: AtomicU64,
    /// GPU time spent on them, ns (reported by the render node).
    pub gpu_ns: AtomicU64,
}

/// The words of one slot header (see `gos_layouts::SlotHeader`).
#[repr(C)]
pub struct SlotCtl {
    /// Sequence stamp.
    pub stamp: AtomicU64,
    /// Committed payload length.
    pub len: AtomicU32,
    /// Slot flags (`SLOT_SKIPPED`).
    pub flags: AtomicU32,
    /// Work-queue lease.
    pub lease: AtomicU64,
    /// Work-queue delivery count.
    pub deliveries: AtomicU32,
    /// Entry index + 1 of the loaning producer.
    pub producer: AtomicU32,
}

#[cfg(not(loom))]
mod layout_checks {
    use super::*;
    use gos_layouts::{ClientEntry, RingHeader, SlotHeader};
    use std::mem::{offset_of, size_of};

    const _: () = assert!(size_of::<RingCtl>() == size_of::<RingHeader>());
    const _: () = assert!(offset_of!(RingCtl, state) == offset_of!(RingHeader, state));
    const _: () = assert!(offset_of!(RingCtl, head) == offset_of!(RingHeader, head));
    const _: () = assert!(offset_of!(RingCtl, tail) == offset_of!(RingHeader, tail));
    const _: () = assert!(offset_of!(RingCtl, data_futex) == offset_of!(RingHeader, data_futex));
    const _: () =
        assert!(offset_of!(RingCtl, data_waiters) == offset_of!(RingHeader, data_waiters));
    const _: () = assert!(offset_of!(RingCtl, space_futex) == offset_of!(RingHeader, space_futex));
    const _: () =
        assert!(offset_of!(RingCtl, space_waiters) == offset_of!(RingHeader, space_waiters));
    const _: () =
        assert!(offset_of!(RingCtl, sleepy_consumers) == offset_of!(RingHeader, sleepy_consumers));
    const _: () = assert!(offset_of!(RingCtl, broker_pid) == offset_of!(RingHeader, broker_pid));
    const _: () =
        assert!(offset_of!(RingCtl, producer_token) == offset_of!(RingHeader, producer_token));
    const _: () = assert!(
        offset_of!(RingCtl, broker_heartbeat_ns) == offset_of!(RingHeader, broker_heartbeat_ns)
    );

    const _: () = assert!(size_of::<ClientCtl>() == size_of::<ClientEntry>());
    const _: () = assert!(offset_of!(ClientCtl, state) == offset_of!(ClientEntry, state));
    const _: () = assert!(offset_of!(ClientCtl, role) == offset_of!(ClientEntry, role));
    const _: () = assert!(offset_of!(ClientCtl, pid) == offset_of!(ClientEntry, pid));
    const _: () = assert!(offset_of!(ClientCtl, generation) == offset_of!(ClientEntry, generation));
    const _: () = assert!(offset_of!(ClientCtl, start_time) == offset_of!(ClientEntry, start_time));
    const _: () =
        assert!(offset_of!(ClientCtl, heartbeat_ns) == offset_of!(ClientEntry, heartbeat_ns));
    const _: () = assert!(offset_of!(ClientCtl, cursor) == offset_of!(ClientEntry, cursor));
    const _: () = assert!(offset_of!(ClientCtl, drops) == offset_of!(ClientEntry, drops));
    const _: () = assert!(offset_of!(ClientCtl, count) == offset_of!(ClientEntry, count));
    const _: () = assert!(offset_of!(ClientCtl, name) == offset_of!(ClientEntry, name));
    const _: () = assert!(offset_of!(ClientCtl, claimed) == offset_of!(ClientEntry, claimed));
    const _: () = assert!(offset_of!(ClientCtl, bytes) == offset_of!(ClientEntry, bytes));
    const _: () = assert!(offset_of!(ClientCtl, flags) == offset_of!(ClientEntry, flags));
    const _: () = assert!(offset_of!(ClientCtl, failed) == offset_of!(ClientEntry, failed));
    const _: () = assert!(offset_of!(ClientCtl, work_ns) == offset_of!(ClientEntry, work_ns));
    const _: () = assert!(offset_of!(ClientCtl, gpu_ns) == offset_of!(ClientEntry, gpu_ns));

    const _: () = assert!(size_of::<SlotCtl>() == size_of::<SlotHeader>());
    const _: () = assert!(offset_of!(SlotCtl, stamp) == offset_of!(SlotHeader, stamp));
    const _: () = assert!(offset_of!(SlotCtl, len) == offset_of!(SlotHeader, len));
    const _: () = assert!(offset_of!(SlotCtl, flags) == offset_of!(SlotHeader, flags));
    const _: () = assert!(offset_of!(SlotCtl, lease) == offset_of!(SlotHeader, lease));
    const _: () = assert!(offset_of!(SlotCtl, deliveries) == offset_of!(SlotHeader, deliveries));
    const _: () = assert!(offset_of!(SlotCtl, producer) == offset_of!(SlotHeader, producer));
}

#[cfg(loom)]
impl RingCtl {
    /// A zeroed header on the heap, for loom models.
    pub fn new_for_model() -> Self {
        RingCtl {
            _fixed0: [0; 8],
            state: AtomicU32::new(0),
            _fixed1: [0; 180],
            head: AtomicU64::new(0),
            _pad_head: [0; 56],
            tail: AtomicU64::new(0),
            _pad_tail: [0; 56],
            data_futex: AtomicU32::new(0),
            data_waiters: AtomicU32::new(0),
            space_futex: AtomicU32::new(0),
            space_waiters: AtomicU32::new(0),
            sleepy_consumers: AtomicU32::new(0),
            _pad_wait: [0; 44],
            broker_pid: AtomicU32::new(0),
            producer_token: AtomicU32::new(0),
            broker_heartbeat_ns: AtomicU64::new(0),
            _reserved4: [0; 112],
        }
    }
}

#[cfg(loom)]
impl ClientCtl {
    /// A free entry on the heap, for loom models.
    pub fn new_for_model() -> Self {
        ClientCtl {
            state: AtomicU32::new(0),
            role: AtomicU32::new(0),
            pid: AtomicU32::new(0),
            generation: AtomicU32::new(0),
            start_time: AtomicU64::new(0),
            heartbeat_ns: AtomicU64::new(0),
            cursor: AtomicU64::new(0),
            drops: AtomicU64::new(0),
            count: AtomicU64::new(0),
            name: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
            claimed: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            flags: AtomicU32::new(0),
            _reserved0: [0; 4],
            failed: AtomicU64::new(0),
            work_ns: AtomicU64::new(0),
            gpu_ns: AtomicU64::new(0),
        }
    }
}

#[cfg(loom)]
impl SlotCtl {
    /// A slot header with the given stamp, on the heap, for loom models.
    pub fn new_for_model(stamp: u64) -> Self {
        SlotCtl {
            stamp: AtomicU64::new(stamp),
            len: AtomicU32::new(0),
            flags: AtomicU32::new(0),
            lease: AtomicU64::new(0),
            deliveries: AtomicU32::new(0),
            producer: AtomicU32::new(0),
        }
    }
}

/// A table of `len` records `T` placed `stride` bytes apart: the client table or the slots
/// of a mapped segment, or (under loom) a plain slice.
pub struct Table<'a, T> {
    base: NonNull<u8>,
    stride: usize,
    len: usize,
    _life: PhantomData<&'a [T]>,
}

impl<T> Clone for Table<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Table<'_, T> {}

// SAFETY: a Table only hands out `&T`, and every `T` used here consists of atomics (Sync),
// so sharing or sending the table is as safe as sharing `&[T]`.
unsafe impl<T: Sync> Send for Table<'_, T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for Table<'_, T> {}

impl<'a, T> Table<'a, T> {
    /// A table over a slice (records contiguous).
    pub fn from_slice(s: &'a [T]) -> Self {
        Table {
            base: NonNull::from(s).cast(),
            stride: std::mem::size_of::<T>(),
            len: s.len(),
            _life: PhantomData,
        }
    }

    /// A table over raw memory.
    ///
    /// # Safety
    /// `base` must be valid for reads and writes of `len * stride` bytes for `'a`, aligned for
    /// `T`, with `stride` a multiple of `T`'s alignment and at least its size; the memory must
    /// only ever be accessed through atomics or under the ring protocol.
    pub unsafe fn from_raw(base: NonNull<u8>, stride: usize, len: usize) -> Self {
        Table {
            base,
            stride,
            len,
            _life: PhantomData,
        }
    }

    /// Number of records.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the table holds no record.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The record at `i`. Panics if `i` is out of range (callers mask their indices).
    #[inline]
    pub fn get(&self, i: usize) -> &'a T {
        assert!(i < self.len, "table index out of range");
        // SAFETY: `i < len`, so the record lies inside the memory promised by the constructor,
        // aligned (stride is a multiple of the alignment), and valid for 'a.
        unsafe { &*self.base.as_ptr().add(i * self.stride).cast::<T>() }
    }

    /// Address of the record at `i` (the start of a slot, for payload access).
    #[inline]
    pub fn ptr(&self, i: usize) -> *mut u8 {
        assert!(i < self.len, "table index out of range");
        // SAFETY: in bounds of the table's memory, as in `get`.
        unsafe { self.base.as_ptr().add(i * self.stride) }
    }
}
