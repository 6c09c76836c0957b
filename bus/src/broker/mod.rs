//! The broker: it owns a bus. It creates the rings of a manifest (or adopts the ones an
//! earlier broker left), publishes the registry, and supervises the clients: a client whose
//! process is gone, or whose heartbeat stopped, is reaped and what it held is reclaimed.

pub mod manifest;
pub mod reaper;
pub mod registry;
pub mod serve;

pub use manifest::Manifest;
pub use registry::Registry;
pub use serve::{clean, serve, ServeOptions, Summary};
