//! The bus registry: one shared-memory object per bus (`/gos.BUS`) that the broker writes and
//! everyone else reads: which rings exist, their layouts (and the schemas as JSON, for any
//! language), the broker's pid, start time and heartbeat, and its reclaim counters.
//!
//! Readers copy the whole object with atomic loads and validate the copy before using it, so a
//! registry overwritten by a buggy or hostile process is an error naming it, never a panic.
//!
//! The format lives here, with the protocol, because every client reads it ([`open`]) and the
//! broker writes it ([`Registry`]); the schemas JSON it carries is made by the broker.

use crate::error::{Corrupt, Error, Result};
use crate::segment::Geometry;
use crate::{name, proc, shm, Mode, Policy};
use gos_layouts::registry::*;
use gos_layouts::{RegistryHeader, RegistryRing};
use std::mem::{offset_of, size_of};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};

/// The shared-memory object name of the registry of `bus`.
pub fn object(bus: &str) -> Result<String> {
    name::check_bus(bus)?;
    Ok(format!("/{}{bus}", name::SHM_PREFIX))
}

fn field<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [0u8; N];
    let n = s.len().min(N);
    out[..n].copy_from_slice(&s.as_bytes()[..n]);
    out
}

fn text(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// The registry as the broker holds it (read-write).
pub struct Registry {
    map: memmap2::MmapRaw,
    path: String,
}

/// One ring as listed by the registry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RingInfo {
    /// Ring name.
    pub name: String,
    /// Layout name.
    pub layout: String,
    /// Layout fingerprint.
    pub layout_fingerprint: u64,
    /// Broadcast or work queue.
    #[serde(serialize_with = "debug_str")]
    pub mode: Mode,
    /// Producer policy.
    #[serde(serialize_with = "debug_str")]
    pub policy: Policy,
    /// Number of slots.
    pub slot_count: u32,
    /// Slot size.
    pub slot_size: u32,
    /// One publisher at a time.
    pub single_producer: bool,
}

fn debug_str<S: serde::Serializer, T: std::fmt::Debug>(
    v: &T,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{v:?}"))
}

/// A validated copy of a registry.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The header as read.
    pub header: RegistryHeader,
    /// The rings.
    pub rings: Vec<RingInfo>,
    /// The layout schemas, JSON.
    pub schemas_json: String,
    /// Where it was read from.
    pub path: String,
}

fn total_size(schemas_len: usize) -> usize {
    REGISTRY_RINGS_OFFSET + REGISTRY_MAX_RINGS * size_of::<RegistryRing>() + schemas_len
}

