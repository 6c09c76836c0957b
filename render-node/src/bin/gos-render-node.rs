//! `gos-render-node`: composites the frames published on `render.frames` (windows, heightmaps,
//! windows that show textures of `rts.textures`) over the terrain, on the GPU, and publishes
//! every composited frame on `render.output` (and, on request, PNG snapshots). Its stats go to
//! its client entries, where `gos-bus monitor` shows them: on `render.output` frames/s, CPU
//! and GPU time per frame; on `render.frames` uploads/s, bytes/s, bad frames and drops.

use clap::Parser;
use gos_bus_client::{Bus, Error, RenderFrame, RtsTexture, Subscriber};
use gos_layouts::records::PIXEL_RGBA8;
use gos_layouts::BrickPlacement;
use gos_render_node::inputs::{apply_brick, apply_frame, apply_texture, placement, Applied};
use gos_render_node::{Backend, Compositor, Gpu, Placement};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "gos-render-node",
    version,
    about = "Composite render.frames on the GPU and publish them on render.output",
    after_help = "Examples:\n  gos-render-node                              # bus geometry, 1920x1080, Vulkan\n  gos-render-node --backend gl --for 10\n  gos-render-node --snapshot-every 60 --snapshot-dir /tmp/frames\n\nThe backend also comes from WGPU_BACKEND (vulkan, gl). Stops cleanly on SIGINT or SIGTERM and\nprints its stats."
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
    /// A source that stops publishing (frames or keep-alives) fades out over this many seconds,
    /// then disappears.
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
    /// A folder of shader styles (NAME.wgsl, each defining `fn style(uv, size) -> vec4<f32>`),
    /// loaded at start and again when a file changes; crt_cyan is built in.
    #[arg(long)]
    styles: Option<PathBuf>,
    /// Folder of the snapshots.
    #[arg(long, default_value = "snapshots")]
    snapshot_dir: PathBuf,
    /// Show the composited frames in a window (Escape, q or closing it stops the node).
    #[cfg(feature = "window")]
    #[arg(long)]
    window: bool,
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

/// Where a skipped input came from: a frame's source, a texture id, or an unreadable slot.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Origin {
    Source(u64),
    Brick(i32, i32),
    Texture(u64),
    Slot,
}

/// Logs a skipped input once per origin and reason.
#[derive(Default)]
struct Skips {
    last: HashMap<Origin, String>,
    count: u64,
}

impl Skips {
    /// Most origins remembered: a producer inventing source ids cannot grow the map further
    /// (it is emptied, and the next skips are logged again).
    const MAX_ORIGINS: usize = 1024;

    fn skip(&mut self, what: &str, origin: Origin, reason: String) {
        self.count += 1;
        if self.last.get(&origin) != Some(&reason) {
            eprintln!("gos-render-node: skipped {what}: {reason}");
            if self.last.len() >= Self::MAX_ORIGINS {
                self.last.clear();
            }
            self.last.insert(origin, reason);
        }
    }

    fn ok(&mut self, origin: Origin) {
        self.last.remove(&origin);
    }
}

