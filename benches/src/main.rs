//! `gos-bus-bench`: cross-process benchmarks of gos-bus, printed beside the machine's limits
//! (bare shared-memory ping-pong and SPSC copy ring), Unix domain sockets and, when built with
//! `--features iceoryx2`, iceoryx2. Every figure is measured in the same run and also printed
//! as a ratio to the bare reference, because these machines drift by 3x within minutes.
//!
//! ```text
//! cargo run --release -p gos-bus-bench                      # full run (about a minute)
//! cargo run --release -p gos-bus-bench -- --quick           # smaller counts
//! cargo run --release -p gos-bus-bench --features iceoryx2  # with iceoryx2 beside
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod bare;
mod bus;
mod harness;
#[cfg(feature = "iceoryx2")]
mod ice;
mod uds;

use gos_bus_client::{Bus, WaitStrategy};
use harness::{percentiles, pin, settle, us, Peer, Percentiles};

const WARMUP: usize = 1000;

struct Opts {
    quick: bool,
    latency: bool,
    throughput: bool,
}

fn child(args: &[String]) {
    if harness::cpus() > 1 {
        pin(1);
    }
    let a = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let n = |i: usize| a(i).parse::<u64>().expect("number argument");
    let wait = strategy;
    match a(0) {
        "bare-pong" => {
            let shm = bare::Shm::open(a(1), 4096, false);
            harness::ready();
            bare::pong(&shm, n(2));
            harness::report(0);
        }
        "bare-futex-pong" => {
            let shm = bare::Shm::open(a(1), 4096, false);
            harness::ready();
            bare::futex_pong(&shm, n(2));
            harness::report(0);
        }
        "bus-pong" => {
            let b = Bus::standalone(a(1)).expect("bus");
            bus::pong(&b, a(2), a(3), wait(a(4)), n(5));
            harness::report(0);
        }
        "uds-pong" => {
            uds::pong(a(1), n(2) as usize, n(3));
            harness::report(0);
        }
        #[cfg(feature = "iceoryx2")]
        "ice-pong" => {
            ice::pong(a(1), n(2));
            harness::report(0);
        }
        "bare-consume" => {
            let (slots, size) = (n(2) as usize, n(3) as usize);
            let shm = bare::Shm::open(a(1), bare::ring_len(slots, size), false);
            harness::ready();
            harness::report(bare::consume(&shm, slots, size, n(4)));
        }
        "bus-consume" => {
            let b = Bus::standalone(a(1)).expect("bus");
            harness::report(bus::consume(&b, a(2), n(3)));
        }
        "bus-consume-batch" => {
            let b = Bus::standalone(a(1)).expect("bus");
            harness::report(bus::consume_batch(&b, a(2), n(3), n(4) as usize));
        }
        "uds-consume" => harness::report(uds::consume(a(1), n(2) as usize, n(3))),
        #[cfg(feature = "iceoryx2")]
        "ice-consume" => harness::report(ice::consume(a(1), n(2) as usize, n(3))),
        other => panic!("unknown child role {other:?}"),
    }
}

fn strategy(name: &str) -> WaitStrategy {
    match name {
        "block" => WaitStrategy::Block,
        "spin" => WaitStrategy::default(),
        _ => WaitStrategy::BusyPoll,
    }
}

fn args(v: &[&dyn ToString]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpu}, {} CPUs", harness::cpus())
}

