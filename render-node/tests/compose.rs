//! Golden-pixel checks of the composition on a real adapter (Mesa's lavapipe where there is
//! no GPU; CI installs it). `GOS_RENDER_BACKEND` picks the backend (default vulkan).

use gos_render_node::{Backend, Compositor, Dirty, Gpu, Placement, RenderError};

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
    // Nothing was half-made: the compositor still renders.
    let _ = frame(&mut c);
}
