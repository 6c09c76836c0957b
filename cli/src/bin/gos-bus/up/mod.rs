//! `gos-bus up`: the whole of Geometry OS on one bus, from one command. It starts the broker
//! (embedded manifest), the render node, the Python RTS watcher and DNA executor, and the Rust
//! frame producer, each its own process; submits DNA jobs, shows every RTS texture it sees in
//! a window, follows the Hybrid DNA an asset carries (the watcher's job, the sandboxed run, the
//! window its `spawn_brick` call puts on screen); runs until Ctrl-C or `--for`; then stops
//! every process it started, in order, and prints (and writes as JSON) a summary.
//!
//! - [`programs`]: where the programs it starts are found (the rule; never a source checkout);
//! - [`supervisor`]: starting, watching and stopping those processes;
//! - [`workload`]: the DNA jobs, the texture windows and the embedded sample textures;
//! - [`summary`]: what the run did, printed and as JSON.

mod programs;
mod summary;
mod supervisor;
mod workload;

use gos_bus::tools::snapshot;
use gos_bus_client::Bus;
use gos_bus_protocol::proc;
use programs::Programs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};
use supervisor::{spawn, wait_ready, Child};
use workload::{RunState, Watch};

/// The Neural Console's grid: columns and rows of cells.
const CONSOLE_GRID: (u32, u32) = (72, 12);

/// Where the Neural Console goes on an output of `width` x `height` pixels: its pixels' top
/// left, width and height (at the right, above the row of texture windows along the bottom).
pub fn console_rect(width: u32, height: u32) -> (u32, u32, u32, u32) {
    use gos_layouts::records::{CELL_HEIGHT, CELL_WIDTH};
    let (w, h) = (CONSOLE_GRID.0 * CELL_WIDTH, CONSOLE_GRID.1 * CELL_HEIGHT);
    (
        width.saturating_sub(w + 40),
        height.saturating_sub(workload::TEXTURE_VIEW + 40 + h + 24),
        w,
        h,
    )
}

/// Options of `gos-bus up`.
#[derive(clap::Args)]
#[command(
    after_help = "Programs: gos-bus, gos-render-node, gos-dna-sandbox, libgos_bus_c.so and frames (or examples/frames) are taken from --bin-dir, by default the folder of this gos-bus; the Python daemons run as `PYTHON -m gos_bus.daemons`, so PYTHON must import gos_bus (pip install ./clients/python, or PYTHONPATH; ./gos up sets it).\n\nExamples:\n  ./gos up                          # from a checkout: builds what is missing, then this\n  gos-bus up --for 30               # stop after 30 s\n  gos-bus up --rts-dir ~/geometry/rts --bus test"
)]
pub struct UpArgs {
    /// Bus name.
    #[arg(long, default_value = "geometry")]
    bus: String,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long = "for")]
    seconds: Option<f64>,
    /// Folder of .rts.png files for the RTS watcher (default: the sample textures built into
    /// gos-bus, written to OUT/rts; one carries Hybrid DNA that calls spawn_brick(3, 4)).
    #[arg(long)]
    rts_dir: Option<PathBuf>,
    /// DNA jobs to submit.
    #[arg(long, default_value_t = 5)]
    jobs: u64,
    /// Pixel windows the Rust producer animates.
    #[arg(long, default_value_t = 3)]
    windows: u32,
    /// Frames per second of the producer and the render node.
    #[arg(long, default_value_t = 30.0)]
    fps: f64,
    /// Output width of the render node.
    #[arg(long, default_value_t = 1920)]
    width: u32,
    /// Output height of the render node.
    #[arg(long, default_value_t = 1080)]
    height: u32,
    /// Render-node backend: vulkan or gl (default: WGPU_BACKEND, else vulkan).
    #[arg(long)]
    backend: Option<String>,
    /// A snapshot PNG every this many composited frames.
    #[arg(long, default_value_t = 30)]
    snapshot_every: u64,
    /// Folder for snapshots, logs and summary.json (emptied of old snapshots first).
    #[arg(long, default_value = "gos-up")]
    out: PathBuf,
    /// Folder of the programs to start (default: the folder of this gos-bus).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Python interpreter for the daemons; it must import gos_bus.
    #[arg(long, default_value = "python3")]
    python: String,
}

