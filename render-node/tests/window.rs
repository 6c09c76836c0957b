//! The node with `--window` on a real display (`--features window`; scripts/test runs it under
//! Xvfb): it presents frames in the window, without a GPU error, and stops cleanly.
#![cfg(feature = "window")]

use gos_bus_client::{Bus, RenderFrame, RingConfig};
use gos_layouts::Record;
use std::process::Command;

#[test]
fn node_presents_frames_in_a_window() {
    assert!(
        std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some(),
        "this test needs a display: run it under xvfb-run (scripts/test does)"
    );
    let name = format!("rwin{}", std::process::id());
    let bus = Bus::standalone(&name).unwrap();
    for (ring, size) in [("render.frames", 1 << 20), ("render.output", 1 << 20)] {
        let _ = bus.remove_ring(ring);
        bus.create_ring(
            ring,
            &RingConfig {
                slot_count: 4,
                slot_size: size,
                layout: RenderFrame::SCHEMA,
                policy: gos_bus_client::Policy::OverwriteOldest,
                ..Default::default()
            },
        )
        .unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_gos-render-node"))
        .args(["--bus", &name, "--standalone", "--window"])
        .args(["--width", "320", "--height", "180", "--for", "2"])
        .output()
        .unwrap();
    let _ = bus.remove_ring("render.frames");
    let _ = bus.remove_ring("render.output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let presented: u64 = stdout
        .lines()
        .find_map(|l| l.strip_suffix(" frames presented in the window"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no presented count in:\n{stdout}"));
    assert!(presented >= 10, "{presented} frames presented in 2 s");
    assert!(stdout.contains(", 0 GPU errors"), "{stdout}");
}
