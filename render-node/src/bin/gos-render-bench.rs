//! `gos-render-bench`: the render node's cost, and the cost of the bus in it, side by side in
//! one run (frames alternate between the two ways, so drift hits both alike):
//!
//! - composition at the output size with 1, 4 and 16 windows, each re-uploaded every frame,
//!   fed from process-local buffers versus fed from `render.frames` slots (publish, receive,
//!   upload from the slot) with the result read back into a `render.output` slot;
//! - loading a `.rts.png` into a GPU texture directly (decode, upload) versus through the bus
//!   (decode into an `rts.textures` slot, receive, upload from the slot);
//! - the neural terrain with 64 bricks, its 256x256 heightmap and every brick's placement
//!   sent again each frame, applied from process-local records versus received from
//!   `render.frames` and `terrain.bricks`;
//! - 4 terminal windows of 80x30 cells, decorated, each written a line of ANSI-coloured text
//!   every frame (the cells drawn on the GPU), from process-local records versus received
//!   from `render.frames`.
//!
//! ```text
//! gos-render-bench [--backend vulkan|gl] [--width 1920 --height 1080] [--frames 30] [--rts FILE]
//! ```

use gos_bus_client::{Bus, RenderFrame, RingConfig, RtsTexture};
use gos_layouts::records::{FRAME_TERRAIN_HEIGHTMAP, PIXEL_R8};
use gos_layouts::{BrickPlacement, Record};
use gos_render_node::inputs::{apply_brick, apply_frame};
use gos_render_node::{Backend, Compositor, Gpu, HeightFormat, Placement};
use std::time::{Duration, Instant};

/// The command line.
#[derive(clap::Parser)]
#[command(
    name = "gos-render-bench",
    version,
    about = "The render node's cost, and the bus's share of it: composition fed from local \
             buffers versus from render.frames slots, and RTS loading direct versus through the bus"
)]
struct Cli {
    /// Graphics API: vulkan or gl (default: WGPU_BACKEND, else vulkan).
    #[arg(long)]
    backend: Option<String>,
    /// Output width in pixels.
    #[arg(long, default_value_t = 1920)]
    width: u32,
    /// Output height in pixels.
    #[arg(long, default_value_t = 1080)]
    height: u32,
    /// Frames timed per row.
    #[arg(long, default_value_t = 30)]
    frames: usize,
    /// The .rts.png to load (default: the blob-300001 sample).
    #[arg(long)]
    rts: Option<String>,
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let cli = <Cli as clap::Parser>::parse();
    gos_render_node::quiet_wayland_probe();
    let backend = Backend::choose(cli.backend.as_deref()).unwrap_or_else(|e| {
        eprintln!("gos-render-bench: {e}");
        std::process::exit(2);
    });
    let (w, h) = (cli.width, cli.height);
    let frames = cli.frames.max(1);
    let gpu = Gpu::open(backend).unwrap_or_else(|e| panic!("{e}"));
    println!("## gos-render-bench on {}\n", gpu.describe());
    let mut c = Compositor::new(gpu, w, h).expect("compositor");
    let bus = Bus::standalone(&format!("rbench{}", std::process::id())).expect("bus");
    let (ww, wh) = (w / 4, h / 4);
    let win_bytes = (ww * wh * 4) as usize;
    let out_bytes = (w * h * 4) as usize;
    // Few slots, so that they are warm (touched) after the first frames, like a local buffer.
    let ring = |name: &str, size: usize, slots: u32, layout| {
        let _ = bus.remove_ring(name);
        bus.create_ring(
            name,
            &RingConfig {
                slot_count: slots,
                slot_size: size as u32,
                layout,
                single_producer: true,
                ..Default::default()
            },
        )
        .expect("ring")
    };
    // A window's pixels, or the terrain's 256x256 heightmap, whichever is larger.
    let frames_ring = ring(
        "render.frames",
        size_of::<RenderFrame>() + win_bytes.max(256 * 256),
        16,
        RenderFrame::SCHEMA,
    );
    let output_ring = ring(
        "render.output",
        size_of::<RenderFrame>() + out_bytes,
        2,
        RenderFrame::SCHEMA,
    );
    let sub = frames_ring.subscriber::<RenderFrame>().expect("subscriber");
    let mut publisher = frames_ring.publisher::<RenderFrame>().expect("publisher");
    let mut output = output_ring.publisher::<RenderFrame>().expect("output");
    let local: Vec<Vec<u8>> = (0..16).map(|i| vec![(i * 16) as u8; win_bytes]).collect();
    let mut out_local = vec![0u8; out_bytes];
    let mut scratch: Vec<Vec<u8>> = (0..16).map(|_| vec![0u8; win_bytes]).collect();

