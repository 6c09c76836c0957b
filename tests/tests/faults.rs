//! Fault tests: real processes killed with SIGKILL while the real broker (run as its own
//! process) supervises the bus. Every message is counted.

use gos_bus_client::{Bus, Bytes};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const PEER: &str = env!("CARGO_BIN_EXE_gos-bus-peer");
const LIVENESS_MS: u64 = 1000;

const MANIFEST: &str = r#"
[[ring]]
name = "frames"
mode = "broadcast"
policy = "block"
slots = 64
slot_size = 64

[[ring]]
name = "small"
mode = "broadcast"
policy = "block"
slots = 8
slot_size = 64

[[ring]]
name = "jobs"
mode = "work-queue"
slots = 16
slot_size = 64
"#;

struct Peer {
    child: Child,
    out: BufReader<ChildStdout>,
    stdin: Option<ChildStdin>,
}

impl Peer {
    fn spawn(args: &[&str]) -> Peer {
        let mut child = Command::new(PEER)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn gos-bus-peer");
        let out = BufReader::new(child.stdout.take().unwrap());
        let stdin = child.stdin.take();
        Peer { child, out, stdin }
    }

    fn line(&mut self) -> String {
        let mut s = String::new();
        self.out.read_line(&mut s).unwrap();
        s.trim().to_string()
    }

    fn ready(mut self) -> Peer {
        let l = self.line();
        assert_eq!(l, "ready", "peer did not start: {l:?}");
        self
    }

    fn kill(mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }

    /// Waits for `ok received=...` and returns what follows.
    fn finish(mut self) -> String {
        let mut l = self.line();
        while !l.starts_with("ok ") && !l.starts_with("error ") && !l.is_empty() {
            l = self.line();
        }
        let status = self.child.wait().unwrap();
        assert!(status.success(), "peer failed: {l}");
        l.strip_prefix("ok received=").unwrap_or(&l).to_string()
    }

    fn stop(mut self) {
        drop(self.stdin.take()); // the broker stops when its stdin closes
        let status = self.child.wait().unwrap();
        assert!(status.success());
    }
}

/// A bus served by a broker process, removed at the end.
struct Served {
    bus: String,
    manifest: std::path::PathBuf,
}

impl Served {
    fn new() -> (Served, Peer) {
        static N: AtomicU32 = AtomicU32::new(0);
        let bus = format!(
            "f{}x{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let manifest = std::env::temp_dir().join(format!("gos-bus-{bus}.toml"));
        std::fs::write(&manifest, MANIFEST).unwrap();
        let s = Served { bus, manifest };
        let broker = s.broker();
        (s, broker)
    }

    fn broker(&self) -> Peer {
        Peer::spawn(&[
            "broker",
            &self.bus,
            self.manifest.to_str().unwrap(),
            &LIVENESS_MS.to_string(),
        ])
        .ready()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = gos_bus::broker::clean(&self.bus, true);
        let _ = std::fs::remove_file(&self.manifest);
    }
}

/// xorshift: random kill points without a dependency.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn publish_end(bus: &str, ring: &str) {
    let b = Bus::attach(bus).unwrap();
    let mut p = b.publisher::<Bytes>(ring).unwrap();
    let mut loan = p.loan_timeout(Duration::from_secs(10)).unwrap();
    loan.set_len(gos_bus_tests::MESSAGE_LEN).unwrap();
    gos_bus_tests::encode(loan.bytes_mut(), gos_bus_tests::END, 0);
    loan.commit();
}

#[test]
fn producer_killed_200_times_loses_no_committed_message() {
    let (s, broker) = Served::new();
    let consumer = Peer::spawn(&["consume-runs", &s.bus, "frames"]).ready();
    let seed = std::process::id() as u64 | 1;
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    for run in 0..200u64 {
        let p = Peer::spawn(&["produce-forever", &s.bus, "frames", &run.to_string()]).ready();
        std::thread::sleep(Duration::from_micros(rng.below(20_000)));
        p.kill();
    }
    // The ring flows again: a new producer gets its message through within the timeout.
    let t = Instant::now();
    publish_end(&s.bus, "frames");
    let out = consumer.finish();
    let received: u64 = out.parse().unwrap();
    assert!(
        received > 200,
        "the producers got messages through ({received})"
    );
    assert!(
        t.elapsed() < Duration::from_millis(LIVENESS_MS * 3),
        "ring flowed again after {:?}",
        t.elapsed()
    );
    // Every killed producer is reaped (the last ones within a scan or two).
    let deadline = Instant::now() + Duration::from_millis(LIVENESS_MS * 2);
    loop {
        let snap = gos_bus::tools::snapshot::take(&s.bus);
        let info = snap.broker.clone().unwrap();
        assert_eq!(info.status, "running");
        if info.clients_reaped >= 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every producer was reaped: {info:?} {:?}",
            snap.rings
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    broker.stop();
}

#[test]
fn killed_subscriber_stops_holding_back_a_block_ring() {
    let (s, broker) = Served::new();
    let holder = Peer::spawn(&["hold", &s.bus, "small"]).ready();
    // 100 messages through an 8-slot block ring: the producer blocks on the holder.
    let producer = Peer::spawn(&["produce", &s.bus, "small", "0", "100", "0"]);
    std::thread::sleep(Duration::from_millis(300));
    let mut producer = producer;
    assert!(
        producer.child.try_wait().unwrap().is_none(),
        "the producer is held back by the subscriber"
    );
    let t = Instant::now();
    holder.kill();
    producer.finish();
    assert!(
        t.elapsed() < Duration::from_millis(LIVENESS_MS),
        "producer resumed {:?} after the subscriber died",
        t.elapsed()
    );
    broker.stop();
}

#[test]
fn job_of_a_killed_worker_goes_to_another_worker() {
    let (s, broker) = Served::new();
    let a = Peer::spawn(&["hold", &s.bus, "jobs"]).ready();
    {
        let b = Bus::attach(&s.bus).unwrap();
        let mut p = b.publisher::<Bytes>("jobs").unwrap();
        let mut loan = p.loan().unwrap();
        loan.set_len(gos_bus_tests::MESSAGE_LEN).unwrap();
        gos_bus_tests::encode(loan.bytes_mut(), 7, 42);
        loan.commit();
    }
    let mut a = a;
    assert_eq!(a.line(), "holding 7:42");
    a.kill();
    let b = Peer::spawn(&["take-one", &s.bus, "jobs"]).ready();
    assert_eq!(b.finish(), "7:42:2", "the same job, on its second delivery");
    broker.stop();
}

#[test]
fn broker_killed_under_load_and_restarted_loses_nothing() {
    let (s, broker) = Served::new();
    let n: u64 = 200_000;
    let consumer = Peer::spawn(&["consume", &s.bus, "frames", "1"]).ready();
    let producer = Peer::spawn(&["produce", &s.bus, "frames", "0", &n.to_string(), "1"]);
    std::thread::sleep(Duration::from_millis(100));
    broker.kill();
    std::thread::sleep(Duration::from_millis(100));
    let broker = s.broker(); // adopts the rings
    producer.finish();
    assert_eq!(consumer.finish().parse::<u64>().unwrap(), n);
    let snap = gos_bus::tools::snapshot::take(&s.bus);
    assert_eq!(snap.broker.unwrap().status, "running");
    broker.stop();
    let _ = std::io::stdout().flush();
}