impl Registry {
    /// Publishes the registry of `bus` listing `rings` and carrying `schemas_json` (the
    /// layouts document as JSON, for clients in any language).
    ///
    /// The registry is written whole under a temporary name (`/gos.BUS~PID`, which no bus or
    /// ring name can take) and only then put in place, so no reader ever sees a half-built
    /// one: with `over_stale` false by `link(2)`, which fails if a registry exists
    /// ([`Error::BrokerRunning`], naming the pid it lists); with `over_stale` true (the caller
    /// found one a broker that is gone left, or a damaged one) by `rename(2)` over it, so a
    /// client attaching while a broker restarts finds the old registry or the new one, never
    /// none. Both are atomic in `/dev/shm`.
    pub fn publish(
        bus: &str,
        rings: &[(String, Geometry)],
        liveness_ms: u32,
        schemas_json: &str,
        over_stale: bool,
    ) -> Result<Registry> {
        let object = object(bus)?;
        let path = name::object_path(&object);
        let temp = format!("{object}~{}", std::process::id());
        let temp_path = name::object_path(&temp);
        // A temporary name left by an earlier broker with our pid (it died mid-way).
        let _ = std::fs::remove_file(&temp_path);
        let reg = Registry::write(bus, &temp, path.clone(), rings, liveness_ms, schemas_json)?;
        let placed = if over_stale {
            std::fs::rename(&temp_path, &path)
        } else {
            std::fs::hard_link(&temp_path, &path)
        };
        let _ = std::fs::remove_file(&temp_path);
        match placed {
            Ok(()) => Ok(reg),
            // Another broker published first: name it.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(match open(bus) {
                Ok(snap) => Error::BrokerRunning {
                    bus: bus.into(),
                    pid: snap.header.broker_pid,
                },
                Err(e) => e,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                Err(Error::PermissionDenied { path })
            }
            Err(e) => Err(Error::Os {
                op: "publish the registry",
                path,
                source: e,
            }),
        }
    }

    /// Creates `object` (exclusively) and fills it; `path` is where it will be found.
    fn write(
        bus: &str,
        object: &str,
        path: String,
        rings: &[(String, Geometry)],
        liveness_ms: u32,
        schemas_json: &str,
    ) -> Result<Registry> {
        if rings.len() > REGISTRY_MAX_RINGS {
            return Err(Error::InvalidConfig(format!(
                "{} rings: a bus holds at most {REGISTRY_MAX_RINGS}",
                rings.len()
            )));
        }
        let schemas = schemas_json;
        let size = total_size(schemas.len()).next_multiple_of(4096);
        let taken = || Error::Os {
            op: "create",
            path: name::object_path(object),
            source: std::io::ErrorKind::AlreadyExists.into(),
        };
        let map = shm::create(object, size as u64, 0o644, taken)?;
        let me = std::process::id();
        let header = RegistryHeader {
            magic: REGISTRY_MAGIC,
            format_version: REGISTRY_FORMAT_VERSION,
            state: 0,
            ring_count: rings.len() as u32,
            broker_pid: me,
            liveness_ms,
            broker_start_time: proc::start_time(me).unwrap_or(0),
            heartbeat_ns: proc::now_ns() as i64,
            started_ns: proc::now_ns() as i64,
            schemas_offset: total_size(0) as u32,
            schemas_len: schemas.len() as u32,
            bus_name: field(bus),
            broker_pid_ns: proc::pid_namespace().unwrap_or(0),
            ..bytemuck::Zeroable::zeroed()
        };
        let base = map.as_mut_ptr();
        // SAFETY: the mapping is fresh, private to us until `state` is set, and large enough
        // for the header, the ring table and the schemas (`total_size`); Pod values are written
        // as plain bytes at offsets inside it.
        unsafe {
            base.cast::<RegistryHeader>().write(header);
            for (i, (name, g)) in rings.iter().enumerate() {
                let entry = RegistryRing {
                    name: field(name),
                    layout_name: field(&g.layout_name),
                    layout_fingerprint: g.layout_fingerprint,
                    mode: g.mode.code(),
                    policy: g.policy.code(),
                    slot_count: g.slot_count,
                    slot_size: g.slot_size,
                    flags: g.single_producer as u32,
                    reserved: 0,
                };
                base.add(REGISTRY_RINGS_OFFSET + i * size_of::<RegistryRing>())
                    .cast::<RegistryRing>()
                    .write(entry);
            }
            std::ptr::copy_nonoverlapping(schemas.as_ptr(), base.add(total_size(0)), schemas.len());
        }
        let reg = Registry { map, path };
        // Release: pairs with the Acquire load in `open`: a reader that sees RUNNING sees all.
        reg.u32_at(offset_of!(RegistryHeader, state))
            .store(REGISTRY_RUNNING, Release);
        Ok(reg)
    }

    fn u32_at(&self, offset: usize) -> &AtomicU32 {
        assert!(offset + 4 <= size_of::<RegistryHeader>() && offset.is_multiple_of(4));
        // SAFETY: inside the header (checked), aligned (page-aligned base, offset % 4 == 0);
        // the word is only accessed atomically after creation.
        unsafe { &*self.map.as_ptr().add(offset).cast::<AtomicU32>() }
    }

    fn u64_at(&self, offset: usize) -> &AtomicU64 {
        assert!(offset + 8 <= size_of::<RegistryHeader>() && offset.is_multiple_of(8));
        // SAFETY: as in `u32_at`, 8-aligned.
        unsafe { &*self.map.as_ptr().add(offset).cast::<AtomicU64>() }
    }

    /// Stamps the broker heartbeat.
    pub fn beat(&self) {
        self.u64_at(offset_of!(RegistryHeader, heartbeat_ns))
            .store(proc::now_ns(), Relaxed);
    }

    /// Adds to the reclaim counters.
    pub fn count(&self, reaped: u64, skipped: u64, redelivered: u64) {
        for (off, n) in [
            (offset_of!(RegistryHeader, clients_reaped), reaped),
            (offset_of!(RegistryHeader, claims_skipped), skipped),
            (offset_of!(RegistryHeader, jobs_redelivered), redelivered),
        ] {
            if n > 0 {
                self.u64_at(off).fetch_add(n, Relaxed);
            }
        }
    }

    /// Marks the bus stopped cleanly (the rings stay for the next broker).
    pub fn stop(&self) {
        self.u32_at(offset_of!(RegistryHeader, broker_pid))
            .store(0, Relaxed);
        self.u32_at(offset_of!(RegistryHeader, state))
            .store(REGISTRY_STOPPED, Release);
    }

    /// Path in the file system.
    pub fn path(&self) -> &str {
        &self.path
    }
}

