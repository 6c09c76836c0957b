//! The ring protocols over heap memory laid out as a segment (records behind their atomic
//! views), with real threads: under Miri (`cargo +nightly miri test -p gos-bus-protocol --lib
//! ring::miri_tests`) this checks the unsafe views, the tables and the protocols for undefined
//! behaviour and data races; under a plain `cargo test` it checks what each scenario asserts.
//! Kept small: Miri runs them about a million times slower than native.

use super::broadcast::{self, ProducerCache, Read};
use super::entry::{self, Identity, Pin};
use super::work_queue::{self, Take};
use super::RingRef;
use crate::control::{ClientCtl, RingCtl, SlotCtl, Table};
use gos_layouts::segment::{ROLE_PUBLISHER, ROLE_SUBSCRIBER, ROLE_WORKER};
use gos_layouts::{ClientEntry, RingHeader, SlotHeader};
use std::sync::atomic::Ordering::*;

/// A ring's records on the heap, each behind its view, as a mapped segment holds them (the
/// payload is a word per slot, written through the slot's own atomic-free cell).
struct HeapRing {
    ctl: Box<RingCtl>,
    clients: Box<[ClientCtl]>,
    slots: Box<[SlotCtl]>,
    payload: Box<[std::cell::UnsafeCell<u64>]>,
}

// SAFETY: the views are Sync (atomics only); the payload cells are written only by the holder
// of a claimed slot and read only by the holder of a committed one, as the ring protocol
// orders (which is what Miri checks here).
unsafe impl Sync for HeapRing {}

fn zeroed<T: bytemuck::Zeroable, V>(n: usize) -> Box<[V]> {
    // The views are `repr(transparent)` over their records, so a zeroed record is a valid
    // view of a zeroed record.
    assert_eq!(std::mem::size_of::<T>(), std::mem::size_of::<V>());
    (0..n)
        .map(|_| {
            let record: T = bytemuck::Zeroable::zeroed();
            // SAFETY: V is a transparent UnsafeCell<T> (asserted same size); moving the record
            // into it is a plain bitwise move of an initialised T.
            unsafe { std::mem::transmute_copy::<T, V>(&std::mem::ManuallyDrop::new(record)) }
        })
        .collect()
}

impl HeapRing {
    fn new(capacity: usize, clients: usize, work_queue: bool) -> HeapRing {
        let ring = HeapRing {
            ctl: zeroed::<RingHeader, RingCtl>(1)
                .into_vec()
                .pop()
                .map(Box::new)
                .unwrap(),
            clients: zeroed::<ClientEntry, ClientCtl>(clients),
            slots: zeroed::<SlotHeader, SlotCtl>(capacity),
            payload: (0..capacity)
                .map(|_| std::cell::UnsafeCell::new(0))
                .collect(),
        };
        if work_queue {
            for (i, s) in ring.slots.iter().enumerate() {
                s.stamp().store(i as u64, Relaxed);
            }
        }
        ring
    }

    fn ring(&self) -> RingRef<'_> {
        RingRef {
            ctl: &self.ctl,
            clients: Table::from_slice(&self.clients),
            slots: Table::from_slice(&self.slots),
            capacity: self.slots.len() as u64,
        }
    }

    fn write(&self, seq: u64, v: u64) {
        // SAFETY: called by the holder of claimed sequence `seq` only (see `Sync` above).
        unsafe { *self.payload[self.ring().index(seq)].get() = v }
    }

    fn read(&self, seq: u64) -> u64 {
        // SAFETY: called by the holder of committed sequence `seq` only (see `Sync` above).
        unsafe { *self.payload[self.ring().index(seq)].get() }
    }
}

fn id(role: u32) -> Identity {
    Identity {
        role,
        pid: 1,
        start_time: 1,
        now_ns: 1,
        name: [0; 24],
    }
}

fn publish(h: &HeapRing, cache: &mut ProducerCache, v: u64) -> u64 {
    let r = h.ring();
    let s = loop {
        if let Some(s) = broadcast::try_claim_block(&r, cache, false) {
            break s;
        }
        std::thread::yield_now();
    };
    while !broadcast::is_writable(&r, s) {
        std::thread::yield_now();
    }
    h.write(s, v);
    broadcast::commit(&r, s, 8, false);
    s
}

#[test]
fn broadcast_block_across_threads_in_order() {
    let h = HeapRing::new(2, 2, false);
    let sub = entry::claim(&h.ring(), &id(ROLE_SUBSCRIBER)).unwrap();
    std::thread::scope(|t| {
        t.spawn(|| {
            let mut cache = ProducerCache::default();
            for v in 1..=6u64 {
                publish(&h, &mut cache, v * 10);
            }
        });
        let r = h.ring();
        let mut got = Vec::new();
        while got.len() < 6 {
            let c = entry::cursor(&r, sub.index);
            match broadcast::try_read_block(&r, sub.index, c) {
                Read::Message(s) => {
                    got.push(h.read(s));
                    broadcast::release(&r, sub.index, s);
                }
                Read::Skipped(_) => {}
                Read::Empty => std::thread::yield_now(),
            }
        }
        assert_eq!(got, [10, 20, 30, 40, 50, 60]);
    });
}

