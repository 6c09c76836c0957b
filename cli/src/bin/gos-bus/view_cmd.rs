//! `monitor`, `inspect` and `ls`.

use gos_bus::tools::{inspect, monitor, snapshot};
use gos_bus_protocol::{Error, Result, Segment};
use std::time::Duration;

/// `gos-bus monitor`.
pub fn monitor(bus: &str, once: bool, json: bool, refresh_ms: u64) -> Result<()> {
    gos_bus_protocol::name::check_bus(bus)?;
    if once {
        let first = snapshot::take(bus);
        std::thread::sleep(Duration::from_millis(refresh_ms.clamp(10, 2000)));
        let mut snap = snapshot::take(bus);
        snapshot::rates(&first, &mut snap);
        if json {
            println!("{}", serde_json::to_string_pretty(&snap).expect("json"));
        } else {
            print_table(&snap);
        }
        return Ok(());
    }
    monitor::run(bus, Duration::from_millis(refresh_ms.clamp(50, 10_000))).map_err(|e| Error::Os {
        op: "drive the terminal for",
        path: "the monitor".into(),
        source: e,
    })
}

/// Prints a snapshot as a table (`ls`, `monitor --once`).
pub fn print_table(snap: &snapshot::BusSnapshot) {
    match &snap.broker {
        Some(b) => println!(
            "bus '{}': broker {} (pid {}), reaped {}, skipped {}, redelivered {}",
            snap.bus, b.status, b.pid, b.clients_reaped, b.claims_skipped, b.jobs_redelivered
        ),
        None => println!("bus '{}': no broker", snap.bus),
    }
    if let Some(e) = &snap.registry_error {
        println!("registry: {e}");
    }
    if snap.rings.is_empty() {
        println!(
            "no rings (start the broker with `gos-bus serve --bus {}`)",
            snap.bus
        );
        return;
    }
    println!(
        "{:<16} {:<10} {:<9} {:<12} {:>6} {:>9} {:>10} {:>8} {:>9} {:>5}",
        "ring", "mode", "policy", "layout", "slots", "fill", "published", "skipped", "msg/s", "cli"
    );
    for r in &snap.rings {
        if let Some(e) = &r.error {
            println!("{:<16} error: {e}", r.name);
            continue;
        }
        println!(
            "{:<16} {:<10} {:<9} {:<12} {:>6} {:>9} {:>10} {:>8} {:>9.0} {:>5}",
            r.name,
            r.mode,
            r.policy,
            r.layout,
            r.slot_count,
            format!("{}/{}", r.fill, r.slot_count),
            r.published,
            r.skipped,
            r.rate_msgs,
            r.clients.len()
        );
    }
}

/// Runs `f` on each file; a file it cannot use ([`Error::Rts`]) is one line on stderr and the
/// rest go on; any other error stops. Fails at the end, counting the files that could not be
/// used (with one file, its own error is the error).
pub fn each_file(
    files: &[std::path::PathBuf],
    mut f: impl FnMut(&std::path::Path) -> Result<()>,
) -> Result<()> {
    if let [one] = files {
        return f(one);
    }
    let mut bad = 0;
    for file in files {
        match f(file) {
            Ok(()) => {}
            Err(e @ Error::Rts { .. }) => {
                eprintln!("gos-bus: {e}");
                bad += 1;
            }
            Err(e) => return Err(e),
        }
    }
    if bad > 0 {
        return Err(Error::Rts {
            path: format!("{bad} of {} files", files.len()),
            problem: "each is named above".into(),
        });
    }
    Ok(())
}

