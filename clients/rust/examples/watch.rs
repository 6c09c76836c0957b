//! Subscribes to `render.frames` and prints, once a second, how many frames arrived from
//! each source, reading each frame in place.
//!
//! ```text
//! cargo run --release -p gos-bus-client --example watch -- --bus geometry --seconds 10
//! ```

use gos_bus_client::{Bus, Error, RenderFrame};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The command line.
#[derive(clap::Parser)]
#[command(
    name = "watch",
    about = "Count the frames on render.frames per source, once a second, read in place"
)]
struct Cli {
    /// The bus to attach to.
    #[arg(long = "bus", default_value = "geometry")]
    bus_name: String,
    /// Stop after this many seconds (default: until interrupted).
    #[arg(long)]
    seconds: Option<u64>,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("watch: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let Cli { bus_name, seconds } = <Cli as clap::Parser>::parse();
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
