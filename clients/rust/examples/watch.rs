//! Subscribes to `render.frames` and prints, once a second, how many frames arrived from
//! each source, reading each frame in place.
//!
//! ```text
//! cargo run --release -p gos-bus-client --example watch -- --bus geometry --seconds 10
//! ```

use gos_bus_client::{Bus, Error, RenderFrame};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn main() {
    if let Err(e) = run() {
        eprintln!("watch: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let get = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let bus_name = get("--bus").unwrap_or_else(|| "geometry".into());
    let seconds: Option<u64> = get("--seconds").and_then(|s| s.parse().ok());
    let bus = Bus::attach(&bus_name)?;
    let frames = bus.subscriber::<RenderFrame>("render.frames")?;
    let start = Instant::now();
    let mut tick = Instant::now();
    let mut per_source: BTreeMap<u64, (u64, u32, u32)> = BTreeMap::new();
    while seconds.is_none_or(|s| start.elapsed() < Duration::from_secs(s)) {
        match frames.recv_timeout(Duration::from_millis(200)) {
            Ok(msg) => {
                let f = msg.header();
                let e = per_source.entry(f.source_id).or_default();
                *e = (e.0 + 1, f.width, f.height);
            }
            Err(Error::Timeout(_)) => {}
            Err(e) => return Err(e.into()),
        }
        if tick.elapsed() >= Duration::from_secs(1) {
            let line: Vec<String> = per_source
                .iter()
                .map(|(src, (n, w, h))| format!("source {src}: {n} frames {w}x{h}"))
                .collect();
            println!(
                "{}  (dropped so far: {})",
                if line.is_empty() {
                    "no frames".into()
                } else {
                    line.join(", ")
                },
                frames.dropped()
            );
            per_source.clear();
            tick = Instant::now();
        }
    }
    Ok(())
}
