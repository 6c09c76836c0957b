//! `gos-bus`: the command line of the bus.

use clap::{Parser, Subcommand, ValueEnum};
use gos_bus_broker::manifest;
use gos_bus_protocol::ring::entry;
use gos_bus_protocol::{name, Result, RingConfig, Segment};
use gos_bus_protocol::{Mode, Policy};

mod broker_cmd;
mod up;
mod view_cmd;
use gos_layouts::segment::CURSOR_HOLD;
use gos_layouts::{Schema, SlotHeader};
use std::process::ExitCode;
use std::sync::atomic::Ordering::Relaxed;

#[derive(Parser)]
#[command(
    name = "gos-bus",
    version,
    about = "The shared-memory IPC bus of Geometry OS",
    after_help = "Examples:\n  gos-bus up                          # everything: broker, render node, daemons, producer\n  gos-bus serve                       # the Geometry OS rings on bus 'geometry'\n  gos-bus monitor                     # live view of every ring\n  gos-bus ls\n  gos-bus inspect render.frames --last 5\n  gos-bus layouts --json\n  gos-bus clean                       # remove what a dead bus left"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    /// Every subscriber sees every message.
    Broadcast,
    /// Each message is taken by exactly one worker.
    WorkQueue,
}

#[derive(Clone, Copy, ValueEnum)]
enum PolicyArg {
    /// Producers wait for the slowest subscriber.
    Block,
    /// Producers overwrite the oldest message; the slow subscriber counts a drop.
    Overwrite,
}