/// `gos-bus rts info`.
pub fn rts_info(file: &std::path::Path, json: bool) -> Result<()> {
    let rts = gos_rts::decode_file(file).map_err(|e| Error::Rts {
        path: file.display().to_string(),
        problem: e.to_string(),
    })?;
    let meta: serde_json::Value = serde_json::from_str(&rts.metadata).unwrap_or_default();
    let v = serde_json::json!({
        "file": file.display().to_string(),
        "grid": rts.side,
        "hilbert_order": rts.order,
        "encoding": rts.encoding,
        "rule": rts.rule.describe(),
        "data_size": rts.data.len(),
        "sha256": gos_rts::hex(&rts.sha256),
        "hash_verified": rts.hash_verified,
        "verified": rts.verified,
        "segments": rts.segments.iter().map(|s| serde_json::json!({
            "name": s.name, "start": s.start, "end": s.end, "verified": s.verified,
        })).collect::<Vec<_>>(),
        "entropy": rts.entropy,
        "has_logic": rts.has_logic,
        "has_blueprint": rts.has_blueprint,
        "texture_id": format!("{:#018x}", gos_bus_client::rts::texture_id(file)),
        "metadata": meta,
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
    } else {
        println!("{}", file.display());
        for k in [
            "grid",
            "hilbert_order",
            "encoding",
            "rule",
            "data_size",
            "sha256",
            "entropy",
            "has_logic",
            "texture_id",
        ] {
            match &v[k] {
                serde_json::Value::String(s) => println!("  {k:<14} {s}"),
                other => println!("  {k:<14} {other}"),
            }
        }
        let verified = if rts.verified.is_empty() {
            "none (the metadata states no hash)".to_string()
        } else {
            rts.verified.join(", ")
        };
        println!("  {:<14} {verified}", "verified");
        for seg in &rts.segments {
            println!(
                "  {:<14} {} [{}, {}) {} bytes{}",
                "segment",
                seg.name,
                seg.start,
                seg.end,
                seg.end - seg.start,
                if seg.verified {
                    ", SHA-256 verified"
                } else {
                    ""
                }
            );
        }
        println!("  {:<14} {}", "metadata", rts.metadata);
    }
    Ok(())
}

/// `gos-bus rts publish`.
pub fn rts_publish(bus: &str, ring: &str, files: &[std::path::PathBuf]) -> Result<()> {
    let b = gos_bus_client::Bus::attach(bus)?;
    let mut p = b.publisher::<gos_layouts::RtsTexture>(ring)?;
    each_file(files, |f| {
        let d = gos_bus_client::rts::publish_file(&mut p, f)?;
        println!(
            "published {} on '{ring}': {}x{} texture {:#018x}, {} data bytes, sha256 {}",
            f.display(),
            d.width,
            d.height,
            d.texture_id,
            d.data_size,
            gos_rts::hex(&d.sha256)
        );
        Ok(())
    })
}

/// `gos-bus inspect`.
pub fn inspect(bus: &str, ring: &str, last: usize, json: bool) -> Result<()> {
    let seg = Segment::open_read_only(bus, ring)?;
    let info = snapshot::ring_info(bus, ring, gos_bus_protocol::proc::now_ns());
    let records = inspect::last_records(&seg, last);
    if json {
        let v = serde_json::json!({ "ring": info, "records": records });
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        return Ok(());
    }
    println!(
        "{} ({}, {}, layout {}, {} slots of {} B), {} published, fill {}/{}",
        info.name,
        info.mode,
        info.policy,
        info.layout,
        info.slot_count,
        info.slot_size,
        info.published,
        info.fill,
        info.slot_count
    );
    for c in &info.clients {
        println!(
            "  {:<10} pid {:<7} {:<16} {} lag {} drops {} count {}",
            c.role,
            c.pid,
            c.name,
            if c.alive { "alive" } else { "DEAD" },
            c.lag,
            c.drops,
            c.count
        );
    }
    if records.is_empty() {
        println!("no committed records to show");
    }
    for d in records {
        println!("#{} ({} bytes)", d.seq, d.len);
        for (k, v) in d.fields.iter() {
            println!("  {k:<20} {v}");
        }
        if !d.tail_hex.is_empty() {
            println!("  {:<20} {}", "(then)", d.tail_hex);
        }
    }
    Ok(())
}
