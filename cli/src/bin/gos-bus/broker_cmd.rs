//! `serve`, `clean` and `bench`.

use clap::Args;
use gos_bus_broker::{self as broker, Manifest, ServeOptions};
use gos_bus_protocol::{name, Result};
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `gos-bus serve`.
#[derive(Args)]
pub struct ServeArgs {
    /// Bus name.
    #[arg(long, default_value = name::DEFAULT_BUS)]
    bus: String,
    /// Manifest (TOML) listing the rings; without it, the embedded Geometry OS manifest.
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Reap a client whose heartbeat is older than this (e.g. 5s, 500ms); a client whose
    /// process is gone is reaped at once.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    liveness_timeout: Duration,
    /// Time between supervision scans.
    #[arg(long, default_value = "50ms", value_parser = parse_duration)]
    scan_every: Duration,
    /// Remove the rings and the registry when stopping.
    #[arg(long)]
    remove_on_exit: bool,
    /// Print the embedded default manifest and exit.
    #[arg(long)]
    print_manifest: bool,
}

fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (try 5s or 500ms)"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        u => Err(format!("unknown duration unit {u:?} (use ms, s or m)")),
    }
}

/// `gos-bus serve`.
pub fn serve(a: ServeArgs) -> Result<()> {
    if a.print_manifest {
        print!("{}", broker::manifest::DEFAULT_MANIFEST);
        return Ok(());
    }
    let manifest = match &a.manifest {
        Some(p) => Manifest::load(p)?,
        None => Manifest::default_geometry(),
    };
    let stop = gos_bus_protocol::proc::stop_on_signals();
    let opts = ServeOptions {
        bus: a.bus.clone(),
        manifest,
        liveness: a.liveness_timeout,
        scan_every: a.scan_every,
        remove_on_exit: a.remove_on_exit,
    };
    let log = |line: &str| {
        let secs = gos_bus_protocol::proc::now_ns() / 1_000_000_000;
        eprintln!(
            "gos-bus serve [{:02}:{:02}:{:02}] {line}",
            secs / 3600 % 24,
            secs / 60 % 60,
            secs % 60
        );
    };
    let summary = broker::serve(&opts, stop, log)?;
    eprintln!(
        "gos-bus serve: stopped. rings created {}, adopted {}; clients reaped {}, abandoned claims skipped {}, jobs redelivered {}",
        summary.created.len(),
        summary.adopted.len(),
        summary.reaped,
        summary.skipped,
        summary.redelivered
    );
    Ok(())
}

/// `gos-bus clean`.
pub fn clean(bus: &str, force: bool) -> Result<()> {
    let removed = broker::clean(bus, force)?;
    if removed.is_empty() {
        println!("bus '{bus}' left nothing in {}", name::SHM_DIR);
    }
    for p in removed {
        println!("removed {p}");
    }
    Ok(())
}

/// `gos-bus bench`: runs `gos-bus-bench` from the same folder. The error is one line.
pub fn bench(args: &[String]) -> std::result::Result<(), String> {
    let exe = std::env::current_exe().ok();
    let bench = exe
        .as_ref()
        .and_then(|p| p.parent())
        .map(|d| d.join("gos-bus-bench"))
        .filter(|p| p.exists())
        .ok_or("gos-bus-bench is not built next to gos-bus: run `cargo build --release -p gos-bus-bench` (or `cargo run --release -p gos-bus-bench`)")?;
    let status = std::process::Command::new(&bench)
        .args(args)
        .status()
        .map_err(|e| format!("cannot run {}: {e}", bench.display()))?;
    if !status.success() {
        return Err(format!("gos-bus-bench failed ({status})"));
    }
    Ok(())
}
