//! The byte format of a ring segment: its header, the client table and the slot headers.
//!
//! A ring segment is one POSIX shared-memory object laid out as
//! `RingHeader` (512 bytes) | `ClientEntry` x `max_clients` | padding to 4096 |
//! `slot_count` slots of `slot_stride` bytes, each a `SlotHeader` (32 bytes) then the payload.
//! The words that change at run time (`head`, `tail`, futex words, cursors, stamps) are
//! accessed atomically by the bus; these records describe where they are.

use crate::record;

/// `RingHeader::magic`.
pub const RING_MAGIC: [u8; 4] = *b"GBRG";
/// `RingHeader::format_version` written by this build (2: `ClientEntry::lifecycle`; 3: the
/// single-producer token carries the holder's generation, `RingHeader::pins`, the reaped
/// state; 4: `SlotHeader::buffer` and [`RING_HOT_BUFFERS`]; 5: a pin covers a range of slots,
/// [`PIN_EXTRA_SHIFT`], and a subscriber announces its batch in `ClientEntry::claimed`).
pub const RING_FORMAT_VERSION: u32 = 5;
/// `RingHeader::state`: being built; never attach.
pub const RING_STATE_BUILDING: u32 = 0;
/// `RingHeader::state`: fully initialised; written last.
pub const RING_STATE_READY: u32 = 0x5245_4459; // "READ" "Y" as a value no zeroed page has
crate::constants! {
    RING_CONSTANTS;
    /// `RingHeader::mode`: every subscriber sees every message.
    pub const MODE_BROADCAST: u32 = 1;
    /// `RingHeader::mode`: each message is taken by exactly one worker.
    pub const MODE_WORK_QUEUE: u32 = 2;
    /// `RingHeader::policy`: producers wait for the slowest subscriber.
    pub const POLICY_BLOCK: u32 = 1;
    /// `RingHeader::policy`: producers overwrite the oldest message and count a drop.
    pub const POLICY_OVERWRITE: u32 = 2;
}
/// Offset of the client table.
pub const CLIENTS_OFFSET: u64 = 512;
/// Alignment of the slot array.
pub const SLOTS_ALIGN: u64 = 4096;
/// Alignment of each slot (a cache line).
pub const SLOT_ALIGN: u64 = 64;
/// Bit 63 of `ClientEntry::cursor`: the subscriber holds a view of the slot at the cursor.
pub const CURSOR_HOLD: u64 = 1 << 63;
/// `ClientEntry::lifecycle` state (low 32 bits): unused.
pub const CLIENT_FREE: u32 = 0;
/// `ClientEntry::lifecycle` state (low 32 bits): being claimed by a client.
pub const CLIENT_CLAIMING: u32 = 1;
/// `ClientEntry::lifecycle` state (low 32 bits): in use.
pub const CLIENT_ACTIVE: u32 = 2;
/// `ClientEntry::lifecycle` state (low 32 bits): taken back by the broker from a client whose
/// process still lives (paused, or too slow to beat): it lost its place, and the slot of the
/// slot in `ClientEntry::pinned` stays pinned (producers pass over it) until the client
/// gives the entry up or its process is gone.
pub const CLIENT_REAPED: u32 = 3;
/// Bits 0..25 of `ClientEntry::pinned`: the first pinned slot's index + 1 (slot counts are
/// at most 2^24).
pub const PIN_INDEX_MASK: u32 = (1 << 25) - 1;
/// `ClientEntry::pinned >> PIN_EXTRA_SHIFT` (0-127): how many slots after the first are
/// pinned too (a subscriber's: the rest of its batch and the slot after it).
pub const PIN_EXTRA_SHIFT: u32 = 25;
/// `ClientEntry::role`: publisher.
pub const ROLE_PUBLISHER: u32 = 1;
/// `ClientEntry::role`: broadcast subscriber (has a cursor).
pub const ROLE_SUBSCRIBER: u32 = 2;
/// `ClientEntry::role`: work-queue worker.
pub const ROLE_WORKER: u32 = 3;
/// `RingHeader::flags`: one publisher at a time; claims need no atomic read-modify-write.
pub const RING_SINGLE_PRODUCER: u32 = 1;
/// `RingHeader::flags`: hot buffers. The publisher writes each message into the payload
/// buffer of the newest message every subscriber has released (the one it wrote last, still
/// in its cache) by swapping `SlotHeader::buffer`s, instead of cycling through every slot's
/// buffer. Set by the creator on single-producer broadcast rings whose slots are at least
/// [`HOT_BUFFERS_MIN_SLOT`] bytes (see `docs/ARCHITECTURE.md`, "Large messages").
pub const RING_HOT_BUFFERS: u32 = 2;
/// `RingHeader::flags` bits this build knows.
pub const RING_KNOWN_FLAGS: u32 = RING_SINGLE_PRODUCER | RING_HOT_BUFFERS;
/// Smallest slot size (bytes) at which a single-producer broadcast ring gets
/// [`RING_HOT_BUFFERS`]: from here the copy of a message dwarfs the swap's cost (a scan of
/// the subscriber cursors per message).
pub const HOT_BUFFERS_MIN_SLOT: u32 = 64 << 10;
/// `ClientEntry::flags`: the client is counted in `RingHeader::sleepy_consumers`.
pub const CLIENT_SLEEPY: u32 = 1;
/// `SlotHeader::flags`: the slot carries no message (abandoned loan); consumers skip it.
pub const SLOT_SKIPPED: u32 = 1;

