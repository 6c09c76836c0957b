//! Atomics and thread hooks: `std` normally, `loom` under `--cfg loom` so that the ring
//! protocols are model-checked with exactly the code that runs in production.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

/// Gives the model scheduler to another thread while a loom model spins.
#[cfg(loom)]
#[inline]
pub(crate) fn spin_hint() {
    loom::thread::yield_now();
}
