//! A read-only snapshot of a bus: its broker and every ring with its clients and counters.
//! Taking one never changes the bus (rings are mapped read-only) and never fails as a whole: a
//! segment that cannot be read becomes an error line naming it.

use gos_bus_protocol::registry;
use gos_bus_protocol::ring::entry;
use gos_bus_protocol::{name, proc, Segment};
use gos_bus_protocol::{Mode, Policy};
use gos_layouts::registry::REGISTRY_RUNNING;
use gos_layouts::segment::*;
use serde::Serialize;
use std::sync::atomic::Ordering::*;

/// The broker, as the registry describes it.
#[derive(Debug, Clone, Serialize)]
pub struct BrokerInfo {
    /// Pid (0 when stopped).
    pub pid: u32,
    /// "running", "stopped" or "dead" (registry says running, process is gone).
    pub status: &'static str,
    /// Milliseconds since its last heartbeat.
    pub heartbeat_age_ms: u64,
    /// Liveness timeout, milliseconds.
    pub liveness_ms: u32,
    /// Clients reaped.
    pub clients_reaped: u64,
    /// Abandoned claims committed as skipped.
    pub claims_skipped: u64,
    /// Jobs offered again.
    pub jobs_redelivered: u64,
}

/// One attached client.
#[derive(Debug, Clone, Serialize)]
pub struct ClientInfo {
    /// Entry index.
    pub entry: usize,
    /// publisher, subscriber or worker.
    pub role: &'static str,
    /// Process id.
    pub pid: u32,
    /// Executable name.
    pub name: String,
    /// Whether the process is alive.
    pub alive: bool,
    /// Milliseconds since its last heartbeat.
    pub heartbeat_age_ms: u64,
    /// Subscriber: messages published but not yet read by it.
    pub lag: u64,
    /// Subscriber: messages lost to overwrite-oldest.
    pub drops: u64,
    /// Messages published or received.
    pub count: u64,
    /// Bytes published or received.
    pub bytes: u64,
    /// Messages whose handling failed (reported by daemons).
    pub failed: u64,
    /// Mean handling time per message in microseconds (reported by daemons; 0 if none).
    pub handle_us: f64,
    /// Mean GPU time per message in microseconds (reported by the render node; 0 if none).
    pub gpu_us: f64,
    /// Seconds the client's process has been running (0 when unknown: gone, or in another
    /// PID namespace); a daemon's `uptime`.
    pub uptime_s: f64,
    /// Messages per second since the previous snapshot.
    pub rate_msgs: f64,
    /// Bytes per second since the previous snapshot.
    pub rate_bytes: f64,
}

/// One ring.
#[derive(Debug, Clone, Serialize)]
pub struct RingInfo {
    /// Ring name.
    pub name: String,
    /// Why the ring could not be read (then the other fields are empty).
    pub error: Option<String>,
    /// "broadcast" or "work-queue".
    pub mode: &'static str,
    /// "block" or "overwrite".
    pub policy: &'static str,
    /// Layout name.
    pub layout: String,
    /// Slots.
    pub slot_count: u32,
    /// Slot size.
    pub slot_size: u32,
    /// Messages published so far (`head` less the skipped sequences).
    pub published: u64,
    /// Sequences committed as skipped (abandoned loans, failed publishes, reclaimed claims).
    pub skipped: u64,
    /// Occupied slots: broadcast, published but not read by the slowest subscriber; work
    /// queue, published but not taken.
    pub fill: u64,
    /// Payload bytes published by the attached publishers.
    pub bytes_published: u64,
    /// Messages per second since the previous snapshot.
    pub rate_msgs: f64,
    /// Bytes per second since the previous snapshot.
    pub rate_bytes: f64,
    /// Attached clients.
    pub clients: Vec<ClientInfo>,
}

/// A whole bus.
#[derive(Debug, Clone, Serialize)]
pub struct BusSnapshot {
    /// Bus name.
    pub bus: String,
    /// When it was taken, ns since the epoch.
    pub taken_ns: u64,
    /// The broker, if a registry exists.
    pub broker: Option<BrokerInfo>,
    /// Why the registry could not be read, if it exists but is damaged.
    pub registry_error: Option<String>,
    /// The rings, sorted by name.
    pub rings: Vec<RingInfo>,
}

