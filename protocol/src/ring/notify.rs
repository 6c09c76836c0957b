//! The producer and consumer halves of "wake only when someone sleeps".
//!
//! A sleeper registers (`waiters += 1`), issues a SeqCst fence, re-checks its condition and only
//! then sleeps on the futex word. A waker publishes its change, issues a SeqCst fence and reads
//! `waiters`. The two fences order the four accesses (Dekker): either the sleeper's re-check
//! sees the change, or the waker sees `waiters > 0` and bumps the futex word and wakes it.
//!
//! The fence costs a producer a full store-buffer drain per message, so it is paid only while
//! some attached consumer may sleep (`sleepy_consumers > 0`); busy-polling consumers never
//! register. A consumer that has just registered can be missed by a producer that read the
//! count a moment before, so its first sleeps are short (see `wait::REGISTRATION_GRACE`).

use super::RingRef;
use crate::sync::{fence, Ordering::*};

/// Called by a producer after it committed a message: wakes sleeping consumers, if any.
#[inline]
pub fn wake_consumers(ring: &RingRef<'_>) {
    if ring.ctl.sleepy_consumers().load(Relaxed) == 0 {
        return;
    }
    // Pairs with the SeqCst fence of the sleeper in `wait::wait_until` (see module docs).
    fence(SeqCst);
    if ring.ctl.data_waiters().load(Relaxed) != 0 {
        // Release: a woken consumer that reads the new futex value also sees the commit.
        ring.ctl.data_futex().fetch_add(1, Release);
        crate::wait::wake_all(ring.ctl.data_futex());
    }
}

/// Called by a consumer after it released a slot: wakes producers waiting for space, if any.
///
/// Deliberately without a fence, to keep the consumer's release path free of a full barrier:
/// a producer can miss this wake-up in a window of a few nanoseconds, so producers sleep in
/// bounded slices (see `wait::SPACE_SLICE`) and re-check.
#[inline]
pub fn wake_producers(ring: &RingRef<'_>) {
    if ring.ctl.space_waiters().load(Relaxed) != 0 {
        ring.ctl.space_futex().fetch_add(1, Release);
        crate::wait::wake_all(ring.ctl.space_futex());
    }
}
