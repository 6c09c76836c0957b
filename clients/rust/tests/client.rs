//! The typed client over real shared memory, within one process (the cross-process claims are
//! tested with separate processes in the `gos-bus-tests` crate).

use gos_bus_client::*;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

struct Scratch {
    bus: Bus,
    rings: Vec<String>,
}

impl Scratch {
    fn new() -> Scratch {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "c{}x{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        Scratch {
            bus: Bus::standalone(&name).unwrap(),
            rings: vec![],
        }
    }

    fn ring(&mut self, name: &str, cfg: RingConfig) -> Ring {
        let r = self.bus.create_ring(name, &cfg).unwrap();
        self.rings.push(name.into());
        r
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for r in &self.rings {
            let _ = self.bus.remove_ring(r);
        }
    }
}

fn frames(slots: u32, policy: Policy) -> RingConfig {
    RingConfig {
        slot_count: slots,
        slot_size: (size_of::<RenderFrame>() + 64 * 64 * 4) as u32,
        layout: RenderFrame::SCHEMA,
        policy,
        ..RingConfig::default()
    }
}

#[test]
fn typed_publish_and_receive_in_place() {
    let mut s = Scratch::new();
    let ring = s.ring("render.frames", frames(4, Policy::Block));
    let sub = ring.subscriber::<RenderFrame>().unwrap();
    let mut publisher = ring.publisher::<RenderFrame>().unwrap();
    let mut loan = publisher.loan().unwrap();
    let loan_addr = loan.slot_mut().as_ptr() as usize;
    *loan.header_mut() = RenderFrame {
        magic: *b"GFRM",
        version: RenderFrame::VERSION,
        width: 64,
        height: 64,
        stride: 256,
        pixel_offset: size_of::<RenderFrame>() as u32,
        pixel_bytes: 64 * 64 * 4,
        ..bytemuck::Zeroable::zeroed()
    };
    loan.tail_mut()[..4].copy_from_slice(&[1, 2, 3, 4]);
    loan.set_tail_len(64 * 64 * 4).unwrap();
    loan.commit().unwrap();
    assert_eq!(publisher.published(), 1);

    let msg = sub.try_recv().unwrap().expect("a message");
    assert_eq!(msg.header().width, 64);
    assert_eq!(&msg.header().magic, b"GFRM");
    assert_eq!(&msg.tail()[..4], &[1, 2, 3, 4]);
    assert_eq!(msg.len(), size_of::<RenderFrame>() + 64 * 64 * 4);
    // Zero copy: the consumer's view is the very memory the producer wrote (same mapping
    // address here, since both sides share one mapping in this process).
    assert_eq!(msg.bytes().as_ptr() as usize, loan_addr);
    drop(msg);
    assert!(sub.try_recv().unwrap().is_none());
    assert_eq!(sub.received(), 1);
}

#[test]
fn layout_mismatch_names_both_layouts() {
    let mut s = Scratch::new();
    let ring = s.ring("render.frames", frames(4, Policy::Block));
    let e = ring.publisher::<DnaJob>().err().expect("refused");
    let text = e.to_string();
    assert!(matches!(e, Error::LayoutMismatch { .. }));
    assert!(
        text.contains("RenderFrame") && text.contains("DnaJob"),
        "{text}"
    );
    assert!(
        text.contains(&format!("{:#018x}", RenderFrame::FINGERPRINT)),
        "{text}"
    );
    assert!(
        text.contains(&format!("{:#018x}", DnaJob::FINGERPRINT)),
        "{text}"
    );
    assert!(ring.subscriber::<DnaJob>().is_err());
    // Raw bytes are accepted on any ring.
    assert!(ring.subscriber::<Bytes>().is_ok());
}