record! {
    /// Header of a ring segment (offset 0). `state` is written last, with release ordering.
    pub struct RingHeader: magic b"GBRG", version 1, size 512, align 8 {
        /// Magic `GBRG`.
        pub magic: [u8; 4] = 0,
        /// Segment format version (2).
        pub format_version: u32 = 4,
        /// 0 while building, 0x52454459 when ready (written last).
        pub state: u32 = 8,
        /// 1 = broadcast, 2 = work queue.
        pub mode: u32 = 12,
        /// Fingerprint of the record layout the ring carries.
        pub layout_fingerprint: u64 = 16,
        /// 1 = block, 2 = overwrite-oldest (broadcast only).
        pub policy: u32 = 24,
        /// Number of slots, a power of two.
        pub slot_count: u32 = 28,
        /// Largest payload of one slot in bytes.
        pub slot_size: u32 = 32,
        /// Bytes from one slot to the next (32-byte header + payload, 64-aligned).
        pub slot_stride: u32 = 36,
        /// Number of entries in the client table.
        pub max_clients: u32 = 40,
        /// Permission bits the segment was created with.
        pub mode_bits: u32 = 44,
        /// Total size of the segment in bytes.
        pub segment_size: u64 = 48,
        /// Offset of the client table (512).
        pub clients_offset: u64 = 56,
        /// Offset of the first slot (4096-aligned).
        pub slots_offset: u64 = 64,
        /// Creation time, nanoseconds since the Unix epoch.
        pub created_ns: i64 = 72,
        /// Pid of the creating process.
        pub creator_pid: u32 = 80,
        /// Bit set: 1 = single producer (one publisher at a time claims with plain stores),
        /// 2 = hot buffers (see `RING_HOT_BUFFERS`).
        pub flags: u32 = 84,
        /// Name of the record layout, NUL-padded.
        pub layout_name: [u8; 32] = 88,
        /// Name of the ring, NUL-padded.
        pub ring_name: [u8; 64] = 120,
        /// Single-producer ring: the lease (`generation << 32 | entry + 1`) of the publisher
        /// that holds it (0 = none).
        pub producer_token: u64 = 184,
        /// Producers' claim counter: the next sequence number to loan (own cache line).
        pub head: u64 = 192,
        /// Padding.
        pub pad_head: [u8; 56] = 200,
        /// Work queue: the next sequence number to take (own cache line).
        pub tail: u64 = 256,
        /// Padding.
        pub pad_tail: [u8; 56] = 264,
        /// Futex word consumers sleep on; bumped by a commit when `data_waiters` > 0.
        pub data_futex: u32 = 320,
        /// Number of consumers asleep or about to sleep.
        pub data_waiters: u32 = 324,
        /// Futex word producers sleep on when the ring is full.
        pub space_futex: u32 = 328,
        /// Number of producers asleep or about to sleep.
        pub space_waiters: u32 = 332,
        /// Number of attached consumers that may sleep (not busy-polling); producers skip the
        /// wake-up check entirely while it is zero.
        pub sleepy_consumers: u32 = 336,
        /// Padding.
        pub pad_wait: [u8; 44] = 340,
        /// Pid of the broker that owns the ring (0 = none yet).
        pub broker_pid: u32 = 384,
        /// Reserved, zero.
        pub reserved3: u32 = 388,
        /// Broker heartbeat, nanoseconds since the Unix epoch.
        pub broker_heartbeat_ns: i64 = 392,
        /// Number of client entries in the reaped state (each pins one slot); producers look
        /// for pinned slots only while it is not zero.
        pub pins: u32 = 400,
        /// Padding.
        pub reserved5: u32 = 404,
        /// Sequences committed as skipped (abandoned loans, reclaimed claims, pinned slots
        /// passed over): `head - skipped` were published as messages.
        pub skipped: u64 = 408,
        /// Reserved for the broker, zero.
        pub reserved4: [u8; 96] = 416,
    }
}

