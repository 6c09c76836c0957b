//! What `gos-bus up` runs on the bus besides its processes: DNA jobs it submits and checks,
//! windows that show every RTS texture it sees, and the sample textures the RTS watcher
//! publishes when no `--rts-dir` is given (embedded in the binary, so `up` needs no checkout).

use gos_bus_client::{
    Bus, Bytes, DnaJob, DnaResult, Publisher, RenderFrame, RtsTexture, Subscriber,
};
use gos_bus_protocol::proc;
use gos_layouts::records::{
    DNA_CODE_UTF8, DNA_STATUS_OK, FRAME_FLAG_DECORATED, FRAME_FLAG_VISIBLE, FRAME_PIXEL_WINDOW,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// The size the RTS textures are shown at, in output pixels.
pub const TEXTURE_VIEW: u32 = 128;

/// The sample PixelRTS files (`assets/rts/`: the Geometry OS encoder's own output, with their
/// sidecar metadata), written out by [`write_samples`].
const SAMPLES: &[(&str, &[u8])] = &[
    (
        "blob-1.rts.png",
        include_bytes!("../../../../../assets/rts/blob-1.rts.png"),
    ),
    (
        "blob-1.rts.png.meta.json",
        include_bytes!("../../../../../assets/rts/blob-1.rts.png.meta.json"),
    ),
    (
        "blob-5.rts.png",
        include_bytes!("../../../../../assets/rts/blob-5.rts.png"),
    ),
    (
        "blob-5.rts.png.meta.json",
        include_bytes!("../../../../../assets/rts/blob-5.rts.png.meta.json"),
    ),
    (
        "blob-1000.rts.png",
        include_bytes!("../../../../../assets/rts/blob-1000.rts.png"),
    ),
    (
        "blob-1000.rts.png.meta.json",
        include_bytes!("../../../../../assets/rts/blob-1000.rts.png.meta.json"),
    ),
    (
        "blob-65536.rts.png",
        include_bytes!("../../../../../assets/rts/blob-65536.rts.png"),
    ),
    (
        "blob-65536.rts.png.meta.json",
        include_bytes!("../../../../../assets/rts/blob-65536.rts.png.meta.json"),
    ),
    (
        "blob-300001.rts.png",
        include_bytes!("../../../../../assets/rts/blob-300001.rts.png"),
    ),
    (
        "blob-300001.rts.png.meta.json",
        include_bytes!("../../../../../assets/rts/blob-300001.rts.png.meta.json"),
    ),
    // Carries Hybrid DNA (an RTS_Logic iTXt chunk) that prints a line and calls
    // spawn_brick(3, 4): the watcher submits it as a job, the executor runs it in the sandbox
    // and shows the texture as a window at (3, 4).
    (
        "logic-itxt.rts.png",
        include_bytes!("../../../../../assets/rts-variants/logic-itxt.rts.png"),
    ),
];

/// Job ids with this bit come from assets (the RTS watcher), not from `up`.
pub const ASSET_JOB: u64 = 1 << 63;
/// Asset job ids with this bit too are WebAssembly jobs (a cartridge's module).
pub const WASM_JOB: u64 = 1 << 62;

/// The sample cartridge: `cartridge.wat` assembled, its module the data of a PixelRTS image
/// that says `embedded_type: "wasm"`. The watcher submits it as a WebAssembly job, the
/// executor runs it in wasmtime and shows its texture as a window at (1120, 40).
pub const CARTRIDGE: &str = "wasm-brick.rts.png";

fn cartridge() -> Result<Vec<u8>, String> {
    let module = wat::parse_str(include_str!("cartridge.wat"))
        .map_err(|e| format!("the sample cartridge does not assemble: {e}"))?;
    let meta = json!({
        "format": "PixelRTS-2.0",
        "encoding": {"type": "RGBA-dense"},
        "grid_size": 16,
        "data_size": module.len(),
        "embedded_type": "wasm",
        "source_file": "cartridge.wat",
    });
    Ok(gos_rts::encode(16, &module, &meta.to_string()))
}

/// Writes the embedded sample textures, and the sample cartridge, into `dir` (created if
/// needed) for the RTS watcher.
pub fn write_samples(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let cartridge = cartridge()?;
    for (name, bytes) in SAMPLES.iter().copied().chain([(CARTRIDGE, &cartridge[..])]) {
        let path = dir.join(name);
        std::fs::write(&path, bytes)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// What the run saw of the bus.
#[derive(Default)]
pub struct RunState {
    /// Each DNA job submitted, with the output it must print.
    pub expected: BTreeMap<u64, String>,
    /// Each DNA result seen, by job id.
    pub results: BTreeMap<u64, Value>,
    /// Each RTS texture seen, by texture id.
    pub textures: BTreeMap<u64, Value>,
    /// Each result of a job taken from an asset's DNA, by job id.
    pub asset_results: BTreeMap<u64, Value>,
    /// The API calls DNA jobs made, as the executor announced them on `events`.
    pub dna_calls: Vec<Value>,
}

/// Job `i`: a Python one-liner and the output it must print.
fn job(i: u64) -> (String, String) {
    let n = 1000 * (i + 1);
    (
        format!("print(sum(range({n})))"),
        format!("{}\n", n * (n - 1) / 2),
    )
}

/// Submits `count` DNA jobs on `dna.jobs`; returns each id with the output it must print.
pub fn submit_jobs(bus: &Bus, count: u64) -> Result<BTreeMap<u64, String>, String> {
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
            version: <DnaJob as gos_bus_client::Record>::SCHEMA.version,
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
        loan.commit().map_err(|e| e.to_string())?;
        expected.insert(id, want);
    }
    Ok(expected)
}

/// Shows texture `id` (the `i`th seen) in a window along the bottom of the output.
fn show_texture(
    frames: &mut Publisher<RenderFrame>,
    i: usize,
    (id, title): (u64, &str),
    height: u32,
) -> Result<(), String> {
    let mut loan = frames.loan().map_err(|e| e.to_string())?;
    *loan.header_mut() = RenderFrame {
        magic: *b"GFRM",
        version: RenderFrame::VERSION,
        source_id: 1000 + i as u64,
        kind: FRAME_PIXEL_WINDOW,
        flags: FRAME_FLAG_VISIBLE | FRAME_FLAG_DECORATED,
        title: RenderFrame::title_bytes(title),
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
    loan.commit().map_err(|e| e.to_string())?;
    Ok(())
}

/// What `up` watches while the system runs: RTS textures (each shown in a window), DNA
/// results (each checked against its job). Subscribed before anything is published.
pub struct Watch {
    textures: Subscriber<RtsTexture>,
    results: Subscriber<DnaResult>,
    events: Subscriber<Bytes>,
    frames: Publisher<RenderFrame>,
    /// The textures shown, in order, with their windows' titles (side and SHA-256 prefix).
    shown: Vec<(u64, String)>,
    next_show: Instant,
}

impl Watch {
    /// Subscribes to `rts.textures` and `dna.results` and publishes on `render.frames`.
    pub fn new(bus: &Bus) -> Result<Watch, String> {
        Ok(Watch {
            textures: bus.subscriber("rts.textures").map_err(|e| e.to_string())?,
            results: bus.subscriber("dna.results").map_err(|e| e.to_string())?,
            events: bus.subscriber("events").map_err(|e| e.to_string())?,
            frames: bus.publisher("render.frames").map_err(|e| e.to_string())?,
            shown: Vec::new(),
            next_show: Instant::now(),
        })
    }

    /// Takes in what arrived; every 0.5 s re-publishes the texture windows (so they do not
    /// fade) along the bottom of an output `height` pixels high.
    pub fn poll(&mut self, state: &mut RunState, height: u32) -> Result<(), String> {
        while let Some(m) = self.textures.try_recv().map_err(|e| e.to_string())? {
            let t = *m.header();
            if !self.shown.iter().any(|(id, _)| *id == t.texture_id) {
                let sha = gos_rts::hex(&t.sha256);
                let title = format!("{}x{} {}", t.width, t.height, &sha[..6]);
                self.shown.push((t.texture_id, title));
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
        while let Some(m) = self.results.try_recv().map_err(|e| e.to_string())? {
            let r = *m.header();
            let out = m.tail().get(..r.output_len as usize).unwrap_or_default();
            let out = String::from_utf8_lossy(out).into_owned();
            if r.job_id & ASSET_JOB != 0 {
                let values: Vec<Value> = gos_layouts::values::result_values(&r)
                    .unwrap_or_default()
                    .iter()
                    .map(|v| json!(v.to_string()))
                    .collect();
                state.asset_results.insert(
                    r.job_id,
                    json!({"status": r.status, "exit_code": r.exit_code, "limit": r.limit,
                           "api_calls": r.api_calls, "output": out, "ok": r.status == DNA_STATUS_OK,
                           "wasm": r.job_id & WASM_JOB != 0, "values": values}),
                );
                continue;
            }
            let ok = r.status == DNA_STATUS_OK && state.expected.get(&r.job_id) == Some(&out);
            state.results.insert(
                r.job_id,
                json!({"status": r.status, "exit_code": r.exit_code, "output": out, "ok": ok}),
            );
        }
        while let Some(m) = self.events.try_recv().map_err(|e| e.to_string())? {
            if let Ok(v) = serde_json::from_slice::<Value>(m.bytes()) {
                if v["event"].as_str().is_some_and(|e| e != "dna_log") && v.get("job_id").is_some()
                {
                    state.dna_calls.push(v);
                }
            }
        }
        if Instant::now() >= self.next_show {
            for (i, (id, title)) in self.shown.iter().enumerate() {
                show_texture(&mut self.frames, i, (*id, title), height)?;
            }
            self.next_show += Duration::from_millis(500);
        }
        Ok(())
    }
}
