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
        ["RtsTexture", "DnaJob", "DnaResult", "RenderFrame", "Bytes"]
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
    use gos_bus::ring::broadcast;
    use gos_layouts::{Record, RenderFrame};
    let bus = format!("mon{}", std::process::id());
    let cfg = gos_bus::RingConfig {
        slot_count: 4,
        slot_size: 256,
        layout: RenderFrame::SCHEMA,
        ..Default::default()
    };
    let seg = gos_bus::Segment::create(&bus, "render.frames", &cfg).unwrap();
    // Publish one frame with the protocol functions (the typed client is another crate).
    let r = seg.ring();
    let mut cache = broadcast::ProducerCache::default();
    let s = broadcast::try_claim_block(&r, &mut cache, false).unwrap();
    let frame = RenderFrame {
        magic: *b"GFRM",
        version: 1,
        width: 1920,
        height: 1080,
        ..bytemuck::Zeroable::zeroed()
    };
    // SAFETY: the claimed slot's payload holds slot_size (256) >= 128 bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(bytemuck::bytes_of(&frame).as_ptr(), seg.payload_ptr(s), 128)
    };
    broadcast::commit(&r, s, 128, false);

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
    gos_bus::Segment::unlink(&bus, "render.frames").unwrap();
}
