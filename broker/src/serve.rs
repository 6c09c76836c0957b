//! `gos-bus serve`: create or adopt the rings of a manifest, publish the registry, supervise.

use crate::manifest::Manifest;
use crate::reaper::RingWatch;
use gos_bus_protocol::lock::BrokerLock;
use gos_bus_protocol::registry::{self, Registry};
use gos_bus_protocol::ring::entry;
use gos_bus_protocol::segment::{Geometry, Segment};
use gos_bus_protocol::RingConfig;
use gos_bus_protocol::{Error, Result};
use std::sync::atomic::{AtomicBool, Ordering::*};
use std::time::Duration;

/// How `serve` runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Bus name.
    pub bus: String,
    /// The rings to create or adopt.
    pub manifest: Manifest,
    /// A client whose process is gone is reaped at the next scan; one whose heartbeat is older
    /// than this is reaped too, and orphaned claims older than this are reclaimed.
    pub liveness: Duration,
    /// Time between two supervision scans.
    pub scan_every: Duration,
    /// Remove the rings and the registry on a clean stop (otherwise they stay for the next
    /// broker, which adopts them).
    pub remove_on_exit: bool,
}

/// What a broker run did, printed when it stops.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Rings created.
    pub created: Vec<String>,
    /// Rings adopted from an earlier broker.
    pub adopted: Vec<String>,
    /// Clients reaped.
    pub reaped: u64,
    /// Abandoned claims committed as skipped.
    pub skipped: u64,
    /// Jobs offered again.
    pub redelivered: u64,
}

fn describe(
    mode: gos_bus_protocol::Mode,
    policy: gos_bus_protocol::Policy,
    layout: &str,
    slots: u32,
    size: u32,
    single: bool,
) -> String {
    format!(
        "{mode:?}/{policy:?}, layout {layout}, {slots} slots of {size} bytes{}",
        if single { ", single producer" } else { "" }
    )
}

fn adopt(bus: &str, ring: &str, cfg: &RingConfig) -> Result<Segment> {
    let seg = Segment::open(bus, ring)?;
    let g = seg.geometry();
    let found = describe(
        g.mode,
        g.policy,
        &g.layout_name,
        g.slot_count,
        g.slot_size,
        g.single_producer,
    );
    let wanted = describe(
        cfg.mode,
        cfg.policy,
        cfg.layout.name,
        cfg.slot_count,
        cfg.slot_size,
        cfg.single_producer,
    );
    if g.layout_fingerprint != cfg.layout.fingerprint || found != wanted {
        return Err(Error::AdoptMismatch {
            bus: bus.into(),
            ring: ring.into(),
            found,
            wanted,
        });
    }
    Ok(seg)
}

/// The layouts document the registry carries, as JSON (`{"records", "segment", "elements", "constants"}`)
/// (see `gos-bus layouts --json`), so that a client in any language builds its views from the
/// bus itself.
pub fn schemas_json() -> String {
    serde_json::to_string(&gos_layouts::document()).expect("the layouts document serialises")
}

