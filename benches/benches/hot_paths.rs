//! In-process micro-benchmarks of the client's hot paths on a real shared-memory ring
//! (criterion), so that a regression shows as a number: loan and commit a 64 B message, the
//! same with `send_bytes`, and a message's whole trip (loan, commit, receive, release).
//!
//! ```text
//! cargo bench -p gos-bus-bench --bench hot_paths            # all, about a minute
//! cargo bench -p gos-bus-bench --bench hot_paths -- commit  # the ones whose name matches
//! ```
//! The cross-process figures (round trips, throughput beside bare references and iceoryx2)
//! are `gos-bus-bench`'s; these stay in one process and one core, where criterion's
//! statistics see a change of a few nanoseconds.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gos_bus_client::{Bus, Bytes, Policy, RingConfig};
use std::hint::black_box;

const SIZE: usize = 64;

fn ring_config() -> RingConfig {
    RingConfig {
        slot_count: 1024,
        slot_size: SIZE as u32,
        policy: Policy::OverwriteOldest,
        single_producer: true,
        ..RingConfig::default()
    }
}

fn hot_paths(c: &mut Criterion) {
    let bus = Bus::standalone(&format!("crit{}", std::process::id())).expect("bus");
    let payload = [7u8; SIZE];
    let mut g = c.benchmark_group("64 B message");
    g.throughput(Throughput::Elements(1));

    // Publishing alone: no subscriber, so nothing holds the producer back.
    let ring = bus.create_ring("publish", &ring_config()).expect("ring");
    let mut publisher = ring.publisher::<Bytes>().expect("publisher");
    g.bench_function("loan + write + commit", |b| {
        b.iter(|| {
            let mut loan = publisher.loan().expect("loan");
            loan.set_len(SIZE).expect("length");
            loan.bytes_mut().copy_from_slice(black_box(&payload));
            loan.commit().expect("commit");
        })
    });
    g.bench_function("send_bytes (copy + commit)", |b| {
        b.iter(|| publisher.send_bytes(black_box(&payload)).expect("send"))
    });
    drop(publisher);
    drop(ring);
    let _ = bus.remove_ring("publish");

    // The whole trip: each message published, then received and released.
    let ring = bus.create_ring("trip", &ring_config()).expect("ring");
    let mut publisher = ring.publisher::<Bytes>().expect("publisher");
    let subscriber = ring.subscriber::<Bytes>().expect("subscriber");
    g.bench_function("loan + commit + receive + release", |b| {
        b.iter(|| {
            publisher.send_bytes(&payload).expect("send");
            let m = subscriber.try_recv().expect("receive").expect("a message");
            black_box(m.bytes()[SIZE - 1]);
        })
    });
    g.finish();
    drop((publisher, subscriber, ring));
    let _ = bus.remove_ring("trip");

    // Batches: 64 messages claimed and published at once (one store of `head`, one wake),
    // then received one by one, or as one batch; per message.
    const BATCH: usize = 64;
    let mut g = c.benchmark_group("64 B message, batches of 64");
    g.throughput(Throughput::Elements(BATCH as u64));
    let ring = bus
        .create_ring(
            "batch",
            &RingConfig {
                policy: Policy::Block,
                ..ring_config()
            },
        )
        .expect("ring");
    let mut publisher = ring.publisher::<Bytes>().expect("publisher");
    let subscriber = ring.subscriber::<Bytes>().expect("subscriber");
    let mut publish_batch = || {
        let mut batch = publisher.loan_batch(BATCH).expect("batch");
        for i in 0..batch.len() {
            batch.set_len(i, SIZE).expect("length");
            batch.bytes_mut(i).copy_from_slice(black_box(&payload));
        }
        batch.commit().expect("commit");
    };
    g.bench_function("loan_batch + write + commit + receive + release", |b| {
        b.iter(|| {
            publish_batch();
            while let Some(m) = subscriber.try_recv().expect("receive") {
                black_box(m.bytes()[SIZE - 1]);
            }
        })
    });
    // The same, received as one batch too: one cursor store for all 64.
    g.bench_function("loan_batch + write + commit + recv_batch + release", |b| {
        b.iter(|| {
            publish_batch();
            let got = subscriber
                .recv_batch(BATCH, Some(std::time::Duration::ZERO))
                .expect("receive");
            for m in got.iter() {
                black_box(m.bytes()[SIZE - 1]);
            }
        })
    });
    g.finish();
    drop((publisher, subscriber, ring));
    let _ = bus.remove_ring("batch");
}

criterion_group!(benches, hot_paths);
criterion_main!(benches);
