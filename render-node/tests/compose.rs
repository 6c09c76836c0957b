//! Golden-pixel checks of the composition on a real adapter (Mesa's lavapipe where there is
//! no GPU; CI installs it), and of the node's inputs: frames and RTS textures as records in
//! real shared-memory rings, good and bad. `GOS_RENDER_BACKEND` picks the backend (default
//! vulkan).

use gos_bus_client::{Bus, RenderFrame, RingConfig, RtsTexture};
use gos_layouts::records::{
    FRAME_TERRAIN_HEIGHTMAP, PIXEL_BGRA8, PIXEL_R32F, PIXEL_R8, PIXEL_RGBA8,
};
use gos_layouts::Record;
use gos_render_node::inputs::{apply_frame, apply_texture, Applied};
use gos_render_node::terrain::Camera;
use gos_render_node::{Backend, Compositor, Dirty, Gpu, Placement, RenderError};
use std::path::PathBuf;

const W: u32 = 256;
const H: u32 = 128;

fn compositor() -> Compositor {
    let backend = std::env::var("GOS_RENDER_BACKEND")
        .ok()
        .and_then(|b| Backend::parse(&b))
        .unwrap_or(Backend::Vulkan);
    let gpu = Gpu::open(backend).unwrap_or_else(|e| panic!("{e}"));
    Compositor::new(gpu, W, H).unwrap()
}

fn solid(w: u32, h: u32, rgba: [u8; 4]) -> Vec<u8> {
    rgba.iter()
        .copied()
        .cycle()
        .take((w * h * 4) as usize)
        .collect()
}

fn frame(c: &mut Compositor) -> Vec<u8> {
    c.render(0.0);
    let mut out = vec![0u8; (W * H * 4) as usize];
    c.read_back(&mut out).unwrap();
    out
}

fn px(img: &[u8], x: u32, y: u32) -> [u8; 4] {
    let i = ((y * W + x) * 4) as usize;
    img[i..i + 4].try_into().unwrap()
}

const RED: [u8; 4] = [255, 0, 0, 255];
const GREEN: [u8; 4] = [0, 255, 0, 255];
const BLUE: [u8; 4] = [0, 0, 255, 255];

fn place(x: i32, y: i32, z: i32) -> Placement {
    Placement {
        x,
        y,
        zoom: 1.0,
        z,
        alpha: 1.0,
    }
}

#[test]
fn two_windows_by_z_over_the_terrain() {
    let mut c = compositor();
    println!("adapter: {}", c.gpu().describe());
    let background = frame(&mut c);
    // The terrain is not flat: it has more than a handful of colours.
    let mut colours: Vec<[u8; 4]> = (0..W).map(|x| px(&background, x, H / 2)).collect();
    colours.sort();
    colours.dedup();
    assert!(colours.len() > 8, "a shaded terrain, not a flat fill");

    c.upload(1, 32, 16, 32 * 4, &solid(32, 16, RED), None)
        .unwrap();
    c.place(1, place(10, 20, 1));
    c.upload(2, 16, 16, 16 * 4, &solid(16, 16, GREEN), None)
        .unwrap();
    c.place(2, place(30, 25, 2));
    let img = frame(&mut c);
    assert_eq!(px(&img, 10, 20), RED, "top-left corner of window 1");
    assert_eq!(px(&img, 29, 35), RED);
    assert_eq!(
        px(&img, 41, 35),
        GREEN,
        "window 2 is nearer where they overlap"
    );
    assert_eq!(px(&img, 45, 40), GREEN, "bottom-right corner of window 2");
    assert_eq!(
        px(&img, 46, 40),
        px(&background, 46, 40),
        "just right of window 2"
    );
    assert_eq!(
        px(&img, 9, 20),
        px(&background, 9, 20),
        "just left of window 1"
    );
    // Every pixel outside the two windows is the background.
    for y in 0..H {
        for x in 0..W {
            let in1 = (10..42).contains(&x) && (20..36).contains(&y);
            let in2 = (30..46).contains(&x) && (25..41).contains(&y);
            if !in1 && !in2 {
                assert_eq!(px(&img, x, y), px(&background, x, y), "pixel {x},{y}");
            }
        }
    }
    // Swap the stacking order.
    c.place(1, place(10, 20, 3));
    let img = frame(&mut c);
    assert_eq!(px(&img, 35, 30), RED, "window 1 is nearer now");
}

#[test]
fn dirty_rectangle_updates_only_that_rectangle() {
    let mut c = compositor();
    c.upload(7, 16, 16, 64, &solid(16, 16, RED), None).unwrap();
    c.place(7, place(100, 50, 0));
    let before = frame(&mut c);
    // A buffer that is blue everywhere, uploaded only for a 4x3 rectangle at (5, 6).
    let blue = solid(16, 16, BLUE);
    c.upload(
        7,
        16,
        16,
        64,
        &blue,
        Some(Dirty {
            x: 5,
            y: 6,
            w: 4,
            h: 3,
        }),
    )
    .unwrap();
    let after = frame(&mut c);
    for y in 0..H {
        for x in 0..W {
            let inside = (105..109).contains(&x) && (56..59).contains(&y);
            let want = if inside { BLUE } else { px(&before, x, y) };
            assert_eq!(px(&after, x, y), want, "pixel {x},{y}");
        }
    }
}

