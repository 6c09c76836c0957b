//! `gos-bus-peer`: one side of a cross-process test. Spawned by the tests as a real process.
//!
//! Its commands are [`USAGE`] (`gos-bus-peer --help`).
//! `idle` blocks in `recv_timeout` and prints `ok received=CPU_MS`: the CPU time it used.
//! A consumer prints `ready` once attached, then `ok received=N` (or `error ...` and exits 1).

/// The commands, printed by `--help`.
const USAGE: &str = "\
gos-bus-peer produce BUS RING PRODUCER_ID COUNT ENDS\n\
gos-bus-peer consume BUS RING PRODUCERS [BITMAP_FILE]\n\
gos-bus-peer idle BUS RING MILLISECONDS\n\
gos-bus-peer produce-forever BUS RING RUN_ID      (until killed)\n\
gos-bus-peer produce-big BUS RING PRODUCER_ID COUNT (whole slots, as large as they come)\n\
gos-bus-peer consume-runs BUS RING                (until a message from producer END)\n\
gos-bus-peer hold BUS RING                        (takes one message, then holds it)\n\
gos-bus-peer slow BUS RING MS                     (reads one message every MS, forever)\n\
gos-bus-peer take-one BUS RING                    (prints `ok received=PRODUCER:SEQ:DELIVERIES`)\n\
gos-bus-peer broker BUS MANIFEST LIVENESS_MS      (the real broker; stops when stdin closes)\n\
gos-bus-peer hold-verify BUS RING                 (holds a view until a line on stdin, checks it)\n\
gos-bus-peer attach BUS                          (attaches as a client does: `ok received=0`)\n\
gos-bus-peer loan-hold BUS RING                   (loans a slot, prints `loaned SEQ`, waits for\n\
                                                  a line, then overwrites the payload and commits)\n\
";

use gos_bus_client::{Bus, Bytes, Error};
use gos_bus_tests::{decode, encode, END, MESSAGE_LEN};
use std::io::Write;
use std::time::Duration;

/// A subscriber of `ring` on `bus`, announced with `ready` once attached.
fn subscribe(bus: &str, ring: &str) -> Result<gos_bus_client::Subscriber<Bytes>, String> {
    let bus = Bus::standalone(bus).map_err(|e| e.to_string())?;
    let sub = bus.subscriber::<Bytes>(ring).map_err(|e| e.to_string())?;
    println!("ready");
    std::io::stdout().flush().ok();
    Ok(sub)
}

fn produce(bus: &str, ring: &str, id: u64, count: u64, ends: u64) -> Result<(), String> {
    let bus = Bus::standalone(bus).map_err(|e| e.to_string())?;
    let mut p = bus.publisher::<Bytes>(ring).map_err(|e| e.to_string())?;
    for seq in (0..count).chain((0..ends).map(|_| END)) {
        let mut loan = p
            .loan_timeout(Duration::from_secs(60))
            .map_err(|e| format!("loan {seq}: {e}"))?;
        loan.set_len(MESSAGE_LEN).map_err(|e| e.to_string())?;
        encode(loan.bytes_mut(), id, seq);
        loan.commit().map_err(|e| format!("commit {seq}: {e}"))?;
    }
    Ok(())
}

fn consume(bus: &str, ring: &str, producers: usize, bitmap: Option<&str>) -> Result<u64, String> {
    let bus = Bus::standalone(bus).map_err(|e| e.to_string())?;
    let sub = bus.subscriber::<Bytes>(ring).map_err(|e| e.to_string())?;
    let work_queue = sub.ring().segment().geometry().mode == gos_bus_client::Mode::WorkQueue;
    println!("ready");
    std::io::stdout().flush().ok();
    let mut next = vec![0u64; producers];
    let mut ended = vec![false; producers];
    let mut bits: Vec<u8> = Vec::new();
    let mut received = 0u64;
    loop {
        let msg = match sub.recv_timeout(Duration::from_secs(60)) {
            Ok(m) => m,
            Err(Error::Timeout(_)) => {
                return Err(format!(
                    "no message for 60 s after {received}; expected seq {next:?}"
                ))
            }
            Err(e) => return Err(e.to_string()),
        };
        let (p, seq) = decode(msg.bytes())?;
        drop(msg);
        let p = p as usize;
        if p >= producers {
            return Err(format!("message from unknown producer {p}"));
        }
        if seq == END {
            ended[p] = true;
            if work_queue || ended.iter().all(|&e| e) {
                break;
            }
            continue;
        }
        if work_queue {
            // Competing consumers: our share comes in increasing order; the test checks the
            // union of every worker's bitmap for exactly-once delivery.
            if seq < next[p] {
                return Err(format!("producer {p}: seq {seq} after {}", next[p]));
            }
            next[p] = seq + 1;
            let (byte, bit) = ((seq / 8) as usize, seq % 8);
            if bits.len() <= byte {
                bits.resize(byte + 1, 0);
            }
            bits[byte] |= 1 << bit;
        } else if seq != next[p] {
            return Err(format!(
                "producer {p}: expected seq {} got {seq} ({})",
                next[p],
                if seq > next[p] {
                    "lost messages"
                } else {
                    "duplicate"
                }
            ));
        } else {
            next[p] += 1;
        }
        received += 1;
    }
    if let Some(path) = bitmap {
        std::fs::write(path, &bits).map_err(|e| format!("write {path}: {e}"))?;
    }
    Ok(received)
}