/// Reads and validates the registry of `bus` (read-only; changes nothing).
pub fn open(bus: &str) -> Result<Snapshot> {
    let object = object(bus)?;
    let path = name::object_path(&object);
    let missing = || Error::BusNotRunning {
        bus: bus.into(),
        path: path.clone(),
    };
    let (map, len) = shm::open(&object, false, missing)?;
    // Copy with atomic loads: the broker may be updating counters meanwhile.
    let words = (len as usize / 8).min(1 << 20);
    let mut bytes = vec![0u8; words * 8];
    for (i, chunk) in bytes.chunks_exact_mut(8).enumerate() {
        // SAFETY: word `i` < len / 8 lies inside the mapping, 8-aligned on a page-aligned
        // base; an atomic load never races with the broker's atomic stores.
        let w = unsafe { &*map.as_ptr().add(i * 8).cast::<AtomicU64>() }.load(Acquire);
        chunk.copy_from_slice(&w.to_le_bytes());
    }
    parse(&bytes)
        .map_err(|problem| Error::Corrupt {
            path: path.clone(),
            problem,
        })
        .map(|(header, rings, schemas_json)| Snapshot {
            header,
            rings,
            schemas_json,
            path,
        })
}

/// Removes the registry of `bus`.
pub fn unlink(bus: &str) -> Result<()> {
    let object = object(bus)?;
    let path = name::object_path(&object);
    shm::unlink(&object, || Error::BusNotRunning {
        bus: bus.into(),
        path: path.clone(),
    })
}

