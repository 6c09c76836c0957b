//! `gos-dna-sandbox`: runs one Hybrid DNA script under kernel isolation, says what the kernel
//! offers, and lists the injected API. The DNA executor and `HybridDNA.execute` run it once
//! per job.

use clap::{Parser, Subcommand};
use gos_dna::api::{self, ParamKind};
use gos_dna::confine::{self, Confinement};
use gos_dna::run::{Isolation, Job, Runner};
use gos_dna::{probe, Limits};
use serde_json::{json, Value};
use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "gos-dna-sandbox",
    version,
    about = "Run untrusted Hybrid DNA (Python) under namespaces, Landlock, seccomp and rlimits",
    after_help = "Examples:
  gos-dna-sandbox probe                          which isolation layers this kernel offers
  gos-dna-sandbox run job.py --grant log         run a script; its log() calls go to stderr
  gos-dna-sandbox run job.py --timeout 2 --json  one JSON result line on stdout
  gos-dna-sandbox api                            the functions a job may be granted"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Say which isolation layers this kernel offers (exit status 1 when one is missing).
    Probe,
    /// Run one script and report how it ended.
    #[command(
        after_help = "With --relay (how the DNA executor and HybridDNA.execute use it) the \
script path may be `-`: the first line of stdin is then the code as a JSON string. Each checked \
API call is written on stdout as {\"call\": {\"name\": ..., \"args\": [...]}} and answered by one \
line on stdin, {\"ok\": VALUE} or {\"error\": \"why\"}; the last line on stdout is \
{\"result\": {...}}. Without --relay, granted calls are printed on stderr and return None."
    )]
    Run(RunArgs),
    /// List the API a job may be granted (name, bit, parameters).
    Api {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Inside the sandbox: set rlimits, Landlock and seccomp, then run PROGRAM (used by `run`).
    #[command(hide = true)]
    Confine(ConfineArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// The Python script to run (`-`: read it from stdin, see below).
    script: PathBuf,
    /// Wall-clock limit in seconds.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// CPU-time limit in seconds (default: the timeout, rounded up).
    #[arg(long)]
    cpu: Option<u64>,
    /// Address-space limit, bytes (suffixes K, M, G).
    #[arg(long, default_value = "512M", value_parser = gos_dna::cli::bytes)]
    memory: u64,
    /// Process and thread limit.
    #[arg(long, default_value_t = 32)]
    processes: u64,
    /// Largest file the job may write, bytes (K, M, G).
    #[arg(long, default_value = "32M", value_parser = gos_dna::cli::bytes)]
    file_size: u64,
    /// Open-file limit.
    #[arg(long, default_value_t = 64)]
    open_files: u64,
    /// Size of the private work folder /work, bytes (K, M, G).
    #[arg(long, default_value = "16M", value_parser = gos_dna::cli::bytes)]
    work_size: u64,
    /// Output kept; a job that writes more is stopped, bytes (K, M, G).
    #[arg(long, default_value = "64K", value_parser = gos_dna::cli::bytes)]
    max_output: u64,
    /// API calls allowed per job.
    #[arg(long, default_value_t = 1000)]
    max_calls: u32,
    /// API functions granted, comma-separated (`all` for every one; see `api`).
    #[arg(long, default_value = "")]
    grant: String,
    /// API functions granted, as the DnaJob's allowed_api_mask bits (added to --grant).
    #[arg(long, default_value_t = 0)]
    api_mask: u64,
    /// Python interpreter: a path, a name on PATH, or `auto` (/usr/bin/python3 when there is
    /// one, else python3 on PATH). Jobs use the standard library only.
    #[arg(long, default_value = "auto")]
    python: String,
    /// Run even where Landlock or seccomp is missing or partial (namespaces are still needed).
    #[arg(long)]
    weaker: bool,
    /// No isolation at all: a plain child process (trusted code, or measuring the sandbox).
    #[arg(long, conflicts_with = "weaker")]
    no_sandbox: bool,
    /// Relay checked API calls on stdout and read the answers on stdin.
    #[arg(long)]
    relay: bool,
    /// Print the result as one JSON line on stdout (implied by --relay).
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct ConfineArgs {
    #[arg(long)]
    cpu: u64,
    #[arg(long)]
    memory: u64,
    #[arg(long)]
    processes: u64,
    #[arg(long)]
    file_size: u64,
    #[arg(long)]
    open_files: u64,
    #[arg(long)]
    read: Vec<PathBuf>,
    #[arg(long)]
    write: Vec<PathBuf>,
    #[arg(long)]
    weaker: bool,
    #[arg(last = true, required = true)]
    program: Vec<String>,
}

/// The smallest address space Python starts in (its shared libraries are mapped first).
const MIN_MEMORY: u64 = 64 << 20;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Probe => {
            let p = probe::probe();
            for l in &p.layers {
                println!(
                    "{:<11} {:<8} {}",
                    l.name,
                    if l.ok { "ok" } else { "MISSING" },
                    l.detail
                );
            }
            if p.complete() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Cmd::Api { json } => {
            print_api(json);
            ExitCode::SUCCESS
        }
        Cmd::Run(a) => match run(a) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("gos-dna-sandbox: {e}");
                ExitCode::from(2)
            }
        },
        Cmd::Confine(a) => {
            let e = confine_and_exec(a);
            eprintln!("gos-dna-sandbox confine: {e}");
            ExitCode::from(126)
        }
    }
}

