//! `gos-bus up`: the whole of Geometry OS on one bus, from one command. It starts the broker
//! (embedded manifest), the render node, the Python RTS watcher and DNA executor, and the Rust
//! frame producer, each its own process; submits DNA jobs, shows every RTS texture it sees in
//! a window; runs until Ctrl-C or `--for`; then stops every process it started, in order, and
//! prints (and writes as JSON) a summary.

use gos_bus::tools::snapshot::{self, BusSnapshot};
use gos_bus_client::{Bus, DnaJob, DnaResult, Publisher, RenderFrame, RtsTexture};
use gos_bus_protocol::proc;
use gos_layouts::records::{DNA_CODE_UTF8, DNA_STATUS_OK, FRAME_FLAG_VISIBLE, FRAME_PIXEL_WINDOW};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Options of `gos-bus up`.
#[derive(clap::Args)]
pub struct UpArgs {
    /// Bus name.
    #[arg(long, default_value = "geometry")]
    bus: String,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long = "for")]
    seconds: Option<f64>,
    /// Folder of .rts.png files for the RTS watcher (default: the repository's assets/rts).
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
}

/// The size the RTS textures are shown at, in output pixels.
const TEXTURE_VIEW: u32 = 128;

/// A process `up` started.
struct Child {
    name: &'static str,
    proc: std::process::Child,
    start_time: u64,
    log: PathBuf,
    ready: Arc<AtomicBool>,
    exit: Option<String>,
}

impl Child {
    fn pid(&self) -> u32 {
        self.proc.id()
    }

    /// The last lines of its log, for an error message.
    fn tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n    ")
    }
}

/// Starts `cmd` as `name`: own process group (Ctrl-C reaches only `up`, which stops the
/// children in order), killed if `up` dies, output to `logs/NAME.log`; ready once it prints a
/// line containing `ready` (or any line, when `ready` is `None`).
fn spawn(
    name: &'static str,
    mut cmd: Command,
    logs: &Path,
    ready: Option<&str>,
) -> Result<Child, String> {
    use std::os::unix::process::CommandExt;
    let log = logs.join(format!("{name}.log"));
    let file =
        std::fs::File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err = file.try_clone().map_err(|e| e.to_string())?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(err)
        .process_group(0);
    // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)
                .map_err(std::io::Error::from)
        });
    }
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {name} ({program}): {e}"))?;
    let flag = Arc::new(AtomicBool::new(false));
    let stdout = child.stdout.take().expect("piped");
    let (seen, want) = (flag.clone(), ready.map(str::to_string));
    let mut out = file;
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
            let _ = writeln!(out, "{line}");
            if want.as_deref().is_none_or(|w| line.contains(w)) {
                seen.store(true, Relaxed);
            }
        }
    });
    let start_time = proc::start_time(child.id()).unwrap_or(0);
    Ok(Child {
        name,
        proc: child,
        start_time,
        log,
        ready: flag,
        exit: None,
    })
}

/// Where the binaries and the Python package are: beside this executable, and the repository
/// above it (`target/<profile>/gos-bus`).
struct Tools {
    bin: PathBuf,
    repo: PathBuf,
}

impl Tools {
    fn find() -> Result<Tools, String> {
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
        let bin = exe.parent().unwrap_or(Path::new(".")).to_path_buf();
        let is_repo = |d: &Path| d.join("clients/python/gos_bus/__init__.py").exists();
        let repo = bin
            .ancestors()
            .find(|d| is_repo(d))
            .map(Path::to_path_buf)
            .or_else(|| std::env::current_dir().ok().filter(|d| is_repo(d)))
            .ok_or_else(|| {
                "cannot find the repository (clients/python) above this executable or here: run `./gos up` from the gos-bus checkout".to_string()
            })?;
        let tools = Tools { bin, repo };
        for (path, build) in [
            (tools.bin.join("gos-render-node"), "-p gos-render-node"),
            (
                tools.bin.join("examples/frames"),
                "-p gos-bus-client --examples",
            ),
            (tools.bin.join("libgos_bus_c.so"), "-p gos-bus-c"),
        ] {
            if !path.exists() {
                return Err(format!(
                    "{} is missing: build it with `cargo build --release {build}` (`./gos up` builds everything)",
                    path.display()
                ));
            }
        }
        Ok(tools)
    }

