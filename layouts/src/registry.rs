//! The byte format of a bus registry: one POSIX shared-memory object per bus (`/gos.BUS`),
//! written by the broker and read by everyone else.
//!
//! `RegistryHeader` (256 bytes) | `RegistryRing` x 64 (128 bytes each) | the layout schemas as
//! JSON text (`schemas_offset`, `schemas_len`), for readers in any language.

use crate::record;

/// `RegistryHeader::magic`.
pub const REGISTRY_MAGIC: [u8; 4] = *b"GBRY";
/// `RegistryHeader::format_version` written by this build (2: `broker_pid_ns`).
pub const REGISTRY_FORMAT_VERSION: u32 = 2;
/// `RegistryHeader::state`: the broker is running (or died without stopping).
pub const REGISTRY_RUNNING: u32 = 0x5255_4E4E; // "RUNN"
/// `RegistryHeader::state`: the broker stopped cleanly; the rings stay for the next one.
pub const REGISTRY_STOPPED: u32 = 0x5354_4F50; // "STOP"
/// Largest number of rings a registry lists.
pub const REGISTRY_MAX_RINGS: usize = 64;
/// Offset of the ring table.
pub const REGISTRY_RINGS_OFFSET: usize = 256;

record! {
    /// Header of a bus registry.
    pub struct RegistryHeader: magic b"GBRY", version 1, size 256, align 8 {
        /// Magic `GBRY`.
        pub magic: [u8; 4] = 0,
        /// Registry format version (1).
        pub format_version: u32 = 4,
        /// 0 while building, "RUNN" running, "STOP" stopped cleanly.
        pub state: u32 = 8,
        /// Number of entries used in the ring table.
        pub ring_count: u32 = 12,
        /// Pid of the broker.
        pub broker_pid: u32 = 16,
        /// Liveness timeout of the broker, milliseconds.
        pub liveness_ms: u32 = 20,
        /// Start time of the broker process (clock ticks since boot).
        pub broker_start_time: u64 = 24,
        /// Broker heartbeat, nanoseconds since the Unix epoch.
        pub heartbeat_ns: i64 = 32,
        /// When the broker started, nanoseconds since the Unix epoch.
        pub started_ns: i64 = 40,
        /// Clients reaped so far.
        pub clients_reaped: u64 = 48,
        /// Abandoned claims committed as skipped so far.
        pub claims_skipped: u64 = 56,
        /// Work-queue jobs handed to another worker so far.
        pub jobs_redelivered: u64 = 64,
        /// Offset of the schemas JSON text.
        pub schemas_offset: u32 = 72,
        /// Length of the schemas JSON text.
        pub schemas_len: u32 = 76,
        /// Bus name, NUL-padded.
        pub bus_name: [u8; 32] = 80,
        /// Inode of the broker's PID namespace (`/proc/self/ns/pid`), so that a client can
        /// tell whether the broker's pids are comparable with its own (0 = unknown).
        pub broker_pid_ns: u64 = 112,
        /// Reserved, zero.
        pub reserved: [u8; 136] = 120,
    }
}

record! {
    /// One ring of the bus, as the broker created or adopted it.
    pub struct RegistryRing: magic b"GBRR", version 1, size 128, align 8 {
        /// Ring name, NUL-padded.
        pub name: [u8; 64] = 0,
        /// Layout name, NUL-padded.
        pub layout_name: [u8; 32] = 64,
        /// Layout fingerprint.
        pub layout_fingerprint: u64 = 96,
        /// 1 broadcast, 2 work queue.
        pub mode: u32 = 104,
        /// 1 block, 2 overwrite-oldest.
        pub policy: u32 = 108,
        /// Number of slots.
        pub slot_count: u32 = 112,
        /// Slot size in bytes.
        pub slot_size: u32 = 116,
        /// Ring flags (bit 0 single producer).
        pub flags: u32 = 120,
        /// Reserved, zero.
        pub reserved: u32 = 124,
    }
}
