//! `gos-bus-peer`: one side of a cross-process test. Spawned by the tests as a real process.
//!
//! ```text
//! gos-bus-peer produce BUS RING PRODUCER_ID COUNT ENDS
//! gos-bus-peer consume BUS RING PRODUCERS [BITMAP_FILE]
//! gos-bus-peer idle BUS RING MILLISECONDS
//! ```
//! `idle` blocks in `recv_timeout` and prints `ok received=CPU_MS`: the CPU time it used.
//! A consumer prints `ready` once attached, then `ok received=N` (or `error ...` and exits 1).

use gos_bus_client::{Bus, Bytes, Error};
use gos_bus_tests::{decode, encode, END, MESSAGE_LEN};
use std::io::Write;
use std::time::Duration;

fn produce(bus: &str, ring: &str, id: u64, count: u64, ends: u64) -> Result<(), String> {
    let bus = Bus::standalone(bus).map_err(|e| e.to_string())?;
    let mut p = bus.publisher::<Bytes>(ring).map_err(|e| e.to_string())?;
    for seq in (0..count).chain((0..ends).map(|_| END)) {
        let mut loan = p
            .loan_timeout(Duration::from_secs(60))
            .map_err(|e| format!("loan {seq}: {e}"))?;
        loan.set_len(MESSAGE_LEN).map_err(|e| e.to_string())?;
        encode(loan.bytes_mut(), id, seq);
        loan.commit();
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
    let bus = Bus::standalone(bus).map_err(|e| e.to_string())?;
    let sub = bus.subscriber::<Bytes>(ring).map_err(|e| e.to_string())?;
    println!("ready");
    std::io::stdout().flush().ok();
    let before = cpu_ms();
    let outcome = match sub.recv_timeout(Duration::from_millis(ms)) {
        Err(Error::Timeout(_)) => Ok(cpu_ms() - before),
        Ok(_) => Err("a message arrived on an idle ring".into()),
        Err(e) => Err(e.to_string()),
    };
    outcome
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
        _ => Err("usage: gos-bus-peer produce|consume ...".to_string()),
    };
    match result {
        Ok(n) => println!("ok received={n}"),
        Err(e) => {
            println!("error {e}");
            std::process::exit(1);
        }
    }
}