#[test]
fn a_source_resized_mid_stream() {
    let mut c = compositor();
    let background = frame(&mut c);
    c.upload(3, 32, 32, 128, &solid(32, 32, GREEN), None)
        .unwrap();
    c.place(3, place(0, 0, 0));
    assert_eq!(px(&frame(&mut c), 31, 31), GREEN);
    c.upload(3, 8, 8, 32, &solid(8, 8, BLUE), None).unwrap();
    let img = frame(&mut c);
    assert_eq!(px(&img, 7, 7), BLUE, "the new size, same placement");
    assert_eq!(
        px(&img, 20, 20),
        px(&background, 20, 20),
        "the old area is background again"
    );
}

#[test]
fn zoom_scales_the_window() {
    let mut c = compositor();
    c.upload(4, 8, 8, 32, &solid(8, 8, RED), None).unwrap();
    c.place(
        4,
        Placement {
            x: 64,
            y: 64,
            zoom: 2.0,
            z: 0,
            alpha: 1.0,
        },
    );
    let img = frame(&mut c);
    assert_eq!(px(&img, 64, 64), RED);
    assert_eq!(px(&img, 79, 79), RED, "8 texels at zoom 2 cover 16 pixels");
    assert_ne!(px(&img, 80, 80), RED);
}

#[test]
fn bad_frames_are_refused_with_the_reason() {
    let mut c = compositor();
    let ok = solid(4, 4, RED);
    for (w, h, stride, len, dirty, needle) in [
        (0, 4, 16, 64, None, "size 0x4"),
        (
            4,
            4,
            8,
            64,
            None,
            "stride 8 is shorter than a row of 16 bytes",
        ),
        (4, 4, 16, 40, None, "needs 64 bytes, the frame has 40"),
        (100_000, 4, 400_000, 64, None, "is not within"),
        (
            4,
            4,
            16,
            64,
            Some(Dirty {
                x: 3,
                y: 0,
                w: 2,
                h: 1,
            }),
            "dirty rectangle",
        ),
    ] {
        let e = c
            .upload(9, w, h, stride, &ok[..len.min(ok.len())], dirty)
            .unwrap_err();
        assert!(matches!(e, RenderError::BadFrame { source_id: 9, .. }));
        assert!(e.to_string().contains(needle), "{needle:?} not in {e}");
    }
    // Nothing was half-made: the compositor still renders, without a GPU error.
    let _ = frame(&mut c);
    assert_eq!(c.gpu().errors(), 0);
}

/// A window frame record: `w` x `h` RGBA8 at (`x`, `y`), pixels right after the record.
fn window(source_id: u64, (x, y): (i32, i32), (w, h): (u32, u32)) -> RenderFrame {
    RenderFrame {
        magic: *b"GFRM",
        version: RenderFrame::VERSION,
        pixel_format: PIXEL_RGBA8,
        source_id,
        width: w,
        height: h,
        stride: w * 4,
        pos_x: x,
        pos_y: y,
        zoom: 1.0,
        z_order: 1,
        pixel_offset: size_of::<RenderFrame>() as u32,
        pixel_bytes: w * h * 4,
        ..bytemuck::Zeroable::zeroed()
    }
}

/// A payload: the record, then `pixels`.
fn payload<T: Record>(record: &T, pixels: &[u8]) -> Vec<u8> {
    let mut b = bytemuck::bytes_of(record).to_vec();
    b.extend_from_slice(pixels);
    b
}

#[test]
fn frames_as_records_bgra_and_every_bad_header() {
    let mut c = compositor();
    let background = frame(&mut c);
    // BGRA pixels (blue 0, green 0, red 255) show red.
    let f = RenderFrame {
        pixel_format: PIXEL_BGRA8,
        ..window(5, (20, 20), (8, 8))
    };
    let applied = apply_frame(&mut c, &f, &payload(&f, &solid(8, 8, [0, 0, 255, 255]))).unwrap();
    assert_eq!(applied, Applied::Window { bytes: 8 * 8 * 4 });
    let img = frame(&mut c);
    assert_eq!(px(&img, 20, 20), RED);
    assert_eq!(px(&img, 27, 27), RED);
    assert_eq!(px(&img, 28, 28), px(&background, 28, 28));

    let good = window(6, (0, 0), (4, 4));
    let pixels = solid(4, 4, GREEN);
    let cases: Vec<(RenderFrame, usize, &str)> = vec![
        (
            RenderFrame {
                magic: *b"XXXX",
                ..good
            },
            64,
            "magic",
        ),
        (RenderFrame { version: 1, ..good }, 64, "version 1 is not"),
        (RenderFrame { kind: 9, ..good }, 64, "unknown kind 9"),
        (
            RenderFrame {
                pixel_format: 7,
                ..good
            },
            64,
            "pixel format 7",
        ),
        (
            RenderFrame {
                pixel_format: PIXEL_R8,
                ..good
            },
            64,
            "pixel format 3 is not a window's",
        ),
        (good, 40, "past the"),
        (
            RenderFrame {
                pixel_offset: u32::MAX,
                ..good
            },
            64,
            "past the",
        ),
        (
            RenderFrame {
                pixel_bytes: 32,
                ..good
            },
            64,
            "needs 64 bytes, the frame has 32",
        ),
        (
            RenderFrame {
                stride: 18,
                pixel_bytes: 72,
                ..good
            },
            72,
            "not a multiple",
        ),
        (RenderFrame { width: 0, ..good }, 64, "size 0x4"),
        (
            RenderFrame {
                height: u32::MAX,
                ..good
            },
            64,
            "is not within",
        ),
        (RenderFrame { zoom: -1.0, ..good }, 64, "zoom -1"),
        (
            RenderFrame {
                zoom: f32::NAN,
                ..good
            },
            64,
            "zoom NaN",
        ),
        (RenderFrame { zoom: 1e9, ..good }, 64, "zoom 1000000000"),
        (
            RenderFrame {
                kind: FRAME_TERRAIN_HEIGHTMAP,
                pixel_format: PIXEL_BGRA8,
                ..good
            },
            64,
            "not a heightmap's",
        ),
        (
            RenderFrame {
                texture_id: 42,
                pixel_bytes: 0,
                width: 1 << 30,
                ..good
            },
            0,
            "is not within",
        ),
    ];
    for (f, len, needle) in cases {
        let body = payload(&f, &pixels[..len.min(pixels.len())]);
        let body = if len > pixels.len() {
            payload(&f, &solid(len as u32 / 4, 1, GREEN))
        } else {
            body
        };
        let e = apply_frame(&mut c, &f, &body).unwrap_err();
        assert!(
            matches!(e, RenderError::BadFrame { source_id: 6, .. }),
            "{e}"
        );
        assert!(e.to_string().contains(needle), "{needle:?} not in {e}");
    }
    let img = frame(&mut c);
    assert_eq!(
        px(&img, 1, 1),
        px(&background, 1, 1),
        "no bad frame was drawn"
    );
    assert_eq!(c.gpu().errors(), 0, "no input reached the GPU unchecked");
}

