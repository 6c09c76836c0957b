//! Errors of the bus. Every message says what went wrong and what to do about it.

use std::io;

/// Result with the bus [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What is wrong with a segment that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Corrupt {
    /// The file is shorter than the header or than the geometry it declares.
    #[error("truncated: {found} bytes, expected {expected}")]
    Truncated {
        /// Bytes expected.
        expected: u64,
        /// Bytes found.
        found: u64,
    },
    /// The first four bytes are not `GBRG`.
    #[error("wrong magic {found:?} (expected \"GBRG\"): not a gos-bus ring")]
    WrongMagic {
        /// The bytes found, lossily decoded.
        found: String,
    },
    /// The format version is not the one this build reads.
    #[error("wrong format version {found} (this build reads version {expected})")]
    WrongVersion {
        /// Version found.
        found: u32,
        /// Version supported.
        expected: u32,
    },
    /// The initialised word was never written: creation is in progress or crashed.
    #[error("not initialised (state {found:#x}): it is being created, or its creator died")]
    NotInitialised {
        /// The state word found.
        found: u32,
    },
    /// A header field has a value outside its range.
    #[error("bad {field} {value}: {why}")]
    BadField {
        /// Field name.
        field: &'static str,
        /// Value found.
        value: u64,
        /// The rule it breaks.
        why: &'static str,
    },
    /// Cursors that no correct ring can have.
    #[error("cursors out of range: {what}")]
    CursorsOutOfRange {
        /// Which cursors and values.
        what: String,
    },
    /// A committed slot claims more bytes than a slot holds.
    #[error("slot {seq} has payload length {len}, larger than the slot size {slot_size}")]
    PayloadTooLarge {
        /// Sequence of the slot.
        seq: u64,
        /// Length found.
        len: u32,
        /// Slot size of the ring.
        slot_size: u32,
    },
}

