//! `gos-render-node`: composites the frames published on `render.frames` over the terrain,
//! on the GPU, and publishes every composited frame on `render.output` (and, on request, PNG
//! snapshots).

use clap::Parser;
use gos_bus::client::{Bus, Error, RenderFrame};
use gos_layouts::records::{FRAME_FLAG_DIRTY_RECT, PIXEL_RGBA8};
use gos_render_node::{Backend, Compositor, Dirty, Gpu, Placement};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "gos-render-node",
    version,
    about = "Composite render.frames on the GPU and publish them on render.output",
    after_help = "Examples:\n  gos-render-node                              # bus geometry, 1920x1080, Vulkan\n  gos-render-node --backend gl --for 10\n  gos-render-node --snapshot-every 60 --snapshot-dir /tmp/frames\n\nThe backend also comes from WGPU_BACKEND (vulkan, gl)."
)]
struct Args {
    /// Bus name.
    #[arg(long, default_value = "geometry")]
    bus: String,
    /// Use rings made without a broker (tests).
    #[arg(long)]
    standalone: bool,
    /// vulkan or gl (default: WGPU_BACKEND, else vulkan).
    #[arg(long)]
    backend: Option<String>,
    /// Output width.
    #[arg(long, default_value_t = 1920)]
    width: u32,
    /// Output height.
    #[arg(long, default_value_t = 1080)]
    height: u32,
    /// Frames per second to composite.
    #[arg(long, default_value_t = 30.0)]
    fps: f64,
    /// A source that stops publishing fades out over this many seconds, then disappears.
    #[arg(long, default_value_t = 2.0)]
    fade_after: f64,
    /// Stop after this many seconds.
    #[arg(long = "for")]
    seconds: Option<f64>,
    /// Stop after this many composited frames.
    #[arg(long)]
    frames: Option<u64>,
    /// Write a PNG snapshot every N frames (with --snapshot-dir).
    #[arg(long)]
    snapshot_every: Option<u64>,
    /// Folder of the snapshots.
    #[arg(long, default_value = "snapshots")]
    snapshot_dir: PathBuf,
}

fn write_png(path: &std::path::Path, w: u32, h: u32, rgba: &[u8]) -> std::io::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().map_err(std::io::Error::other)?;
    writer.write_image_data(rgba).map_err(std::io::Error::other)
}

struct Seen {
    at: Instant,
    placement: Placement,
}