/// The first row from the top, in column `x`, that is not sky (the sky is the top row's).
fn terrain_top(img: &[u8], x: u32) -> u32 {
    let sky = px(img, x, 0);
    (0..H).find(|&y| px(img, x, y) != sky).unwrap_or(H)
}

#[test]
fn a_published_heightmap_displaces_the_terrain_mesh_in_perspective() {
    use gos_render_node::terrain::{world, HEIGHT_SCALE};
    let mut c = compositor();
    // A narrower view of the far edge than the default camera's, so that heights there
    // move many pixels of this small output.
    c.set_camera(Camera {
        eye: [0.0, 300.0, 1100.0],
        target: [0.0, 0.0, -500.0],
        fov_y_degrees: 24.0,
        ..Camera::default()
    });
    let camera = c.camera();
    let at = |u: f32, v: f32, h: f32| {
        let (x, y) = camera.project(world(u, v, h), (W, H)).unwrap();
        (x.round() as u32, y.round() as u32)
    };
    let default = frame(&mut c);
    let (cx, cy) = at(0.5, 0.5, 0.0);
    let colours = |img: &[u8]| {
        let mut v: Vec<[u8; 4]> = (cx - 40..cx + 40).map(|x| px(img, x, cy)).collect();
        v.sort();
        v.dedup();
        v.len()
    };
    assert!(colours(&default) > 4, "the default terrain is not flat");
    let hm = |format: u16, bytes: Vec<u8>, (w, h): (u32, u32), bpp: u32| {
        let f = RenderFrame {
            kind: FRAME_TERRAIN_HEIGHTMAP,
            pixel_format: format,
            stride: w * bpp,
            pixel_bytes: bytes.len() as u32,
            ..window(77, (0, 0), (w, h))
        };
        (f, payload(&f, &bytes))
    };
    // A flat heightmap at 0: one colour across the middle of the map (a plane, lit evenly),
    // and its far edge where the camera puts the map's far edge.
    let (f, body) = hm(PIXEL_R8, vec![0; 64 * 32], (64, 32), 1);
    assert_eq!(
        apply_frame(&mut c, &f, &body).unwrap(),
        Applied::Heightmap { bytes: 64 * 32 }
    );
    let low = frame(&mut c);
    assert_eq!(colours(&low), 1, "a flat heightmap is a flat plane");
    let flat_top = terrain_top(&low, cx);
    assert!(
        flat_top.abs_diff(at(0.5, 0.0, 0.0).1) <= 2,
        "far edge at row {flat_top}"
    );
    // Flat at 1.0, as 32-bit floats: the plane at the height scale, brighter (greener).
    let ones: Vec<u8> = (0..16 * 16).flat_map(|_| 1.0f32.to_le_bytes()).collect();
    let (f, body) = hm(PIXEL_R32F, ones, (16, 16), 4);
    apply_frame(&mut c, &f, &body).unwrap();
    let high = frame(&mut c);
    let (lo, hi) = (px(&low, cx, cy), px(&high, cx, cy));
    assert!(
        hi[1] > lo[1] + 50,
        "higher ground is greener: {lo:?} vs {hi:?}"
    );
    let raised_top = terrain_top(&high, cx);
    assert!(
        raised_top.abs_diff(at(0.5, 0.0, HEIGHT_SCALE).1) <= 2,
        "raised far edge at {raised_top}"
    );
    // A ramp in the red channel of RGBA8, high at the far side (the heightmap's first row),
    // 0 at the near side: the far side shows higher on screen than on the flat map...
    let ramp = |far_high: bool| -> Vec<u8> {
        (0..16 * 16)
            .flat_map(|i| {
                let row = i / 16;
                let r = if far_high { 255 - row * 17 } else { row * 17 };
                [r as u8, 0, 0, 255]
            })
            .collect()
    };
    let (f, body) = hm(PIXEL_RGBA8, ramp(true), (16, 16), 4);
    apply_frame(&mut c, &f, &body).unwrap();
    let rising = frame(&mut c);
    let top = terrain_top(&rising, cx);
    let want = at(0.5, 0.0, HEIGHT_SCALE).1;
    assert!(
        flat_top >= want + 8,
        "the camera shows a rise of the far edge: {flat_top} to {want}"
    );
    assert!(
        top.abs_diff(want) <= 2,
        "the far side rises on screen: row {top}, projected {want}, flat {flat_top}"
    );
    // ...and the opposite ramp leaves the far edge where the flat one was.
    let (f, body) = hm(PIXEL_RGBA8, ramp(false), (16, 16), 4);
    apply_frame(&mut c, &f, &body).unwrap();
    let falling = frame(&mut c);
    assert!(terrain_top(&falling, cx).abs_diff(flat_top) <= 2);
    assert_eq!(c.gpu().errors(), 0);
}