    println!("### Composition at {w}x{h}, windows of {ww}x{wh} re-uploaded every frame ({frames} frames, median)\n");
    println!("| windows | process-local ms/frame | frames/s | through the bus ms/frame | frames/s | bus / local |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: |");
    for n in [1usize, 4, 16] {
        for i in 0..n as u64 {
            let p = Placement {
                x: (i % 4) as i32 * ww as i32,
                y: (i / 4) as i32 * wh as i32,
                zoom: 1.0,
                z: i as i32,
                alpha: 1.0,
            };
            c.upload(i, ww, wh, ww * 4, &local[i as usize], None)
                .unwrap();
            c.place(i, p);
        }
        let (mut t_local, mut t_bus) = (Vec::new(), Vec::new());
        for f in 0..frames + 4 {
            // Process-local: the producer writes its pixels into a buffer of this process (the
            // same copy it makes into a slot below), the compositor uploads from there.
            let t = Instant::now();
            for i in 0..n {
                scratch[i].copy_from_slice(&local[i]);
                c.upload(i as u64, ww, wh, ww * 4, &scratch[i], None)
                    .unwrap();
            }
            c.render(f as f32);
            c.read_back(&mut out_local).unwrap();
            let local_time = t.elapsed();
            // Through the bus: publish the windows, receive them, upload from the slots.
            let t = Instant::now();
            for (i, pixels) in local.iter().enumerate().take(n) {
                let mut loan = publisher.loan().unwrap();
                loan.header_mut().source_id = i as u64;
                loan.tail_mut()[..win_bytes].copy_from_slice(pixels);
                loan.set_tail_len(win_bytes).unwrap();
                loan.commit().unwrap();
            }
            for _ in 0..n {
                let m = sub.recv().unwrap();
                let id = m.header().source_id;
                c.upload(id, ww, wh, ww * 4, &m.tail()[..win_bytes], None)
                    .unwrap();
            }
            render_into(&mut c, &mut output, out_bytes, f as f32);
            let bus_time = t.elapsed();
            if f >= 4 {
                t_local.push(local_time);
                t_bus.push(bus_time);
            }
        }
        for i in 0..n as u64 {
            c.remove(i);
        }
        let (l, b) = (median(t_local), median(t_bus));
        println!(
            "| {n} | {:.2} | {:.1} | {:.2} | {:.1} | {:+.1}% |",
            ms(l),
            1e3 / ms(l),
            ms(b),
            1e3 / ms(b),
            (ms(b) / ms(l) - 1.0) * 100.0
        );
    }