/// The next message of `sub`, counting a corrupt slot as skipped.
fn next<'a, T: gos_layouts::Record>(
    sub: &'a Subscriber<T>,
    skips: &mut Skips,
) -> Result<Option<gos_bus_client::Message<'a, T>>, String> {
    loop {
        match sub.try_recv() {
            Ok(m) => return Ok(m),
            Err(e @ Error::Corrupt { .. }) => skips.skip("a slot", Origin::Slot, e.to_string()),
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn run(a: Args) -> Result<(), String> {
    let backend = Backend::choose(a.backend.as_deref())?;
    #[cfg(feature = "window")]
    let (mut viewer, gpu) = if a.window {
        let (v, gpu) =
            gos_render_node::window::Viewer::open("gos-render-node", a.width, a.height, backend)
                .map_err(|e| e.to_string())?;
        (Some(v), gpu)
    } else {
        (None, Gpu::open(backend).map_err(|e| e.to_string())?)
    };
    #[cfg(not(feature = "window"))]
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
    if output.slot_size() < size_of::<RenderFrame>() + pixel_bytes {
        return Err(format!(
            "render.output slots hold {} bytes; a {}x{} frame needs {}",
            output.slot_size(),
            a.width,
            a.height,
            size_of::<RenderFrame>() + pixel_bytes
        ));
    }
    if a.snapshot_every.is_some() {
        std::fs::create_dir_all(&a.snapshot_dir)
            .map_err(|e| format!("cannot create {}: {e}", a.snapshot_dir.display()))?;
    }
    gos_render_node::styles::load_built_in(&mut c)?;
    let mut style_folder = a
        .styles
        .as_deref()
        .map(|d| gos_render_node::styles::StyleFolder::new(d, Duration::from_secs(1)));
    // RTS textures are optional: a bus without the ring still composites windows.
    let textures = match bus.subscriber::<RtsTexture>("rts.textures") {
        Ok(t) => Some(t),
        Err(Error::NoSuchRing { .. }) => {
            println!(
                "gos-render-node: no rts.textures ring; windows that name a texture stay empty"
            );
            None
        }
        Err(e) => return Err(e.to_string()),
    };
    // Bricks are optional too: without the ring the terrain is bare.
    let bricks = match bus.subscriber::<BrickPlacement>("terrain.bricks") {
        Ok(b) => Some(b),
        Err(Error::NoSuchRing { .. }) => {
            println!("gos-render-node: no terrain.bricks ring; the terrain has no bricks");
            None
        }
        Err(e) => return Err(e.to_string()),
    };
    if c.gpu().timestamps {
        println!("gos-render-node: GPU time from timestamp queries");
    } else {
        println!("gos-render-node: the adapter has no timestamp queries; GPU time is not measured");
    }
    let stop = gos_bus_client::proc::stop_on_signals();
    println!("ready");
    let start = Instant::now();
    let period = Duration::from_secs_f64(1.0 / a.fps.max(0.1));
    let mut seen: HashMap<u64, Seen> = HashMap::new();
    let mut skips = Skips::default();
    let (mut n, mut uploads, mut upload_bytes, mut rts_loaded) = (0u64, 0u64, 0u64, 0u64);
    let (mut wall, mut cpu, mut gpu_total) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut reported_bad = 0u64;
    let mut next_frame = Instant::now();
    while a.seconds.is_none_or(|s| start.elapsed().as_secs_f64() < s)
        && a.frames.is_none_or(|f| n < f)
        && !stop.load(std::sync::atomic::Ordering::Relaxed)
    {
        let t0 = Instant::now();
        let cpu0 = gos_bus_client::proc::thread_cpu_time();
        // Styles new or changed in the folder (a broken one keeps the last good version).
        if let Some(folder) = style_folder.as_mut() {
            for line in folder.poll(&mut c) {
                println!("gos-render-node: {line}");
            }
        }
        // RTS textures first, so a window published with its texture shows it at once.
        if let Some(textures) = &textures {
            while let Some(msg) = next(textures, &mut skips)? {
                let t = *msg.header();
                match apply_texture(&mut c, &t, msg.bytes()) {
                    Ok(bytes) => {
                        rts_loaded += 1;
                        upload_bytes += bytes;
                        skips.ok(Origin::Texture(t.texture_id));
                    }
                    Err(e) => skips.skip(
                        "an RTS texture",
                        Origin::Texture(t.texture_id),
                        e.to_string(),
                    ),
                }
            }
        }
        // Bricks laid on the terrain (their textures came above, or come later).
        if let Some(bricks) = &bricks {
            while let Some(msg) = next(bricks, &mut skips)? {
                let b = *msg.header();
                let origin = Origin::Brick(b.map_x, b.map_y);
                match apply_brick(&mut c, &b) {
                    Ok(()) => skips.ok(origin),
                    Err(e) => skips.skip("a brick", origin, e.to_string()),
                }
            }
        }
        // Then every frame published since the last composition.
        while let Some(msg) = next(&frames, &mut skips)? {
            let f = *msg.header();
            match apply_frame(&mut c, &f, msg.bytes()) {
                Ok(Applied::Closed) => {
                    seen.remove(&f.source_id);
                    skips.ok(Origin::Source(f.source_id));
                }
                Ok(Applied::KeepAlive { known }) => {
                    // The window stays: its fade starts again from now, at the new placement.
                    if let (true, Some(s), Ok(p)) =
                        (known, seen.get_mut(&f.source_id), placement(&f))
                    {
                        s.at = Instant::now();
                        s.placement = p;
                    }
                    skips.ok(Origin::Source(f.source_id));
                }
                Ok(applied) => {
                    uploads += 1;
                    upload_bytes += applied.bytes();
                    skips.ok(Origin::Source(f.source_id));
                    // A window (not a heightmap): remember where, to fade it out later. Its
                    // placement was checked by apply_frame.
                    let window = !matches!(applied, Applied::Heightmap { .. });
                    if let (true, Ok(placement)) = (window, placement(&f)) {
                        seen.insert(
                            f.source_id,
                            Seen {
                                at: Instant::now(),
                                placement,
                            },
                        );
                    }
                }
                Err(e) => skips.skip("a frame", Origin::Source(f.source_id), e.to_string()),
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
        c.render(start.elapsed().as_secs_f32());
        #[cfg(feature = "window")]
        if let Some(v) = viewer.as_mut() {
            v.present(&mut c).map_err(|e| e.to_string())?;
            if !v.pump() {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let mut loan = output.loan().map_err(|e| e.to_string())?;
        *loan.header_mut() = RenderFrame {
            magic: *b"GFRM",
            version: RenderFrame::VERSION,
            pixel_format: PIXEL_RGBA8,
            frame_seq: n,
            timestamp_ns: gos_bus_client::proc::now_ns() as i64,
            width: a.width,
            height: a.height,
            stride: a.width * 4,
            zoom: 1.0,
            pixel_offset: size_of::<RenderFrame>() as u32,
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
        loan.commit().map_err(|e| e.to_string())?;
        let took = t0.elapsed();
        let took_cpu = gos_bus_client::proc::thread_cpu_time().saturating_sub(cpu0);
        let took_gpu = c.gpu_time().unwrap_or_default();
        wall += took;
        cpu += took_cpu;
        gpu_total += took_gpu;
        // Where `gos-bus monitor` shows them: per frame on render.output (frames/s from the
        // count, CPU and GPU time per frame), bad inputs on render.frames.
        output.report(0, took_cpu, took_gpu);
        frames.report(skips.count - reported_bad, Duration::ZERO);
        reported_bad = skips.count;
        n += 1;
        next_frame += period;
        if let Some(wait) = next_frame.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        } else {
            // Running late: do not try to catch up with a burst.
            next_frame = Instant::now();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    #[cfg(feature = "window")]
    if let Some(v) = &viewer {
        println!(
            "gos-render-node: {} frames presented in the window",
            v.presented()
        );
    }
    let per = |d: Duration| d.as_secs_f64() * 1e3 / n.max(1) as f64;
    println!(
        "gos-render-node: {n} frames in {secs:.1} s ({:.1} frames/s), per frame {:.2} ms wall, {:.2} ms CPU, {}; {uploads} uploads ({:.1} MB), {rts_loaded} RTS textures, {} inputs skipped, {} frames dropped by render.frames (overwritten before they were read), {} GPU errors",
        n as f64 / secs,
        per(wall),
        per(cpu),
        if c.gpu().timestamps { format!("{:.2} ms GPU", per(gpu_total)) } else { "GPU time n/a".into() },
        upload_bytes as f64 / 1e6,
        skips.count,
        frames.dropped(),
        c.gpu().errors()
    );
    Ok(())
}

fn main() {
    let args = Args::parse();
    gos_render_node::quiet_wayland_probe();
    if let Err(e) = run(args) {
        eprintln!("gos-render-node: {e}");
        std::process::exit(1);
    }
}