#[test]
fn overwrite_never_hands_out_a_view_being_written() {
    let h = HeapRing::new(2, 2, false);
    let sub = entry::claim(&h.ring(), &id(ROLE_SUBSCRIBER)).unwrap();
    std::thread::scope(|t| {
        t.spawn(|| {
            let r = h.ring();
            let mut cache = ProducerCache::default();
            for v in 1..=5u64 {
                let s = broadcast::claim_overwrite(&r, false);
                while !(broadcast::make_room(&r, &mut cache, s) && broadcast::is_writable(&r, s)) {
                    std::thread::yield_now();
                }
                h.write(s, v);
                broadcast::commit(&r, s, 8, false);
            }
        });
        let r = h.ring();
        let mut last = 0;
        for _ in 0..50 {
            if let Read::Message(s) = broadcast::try_read_overwrite(&r, sub.index) {
                let v = h.read(s);
                assert_eq!(v, s + 1, "the view holds its own sequence");
                assert!(v > last);
                last = v;
                broadcast::release(&r, sub.index, s);
            }
            std::thread::yield_now();
        }
    });
}

#[test]
fn work_queue_across_threads_each_job_once() {
    let h = HeapRing::new(2, 3, true);
    let w = entry::claim(&h.ring(), &id(ROLE_WORKER)).unwrap();
    std::thread::scope(|t| {
        t.spawn(|| {
            let r = h.ring();
            for v in 1..=6u64 {
                let s = loop {
                    if let Some(s) = work_queue::try_claim(&r, false) {
                        break s;
                    }
                    std::thread::yield_now();
                };
                h.write(s, v);
                work_queue::commit(&r, s, 8, false, 0);
            }
        });
        let r = h.ring();
        let mut got = Vec::new();
        while got.len() < 6 {
            match work_queue::try_take(&r, w.lease()) {
                Take::Message(s) => {
                    got.push(h.read(s));
                    assert!(work_queue::release_taken(&r, s));
                }
                Take::Skipped(_) => {}
                Take::Empty => std::thread::yield_now(),
            }
        }
        assert_eq!(got, [1, 2, 3, 4, 5, 6]);
    });
}

#[test]
fn a_pinned_slot_is_passed_over_and_the_token_names_its_holder() {
    let h = HeapRing::new(2, 3, false);
    let r = h.ring();
    let a = entry::claim(&r, &id(ROLE_PUBLISHER)).unwrap();
    let b = entry::claim(&r, &id(ROLE_PUBLISHER)).unwrap();
    assert_eq!(entry::take_producer_token(&r, a), Ok(()));
    assert_eq!(entry::take_producer_token(&r, b), Err(a.index));
    // A stale claim of the same entry cannot give the token back.
    let stale = entry::Claim {
        generation: a.generation.wrapping_sub(1),
        ..a
    };
    entry::release_producer_token(&r, stale);
    assert_eq!(entry::take_producer_token(&r, b), Err(a.index));
    entry::release_producer_token(&r, a);
    assert_eq!(entry::take_producer_token(&r, b), Ok(()));

    // A claims sequence 0 and stalls; the broker pins it, takes the claim and skips it.
    let mut cache = ProducerCache::default();
    let s0 = broadcast::try_claim_block(&r, &mut cache, false).unwrap();
    entry::set_claim_marker(&r, a, Some(s0));
    let observed = entry::observe(&r, a.index);
    assert!(entry::reap_pinned(&r, a.index, observed, Pin::Seq(s0)));
    assert!(entry::take_claim(&r, a.index, s0, false));
    broadcast::commit(&r, s0, 0, true);
    assert!(!entry::end_claim(&r, a.index, s0), "A's late commit loses");
    assert!(entry::is_pinned(&r, 2) && !entry::is_pinned(&r, 1));
    assert!(entry::give_up(&r, a));
    assert!(!entry::is_pinned(&r, 2));
    assert_eq!(r.ctl.pins().load(Relaxed), 0);
}

/// The buffer each slot names.
fn buffers(h: &HeapRing) -> Vec<u32> {
    h.slots.iter().map(|s| s.buffer().load(Relaxed)).collect()
}