fn run(a: Args) -> Result<(), String> {
    let backend_name = a
        .backend
        .clone()
        .or_else(|| std::env::var("WGPU_BACKEND").ok())
        .unwrap_or_else(|| "vulkan".into());
    let backend = Backend::parse(&backend_name)
        .ok_or_else(|| format!("unknown backend {backend_name:?} (use vulkan or gl)"))?;
    let gpu = Gpu::open(backend).map_err(|e| e.to_string())?;
    println!("gos-render-node: adapter {}", gpu.describe());
    let mut c = Compositor::new(gpu, a.width, a.height).map_err(|e| e.to_string())?;
    let bus = if a.standalone {
        Bus::standalone(&a.bus)
    } else {
        Bus::attach(&a.bus)
    }
    .map_err(|e| e.to_string())?;
    let frames = bus
        .subscriber::<RenderFrame>("render.frames")
        .map_err(|e| e.to_string())?;
    let mut output = bus
        .publisher::<RenderFrame>("render.output")
        .map_err(|e| e.to_string())?;
    let pixel_bytes = (a.width * a.height * 4) as usize;
    if output.slot_size() < 128 + pixel_bytes {
        return Err(format!(
            "render.output slots hold {} bytes; a {}x{} frame needs {}",
            output.slot_size(),
            a.width,
            a.height,
            128 + pixel_bytes
        ));
    }
    if a.snapshot_every.is_some() {
        std::fs::create_dir_all(&a.snapshot_dir)
            .map_err(|e| format!("cannot create {}: {e}", a.snapshot_dir.display()))?;
    }
    println!("ready");
    let start = Instant::now();
    let period = Duration::from_secs_f64(1.0 / a.fps.max(0.1));
    let mut seen: HashMap<u64, Seen> = HashMap::new();
    let mut reported: HashMap<u64, String> = HashMap::new();
    let (mut n, mut uploads, mut bad, mut gpu_time) = (0u64, 0u64, 0u64, Duration::ZERO);
    let mut reported_bad = 0u64;
    let mut next = Instant::now();
    while a.seconds.is_none_or(|s| start.elapsed().as_secs_f64() < s)
        && a.frames.is_none_or(|f| n < f)
    {
        // Take everything published since the last frame.
        loop {
            let msg = match frames.try_recv() {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(Error::Corrupt { .. }) => {
                    bad += 1;
                    continue;
                }
                Err(e) => return Err(e.to_string()),
            };
            let f = *msg.header();
            let body = msg.bytes();
            let start_px = f.pixel_offset as usize;
            let outcome = if f.pixel_format != PIXEL_RGBA8 {
                Err(format!("pixel format {} is not RGBA8", f.pixel_format))
            } else if start_px > body.len() {
                Err(format!(
                    "pixel_offset {start_px} is past the {}-byte payload",
                    body.len()
                ))
            } else {
                let dirty = (f.flags & FRAME_FLAG_DIRTY_RECT != 0).then_some(Dirty {
                    x: f.dirty_x,
                    y: f.dirty_y,
                    w: f.dirty_w,
                    h: f.dirty_h,
                });
                c.upload(
                    f.source_id,
                    f.width,
                    f.height,
                    f.stride,
                    &body[start_px..],
                    dirty,
                )
                .map_err(|e| e.to_string())
            };
            match outcome {
                Ok(()) => {
                    uploads += 1;
                    let placement = Placement {
                        x: f.pos_x,
                        y: f.pos_y,
                        zoom: if f.zoom > 0.0 && f.zoom.is_finite() {
                            f.zoom
                        } else {
                            1.0
                        },
                        z: f.z_order,
                        alpha: 1.0,
                    };
                    c.place(f.source_id, placement);
                    seen.insert(
                        f.source_id,
                        Seen {
                            at: Instant::now(),
                            placement,
                        },
                    );
                    reported.remove(&f.source_id);
                }
                Err(reason) => {
                    bad += 1;
                    if reported.get(&f.source_id) != Some(&reason) {
                        eprintln!(
                            "gos-render-node: skipped a frame of source {}: {reason}",
                            f.source_id
                        );
                        reported.insert(f.source_id, reason);
                    }
                }
            }
        }
        // Fade out sources that stopped publishing.
        let fade = a.fade_after.max(0.001);
        seen.retain(|id, s| {
            let idle = s.at.elapsed().as_secs_f64();
            if idle > fade * 2.0 {
                c.remove(*id);
                return false;
            }
            if idle > fade {
                c.place(
                    *id,
                    Placement {
                        alpha: (2.0 - idle / fade) as f32,
                        ..s.placement
                    },
                );
            }
            true
        });
        let t0 = Instant::now();
        c.render(start.elapsed().as_secs_f32());
        let mut loan = output.loan().map_err(|e| e.to_string())?;
        *loan.header_mut() = RenderFrame {
            magic: *b"GFRM",
            version: 1,
            pixel_format: PIXEL_RGBA8,
            frame_seq: n,
            timestamp_ns: gos_bus::proc::now_ns() as i64,
            width: a.width,
            height: a.height,
            stride: a.width * 4,
            zoom: 1.0,
            pixel_offset: 128,
            pixel_bytes: pixel_bytes as u32,
            ..bytemuck::Zeroable::zeroed()
        };
        c.read_back(&mut loan.tail_mut()[..pixel_bytes])
            .map_err(|e| e.to_string())?;
        if let Some(every) = a.snapshot_every {
            if n % every.max(1) == 0 {
                let path = a.snapshot_dir.join(format!("frame-{n:06}.png"));
                write_png(&path, a.width, a.height, &loan.tail_mut()[..pixel_bytes])
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            }
        }
        loan.set_tail_len(pixel_bytes).map_err(|e| e.to_string())?;
        loan.commit();
        let took = t0.elapsed();
        gpu_time += took;
        // Frame time and skipped frames, where `gos-bus monitor` shows them (this client's
        // entry on render.frames).
        frames.report(bad - reported_bad, took);
        reported_bad = bad;
        n += 1;
        next += period;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "gos-render-node: {n} frames in {secs:.1} s ({:.1} frames/s), {:.2} ms render+readback per frame, {uploads} uploads, {bad} bad frames skipped",
        n as f64 / secs,
        gpu_time.as_secs_f64() * 1e3 / n.max(1) as f64
    );
    Ok(())
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("gos-render-node: {e}");
        std::process::exit(1);
    }
}
