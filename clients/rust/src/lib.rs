//! The typed Rust client of gos-bus: attach to a ring by bus and name, loan a slot, write in
//! place, commit; receive a view of a slot and release it by dropping it. No copy on the way.
//!
//! ```no_run
//! use gos_bus_client::{Bus, RenderFrame};
//! let bus = Bus::attach("geometry")?;
//! let mut publisher = bus.publisher::<RenderFrame>("render.frames")?;
//! let mut loan = publisher.loan()?;
//! loan.header_mut().width = 640;
//! loan.tail_mut()[..4].copy_from_slice(&[255, 0, 0, 255]);
//! loan.commit();
//!
//! let subscriber = bus.subscriber::<RenderFrame>("render.frames")?;
//! for message in subscriber.iter().take(1) {
//!     let message = message?;
//!     println!("{} x {}", message.header().width, message.header().height);
//! }
//! # Ok::<(), gos_bus_client::Error>(())
//! ```
//!
//! The implementation lives in `gos_bus::client` (so that the `gos-bus` command can publish
//! too); this crate is the stable name Rust programs depend on.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub use gos_bus::client::*;

/// The README's Rust examples, compiled as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