    fn python(&self, args: &[&str]) -> Command {
        let mut c = Command::new("python3");
        c.args(["-u", "-m", "gos_bus.daemons"])
            .args(args)
            .env("PYTHONPATH", self.repo.join("clients/python"))
            .env("GOS_BUS_LIB", self.bin.join("libgos_bus_c.so"));
        c
    }
}

/// Job `i`: a Python one-liner and the output it must print.
fn job(i: u64) -> (String, String) {
    let n = 1000 * (i + 1);
    (
        format!("print(sum(range({n})))"),
        format!("{}\n", n * (n - 1) / 2),
    )
}

fn submit_jobs(bus: &Bus, count: u64) -> Result<BTreeMap<u64, String>, String> {
    let mut jobs = bus
        .publisher::<DnaJob>("dna.jobs")
        .map_err(|e| e.to_string())?;
    let mut expected = BTreeMap::new();
    for i in 0..count {
        let (code, want) = job(i);
        let mut loan = jobs.loan().map_err(|e| e.to_string())?;
        let id = i + 1;
        *loan.header_mut() = DnaJob {
            magic: *b"DNAJ",
            version: 1,
            job_id: id,
            timeout_ms: 10_000,
            submitted_ns: proc::now_ns() as i64,
            language: 1,
            code_encoding: DNA_CODE_UTF8,
            code_len: code.len() as u32,
            code_crc32: crc32fast::hash(code.as_bytes()),
            ..bytemuck::Zeroable::zeroed()
        };
        loan.tail_mut()[..code.len()].copy_from_slice(code.as_bytes());
        loan.set_tail_len(code.len()).map_err(|e| e.to_string())?;
        loan.commit();
        expected.insert(id, want);
    }
    Ok(expected)
}

/// Shows texture `id` (the `i`th seen) in a window along the bottom of the output.
fn show_texture(
    frames: &mut Publisher<RenderFrame>,
    i: usize,
    id: u64,
    height: u32,
) -> Result<(), String> {
    let mut loan = frames.loan().map_err(|e| e.to_string())?;
    *loan.header_mut() = RenderFrame {
        magic: *b"GFRM",
        version: 1,
        source_id: 1000 + i as u64,
        kind: FRAME_PIXEL_WINDOW,
        flags: FRAME_FLAG_VISIBLE,
        width: TEXTURE_VIEW,
        height: TEXTURE_VIEW,
        pos_x: 40 + i as i32 * (TEXTURE_VIEW as i32 + 20),
        pos_y: height as i32 - TEXTURE_VIEW as i32 - 40,
        zoom: 1.0,
        z_order: 100,
        texture_id: id,
        ..bytemuck::Zeroable::zeroed()
    };
    loan.set_tail_len(0).map_err(|e| e.to_string())?;
    loan.commit();
    Ok(())
}