fn latency(o: &Opts, tag: &str) {
    let n: u64 = if o.quick { 20_000 } else { 200_000 };
    let total = n + WARMUP as u64;
    let mut rows: Vec<(&str, Percentiles)> = Vec::new();
    let mut measure = |name: &'static str, mut s: Vec<u64>| {
        let p = percentiles(&mut s[WARMUP..]);
        rows.push((name, p));
        settle();
    };

    let shm_name = format!("gosbench.{tag}.pp");
    let shm = bare::Shm::open(&shm_name, 4096, true);
    let peer = Peer::spawn(&args(&[&"bare-pong", &shm_name, &total]));
    let s = bare::ping(&shm, total);
    peer.result();
    shm.remove();
    measure("bare shm ping-pong (2 atomics)", s);

    let shm_name = format!("gosbench.{tag}.fx");
    let shm = bare::Shm::open(&shm_name, 4096, true);
    let peer = Peer::spawn(&args(&[&"bare-futex-pong", &shm_name, &total]));
    let s = bare::futex_ping(&shm, total);
    peer.result();
    shm.remove();
    measure("bare futex ping-pong (FUTEX_WAIT / FUTEX_WAKE)", s);

    let b = Bus::standalone(tag).expect("bus");
    bus::create(&b, "ping", 64, 64, true);
    bus::create(&b, "pong", 64, 64, true);
    bus::create(&b, "mping", 64, 64, false);
    bus::create(&b, "mpong", 64, 64, false);
    bus::create(&b, "big", 4, 8 << 20, true);
    for (name, out, back, wait) in [
        ("gos-bus 64 B, busy-poll", "ping", "pong", "busy"),
        (
            "gos-bus 64 B, busy-poll, multi-producer rings",
            "mping",
            "mpong",
            "busy",
        ),
        (
            "gos-bus 64 B, spin-then-block (default)",
            "ping",
            "pong",
            "spin",
        ),
        ("gos-bus 64 B, blocking (futex)", "ping", "pong", "block"),
    ] {
        let peer = Peer::spawn(&args(&[&"bus-pong", &tag, &out, &back, &wait, &total]));
        let strategy = strategy(wait);
        let s = bus::ping(&b, out, back, strategy, 64, total);
        peer.result();
        measure(name, s);
    }
    let big_n = total.min(20_000);
    let peer = Peer::spawn(&args(&[
        &"bus-pong",
        &tag,
        &"big",
        &"pong",
        &"busy",
        &big_n,
    ]));
    let s = bus::ping(&b, "big", "pong", WaitStrategy::BusyPoll, 8 << 20, big_n);
    peer.result();
    measure("gos-bus 8 MiB loan hand-over, busy-poll", s);
    for r in ["ping", "pong", "mping", "mpong", "big"] {
        let _ = b.remove_ring(r);
    }

    let path = format!("/tmp/gosbench.{tag}.sock");
    let l = uds::listen(&path);
    let peer = Peer::spawn(&args(&[&"uds-pong", &path, &64, &total]));
    let s = uds::ping(&l, 64, total);
    peer.result();
    let _ = std::fs::remove_file(&path);
    measure("Unix domain socket 64 B", s);

    #[cfg(feature = "iceoryx2")]
    {
        let prefix = format!("gosbench/{tag}/lat");
        let peer = Peer::spawn(&args(&[&"ice-pong", &prefix, &total]));
        let s = ice::ping(&prefix, 64, total);
        peer.result();
        measure("iceoryx2 64 B, busy-poll", s);
    }

    let find = |name: &str| rows.iter().find(|r| r.0 == name).map(|r| r.1.p50);
    let handover = find("gos-bus 8 MiB loan hand-over, busy-poll")
        .zip(find("gos-bus 64 B, busy-poll"))
        .map(|(big, small)| big / small);
    let bare = rows[0].1.p50;
    println!("\n### Round trip between two processes ({n} round trips, pinned to CPUs 0 and 1)\n");
    println!("| transport | p50 us | p99 us | p99.9 us | p50 / bare |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (name, p) in &rows {
        println!(
            "| {name} | {} | {} | {} | {:.2}x |",
            us(p.p50),
            us(p.p99),
            us(p.p999),
            p.p50 / bare
        );
    }
    if let Some(r) = handover {
        println!("\n8 MiB hand-over by loan / 64 B round trip (p50): {r:.2}x");
    }
    if let Some((blocking, futex)) = find("gos-bus 64 B, blocking (futex)")
        .zip(find("bare futex ping-pong (FUTEX_WAIT / FUTEX_WAKE)"))
    {
        println!(
            "Blocking round trip / bare futex ping-pong (p50): {:.2}x",
            blocking / futex
        );
    }
}