fn text(words: &[std::sync::atomic::AtomicU64]) -> String {
    let mut b = Vec::new();
    for w in words {
        b.extend_from_slice(&w.load(Relaxed).to_le_bytes());
    }
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn per_message_us(
    total_ns: &std::sync::atomic::AtomicU64,
    count: &std::sync::atomic::AtomicU64,
) -> f64 {
    match count.load(Relaxed) {
        0 => 0.0,
        n => total_ns.load(Relaxed) as f64 / n as f64 / 1e3,
    }
}

fn ms_since(now: u64, then: u64) -> u64 {
    now.saturating_sub(then) / 1_000_000
}

/// Reads ring `ring` of `bus` (read-only).
pub fn ring_info(bus: &str, ring: &str, now: u64) -> RingInfo {
    let mut info = RingInfo {
        name: ring.into(),
        error: None,
        mode: "",
        policy: "",
        layout: String::new(),
        slot_count: 0,
        slot_size: 0,
        published: 0,
        skipped: 0,
        fill: 0,
        bytes_published: 0,
        rate_msgs: 0.0,
        rate_bytes: 0.0,
        clients: Vec::new(),
    };
    let seg = match Segment::open_read_only(bus, ring) {
        Ok(s) => s,
        Err(e) => {
            info.error = Some(e.to_string());
            return info;
        }
    };
    let g = seg.geometry();
    let r = seg.ring();
    info.mode = match g.mode {
        Mode::Broadcast => "broadcast",
        Mode::WorkQueue => "work-queue",
    };
    info.policy = match g.policy {
        Policy::Block => "block",
        Policy::OverwriteOldest => "overwrite",
    };
    info.layout = g.layout_name.clone();
    info.slot_count = g.slot_count;
    info.slot_size = g.slot_size;
    let head = r.ctl.head().load(Acquire);
    info.skipped = r.ctl.skipped().load(Relaxed);
    info.published = head.saturating_sub(info.skipped);
    let mut min_cursor = head;
    for i in 0..r.clients.len() {
        let e = r.clients.get(i);
        if !entry::is_active(e) {
            continue;
        }
        let role = e.role().load(Relaxed);
        let pid = e.pid().load(Relaxed);
        let cursor = e.cursor().load(Relaxed) & !CURSOR_HOLD;
        let lag = if role == ROLE_SUBSCRIBER {
            min_cursor = min_cursor.min(cursor);
            head.saturating_sub(cursor)
        } else {
            0
        };
        let bytes = e.bytes().load(Relaxed);
        if role == ROLE_PUBLISHER {
            info.bytes_published += bytes;
        }
        let start_time = e.start_time().load(Relaxed);
        let alive = proc::alive(pid, start_time);
        info.clients.push(ClientInfo {
            entry: i,
            role: match role {
                ROLE_PUBLISHER => "publisher",
                ROLE_SUBSCRIBER => "subscriber",
                ROLE_WORKER => "worker",
                _ => "unknown",
            },
            pid,
            name: text(e.name()),
            alive,
            heartbeat_age_ms: ms_since(now, e.heartbeat_ns().load(Relaxed)),
            lag,
            drops: e.drops().load(Relaxed),
            count: e.count().load(Relaxed),
            bytes,
            failed: e.failed().load(Relaxed),
            handle_us: per_message_us(e.work_ns(), e.count()),
            gpu_us: per_message_us(e.gpu_ns(), e.count()),
            uptime_s: if alive {
                proc::uptime_secs(start_time).unwrap_or(0.0)
            } else {
                0.0
            },
            rate_msgs: 0.0,
            rate_bytes: 0.0,
        });
    }
    info.fill = match g.mode {
        Mode::Broadcast => head.saturating_sub(min_cursor),
        Mode::WorkQueue => head.saturating_sub(r.ctl.tail().load(Acquire)),
    }
    .min(g.slot_count as u64);
    info
}

/// Takes a snapshot of `bus`.
pub fn take(bus: &str) -> BusSnapshot {
    let now = proc::now_ns();
    let mut snap = BusSnapshot {
        bus: bus.into(),
        taken_ns: now,
        broker: None,
        registry_error: None,
        rings: Vec::new(),
    };
    let mut names: Vec<String> = name::list_rings(bus).unwrap_or_default();
    match registry::open(bus) {
        Ok(reg) => {
            let h = reg.header;
            // The broker lock, not the pid, says whether a broker runs (a pid can be reused).
            let alive = matches!(
                gos_bus_protocol::lock::BrokerLock::is_held(bus),
                Ok(Some(_))
            );
            snap.broker = Some(BrokerInfo {
                pid: h.broker_pid,
                status: match (h.state == REGISTRY_RUNNING, alive) {
                    (true, true) => "running",
                    (true, false) => "dead",
                    _ => "stopped",
                },
                heartbeat_age_ms: ms_since(now, h.heartbeat_ns as u64),
                liveness_ms: h.liveness_ms,
                clients_reaped: h.clients_reaped,
                claims_skipped: h.claims_skipped,
                jobs_redelivered: h.jobs_redelivered,
            });
            for r in reg.rings {
                if !names.contains(&r.name) {
                    names.push(r.name);
                }
            }
        }
        Err(gos_bus_protocol::Error::BusNotRunning { .. }) => {}
        Err(e) => snap.registry_error = Some(e.to_string()),
    }
    names.sort();
    snap.rings = names.iter().map(|r| ring_info(bus, r, now)).collect();
    snap
}

/// Fills the rates of `now` from the counters of `prev`.
pub fn rates(prev: &BusSnapshot, now: &mut BusSnapshot) {
    let dt = now.taken_ns.saturating_sub(prev.taken_ns) as f64 / 1e9;
    if dt <= 0.0 {
        return;
    }
    for r in &mut now.rings {
        if let Some(p) = prev.rings.iter().find(|p| p.name == r.name) {
            r.rate_msgs = r.published.saturating_sub(p.published) as f64 / dt;
            r.rate_bytes = r.bytes_published.saturating_sub(p.bytes_published) as f64 / dt;
            for c in &mut r.clients {
                // The same client: same entry, same process.
                if let Some(pc) = p
                    .clients
                    .iter()
                    .find(|pc| pc.entry == c.entry && pc.pid == c.pid)
                {
                    c.rate_msgs = c.count.saturating_sub(pc.count) as f64 / dt;
                    c.rate_bytes = c.bytes.saturating_sub(pc.bytes) as f64 / dt;
                }
            }
        }
    }
}