/// Asks every child to stop (SIGTERM), waits up to 5 s each, then kills what is left.
fn stop_all(children: &mut [Child]) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    for c in children.iter_mut().rev() {
        if c.exit.is_none() {
            let _ = kill(Pid::from_raw(c.pid() as i32), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                if let Ok(Some(status)) = c.proc.try_wait() {
                    c.exit = Some(status.to_string());
                    break;
                }
                if Instant::now() > deadline {
                    let _ = c.proc.kill();
                    let status = c.proc.wait().map(|s| s.to_string()).unwrap_or_default();
                    c.exit = Some(format!("killed after 5 s ({status})"));
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

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

/// `gos-bus up`. Returns whether the run was clean (no errors in the summary).
pub fn up(a: UpArgs) -> Result<bool, String> {
    let tools = Tools::find()?;
    if let Ok(reg) = gos_bus_protocol::registry::open(&a.bus) {
        if proc::alive(reg.header.broker_pid, reg.header.broker_start_time) {
            return Err(format!(
                "a broker already runs bus '{}' (pid {}): stop it, or use another bus with --bus NAME",
                a.bus, reg.header.broker_pid
            ));
        }
    }
    let rts_dir = a
        .rts_dir
        .clone()
        .unwrap_or_else(|| tools.repo.join("assets/rts"));
    if !rts_dir.is_dir() {
        return Err(format!(
            "the RTS folder {} does not exist (give one with --rts-dir)",
            rts_dir.display()
        ));
    }
    let (logs, snaps) = (a.out.join("logs"), a.out.join("snapshots"));
    for d in [&logs, &snaps] {
        std::fs::create_dir_all(d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
    }
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
    let result = run(&a, &tools, &places, stop, &mut children, &mut errors);
    // The last look at the bus, before anything stops.
    let snap = snapshot::take(&a.bus);
    stop_all(&mut children);
    let state = match result {
        Ok(state) => state,
        Err(e) => {
            errors.push(e);
            RunState::default()
        }
    };
    let left: Vec<String> = children
        .iter()
        .filter(|c| c.start_time != 0 && proc::alive(c.pid(), c.start_time))
        .map(|c| format!("{} (pid {})", c.name, c.pid()))
        .collect();
    if !left.is_empty() {
        errors.push(format!("still running after the stop: {}", left.join(", ")));
    }
    let summary = summarize(
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
    print_summary(&summary, &path);
    Ok(errors.is_empty())
}

/// What the run saw of the bus.
#[derive(Default)]
struct RunState {
    expected: BTreeMap<u64, String>,
    results: BTreeMap<u64, Value>,
    textures: BTreeMap<u64, Value>,
}

/// The folders of a run: the RTS files watched, the logs, the snapshots.
struct Places<'p> {
    rts_dir: &'p Path,
    logs: &'p Path,
    snaps: &'p Path,
}

fn run(
    a: &UpArgs,
    tools: &Tools,
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
    let bin = |name: &str| tools.bin.join(name);
    let wait_ready = |c: &mut Child, what: &str, limit: Duration| -> Result<(), String> {
        let deadline = Instant::now() + limit;
        while !c.ready.load(Relaxed) {
            if let Ok(Some(status)) = c.proc.try_wait() {
                c.exit = Some(status.to_string());
                std::thread::sleep(Duration::from_millis(100));
                return Err(format!(
                    "{} exited ({status}) before {what}:\n    {}",
                    c.name,
                    c.tail(6)
                ));
            }
            if Instant::now() > deadline || stop.load(Relaxed) {
                return Err(format!(
                    "{} was not {what} after {limit:?}:\n    {}",
                    c.name,
                    c.tail(6)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    };

    println!("gos-bus up: bus '{}', output in {}", a.bus, a.out.display());
    let mut serve = Command::new(bin("gos-bus"));
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
    let textures = bus
        .subscriber::<RtsTexture>("rts.textures")
        .map_err(|e| e.to_string())?;
    let results = bus
        .subscriber::<DnaResult>("dna.results")
        .map_err(|e| e.to_string())?;
    let mut frames = bus
        .publisher::<RenderFrame>("render.frames")
        .map_err(|e| e.to_string())?;

    let fps = format!("{}", a.fps);
    let mut node = Command::new(bin("gos-render-node"));
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
    children.push(spawn("render-node", node, logs, Some("ready"))?);
    let i = children.len() - 1;
    wait_ready(
        &mut children[i],
        "ready (GPU adapter and rings)",
        Duration::from_secs(60),
    )?;
    println!("  render node      pid {}", children[i].pid());

    let dna = tools.python(&["dna-exec", "--bus", &a.bus]);
    children.push(spawn("dna-exec", dna, logs, Some("ready"))?);
    let i = children.len() - 1;
    wait_ready(&mut children[i], "ready", Duration::from_secs(30))?;
    println!("  DNA executor     pid {} (Python)", children[i].pid());

    let folder = rts_dir.to_string_lossy().into_owned();
    let watcher = tools.python(&["rts-watch", "--folder", &folder, "--bus", &a.bus]);
    children.push(spawn("rts-watch", watcher, logs, Some("ready"))?);
    let i = children.len() - 1;
    wait_ready(&mut children[i], "ready", Duration::from_secs(30))?;
    println!(
        "  RTS watcher      pid {} (Python) on {}",
        children[i].pid(),
        rts_dir.display()
    );

    let mut producer = Command::new(bin("examples/frames"));
    producer.args([
        "--bus",
        &a.bus,
        "--fps",
        &format!("{}", a.fps.round().max(1.0) as u32),
    ]);
    producer.args(["--windows", &a.windows.to_string()]);
    children.push(spawn("frames", producer, logs, None)?);
    let i = children.len() - 1;
    wait_ready(&mut children[i], "publishing", Duration::from_secs(10))?;
    println!(
        "  frame producer   pid {} (Rust, {} windows)",
        children[i].pid(),
        a.windows
    );

    let mut state = RunState {
        expected: submit_jobs(&bus, a.jobs)?,
        ..Default::default()
    };
    println!("  submitted {} DNA jobs", a.jobs);
    println!(
        "\nwatch it live:  {} monitor --bus {}\nsnapshots:      {}\nlogs:           {}\n{}",
        bin("gos-bus").display(),
        a.bus,
        snaps.display(),
        logs.display(),
        match a.seconds {
            Some(s) => format!("running for {s} s (Ctrl-C stops sooner)"),
            None => "running until Ctrl-C".into(),
        }
    );

    let start = Instant::now();
    let (mut next_show, mut next_status) =
        (Instant::now(), Instant::now() + Duration::from_secs(5));
    let mut shown: Vec<u64> = Vec::new();
    while a.seconds.is_none_or(|s| start.elapsed().as_secs_f64() < s) && !stop.load(Relaxed) {
        while let Some(m) = textures.try_recv().map_err(|e| e.to_string())? {
            let t = *m.header();
            if !shown.contains(&t.texture_id) {
                shown.push(t.texture_id);
            }
            state.textures.insert(
                t.texture_id,
                json!({
                    "texture_id": format!("{:#018x}", t.texture_id),
                    "side": t.width,
                    "data_size": t.data_size,
                    "sha256": gos_rts::hex(&t.sha256),
                }),
            );
        }
        while let Some(m) = results.try_recv().map_err(|e| e.to_string())? {
            let r = *m.header();
            let out = m.tail().get(..r.output_len as usize).unwrap_or_default();
            let out = String::from_utf8_lossy(out).into_owned();
            let ok = r.status == DNA_STATUS_OK && state.expected.get(&r.job_id) == Some(&out);
            state.results.insert(
                r.job_id,
                json!({"status": r.status, "exit_code": r.exit_code, "output": out, "ok": ok}),
            );
        }
        if Instant::now() >= next_show {
            // Windows showing the textures; re-published so they do not fade.
            for (i, id) in shown.iter().enumerate() {
                show_texture(&mut frames, i, *id, a.height)?;
            }
            next_show += Duration::from_millis(500);
        }
        for c in children.iter_mut() {
            if c.exit.is_none() {
                if let Ok(Some(status)) = c.proc.try_wait() {
                    c.exit = Some(status.to_string());
                    errors.push(format!(
                        "{} exited early ({status}):\n    {}",
                        c.name,
                        c.tail(6)
                    ));
                }
            }
        }
        if errors.iter().any(|e| e.contains("exited early")) {
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
                "  {:>4.0} s: {rendered} frames rendered, {}/{} jobs done, {} RTS textures",
                start.elapsed().as_secs_f64(),
                state.results.len(),
                a.jobs,
                state.textures.len()
            );
            next_status += Duration::from_secs(5);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(state)
}

fn summarize(
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
        "jobs_submitted": s.expected.len(),
        "jobs_done": s.results.len(),
        "jobs_ok": jobs_ok,
        "results": s.results.iter().map(|(k, v)| (k.to_string(), v.clone())).collect::<BTreeMap<_, _>>(),
        "textures": s.textures.values().cloned().collect::<Vec<_>>(),
        "processes": children.iter().map(|c| json!({
            "name": c.name, "pid": c.pid(), "start_time": c.start_time, "exit": c.exit,
            "log": c.log.display().to_string(),
        })).collect::<Vec<_>>(),
        "errors": errors,
    })
}

fn print_summary(s: &Value, path: &Path) {
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