/// Validates the bytes of a registry and decodes them.
pub fn parse(bytes: &[u8]) -> Result<(RegistryHeader, Vec<RingInfo>, String), Corrupt> {
    let hsize = size_of::<RegistryHeader>();
    if bytes.len() < total_size(0) {
        return Err(Corrupt::Truncated {
            expected: total_size(0) as u64,
            found: bytes.len() as u64,
        });
    }
    let h: RegistryHeader = bytemuck::pod_read_unaligned(&bytes[..hsize]);
    if h.magic != REGISTRY_MAGIC {
        return Err(Corrupt::WrongMagic {
            found: String::from_utf8_lossy(&h.magic).into_owned(),
        });
    }
    if h.format_version != REGISTRY_FORMAT_VERSION {
        return Err(Corrupt::WrongVersion {
            found: h.format_version,
            expected: REGISTRY_FORMAT_VERSION,
        });
    }
    if h.state != REGISTRY_RUNNING && h.state != REGISTRY_STOPPED {
        return Err(Corrupt::NotInitialised { found: h.state });
    }
    if h.ring_count as usize > REGISTRY_MAX_RINGS {
        return Err(Corrupt::BadField {
            field: "ring_count",
            value: h.ring_count as u64,
            why: "is more than 64",
        });
    }
    let (off, n) = (h.schemas_offset as usize, h.schemas_len as usize);
    if off != total_size(0) || off.checked_add(n).is_none_or(|end| end > bytes.len()) {
        return Err(Corrupt::BadField {
            field: "schemas_len",
            value: n as u64,
            why: "runs past the end of the registry",
        });
    }
    let schemas_json = String::from_utf8_lossy(&bytes[off..off + n]).into_owned();
    let mut rings = Vec::new();
    for i in 0..h.ring_count as usize {
        let at = REGISTRY_RINGS_OFFSET + i * size_of::<RegistryRing>();
        let r: RegistryRing =
            bytemuck::pod_read_unaligned(&bytes[at..at + size_of::<RegistryRing>()]);
        let name = text(&r.name);
        if name::check_ring(&name).is_err() {
            return Err(Corrupt::BadField {
                field: "ring name",
                value: i as u64,
                why: "is not a valid ring name",
            });
        }
        let mode = Mode::from_code(r.mode).ok_or(Corrupt::BadField {
            field: "ring mode",
            value: r.mode as u64,
            why: "is not 1 or 2",
        })?;
        let policy = Policy::from_code(r.policy).ok_or(Corrupt::BadField {
            field: "ring policy",
            value: r.policy as u64,
            why: "is not 1 or 2",
        })?;
        rings.push(RingInfo {
            name,
            layout: text(&r.layout_name),
            layout_fingerprint: r.layout_fingerprint,
            mode,
            policy,
            slot_count: r.slot_count,
            slot_size: r.slot_size,
            single_producer: r.flags & 1 != 0,
        });
    }
    Ok((h, rings, schemas_json))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Publishing is exclusive unless it replaces a stale registry, and never leaves the
    /// temporary name behind.
    #[test]
    fn publish_is_exclusive_and_replace_swaps_in_place() {
        let bus = format!("regtest{}", std::process::id());
        let first = Registry::publish(&bus, &[], 1000, "{}", false).unwrap();
        let again = Registry::publish(&bus, &[], 1000, "{}", false)
            .err()
            .unwrap();
        assert!(
            matches!(again, Error::BrokerRunning { pid, .. } if pid == std::process::id()),
            "{again}"
        );
        let replaced = Registry::publish(&bus, &[], 2000, "{\"x\":1}", true).unwrap();
        let snap = open(&bus).unwrap();
        assert_eq!(snap.header.liveness_ms, 2000);
        assert_eq!(snap.schemas_json, "{\"x\":1}");
        let temp = name::object_path(&format!("{}~{}", object(&bus).unwrap(), std::process::id()));
        assert!(!std::path::Path::new(&temp).exists(), "{temp} left behind");
        drop((first, replaced));
        unlink(&bus).unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        /// Random bytes as a registry: an error or a decoded registry, never a panic.
        #[test]
        fn random_registry_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..20_000)) {
            let _ = parse(&bytes);
        }

        /// A well-formed header with random fields after it.
        #[test]
        fn random_fields_never_panic(count in any::<u32>(), off in any::<u32>(), len in any::<u32>(), state in any::<bool>()) {
            let mut bytes = vec![0u8; total_size(100)];
            let h = RegistryHeader {
                magic: REGISTRY_MAGIC,
                format_version: REGISTRY_FORMAT_VERSION,
                state: if state { REGISTRY_RUNNING } else { REGISTRY_STOPPED },
                ring_count: count,
                schemas_offset: off,
                schemas_len: len,
                ..bytemuck::Zeroable::zeroed()
            };
            bytes[..256].copy_from_slice(bytemuck::bytes_of(&h));
            let _ = parse(&bytes);
        }
    }
}
