//! The library half of the `gos-bus` command: what the operator's sub-commands show. The
//! binary (`src/bin/gos-bus/`) parses arguments and runs `serve`, `ls`, `inspect`, `monitor`,
//! `rts`, `bench` and `up` on top of this, the typed client and the broker.
//!
//! This is the top of the crate graph: nothing in the workspace but the tests depends on it.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod tools;