/// CPU time (user + system) this process has used, in milliseconds.
fn cpu_ms() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = &stat[stat.rfind(')').map_or(0, |i| i + 1)..];
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the command name.
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    ticks * 10 // USER_HZ is 100 on Linux
}

fn idle(bus: &str, ring: &str, ms: u64) -> Result<u64, String> {
    let sub = subscribe(bus, ring)?;
    let before = cpu_ms();
    let outcome = match sub.recv_timeout(Duration::from_millis(ms)) {
        Err(Error::Timeout(_)) => Ok(cpu_ms() - before),
        Ok(_) => Err("a message arrived on an idle ring".into()),
        Err(e) => Err(e.to_string()),
    };
    outcome
}

fn produce_forever(bus: &str, ring: &str, run: u64) -> Result<u64, String> {
    let bus = Bus::standalone(bus).map_err(|e| e.to_string())?;
    let mut p = bus.publisher::<Bytes>(ring).map_err(|e| e.to_string())?;
    println!("ready");
    std::io::stdout().flush().ok();
    for seq in 0.. {
        let mut loan = p
            .loan_timeout(Duration::from_secs(30))
            .map_err(|e| format!("loan {seq}: {e}"))?;
        loan.set_len(MESSAGE_LEN).map_err(|e| e.to_string())?;
        encode(loan.bytes_mut(), run, seq);
        loan.commit().map_err(|e| e.to_string())?;
    }
    Ok(0)
}

fn produce_big(bus: &str, ring: &str, id: u64, count: u64) -> Result<u64, String> {
    let bus = Bus::standalone(bus).map_err(|e| e.to_string())?;
    let mut p = bus.publisher::<Bytes>(ring).map_err(|e| e.to_string())?;
    let size = p.slot_size();
    for seq in 0..count {
        let mut loan = p
            .loan_timeout(Duration::from_secs(60))
            .map_err(|e| format!("loan {seq}: {e}"))?;
        loan.set_len(size).map_err(|e| e.to_string())?;
        encode(loan.bytes_mut(), id, seq);
        loan.commit().map_err(|e| e.to_string())?;
    }
    Ok(count)
}

/// Receives messages of many producer runs (one after another, each killed at a random
/// point) and checks that each run's messages arrive as an unbroken prefix 0, 1, 2, ...:
/// every committed message arrives, none twice, none torn. Stops at a message from run END.
fn consume_runs(bus: &str, ring: &str) -> Result<u64, String> {
    let sub = subscribe(bus, ring)?;
    let mut next: std::collections::HashMap<u64, u64> = Default::default();
    let mut received = 0u64;
    loop {
        let msg = sub
            .recv_timeout(Duration::from_secs(60))
            .map_err(|e| format!("after {received} messages: {e}"))?;
        let (run, seq) = decode(msg.bytes())?;
        drop(msg);
        if run == END {
            break;
        }
        let want = next.entry(run).or_insert(0);
        if seq != *want {
            return Err(format!("run {run}: expected seq {want}, got {seq}"));
        }
        *want += 1;
        received += 1;
    }
    println!("runs={}", next.len());
    Ok(received)
}

fn hold(bus: &str, ring: &str) -> Result<u64, String> {
    let sub = subscribe(bus, ring)?;
    let msg = sub
        .recv_timeout(Duration::from_secs(60))
        .map_err(|e| e.to_string())?;
    let (p, seq) = decode(msg.bytes())?;
    println!("holding {p}:{seq}");
    std::io::stdout().flush().ok();
    std::thread::sleep(Duration::from_secs(3600));
    drop(msg);
    Ok(0)
}

/// Takes one message and holds its view until a line arrives on stdin (the test pauses and
/// resumes it meanwhile), then checks the view still shows that message, releases it, and
/// expects its next receive to say it was reaped.
fn hold_verify(bus: &str, ring: &str) -> Result<String, String> {
    let sub = subscribe(bus, ring)?;
    let msg = sub
        .recv_timeout(Duration::from_secs(60))
        .map_err(|e| e.to_string())?;
    let held = decode(msg.bytes())?;
    println!("holding {}:{}", held.0, held.1);
    std::io::stdout().flush().ok();
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    let now = decode(msg.bytes()).map_err(|e| format!("the held view changed: {e}"))?;
    if now != held {
        return Err(format!("the held view now shows {now:?}, not {held:?}"));
    }
    drop(msg);
    let next = match sub.try_recv() {
        Err(Error::Reaped { .. }) => Ok("intact, then reaped".into()),
        Err(e) => Err(format!("expected Reaped, got {e}")),
        Ok(_) => Err("received after being reaped".into()),
    };
    next
}