fn print_api(as_json: bool) {
    if as_json {
        let fns: Vec<Value> = api::API
            .iter()
            .map(|f| {
                json!({
                    "name": f.name, "bit": f.bit, "doc": f.doc,
                    "params": f.params.iter().map(|p| json!({
                        "name": p.name, "kind": format!("{:?}", p.kind), "default": p.default,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!("{}", json!({ "module": api::MODULE, "functions": fns }));
        return;
    }
    println!(
        "module {} (Python: builtins, and `import {}`)",
        api::MODULE,
        api::MODULE
    );
    for f in api::API {
        println!("  bit {:>2}  {}", f.bit.trailing_zeros(), f.doc);
        for p in f.params {
            let kind = match p.kind {
                ParamKind::Int { min, max } => format!("integer {min}..={max}"),
                ParamKind::Id => "integer 0..=2^64-1".into(),
                ParamKind::Text { max_chars } => format!("text, at most {max_chars} characters"),
                ParamKind::Name => "a name, 1 to 64 of A-Z a-z 0-9 _ . -".into(),
            };
            println!("           {}: {kind}", p.name);
        }
    }
}

fn run(a: RunArgs) -> Result<ExitCode, String> {
    // The job dies with its executor: this runner dies with its parent (and bubblewrap's
    // --die-with-parent takes the sandbox with it).
    gos_dna::cli::die_with_parent()?;
    let wall = gos_dna::cli::timeout(a.timeout)?;
    let isolation = if a.no_sandbox {
        Isolation::Plain
    } else {
        let p = probe::probe_quick();
        let Some(bwrap) = p.bwrap.clone() else {
            return Err(format!("refusing to run: {}", p.missing()));
        };
        if !p.complete() && !a.weaker {
            return Err(format!(
                "refusing to run: the sandbox would be incomplete ({}); pass --weaker to run anyway",
                p.missing()
            ));
        }
        let helper = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
        Isolation::Sandbox {
            bwrap,
            helper,
            weaker: a.weaker,
        }
    };
    let runner = Runner::new(&a.python, isolation)?;
    let stdin = std::io::stdin();
    if a.memory < MIN_MEMORY {
        return Err(format!(
            "--memory {} is too small for the interpreter to start (at least {}M)",
            a.memory,
            MIN_MEMORY >> 20
        ));
    }
    let code = if a.script.as_os_str() == "-" && !a.relay {
        let mut all = String::new();
        std::io::Read::read_to_string(&mut stdin.lock(), &mut all)
            .map_err(|e| format!("reading the code from stdin: {e}"))?;
        all
    } else if a.script.as_os_str() == "-" {
        let mut first = String::new();
        stdin
            .lock()
            .read_line(&mut first)
            .map_err(|e| format!("reading the code from stdin: {e}"))?;
        serde_json::from_str::<String>(&first)
            .map_err(|e| format!("the first line of stdin is not the code as a JSON string: {e}"))?
    } else {
        std::fs::read_to_string(&a.script)
            .map_err(|e| format!("cannot read {}: {e}", a.script.display()))?
    };
    let mut limits = Limits::with_wall(wall);
    if let Some(cpu) = a.cpu {
        limits.cpu_secs = cpu.max(1);
    }
    limits.memory = a.memory;
    limits.processes = a.processes;
    limits.file_size = a.file_size;
    limits.open_files = a.open_files;
    limits.work_size = a.work_size;
    limits.max_output = a.max_output as usize;
    limits.max_calls = a.max_calls;
    let job = Job {
        code,
        api_mask: api::mask_of(&a.grant)? | a.api_mask,
        limits,
    };
    let relay = a.relay;
    let mut handler = |call: &api::ApiCall| -> Result<Value, String> {
        if !relay {
            let args: Vec<String> = call.args.iter().map(Value::to_string).collect();
            eprintln!("call: {}({})", call.function.name, args.join(", "));
            return Ok(Value::Null);
        }
        gos_dna::relay::stdio_call(call)
    };
    let outcome = runner.run(&job, &mut handler);
    if a.relay || a.json {
        println!("{}", json!({ "result": outcome.to_json() }));
    } else {
        let mut out = std::io::stdout();
        let _ = out.write_all(&outcome.output);
        if outcome.output.last().is_some_and(|&b| b != b'\n') {
            let _ = out.write_all(b"\n");
        }
        let _ = out.flush();
        eprintln!("gos-dna-sandbox: {}", outcome.summary());
    }
    Ok(if outcome.status == gos_dna::Status::Ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Moves the channel to descriptors 3 (`calls`) and 4 (`replies`) and closes every other
/// descriptor above 2.
fn renumber(calls: i32, replies: i32) -> std::io::Result<()> {
    // SAFETY: fcntl(F_DUPFD), dup2 and close_range only act on descriptor numbers; the two
    // channel descriptors are first copied above 9 so that neither is overwritten by the other.
    unsafe {
        let c = libc::fcntl(calls, libc::F_DUPFD_CLOEXEC, 10);
        let r = libc::fcntl(replies, libc::F_DUPFD_CLOEXEC, 10);
        if c < 0 || r < 0 || libc::dup2(c, 3) != 3 || libc::dup2(r, 4) != 4 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::syscall(libc::SYS_close_range, 5u32, u32::MAX, 0u32) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Confines this process and execs the program; returns only on failure.
fn confine_and_exec(a: ConfineArgs) -> String {
    let limits = Limits {
        cpu_secs: a.cpu,
        memory: a.memory,
        processes: a.processes,
        file_size: a.file_size,
        open_files: a.open_files,
        ..Limits::default()
    };
    if let Err(e) = confine::set_rlimits(&limits) {
        return e.to_string();
    }
    let c = Confinement {
        read: a.read,
        write: a.write,
        weaker: a.weaker,
        profile: confine::Profile::Job,
    };
    let applied = match confine::restrict(&c) {
        Ok(applied) => applied,
        Err(e) => return e.to_string(),
    };
    // The job gets stdio and its channel, as descriptors 3 (calls) and 4 (replies), and
    // nothing else, whatever this process inherited.
    let channel = ["GOS_DNA_CALLS_FD", "GOS_DNA_REPLIES_FD"]
        .map(|v| std::env::var(v).ok().and_then(|v| v.parse::<i32>().ok()));
    let [Some(calls), Some(replies)] = channel else {
        return "GOS_DNA_CALLS_FD and GOS_DNA_REPLIES_FD must name the job's channel".into();
    };
    if let Err(e) = renumber(calls, replies) {
        return format!("cannot set up the job's channel: {e}");
    }
    // Tell the runner the walls are up, on the job's channel, before the job can write to it.
    let line = format!("{}\n", json!({ "confined": applied.to_json() }));
    // SAFETY: descriptor 3 is the channel's write end (just put there); the slice is valid for
    // its length. A short or failed write makes the runner reject the job.
    let _ = unsafe { libc::write(3, line.as_ptr().cast(), line.len()) };
    let err = std::process::Command::new(&a.program[0])
        .args(&a.program[1..])
        .env("GOS_DNA_CALLS_FD", "3")
        .env("GOS_DNA_REPLIES_FD", "4")
        .exec();
    format!("cannot run {}: {err}", a.program[0])
}
