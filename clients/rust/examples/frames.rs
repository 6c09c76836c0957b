//! Publishes animated pixel-window frames on `render.frames` at a fixed rate, with the loan
//! API: the pixels are written straight into shared memory.
//!
//! ```text
//! gos-bus serve &                                      # the broker, default manifest
//! cargo run --release -p gos-bus-client --example frames -- --fps 60 --windows 4
//! gos-bus monitor                                      # watch render.frames fill up
//! ```
//! `--help` lists the options.

use gos_bus_client::{Bus, RenderFrame};
use gos_layouts::records::{
    FRAME_FLAG_DECORATED, FRAME_FLAG_VISIBLE, FRAME_PIXEL_WINDOW, PIXEL_RGBA8,
};
use std::time::{Duration, Instant};

/// The command line.
#[derive(clap::Parser)]
#[command(
    name = "frames",
    about = "Publish animated pixel windows on render.frames, written in place in shared memory"
)]
struct Cli {
    /// The bus to attach to.
    #[arg(long = "bus", default_value = "geometry")]
    bus_name: String,
    /// Frames per second of each window.
    #[arg(long, default_value_t = 60)]
    fps: u32,
    /// How many windows.
    #[arg(long, default_value_t = 3)]
    windows: u64,
    /// Each window's size, WIDTHxHEIGHT.
    #[arg(long, default_value = "320x240")]
    size: String,
    /// Stop after this many seconds (default: until Ctrl-C or SIGTERM).
    #[arg(long)]
    seconds: Option<u64>,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("frames: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let Cli {
        bus_name,
        fps,
        windows,
        size,
        seconds,
    } = <Cli as clap::Parser>::parse();
    let (w, h) = size
        .split_once('x')
        .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
        .ok_or("--size takes WIDTHxHEIGHT, e.g. 320x240")?;

    let bus = Bus::attach(&bus_name)?;
    let mut publisher = bus.publisher::<RenderFrame>("render.frames")?;
    let pixels = (w * h * 4) as usize;
    let period = Duration::from_secs_f64(1.0 / fps.max(1) as f64);
    let start = Instant::now();
    let mut next = start;
    let mut seq = 0u64;
    println!(
        "publishing {windows} windows of {w}x{h} at {fps} frames/s on '{bus_name}'/render.frames"
    );
    // Ctrl-C or SIGTERM: finish the frame, detach cleanly.
    let stop = gos_bus_client::proc::stop_on_signals();
    while seconds.is_none_or(|s| start.elapsed() < Duration::from_secs(s))
        && !stop.load(std::sync::atomic::Ordering::Relaxed)
    {
        for window in 0..windows {
            let mut loan = publisher.loan()?;
            let t = seq as f32 / fps as f32;
            *loan.header_mut() = RenderFrame {
                magic: *b"GFRM",
                version: RenderFrame::VERSION,
                pixel_format: PIXEL_RGBA8,
                frame_seq: seq,
                timestamp_ns: gos_bus_client::proc::now_ns() as i64,
                source_id: window + 1,
                kind: FRAME_PIXEL_WINDOW,
                flags: FRAME_FLAG_VISIBLE | FRAME_FLAG_DECORATED,
                title: RenderFrame::title_bytes(&format!("Rust producer {}", window + 1)),
                width: w,
                height: h,
                stride: w * 4,
                pos_x: 40 + window as i32 * (w as i32 + 20),
                pos_y: 60 + (20.0 * (t + window as f32).sin()) as i32,
                zoom: 1.0,
                z_order: window as i32,
                pixel_offset: size_of::<RenderFrame>() as u32,
                pixel_bytes: pixels as u32,
                ..bytemuck::Zeroable::zeroed()
            };
            // A moving gradient, written in place.
            let shift = (seq * 4) as u8;
            for (i, px) in loan.tail_mut()[..pixels].chunks_exact_mut(4).enumerate() {
                let (x, y) = ((i as u32 % w) as u8, (i as u32 / w) as u8);
                px.copy_from_slice(&[x.wrapping_add(shift), y, (window as u8) * 80, 255]);
            }
            loan.set_tail_len(pixels)?;
            loan.commit()?;
        }
        seq += 1;
        next += period;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    println!("published {} frames", publisher.published());
    Ok(())
}