#[test]
fn payload_longer_than_slot_is_refused_on_both_sides() {
    let mut s = Scratch::new();
    let ring = s.ring(
        "small",
        RingConfig {
            slot_count: 2,
            slot_size: 64,
            ..RingConfig::default()
        },
    );
    let sub = ring.subscriber::<Bytes>().unwrap();
    let mut p = ring.publisher::<Bytes>().unwrap();
    let mut loan = p.loan().unwrap();
    let e = loan.set_len(65).unwrap_err();
    assert!(
        e.to_string()
            .contains("does not fit ring 'small' (slot size 64"),
        "{e}"
    );
    drop(loan); // an abandoned loan becomes a skipped slot

    // A buggy or hostile producer writes a length past the slot: the consumer refuses it.
    let mut loan = p.loan().unwrap();
    loan.set_len(8).unwrap();
    let seq = loan.seq();
    loan.commit().unwrap();
    let seg = ring.segment();
    seg.ring().slot(seq).len().store(1000, Ordering::Relaxed);
    let e = sub.try_recv().err().expect("refused");
    let text = e.to_string();
    assert!(
        text.contains("payload length 1000, larger than the slot size 64"),
        "{text}"
    );
    // The bad slot was released; the ring keeps flowing.
    p.send_bytes(b"fine").unwrap();
    assert_eq!(sub.try_recv().unwrap().unwrap().bytes(), b"fine");
}

#[test]
fn abandoned_loan_is_skipped() {
    let mut s = Scratch::new();
    let ring = s.ring("skip", RingConfig::default());
    let sub = ring.subscriber::<Bytes>().unwrap();
    let mut p = ring.publisher::<Bytes>().unwrap();
    drop(p.loan().unwrap());
    p.send_bytes(b"after").unwrap();
    let m = sub.recv_timeout(Duration::from_secs(1)).unwrap();
    assert_eq!(m.bytes(), b"after");
    assert_eq!(m.seq(), 1, "sequence 0 was the skipped slot");
}

#[test]
fn block_policy_waits_for_slowest_subscriber() {
    let mut s = Scratch::new();
    let ring = s.ring(
        "block",
        RingConfig {
            slot_count: 4,
            slot_size: 16,
            ..RingConfig::default()
        },
    );
    let sub = ring.subscriber::<Bytes>().unwrap();
    let mut p = ring.publisher::<Bytes>().unwrap();
    for i in 0..4u8 {
        p.send_bytes(&[i]).unwrap();
    }
    assert!(
        p.try_loan().is_none(),
        "ring full: the subscriber has read nothing"
    );
    let t = Instant::now();
    let e = p.loan_timeout(Duration::from_millis(50)).err().unwrap();
    assert!(matches!(e, Error::Timeout(_)));
    assert!(t.elapsed() >= Duration::from_millis(50));
    drop(sub.recv().unwrap());
    assert!(p.try_loan().is_some(), "one slot freed");
}

#[test]
fn overwrite_policy_counts_drops_and_keeps_newest() {
    let mut s = Scratch::new();
    let ring = s.ring(
        "ow",
        RingConfig {
            slot_count: 4,
            slot_size: 16,
            policy: Policy::OverwriteOldest,
            ..RingConfig::default()
        },
    );
    let sub = ring.subscriber::<Bytes>().unwrap();
    let mut p = ring.publisher::<Bytes>().unwrap();
    for i in 0..10u8 {
        p.send_bytes(&[i]).unwrap();
    }
    let got: Vec<u8> = (0..4).map(|_| sub.recv().unwrap().bytes()[0]).collect();
    assert_eq!(got, vec![6, 7, 8, 9]);
    assert_eq!(sub.dropped(), 6);
    assert!(sub.try_recv().unwrap().is_none());
}

#[test]
fn overwrite_never_moves_a_held_view() {
    let mut s = Scratch::new();
    let ring = s.ring(
        "held",
        RingConfig {
            slot_count: 2,
            slot_size: 16,
            policy: Policy::OverwriteOldest,
            ..RingConfig::default()
        },
    );
    let sub = ring.subscriber::<Bytes>().unwrap();
    let mut p = ring.publisher::<Bytes>().unwrap();
    p.send_bytes(&[1]).unwrap();
    p.send_bytes(&[2]).unwrap();
    let held = sub.try_recv().unwrap().unwrap();
    assert_eq!(held.bytes(), &[1]);
    // The next message needs slot 0 back: the loan must wait for the release (it times out
    // while the view is held, keeping its claim) and never overwrite the view.
    match p.loan_timeout(Duration::ZERO) {
        Err(gos_bus_client::Error::Timeout(_)) => {}
        Err(e) => panic!("expected a timeout, got {e}"),
        Ok(l) => panic!("loaned sequence {} over a held view", l.seq()),
    }
    assert_eq!(
        held.bytes(),
        &[1],
        "the view was not overwritten while held"
    );
    drop(held);
    let loan = p.loan_timeout(Duration::ZERO).unwrap();
    assert_eq!(loan.seq(), 2, "the claim kept by the timeout");
    drop(loan);
    let next = sub.recv_timeout(Duration::from_secs(1)).unwrap();
    assert_eq!(next.bytes(), &[2]);
}