#[derive(Subcommand)]
enum RtsCommand {
    /// Decode .rts.png files: grid, the rule that found the data, its size and SHA-256, the
    /// segments, the hashes verified, whether logic is present, the metadata.
    #[command(
        after_help = "A file that cannot be used is one line on stderr; the others are still shown, and the exit status is 1.\n\nExamples:\n  gos-bus rts info assets/rts/blob-1000.rts.png\n  gos-bus rts info assets/rts-variants/*.rts.png\n  gos-bus rts info assets/rts/blob-1000.rts.png --json"
    )]
    Info {
        /// The files.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Decode .rts.png files and publish each, pixels and metadata, on a ring.
    #[command(
        after_help = "A file that cannot be used is one line on stderr and is skipped; the others are still published, and the exit status is 1.\n\nExamples:\n  gos-bus rts publish assets/rts/*.rts.png\n  gos-bus rts publish boot.rts.png --bus test --ring rts.textures"
    )]
    Publish {
        /// The files.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        /// Bus name.
        #[arg(long, default_value = name::DEFAULT_BUS)]
        bus: String,
        /// Ring to publish on.
        #[arg(long, default_value = "rts.textures")]
        ring: String,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole of Geometry OS on one bus: broker, render node, Python RTS watcher and DNA
    /// executor, a Rust frame producer; stop them all on Ctrl-C or --for, print a summary.
    #[command(
        after_help = "Examples:\n  ./gos up                            # builds what is missing, then this\n  gos-bus up --for 20\n  gos-bus up --bus demo --rts-dir ~/maps --jobs 20 --width 1280 --height 720\n\nSnapshots, logs and summary.json go to --out (default ./gos-up). Watch it live with\n`gos-bus monitor` in another terminal."
    )]
    Up(up::UpArgs),
    /// Run the broker: create (or adopt) the rings of a manifest and supervise the clients.
    #[command(
        after_help = "Examples:\n  gos-bus serve\n  gos-bus serve --bus test --manifest rings.toml --liveness-timeout 2s\n  gos-bus serve --print-manifest > rings.toml   # the embedded default, to edit\n\nStops cleanly on SIGINT or SIGTERM. The rings stay (unless --remove-on-exit) and the next\n`gos-bus serve` adopts them with their messages."
    )]
    Serve(broker_cmd::ServeArgs),
    /// Remove the registry and rings a stopped or dead bus left in /dev/shm.
    #[command(after_help = "Examples:\n  gos-bus clean\n  gos-bus clean --bus test --force")]
    Clean {
        /// Bus name.
        #[arg(long, default_value = name::DEFAULT_BUS)]
        bus: String,
        /// Remove even while clients are still attached (never while a broker runs).
        #[arg(long)]
        force: bool,
    },
    /// Live view of every ring: fill, rates, lag, drops, clients (q quits).
    #[command(
        after_help = "Examples:\n  gos-bus monitor\n  gos-bus monitor --once --json | jq '.rings[].published'"
    )]
    Monitor {
        /// Bus name.
        #[arg(long, default_value = name::DEFAULT_BUS)]
        bus: String,
        /// Print one snapshot and exit (with --json, as JSON).
        #[arg(long)]
        once: bool,
        /// With --once: JSON for scripts.
        #[arg(long)]
        json: bool,
        /// Refresh period in milliseconds.
        #[arg(long, default_value_t = 250)]
        refresh_ms: u64,
    },
    /// Show a ring's header and its last records decoded through the ring's schema.
    #[command(
        after_help = "Examples:\n  gos-bus inspect render.frames\n  gos-bus inspect dna.jobs --last 20 --json"
    )]
    Inspect {
        /// Ring name.
        ring: String,
        /// Bus name.
        #[arg(long, default_value = name::DEFAULT_BUS)]
        bus: String,
        /// How many of the latest records to decode.
        #[arg(long, default_value_t = 5)]
        last: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// PixelRTS textures: describe a .rts.png, or publish files on rts.textures.
    #[command(subcommand)]
    Rts(RtsCommand),
    /// Run the cross-process benchmarks (gos-bus-bench, built next to gos-bus).
    #[command(after_help = "Examples:\n  gos-bus bench --quick\n  gos-bus bench --latency")]
    Bench {
        /// Arguments passed to gos-bus-bench (--quick, --latency, --throughput).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Print the record layouts (schemas and fingerprints).
    #[command(
        after_help = "Examples:\n  gos-bus layouts\n  gos-bus layouts --json > layouts.json"
    )]
    Layouts {
        /// Print JSON that another language can build its view from.
        #[arg(long)]
        json: bool,
    },
    /// Create a ring (until the broker exists, rings are created here).
    #[command(
        after_help = "Examples:\n  gos-bus create events\n  gos-bus create dna.jobs --mode work-queue --layout DnaJob --slots 256 --slot-size 64KiB\n  gos-bus create render.frames --policy overwrite --layout RenderFrame --slots 8 --slot-size 8MiB"
    )]
    Create {
        /// Ring name (letters, digits, '.', '_', '-').
        ring: String,
        /// Bus name.
        #[arg(long, default_value = name::DEFAULT_BUS)]
        bus: String,
        /// Ring mode.
        #[arg(long, value_enum, default_value = "broadcast")]
        mode: ModeArg,
        /// What producers do when a subscriber is a full ring behind (broadcast).
        #[arg(long, value_enum, default_value = "block")]
        policy: PolicyArg,
        /// Number of slots (a power of two).
        #[arg(long, default_value_t = 1024)]
        slots: u32,
        /// Largest payload per slot, e.g. 4096, 64KiB, 8MiB.
        #[arg(long, default_value = "4KiB", value_parser = manifest::parse_size)]
        slot_size: u32,
        /// Record layout the ring carries (see `gos-bus layouts`).
        #[arg(long, default_value = "Bytes")]
        layout: String,
        /// Size of the client table.
        #[arg(long, default_value_t = 64)]
        max_clients: u32,
        /// Permission bits of the shared-memory object, octal.
        #[arg(long, default_value = "0600", value_parser = manifest::parse_octal)]
        permissions: u32,
        /// One publisher at a time (fastest: claims need no atomic read-modify-write).
        #[arg(long)]
        single_producer: bool,
    },
    /// Remove rings.
    #[command(after_help = "Example:\n  gos-bus rm render.frames events")]
    Rm {
        /// Ring names.
        #[arg(required = true)]
        rings: Vec<String>,
        /// Bus name.
        #[arg(long, default_value = name::DEFAULT_BUS)]
        bus: String,
    },
    /// List the rings of a bus.
    #[command(after_help = "Example:\n  gos-bus ls --bus geometry")]
    Ls {
        /// Bus name.
        #[arg(long, default_value = name::DEFAULT_BUS)]
        bus: String,
    },
    /// Show a ring's header, fill and attached clients.
    #[command(after_help = "Example:\n  gos-bus info render.frames --json")]
    Info {
        /// Ring name.
        ring: String,
        /// Bus name.
        #[arg(long, default_value = name::DEFAULT_BUS)]
        bus: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn schema_json(s: &Schema) -> serde_json::Value {
    serde_json::to_value(s).expect("schemas serialise")
}

fn print_schema(s: &Schema) {
    println!(
        "{} (magic {:?}, version {}, {} bytes, align {}, fingerprint {:#018x})",
        s.name,
        String::from_utf8_lossy(&s.magic),
        s.version,
        s.size,
        s.align,
        s.fingerprint
    );
    if !s.doc.is_empty() {
        println!("  {}", s.doc);
    }
    println!("  {:>6}  {:<22} {:<9} doc", "offset", "field", "type");
    for f in s.fields {
        let ty = if f.count == 1 {
            f.scalar.name().to_string()
        } else {
            format!("{}[{}]", f.scalar.name(), f.count)
        };
        println!("  {:>6}  {:<22} {:<9} {}", f.offset, f.name, ty, f.doc);
    }
    println!();
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve(args) => broker_cmd::serve(args)?,
        Command::Up(args) => match up::up(args) {
            Ok(true) => {}
            Ok(false) => std::process::exit(1),
            Err(e) => {
                eprintln!("gos-bus up: {e}");
                std::process::exit(1);
            }
        },
        Command::Clean { bus, force } => broker_cmd::clean(&bus, force)?,
        Command::Monitor {
            bus,
            once,
            json,
            refresh_ms,
        } => view_cmd::monitor(&bus, once, json, refresh_ms)?,
        Command::Inspect {
            ring,
            bus,
            last,
            json,
        } => view_cmd::inspect(&bus, &ring, last, json)?,
        Command::Bench { args } => {
            if let Err(e) = broker_cmd::bench(&args) {
                eprintln!("gos-bus bench: {e}");
                std::process::exit(1);
            }
        }
        Command::Rts(RtsCommand::Info { files, json }) => {
            view_cmd::each_file(&files, |f| view_cmd::rts_info(f, json))?
        }
        Command::Rts(RtsCommand::Publish { files, bus, ring }) => {
            view_cmd::rts_publish(&bus, &ring, &files)?
        }
        Command::Layouts { json } => {
            let messages = gos_layouts::message_schemas();
            let segment = gos_layouts::segment_schemas();
            let elements = gos_layouts::element_schemas();
            if json {
                let v = serde_json::json!({
                    "endian": "little",
                    "fingerprint": "FNV-1a 64 over: magic, name, 0, version u16, size u32, align u32, then per field: name, 0, offset u32, type code u8, count u32 (all LE); type codes u8=1 u16=2 u32=3 u64=4 i32=5 i64=6 f32=7 f64=8",
                    "records": messages.iter().map(schema_json).collect::<Vec<_>>(),
                    "segment": segment.iter().map(schema_json).collect::<Vec<_>>(),
                    "elements": elements.iter().map(schema_json).collect::<Vec<_>>(),
                    "constants": gos_layouts::constants(),
                });
                println!("{}", serde_json::to_string_pretty(&v).expect("json"));
            } else {
                println!("Message records (at the start of a slot's payload):\n");
                messages.iter().for_each(print_schema);
                println!("Segment records:\n");
                segment.iter().for_each(print_schema);
                println!("Payload elements:\n");
                elements.iter().for_each(print_schema);
            }
        }
        Command::Create {
            ring,
            bus,
            mode,
            policy,
            slots,
            slot_size,
            layout,
            max_clients,
            permissions,
            single_producer,
        } => {
            let schema = gos_layouts::find_schema(&layout).ok_or_else(|| {
                gos_bus_protocol::Error::InvalidConfig(format!(
                    "unknown layout {layout:?}; known: {}",
                    gos_layouts::message_schemas()
                        .iter()
                        .map(|s| s.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
            let cfg = RingConfig {
                mode: match mode {
                    ModeArg::Broadcast => Mode::Broadcast,
                    ModeArg::WorkQueue => Mode::WorkQueue,
                },
                policy: match policy {
                    PolicyArg::Block => Policy::Block,
                    PolicyArg::Overwrite => Policy::OverwriteOldest,
                },
                slot_count: slots,
                slot_size,
                max_clients,
                layout: schema,
                permissions,
                single_producer,
            };
            let seg = Segment::create(&bus, &ring, &cfg)?;
            let g = seg.geometry();
            println!(
                "created {} ({:?}, {:?}, {} slots of {} bytes, layout {}, {} bytes reserved)",
                seg.path(),
                g.mode,
                g.policy,
                g.slot_count,
                g.slot_size,
                g.layout_name,
                g.segment_size
            );
        }
        Command::Rm { rings, bus } => {
            for ring in rings {
                Segment::unlink(&bus, &ring)?;
                println!(
                    "removed {}",
                    name::object_path(&name::ring_object(&bus, &ring)?)
                );
            }
        }
        Command::Ls { bus } => {
            name::check_bus(&bus)?;
            view_cmd::print_table(&gos_bus::tools::snapshot::take(&bus));
        }
        Command::Info { ring, bus, json } => {
            let seg = Segment::open_read_only(&bus, &ring)?;
            let g = seg.geometry().clone();
            let h = seg.header();
            let r = seg.ring();
            let mut clients = Vec::new();
            for i in 0..r.clients.len() {
                let e = r.clients.get(i);
                let state = match entry::state(entry::observe(&r, i)) {
                    gos_layouts::segment::CLIENT_ACTIVE => "active",
                    // Reaped while its process lives: shown, since it still pins a slot.
                    gos_layouts::segment::CLIENT_REAPED => "reaped",
                    _ => continue,
                };
                let mut name = Vec::new();
                for w in e.name() {
                    name.extend_from_slice(&w.load(Relaxed).to_le_bytes());
                }
                let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
                let role = match e.role().load(Relaxed) {
                    1 => "publisher",
                    2 => "subscriber",
                    3 => "worker",
                    _ => "unknown",
                };
                // Only a subscriber has a cursor and a lag (a reaped entry's cursor word names
                // the sequence it pins instead).
                let cursor = e.cursor().load(Relaxed);
                let reading = role == "subscriber" && state == "active";
                let maybe =
                    |v: serde_json::Value| if reading { v } else { serde_json::Value::Null };
                clients.push(serde_json::json!({
                    "entry": i,
                    "role": role,
                    "state": state,
                    "pid": e.pid().load(Relaxed),
                    "name": String::from_utf8_lossy(&name[..end]),
                    "cursor": maybe((cursor & !CURSOR_HOLD).into()),
                    "holding": maybe((cursor & CURSOR_HOLD != 0).into()),
                    "lag": maybe(h.head.saturating_sub(cursor & !CURSOR_HOLD).into()),
                    "drops": e.drops().load(Relaxed),
                    "count": e.count().load(Relaxed),
                }));
            }
            let v = serde_json::json!({
                "ring": ring,
                "bus": bus,
                "path": seg.path(),
                "mode": format!("{:?}", g.mode),
                "policy": format!("{:?}", g.policy),
                "layout": g.layout_name,
                "layout_fingerprint": format!("{:#018x}", g.layout_fingerprint),
                "slot_count": g.slot_count,
                "slot_size": g.slot_size,
                "slot_header": std::mem::size_of::<SlotHeader>(),
                "segment_size": g.segment_size,
                "head": h.head,
                "tail": h.tail,
                "published": h.head.saturating_sub(h.skipped),
                "skipped": h.skipped,
                "permissions": format!("{:o}", g.permissions),
                "single_producer": g.single_producer,
                "creator_pid": g.creator_pid,
                "clients": clients,
            });
            if json {
                println!("{}", serde_json::to_string_pretty(&v).expect("json"));
            } else {
                print_info(&v);
            }
        }
    }
    Ok(())
}

fn print_info(v: &serde_json::Value) {
    for key in [
        "ring",
        "bus",
        "path",
        "mode",
        "policy",
        "single_producer",
        "layout",
        "layout_fingerprint",
        "slot_count",
        "slot_size",
        "segment_size",
        "head",
        "tail",
        "published",
        "skipped",
        "permissions",
        "creator_pid",
    ] {
        match &v[key] {
            serde_json::Value::String(s) => println!("{key:<20} {s}"),
            other => println!("{key:<20} {other}"),
        }
    }
    let clients = v["clients"].as_array().cloned().unwrap_or_default();
    println!("\nclients ({}):", clients.len());
    println!(
        "  {:>5}  {:<10} {:<7} {:>8}  {:<16} {:>12} {:>8} {:>8} {:>12}",
        "entry", "role", "state", "pid", "name", "cursor", "lag", "drops", "count"
    );
    // A field a client does not have (a publisher's cursor) shows as "-".
    let cell = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "-".to_string(),
        v => v.to_string(),
    };
    for c in clients {
        println!(
            "  {:>5}  {:<10} {:<7} {:>8}  {:<16} {:>12} {:>8} {:>8} {:>12}",
            c["entry"].to_string(),
            c["role"].as_str().unwrap_or(""),
            c["state"].as_str().unwrap_or(""),
            c["pid"].to_string(),
            c["name"].as_str().unwrap_or(""),
            cell(&c["cursor"]),
            cell(&c["lag"]),
            c["drops"].to_string(),
            c["count"].to_string()
        );
    }
}

fn main() -> ExitCode {
    // A closed pipe (`gos-bus ls | head -1`) ends the listing quietly, as with other
    // command-line tools, instead of a panic in println!.
    // SAFETY: restoring the default disposition of SIGPIPE, before any thread starts; no
    // handler runs our code.
    let _ = unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        )
    };
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gos-bus: {e}");
            ExitCode::FAILURE
        }
    }
}