fn slow(bus: &str, ring: &str, ms: u64) -> Result<u64, String> {
    let sub = subscribe(bus, ring)?;
    loop {
        drop(sub.recv().map_err(|e| e.to_string())?);
        std::thread::sleep(Duration::from_millis(ms));
    }
}

fn take_one(bus: &str, ring: &str) -> Result<String, String> {
    let sub = subscribe(bus, ring)?;
    let msg = sub
        .recv_timeout(Duration::from_secs(30))
        .map_err(|e| e.to_string())?;
    let (p, seq) = decode(msg.bytes())?;
    Ok(format!("{p}:{seq}:{}", msg.deliveries()))
}

/// A publisher that stalls holding a loan: the test pauses it (SIGSTOP) and resumes it.
/// After the line on stdin it writes the whole payload again (a late writer) and commits.
fn loan_hold(bus: &str, ring: &str) -> Result<u64, String> {
    let bus = Bus::standalone(bus).map_err(|e| e.to_string())?;
    let mut p = bus.publisher::<Bytes>(ring).map_err(|e| e.to_string())?;
    let mut loan = p.loan().map_err(|e| e.to_string())?;
    loan.set_len(MESSAGE_LEN).map_err(|e| e.to_string())?;
    encode(loan.bytes_mut(), 9, 0);
    println!("loaned {}", loan.seq());
    std::io::stdout().flush().ok();
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    loan.slot_mut().fill(0xAA);
    loan.commit().map_err(|e| format!("commit: {e}"))?;
    Ok(1)
}

fn broker(bus: &str, manifest: &str, liveness_ms: u64) -> Result<u64, String> {
    use gos_bus_broker::{serve, Manifest, ServeOptions};
    let manifest = Manifest::load(std::path::Path::new(manifest)).map_err(|e| e.to_string())?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        let mut sink = String::new();
        while std::io::stdin()
            .read_line(&mut sink)
            .map(|n| n > 0)
            .unwrap_or(false)
        {}
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let opts = ServeOptions {
        bus: bus.into(),
        manifest,
        liveness: Duration::from_millis(liveness_ms),
        scan_every: Duration::from_millis(20),
        remove_on_exit: false,
    };
    let mut said_ready = false;
    let summary = serve(&opts, &stop, |line| {
        eprintln!("broker: {line}");
        // Ready once the registry is published (the broker's "serving bus ..." line).
        if !said_ready && line.starts_with("serving bus") {
            println!("ready");
            std::io::stdout().flush().ok();
            said_ready = true;
        }
    })
    .map_err(|e| e.to_string())?;
    Ok(summary.reaped)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let num = |i: usize| arg(i).parse::<u64>().unwrap_or(0);
    let result = match arg(1) {
        "produce" => produce(arg(2), arg(3), num(4), num(5), num(6)).map(|_| 0),
        "consume" => consume(
            arg(2),
            arg(3),
            num(4) as usize,
            args.get(5).map(String::as_str),
        ),
        "idle" => idle(arg(2), arg(3), num(4)),
        "produce-forever" => produce_forever(arg(2), arg(3), num(4)),
        "produce-big" => produce_big(arg(2), arg(3), num(4), num(5)),
        "consume-runs" => consume_runs(arg(2), arg(3)),
        "hold" => hold(arg(2), arg(3)),
        "slow" => slow(arg(2), arg(3), num(4)),
        "take-one" => match take_one(arg(2), arg(3)) {
            Ok(s) => {
                println!("ok received={s}");
                return;
            }
            Err(e) => Err(e),
        },
        "broker" => broker(arg(2), arg(3), num(4)),
        "loan-hold" => loan_hold(arg(2), arg(3)),
        "attach" => Bus::attach(arg(2)).map(|_| 0).map_err(|e| e.to_string()),
        "hold-verify" => match hold_verify(arg(2), arg(3)) {
            Ok(s) => {
                println!("ok received={s}");
                return;
            }
            Err(e) => Err(e),
        },
        "-h" | "--help" => {
            // The module's documentation is the usage.
            println!("{USAGE}");
            Ok(0)
        }
        _ => Err(format!(
            "unknown command '{}' (gos-bus-peer --help lists them)",
            arg(1)
        )),
    };
    // The test may have stopped reading (it failed): ignore a closed stdout.
    let mut out = std::io::stdout();
    match result {
        Ok(n) => {
            let _ = writeln!(out, "ok received={n}");
        }
        Err(e) => {
            let _ = writeln!(out, "error {e}");
            std::process::exit(1);
        }
    }
}
