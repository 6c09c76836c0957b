//! The gos-bus protocol: everything two processes must agree on to share a ring, and nothing
//! more. It depends on `gos-layouts` (the byte layouts) and the OS crates only; the typed
//! client (`gos-bus-client`), the broker (`gos-bus-broker`) and the command line (`gos-bus`)
//! are built on it.
//!
//! Modules, each depending only on those before it:
//! - [`name`], [`proc`]: OS facts (names of shared-memory objects, process identity, clocks);
//! - [`control`]: atomic views of the segment records, at the offsets `gos-layouts` defines;
//! - [`ring`]: the lock-free protocols (broadcast, work queue, the client table's entry
//!   lifecycle in [`ring::entry`], wake-ups), model-checked with loom (`--cfg loom`);
//! - [`wait`]: futex waiting and the wait strategies;
//! - [`shm`], [`segment`]: POSIX shared-memory objects and ring segments (create, validate, map);
//! - [`lock`]: the broker lock (one broker per bus, dropped by the kernel when it dies);
//! - [`registry`]: the bus registry's format (`/gos.BUS`), read by everyone, written by the
//!   broker.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod control;
pub mod error;
pub mod ring;
mod sync;
pub mod wait;

#[cfg(not(loom))]
pub mod lock;
#[cfg(not(loom))]
pub mod name;
#[cfg(not(loom))]
pub mod proc;
#[cfg(not(loom))]
pub mod registry;
#[cfg(not(loom))]
pub mod segment;
#[cfg(not(loom))]
pub mod shm;

pub use error::{Corrupt, Error, Result};
pub use ring::{Mode, Policy};
#[cfg(not(loom))]
pub use segment::{Geometry, RingConfig, Segment};
pub use wait::WaitStrategy;