/// Errors of the bus.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bus or ring name breaks the naming rules.
    #[error("invalid {kind} name {name:?}: {reason}")]
    InvalidName {
        /// `bus` or `ring`.
        kind: &'static str,
        /// The name given.
        name: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// The ring's shared-memory object does not exist.
    #[error("ring '{ring}' of bus '{bus}' does not exist (looked for {path}): create it with `gos-bus create {ring} --bus {bus}` (or start the broker), or check the bus and ring names with `gos-bus ls --bus {bus}`")]
    NoSuchRing {
        /// Bus name.
        bus: String,
        /// Ring name.
        ring: String,
        /// Path looked at.
        path: String,
    },
    /// The ring exists already.
    #[error("ring '{ring}' of bus '{bus}' already exists ({path}): use it, or remove it first with `gos-bus rm {ring} --bus {bus}`")]
    AlreadyExists {
        /// Bus name.
        bus: String,
        /// Ring name.
        ring: String,
        /// Path of the object.
        path: String,
    },
    /// The object exists but this user may not open it.
    #[error("permission denied opening {path}: it belongs to another user or its mode is too strict; run as its owner, or have it recreated with group access (`permissions = \"0660\"` in the manifest, or `gos-bus create --permissions 0660`)")]
    PermissionDenied {
        /// Path of the object.
        path: String,
    },
    /// `/dev/shm` has no room for the segment.
    #[error("no room in /dev/shm for {path} ({bytes} bytes): free space there (`gos-bus ls`, `gos-bus rm`), use fewer or smaller slots, or enlarge /dev/shm (e.g. `docker run --shm-size=1g`)")]
    NoSpace {
        /// Path of the object.
        path: String,
        /// Bytes requested.
        bytes: u64,
    },
    /// The segment failed validation.
    #[error("segment {path} is not a usable ring: {problem}; remove it with `gos-bus rm` and recreate it")]
    Corrupt {
        /// Path of the object.
        path: String,
        /// What is wrong.
        problem: Corrupt,
    },
    /// The ring carries another record layout than the one asked for.
    #[error("layout mismatch on ring '{ring}': it carries {ring_layout} (fingerprint {ring_fingerprint:#018x}) but this client uses {wanted} (fingerprint {wanted_fingerprint:#018x}); rebuild the client against the same gos-layouts, or open the ring raw")]
    LayoutMismatch {
        /// Ring name.
        ring: String,
        /// Layout name stored in the ring.
        ring_layout: String,
        /// Fingerprint stored in the ring.
        ring_fingerprint: u64,
        /// Layout asked for.
        wanted: String,
        /// Its fingerprint.
        wanted_fingerprint: u64,
    },
    /// A message is larger than the ring's slots.
    #[error("payload of {len} bytes does not fit ring '{ring}' (slot size {slot_size} bytes): send less, or recreate the ring with a larger --slot-size")]
    PayloadTooLarge {
        /// Ring name.
        ring: String,
        /// Length asked for.
        len: usize,
        /// Slot size.
        slot_size: u32,
    },
    /// Every client entry of the ring is in use.
    #[error("ring '{ring}' has no free client entry ({max} clients attached): detach a client, or recreate the ring with more --max-clients")]
    ClientTableFull {
        /// Ring name.
        ring: String,
        /// Size of the table.
        max: u32,
    },
    /// A single-producer ring already has its publisher.
    #[error("ring '{ring}' is single-producer and already has a publisher (pid {pid}): stop that publisher first, or recreate the ring without --single-producer")]
    ProducerBusy {
        /// Ring name.
        ring: String,
        /// Pid of the publisher holding it.
        pid: u32,
    },
    /// The broker took this client's entry back.
    #[error("this client of ring '{ring}' was reaped by the broker ({why}); attach again")]
    Reaped {
        /// Ring name.
        ring: String,
        /// Why, as far as the client can tell from its entry.
        why: &'static str,
    },
    /// The broker runs in another PID namespace: its pids and ours are not comparable, so it
    /// would judge this client dead at once.
    #[error("bus '{bus}' is served by a broker in another PID namespace (pid:[{broker}], this process pid:[{ours}]): it cannot see this process and would reap it at once; share the broker's PID namespace (for example docker run --pid=host, or run the client outside the container)")]
    ForeignPidNamespace {
        /// Bus name.
        bus: String,
        /// The broker's PID namespace inode.
        broker: u64,
        /// Ours.
        ours: u64,
    },
    /// The bus has no registry: no broker was ever started for it, or it was cleaned.
    #[error(
        "bus '{bus}' is not running (looked for {path}): start it with `gos-bus serve --bus {bus}`"
    )]
    BusNotRunning {
        /// Bus name.
        bus: String,
        /// Path looked at.
        path: String,
    },
    /// A live broker already serves the bus.
    #[error("bus '{bus}' already has a broker (pid {pid}): stop it first (kill -TERM {pid}), or pick another --bus")]
    BrokerRunning {
        /// Bus name.
        bus: String,
        /// Pid of the broker.
        pid: u32,
    },
    /// A manifest is malformed or asks for something impossible.
    #[error("manifest {origin}: {problem}")]
    Manifest {
        /// Path, or "the embedded default manifest".
        origin: String,
        /// What is wrong, naming the ring and field.
        problem: String,
    },
    /// A ring left by an earlier broker differs from what the manifest asks for.
    #[error("ring '{ring}' already exists with {found}, but the manifest asks for {wanted}: remove the old rings with `gos-bus clean --bus {bus}` (their messages are lost), or fix the manifest")]
    AdoptMismatch {
        /// Bus name.
        bus: String,
        /// Ring name.
        ring: String,
        /// What the existing ring has.
        found: String,
        /// What the manifest wants.
        wanted: String,
    },
    /// A file is not a usable PixelRTS texture.
    #[error("cannot use {path} as a PixelRTS texture: {problem}")]
    Rts {
        /// The file.
        path: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A configuration value is out of range.
    #[error("invalid ring configuration: {0}")]
    InvalidConfig(String),
    /// An API used out of order or with an argument it cannot take (a message still held, a
    /// null pointer through the C ABI); the text says what to do instead.
    #[error("{0}")]
    Misuse(String),
    /// Nothing arrived (or no slot freed) before the timeout.
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// A system call failed.
    #[error("{op} {path}: {source}")]
    Os {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}