#[test]
fn hot_buffers_are_taken_newest_first_and_a_half_swap_is_repaired() {
    let h = HeapRing::new(4, 2, false);
    for (i, s) in h.slots.iter().enumerate() {
        s.buffer().store(i as u32, Relaxed);
    }
    let r = h.ring();
    let sub = entry::claim(&r, &id(ROLE_SUBSCRIBER)).unwrap().index;
    let mut cache = ProducerCache::default();
    let mut swapped = [false; 4];
    let mut publish_hot = |expect: u32| {
        let s = broadcast::try_claim_block(&r, &mut cache, true).unwrap();
        assert_eq!(broadcast::take_hot_buffer(&r, s, &mut swapped), expect);
        broadcast::commit(&r, s, 8, false);
        s
    };
    let receive = || {
        let c = entry::cursor(&r, sub);
        assert_eq!(broadcast::try_read_block(&r, sub, c), Read::Message(c));
        broadcast::release(&r, sub, c);
    };
    // Nothing released yet: sequence 0 keeps its own buffer.
    assert_eq!(publish_hot(0), 0);
    receive();
    // 0 released: 1 takes its buffer (the hottest), 0's slot gets 1's.
    assert_eq!(publish_hot(0), 1);
    assert_eq!(buffers(&h), [1, 0, 2, 3]);
    // The subscriber stalls on 1 (not released): 2 may not take 1's buffer, and 0's slot
    // was already given a cold one, so 2 keeps its own rather than take it back.
    assert_eq!(publish_hot(2), 2);
    assert_eq!(buffers(&h), [1, 0, 2, 3]);
    receive();
    receive();
    // 1 and 2 released: 3 takes 2's buffer, the newest.
    assert_eq!(publish_hot(2), 3);
    assert_eq!(buffers(&h), [1, 0, 3, 2]);
    // A publisher that died between its two stores (the donor's done, its own slot not):
    // buffer 0 named twice, 1 by nobody. The broker's repair gives the claimed slot the
    // missing buffer, and changes nothing on a permutation.
    h.slots[0].buffer().store(0, Relaxed);
    broadcast::repair_buffers(&r, 1);
    assert_eq!(buffers(&h), [0, 1, 3, 2]);
    broadcast::repair_buffers(&r, 2);
    assert_eq!(buffers(&h), [0, 1, 3, 2]);
}

#[test]
fn the_token_holder_holds_its_whole_batch_and_others_only_their_marker() {
    let h = HeapRing::new(8, 3, false);
    let r = h.ring();
    let holder = entry::claim(&r, &id(ROLE_PUBLISHER)).unwrap();
    let other = entry::claim(&r, &id(ROLE_PUBLISHER)).unwrap();
    entry::take_producer_token(&r, holder).unwrap();
    // The holder claimed a batch of 4 from sequence 2 (marker on the first).
    entry::set_claim_marker(&r, holder, Some(2));
    r.ctl.head().store(6, Relaxed);
    for seq in 2..6 {
        assert!(
            entry::held_by_live_publisher(&r, seq),
            "{seq} is the holder's"
        );
    }
    assert!(!entry::held_by_live_publisher(&r, 1));
    // Another publisher's marker names its one sequence only.
    entry::set_claim_marker(&r, holder, None);
    entry::set_claim_marker(&r, other, Some(3));
    assert!(entry::held_by_live_publisher(&r, 3));
    assert!(!entry::held_by_live_publisher(&r, 4));
}

/// A reaped subscriber pins the slots from its cursor to the end of the batch it announced,
/// and the slot after (one at a time: its cursor's slot and the next); a hostile pin word
/// never panics the producers' check.
#[test]
fn a_reaped_subscriber_pins_its_announced_batch() {
    let h = HeapRing::new(16, 2, false);
    let r = h.ring();
    let sub = entry::claim(&r, &id(ROLE_SUBSCRIBER)).unwrap();
    let pinned = |r: &RingRef<'_>| {
        (0..16u64)
            .filter(|&s| entry::is_pinned(r, s))
            .collect::<Vec<_>>()
    };
    // One message at a time (nothing announced): the cursor's slot and the next.
    let observed = entry::observe(&r, sub.index);
    assert!(entry::reap_pinned(&r, sub.index, observed, Pin::Cursor));
    assert_eq!(pinned(&r), [0, 1]);
    assert!(!entry::announce_batch(&r, sub, 3), "reaped: read nothing");
    assert!(entry::give_up(&r, sub));
    assert_eq!(pinned(&r), Vec::<u64>::new());

    // A batch of 4 from cursor 5: slots 5..=8, and 9 after it.
    let sub = entry::claim(&r, &id(ROLE_SUBSCRIBER)).unwrap();
    r.clients.get(sub.index).cursor().store(5, Relaxed);
    assert!(entry::announce_batch(&r, sub, 9));
    let observed = entry::observe(&r, sub.index);
    assert!(entry::reap_pinned(&r, sub.index, observed, Pin::Cursor));
    assert_eq!(pinned(&r), [5, 6, 7, 8, 9]);
    assert!(
        entry::is_pinned(&r, 16 + 5),
        "the next lap of a pinned slot"
    );

    // Hostile words: index 0 with extra bits, an end announced far past the cursor.
    for word in [1 << 25, u32::MAX - 1, 0x7f << 25 | 3] {
        r.clients.get(sub.index).pinned().store(word, Relaxed);
        let _ = pinned(&r);
    }
    assert!(entry::give_up(&r, sub));
    let sub = entry::claim(&r, &id(ROLE_SUBSCRIBER)).unwrap();
    assert!(entry::announce_batch(&r, sub, u64::MAX));
    let observed = entry::observe(&r, sub.index);
    assert!(entry::reap_pinned(&r, sub.index, observed, Pin::Cursor));
    assert_eq!(
        pinned(&r).len(),
        16,
        "clamped to the ring, never an overflow"
    );
    assert!(entry::give_up(&r, sub));
    assert_eq!(r.ctl.pins().load(Relaxed), 0);
}