fn fixtures() -> PathBuf {
    gos_rts::samples_dir()
}

#[test]
fn rts_textures_through_the_bus_shown_by_a_window_and_a_forged_one_refused() {
    let file = fixtures().join("blob-65536.rts.png");
    let rts = gos_rts::decode_file(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let side = rts.side;
    assert_eq!(side, 128);
    // A real ring in shared memory; the file is decoded straight into a loaned slot.
    let name = format!("rtex{}", std::process::id());
    let bus = Bus::standalone(&name).unwrap();
    let _ = bus.remove_ring("rts.textures");
    bus.create_ring(
        "rts.textures",
        &RingConfig {
            slot_count: 4,
            slot_size: 1 << 20,
            layout: RtsTexture::SCHEMA,
            ..Default::default()
        },
    )
    .unwrap();
    let sub = bus.subscriber::<RtsTexture>("rts.textures").unwrap();
    let mut publisher = bus.publisher::<RtsTexture>("rts.textures").unwrap();
    let desc = gos_bus_client::rts::publish_file(&mut publisher, &file).unwrap();

    let mut c = compositor();
    let background = frame(&mut c);
    // A window names the texture before it arrives: nothing drawn yet.
    let shows = RenderFrame {
        texture_id: desc.texture_id,
        pixel_bytes: 0,
        width: 0,
        height: 0,
        ..window(11, (100, 0), (0, 0))
    };
    assert_eq!(
        apply_frame(&mut c, &shows, &payload(&shows, &[])).unwrap(),
        Applied::ShowsTexture
    );
    assert_eq!(frame(&mut c), background, "the texture has not arrived");

    let msg = sub.try_recv().unwrap().expect("the texture was published");
    let body = msg.bytes().to_vec();
    drop(msg);
    assert_eq!(
        apply_texture(&mut c, &desc, &body).unwrap(),
        (side * side * 4) as u64
    );
    assert!(c.has_texture(desc.texture_id));
    let img = frame(&mut c);
    // Texel (i, j) of the texture at (100 + i, j), opaque (its alpha carries data).
    for j in 0..H.min(side) {
        for i in 0..side {
            let t = ((j * side + i) * 4) as usize;
            let want = [rts.pixels[t], rts.pixels[t + 1], rts.pixels[t + 2], 255];
            assert_eq!(px(&img, 100 + i, j), want, "texel {i},{j}");
        }
    }
    assert_eq!(px(&img, 99, 5), px(&background, 99, 5));

    // Forged on its way: one data byte changed, or the descriptor lying about the sizes.
    let mut forged = body.clone();
    forged[desc.pixel_offset as usize] ^= 0x5a;
    let e = apply_texture(&mut c, &desc, &forged).unwrap_err();
    assert!(e.to_string().contains("SHA-256 mismatch"), "{e}");
    for (t, needle) in [
        (
            RtsTexture {
                pixel_bytes: 4,
                ..desc
            },
            "pixel_bytes 4",
        ),
        (
            RtsTexture {
                width: 100,
                height: 100,
                ..desc
            },
            "power-of-two",
        ),
        (
            RtsTexture {
                width: 256,
                height: 256,
                pixel_bytes: 256 * 256 * 4,
                ..desc
            },
            "past the",
        ),
        (
            RtsTexture {
                metadata_len: 1 << 30,
                ..desc
            },
            "metadata_len",
        ),
        (
            RtsTexture {
                texture_id: 0,
                ..desc
            },
            "texture id 0",
        ),
        (
            RtsTexture {
                pixel_format: 3,
                ..desc
            },
            "pixel format 3",
        ),
    ] {
        let e = apply_texture(&mut c, &t, &body).unwrap_err();
        assert!(matches!(e, RenderError::BadTexture { .. }), "{e}");
        assert!(e.to_string().contains(needle), "{needle:?} not in {e}");
    }
    // The forged ones left the good texture as it was.
    assert_eq!(frame(&mut c), img);
    assert_eq!(c.gpu().errors(), 0);
    drop((sub, publisher));
    let _ = bus.remove_ring("rts.textures");
}

#[test]
fn gpu_time_is_measured_where_the_adapter_has_timestamps() {
    let mut c = compositor();
    println!(
        "adapter: {} timestamps: {}",
        c.gpu().describe(),
        c.gpu().timestamps
    );
    assert_eq!(c.gpu_time(), None, "nothing measured before a frame");
    let _ = frame(&mut c);
    match c.gpu_time() {
        Some(t) => {
            assert!(c.gpu().timestamps);
            assert!(
                t > std::time::Duration::ZERO && t < std::time::Duration::from_secs(10),
                "{t:?}"
            );
        }
        None => assert!(!c.gpu().timestamps, "timestamps enabled but nothing read"),
    }
}

#[test]
fn present_draws_the_frame_onto_a_target_of_another_format_and_size() {
    let mut c = compositor();
    c.upload(1, 32, 16, 32 * 4, &solid(32, 16, RED), None)
        .unwrap();
    c.place(1, place(10, 20, 1));
    c.render(0.0);
    // What a window's surface gets: BGRA, twice the size (stretched).
    let (tw, th) = (W * 2, H * 2);
    let device = &c.gpu().device;
    let target = device.create_texture(&wgpu::TextureDescriptor {
        label: Some("target"),
        size: wgpu::Extent3d {
            width: tw,
            height: th,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Bgra8Unorm,
        usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
        view_formats: &[],
    });
    let read = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("read"),
        size: (tw * th * 4) as u64,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    c.present(
        &target.create_view(&Default::default()),
        wgpu::TextureFormat::Bgra8Unorm,
    );
    let gpu = c.gpu();
    let mut enc = gpu.device.create_command_encoder(&Default::default());
    enc.copy_texture_to_buffer(
        target.as_image_copy(),
        wgpu::TexelCopyBufferInfo {
            buffer: &read,
            layout: wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(tw * 4),
                rows_per_image: None,
            },
        },
        target.size(),
    );
    gpu.queue.submit([enc.finish()]);
    read.slice(..)
        .map_async(wgpu::MapMode::Read, |r| r.unwrap());
    gpu.device
        .poll(wgpu::PollType::wait_indefinitely())
        .unwrap();
    let data = read.slice(..).get_mapped_range().unwrap().to_vec();
    let at = |x: u32, y: u32| {
        let i = ((y * tw + x) * 4) as usize;
        [data[i + 2], data[i + 1], data[i], data[i + 3]] // BGRA in memory
    };
    // Window 1 covers output (10..42, 20..36): target (20..84, 40..72).
    assert_eq!(at(21, 41), RED);
    assert_eq!(at(82, 70), RED);
    assert_ne!(at(18, 41), RED);
    assert_ne!(at(86, 70), RED);
    assert_eq!(c.gpu().errors(), 0);
}

#[test]
fn a_keepalive_moves_a_window_without_pixels_and_close_removes_it() {
    use gos_layouts::records::{FRAME_FLAG_CLOSE, FRAME_FLAG_KEEPALIVE};
    let mut c = compositor();
    let f = window(9, (10, 10), (8, 8));
    apply_frame(&mut c, &f, &payload(&f, &solid(8, 8, RED))).unwrap();
    assert_eq!(px(&frame(&mut c), 12, 12), RED);
    // A keep-alive carries no pixels: the picture stays, at the placement it names.
    let keep = RenderFrame {
        flags: FRAME_FLAG_KEEPALIVE,
        pixel_bytes: 0,
        ..window(9, (40, 20), (8, 8))
    };
    assert_eq!(
        apply_frame(&mut c, &keep, &payload(&keep, &[])).unwrap(),
        Applied::KeepAlive { known: true }
    );
    let img = frame(&mut c);
    assert_eq!(
        px(&img, 42, 22),
        RED,
        "the window moved with the keep-alive"
    );
    assert_ne!(px(&img, 12, 12), RED, "and left its old place");
    // One for a source the node does not hold changes nothing.
    let stranger = RenderFrame {
        source_id: 77,
        ..keep
    };
    assert_eq!(
        apply_frame(&mut c, &stranger, &payload(&stranger, &[])).unwrap(),
        Applied::KeepAlive { known: false }
    );
    assert_eq!(frame(&mut c), img);
    // Close removes the window at once.
    let close = RenderFrame {
        flags: FRAME_FLAG_CLOSE,
        pixel_bytes: 0,
        ..window(9, (40, 20), (8, 8))
    };
    assert_eq!(
        apply_frame(&mut c, &close, &payload(&close, &[])).unwrap(),
        Applied::Closed
    );
    assert_ne!(px(&frame(&mut c), 42, 22), RED);
    assert!(!c.has_source(9));
}

#[test]
fn a_brick_shows_its_texels_where_its_map_cell_projects() {
    use gos_layouts::records::BRICK_MAP_CELLS;
    use gos_render_node::terrain::world;
    let mut c = compositor();
    // Flat ground at 0, so that the brick lies at its lift above height 0.
    let f = RenderFrame {
        kind: FRAME_TERRAIN_HEIGHTMAP,
        pixel_format: PIXEL_R8,
        stride: 8,
        pixel_bytes: 64,
        ..window(77, (0, 0), (8, 8))
    };
    apply_frame(&mut c, &f, &payload(&f, &[0; 64])).unwrap();
    // A 16x16 texture: its left half red, its right half blue.
    let texels: Vec<u8> = (0..16 * 16)
        .flat_map(|i| if i % 16 < 8 { RED } else { BLUE })
        .collect();
    c.upload_texture(5, 16, &texels).unwrap();
    let (cx, cy) = (6, 10);
    c.place_brick((cx, cy), 5, 0.0).unwrap();
    let n = BRICK_MAP_CELLS as f32;
    let at = |c: &Compositor, du: f32, dv: f32| {
        let u = (cx as f32 + du) / n;
        let v = (cy as f32 + dv) / n;
        let lift = gos_render_node::DEFAULT_BRICK_LIFT;
        let (x, y) = c.camera().project(world(u, v, lift), (W, H)).unwrap();
        (x.round() as u32, y.round() as u32)
    };
    let img = frame(&mut c);
    let (lx, ly) = at(&c, 0.25, 0.5);
    let (rx, ry) = at(&c, 0.75, 0.5);
    assert_eq!(
        px(&img, lx, ly),
        RED,
        "the texture's left half at the cell's west half"
    );
    assert_eq!(px(&img, rx, ry), BLUE, "its right half at the east half");
    // Beside the cell: terrain, not the brick.
    let (ox, oy) = at(&c, 2.5, 0.5);
    assert!(![RED, BLUE].contains(&px(&img, ox, oy)));
    // Cells off the terrain, texture 0 and a wild lift are refused, in words.
    assert!(c
        .place_brick((BRICK_MAP_CELLS as i32, 0), 5, 0.0)
        .unwrap_err()
        .contains("off the terrain"));
    assert!(c.place_brick((0, -1), 5, 0.0).is_err());
    assert!(c
        .place_brick((0, 0), 0, 0.0)
        .unwrap_err()
        .contains("texture id 0"));
    assert!(c.place_brick((0, 0), 5, f32::NAN).is_err());
    assert_eq!(c.bricks(), vec![((cx, cy), 5)]);
    // Taken off, the cell shows terrain again.
    assert!(c.remove_brick((cx, cy)));
    let img = frame(&mut c);
    assert!(![RED, BLUE].contains(&px(&img, lx, ly)));
    assert_eq!(c.gpu().errors(), 0);
}

#[test]
fn the_crt_style_darkens_every_other_scanline_and_a_broken_one_keeps_the_last_good() {
    let crt = include_str!("../styles/crt_cyan.wgsl");
    let mut c = compositor();
    c.load_style("crt_cyan", crt).unwrap();
    assert_eq!(c.styles(), vec!["crt_cyan".to_string()]);
    // A flat grey window, 64x32 at (100, 40), named crt_cyan.
    let grey = [160, 160, 160, 255];
    let mut f = window(3, (100, 40), (64, 32));
    f.style[..8].copy_from_slice(b"crt_cyan");
    apply_frame(&mut c, &f, &payload(&f, &solid(64, 32, grey))).unwrap();
    let img = frame(&mut c);
    // Near the centre (no curvature there): even rows bright and cyan, odd rows darker.
    let even = px(&img, 132, 56);
    let odd = px(&img, 132, 57);
    assert!(even[0] < even[1] && even[1] == even[2], "cyan: {even:?}");
    assert!(
        (odd[1] as u32) < even[1] as u32 * 6 / 10,
        "every other scanline darker: {even:?} / {odd:?}"
    );
    // The same window plain: no scanlines.
    let mut plain = f;
    plain.style = [0; 16];
    apply_frame(&mut c, &plain, &payload(&plain, &solid(64, 32, grey))).unwrap();
    let img = frame(&mut c);
    assert_eq!((px(&img, 132, 56), px(&img, 132, 57)), (grey, grey));
    // A broken version is refused with its reason, and the last good one stays.
    let err = c
        .load_style("crt_cyan", "fn style(uv: vec2<f32>) -> nonsense {}")
        .unwrap_err();
    assert!(!err.is_empty() && !err.contains('\n'), "{err}");
    apply_frame(&mut c, &f, &payload(&f, &solid(64, 32, grey))).unwrap();
    let img = frame(&mut c);
    assert!(
        (px(&img, 132, 57)[1] as u32) < px(&img, 132, 56)[1] as u32 * 6 / 10,
        "the previous style still draws"
    );
    assert!(c.load_style("Bad Name", crt).is_err());
    assert_eq!(c.gpu().errors(), 0, "a refused style is not a GPU error");
}

#[test]
fn a_style_folder_is_loaded_and_reloaded_and_a_broken_file_keeps_the_last_good() {
    use gos_render_node::styles::StyleFolder;
    use std::time::{Duration, SystemTime};
    let dir = std::env::temp_dir().join(format!("gos-styles-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("half.wgsl");
    std::fs::write(
        &file,
        "fn style(uv: vec2<f32>, size: vec2<f32>) -> vec4<f32> { return vec4<f32>(window_texel(uv).rgb * 0.5, 1.0); }",
    )
    .unwrap();
    let mut c = compositor();
    let mut folder = StyleFolder::new(&dir, Duration::ZERO);
    let said = folder.poll(&mut c);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].starts_with("style half loaded"), "{said:?}");
    assert!(
        folder.poll(&mut c).is_empty(),
        "nothing changed, nothing reloaded"
    );
    // The file is rewritten broken (a later modification time): refused in one line, and
    // the style stays as it was.
    std::fs::write(
        &file,
        "fn style(uv: vec2<f32>, size: vec2<f32>) -> vec4<f32> { return oops; }",
    )
    .unwrap();
    let later = SystemTime::now() + Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let said = folder.poll(&mut c);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].contains("refused") && said[0].contains("keeping the last good one"),
        "{said:?}"
    );
    assert_eq!(c.styles(), vec!["half".to_string()]);
    let mut f = window(4, (10, 10), (8, 8));
    f.style[..4].copy_from_slice(b"half");
    apply_frame(&mut c, &f, &payload(&f, &solid(8, 8, [200, 100, 50, 255]))).unwrap();
    let p = px(&frame(&mut c), 12, 12);
    assert_eq!(
        [p[0], p[1], p[2]],
        [100, 50, 25],
        "the last good style draws"
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(c.gpu().errors(), 0);
}