/// `gos-bus up`. Returns whether the run was clean (no errors in the summary).
pub fn up(a: UpArgs) -> Result<bool, String> {
    let programs = Programs::find(a.bin_dir.as_deref(), &a.python)?;
    if let Ok(Some(pid)) = gos_bus_protocol::lock::BrokerLock::is_held(&a.bus) {
        return Err(format!(
            "bus '{}' already has a broker (pid {pid}): stop it, or use another bus with --bus NAME",
            a.bus
        ));
    }
    let (logs, snaps) = (a.out.join("logs"), a.out.join("snapshots"));
    for d in [&logs, &snaps] {
        std::fs::create_dir_all(d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
    }
    let rts_dir = match &a.rts_dir {
        Some(d) if d.is_dir() => d.clone(),
        Some(d) => {
            return Err(format!(
                "the RTS folder {} does not exist (give one with --rts-dir, or leave it out for the built-in samples)",
                d.display()
            ))
        }
        None => {
            let d = a.out.join("rts");
            workload::write_samples(&d)?;
            d
        }
    };
    for e in std::fs::read_dir(&snaps)
        .map_err(|e| e.to_string())?
        .flatten()
    {
        if e.path().extension().is_some_and(|x| x == "png") {
            let _ = std::fs::remove_file(e.path());
        }
    }
    let stop = proc::stop_on_signals();
    let started = Instant::now();
    let mut children: Vec<Child> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    let places = Places {
        rts_dir: &rts_dir,
        logs: &logs,
        snaps: &snaps,
    };
    let result = run(&a, &programs, &places, stop, &mut children, &mut errors);
    // The last look at the bus, before anything stops.
    let snap = snapshot::take(&a.bus);
    supervisor::stop_all(&mut children);
    let state = match result {
        Ok(state) => state,
        Err(e) => {
            errors.push(e);
            RunState::default()
        }
    };
    let left = supervisor::still_running(&children);
    if !left.is_empty() {
        errors.push(format!("still running after the stop: {}", left.join(", ")));
    }
    let summary = summary::summarize(
        &a,
        &snap,
        &state,
        &children,
        &snaps,
        started.elapsed(),
        &errors,
    );
    let path = a.out.join("summary.json");
    let text = serde_json::to_string_pretty(&summary).unwrap_or_default();
    if let Err(e) = std::fs::write(&path, text + "\n") {
        eprintln!("gos-bus up: cannot write {}: {e}", path.display());
    }
    summary::print_summary(&summary, &path);
    Ok(errors.is_empty())
}

/// The folders of a run: the RTS files watched, the logs, the snapshots.
struct Places<'p> {
    rts_dir: &'p Path,
    logs: &'p Path,
    snaps: &'p Path,
}

