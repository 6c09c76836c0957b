//! gos-bus: shared-memory segments, lock-free rings and wait/wake for Geometry OS.
//!
//! Layers, each depending only on those before it: [`name`] and [`proc`] (OS facts),
//! [`control`] (atomic views of the segment records), [`ring`] (the lock-free protocols),
//! [`wait`] (futex waiting), [`segment`] (POSIX shared memory). The typed client lives in
//! the `gos-bus-client` crate; the `gos-bus` binary is the command line.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

#[cfg(not(loom))]
pub mod broker;
#[cfg(not(loom))]
pub mod client;
pub mod control;
pub mod error;
pub mod ring;
mod sync;
pub mod wait;

#[cfg(not(loom))]
pub mod name;
#[cfg(not(loom))]
pub mod proc;
#[cfg(not(loom))]
pub mod rts;
#[cfg(not(loom))]
pub mod segment;
#[cfg(not(loom))]
pub mod shm;
#[cfg(not(loom))]
pub mod tools;

pub use error::{Corrupt, Error, Result};
pub use ring::{Mode, Policy};
#[cfg(not(loom))]
pub use segment::{Geometry, RingConfig, Segment};
pub use wait::WaitStrategy;