#[test]
fn a_heightmap_with_a_height_that_is_not_a_number_is_refused() {
    let mut c = compositor();
    let mut heights: Vec<u8> = (0..8 * 8).flat_map(|_| 0.5f32.to_le_bytes()).collect();
    heights[12..16].copy_from_slice(&f32::NAN.to_le_bytes());
    let f = RenderFrame {
        kind: FRAME_TERRAIN_HEIGHTMAP,
        pixel_format: PIXEL_R32F,
        stride: 32,
        pixel_bytes: heights.len() as u32,
        ..window(77, (0, 0), (8, 8))
    };
    let e = apply_frame(&mut c, &f, &payload(&f, &heights)).unwrap_err();
    assert!(e.to_string().contains("not a finite number"), "{e}");
    assert_eq!(c.gpu().errors(), 0);
}

/// A terminal frame record: `cols` x `rows` cells at (`x`, `y`), cells right after the record.
fn terminal_frame(source_id: u64, (x, y): (i32, i32), (cols, rows): (u32, u32)) -> RenderFrame {
    use gos_layouts::records::{FRAME_NEURAL_CONSOLE, PIXEL_CELLS};
    RenderFrame {
        kind: FRAME_NEURAL_CONSOLE,
        pixel_format: PIXEL_CELLS,
        stride: cols * 8,
        pixel_bytes: cols * rows * 8,
        ..window(source_id, (x, y), (cols, rows))
    }
}

