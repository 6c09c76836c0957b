//! `gos-dna-wasm`: runs Hybrid DNA WebAssembly (a module, or the cartridge `.rts.png` that
//! carries one) in wasmtime. The DNA executor keeps one `serve` worker and hands it its
//! WebAssembly jobs; `run` runs one module from the command line.

use base64::Engine as _;
use clap::{Parser, Subcommand};
use gos_dna::api::{self, ApiCall};
use gos_dna::confine::{self, Confinement, Profile};
use gos_dna::{Outcome, Status, WasmValue};
use gos_dna_wasm::host::WasmHandler;
use gos_dna_wasm::runner::{entry, value_type};
use gos_dna_wasm::{WasmJob, WasmLimits, WasmRunner};
use serde_json::{json, Value};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "gos-dna-wasm",
    version,
    about = "Run Hybrid DNA WebAssembly (a .wasm module or a cartridge .rts.png) in wasmtime, with \
             a time limit, a memory limit and only the API it is granted",
    after_help = "Examples:
  gos-dna-wasm run wasm-double.rts.png --export double --arg 21   prints 42
  gos-dna-wasm run module.wasm --grant spawn_brick               its calls are printed on stderr
  gos-dna-wasm run spin.wasm --timeout 0.5 --json                one JSON result line
  gos-dna-wasm api                                               the API as WebAssembly imports"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one export of a module and print what it returned.
    Run(RunArgs),
    /// The API a module may import, with each function's WebAssembly signature.
    Api,
    /// Run jobs for a DNA executor: one JSON request per line on stdin (`serve --help` says how).
    #[command(
        after_help = "The worker compiles each module once (cached by SHA-256) and, before \
its first job, confines itself: Landlock with no file access at all, the sandbox's seccomp \
filter, no_new_privs, no core dumps. It prints {\"ready\": {...}} once, then \
answers each request line {\"job\": {\"module\": BASE64, \"export\": NAME, \"args\": \
[{\"type\": \"i32\", \"value\": 21}], \"api_mask\": N, \"timeout_ms\": N, \"memory\": BYTES, \"max_calls\": N}} with \
API calls, each {\"call\": {\"name\": ..., \"args\": [...]}} on stdout answered by one line on \
stdin ({\"ok\": VALUE} or {\"error\": \"why\"}), and then {\"result\": {...}}. It dies with the \
process that started it."
    )]
    Serve {
        /// Run where Landlock or seccomp is missing.
        #[arg(long)]
        weaker: bool,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// The module: a .wasm file, or a .rts.png cartridge whose data is a module.
    file: PathBuf,
    /// The export to call (default: run, main, _start, or the one export without parameters).
    #[arg(long)]
    export: Option<String>,
    /// An argument, in order; its type is the export's parameter's (`21`, `-3`, `0xff`, `2.5`;
    /// an i32 also takes 0 to 4294967295, as its bits).
    #[arg(long = "arg", allow_hyphen_values = true)]
    args: Vec<String>,
    /// API functions the module may import, comma-separated, or `all` (`gos-dna-wasm api`
    /// lists them).
    #[arg(long)]
    grant: Option<String>,
    /// Wall-clock limit in seconds.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// Linear-memory limit, bytes (suffixes K, M, G).
    #[arg(long, default_value = "64M", value_parser = gos_dna::cli::bytes)]
    memory: u64,
    /// Print the result as one JSON line on stdout.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let done = match cli.cmd {
        Cmd::Run(a) => run(a),
        Cmd::Api => {
            println!(
                "A module imports these from \"{}\" (only those its job is granted). None returns a \
                 value; a call the executor refuses traps.",
                api::MODULE
            );
            for f in api::API {
                println!(
                    "{}.{} {}  (bit {:#x})  {}",
                    api::MODULE,
                    f.name,
                    gos_dna_wasm::imports::signature_of(f),
                    f.bit,
                    f.doc.split(" Returns").next().unwrap_or(f.doc)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Serve { weaker } => serve(weaker),
    };
    done.unwrap_or_else(|e| {
        eprintln!("gos-dna-wasm: {e}");
        ExitCode::from(2)
    })
}

/// The module in `path`: a cartridge's data when the file is a PNG, else the file.
fn read_module(path: &Path) -> Result<Vec<u8>, String> {
    let raw = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if raw.starts_with(b"\0asm") {
        return Ok(raw);
    }
    if !raw.starts_with(b"\x89PNG") {
        return Err(format!(
            "{} is neither a WebAssembly module (binary, starting with \\0asm) nor a .rts.png \
             cartridge; WebAssembly text (.wat) must be assembled first (wat2wasm, wasm-tools parse)",
            path.display()
        ));
    }
    let file = gos_rts::decode_file(path).map_err(|e| format!("{}: {e}", path.display()))?;
    file.wasm_module().map(<[u8]>::to_vec).ok_or_else(|| {
        format!(
            "{} carries no WebAssembly module (its data does not start with \\0asm)",
            path.display()
        )
    })
}

fn run(a: RunArgs) -> Result<ExitCode, String> {
    let wall = gos_dna::cli::timeout(a.timeout)?;
    let module = read_module(&a.file)?;
    let runner = WasmRunner::new()?;
    // Arguments take the export's parameter types (a module that cannot be used is reported
    // by the run itself).
    let export = a.export.clone().unwrap_or_default();
    // None: the module or the export cannot be used, which the run itself reports.
    let found = runner
        .module(&module)
        .and_then(|(m, _)| entry(&m, &export))
        .ok();
    let mut args = Vec::new();
    if let Some((name, ty)) = found {
        let types: Vec<u8> = ty
            .params()
            .map(|t| {
                value_type(&t)
                    .and_then(gos_dna::values::type_code)
                    .unwrap_or(0)
            })
            .collect();
        if a.args.len() > types.len() {
            return Err(format!(
                "{} takes {} argument(s); {} --arg given",
                gos_dna_wasm::imports::shown(&name),
                types.len(),
                a.args.len()
            ));
        }
        for (text, &code) in a.args.iter().zip(&types) {
            args.push(WasmValue::parse(text, code).map_err(|e| format!("--arg {text}: {e}"))?);
        }
    }
    let job = WasmJob {
        module: &module,
        export: &export,
        args: &args,
        api_mask: api::mask_of(a.grant.as_deref().unwrap_or_default())?,
        limits: WasmLimits {
            wall,
            memory: a.memory as usize,
            ..WasmLimits::default()
        },
    };
    let mut handler: WasmHandler = Box::new(|call: &ApiCall| {
        let args: Vec<String> = call.args.iter().map(Value::to_string).collect();
        eprintln!("call: {}({})", call.function.name, args.join(", "));
        Ok(Value::Null)
    });
    let o = runner.run(&job, &mut handler);
    if a.json {
        println!("{}", json!({ "result": o.to_json() }));
    } else {
        for v in &o.values {
            println!("{v}");
        }
        eprintln!("gos-dna-wasm: {}", o.summary());
    }
    Ok(if o.status == Status::Ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The long-lived worker of a DNA executor.
fn serve(weaker: bool) -> Result<ExitCode, String> {
    gos_dna::cli::die_with_parent()?;
    let runner = WasmRunner::new()?;
    runner.warm_up()?;
    let confined = confine_worker(weaker)?;
    println!("{}", json!({ "ready": { "confined": confined } }));
    let stdin = std::io::stdin();
    loop {
        let mut line = String::new();
        match stdin.lock().read_line(&mut line) {
            Ok(0) => return Ok(ExitCode::SUCCESS),
            Ok(_) => {}
            Err(e) => return Err(format!("reading a request: {e}")),
        }
        if line.trim().is_empty() {
            continue;
        }
        let (outcome, cached) = match request(&line) {
            Ok(r) => {
                let job = WasmJob {
                    module: &r.module,
                    export: &r.export,
                    args: &r.args,
                    api_mask: r.api_mask,
                    limits: r.limits,
                };
                let mut handler: WasmHandler = Box::new(gos_dna::relay::stdio_call);
                let (outcome, cached) = runner.run_cached(&job, &mut handler);
                (outcome, cached)
            }
            Err(why) => {
                let mut o = Outcome::rejected(why);
                o.output = format!("{}\n", o.reason).into_bytes();
                (o, None)
            }
        };
        let mut result = outcome.to_json();
        result["confined"] = confined.clone();
        result["cached"] = json!(cached == Some(true));
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", json!({ "result": result }))
            .and_then(|_| out.flush())
            .map_err(|e| format!("the executor is gone: {e}"))?;
    }
}

/// One request, read.
struct Request {
    module: Vec<u8>,
    export: String,
    args: Vec<WasmValue>,
    api_mask: u64,
    limits: WasmLimits,
}

fn request(line: &str) -> Result<Request, String> {
    let v: Value =
        serde_json::from_str(line).map_err(|e| format!("the request is not JSON: {e}"))?;
    let j = &v["job"];
    let module = base64::engine::general_purpose::STANDARD
        .decode(
            j["module"]
                .as_str()
                .ok_or("the request has no job.module")?,
        )
        .map_err(|e| format!("job.module is not base64: {e}"))?;
    let args = match &j["args"] {
        Value::Null => Vec::new(),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, v)| WasmValue::from_json(v).map_err(|e| format!("job.args[{i}]: {e}")))
            .collect::<Result<_, _>>()?,
        other => return Err(format!("job.args is {other}, not a list")),
    };
    let mut limits = WasmLimits::default();
    if let Some(ms) = j["timeout_ms"].as_u64().filter(|&ms| ms > 0) {
        limits.wall = Duration::from_millis(ms);
    }
    match &j["memory"] {
        Value::Null => {}
        Value::String(t) => limits.memory = gos_dna::cli::bytes(t)? as usize,
        m => {
            limits.memory = m
                .as_u64()
                .ok_or_else(|| format!("job.memory is {m}, not a byte count"))?
                as usize
        }
    }
    if let Some(c) = j["max_calls"].as_u64() {
        limits.max_calls = c.min(u32::MAX as u64) as u32;
    }
    Ok(Request {
        module,
        export: j["export"].as_str().unwrap_or_default().to_string(),
        args,
        api_mask: j["api_mask"].as_u64().unwrap_or(0),
        limits,
    })
}

/// Confines this process for good: Landlock with no file access (nothing to read, write or
/// run: only the descriptors it was started with), the worker's seccomp filter (no socket, no
/// `execve`, no namespace), `no_new_privs`, at most 32 open files, no core dumps.
fn confine_worker(weaker: bool) -> Result<Value, String> {
    use nix::sys::resource::{setrlimit, Resource};
    for (what, r, n) in [
        ("RLIMIT_CORE", Resource::RLIMIT_CORE, 0),
        ("RLIMIT_NOFILE", Resource::RLIMIT_NOFILE, 32),
    ] {
        setrlimit(r, n, n).map_err(|e| format!("cannot set {what}: {e}"))?;
    }
    let applied = confine::restrict(&Confinement {
        weaker,
        profile: Profile::Worker,
        ..Confinement::default()
    })
    .map_err(|e| format!("cannot confine the worker: {e}"))?;
    Ok(applied.to_json())
}
