//! Atomic views of the segment records of `gos_layouts::segment`.
//!
//! A record is defined once, in `gos-layouts` (`RingHeader`, `ClientEntry`, `SlotHeader`: field
//! names, offsets, sizes). A view here is that record behind an `UnsafeCell`, with one accessor
//! per word that changes at run time, returning the word as an atomic at the record's own
//! offset (`offset_of!` on the layout, so there is no second list of offsets or padding to keep
//! in step). A view is never constructed in shared memory; a mapped segment is looked at
//! through it. Under loom (`--cfg loom`) the same accessors return loom atomics held in a
//! plain struct on the heap, so the ring protocols are model-checked with the code that runs.

use crate::sync::{AtomicU32, AtomicU64};
use std::marker::PhantomData;
use std::ptr::NonNull;

/// Declares the atomic view `$view` of record `$record`: one accessor per listed field, typed
/// as the listed atomic. Each field's offset and alignment are checked at compile time; its
/// size against the record's schema by the `fields_match_the_schema` test.
macro_rules! atomic_view {
    (
        $(#[$meta:meta])*
        pub struct $view:ident = $record:ident {
            $( $(#[$fmeta:meta])* $field:ident: $atomic:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[cfg(not(loom))]
        #[repr(transparent)]
        pub struct $view(std::cell::UnsafeCell<gos_layouts::$record>);

        $(#[$meta])*
        #[cfg(loom)]
        #[derive(Default)]
        pub struct $view {
            $( $field: $atomic, )*
        }

        // SAFETY: every word of the record that changes while shared is reached only through
        // the atomic accessors below; the other words are written before the segment is
        // published (state READY, Release) and only read afterwards.
        #[cfg(not(loom))]
        unsafe impl Sync for $view {}

        impl $view {
            /// The fields this view exposes, with the size of the atomic each is read as (for
            /// the test against the record's schema).
            #[allow(dead_code)]
            pub(crate) const FIELDS: &'static [(&'static str, usize)] =
                &[$( (stringify!($field), std::mem::size_of::<$atomic>()) ),*];

            /// A zeroed record on the heap, for loom models.
            #[cfg(loom)]
            pub fn new_for_model() -> Self {
                Self::default()
            }

            $(
                $(#[$fmeta])*
                #[inline]
                pub fn $field(&self) -> &$atomic {
                    #[cfg(not(loom))]
                    {
                        const OFFSET: usize = std::mem::offset_of!(gos_layouts::$record, $field);
                        const _: () = assert!(
                            OFFSET % std::mem::align_of::<$atomic>() == 0
                                && OFFSET + std::mem::size_of::<$atomic>()
                                    <= std::mem::size_of::<gos_layouts::$record>()
                        );
                        // SAFETY: the word lies inside the record (asserted above), aligned
                        // for the atomic (the record is 8-aligned and the offset a multiple of
                        // the atomic's alignment, asserted above), and lives as long as
                        // `self`; concurrent access to it is atomic only (see `Sync`).
                        unsafe { &*self.0.get().cast::<u8>().add(OFFSET).cast::<$atomic>() }
                    }
                    #[cfg(loom)]
                    {
                        &self.$field
                    }
                }
            )*
        }
    };
}

atomic_view! {
    /// The run-time words of a ring header (`gos_layouts::RingHeader`).
    pub struct RingCtl = RingHeader {
        /// `RingHeader::state`, written last at creation with release ordering.
        state: AtomicU32,
        /// Producers' claim counter.
        head: AtomicU64,
        /// Work-queue consumers' claim counter.
        tail: AtomicU64,
        /// Futex word consumers sleep on.
        data_futex: AtomicU32,
        /// Consumers asleep or about to sleep.
        data_waiters: AtomicU32,
        /// Futex word producers sleep on when the ring is full.
        space_futex: AtomicU32,
        /// Producers asleep or about to sleep.
        space_waiters: AtomicU32,
        /// Attached consumers that may sleep (not busy-polling).
        sleepy_consumers: AtomicU32,
        /// Single-producer ring: lease of the publisher holding it.
        producer_token: AtomicU64,
        /// Pid of the owning broker.
        broker_pid: AtomicU32,
        /// Client entries in the reaped state (each pins a slot).
        pins: AtomicU32,
        /// Sequences committed as skipped.
        skipped: AtomicU64,
        /// Broker heartbeat (ns since the epoch, as `u64`).
        broker_heartbeat_ns: AtomicU64,
    }
}

atomic_view! {
    /// The words of one client entry (`gos_layouts::ClientEntry`). Its lifecycle word (state
    /// and generation) is changed only by `ring::entry`.
    pub struct ClientCtl = ClientEntry {
        /// State (low 32 bits) and claim generation (high 32 bits), changed together.
        lifecycle: AtomicU64,
        /// Publisher, subscriber or worker.
        role: AtomicU32,
        /// Process id.
        pid: AtomicU32,
        /// Process start time in clock ticks since boot.
        start_time: AtomicU64,
        /// Last heartbeat, ns since the epoch.
        heartbeat_ns: AtomicU64,
        /// Broadcast cursor; bit 63 while a view is held.
        cursor: AtomicU64,
        /// Messages lost to overwrite-oldest.
        drops: AtomicU64,
        /// Messages published or received.
        count: AtomicU64,
        /// Name, NUL-padded, 8 bytes per word (little-endian).
        name: [AtomicU64; 3],
        /// Publisher: sequence + 1 claimed and not yet committed (0 = none). Broadcast
        /// subscriber: the end of the batch it reads (`entry::announce_batch`).
        claimed: AtomicU64,
        /// Payload bytes published or received.
        bytes: AtomicU64,
        /// `CLIENT_SLEEPY` while counted in `sleepy_consumers`.
        flags: AtomicU32,
        /// Reaped state: first pinned slot index + 1 and how many after it are pinned too
        /// (`PIN_INDEX_MASK`, `PIN_EXTRA_SHIFT`).
        pinned: AtomicU32,
        /// Messages whose handling failed (reported by daemons).
        failed: AtomicU64,
        /// Time spent handling messages, ns (reported by daemons).
        work_ns: AtomicU64,
        /// GPU time spent on them, ns (reported by the render node).
        gpu_ns: AtomicU64,
    }
}

atomic_view! {
    /// The words of one slot header (`gos_layouts::SlotHeader`).
    pub struct SlotCtl = SlotHeader {
        /// Sequence stamp.
        stamp: AtomicU64,
        /// Committed payload length.
        len: AtomicU32,
        /// Slot flags (`SLOT_SKIPPED`).
        flags: AtomicU32,
        /// Work-queue lease.
        lease: AtomicU64,
        /// Work-queue delivery count.
        deliveries: AtomicU32,
        /// Index of the payload buffer holding the slot's message.
        buffer: AtomicU32,
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use gos_layouts::{ClientEntry, Record, RingHeader, SlotHeader};

    fn check(view: &[(&str, usize)], record: gos_layouts::Schema) {
        for (name, size) in view {
            let field = record
                .fields
                .iter()
                .find(|f| f.name == *name)
                .unwrap_or_else(|| panic!("{} has no field {name}", record.name));
            let bytes = field.scalar.size() * field.count as usize;
            assert_eq!(bytes, *size, "{}.{name}", record.name);
        }
    }

    #[test]
    fn fields_match_the_schema() {
        check(RingCtl::FIELDS, RingHeader::SCHEMA);
        check(ClientCtl::FIELDS, ClientEntry::SCHEMA);
        check(SlotCtl::FIELDS, SlotHeader::SCHEMA);
    }

    #[test]
    fn accessors_reach_the_record_words() {
        let mut h: RingHeader = bytemuck::Zeroable::zeroed();
        h.head = 7;
        h.producer_token = 3;
        // SAFETY: RingCtl is a transparent UnsafeCell over RingHeader.
        let v = unsafe { &*(&mut h as *mut RingHeader).cast::<RingCtl>() };
        assert_eq!(v.head().load(std::sync::atomic::Ordering::Relaxed), 7);
        assert_eq!(
            v.producer_token()
                .load(std::sync::atomic::Ordering::Relaxed),
            3
        );
        v.tail().store(9, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(h.tail, 9);
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