#[test]
fn subscriber_sees_messages_after_it_attached() {
    let mut s = Scratch::new();
    let ring = s.ring("late", RingConfig::default());
    let mut p = ring.publisher::<Bytes>().unwrap();
    p.send_bytes(b"before").unwrap();
    let sub = ring.subscriber::<Bytes>().unwrap();
    assert!(sub.try_recv().unwrap().is_none());
    p.send_bytes(b"after").unwrap();
    assert_eq!(sub.try_recv().unwrap().unwrap().bytes(), b"after");
}

#[test]
fn iterator_and_wait_strategies() {
    let mut s = Scratch::new();
    let ring = s.ring("iter", RingConfig::default());
    for strategy in [
        WaitStrategy::BusyPoll,
        WaitStrategy::Block,
        WaitStrategy::SpinThenBlock { spins: 100 },
    ] {
        let sub = ring.subscriber::<Bytes>().unwrap();
        sub.set_wait_strategy(strategy);
        let r = ring.clone();
        let t = std::thread::spawn(move || {
            let mut p = r.publisher::<Bytes>().unwrap();
            for i in 0..100u32 {
                p.send_bytes(&i.to_le_bytes()).unwrap();
            }
        });
        let got: Vec<u32> = sub
            .iter()
            .take(100)
            .map(|m| u32::from_le_bytes(m.unwrap().bytes().try_into().unwrap()))
            .collect();
        assert_eq!(got, (0..100).collect::<Vec<_>>(), "{strategy:?}");
        t.join().unwrap();
        let t0 = Instant::now();
        let e = sub.recv_timeout(Duration::from_millis(30)).err().unwrap();
        assert!(
            matches!(e, Error::Timeout(d) if d == Duration::from_millis(30)),
            "{e}"
        );
        assert!(t0.elapsed() >= Duration::from_millis(30));
    }
}

#[test]
fn holding_two_messages_is_refused() {
    let mut s = Scratch::new();
    let ring = s.ring("two", RingConfig::default());
    let sub = ring.subscriber::<Bytes>().unwrap();
    let mut p = ring.publisher::<Bytes>().unwrap();
    p.send_bytes(b"a").unwrap();
    p.send_bytes(b"b").unwrap();
    let first = sub.try_recv().unwrap().unwrap();
    assert!(sub.try_recv().is_err());
    drop(first);
    assert_eq!(sub.try_recv().unwrap().unwrap().bytes(), b"b");
}

#[test]
fn work_queue_hands_each_job_to_one_worker() {
    let mut s = Scratch::new();
    let ring = s.ring(
        "jobs",
        RingConfig {
            mode: Mode::WorkQueue,
            slot_count: 8,
            slot_size: 16,
            ..RingConfig::default()
        },
    );
    let a = ring.subscriber::<Bytes>().unwrap();
    let b = ring.subscriber::<Bytes>().unwrap();
    let mut p = ring.publisher::<Bytes>().unwrap();
    for i in 0..8u8 {
        p.send_bytes(&[i]).unwrap();
    }
    assert!(p.try_loan().is_none(), "queue full");
    let mut got = Vec::new();
    for i in 0..8 {
        let w = if i % 2 == 0 { &a } else { &b };
        got.push(w.try_recv().unwrap().unwrap().bytes()[0]);
    }
    assert_eq!(got, (0..8).collect::<Vec<_>>());
    assert!(a.try_recv().unwrap().is_none() && b.try_recv().unwrap().is_none());
}

