//! `gos-bus`: the command line of the bus.

use clap::{Parser, Subcommand, ValueEnum};
use gos_bus::ring::{Mode, Policy};
use gos_bus::{name, Result, RingConfig, Segment};
use gos_layouts::segment::{CLIENT_ACTIVE, CURSOR_HOLD};
use gos_layouts::{Schema, SlotHeader};
use std::process::ExitCode;
use std::sync::atomic::Ordering::Relaxed;

#[derive(Parser)]
#[command(
    name = "gos-bus",
    version,
    about = "The shared-memory IPC bus of Geometry OS",
    after_help = "Examples:\n  gos-bus create render.frames --slots 8 --slot-size 8MiB --layout RenderFrame\n  gos-bus ls\n  gos-bus info render.frames --json\n  gos-bus layouts --json\n  gos-bus rm render.frames"
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
enum Command {
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
        #[arg(long, default_value = "4KiB", value_parser = parse_size)]
        slot_size: u32,
        /// Record layout the ring carries (see `gos-bus layouts`).
        #[arg(long, default_value = "Bytes")]
        layout: String,
        /// Size of the client table.
        #[arg(long, default_value_t = 64)]
        max_clients: u32,
        /// Permission bits of the shared-memory object, octal.
        #[arg(long, default_value = "0600", value_parser = parse_octal)]
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

fn parse_size(s: &str) -> std::result::Result<u32, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (try 4096, 64KiB or 8MiB)"))?;
    let mul: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1 << 10,
        "m" | "mib" | "mb" => 1 << 20,
        "g" | "gib" | "gb" => 1 << 30,
        u => return Err(format!("unknown size unit {u:?} (use B, KiB, MiB or GiB)")),
    };
    n.checked_mul(mul)
        .filter(|v| *v <= u32::MAX as u64)
        .map(|v| v as u32)
        .ok_or_else(|| format!("{s:?} is too large"))
}

fn parse_octal(s: &str) -> std::result::Result<u32, String> {
    u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .map_err(|_| format!("{s:?} is not an octal mode such as 0600"))
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
        Command::Layouts { json } => {
            let messages = gos_layouts::message_schemas();
            let segment = gos_layouts::segment_schemas();
            if json {
                let v = serde_json::json!({
                    "endian": "little",
                    "fingerprint": "FNV-1a 64 over: magic, name, 0, version u16, size u32, align u32, then per field: name, 0, offset u32, type code u8, count u32 (all LE); type codes u8=1 u16=2 u32=3 u64=4 i32=5 i64=6 f32=7 f64=8",
                    "records": messages.iter().map(schema_json).collect::<Vec<_>>(),
                    "segment": segment.iter().map(schema_json).collect::<Vec<_>>(),
                });
                println!("{}", serde_json::to_string_pretty(&v).expect("json"));
            } else {
                println!("Message records (at the start of a slot's payload):\n");
                messages.iter().for_each(print_schema);
                println!("Segment records:\n");
                segment.iter().for_each(print_schema);
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
                gos_bus::Error::InvalidConfig(format!(
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
            let rings = name::list_rings(&bus)?;
            if rings.is_empty() {
                println!("bus '{bus}' has no rings in {}", name::SHM_DIR);
            }
            for ring in rings {
                match Segment::open_read_only(&bus, &ring) {
                    Ok(seg) => {
                        let g = seg.geometry();
                        let h = seg.header();
                        println!(
                            "{:<24} {:<10} {:<16} {:<12} {:>6} x {:>9} B  published {}",
                            ring,
                            format!("{:?}", g.mode),
                            format!("{:?}", g.policy),
                            g.layout_name,
                            g.slot_count,
                            g.slot_size,
                            h.head
                        );
                    }
                    Err(e) => println!("{ring:<24} unusable: {e}"),
                }
            }
        }
        Command::Info { ring, bus, json } => {
            let seg = Segment::open_read_only(&bus, &ring)?;
            let g = seg.geometry().clone();
            let h = seg.header();
            let r = seg.ring();
            let mut clients = Vec::new();
            for i in 0..r.clients.len() {
                let e = r.clients.get(i);
                if e.state.load(Relaxed) != CLIENT_ACTIVE {
                    continue;
                }
                let mut name = Vec::new();
                for w in &e.name {
                    name.extend_from_slice(&w.load(Relaxed).to_le_bytes());
                }
                let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
                let role = match e.role.load(Relaxed) {
                    1 => "publisher",
                    2 => "subscriber",
                    3 => "worker",
                    _ => "unknown",
                };
                let cursor = e.cursor.load(Relaxed);
                clients.push(serde_json::json!({
                    "entry": i,
                    "role": role,
                    "pid": e.pid.load(Relaxed),
                    "name": String::from_utf8_lossy(&name[..end]),
                    "cursor": cursor & !CURSOR_HOLD,
                    "holding": cursor & CURSOR_HOLD != 0,
                    "lag": h.head.saturating_sub(cursor & !CURSOR_HOLD),
                    "drops": e.drops.load(Relaxed),
                    "count": e.count.load(Relaxed),
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
        "  {:>5}  {:<10} {:>8}  {:<16} {:>12} {:>8} {:>8} {:>12}",
        "entry", "role", "pid", "name", "cursor", "lag", "drops", "count"
    );
    for c in clients {
        println!(
            "  {:>5}  {:<10} {:>8}  {:<16} {:>12} {:>8} {:>8} {:>12}",
            c["entry"].to_string(),
            c["role"].as_str().unwrap_or(""),
            c["pid"].to_string(),
            c["name"].as_str().unwrap_or(""),
            c["cursor"].to_string(),
            c["lag"].to_string(),
            c["drops"].to_string(),
            c["count"].to_string()
        );
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gos-bus: {e}");
            ExitCode::FAILURE
        }
    }
}
