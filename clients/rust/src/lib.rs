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
//! loan.commit()?;
//!
//! let subscriber = bus.subscriber::<RenderFrame>("render.frames")?;
//! for message in subscriber.iter().take(1) {
//!     let message = message?;
//!     println!("{} x {}", message.header().width, message.header().height);
//! }
//! # Ok::<(), gos_bus_client::Error>(())
//! ```
//!
//! Built on `gos-bus-protocol` (segments, rings, the client table) and nothing above it; the
//! broker and the command line depend on this crate, never the other way. With the `rts`
//! feature, [`rts`] decodes PixelRTS files straight into loaned slots; with `terminal`,
//! [`terminal`] turns text with ANSI escape sequences into the cells of a terminal window.
//!
//! Modules: [`Bus`] and [`Ring`] (`bus.rs`: attach, open, create), [`Publisher`] and [`Loan`]
//! (`publisher.rs`), [`Subscriber`], [`Message`] and [`Batch`] (`subscriber.rs`), the client's entry and
//! its heartbeat (`registration.rs`), and [`Layout`] (`layout.rs`: which record a ring carries).
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod bus;
mod client_name;
mod layout;
mod publisher;
mod registration;
#[cfg(feature = "rts")]
pub mod rts;
mod subscriber;
#[cfg(feature = "terminal")]
pub mod terminal;

pub use bus::{Bus, Ring};
pub use client_name::{set_client_name, CLIENT_NAME_MAX};
pub use gos_bus_protocol::{proc, Error, Mode, Policy, Result, RingConfig, WaitStrategy};
pub use gos_layouts::{DnaJob, DnaResult, Record, RenderFrame, RtsTexture, Schema};
pub use layout::{Bytes, Layout};
pub use publisher::{Loan, LoanBatch, Publisher, RawLoan};
pub use registration::HEARTBEAT_PERIOD;
pub use subscriber::{Batch, Iter, Message, RawMessage, Subscriber, View};

/// The README's Rust examples, compiled as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