/// Runs the broker until `stop` is set. `log` receives one line per event.
pub fn serve(opts: &ServeOptions, stop: &AtomicBool, mut log: impl FnMut(&str)) -> Result<Summary> {
    let bus = opts.bus.as_str();
    let mut summary = Summary::default();
    // One broker per bus: the kernel's lock, held until we return (or die), decides. Whoever
    // holds it owns every object of the bus, so a registry found now was left by a broker
    // that is gone (or is damaged): it stays in place until ours replaces it, so that clients
    // attaching meanwhile still find the bus.
    let lock = BrokerLock::acquire(bus)?;
    let stale = match registry::open(bus) {
        Ok(_) | Err(Error::Corrupt { .. }) => true,
        Err(Error::BusNotRunning { .. }) => false,
        Err(e) => return Err(e),
    };
    let mut watches = Vec::new();
    let mut listed: Vec<(String, Geometry)> = Vec::new();
    // A start that fails half way (no room for the next ring, a ring left with another
    // layout) removes the rings it created itself, and leaves adopted ones as they were.
    let undo = |created: &[String], e: Error| {
        for name in created {
            let _ = Segment::unlink(bus, name);
        }
        e
    };
    for (name, cfg) in &opts.manifest.rings {
        let seg = match Segment::create(bus, name, cfg) {
            Ok(seg) => {
                summary.created.push(name.clone());
                seg
            }
            Err(Error::AlreadyExists { .. }) => match adopt(bus, name, cfg) {
                Ok(seg) => {
                    summary.adopted.push(name.clone());
                    seg
                }
                Err(e) => return Err(undo(&summary.created, e)),
            },
            Err(e) => return Err(undo(&summary.created, e)),
        };
        seg.ring()
            .ctl
            .broker_pid()
            .store(std::process::id(), Relaxed);
        listed.push((name.clone(), seg.geometry().clone()));
        watches.push(RingWatch::new(seg));
    }
    let liveness_ms = opts.liveness.as_millis().min(u32::MAX as u128) as u32;
    let registry = Registry::publish(bus, &listed, liveness_ms, &schemas_json(), stale)
        .map_err(|e| undo(&summary.created, e))?;
    if stale {
        log("replaced the registry of a broker that is no longer running");
    }
    log(&format!(
        "serving bus '{bus}' from {}: {} rings created, {} adopted; registry {}",
        opts.manifest.origin,
        summary.created.len(),
        summary.adopted.len(),
        registry.path()
    ));
    while !stop.load(Relaxed) {
        registry.beat();
        for w in &mut watches {
            w.seg
                .ring()
                .ctl
                .broker_heartbeat_ns()
                .store(gos_bus_protocol::proc::now_ns(), Relaxed);
            let r = w.scan(opts.liveness);
            for e in &r.events {
                log(e);
            }
            registry.count(r.clients, r.skipped, r.redelivered);
            summary.reaped += r.clients;
            summary.skipped += r.skipped;
            summary.redelivered += r.redelivered;
        }
        std::thread::sleep(opts.scan_every);
    }
    for w in &watches {
        w.seg.ring().ctl.broker_pid().store(0, Relaxed);
    }
    registry.stop();
    if opts.remove_on_exit {
        for (name, _) in &opts.manifest.rings {
            let _ = Segment::unlink(bus, name);
        }
        let _ = registry::unlink(bus);
        // Still held: removing it now is safe (see `gos_bus_protocol::lock`).
        let _ = lock.remove();
        log("removed the rings and the registry (--remove-on-exit)");
    } else {
        log("stopped; the rings stay for the next `gos-bus serve`, which adopts them");
    }
    Ok(summary)
}

/// `gos-bus clean`: removes the registry and every ring of `bus`, refusing while a broker
/// holds its lock, and (unless `force`) while live clients are attached. Returns the removed paths.
pub fn clean(bus: &str, force: bool) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    // Held while removing, so no broker starts on the bus half-way; fails (naming the pid)
    // while a broker runs.
    let lock = BrokerLock::try_lock(bus)?;
    let rings = gos_bus_protocol::name::list_rings(bus)?;
    if !force {
        for ring in &rings {
            if let Ok(seg) = Segment::open_read_only(bus, ring) {
                let r = seg.ring();
                for i in 0..r.clients.len() {
                    let e = r.clients.get(i);
                    let pid = e.pid().load(Relaxed);
                    if entry::state(entry::observe(&r, i)) != gos_layouts::segment::CLIENT_FREE
                        && gos_bus_protocol::proc::alive(pid, e.start_time().load(Relaxed))
                    {
                        return Err(Error::InvalidConfig(format!(
                            "ring '{ring}' of bus '{bus}' still has a live client (pid {pid}); stop it, or pass --force"
                        )));
                    }
                }
            }
        }
    }
    for ring in rings {
        Segment::unlink(bus, &ring)?;
        removed.push(gos_bus_protocol::name::object_path(
            &gos_bus_protocol::name::ring_object(bus, &ring)?,
        ));
    }
    if registry::unlink(bus).is_ok() {
        removed.push(gos_bus_protocol::name::object_path(&registry::object(bus)?));
    }
    removed.push(lock.remove()?);
    Ok(removed)
}