#[test]
fn client_table_full_is_a_clear_error() {
    let mut s = Scratch::new();
    let ring = s.ring(
        "tiny",
        RingConfig {
            max_clients: 2,
            ..RingConfig::default()
        },
    );
    let _a = ring.subscriber::<Bytes>().unwrap();
    let _b = ring.publisher::<Bytes>().unwrap();
    let e = ring.subscriber::<Bytes>().err().unwrap();
    assert!(
        e.to_string()
            .contains("no free client entry (2 clients attached)"),
        "{e}"
    );
    drop(_a);
    assert!(
        ring.subscriber::<Bytes>().is_ok(),
        "a freed entry is reused"
    );
}

#[test]
fn missing_ring_and_bad_names() {
    let e = Bus::attach("nobus").expect_err("no broker, no bus");
    assert!(matches!(e, Error::BusNotRunning { .. }));
    let text = e.to_string();
    assert!(
        text.contains("bus 'nobus' is not running (looked for /dev/shm/gos.nobus)")
            && text.contains("gos-bus serve --bus nobus"),
        "{text}"
    );
    let bus = Bus::standalone("nobus").unwrap();
    let e = bus.open_ring("render.frames").err().unwrap();
    assert!(e.to_string().contains("does not exist"), "{e}");
    assert!(Bus::standalone("a/b").is_err());
    assert!(bus.open_ring("../etc").is_err());
}

#[test]
fn single_producer_ring_admits_one_publisher_at_a_time() {
    let mut s = Scratch::new();
    let ring = s.ring(
        "solo",
        RingConfig {
            single_producer: true,
            ..RingConfig::default()
        },
    );
    let sub = ring.subscriber::<Bytes>().unwrap();
    let mut first = ring.publisher::<Bytes>().unwrap();
    let e = ring
        .publisher::<Bytes>()
        .err()
        .expect("second publisher refused");
    assert!(matches!(e, Error::ProducerBusy { .. }));
    assert!(
        e.to_string().contains(&format!(
            "already has a publisher (pid {})",
            std::process::id()
        )),
        "{e}"
    );
    first.send_bytes(b"one").unwrap();
    drop(first);
    let mut second = ring.publisher::<Bytes>().unwrap();
    second.send_bytes(b"two").unwrap();
    assert_eq!(sub.try_recv().unwrap().unwrap().bytes(), b"one");
    assert_eq!(sub.try_recv().unwrap().unwrap().bytes(), b"two");
}

#[test]
fn raw_loans_and_views_for_foreign_callers() {
    let mut s = Scratch::new();
    let ring = s.ring("raw", RingConfig::default());
    let sub = ring.subscriber::<Bytes>().unwrap();
    let mut p = ring.publisher::<Bytes>().unwrap();
    let loan = p.loan_raw(Some(Duration::from_secs(1))).unwrap();
    assert_eq!(loan.capacity, 4096);
    assert!(p.loan_raw(None).is_err(), "one raw loan at a time");
    // SAFETY: the raw loan gives `capacity` writable bytes until commit_raw.
    unsafe { std::ptr::copy_nonoverlapping(b"hello".as_ptr(), loan.ptr, 5) };
    assert!(p.commit_raw(5000).is_err(), "longer than the slot");
    p.commit_raw(5).unwrap();
    let m = sub.recv_raw(Some(Duration::from_secs(1))).unwrap();
    assert_eq!(
        m.ptr as usize, loan.ptr as usize,
        "the same memory, no copy"
    );
    // SAFETY: the raw view is valid for `len` bytes until release_raw.
    let got = unsafe { std::slice::from_raw_parts(m.ptr, m.len) };
    assert_eq!(got, b"hello");
    assert!(sub.try_recv().is_err(), "the raw message is still held");
    sub.release_raw().unwrap();
    let e = sub.recv_raw(Some(Duration::from_millis(20))).unwrap_err();
    assert!(matches!(e, Error::Timeout(_)));
    // An abandoned raw loan is skipped by consumers.
    p.loan_raw(None).unwrap();
    p.abandon_raw().unwrap();
    p.send_bytes(b"next").unwrap();
    assert_eq!(sub.recv().unwrap().bytes(), b"next");
}