    let rts: String = cli.rts.clone().unwrap_or_else(|| {
        gos_rts::samples_dir()
            .join("blob-300001.rts.png")
            .display()
            .to_string()
    });
    if let Ok(file) = gos_rts::decode_file(std::path::Path::new(&rts)) {
        let size = 128 + (file.side * file.side * 4) as usize + file.metadata.len() + 64;
        let rts_ring = ring("rts.textures", size, 2, RtsTexture::SCHEMA);
        let rts_sub = rts_ring.subscriber::<RtsTexture>().unwrap();
        let mut rts_pub = rts_ring.publisher::<RtsTexture>().unwrap();
        let path = std::path::Path::new(&rts);
        let (mut direct, mut via) = (Vec::new(), Vec::new());
        for _ in 0..frames {
            let t = Instant::now();
            let f = gos_rts::decode_file(path).unwrap();
            c.upload(1000, f.side, f.side, f.side * 4, &f.pixels, None)
                .unwrap();
            c.render(0.0);
            c.read_back(&mut out_local).unwrap();
            direct.push(t.elapsed());
            let t = Instant::now();
            gos_bus_client::rts::publish_file(&mut rts_pub, path).unwrap();
            let m = rts_sub.recv().unwrap();
            let hd = *m.header();
            c.upload(
                1000,
                hd.width,
                hd.height,
                hd.width * 4,
                &m.tail()[..hd.pixel_bytes as usize],
                None,
            )
            .unwrap();
            drop(m);
            c.render(0.0);
            c.read_back(&mut out_local).unwrap();
            via.push(t.elapsed());
        }
        let (d, v) = (median(direct), median(via));
        println!(
            "\n### Loading {} ({}x{}) into a GPU texture, then one frame ({frames} times, median)\n",
            path.file_name().unwrap().to_string_lossy(),
            file.side,
            file.side
        );
        println!("| way | ms | bus / direct |");
        println!("| --- | ---: | ---: |");
        println!("| decode + upload, in process | {:.2} | |", ms(d));
        println!(
            "| decode into an rts.textures slot, receive, upload from the slot | {:.2} | {:+.1}% |",
            ms(v),
            (ms(v) / ms(d) - 1.0) * 100.0
        );
        let _ = bus.remove_ring("rts.textures");
    }
    terrain_rows(
        &mut c,
        &bus,
        (&sub, &mut publisher),
        frames,
        &mut out_local,
        &mut output,
    );
    terminal_rows(
        &mut c,
        (&sub, &mut publisher),
        frames,
        &mut out_local,
        &mut output,
    );
    let _ = bus.remove_ring("render.frames");
    let _ = bus.remove_ring("render.output");
    let _ = bus.remove_ring("terrain.bricks");
}

/// The terminal table: 4 decorated 80x30 terminals, each written a line every frame, their
/// cells applied from local records versus through `render.frames`.
fn terminal_rows(
    c: &mut Compositor,
    (frame_sub, frame_pub): (
        &gos_bus_client::Subscriber<RenderFrame>,
        &mut gos_bus_client::Publisher<RenderFrame>,
    ),
    frames: usize,
    out_local: &mut [u8],
    output: &mut gos_bus_client::Publisher<RenderFrame>,
) {
    use gos_bus_client::terminal::Terminal;
    use gos_layouts::records::{
        FRAME_FLAG_DECORATED, FRAME_NEURAL_CONSOLE, PIXEL_CELLS, TERMINAL_COLUMNS, TERMINAL_ROWS,
    };
    const TERMINALS: u64 = 4;
    let (cols, rows) = (TERMINAL_COLUMNS, TERMINAL_ROWS);
    let mut terms: Vec<Terminal> = (0..TERMINALS)
        .map(|_| Terminal::new(cols, rows).unwrap())
        .collect();
    let record = |i: u64| RenderFrame {
        magic: *b"GFRM",
        version: RenderFrame::VERSION,
        kind: FRAME_NEURAL_CONSOLE,
        pixel_format: PIXEL_CELLS,
        flags: FRAME_FLAG_DECORATED,
        source_id: 3000 + i,
        width: cols,
        height: rows,
        stride: cols * 8,
        pos_x: 40 + (i % 2) as i32 * 700,
        pos_y: 40 + (i / 2) as i32 * 520,
        zoom: 1.0,
        z_order: 10,
        focus: u32::from(i == 0),
        pixel_offset: size_of::<RenderFrame>() as u32,
        pixel_bytes: cols * rows * 8,
        title: RenderFrame::title_bytes(&format!("terminal {i}")),
        ..bytemuck::Zeroable::zeroed()
    };
    let cell_bytes = (cols * rows * 8) as usize;
    let head = size_of::<RenderFrame>();
    let mut local = vec![0u8; head + cell_bytes];
    let out_bytes = out_local.len();
    let (mut t_local, mut t_bus, mut t_ops) = (Vec::new(), Vec::new(), Vec::new());
    for f in 0..frames + 4 {
        let t = Instant::now();
        for (i, term) in terms.iter_mut().enumerate() {
            term.write(
                format!(
                    "\x1b[3{}mframe {f}\x1b[0m: terminal {i}, local\n",
                    1 + i % 6
                )
                .as_bytes(),
            );
            let rec = record(i as u64);
            local[..head].copy_from_slice(bytemuck::bytes_of(&rec));
            term.copy_cells(&mut local[head..]).unwrap();
            apply_frame(c, &rec, &local).unwrap();
        }
        c.render(f as f32);
        c.read_back(out_local).unwrap();
        let local_time = t.elapsed();
        let mut ops = Duration::ZERO;
        let t = Instant::now();
        for (i, term) in terms.iter_mut().enumerate() {
            term.write(
                format!("\x1b[3{}mframe {f}\x1b[0m: terminal {i}, bus\n", 1 + i % 6).as_bytes(),
            );
            let o = Instant::now();
            let mut loan = frame_pub.loan().unwrap();
            *loan.header_mut() = record(i as u64);
            term.copy_cells(loan.tail_mut()).unwrap();
            loan.set_tail_len(cell_bytes).unwrap();
            loan.commit().unwrap();
            ops += o.elapsed();
        }
        for _ in 0..TERMINALS {
            let o = Instant::now();
            let m = frame_sub.recv().unwrap();
            ops += o.elapsed();
            apply_frame(c, m.header(), m.bytes()).unwrap();
            let o = Instant::now();
            drop(m);
            ops += o.elapsed();
        }
        render_into(c, output, out_bytes, f as f32);
        let bus_time = t.elapsed();
        if f >= 4 {
            t_local.push(local_time);
            t_bus.push(bus_time);
            t_ops.push(ops);
        }
    }
    print_split(
        &format!("{TERMINALS} terminal windows of {cols}x{rows} cells, decorated, a line written to each every frame ({frames} frames, median)"),
        "received from render.frames",
        &format!("loan, copy the cells, commit, receive, release: {TERMINALS} frames"),
        (t_local, t_bus, t_ops),
    );
}

