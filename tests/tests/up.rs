//! The main job end to end: `gos-bus up --for 20` on the machine's GPU adapter (lavapipe in
//! CI) starts the broker, the render node, the Python daemons and the Rust producer as
//! separate processes; then the test checks what they did from the outside: render.output
//! frames, a snapshot PNG with the windows where the producer put them, the RTS textures'
//! SHA-256 against the fixtures' expected.json, a result for every DNA job, and that no
//! process and no segment was left behind.

use gos_bus_protocol::proc;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The directory of the workspace's binaries (`target/<profile>`), from this test's own path
/// (`target/<profile>/deps/up-HASH`).
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    for need in [
        "gos-bus",
        "gos-render-node",
        "gos-dna-sandbox",
        "gos-dna-wasm",
        "examples/frames",
        "libgos_bus_c.so",
    ] {
        assert!(
            dir.join(need).exists(),
            "{} is missing: build the workspace first (`cargo build --workspace --bins --examples`; scripts/test does)",
            dir.join(need).display()
        );
    }
    dir
}

fn fixtures() -> PathBuf {
    gos_rts::samples_dir()
}

const W: u32 = 1280;
const H: u32 = 720;

#[test]
fn up_for_20_seconds_runs_everything_and_leaves_nothing() {
    let bin = bin_dir();
    let bus = format!("up{}", std::process::id());
    let out = std::env::temp_dir().join(format!("gos-up-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    // The Python daemons import gos_bus from the checkout, as `./gos up` has them do.
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../clients/python");
    let run = Command::new(bin.join("gos-bus"))
        .env("PYTHONPATH", python)
        .args(["up", "--for", "20", "--bus", &bus, "--jobs", "4"])
        .args(["--width", &W.to_string(), "--height", &H.to_string()])
        .args(["--fps", "15", "--snapshot-every", "10"])
        // No --rts-dir: the sample textures built into gos-bus (copies of the fixtures).
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    println!("{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert!(
        run.status.success(),
        "gos-bus up failed: {}",
        summary["errors"]
    );
    assert_eq!(summary["errors"], serde_json::json!([]));
    assert!(stdout.contains("== summary"), "the summary is printed");

    // Frames reached render.output.
    let rendered = summary["frames_rendered"].as_u64().unwrap();
    assert!(rendered >= 10, "{rendered} frames rendered in 20 s");
    assert!(summary["rings"]["render.frames"].as_u64().unwrap() > rendered);
    // The samples lie on the terrain as bricks: a placement each (at least the five blobs).
    let bricks = summary["rings"]["terrain.bricks"].as_u64().unwrap();
    assert!(bricks >= 5, "{bricks} brick placements");

    // The last snapshot shows the producer's three windows where it put them: window k at
    // x = 40 + 340 k, 320x240, y between 40 and 80 (it bobs), every pixel's blue = 80 k.
    let snaps = summary["snapshots"].as_array().unwrap();
    assert!(!snaps.is_empty(), "snapshots were written");
    let last = snaps.last().unwrap().as_str().unwrap();
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(last).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut img = vec![0u8; reader.output_buffer_size()];
    let info = reader.next_frame(&mut img).unwrap();
    assert_eq!((info.width, info.height), (W, H));
    let px = |x: u32, y: u32| {
        let i = ((y * W + x) * 4) as usize;
        [img[i], img[i + 1], img[i + 2], img[i + 3]]
    };
    for k in 0..3u32 {
        for y in (82..278).step_by(7) {
            for x in (40 + 340 * k + 2..40 + 340 * k + 318).step_by(11) {
                if x < 3 + 128 && y < 4 + 128 {
                    continue; // under the DNA's brick window (below)
                }
                let p = px(x, y);
                assert_eq!(
                    (p[2], p[3]),
                    (80 * k as u8, 255),
                    "window {k} at {x},{y} in {last}: {p:?}"
                );
            }
        }
    }

    // The Neural Console, right of centre above the texture row: decorated, focused (its
    // border in the focus colour), and text lit in it (crt_cyan curves it inwards).
    let console = &summary["neural_console"];
    let at = |k: &str| console[k].as_u64().unwrap() as u32;
    let (cx, cy, cw, ch) = (at("x"), at("y"), at("width"), at("height"));
    assert!(
        cx + cw <= W && cy + ch <= H,
        "the console fits the output: {console}"
    );
    let border = px(cx - 1, cy + 5);
    let [_, focused, _] = gos_render_node::text::decoration_colours(true);
    assert!(
        border.iter().zip(focused).all(|(a, b)| a.abs_diff(b) <= 2),
        "the console's border at {},{} in {last}: {border:?}",
        cx - 1,
        cy + 5
    );
    let lit = (cy..cy + ch)
        .flat_map(|y| (cx..cx + cw).map(move |x| (x, y)))
        .filter(|&(x, y)| {
            let p = px(x, y);
            p[1] > 150 && p[2] > 150
        })
        .count();
    assert!(lit > 200, "{lit} lit pixels in the console in {last}");

    // The RTS textures, decoded by the Python watcher through the Rust decoder, carry the
    // SHA-256 the fixtures list.
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("expected.json")).unwrap())
            .unwrap();
    let variants: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(gos_rts::variants_dir().join("expected.json")).unwrap(),
    )
    .unwrap();
    let logic = variants
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["file"] == "logic-itxt.rts.png")
        .unwrap();
    let mut want: Vec<&str> = expected
        .as_array()
        .unwrap()
        .iter()
        .chain([logic])
        .map(|e| e["sha256"].as_str().unwrap())
        .collect();
    let mut got: Vec<&str> = summary["textures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["sha256"].as_str().unwrap())
        .collect();
    want.sort();
    got.sort();
    // ...and one more: the sample cartridge's.
    assert_eq!(got.len(), want.len() + 1, "{got:?}");
    assert!(want.iter().all(|w| got.contains(w)), "{got:?}");

    // Every DNA job came back with the output it must print.
    assert_eq!(summary["jobs_submitted"], 4);
    assert_eq!(summary["jobs_done"], 4);
    assert_eq!(summary["jobs_ok"], 4);

    // The sample that carries Hybrid DNA became a job, ran in the sandbox, and its call to
    // spawn_brick(3, 4) put its own texture in a window at (3, 4); the sample cartridge
    // became a WebAssembly job that logged, asked for a window at (1120, 40) and returned 42.
    let asset_jobs = summary["asset_jobs"].as_object().unwrap();
    assert_eq!(asset_jobs.len(), 2, "{asset_jobs:?}");
    let script = asset_jobs.values().find(|j| j["wasm"] == false).unwrap();
    assert_eq!(script["ok"], true, "{script}");
    assert_eq!(script["output"], "brick online\n");
    assert_eq!(script["api_calls"], 1);
    let module = asset_jobs.values().find(|j| j["wasm"] == true).unwrap();
    assert_eq!(module["ok"], true, "{module}");
    assert_eq!(module["values"], serde_json::json!(["42"]));
    assert_eq!(module["output"], "run() returned 42\n");
    assert_eq!(module["api_calls"], 2);
    let calls = summary["dna_calls"].as_array().unwrap();
    let brick_at = |x: i64, y: i64| {
        calls
            .iter()
            .find(|c| c["event"] == "spawn_brick" && c["x"] == x && c["y"] == y)
            .unwrap_or_else(|| panic!("no spawn_brick({x}, {y}) among {calls:?}"))
    };
    let brick = brick_at(3, 4);
    assert_eq!(brick["shown_texture"], brick["texture_id"]);
    let cartridge = brick_at(1120, 40);
    assert_eq!(cartridge["shown_texture"], cartridge["texture_id"]);
    assert_ne!(cartridge["texture_id"], brick["texture_id"]);
    // In the last snapshot, each brick window shows the same pixels as one of the texture
    // windows `up` puts along the bottom (128 x 128, at x = 40 + 148 i).
    let same_as = |(x, y): (u32, u32), bx: u32| {
        (0..128u32).step_by(9).all(|dy| {
            (0..128u32)
                .step_by(9)
                .all(|dx| px(x + dx, y + dy) == px(bx + dx, H - 128 - 40 + dy))
        })
    };
    for at in [(3, 4), (1120, 40)] {
        assert!(
            (0..7).any(|i| same_as(at, 40 + 148 * i)),
            "no texture window matches the brick at {at:?} in {last}"
        );
    }
    let shown = format!("{:#018x}", brick["shown_texture"].as_u64().unwrap());
    assert!(
        summary["textures"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["texture_id"] == shown.as_str()),
        "the brick shows a published texture ({shown})"
    );

    // Nothing left: every process gone, every segment of the bus removed.
    let procs = summary["processes"].as_array().unwrap();
    assert_eq!(
        procs.len(),
        6,
        "broker, render node, DNA executor, RTS watcher, terrain, frames"
    );
    for p in procs {
        let (pid, start) = (
            p["pid"].as_u64().unwrap() as u32,
            p["start_time"].as_u64().unwrap(),
        );
        assert!(!proc::alive(pid, start), "{} is still running", p["name"]);
        assert!(
            p["exit"].as_str().unwrap().contains("status: 0"),
            "{} stopped cleanly: {}",
            p["name"],
            p["exit"]
        );
    }
    let left: Vec<String> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n == &format!("gos.{bus}") || n.starts_with(&format!("gos.{bus}.")))
        .collect();
    assert!(left.is_empty(), "segments left: {left:?}");
    let _ = std::fs::remove_dir_all(&out);
}