/// A slot whose stamp no sequence of the ring can make (another process wrote it): a loan that
/// needs it fails as damage, naming the segment, instead of waiting forever; the broker's
/// stamp check reports the same; a hostile work-queue stamp makes a loan time out, never spin.
#[test]
fn a_stamp_no_producer_can_clear_is_damage_not_a_wait() {
    let mut s = Scratch::new();
    let ring = s.ring(
        "stamped",
        RingConfig {
            slot_count: 4,
            slot_size: 16,
            ..RingConfig::default()
        },
    );
    let mut p = ring.publisher::<Bytes>().unwrap();
    p.send_bytes(b"fine").unwrap();
    assert!(ring.segment().check_stamps().is_ok());
    // Slot 1 shows a stamp of another slot's lap.
    let r = ring.segment().ring();
    r.slots
        .get(1)
        .stamp()
        .store(4 * 1000 + 3, Ordering::Relaxed);
    let e = ring.segment().check_stamps().unwrap_err().to_string();
    assert!(e.contains("slot 1 has stamp 4003"), "{e}");
    match p.loan_timeout(Duration::from_secs(60)) {
        Err(Error::Corrupt { path, problem }) => {
            assert!(path.contains("stamped"), "{path}");
            assert!(
                problem.to_string().contains("can never let sequence 1"),
                "{problem}"
            );
        }
        Err(e) => panic!("expected damage, got {e}"),
        Ok(l) => panic!("loaned {} over a damaged slot", l.seq()),
    }

    let wq = s.ring(
        "stamped.jobs",
        RingConfig {
            mode: Mode::WorkQueue,
            slot_count: 4,
            slot_size: 16,
            ..RingConfig::default()
        },
    );
    wq.segment()
        .ring()
        .slots
        .get(0)
        .stamp()
        .store(1 << 40, Ordering::Relaxed);
    assert!(wq.segment().check_stamps().is_err());
    let mut p = wq.publisher::<Bytes>().unwrap();
    assert!(matches!(
        p.loan_timeout(Duration::from_millis(50)),
        Err(Error::Timeout(_))
    ));
}

/// Large slots of a single-producer ring (`RING_HOT_BUFFERS`): a subscriber that keeps up
/// gets every message intact, while the publisher writes into one or two hot buffers instead
/// of cycling through all 16 (the reason large messages got 1.6x faster).
#[test]
fn hot_buffers_reuse_the_newest_released_buffer_and_keep_every_message() {
    let mut s = Scratch::new();
    let size = 256 << 10;
    for (single, most) in [(true, 2), (false, 16)] {
        let name = if single { "hot" } else { "cycling" };
        let ring = s.ring(
            name,
            RingConfig {
                slot_count: 16,
                slot_size: size as u32,
                single_producer: single,
                ..RingConfig::default()
            },
        );
        assert_eq!(ring.segment().geometry().hot_buffers, single);
        let mut p = s.bus.publisher::<Bytes>(name).unwrap();
        let sub = s.bus.subscriber::<Bytes>(name).unwrap();
        let mut buffers = std::collections::HashSet::new();
        for i in 0..64u64 {
            let mut loan = p.loan().unwrap();
            loan.set_len(size).unwrap();
            buffers.insert(loan.bytes_mut().as_ptr() as usize);
            loan.bytes_mut().fill(i as u8);
            loan.bytes_mut()[..8].copy_from_slice(&i.to_le_bytes());
            loan.commit().unwrap();
            // Held while the next one is written: the buffer it reads is not the one reused.
            let m = sub.recv().unwrap();
            assert_eq!(m.seq(), i);
            assert_eq!(&m.bytes()[..8], &i.to_le_bytes());
            assert!(
                m.bytes()[8..].iter().all(|&b| b == i as u8),
                "message {i} intact"
            );
        }
        assert!(
            buffers.len() <= most,
            "{name}: {} buffers written, expected at most {most}",
            buffers.len()
        );
        if !single {
            assert_eq!(
                buffers.len(),
                16,
                "a multi-producer ring cycles through its slots"
            );
        }
    }
}

