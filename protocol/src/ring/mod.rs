//! The lock-free ring protocols, written against atomic views of a segment so that the same
//! code runs over shared memory and under loom.
//!
//! - [`broadcast`]: multi-producer, multi-subscriber; every subscriber sees every message.
//! - [`work_queue`]: multi-producer, multi-consumer; each message is taken by one consumer.
//! - [`entry`]: the life of a client-table entry (claim, join, release, reap, leases, token).
//! - [`notify`]: the wake side of waiting (futex words in the header).
//!
//! Sequence numbers are 64-bit and never wrap in practice (at 10^9 messages a second they
//! last 584 years), so unlike rtrb's `0..2*capacity` indices no wrap handling is needed; the
//! slot of sequence `s` is `s & (capacity - 1)`.

pub mod broadcast;
pub mod entry;
pub mod notify;
pub mod work_queue;

use crate::control::{ClientCtl, RingCtl, SlotCtl, Table};

/// A view of one ring: header words, client table, slots.
#[derive(Clone, Copy)]
pub struct RingRef<'a> {
    /// Header words.
    pub ctl: &'a RingCtl,
    /// Client table.
    pub clients: Table<'a, ClientCtl>,
    /// Slot headers (each followed by its payload in a mapped segment).
    pub slots: Table<'a, SlotCtl>,
    /// Number of slots (a power of two).
    pub capacity: u64,
}

impl<'a> RingRef<'a> {
    /// The slot header of sequence `seq`.
    #[inline]
    pub fn slot(&self, seq: u64) -> &'a SlotCtl {
        self.slots.get((seq & (self.capacity - 1)) as usize)
    }

    /// Index of the slot of sequence `seq`.
    #[inline]
    pub fn index(&self, seq: u64) -> usize {
        (seq & (self.capacity - 1)) as usize
    }
}

/// Which ring protocol a segment runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Every subscriber sees every message.
    Broadcast,
    /// Each message is taken by exactly one consumer.
    WorkQueue,
}

impl Mode {
    /// The code of this mode in a segment or registry header.
    pub fn code(self) -> u32 {
        match self {
            Mode::Broadcast => gos_layouts::segment::MODE_BROADCAST,
            Mode::WorkQueue => gos_layouts::segment::MODE_WORK_QUEUE,
        }
    }

    /// The mode of a header code, if it is one.
    pub fn from_code(code: u32) -> Option<Mode> {
        match code {
            gos_layouts::segment::MODE_BROADCAST => Some(Mode::Broadcast),
            gos_layouts::segment::MODE_WORK_QUEUE => Some(Mode::WorkQueue),
            _ => None,
        }
    }
}

/// What a broadcast producer does when the slowest subscriber is a full ring behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Wait for the slowest subscriber.
    Block,
    /// Overwrite the oldest message; the subscriber that missed it counts a drop.
    OverwriteOldest,
}

impl Policy {
    /// The code of this policy in a segment or registry header.
    pub fn code(self) -> u32 {
        match self {
            Policy::Block => gos_layouts::segment::POLICY_BLOCK,
            Policy::OverwriteOldest => gos_layouts::segment::POLICY_OVERWRITE,
        }
    }

    /// The policy of a header code, if it is one.
    pub fn from_code(code: u32) -> Option<Policy> {
        match code {
            gos_layouts::segment::POLICY_BLOCK => Some(Policy::Block),
            gos_layouts::segment::POLICY_OVERWRITE => Some(Policy::OverwriteOldest),
            _ => None,
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests;

#[cfg(all(test, not(loom)))]
mod miri_tests;
