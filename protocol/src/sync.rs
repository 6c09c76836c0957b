//! Atomics and thread hooks: `std` normally, `loom` under `--cfg loom` so that the ring
//! protocols are model-checked with exactly the code that runs in production.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

/// Gives the CPU (or, under loom, the model scheduler) to another thread while spinning.
#[inline]
pub(crate) fn spin_hint(round: u32) {
    #[cfg(loom)]
    {
        let _ = round;
        loom::thread::yield_now();
    }
    #[cfg(not(loom))]
    {
        if round < 64 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}