/// A subscriber that holds a message while the publisher goes on: the held message is never
/// overwritten, and messages published meanwhile arrive intact.
#[test]
fn hot_buffers_never_touch_a_held_message() {
    let mut s = Scratch::new();
    let size = 128 << 10;
    let ring = s.ring(
        "held",
        RingConfig {
            slot_count: 4,
            slot_size: size as u32,
            single_producer: true,
            ..RingConfig::default()
        },
    );
    assert!(ring.segment().geometry().hot_buffers);
    let mut p = s.bus.publisher::<Bytes>("held").unwrap();
    let sub = s.bus.subscriber::<Bytes>("held").unwrap();
    let send = |p: &mut Publisher<Bytes>, v: u8| {
        let mut loan = p.loan().unwrap();
        loan.set_len(size).unwrap();
        loan.bytes_mut().fill(v);
        loan.commit().unwrap();
    };
    let mut next = 0u8;
    for round in 0..20 {
        send(&mut p, next);
        let held = sub.recv().unwrap();
        // While it is held, the publisher fills the rest of the ring.
        for k in 1..4 {
            send(&mut p, next.wrapping_add(k));
        }
        assert!(
            held.bytes().iter().all(|&b| b == next),
            "round {round}: the held message was overwritten"
        );
        drop(held);
        for k in 1..4 {
            let m = sub.recv().unwrap();
            assert!(m.bytes().iter().all(|&b| b == next.wrapping_add(k)));
        }
        next = next.wrapping_add(4);
    }
}

fn spsc(slots: u32) -> RingConfig {
    RingConfig {
        slot_count: slots,
        slot_size: 64,
        single_producer: true,
        ..RingConfig::default()
    }
}

/// A batch is one claim and one commit: nothing of it is visible before the commit, all of
/// it after, in order; a dropped batch is skipped whole.
#[test]
fn a_batch_is_claimed_and_published_at_once() {
    let mut s = Scratch::new();
    s.ring("batch", spsc(16));
    let mut p = s.bus.publisher::<Bytes>("batch").unwrap();
    let sub = s.bus.subscriber::<Bytes>("batch").unwrap();
    let mut batch = p.loan_batch(5).unwrap();
    assert_eq!(batch.len(), 5);
    assert_eq!(batch.first_seq(), 0);
    for i in 0..5 {
        batch.set_len(i, 3).unwrap();
        batch.bytes_mut(i).copy_from_slice(&[i as u8; 3]);
    }
    assert!(batch.set_len(0, 65).is_err(), "over the slot size");
    assert!(
        sub.try_recv().unwrap().is_none(),
        "nothing before the commit"
    );
    batch.commit().unwrap();
    for i in 0..5u8 {
        let m = sub.try_recv().unwrap().expect("committed");
        assert_eq!(m.bytes(), &[i; 3]);
    }
    // Dropped uncommitted: skipped whole; the next message comes through.
    drop(p.loan_batch(4).unwrap());
    p.send_bytes(b"after").unwrap();
    assert_eq!(sub.recv().unwrap().bytes(), b"after");
    assert_eq!(
        p.published(),
        6,
        "skipped slots are not counted as published"
    );
    // A batch never holds more slots than are free: 16 - 0 behind = 16 here.
    assert_eq!(p.loan_batch(100).unwrap().len(), 16);
}

/// `send_many` publishes everything a consumer takes, in order, batch after batch; on a full
/// ring with nobody reading it stops at the timeout and says how many went out.
#[test]
fn send_many_publishes_in_batches_and_reports_a_timeout() {
    let mut s = Scratch::new();
    s.ring("many", spsc(16));
    let mut p = s.bus.publisher::<Bytes>("many").unwrap();
    let messages: Vec<Vec<u8>> = (0..1000u32).map(|i| i.to_le_bytes().to_vec()).collect();
    let bus = &s.bus;
    // Subscribed before anything is sent (a subscriber sees what comes after it joins).
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::scope(|t| {
        t.spawn(move || {
            let sub = bus.subscriber::<Bytes>("many").unwrap();
            ready_tx.send(()).unwrap();
            for i in 0..1000u32 {
                assert_eq!(sub.recv().unwrap().bytes(), i.to_le_bytes());
            }
        });
        ready_rx.recv().unwrap();
        assert_eq!(p.send_many(&messages, None).unwrap(), 1000);
    });
    let _sub = s.bus.subscriber::<Bytes>("many").unwrap();
    // Nobody reads now: 16 slots, then the timeout.
    let sent = p
        .send_many(&messages[..40], Some(Duration::from_millis(50)))
        .unwrap();
    assert_eq!(sent, 16);
    assert!(matches!(
        p.send_many(&[vec![0u8; 65]], None),
        Err(Error::PayloadTooLarge { len: 65, .. })
    ));
    // A multi-producer ring batches one slot at a time, with the same result.
    s.ring(
        "multi",
        RingConfig {
            single_producer: false,
            ..spsc(16)
        },
    );
    let mut p = s.bus.publisher::<Bytes>("multi").unwrap();
    let sub = s.bus.subscriber::<Bytes>("multi").unwrap();
    assert_eq!(p.loan_batch(8).unwrap().len(), 1);
    assert_eq!(p.send_many(&messages[..10], None).unwrap(), 10);
    for i in 0..10u32 {
        assert_eq!(sub.recv().unwrap().bytes(), i.to_le_bytes());
    }
}