fn throughput(o: &Opts, tag: &str) {
    let div = if o.quick { 4 } else { 1 };
    let cases: [(usize, usize, u64, &str); 4] = [
        (64, 4096, 2_000_000 / div, "64 B"),
        (4096, 1024, 200_000 / div, "4 KiB"),
        (1 << 20, 16, 2_000 / div, "1 MiB"),
        (8 << 20, 4, 240 / div, "8 MiB"),
    ];
    // Each size runs every transport `rounds` times, interleaved, and reports the median: a
    // neighbour's burst on a shared machine then hits all of them alike.
    let rounds = if o.quick { 1 } else { 3 };
    let src: Vec<u8> = (0..(8usize << 20)).map(|i| (i * 31 % 251) as u8).collect();
    println!("\n### Throughput, one producer process to one consumer process\n");
    println!("Every producer writes the whole message; gos-bus and iceoryx2 consumers read it in place, the bare ring and the socket copy it out. Median of {rounds} interleaved round(s), each from a fresh ring.\n");
    println!("| size | transport | messages/s | GB/s | / bare ring |");
    println!("| --- | --- | ---: | ---: | ---: |");
    let b = Bus::standalone(tag).expect("bus");
    let mut ratios: Vec<(&str, f64)> = Vec::new();
    let mut batch_ratio: Vec<(&str, f64)> = Vec::new();
    for (size, slots, n, label) in cases {
        let rate = |ns: u64| (n - 1) as f64 / (ns as f64 / 1e9);
        let mut rows: Vec<(&str, Vec<f64>)> = Vec::new();
        let push = |rows: &mut Vec<(&'static str, Vec<f64>)>, name: &'static str, r: f64| match rows
            .iter_mut()
            .find(|row| row.0 == name)
        {
            Some(row) => row.1.push(r),
            None => rows.push((name, vec![r])),
        };
        for _ in 0..rounds {
            let name = format!("gosbench.{tag}.ring");
            let shm = bare::Shm::open(&name, bare::ring_len(slots, size), true);
            let peer = Peer::spawn(&args(&[&"bare-consume", &name, &slots, &size, &n]));
            bare::produce(&shm, slots, size, n, &src);
            push(&mut rows, "bare SPSC copy ring", rate(peer.result()));
            shm.remove();
            settle();

            for (name, single, batch) in [
                ("gos-bus single-producer ring (loan, busy-poll)", true, 1),
                (
                    "gos-bus single-producer ring, batches of up to 64",
                    true,
                    64,
                ),
                ("gos-bus multi-producer ring (loan, busy-poll)", false, 1),
            ] {
                if batch > 1 && size > 4096 {
                    continue; // batches are for small messages; large ones are a copy each
                }
                bus::create(&b, "tp", slots as u32, size as u32, single);
                let peer = if batch > 1 {
                    Peer::spawn(&args(&[&"bus-consume-batch", &tag, &"tp", &n, &batch]))
                } else {
                    Peer::spawn(&args(&[&"bus-consume", &tag, &"tp", &n]))
                };
                if batch > 1 {
                    bus::produce_batch(&b, "tp", size, n, &src, batch);
                } else {
                    bus::produce(&b, "tp", size, n, &src);
                }
                push(&mut rows, name, rate(peer.result()));
                let _ = b.remove_ring("tp");
                settle();
            }

            let path = format!("/tmp/gosbench.{tag}.sock");
            let l = uds::listen(&path);
            let peer = Peer::spawn(&args(&[&"uds-consume", &path, &size, &n]));
            uds::produce(&l, size, n, &src);
            push(&mut rows, "Unix domain socket", rate(peer.result()));
            let _ = std::fs::remove_file(&path);
            settle();

            #[cfg(feature = "iceoryx2")]
            {
                let prefix = format!("gosbench/{tag}/tp{size}/{}", rows[0].1.len());
                let peer = Peer::spawn(&args(&[&"ice-consume", &prefix, &slots, &n]));
                ice::produce(&prefix, size, slots, n, &src);
                push(&mut rows, "iceoryx2 (loan, busy-poll)", rate(peer.result()));
                settle();
            }
        }

        let median = |v: &[f64]| {
            let mut v = v.to_vec();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let bare = median(&rows[0].1);
        let find = |name: &str| rows.iter().find(|r| r.0 == name).map(|r| median(&r.1));
        if let Some(batched) = find("gos-bus single-producer ring, batches of up to 64") {
            batch_ratio.push((label, batched / bare));
        }
        if let Some((bus, ice)) = find("gos-bus single-producer ring (loan, busy-poll)")
            .zip(find("iceoryx2 (loan, busy-poll)"))
        {
            ratios.push((label, bus / ice));
        }
        for (name, r) in &rows {
            let r = median(r);
            println!(
                "| {label} | {name} | {} | {:.2} | {:.2}x |",
                fmt_rate(r),
                r * size as f64 / 1e9,
                r / bare
            );
        }
    }
    for (label, r) in &batch_ratio {
        println!(
            "\nBatches of up to 64 / bare SPSC copy ring at {label} (messages/s, medians): {r:.2}x"
        );
    }
    if !ratios.is_empty() {
        let list: Vec<String> = ratios
            .iter()
            .map(|(label, r)| format!("{label} {r:.2}x"))
            .collect();
        println!(
            "\ngos-bus single-producer ring / iceoryx2 (messages/s, medians): {}",
            list.join(", ")
        );
    }
}

fn fmt_rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2} M", r / 1e6)
    } else if r >= 1e3 {
        format!("{:.1} k", r / 1e3)
    } else {
        format!("{r:.0}")
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("--child") {
        child(&argv[1..]);
        return;
    }
    let has = |f: &str| argv.iter().any(|a| a == f);
    if has("--help") || has("-h") {
        println!("gos-bus-bench [--quick] [--latency | --throughput]\n\nCross-process benchmarks of gos-bus beside bare shared memory, Unix sockets and\n(with --features iceoryx2) iceoryx2. Prints Markdown tables with ratios to the bare\nreferences measured in the same run.");
        return;
    }
    let only_lat = has("--latency");
    let only_tp = has("--throughput");
    let o = Opts {
        quick: has("--quick"),
        latency: !only_tp || only_lat,
        throughput: !only_lat || only_tp,
    };
    if harness::cpus() > 1 {
        pin(0);
    }
    let tag = format!("bench{}", std::process::id());
    println!("## gos-bus-bench on {}", machine());
    println!(
        "\niceoryx2: {}",
        if cfg!(feature = "iceoryx2") {
            "included"
        } else {
            "not built (add --features iceoryx2)"
        }
    );
    if o.latency {
        latency(&o, &tag);
    }
    if o.throughput {
        throughput(&o, &tag);
    }
}