/// Starts everything in the order of the data flow's consumers first, then watches the bus
/// until `--for` ends, Ctrl-C, or a process exits early.
fn run(
    a: &UpArgs,
    programs: &Programs,
    places: &Places<'_>,
    stop: &AtomicBool,
    children: &mut Vec<Child>,
    errors: &mut Vec<String>,
) -> Result<RunState, String> {
    let Places {
        rts_dir,
        logs,
        snaps,
    } = *places;
    println!("gos-bus up: bus '{}', output in {}", a.bus, a.out.display());
    let mut serve = programs.gos_bus();
    serve.args(["serve", "--bus", &a.bus, "--remove-on-exit"]);
    children.push(spawn("broker", serve, logs, None)?);
    let deadline = Instant::now() + Duration::from_secs(10);
    let bus = loop {
        match Bus::attach(&a.bus) {
            Ok(b) => break b,
            Err(e) if Instant::now() > deadline => {
                return Err(format!(
                    "the broker did not start: {e}\n    {}",
                    children[0].tail(6)
                ))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    println!("  broker           pid {}", children[0].pid());

    // Subscribe before anything is published, so nothing is missed.
    let mut watch = Watch::new(&bus)?;

    let fps = format!("{}", a.fps);
    let mut node = programs.render_node();
    node.args(["--bus", &a.bus, "--fps", &fps])
        .args([
            "--width",
            &a.width.to_string(),
            "--height",
            &a.height.to_string(),
        ])
        .args(["--snapshot-every", &a.snapshot_every.to_string()])
        .arg("--snapshot-dir")
        .arg(snaps);
    if let Some(b) = &a.backend {
        node.args(["--backend", b]);
    }
    let ready = Ready::line("ready", "ready (GPU adapter and rings)", 60);
    let node = start(children, "render-node", node, logs, ready, stop)?;
    println!("  render node      pid {node}");

    let (cx, cy, _, _) = console_rect(a.width, a.height);
    let console = format!("{cx},{cy}");
    let grid = format!("{}x{}", CONSOLE_GRID.0, CONSOLE_GRID.1);
    let dna = programs.python(&[
        "dna-exec",
        "--bus",
        &a.bus,
        "--console",
        &console,
        "--console-grid",
        &grid,
    ]);
    let dna = start(
        children,
        "dna-exec",
        dna,
        logs,
        Ready::line("ready", "ready", 30),
        stop,
    )?;
    println!(
        "  DNA executor     pid {dna} (Python; scripts in the sandbox, modules in wasmtime; results on the Neural Console at {console})"
    );

    let folder = rts_dir.to_string_lossy().into_owned();
    let watcher = programs.python(&["rts-watch", "--folder", &folder, "--bus", &a.bus]);
    let ready = Ready::line("ready", "ready", 30);
    let watcher = start(children, "rts-watch", watcher, logs, ready, stop)?;
    println!(
        "  RTS watcher      pid {watcher} (Python) on {}",
        rts_dir.display()
    );

    let terrain = programs.python(&["terrain", "--folder", &folder, "--bus", &a.bus]);
    let ready = Ready::line("ready", "ready", 30);
    let terrain = start(children, "terrain", terrain, logs, ready, stop)?;
    println!("  terrain          pid {terrain} (Python; the samples as bricks on the terrain)");

    let mut producer = programs.frames();
    producer.args([
        "--bus",
        &a.bus,
        "--fps",
        &format!("{}", a.fps.round().max(1.0) as u32),
    ]);
    producer.args(["--windows", &a.windows.to_string()]);
    let ready = Ready::any_line("publishing", 10);
    let producer = start(children, "frames", producer, logs, ready, stop)?;
    println!(
        "  frame producer   pid {producer} (Rust, {} windows)",
        a.windows
    );

    let mut state = RunState {
        expected: workload::submit_jobs(&bus, a.jobs)?,
        ..Default::default()
    };
    println!("  submitted {} DNA jobs", a.jobs);
    println!(
        "\nwatch it live:  {} monitor --bus {}\nsnapshots:      {}\nlogs:           {}\n{}",
        programs.gos_bus_path().display(),
        a.bus,
        snaps.display(),
        logs.display(),
        match a.seconds {
            Some(s) => format!("running for {s} s (Ctrl-C stops sooner)"),
            None => "running until Ctrl-C".into(),
        }
    );

    let start = Instant::now();
    let mut next_status = Instant::now() + Duration::from_secs(5);
    while a.seconds.is_none_or(|s| start.elapsed().as_secs_f64() < s) && !stop.load(Relaxed) {
        watch.poll(&mut state, a.height)?;
        let exited = supervisor::reap_exited(children);
        if !exited.is_empty() {
            errors.extend(exited);
            break;
        }
        if Instant::now() >= next_status {
            let snap = snapshot::take(&a.bus);
            let rendered = snap
                .rings
                .iter()
                .find(|r| r.name == "render.output")
                .map_or(0, |r| r.published);
            println!(
                "  {:>4.0} s: {rendered} frames rendered, {}/{} jobs done, {} RTS textures, {} DNA jobs from assets, {} DNA calls",
                start.elapsed().as_secs_f64(),
                state.results.len(),
                a.jobs,
                state.textures.len(),
                state.asset_results.len(),
                state.dna_calls.len()
            );
            next_status += Duration::from_secs(5);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(state)
}

/// When a started process counts as ready: it printed a line containing `marker` (any line
/// when `None`) within `limit`; `what` names the wait in errors.
struct Ready {
    marker: Option<&'static str>,
    what: &'static str,
    limit: Duration,
}

impl Ready {
    fn line(marker: &'static str, what: &'static str, secs: u64) -> Ready {
        Ready {
            marker: Some(marker),
            what,
            limit: Duration::from_secs(secs),
        }
    }

    fn any_line(what: &'static str, secs: u64) -> Ready {
        Ready {
            marker: None,
            what,
            limit: Duration::from_secs(secs),
        }
    }
}

/// Spawns `cmd` as `name` and waits until it is `ready`; returns its pid.
fn start(
    children: &mut Vec<Child>,
    name: &'static str,
    cmd: std::process::Command,
    logs: &Path,
    ready: Ready,
    stop: &AtomicBool,
) -> Result<u32, String> {
    children.push(spawn(name, cmd, logs, ready.marker)?);
    let c = children.last_mut().expect("just pushed");
    wait_ready(c, ready.what, ready.limit, stop)?;
    Ok(c.pid())
}