/// The terrain table: a heightmap and 64 brick placements applied every frame, from local
/// records versus through the bus.
fn terrain_rows(
    c: &mut Compositor,
    bus: &Bus,
    (frame_sub, frame_pub): (
        &gos_bus_client::Subscriber<RenderFrame>,
        &mut gos_bus_client::Publisher<RenderFrame>,
    ),
    frames: usize,
    out_local: &mut [u8],
    output: &mut gos_bus_client::Publisher<RenderFrame>,
) {
    const SIDE: u32 = 256;
    const BRICKS: u64 = 64;
    let heights: Vec<u8> = (0..SIDE * SIDE)
        .map(|i| ((i % SIDE) ^ (i / SIDE)) as u8)
        .collect();
    for i in 0..BRICKS {
        c.upload_texture(2000 + i, 16, &vec![(i * 4) as u8; 16 * 16 * 4])
            .unwrap();
    }
    let placements: Vec<BrickPlacement> = (0..BRICKS)
        .map(|i| BrickPlacement {
            magic: *b"GBRK",
            version: 1,
            texture_id: 2000 + i,
            map_x: (4 + i % 8) as i32,
            map_y: (4 + i / 8) as i32,
            ..bytemuck::Zeroable::zeroed()
        })
        .collect();
    let heightmap = RenderFrame {
        magic: *b"GFRM",
        version: RenderFrame::VERSION,
        kind: FRAME_TERRAIN_HEIGHTMAP,
        pixel_format: PIXEL_R8,
        source_id: 9,
        width: SIDE,
        height: SIDE,
        stride: SIDE,
        pixel_offset: size_of::<RenderFrame>() as u32,
        pixel_bytes: SIDE * SIDE,
        ..bytemuck::Zeroable::zeroed()
    };
    let _ = bus.remove_ring("terrain.bricks");
    let bricks_ring = bus
        .create_ring(
            "terrain.bricks",
            &RingConfig {
                slot_count: 128,
                slot_size: 64,
                layout: BrickPlacement::SCHEMA,
                single_producer: true,
                ..Default::default()
            },
        )
        .expect("ring");
    let brick_sub = bricks_ring.subscriber::<BrickPlacement>().unwrap();
    let mut brick_pub = bricks_ring.publisher::<BrickPlacement>().unwrap();
    let out_bytes = out_local.len();
    let (mut t_local, mut t_bus, mut t_ops) = (Vec::new(), Vec::new(), Vec::new());
    for f in 0..frames + 4 {
        let t = Instant::now();
        c.set_heightmap(9, HeightFormat::R8, (SIDE, SIDE, SIDE), &heights)
            .unwrap();
        for b in &placements {
            apply_brick(c, b).unwrap();
        }
        c.render(f as f32);
        c.read_back(out_local).unwrap();
        let local_time = t.elapsed();
        // The bus's own part (publish, receive, release) is timed apart: applying the records
        // is the same work either way.
        let mut ops = Duration::ZERO;
        let t = Instant::now();
        let o = Instant::now();
        let mut loan = frame_pub.loan().unwrap();
        *loan.header_mut() = heightmap;
        loan.tail_mut()[..heights.len()].copy_from_slice(&heights);
        loan.set_tail_len(heights.len()).unwrap();
        loan.commit().unwrap();
        for b in &placements {
            let mut loan = brick_pub.loan().unwrap();
            *loan.header_mut() = *b;
            loan.commit().unwrap();
        }
        let m = frame_sub.recv().unwrap();
        ops += o.elapsed();
        apply_frame(c, m.header(), m.bytes()).unwrap();
        drop(m);
        for _ in 0..BRICKS {
            let o = Instant::now();
            let m = brick_sub.recv().unwrap();
            let b = *m.header();
            drop(m);
            ops += o.elapsed();
            apply_brick(c, &b).unwrap();
        }
        render_into(c, output, out_bytes, f as f32);
        let bus_time = t.elapsed();
        if f >= 4 {
            t_local.push(local_time);
            t_bus.push(bus_time);
            t_ops.push(ops);
        }
    }
    print_split(
        &format!("The neural terrain with {BRICKS} bricks, its {SIDE}x{SIDE} heightmap and every placement sent each frame ({frames} frames, median)"),
        "received from render.frames and terrain.bricks",
        &format!("publish, receive, release: 1 heightmap, {BRICKS} placements"),
        (t_local, t_bus, t_ops),
    );
}

