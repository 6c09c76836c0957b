//! The `gos-bus` command, run as a user would.

use std::process::{Command, Output};

const GOS_BUS: &str = env!("CARGO_BIN_EXE_gos-bus");

fn run(args: &[&str]) -> Output {
    Command::new(GOS_BUS)
        .args(args)
        .output()
        .expect("run gos-bus")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn layouts_json_describes_every_record() {
    let o = run(&["layouts", "--json"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let names: Vec<&str> = v["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "RtsTexture",
            "DnaJob",
            "DnaResult",
            "RenderFrame",
            "BrickPlacement",
            "Bytes"
        ]
    );
    let frame = &v["records"][3];
    assert_eq!(frame["magic"], "GFRM");
    assert_eq!(frame["endian"], "little");
    let width = frame["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "width")
        .unwrap();
    assert_eq!(width["offset"], 40);
    assert_eq!(width["type"], "u32");
    assert_eq!(v["segment"][0]["name"], "RingHeader");
    // The table form names the same offsets.
    let table = stdout(&run(&["layouts"]));
    assert!(table.contains("RenderFrame (magic \"GFRM\""), "{table}");
}

#[test]
fn create_ls_info_rm_round_trip() {
    let bus = format!("cli{}", std::process::id());
    let o = run(&[
        "create",
        "dna.jobs",
        "--bus",
        &bus,
        "--mode",
        "work-queue",
        "--layout",
        "DnaJob",
        "--slots",
        "16",
        "--slot-size",
        "64KiB",
        "--permissions",
        "0640",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("16 slots of 65536 bytes, layout DnaJob"));

    let ls = stdout(&run(&["ls", "--bus", &bus]));
    assert!(ls.contains("dna.jobs") && ls.contains("work-queue"), "{ls}");

    let o = run(&["info", "dna.jobs", "--bus", &bus, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["slot_count"], 16);
    assert_eq!(v["layout"], "DnaJob");
    assert_eq!(v["permissions"], "640");

    let again = run(&["create", "dna.jobs", "--bus", &bus]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );

    assert!(run(&["rm", "dna.jobs", "--bus", &bus]).status.success());
    let gone = run(&["info", "dna.jobs", "--bus", &bus]);
    assert!(!gone.status.success());
    let msg = stderr(&gone);
    assert_eq!(msg.lines().count(), 1, "one clear line: {msg}");
    assert!(
        msg.contains("does not exist") && msg.contains("gos-bus create dna.jobs"),
        "{msg}"
    );
}

#[test]
fn bad_arguments_get_one_clear_line() {
    let o = run(&["create", "x", "--slots", "3"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("power of two"), "{e}");
    let o = run(&["create", "x", "--layout", "Nope"]);
    assert!(
        stderr(&o).contains("unknown layout \"Nope\"; known: RtsTexture"),
        "{}",
        stderr(&o)
    );
    let o = run(&["create", "x", "--slot-size", "12XB"]);
    assert!(stderr(&o).contains("unknown size unit"), "{}", stderr(&o));
    let o = run(&["create", "../x"]);
    assert!(stderr(&o).contains("invalid ring name"), "{}", stderr(&o));
}

#[test]
fn monitor_once_json_and_inspect_read_a_live_ring() {
    use gos_bus_protocol::ring::broadcast;
    use gos_layouts::{Record, RenderFrame};
    let bus = format!("mon{}", std::process::id());
    let cfg = gos_bus_protocol::RingConfig {
        slot_count: 4,
        slot_size: 256,
        layout: RenderFrame::SCHEMA,
        ..Default::default()
    };
    let seg = gos_bus_protocol::Segment::create(&bus, "render.frames", &cfg).unwrap();
    // Publish one frame with the protocol functions (the typed client is another crate).
    let r = seg.ring();
    let mut cache = broadcast::ProducerCache::default();
    let s = broadcast::try_claim_block(&r, &mut cache, false).unwrap();
    let frame = RenderFrame {
        magic: *b"GFRM",
        version: RenderFrame::VERSION,
        width: 1920,
        height: 1080,
        ..bytemuck::Zeroable::zeroed()
    };
    // SAFETY: the claimed slot's payload holds slot_size (256) >= a RenderFrame's 192 bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(
            bytemuck::bytes_of(&frame).as_ptr(),
            seg.payload_ptr(s),
            size_of::<RenderFrame>(),
        )
    };
    broadcast::commit(&r, s, size_of::<RenderFrame>() as u32, false);

    let o = run(&[
        "monitor",
        "--bus",
        &bus,
        "--once",
        "--json",
        "--refresh-ms",
        "50",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["bus"], bus.as_str());
    assert_eq!(v["rings"][0]["name"], "render.frames");
    assert_eq!(v["rings"][0]["published"], 1);
    assert_eq!(v["rings"][0]["layout"], "RenderFrame");

    let o = run(&["inspect", "render.frames", "--bus", &bus, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["records"][0]["fields"]["width"], 1920);
    assert_eq!(v["records"][0]["fields"]["magic"], "GFRM");
    let text = stdout(&run(&["inspect", "render.frames", "--bus", &bus]));
    assert!(text.contains("height") && text.contains("1080"), "{text}");
    gos_bus_protocol::Segment::unlink(&bus, "render.frames").unwrap();
}

fn fixtures() -> std::path::PathBuf {
    gos_rts::samples_dir()
}

#[test]
fn rts_info_reports_grid_size_and_sha256() {
    let file = fixtures().join("blob-300001.rts.png");
    let o = run(&["rts", "info", file.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["grid"], 512);
    assert_eq!(v["data_size"], 300001);
    assert_eq!(
        v["sha256"],
        "f94c723c28a244e1a9a7939623841f31095578b73fad694857d2265e53302012"
    );
    assert_eq!(v["metadata"]["format"], "PixelRTS-2.0");
    let bad = run(&["rts", "info", "Cargo.toml"]);
    assert!(!bad.status.success());
    let e = stderr(&bad);
    assert!(
        e.contains("cannot use Cargo.toml as a PixelRTS texture: not a valid PNG"),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1);
}

#[test]
fn rts_info_goes_on_past_a_file_it_cannot_use() {
    let good = fixtures().join("blob-1000.rts.png");
    let good = good.to_str().unwrap();
    let o = run(&["rts", "info", good, "Cargo.toml", good]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o).matches("  rule ").count(),
        2,
        "both good files shown"
    );
    let e = stderr(&o);
    assert!(
        e.contains("cannot use Cargo.toml as a PixelRTS texture"),
        "{e}"
    );
    assert!(e.contains("cannot use 1 of 3 files"), "{e}");
}

/// An `rts.textures` ring of 4 slots of 2 MiB on `bus`.
fn rts_ring(bus: &gos_bus_client::Bus) -> gos_bus_client::Ring {
    use gos_layouts::Record;
    bus.create_ring(
        "rts.textures",
        &gos_bus_client::RingConfig {
            slot_count: 4,
            slot_size: 2 << 20,
            layout: gos_bus_client::RtsTexture::SCHEMA,
            ..Default::default()
        },
    )
    .unwrap()
}

#[test]
fn rts_publish_puts_pixels_and_metadata_in_the_slot() {
    use gos_bus_client::{Bus, RtsTexture};
    let bus = Bus::standalone(&format!("rts{}", std::process::id())).unwrap();
    let ring = rts_ring(&bus);
    let sub = ring.subscriber::<RtsTexture>().unwrap();
    let mut p = ring.publisher::<RtsTexture>().unwrap();
    for name in ["blob-1.rts.png", "blob-65536.rts.png"] {
        let path = fixtures().join(name);
        let sent = gos_bus_client::rts::publish_file(&mut p, &path).unwrap();
        let file = gos_rts::decode_file(&path).unwrap();
        let m = sub.try_recv().unwrap().expect("published");
        let h = m.header();
        assert_eq!(*h, sent);
        assert_eq!(h.sha256, file.sha256);
        assert_eq!((h.width, h.data_size), (file.side, file.data.len() as u64));
        let px = &m.tail()[..h.pixel_bytes as usize];
        assert_eq!(px, &file.pixels[..], "the pixels, in the slot");
        let meta = &m.tail()[h.pixel_bytes as usize..][..h.metadata_len as usize];
        assert_eq!(meta, file.metadata.as_bytes());
    }
    drop((sub, p));
    bus.remove_ring("rts.textures").unwrap();
}

/// `gos-bus layouts | head -0`: a reader that closed the pipe ends the output quietly (the
/// default SIGPIPE), never with a panic about a broken pipe.
#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gos-bus"))
        .args(["layouts", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // closed before the child writes
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        out.status.success() || out.status.signal() == Some(13),
        "{:?}: {err}",
        out.status
    );
}

/// A publish that fails after its loan (a corrupt file) leaves a skipped sequence: `ls`, the
/// snapshot and `info` count it as skipped, not as published; `info` gives a publisher no
/// cursor or lag, which only subscribers have.
#[test]
fn a_failed_publish_is_counted_as_skipped_and_a_publisher_has_no_cursor() {
    use gos_bus_client::{Bus, RtsTexture};
    let name = format!("skip{}", std::process::id());
    let bus = Bus::standalone(&name).unwrap();
    let ring = rts_ring(&bus);
    let sub = ring.subscriber::<RtsTexture>().unwrap();
    let mut p = ring.publisher::<RtsTexture>().unwrap();
    gos_bus_client::rts::publish_file(&mut p, &fixtures().join("blob-1.rts.png")).unwrap();
    let bad = std::env::temp_dir().join(format!("{name}.rts.png"));
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\n not really").unwrap();
    assert!(gos_bus_client::rts::publish_file(&mut p, &bad).is_err());
    std::fs::remove_file(&bad).unwrap();

    let snap = gos_bus::tools::snapshot::take(&name);
    let r = snap
        .rings
        .iter()
        .find(|r| r.name == "rts.textures")
        .unwrap();
    assert_eq!((r.published, r.skipped), (1, 1), "{r:?}");
    let ls = stdout(&run(&["ls", "--bus", &name]));
    assert!(ls.contains("skipped"), "{ls}");

    let o = run(&["info", "rts.textures", "--bus", &name, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        (v["published"].as_u64(), v["skipped"].as_u64()),
        (Some(1), Some(1))
    );
    let clients = v["clients"].as_array().unwrap();
    let of = |role: &str| clients.iter().find(|c| c["role"] == role).unwrap().clone();
    assert!(of("publisher")["cursor"].is_null() && of("publisher")["lag"].is_null());
    assert_eq!(
        of("subscriber")["lag"].as_u64(),
        Some(2),
        "two sequences unread"
    );
    let text = stdout(&run(&["info", "rts.textures", "--bus", &name]));
    assert!(text.contains("publisher  active"), "{text}");
    drop((sub, p));
    bus.remove_ring("rts.textures").unwrap();
}