/// Output pixels of the 8x16 cell at output (`x`, `y`): whether each is `fg` (lit) or `bg`.
fn cell_pixels(img: &[u8], (x, y): (u32, u32), fg: [u8; 4], bg: [u8; 4]) -> Vec<u8> {
    let mut lit = Vec::new();
    for gy in 0..16 {
        for gx in 0..8 {
            let p = px(img, x + gx, y + gy);
            assert!(
                p == fg || p == bg,
                "pixel ({gx}, {gy}) of the cell is {p:?}, neither {fg:?} nor {bg:?}"
            );
            lit.push(if p == fg { 255 } else { 0 });
        }
    }
    lit
}

#[test]
fn a_terminal_shows_the_glyphs_of_its_text_in_their_colours() {
    use gos_bus_client::terminal::Terminal;
    use gos_render_node::glyphs::bitmap;
    let mut c = compositor();
    // Text with ANSI colours through the terminal buffer, as a producer writes it.
    let mut term = Terminal::new(12, 3).unwrap();
    term.write("A\x1b[32mg\x1b[0m\x1b[7mZ\x1b[0m\u{e9}\u{2588}\n".as_bytes());
    let f = terminal_frame(30, (16, 8), (12, 3));
    let mut cells = vec![0u8; term.byte_len()];
    term.copy_cells(&mut cells).unwrap();
    let applied = apply_frame(&mut c, &f, &payload(&f, &cells)).unwrap();
    assert_eq!(applied, Applied::Window { bytes: 12 * 3 * 8 });
    let img = frame(&mut c);
    // xterm's default palette: 7 (229, 229, 229) on 0 (black); 2 is (0, 205, 0).
    const GREY: [u8; 4] = [229, 229, 229, 255];
    const BLACK: [u8; 4] = [0, 0, 0, 255];
    const GREEN: [u8; 4] = [0, 205, 0, 255];
    let at = |col: u32, row: u32| (16 + col * 8, 8 + row * 16);
    for (col, ch, fg, bg) in [
        (0, 'A', GREY, BLACK),
        (1, 'g', GREEN, BLACK),
        // Inverse: black on grey, so lit pixels are black.
        (2, 'Z', BLACK, GREY),
        // Loaded into the atlas when first seen.
        (3, '\u{e9}', GREY, BLACK),
        (4, '\u{2588}', GREY, BLACK),
    ] {
        let want = bitmap(ch).unwrap();
        assert!(want.contains(&255), "{ch:?} has lit pixels");
        assert_eq!(
            cell_pixels(&img, at(col, 0), fg, bg),
            want.to_vec(),
            "the glyph of {ch:?} at column {col}"
        );
    }
    // The cursor, at the start of the second row, is a block: a blank shown inverse.
    assert_eq!(cell_pixels(&img, at(0, 1), BLACK, GREY), vec![0; 128]);
    assert_eq!(term.cursor(), (0, 1));
    // New text redraws the window from its cells.
    term.write(b"\x1b[1;1H\x1b[2KB");
    term.copy_cells(&mut cells).unwrap();
    apply_frame(&mut c, &f, &payload(&f, &cells)).unwrap();
    let img = frame(&mut c);
    assert_eq!(
        cell_pixels(&img, at(0, 0), GREY, BLACK),
        bitmap('B').unwrap().to_vec()
    );
    assert_eq!(term.cursor(), (1, 0));
    assert_eq!(
        cell_pixels(&img, at(1, 0), BLACK, GREY),
        vec![0; 128],
        "the cursor"
    );
    assert_eq!(
        cell_pixels(&img, at(2, 0), GREY, BLACK),
        vec![0; 128],
        "erased"
    );
    // Cells that do not fit the bytes are refused.
    let short = RenderFrame {
        pixel_bytes: 12 * 3 * 8 - 1,
        ..f
    };
    let e = apply_frame(&mut c, &short, &payload(&short, &cells[..12 * 3 * 8 - 1]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad frame from source 30"), "{e}");
}

#[test]
fn bad_terminal_frames_are_refused_with_the_reason() {
    use gos_layouts::records::{PIXEL_CELLS, TERMINAL_MAX_COLUMNS, TERMINAL_MAX_ROWS};
    let mut c = compositor();
    let background = frame(&mut c);
    let good = terminal_frame(31, (0, 0), (4, 2));
    // A grid past the bound: a few bytes of cells would make a texture 64 times larger.
    let wide = terminal_frame(31, (0, 0), (TERMINAL_MAX_COLUMNS + 1, 1));
    let tall = terminal_frame(31, (0, 0), (1, TERMINAL_MAX_ROWS + 1));
    let cases: Vec<(RenderFrame, usize, &str)> = vec![
        (wide, wide.pixel_bytes as usize, "is larger than 256x128"),
        (tall, tall.pixel_bytes as usize, "is larger than 256x128"),
        (RenderFrame { width: 0, ..good }, 64, "size 0x2"),
        (RenderFrame { height: 0, ..good }, 64, "size 4x0"),
        (
            RenderFrame { stride: 31, ..good },
            64,
            "shorter than a row of 32",
        ),
        (
            RenderFrame {
                stride: 36,
                pixel_bytes: 68,
                ..good
            },
            68,
            "not a multiple of the 8-byte",
        ),
        (
            RenderFrame {
                pixel_bytes: 63,
                ..good
            },
            63,
            "needs 64 bytes",
        ),
        (
            RenderFrame {
                kind: FRAME_TERRAIN_HEIGHTMAP,
                pixel_format: PIXEL_CELLS,
                ..good
            },
            64,
            "not a heightmap's",
        ),
    ];
    for (f, len, needle) in cases {
        // Cells of every code point the payload happens to hold, invalid ones included.
        let cells: Vec<u8> = (0..len).map(|i| (i * 37) as u8).collect();
        let e = apply_frame(&mut c, &f, &payload(&f, &cells)).unwrap_err();
        assert!(
            matches!(e, RenderError::BadFrame { source_id: 31, .. }),
            "{e}"
        );
        assert!(e.to_string().contains(needle), "{needle:?} not in {e}");
    }
    assert!(!c.has_source(31));
    // Any bytes as cells (invalid code points, any colours and attributes) draw, as U+FFFD
    // where they are not characters.
    let noise: Vec<u8> = (0..64u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    apply_frame(&mut c, &good, &payload(&good, &noise)).unwrap();
    assert_ne!(frame(&mut c), background);
}

#[test]
fn decorations_lie_at_their_offsets_with_the_title_and_show_the_focus() {
    use gos_layouts::records::{FRAME_FLAG_DECORATED, FRAME_TITLE_BAR};
    use gos_render_node::glyphs::bitmap;
    use gos_render_node::text::decoration_colours;
    let mut c = compositor();
    let background = frame(&mut c);
    let (x, y, w, h) = (60u32, 50u32, 96u32, 40u32);
    let mut f = RenderFrame {
        flags: FRAME_FLAG_DECORATED,
        ..window(5, (x as i32, y as i32), (w, h))
    };
    f.title[..2].copy_from_slice(b"Hi");
    apply_frame(&mut c, &f, &payload(&f, &solid(w, h, BLUE))).unwrap();
    let img = frame(&mut c);
    let [bar, border, ink] = decoration_colours(false);
    let close = |a: [u8; 4], b: [u8; 4]| a.iter().zip(b).all(|(a, b)| a.abs_diff(b) <= 1);
    let bar_top = y - FRAME_TITLE_BAR;
    // The window's pixels are where they were; the decorations lie outside them.
    assert_eq!(px(&img, x, y), BLUE);
    assert_eq!(px(&img, x + w - 1, y + h - 1), BLUE);
    for (px_at, want, what) in [
        ((x - 1, y + 10), border, "left border"),
        ((x - 2, y + 10), border, "left border, outer column"),
        ((x + w, y + 10), border, "right border"),
        ((x + w + 1, y + 10), border, "right border, outer column"),
        ((x + 10, y + h), border, "bottom border"),
        ((x + 10, y + h + 1), border, "bottom border, outer row"),
        ((x + 10, bar_top - 1), border, "top border"),
        ((x + 10, bar_top - 2), border, "top border, outer row"),
        ((x + w - 3, bar_top + 1), bar, "title bar, right"),
        ((x + 2, y - 1), bar, "title bar, bottom row"),
    ] {
        let got = px(&img, px_at.0, px_at.1);
        assert!(
            close(got, want),
            "{what} at {px_at:?}: {got:?}, want {want:?}"
        );
    }
    // Outside the border, the background.
    for (bx, by) in [
        (x - 3, y + 10),
        (x + w + 2, y + 10),
        (x + 10, y + h + 2),
        (x + 10, bar_top - 3),
    ] {
        assert_eq!(
            px(&img, bx, by),
            px(&background, bx, by),
            "({bx}, {by}) is outside"
        );
    }
    // The title's glyphs, 8 px in from the window's left and 7 px down the bar.
    for (i, ch) in ['H', 'i'].into_iter().enumerate() {
        let want = bitmap(ch).unwrap();
        for gy in 0..16 {
            for gx in 0..8 {
                let p = px(&img, x + 8 + i as u32 * 8 + gx, bar_top + 7 + gy);
                let lit = want[(gy * 8 + gx) as usize] == 255;
                let expected = if lit { ink } else { bar };
                assert!(
                    close(p, expected),
                    "{ch:?} pixel ({gx}, {gy}): {p:?}, want {expected:?}"
                );
            }
        }
    }
    // Focus shows in the colours; a window without the flag has no decorations.
    let focused = RenderFrame { focus: 1, ..f };
    apply_frame(&mut c, &focused, &payload(&focused, &solid(w, h, BLUE))).unwrap();
    assert_eq!(c.focused(), Some(5));
    let img = frame(&mut c);
    let [fbar, fborder, _] = decoration_colours(true);
    assert!(close(px(&img, x - 1, y + 10), fborder));
    assert!(close(px(&img, x + w - 3, bar_top + 1), fbar));
    assert_ne!(fborder, border);
    let plain = RenderFrame { flags: 0, ..f };
    apply_frame(&mut c, &plain, &payload(&plain, &solid(w, h, BLUE))).unwrap();
    let img = frame(&mut c);
    assert_eq!(px(&img, x - 1, y + 10), px(&background, x - 1, y + 10));
    assert_eq!(px(&img, x + 10, y - 5), px(&background, x + 10, y - 5));
}
