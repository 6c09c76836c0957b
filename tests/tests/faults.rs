//! Fault tests: real processes killed with SIGKILL while the real broker (run as its own
//! process) supervises the bus. Every message is counted.

use gos_bus_client::{Bus, Bytes};
use gos_bus_tests::peer::Peer;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
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

[[ring]]
name = "render.frames"
layout = "RenderFrame"
policy = "overwrite"
slots = 8
slot_size = "64KiB"
"#;

fn peer(args: &[&str]) -> Peer {
    Peer::spawn(PEER, args)
}

/// A bus served by a broker process, removed at the end.
struct Served {
    bus: String,
    manifest: std::path::PathBuf,
}

impl Served {
    fn new() -> (Served, Peer) {
        let s = Served::bare();
        let broker = s.broker();
        (s, broker)
    }

    fn bare() -> Served {
        static N: AtomicU32 = AtomicU32::new(0);
        let bus = format!(
            "f{}x{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let manifest = std::env::temp_dir().join(format!("gos-bus-{bus}.toml"));
        std::fs::write(&manifest, MANIFEST).unwrap();
        Served { bus, manifest }
    }

    fn broker(&self) -> Peer {
        self.broker_with(Stdio::inherit())
    }

    fn broker_with(&self, stderr: Stdio) -> Peer {
        self.broker_of(&self.manifest, stderr)
    }

    /// A broker serving `manifest`, once it has published the registry.
    fn broker_of(&self, manifest: &std::path::Path, stderr: Stdio) -> Peer {
        self.broker_liveness(manifest, stderr, LIVENESS_MS)
    }

    /// A broker with liveness timeout `liveness_ms`.
    fn broker_liveness(&self, manifest: &std::path::Path, stderr: Stdio, liveness_ms: u64) -> Peer {
        Peer::spawn_with(
            PEER,
            &[
                "broker",
                &self.bus,
                manifest.to_str().unwrap(),
                &liveness_ms.to_string(),
            ],
            stderr,
        )
        .ready()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = gos_bus_broker::clean(&self.bus, true);
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
    loan.commit().unwrap();
}

#[test]
fn producer_killed_200_times_loses_no_committed_message() {
    let (s, broker) = Served::new();
    let consumer = peer(&["consume-runs", &s.bus, "frames"]).ready();
    let seed = std::process::id() as u64 | 1;
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    for run in 0..200u64 {
        let p = peer(&["produce-forever", &s.bus, "frames", &run.to_string()]).ready();
        std::thread::sleep(Duration::from_micros(rng.below(20_000)));
        p.kill();
    }
    // The ring flows again: a new producer gets its message through within the timeout.
    publish_end(&s.bus, "frames");
    let out = consumer.finish();
    let received: u64 = out.parse().unwrap();
    assert!(
        received > 200,
        "the producers got messages through ({received})"
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
    let holder = peer(&["hold", &s.bus, "small"]).ready();
    // 100 messages through an 8-slot block ring: the producer blocks on the holder.
    let producer = peer(&["produce", &s.bus, "small", "0", "100", "0"]);
    std::thread::sleep(Duration::from_millis(300));
    let mut producer = producer;
    assert!(
        producer.child.try_wait().unwrap().is_none(),
        "the producer is held back by the subscriber"
    );
    // The producer finishing is the event: the ring flowed again once the holder died.
    holder.kill();
    producer.finish();
    broker.stop();
}

#[test]
fn job_of_a_killed_worker_goes_to_another_worker() {
    let (s, broker) = Served::new();
    let a = peer(&["hold", &s.bus, "jobs"]).ready();
    {
        let b = Bus::attach(&s.bus).unwrap();
        let mut p = b.publisher::<Bytes>("jobs").unwrap();
        let mut loan = p.loan().unwrap();
        loan.set_len(gos_bus_tests::MESSAGE_LEN).unwrap();
        gos_bus_tests::encode(loan.bytes_mut(), 7, 42);
        loan.commit().unwrap();
    }
    let mut a = a;
    assert_eq!(a.line(), "holding 7:42");
    a.kill();
    let b = peer(&["take-one", &s.bus, "jobs"]).ready();
    assert_eq!(b.finish(), "7:42:2", "the same job, on its second delivery");
    broker.stop();
}

#[test]
fn broker_killed_under_load_and_restarted_loses_nothing() {
    let (s, broker) = Served::new();
    let n: u64 = 200_000;
    let consumer = peer(&["consume", &s.bus, "frames", "1"]).ready();
    let producer = peer(&["produce", &s.bus, "frames", "0", &n.to_string(), "1"]);
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

/// A broker that restarts over the rings and registry of a dead one must never leave the bus
/// without a registry: a client attaching meanwhile finds the old registry or the new one.
/// (The restarted broker used to remove the stale registry first and publish its own only
/// after adopting and creating every ring; here a 256 MiB ring makes that gap wide.)
#[test]
fn restarted_broker_never_leaves_the_bus_without_a_registry() {
    let (s, first) = Served::new();
    first.kill();
    let bigger = std::env::temp_dir().join(format!("gos-bus-{}-big.toml", s.bus));
    std::fs::write(
        &bigger,
        format!("{MANIFEST}\n[[ring]]\nname = \"big\"\nslots = 4\nslot_size = \"64MiB\"\n"),
    )
    .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (bus, stop) = (s.bus.clone(), stop.clone());
        std::thread::spawn(move || {
            let (mut attached, mut refused) = (0u64, Vec::new());
            // Attach again and again until the new broker is up (and a little after).
            loop {
                let done = stop.load(Ordering::Relaxed);
                match Bus::attach(&bus) {
                    Ok(_) => attached += 1,
                    Err(e) => refused.push(e.to_string()),
                }
                if done {
                    return (attached, refused);
                }
            }
        })
    };
    // Let the watcher see the dead broker's registry first.
    while !std::path::Path::new(&format!("/dev/shm/gos.{}", s.bus)).exists() {
        std::thread::yield_now();
    }
    let second = s.broker_of(&bigger, Stdio::inherit());
    let snap = gos_bus::tools::snapshot::take(&s.bus);
    stop.store(true, Ordering::Relaxed);
    let (attached, refused) = watcher.join().unwrap();
    std::fs::remove_file(&bigger).unwrap();
    assert!(attached > 0, "the watcher attached at least once");
    assert!(
        refused.is_empty(),
        "{} of {} attaches were refused while the broker restarted, first: {}",
        refused.len(),
        refused.len() as u64 + attached,
        refused[0]
    );
    let broker = snap.broker.expect("the restarted broker's registry");
    assert_eq!(broker.status, "running");
    assert_eq!(broker.pid, second.child.id());
    second.stop();
}

fn scribble(path: &str, offset: u64, len: usize, rng: &mut Rng) {
    use std::os::unix::fs::FileExt;
    let bytes: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(&bytes, offset).unwrap();
}

#[test]
fn hostile_bytes_in_registry_and_ring_headers_are_errors_naming_the_segment() {
    use gos_bus::tools::snapshot;
    let s = Served::bare();
    let mut broker = s.broker_with(Stdio::piped());
    let mut broker_log = BufReader::new(broker.child.stderr.take().unwrap());
    let ring_path = format!("/dev/shm/gos.{}.frames", s.bus);
    let reg_path = format!("/dev/shm/gos.{}", s.bus);
    let mut rng = Rng(0x5eed_1234_abcd_ef01);

    // A ring header overwritten by this (other) process: the broker reports it, by path.
    scribble(&ring_path, 0, 512, &mut rng);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = false;
    while Instant::now() < deadline && !seen {
        let mut line = String::new();
        broker_log.read_line(&mut line).unwrap();
        seen = line.contains(&format!("segment {ring_path} is damaged"));
    }
    assert!(seen, "the broker names the damaged segment");
    assert!(
        broker.child.try_wait().unwrap().is_none(),
        "the broker keeps running"
    );

    for round in 0..20 {
        scribble(&ring_path, 0, 512, &mut rng);
        // clients
        let e = Bus::standalone(&s.bus).unwrap().open_ring("frames").err();
        let e = e.expect("a scribbled header is refused").to_string();
        assert!(e.contains(&ring_path), "round {round}: {e}");
        // monitor and inspect
        let snap = snapshot::take(&s.bus);
        let ring = snap.rings.iter().find(|r| r.name == "frames").unwrap();
        assert!(
            ring.error.as_deref().unwrap_or("").contains(&ring_path),
            "{ring:?}"
        );
        assert!(gos_bus_protocol::Segment::open_read_only(&s.bus, "frames").is_err());
        // the registry, scribbled after its first bytes (then from byte 0)
        scribble(&reg_path, if round % 2 == 0 { 0 } else { 8 }, 256, &mut rng);
        let e = Bus::attach(&s.bus)
            .expect_err("a scribbled registry is refused")
            .to_string();
        assert!(e.contains(&reg_path), "round {round}: {e}");
        let snap = snapshot::take(&s.bus);
        assert!(snap
            .registry_error
            .as_deref()
            .unwrap_or("")
            .contains(&reg_path));
    }
    // The other rings are untouched and still work.
    let b = Bus::standalone(&s.bus).unwrap();
    let sub = b.subscriber::<Bytes>("small").unwrap();
    b.publisher::<Bytes>("small")
        .unwrap()
        .send_bytes(b"still fine")
        .unwrap();
    assert_eq!(
        sub.recv_timeout(Duration::from_secs(1)).unwrap().bytes(),
        b"still fine"
    );
    drop(broker_log);
    broker.kill();
}

#[test]
fn monitor_screen_shows_a_live_bus() {
    use gos_bus::tools::monitor::Monitor;
    use gos_bus_client::RenderFrame;
    use ratatui::backend::TestBackend;
    use ratatui::crossterm::event::KeyCode;
    use ratatui::Terminal;

    let (s, broker) = Served::new();
    let bus = Bus::attach(&s.bus).unwrap();
    let sub = bus.subscriber::<RenderFrame>("render.frames").unwrap();
    let mut p = bus.publisher::<RenderFrame>("render.frames").unwrap();
    for i in 0..3u32 {
        let mut loan = p.loan().unwrap();
        let f = loan.header_mut();
        f.magic = *b"GFRM";
        f.version = RenderFrame::VERSION;
        f.width = 640 + i;
        f.height = 480;
        loan.commit().unwrap();
    }
    drop(sub.recv().unwrap());

    let mut mon = Monitor::new(&s.bus);
    std::thread::sleep(Duration::from_millis(100));
    mon.refresh();
    // Select render.frames (rings are sorted by name: frames, jobs, render.frames, small).
    assert!(mon.key(KeyCode::Down) && mon.key(KeyCode::Down));
    let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
    term.draw(|f| mon.render(f)).unwrap();
    let screen: String = term
        .backend()
        .buffer()
        .content()
        .chunks(80)
        .map(|row| row.iter().map(|c| c.symbol()).collect::<String>() + "\n")
        .collect();
    let me = std::process::id().to_string();
    for needle in [
        format!("bus {}", s.bus),
        "broker pid".to_string(),
        "render.frames".into(),
        "RenderFrame".into(),
        "bcast".into(),
        "workq".into(),
        "publisher".into(),
        "subscriber".into(),
        format!("pid {me}"),
        "lag     2".into(),
        "width=642".into(),
        "q quit".into(),
    ] {
        assert!(
            screen.contains(&needle),
            "{needle:?} missing from:\n{screen}"
        );
    }
    assert_eq!(screen.lines().count(), 24, "fits 80x24");
    // Sorting changes the title; q quits.
    assert!(mon.key(KeyCode::Char('s')));
    term.draw(|f| mon.render(f)).unwrap();
    let title: String = term.backend().buffer().content()[80..160]
        .iter()
        .chain(&term.backend().buffer().content()[160..240])
        .map(|c| c.symbol())
        .collect();
    assert!(title.contains("sorted by rate"), "{title}");
    assert!(!mon.key(KeyCode::Char('q')));
    drop(p);
    drop(sub);
    broker.stop();
}

#[test]
fn clean_refuses_a_live_broker_and_removes_a_dead_one() {
    let (s, broker) = Served::new();
    let e = gos_bus_broker::clean(&s.bus, true).expect_err("a live broker holds the bus");
    assert!(
        e.to_string()
            .contains(&format!("already has a broker (pid {})", broker.child.id())),
        "{e}"
    );
    broker.kill(); // dies without stopping: its registry still says running
    let removed = gos_bus_broker::clean(&s.bus, false).unwrap();
    assert_eq!(
        removed.len(),
        6,
        "four rings, the registry and the broker lock: {removed:?}"
    );
    assert!(gos_bus::tools::snapshot::take(&s.bus).rings.is_empty());
    let e = Bus::attach(&s.bus).expect_err("nothing left");
    assert!(e.to_string().contains("is not running"), "{e}");
}

/// Two brokers started at the same moment on one bus: exactly one serves, the other exits
/// non-zero naming it, and `clean` refuses while it serves. (Staleness used to be judged from
/// the registry's state word, so both could stay up, one adopting the other's rings.)
#[test]
fn two_brokers_started_together_exactly_one_serves() {
    let s = Served::bare();
    let args = |m: &std::path::Path| {
        vec![
            "broker".to_string(),
            s.bus.clone(),
            m.to_str().unwrap().to_string(),
            LIVENESS_MS.to_string(),
        ]
    };
    for round in 0..5 {
        let a = args(&s.manifest);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let mut first = Peer::spawn_with(PEER, &a, Stdio::null());
        let mut second = Peer::spawn_with(PEER, &a, Stdio::null());
        let (l1, l2) = (first.line(), second.line());
        let (mut winner, mut loser, said) = match (l1.as_str(), l2.as_str()) {
            ("ready", _) => (first, second, l2),
            (_, "ready") => (second, first, l1),
            _ => panic!("round {round}: neither broker serves: {l1:?} / {l2:?}"),
        };
        let status = loser.child.wait().unwrap();
        assert!(
            !status.success(),
            "round {round}: the second broker exits non-zero"
        );
        let pid = winner.child.id();
        assert!(
            said.contains(&format!("bus '{}' already has a broker (pid {pid})", s.bus)),
            "round {round}: {said}"
        );
        assert!(
            winner.child.try_wait().unwrap().is_none(),
            "the winner serves on"
        );
        let e = gos_bus_broker::clean(&s.bus, true).expect_err("clean refuses a served bus");
        assert!(e.to_string().contains(&format!("(pid {pid})")), "{e}");
        assert!(
            std::path::Path::new(&format!("/dev/shm/gos.{}.frames", s.bus)).exists(),
            "the served rings stay"
        );
        if round % 2 == 0 {
            winner.stop();
        } else {
            // Killed: the kernel drops its lock, and the next round starts on its rings.
            winner.child.kill().unwrap();
            winner.child.wait().unwrap();
        }
        drop(loser);
    }
}

#[test]
fn silent_client_is_reaped_after_the_liveness_timeout() {
    let (s, broker) = Served::new();
    let holder = peer(&["hold", &s.bus, "small"]).ready();
    let producer = peer(&["produce", &s.bus, "small", "0", "100", "0"]);
    std::thread::sleep(Duration::from_millis(200));
    // Stop the subscriber without killing it: its heartbeats stop, its process stays.
    let pid = holder.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap()
        .success());
    let t = Instant::now();
    producer.finish();
    let waited = t.elapsed();
    // Not before the liveness timeout (a lower bound holds on a loaded machine too; how
    // soon after it is the benchmarks' business, not a test's).
    assert!(
        waited >= Duration::from_millis(LIVENESS_MS / 2),
        "reaped for silence after {waited:?}"
    );
    let _ = Command::new("kill").args(["-CONT", &pid]).status();
    holder.kill();
    broker.stop();
}

fn signal(peer: &Peer, sig: &str) {
    let pid = peer.child.id().to_string();
    assert!(Command::new("kill")
        .args([sig, &pid])
        .status()
        .unwrap()
        .success());
}

/// Waits until the broker of `bus` has reaped `n` clients (an event, not a time: the bound
/// only keeps a broken build from hanging the suite).
fn wait_reaped(bus: &str, n: u64) {
    let give_up = Instant::now() + Duration::from_secs(60);
    while gos_bus_protocol::registry::open(bus)
        .unwrap()
        .header
        .clients_reaped
        < n
    {
        assert!(
            Instant::now() < give_up,
            "the broker never reaped the client"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A paused publisher holds a loan on an overwrite-oldest ring of 8 slots: another
/// publisher's 8th loan needs that very slot. Its timeout must be honoured (it spun, at full
/// CPU, until the broker reaped the paused one), sleeping rather than spinning; and once the
/// paused one resumes and commits, the claim the timeout left is loaned at once.
#[test]
fn loans_return_by_their_deadline_while_a_paused_writer_holds_the_slot() {
    let s = Served::bare();
    // A liveness far beyond the test: whatever returns, returns by its deadline.
    let broker = s.broker_liveness(&s.manifest, Stdio::inherit(), 600_000);
    let mut a = peer(&["loan-hold", &s.bus, "render.frames"]);
    assert_eq!(a.line(), "loaned 0");
    signal(&a, "-STOP");
    let bus = Bus::attach(&s.bus).unwrap();
    let mut b = bus.publisher::<Bytes>("render.frames").unwrap();
    for i in 1..8u64 {
        let mut loan = b.loan().unwrap();
        assert_eq!(loan.seq(), i);
        loan.set_len(gos_bus_tests::MESSAGE_LEN).unwrap();
        gos_bus_tests::encode(loan.bytes_mut(), 1, i);
        loan.commit().unwrap();
    }
    let (wall, cpu) = (Instant::now(), gos_bus_protocol::proc::thread_cpu_time());
    match b.loan_timeout(Duration::from_millis(400)) {
        Err(gos_bus_client::Error::Timeout(t)) => assert_eq!(t, Duration::from_millis(400)),
        Err(e) => panic!("expected a timeout, got {e}"),
        Ok(l) => panic!("loaned sequence {} over a held slot", l.seq()),
    }
    let (wall, cpu) = (
        wall.elapsed(),
        gos_bus_protocol::proc::thread_cpu_time() - cpu,
    );
    assert!(
        wall >= Duration::from_millis(400),
        "returned early: {wall:?}"
    );
    assert!(
        cpu * 4 < wall,
        "the wait slept: {cpu:?} of CPU in {wall:?} of waiting"
    );
    assert!(matches!(
        b.loan_timeout(Duration::ZERO),
        Err(gos_bus_client::Error::Timeout(_))
    ));
    // The paused writer resumes and commits: the claim left by the timeout is loaned now.
    signal(&a, "-CONT");
    a.say("go");
    assert_eq!(a.finish(), "1");
    let loan = b.loan_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(loan.seq(), 8, "the claim the timeout kept");
    loan.commit().unwrap();
    broker.stop();
}

/// A publisher paused with a loan until the broker reaps it, then resumed: its late commit
/// returns Reaped and publishes nothing, and the bytes it writes after the reap land in a
/// slot the broker pinned, never over a newer message (they used to: its commit returned OK
/// and it wrote over the message that reused the slot).
#[test]
fn paused_publisher_is_reaped_and_its_late_writes_touch_no_newer_message() {
    let (s, broker) = Served::new();
    let bus = Bus::attach(&s.bus).unwrap();
    let sub = bus.subscriber::<Bytes>("small").unwrap();
    let mut a = peer(&["loan-hold", &s.bus, "small"]);
    assert_eq!(a.line(), "loaned 0");
    signal(&a, "-STOP");
    wait_reaped(&s.bus, 1);
    let mut b = bus.publisher::<Bytes>("small").unwrap();
    let mut seqs = Vec::new();
    // Nine messages through 8 slots, read as they come: the ninth lap of slot 0 is pinned.
    for i in 1..=9u64 {
        let mut loan = b.loan_timeout(Duration::from_secs(30)).unwrap();
        seqs.push(loan.seq());
        loan.set_len(gos_bus_tests::MESSAGE_LEN).unwrap();
        gos_bus_tests::encode(loan.bytes_mut(), 1, i);
        loan.commit().unwrap();
        let m = sub.recv_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(gos_bus_tests::decode(m.bytes()).unwrap(), (1, i));
    }
    assert_eq!(
        seqs,
        [1, 2, 3, 4, 5, 6, 7, 9, 10],
        "sequence 8 (slot 0) passed over"
    );
    // Resumed: it overwrites its old payload and commits.
    signal(&a, "-CONT");
    a.say("go");
    let said = a.line();
    assert!(
        said.starts_with("error commit:") && said.contains("reaped"),
        "{said}"
    );
    assert!(!a.child.wait().unwrap().success());
    // Every message still in the ring is intact, and slot 0 carries the skip, not A's bytes.
    let seg = gos_bus_protocol::Segment::open_read_only(&s.bus, "small").unwrap();
    let r = seg.ring();
    for seq in 3..=10u64 {
        let slot = r.slot(seq);
        let stamp = slot.stamp().load(Ordering::Acquire);
        assert_eq!(
            stamp,
            seq + 1,
            "sequence {seq} committed once, never regressed"
        );
        let skipped = slot.flags().load(Ordering::Relaxed) & gos_layouts::segment::SLOT_SKIPPED;
        if seq == 8 {
            assert_ne!(skipped, 0, "the pinned slot's lap is a skip");
            continue;
        }
        // SAFETY: a committed slot of a ring nobody writes now; `MESSAGE_LEN` bytes of it.
        let bytes =
            unsafe { std::slice::from_raw_parts(seg.payload_ptr(seq), gos_bus_tests::MESSAGE_LEN) };
        assert!(gos_bus_tests::decode(bytes).is_ok(), "sequence {seq}");
    }
    assert_eq!(
        r.ctl.pins().load(Ordering::Relaxed),
        0,
        "its exit unpinned the slot"
    );
    // And the ring flows on through slot 0.
    for i in 10..=12u64 {
        let mut loan = b.loan_timeout(Duration::from_secs(30)).unwrap();
        loan.set_len(gos_bus_tests::MESSAGE_LEN).unwrap();
        gos_bus_tests::encode(loan.bytes_mut(), 1, i);
        loan.commit().unwrap();
        let m = sub.recv_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(gos_bus_tests::decode(m.bytes()).unwrap(), (1, i));
    }
    drop((b, sub));
    broker.stop();
}

/// A client in another PID namespace (a container without `--pid=host`) registered with a pid
/// the broker could not see and was reaped at once as "process gone". Now attach refuses it,
/// saying what to do. Needs `unshare` (root or user namespaces); where the machine refuses
/// one, the test says so and checks nothing else.
#[test]
fn a_client_in_another_pid_namespace_is_refused_at_attach() {
    let (s, broker) = Served::new();
    let probe = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .status();
    if !probe.map(|st| st.success()).unwrap_or(false) {
        eprintln!("unshare --pid is not permitted on this machine: nothing to check");
        broker.stop();
        return;
    }
    let out = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", PEER, "attach", &s.bus])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "refused: {said}");
    assert!(
        said.contains("another PID namespace") && said.contains("--pid=host"),
        "{said}"
    );
    // In the broker's namespace the same attach works.
    let here = Command::new(PEER)
        .args(["attach", &s.bus])
        .output()
        .unwrap();
    assert!(
        here.status.success(),
        "{}",
        String::from_utf8_lossy(&here.stdout)
    );
    broker.stop();
}

/// A manifest whose start fails half way (its second ring exists with another geometry)
/// leaves nothing it created behind: the first ring, made by this start, is removed again.
#[test]
fn a_start_that_fails_half_way_removes_the_rings_it_created() {
    let s = Served::bare();
    let manifest = std::env::temp_dir().join(format!("gos-bus-{}-half.toml", s.bus));
    std::fs::write(
        &manifest,
        "[[ring]]\nname = \"a.first\"\nslots = 4\nslot_size = 64\n\n[[ring]]\nname = \"b.second\"\nslots = 8\nslot_size = 64\n",
    )
    .unwrap();
    // b.second already exists, with 4 slots: the start must refuse to adopt it.
    let existing = gos_bus_protocol::RingConfig {
        slot_count: 4,
        slot_size: 64,
        ..Default::default()
    };
    let b = Bus::standalone(&s.bus).unwrap();
    b.create_ring("b.second", &existing).unwrap();
    let mut broker = Peer::spawn_with(
        PEER,
        &["broker", &s.bus, manifest.to_str().unwrap(), "1000"],
        Stdio::null(),
    );
    let said = broker.line();
    assert!(said.contains("already exists with"), "{said}");
    assert!(!broker.child.wait().unwrap().success());
    std::fs::remove_file(&manifest).unwrap();
    let rings = gos_bus_protocol::name::list_rings(&s.bus).unwrap();
    assert_eq!(
        rings,
        ["b.second"],
        "a.first removed, b.second left as it was"
    );
    b.remove_ring("b.second").unwrap();
}

/// A subscriber paused while it holds a view on an overwrite-oldest ring, until the broker
/// reaps it: producers go on (they pass over the pinned slot instead of waiting for it or
/// writing it), the view still shows its message when the subscriber resumes, and its next
/// receive says it was reaped. (Its entry used to be freed, and producers then wrote the slot
/// under the view.)
#[test]
fn paused_subscriber_keeps_its_view_and_producers_pass_it_by() {
    let (s, broker) = Served::new();
    let mut holder = peer(&["hold-verify", &s.bus, "render.frames"]).ready();
    let bus = Bus::attach(&s.bus).unwrap();
    let mut p = bus.publisher::<Bytes>("render.frames").unwrap();
    let send = |p: &mut gos_bus_client::Publisher<Bytes>, i: u64| {
        let mut loan = p.loan_timeout(Duration::from_secs(30)).unwrap();
        loan.set_len(gos_bus_tests::MESSAGE_LEN).unwrap();
        gos_bus_tests::encode(loan.bytes_mut(), 1, i);
        loan.commit().unwrap();
    };
    send(&mut p, 0);
    assert_eq!(holder.line(), "holding 1:0");
    signal(&holder, "-STOP");
    wait_reaped(&s.bus, 1);
    // Five laps of the 8-slot ring: every loan succeeds, none over the held slot.
    for i in 1..=40 {
        send(&mut p, i);
    }
    signal(&holder, "-CONT");
    holder.say("go");
    assert_eq!(holder.finish(), "intact, then reaped");
    let seg = gos_bus_protocol::Segment::open_read_only(&s.bus, "render.frames").unwrap();
    assert_eq!(
        seg.ring().ctl.pins().load(Ordering::Relaxed),
        0,
        "unpinned on release"
    );
    drop(p);
    broker.stop();
}