/// A subscriber takes the waiting messages as one batch (at most a quarter of the ring), reads
/// them in place, in order, and releases them with one cursor store when the batch drops:
/// until then producers find those slots taken. Skipped slots are not messages.
#[test]
fn a_batch_is_received_and_released_at_once() {
    let mut s = Scratch::new();
    s.ring("rbatch", spsc(64));
    let mut p = s.bus.publisher::<Bytes>("rbatch").unwrap();
    let sub = s.bus.subscriber::<Bytes>("rbatch").unwrap();
    let now = Some(Duration::ZERO);
    let all: Vec<[u8; 4]> = (0..64u32).map(u32::to_le_bytes).collect();
    assert_eq!(p.send_many(&all, now).unwrap(), 64);
    assert!(sub.recv_batch(0, now).is_err(), "a batch of nothing");
    let batch = sub.recv_batch(1000, now).unwrap();
    assert_eq!(batch.len(), 16, "a quarter of 64 slots");
    for (i, m) in batch.iter().enumerate() {
        assert_eq!(
            (m.seq(), m.bytes()),
            (i as u64, &(i as u32).to_le_bytes()[..])
        );
    }
    assert!(batch.get(16).is_none());
    assert!(sub.try_recv().is_err(), "one batch held at a time");
    assert_eq!(p.send_many(&all[..1], now).unwrap(), 0, "full while held");
    assert_eq!(sub.received(), 0, "counted at the release");
    drop(batch);
    assert_eq!(sub.received(), 16);
    assert_eq!(
        p.send_many(&all, now).unwrap(),
        16,
        "16 slots came back at once"
    );

    // A skipped slot (a loan dropped uncommitted) inside a batch is passed over.
    drop(sub);
    let sub2 = s.bus.subscriber::<Bytes>("rbatch").unwrap();
    p.send_bytes(b"a").unwrap();
    drop(p.loan().unwrap());
    p.send_bytes(b"b").unwrap();
    let batch = sub2.recv_batch(8, now).unwrap();
    let got: Vec<Vec<u8>> = batch.iter().map(|m| m.bytes().to_vec()).collect();
    assert_eq!(got, [b"a".to_vec(), b"b".to_vec()]);
    drop(batch);
    assert_eq!(sub2.received(), 2, "the skip is not a message");
    assert!(matches!(sub2.recv_batch(8, now), Err(Error::Timeout(_))));
}

/// A subscriber is `Send`: made on one thread, it receives (a batch too) on another.
#[test]
fn a_subscriber_moves_to_another_thread() {
    let mut s = Scratch::new();
    s.ring("moved", spsc(16));
    let mut p = s.bus.publisher::<Bytes>("moved").unwrap();
    let sub = s.bus.subscriber::<Bytes>("moved").unwrap();
    p.send_many(&[b"one", b"two"], None).unwrap();
    let got = std::thread::spawn(move || {
        let batch = sub.recv_batch(4, Some(Duration::from_secs(10))).unwrap();
        batch.iter().map(|m| m.bytes().to_vec()).collect::<Vec<_>>()
    })
    .join()
    .unwrap();
    assert_eq!(got, [b"one".to_vec(), b"two".to_vec()]);
}
