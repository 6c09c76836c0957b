//! The render node as a separate process, fed by a Rust producer (this test process) and a
//! Python producer (a separate process) at once, publishing what it composites on
//! render.output.

use gos_bus_client::{Bus, Bytes, RenderFrame, RingConfig};
use gos_layouts::Record;
use std::process::{Command, Stdio};
use std::time::Duration;

const NODE: &str = env!("CARGO_BIN_EXE_gos-render-node");
const W: u32 = 320;
const H: u32 = 180;

fn ring(bus: &Bus, name: &str, size: u32) {
    let _ = bus.remove_ring(name);
    bus.create_ring(
        name,
        &RingConfig {
            slot_count: 8,
            slot_size: size,
            layout: RenderFrame::SCHEMA,
            policy: gos_bus_client::Policy::OverwriteOldest,
            ..Default::default()
        },
    )
    .unwrap();
}

#[test]
fn node_composites_rust_and_python_windows_into_render_output() {
    // The C ABI library of this build: target/<profile>/, above this test (target/<profile>/deps/).
    let exe = std::env::current_exe().unwrap();
    let lib = exe
        .parent()
        .and_then(|d| d.parent())
        .unwrap()
        .join("libgos_bus_c.so");
    assert!(
        lib.exists(),
        "the Python producer needs the C ABI library {}: cargo build -p gos-bus-c (scripts/test does)",
        lib.display()
    );
    let name = format!("rnode{}", std::process::id());
    let bus = Bus::standalone(&name).unwrap();
    ring(&bus, "render.frames", 1 << 20);
    ring(
        &bus,
        "render.output",
        size_of::<RenderFrame>() as u32 + W * H * 4 + 64,
    );
    let out = bus.subscriber::<Bytes>("render.output").unwrap();
    let mut node = Command::new(NODE)
        .args([
            "--bus",
            &name,
            "--standalone",
            "--width",
            "320",
            "--height",
            "180",
        ])
        .args(["--fps", "20", "--for", "20"])
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The Python producer: a 16x16 blue window at (200, 100), z 2.
    let py = format!(
        r#"
import sys, time
sys.path.insert(0, {pkg:?})
import gos_bus
pub = gos_bus.Bus.standalone({name:?}).publisher("render.frames")
for i in range(40):
    with pub.loan() as m:
        h = m.header  # magic, version and the pixel offset come filled in
        h.source_id = 2; h.pos_x = 200; h.pos_y = 100; h.zoom = 1.0; h.z_order = 2
        m.pixels(16, 16)[:] = (0, 0, 255, 255)  # width, height, stride, pixel_bytes, RGBA8
    time.sleep(0.05)
"#,
        pkg = concat!(env!("CARGO_MANIFEST_DIR"), "/../clients/python"),
    );
    let mut python = Command::new("python3")
        .env("GOS_BUS_LIB", &lib)
        .arg("-c")
        .arg(py)
        .spawn()
        .unwrap();
    // The Rust producer: a 32x16 red window at (10, 20), z 1.
    let mut publisher = bus.publisher::<RenderFrame>("render.frames").unwrap();
    let mut found = false;
    for _ in 0..200 {
        let mut loan = publisher.loan().unwrap();
        *loan.header_mut() = RenderFrame {
            magic: *b"GFRM",
            version: RenderFrame::VERSION,
            pixel_format: 1,
            source_id: 1,
            width: 32,
            height: 16,
            stride: 128,
            pos_x: 10,
            pos_y: 20,
            zoom: 1.0,
            z_order: 1,
            pixel_offset: size_of::<RenderFrame>() as u32,
            pixel_bytes: 32 * 16 * 4,
            ..bytemuck::Zeroable::zeroed()
        };
        for px in loan.tail_mut()[..32 * 16 * 4].chunks_exact_mut(4) {
            px.copy_from_slice(&[255, 0, 0, 255]);
        }
        loan.set_tail_len(32 * 16 * 4).unwrap();
        loan.commit().unwrap();
        if let Ok(m) = out.recv_timeout(Duration::from_millis(100)) {
            let b = m.bytes();
            let at = |x: u32, y: u32| {
                let i = size_of::<RenderFrame>() + ((y * W + x) * 4) as usize;
                [b[i], b[i + 1], b[i + 2], b[i + 3]]
            };
            if at(12, 22) == [255, 0, 0, 255] && at(205, 105) == [0, 0, 255, 255] {
                found = true;
                break;
            }
        }
    }
    // The Python producer first, while the node still reads: a node killed holding a slot
    // pins it, and without a broker to reap it a producer lapping the ring would wait there.
    let _ = python.wait();
    let _ = node.kill();
    let _ = node.wait();
    drop((out, publisher));
    let _ = bus.remove_ring("render.frames");
    let _ = bus.remove_ring("render.output");
    assert!(
        found,
        "a render.output frame shows both windows at their positions"
    );
}

#[test]
fn a_node_without_a_runtime_folder_starts_without_wayland_noise() {
    // No bus is served under this name: the node opens its adapter, then stops with one line.
    let out = Command::new(NODE)
        .args(["--bus", &format!("nobus{}", std::process::id())])
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("is not running"), "{stderr}");
    assert!(!stderr.contains("XDG_RUNTIME_DIR"), "{stderr}");
}