/// Renders a frame and reads it back into a loaned `render.output` slot of `out_bytes`.
fn render_into(
    c: &mut Compositor,
    output: &mut gos_bus_client::Publisher<RenderFrame>,
    out_bytes: usize,
    time: f32,
) {
    c.render(time);
    let mut loan = output.loan().unwrap();
    c.read_back(&mut loan.tail_mut()[..out_bytes]).unwrap();
    loan.set_tail_len(out_bytes).unwrap();
    loan.commit().unwrap();
}

/// A table of frames timed both ways (the medians of `local` and `bus`) and the bus's own
/// part of the bus frames (`ops`), under `title`.
fn print_split(
    title: &str,
    bus_way: &str,
    ops_way: &str,
    (local, bus, ops): (Vec<Duration>, Vec<Duration>, Vec<Duration>),
) {
    let (l, b, o) = (median(local), median(bus), median(ops));
    println!("\n### {title}\n");
    println!("| way | ms/frame | frames/s | bus / local |");
    println!("| --- | ---: | ---: | ---: |");
    println!(
        "| applied from process-local records | {:.2} | {:.1} | |",
        ms(l),
        1e3 / ms(l)
    );
    println!(
        "| {bus_way} | {:.2} | {:.1} | {:+.1}% |",
        ms(b),
        1e3 / ms(b),
        (ms(b) / ms(l) - 1.0) * 100.0
    );
    println!(
        "| of which the bus itself ({ops_way}) | {:.3} | | {:.2}% of a frame |",
        ms(o),
        ms(o) / ms(b) * 100.0
    );
}
