//! Cross-process tests: real `gos-bus-peer` processes over real POSIX shared memory, counting
//! every message (sequence number and checksum in each).

use gos_bus_client::{Bus, Mode, Policy, RingConfig};
use gos_bus_tests::peer::Peer;
use std::sync::atomic::{AtomicU32, Ordering};

const PEER: &str = env!("CARGO_BIN_EXE_gos-bus-peer");
const MESSAGES: u64 = 1_000_000;

/// A bus with a unique name whose rings are removed when the test ends, pass or fail.
struct TestBus {
    bus: Bus,
    rings: Vec<String>,
}

impl TestBus {
    fn new() -> TestBus {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t{}x{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        TestBus {
            bus: Bus::standalone(&name).unwrap(),
            rings: Vec::new(),
        }
    }

    fn ring(&mut self, name: &str, cfg: RingConfig) {
        self.bus.create_ring(name, &cfg).unwrap();
        self.rings.push(name.into());
    }
}

impl Drop for TestBus {
    fn drop(&mut self) {
        for r in &self.rings {
            let _ = self.bus.remove_ring(r);
        }
    }
}

fn peer(args: &[&str]) -> Peer {
    Peer::spawn(PEER, args)
}

fn cfg(mode: Mode, slots: u32) -> RingConfig {
    RingConfig {
        mode,
        policy: Policy::Block,
        slot_count: slots,
        slot_size: 64,
        ..RingConfig::default()
    }
}

fn one_to_one(single_producer: bool) {
    let mut tb = TestBus::new();
    tb.ring(
        "spsc",
        RingConfig {
            single_producer,
            ..cfg(Mode::Broadcast, 4096)
        },
    );
    let bus = tb.bus.name().to_string();
    let c = peer(&["consume", &bus, "spsc", "1"]).ready();
    let p = peer(&["produce", &bus, "spsc", "0", &MESSAGES.to_string(), "1"]);
    p.finish();
    assert_eq!(c.count(), MESSAGES);
}

#[test]
fn one_producer_one_subscriber_million_messages() {
    one_to_one(false);
}

#[test]
fn single_producer_ring_million_messages() {
    one_to_one(true);
}

#[test]
fn two_producers_three_subscribers_broadcast() {
    let mut tb = TestBus::new();
    tb.ring("fanout", cfg(Mode::Broadcast, 4096));
    let bus = tb.bus.name().to_string();
    let subs: Vec<Peer> = (0..3)
        .map(|_| peer(&["consume", &bus, "fanout", "2"]).ready())
        .collect();
    let half = (MESSAGES / 2).to_string();
    let producers: Vec<Peer> = (0..2)
        .map(|id| peer(&["produce", &bus, "fanout", &id.to_string(), &half, "1"]))
        .collect();
    for p in producers {
        p.finish();
    }
    for s in subs {
        // Each subscriber checked per-producer order, no gap and no duplicate itself.
        assert_eq!(s.count(), MESSAGES);
    }
}

#[test]
fn one_producer_four_workers_exactly_once() {
    let mut tb = TestBus::new();
    tb.ring("jobs", cfg(Mode::WorkQueue, 4096));
    let bus = tb.bus.name().to_string();
    let dir = std::env::temp_dir().join(format!("gos-bus-wq-{}", bus));
    std::fs::create_dir_all(&dir).unwrap();
    let paths: Vec<String> = (0..4)
        .map(|i| {
            dir.join(format!("w{i}.bits"))
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let workers: Vec<Peer> = paths
        .iter()
        .map(|p| peer(&["consume", &bus, "jobs", "1", p]).ready())
        .collect();
    let p = peer(&["produce", &bus, "jobs", "0", &MESSAGES.to_string(), "4"]);
    p.finish();
    let total: u64 = workers.into_iter().map(Peer::count).sum();
    assert_eq!(total, MESSAGES, "every job taken once in total");
    let mut union = vec![0u8; (MESSAGES as usize).div_ceil(8)];
    for path in &paths {
        let bits = std::fs::read(path).unwrap();
        for (i, b) in bits.iter().enumerate() {
            assert_eq!(
                union[i] & b,
                0,
                "a job near seq {} went to two workers",
                i * 8
            );
            union[i] |= b;
        }
    }
    let taken: u64 = union.iter().map(|b| b.count_ones() as u64).sum();
    assert_eq!(taken, MESSAGES, "every job was taken by some worker");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn blocked_consumer_uses_under_one_percent_of_a_core() {
    let mut tb = TestBus::new();
    tb.ring("quiet", cfg(Mode::Broadcast, 64));
    let bus = tb.bus.name().to_string();
    let waited_ms = 5_000;
    let started = std::time::Instant::now();
    let c = peer(&["idle", &bus, "quiet", &waited_ms.to_string()]).ready();
    let cpu_ms = c.count();
    assert!(
        started.elapsed().as_millis() >= waited_ms as u128,
        "it waited the full timeout"
    );
    // Under 1% of a core over 5 s is under 50 ms of CPU time.
    assert!(
        cpu_ms < 50,
        "blocked consumer used {cpu_ms} ms of CPU in 5 s"
    );
}
