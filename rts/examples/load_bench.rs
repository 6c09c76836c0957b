//! What the PixelRTS loader costs beside decoding the same PNG alone: makes a `side` x `side`
//! PixelRTS file of random data (`data_size` and `data_hash` stated, as the Geometry OS encoder
//! writes them), then times, run after run, reading it and decoding its PNG (the floor),
//! loading it as `RtsAsset.load` does (`gos_rts::load`: the PNG, the shape, the metadata and
//! its rule; the data on first use), and decoding it whole (`gos_rts::decode_file`: the data
//! recovered along the Hilbert curve and its SHA-256 checked, as a publisher does).
//!
//!     cargo run --release -p gos-rts --example load_bench [-- --side 4096 --runs 5]

use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

const HELP: &str = "load_bench: the PixelRTS loader beside decoding the PNG alone

Usage: load_bench [--side N] [--runs N]
  --side N   the image's side in pixels, a power of two (default 4096: 64 MiB of data)
  --runs N   timed runs of each way, interleaved (default 5)";

fn main() {
    let (mut side, mut runs) = (4096u32, 5usize);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or_else(|| die(&format!("{name} needs a number")))
        };
        match a.as_str() {
            "-h" | "--help" => {
                println!("{HELP}");
                return;
            }
            "--side" => side = value("--side") as u32,
            "--runs" => runs = value("--runs").max(1) as usize,
            other => die(&format!("unknown argument '{other}' (see --help)")),
        }
    }
    if !side.is_power_of_two() || side > gos_rts::MAX_SIDE {
        die("--side must be a power of two, at most 8192");
    }
    let path =
        std::env::temp_dir().join(format!("load-bench-{}-{side}.rts.png", std::process::id()));
    let bytes = make(side);
    std::fs::write(&path, &bytes)
        .unwrap_or_else(|e| die(&format!("cannot write {}: {e}", path.display())));
    let mut png_alone = Vec::new();
    let mut asset = Vec::new();
    let mut loader = Vec::new();
    for _ in 0..runs {
        png_alone.push(time(|| {
            let bytes = std::fs::read(&path).unwrap();
            let mut reader = png::Decoder::new(&bytes[..]).read_info().unwrap();
            let mut frame = vec![0; reader.output_buffer_size()];
            reader.next_frame(&mut frame).unwrap();
            frame.len()
        }));
        asset.push(time(|| gos_rts::load(&path).unwrap().file.pixels.len()));
        loader.push(time(|| gos_rts::decode_file(&path).unwrap().data.len()));
    }
    let _ = std::fs::remove_file(&path);
    let med = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1e3
    };
    let (a, l, b) = (med(&mut png_alone), med(&mut asset), med(&mut loader));
    println!(
        "| {side}x{side} PixelRTS, {} MiB file, {runs} runs | median ms | / PNG alone |",
        bytes.len() >> 20
    );
    println!("| --- | ---: | ---: |");
    println!("| read + decode the PNG alone | {a:.1} | 1.00x |");
    println!(
        "| gos_rts::load, as RtsAsset.load (data on first use) | {l:.1} | {:.2}x |",
        l / a
    );
    println!(
        "| gos_rts::decode_file (+ Hilbert walk, SHA-256 check) | {b:.1} | {:.2}x |",
        b / a
    );
    println!(
        "\nloading an asset costs {:+.1}% beside decoding the PNG alone (the proposal's bar: under +5%); recovering and checking its data {:+.1}%",
        (l / a - 1.0) * 100.0,
        (b / a - 1.0) * 100.0
    );
}

fn time(f: impl FnOnce() -> usize) -> Duration {
    let t = Instant::now();
    std::hint::black_box(f());
    t.elapsed()
}

fn die(msg: &str) -> ! {
    eprintln!("load_bench: {msg}");
    std::process::exit(2)
}

/// A PixelRTS image of random bytes, as the encoder lays them out.
fn make(side: u32) -> Vec<u8> {
    let n = (side as usize * side as usize * 4) - 1024;
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let data: Vec<u8> = (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let meta = format!(
        r#"{{"format":"PixelRTS-2.0","encoding":{{"type":"RGBA-dense"}},"grid_size":{side},"data_size":{n},"data_hash":"{}"}}"#,
        gos_rts::hex(&Sha256::digest(&data))
    );
    gos_rts::encode(side, &data, &meta)
}