record! {
    /// One attached client (publisher, subscriber or worker); 128 bytes, one per client.
    pub struct ClientEntry: magic b"GBCL", version 3, size 128, align 8 {
        /// State (bits 0..32: 0 free, 1 claiming, 2 active, 3 reaped) and claim generation (bits 32..64,
        /// incremented at each claim), changed together by one compare-and-swap.
        pub lifecycle: u64 = 0,
        /// 1 publisher, 2 subscriber, 3 worker.
        pub role: u32 = 8,
        /// Process id of the client.
        pub pid: u32 = 12,
        /// Process start time (clock ticks since boot, /proc/PID/stat field 22).
        pub start_time: u64 = 16,
        /// Last heartbeat, nanoseconds since the Unix epoch.
        pub heartbeat_ns: i64 = 24,
        /// Broadcast subscriber: next sequence to read; bit 63 set while a view is held.
        pub cursor: u64 = 32,
        /// Messages this subscriber lost to overwrite-oldest.
        pub drops: u64 = 40,
        /// Messages published (publisher) or received (subscriber, worker).
        pub count: u64 = 48,
        /// Client name, NUL-padded.
        pub name: [u8; 24] = 56,
        /// Publisher: sequence + 1 it has claimed and not yet committed (0 = none).
        /// Broadcast subscriber: the sequence after the last one of the batch it reads
        /// (0 = none; at most its cursor when it reads one message at a time).
        pub claimed: u64 = 80,
        /// Payload bytes published (publisher) or received (subscriber, worker).
        pub bytes: u64 = 88,
        /// Bit set: 1 = counted in `sleepy_consumers` (its wait strategy may sleep).
        pub flags: u32 = 96,
        /// Reaped state: the first pinned slot's index + 1 (bits 0..25; 0 = none yet) and how
        /// many slots after it are pinned too (bits 25..32; see `PIN_EXTRA_SHIFT` and
        /// `gos_bus_protocol::ring::entry`).
        pub pinned: u32 = 100,
        /// Messages whose handling failed (reported by daemons).
        pub failed: u64 = 104,
        /// Total time spent handling messages, nanoseconds (reported by daemons).
        pub work_ns: u64 = 112,
        /// Total GPU time spent on them, nanoseconds (reported by the render node).
        pub gpu_ns: u64 = 120,
    }
}

record! {
    /// Header of one slot. Slot `i`'s payload buffer lies right after slot `i`'s header; the
    /// message of a slot is in the buffer `buffer` names (its own, unless the ring has
    /// [`RING_HOT_BUFFERS`]).
    pub struct SlotHeader: magic b"GBSL", version 2, size 32, align 8 {
        /// Sequence stamp: broadcast = seq + 1 when committed; work queue = Vyukov sequence.
        pub stamp: u64 = 0,
        /// Length of the committed payload.
        pub len: u32 = 8,
        /// Bit set: 1 = skipped (no message; consumers pass over it).
        pub flags: u32 = 12,
        /// Work queue: lease of the worker that took it ((generation << 32) | entry + 1).
        pub lease: u64 = 16,
        /// Work queue: number of times the message was handed to a worker.
        pub deliveries: u32 = 24,
        /// Index of the payload buffer that holds this slot's message: the buffers of all
        /// slots are a permutation of `0..slot_count` (identity unless [`RING_HOT_BUFFERS`];
        /// readers mask it with `slot_count - 1`, so a hostile value stays in bounds).
        pub buffer: u32 = 28,
    }
}
