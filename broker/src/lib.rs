//! The broker: it owns a bus. It creates the rings of a manifest (or adopts the ones an
//! earlier broker left), publishes the registry, and supervises the clients: a client whose
//! process is gone, or whose heartbeat stopped, is reaped and what it held is reclaimed.
//!
//! Built on `gos-bus-protocol` only (it never goes through the typed client): [`manifest`]
//! (the TOML manifest and the embedded Geometry OS default), [`reaper`] (reclaim, through the
//! protocol's entry lifecycle), [`serve`] (`gos-bus serve` and `gos-bus clean`).
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod manifest;
pub mod reaper;
pub mod serve;

pub use manifest::Manifest;
pub use serve::{clean, schemas_json, serve, ServeOptions, Summary};
