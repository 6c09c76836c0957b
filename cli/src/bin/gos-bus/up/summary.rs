//! The summary of a `gos-bus up` run: built from the last look at the bus and the run's
//! state, printed and written as JSON (`summary.json`).

use super::supervisor::Child;
use super::workload::RunState;
use super::UpArgs;
use gos_bus::tools::snapshot::{self, BusSnapshot};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

fn clients_named<'a>(
    snap: &'a BusSnapshot,
    ring: &str,
    name: &str,
) -> Vec<&'a snapshot::ClientInfo> {
    snap.rings
        .iter()
        .filter(|r| r.name == ring)
        .flat_map(|r| r.clients.iter())
        .filter(|c| c.name.starts_with(name))
        .collect()
}

/// The summary as JSON; `errors` gains what the run shows went wrong.
pub fn summarize(
    a: &UpArgs,
    snap: &BusSnapshot,
    s: &RunState,
    children: &[Child],
    snaps: &Path,
    took: Duration,
    errors: &[String],
) -> Value {
    let rings: BTreeMap<&str, u64> = snap
        .rings
        .iter()
        .map(|r| (r.name.as_str(), r.published))
        .collect();
    let published = |ring: &str| rings.get(ring).copied().unwrap_or(0);
    let mut snapshots: Vec<String> = std::fs::read_dir(snaps)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "png"))
                .map(|e| e.path().display().to_string())
                .collect()
        })
        .unwrap_or_default();
    snapshots.sort();
    let node_out = clients_named(snap, "render.output", "gos-render-node");
    let node_in = clients_named(snap, "render.frames", "gos-render-node");
    let jobs_ok = s.results.values().filter(|r| r["ok"] == true).count();
    let mut errors: Vec<String> = errors.to_vec();
    let missing: Vec<u64> = s
        .expected
        .keys()
        .filter(|id| !s.results.contains_key(id))
        .copied()
        .collect();
    if !missing.is_empty() && a.seconds.is_some() {
        errors.push(format!("no DNA result for jobs {missing:?}"));
    }
    if jobs_ok < s.results.len() {
        errors.push(format!(
            "{} DNA jobs failed or printed the wrong output",
            s.results.len() - jobs_ok
        ));
    }
    let asset_failed = s.asset_results.values().filter(|r| r["ok"] != true).count();
    if asset_failed > 0 {
        errors.push(format!(
            "{asset_failed} DNA jobs taken from assets did not end ok"
        ));
    }
    let bad_frames: u64 = node_in.iter().map(|c| c.failed).sum();
    if bad_frames > 0 {
        errors.push(format!(
            "the render node skipped {bad_frames} bad inputs (see logs/render-node.log)"
        ));
    }
    if published("dead.letters") > 0 {
        errors.push(format!(
            "{} messages went to dead.letters",
            published("dead.letters")
        ));
    }
    let console = {
        let (x, y, w, h) = super::console_rect(a.width, a.height);
        json!({"x": x, "y": y, "width": w, "height": h})
    };
    json!({
        "bus": a.bus,
        "seconds": took.as_secs_f64(),
        "rings": rings,
        "frames_rendered": published("render.output"),
        "frames_published": published("render.frames"),
        "render_node": node_out.first().map(|c| json!({
            "cpu_ms_per_frame": c.handle_us / 1e3,
            "gpu_ms_per_frame": c.gpu_us / 1e3,
        })),
        "render_node_frames_dropped": node_in.iter().map(|c| c.drops).sum::<u64>(),
        "snapshots": snapshots,
        "neural_console": console,
        "jobs_submitted": s.expected.len(),
        "jobs_done": s.results.len(),
        "jobs_ok": jobs_ok,
        "results": s.results.iter().map(|(k, v)| (k.to_string(), v.clone())).collect::<BTreeMap<_, _>>(),
        "textures": s.textures.values().cloned().collect::<Vec<_>>(),
        "asset_jobs": s.asset_results.iter().map(|(k, v)| (format!("{k:#x}"), v.clone())).collect::<BTreeMap<_, _>>(),
        "dna_calls": s.dna_calls,
        "processes": children.iter().map(|c| json!({
            "name": c.name, "pid": c.pid(), "start_time": c.start_time, "exit": c.exit,
            "log": c.log.display().to_string(),
        })).collect::<Vec<_>>(),
        "errors": errors,
    })
}

/// Prints the summary for a person; `path` is where its JSON was written.
pub fn print_summary(s: &Value, path: &Path) {
    println!(
        "\n== summary ({:.1} s)",
        s["seconds"].as_f64().unwrap_or(0.0)
    );
    if let Some(rings) = s["rings"].as_object() {
        for (name, n) in rings {
            println!("  {name:<14} {n:>8} messages");
        }
    }
    println!("  frames rendered  {}", s["frames_rendered"]);
    if let Some(n) = s["render_node"].as_object() {
        println!(
            "  render node      {:.2} ms CPU, {:.2} ms GPU per frame; {} frames dropped",
            n["cpu_ms_per_frame"].as_f64().unwrap_or(0.0),
            n["gpu_ms_per_frame"].as_f64().unwrap_or(0.0),
            s["render_node_frames_dropped"]
        );
    }
    let snaps = s["snapshots"].as_array().map_or(0, Vec::len);
    println!(
        "  snapshots        {snaps}{}",
        s["snapshots"]
            .as_array()
            .and_then(|v| v.last())
            .map_or(String::new(), |p| format!(
                ", last {}",
                p.as_str().unwrap_or("")
            ))
    );
    println!(
        "  DNA jobs         {} submitted, {} done, {} ok",
        s["jobs_submitted"], s["jobs_done"], s["jobs_ok"]
    );
    println!(
        "  RTS textures     {}",
        s["textures"].as_array().map_or(0, Vec::len)
    );
    if let Some(jobs) = s["asset_jobs"].as_object() {
        let ok = jobs.values().filter(|r| r["ok"] == true).count();
        println!(
            "  DNA from assets  {} jobs, {ok} ok (scripts in the sandbox, modules in wasmtime)",
            jobs.len()
        );
        for r in jobs.values().filter(|r| r["wasm"] == true) {
            println!(
                "  WebAssembly      {}",
                r["output"].as_str().unwrap_or("").trim()
            );
        }
    }
    for c in s["dna_calls"].as_array().into_iter().flatten() {
        match c["event"].as_str() {
            Some("spawn_brick") => println!(
                "  DNA called       spawn_brick({}, {}): texture {:#x} shown at ({}, {})",
                c["x"],
                c["y"],
                c["shown_texture"].as_u64().unwrap_or(0),
                c["x"],
                c["y"]
            ),
            Some(other) => println!("  DNA called       {other}: {c}"),
            None => {}
        }
    }
    if let Some(ps) = s["processes"].as_array() {
        for p in ps {
            println!(
                "  {:<16} pid {:<7} {}",
                p["name"].as_str().unwrap_or(""),
                p["pid"],
                p["exit"].as_str().unwrap_or("running")
            );
        }
    }
    let errors = s["errors"].as_array().cloned().unwrap_or_default();
    if errors.is_empty() {
        println!("  errors           none");
    } else {
        for e in errors {
            println!("  error: {}", e.as_str().unwrap_or(""));
        }
    }
    println!("  written to       {}", path.display());
}
