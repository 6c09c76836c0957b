//! What a publisher or subscriber is typed with: a record, or raw [`Bytes`].

use gos_layouts::{Record, Schema};

/// A layout a ring can carry: every [`Record`], and [`Bytes`].
pub trait Layout {
    /// Its schema (name, size, fingerprint).
    const LAYOUT: Schema;
}

impl<T: Record> Layout for T {
    const LAYOUT: Schema = T::SCHEMA;
}

/// Raw bytes: a payload with no record header.
#[derive(Debug, Clone, Copy)]
pub struct Bytes;

impl Layout for Bytes {
    const LAYOUT: Schema = gos_layouts::BYTES;
}
