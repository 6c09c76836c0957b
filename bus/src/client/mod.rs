//! The typed Rust client of gos-bus: attach to a ring by bus and name, loan a slot, write in
//! place, commit; receive a view of a slot and release it by dropping it. No copy on the way.
//!
//! ```no_run
//! use gos_bus::client::{Bus, RenderFrame};
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
//! # Ok::<(), gos_bus::Error>(())
//! ```
mod bus;
mod layout;
mod publisher;
mod registration;
mod subscriber;

pub use crate::{Error, Mode, Policy, Result, RingConfig, WaitStrategy};
pub use bus::{Bus, Ring};
pub use gos_layouts::{DnaJob, DnaResult, Record, RenderFrame, RtsTexture, Schema};
pub use layout::{Bytes, Layout};
pub use publisher::{Loan, Publisher, RawLoan};
pub use registration::HEARTBEAT_PERIOD;
pub use subscriber::{Iter, Message, RawMessage, Subscriber};
