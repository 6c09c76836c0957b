//! Bad input: segments damaged on purpose (by this test acting as a buggy or hostile peer)
//! are rejected with an error that names the problem, never a panic.

use gos_bus_protocol::{name, Corrupt, Error, RingConfig, Segment};
use gos_bus_protocol::{Mode, Policy};
use gos_layouts::{Record, RenderFrame, RingHeader};
use proptest::prelude::*;
use std::fs::OpenOptions;
use std::mem::offset_of;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU32, Ordering};

/// A ring with a unique name, removed when dropped.
struct Scratch {
    bus: String,
    ring: String,
}

impl Scratch {
    fn new(cfg: &RingConfig) -> (Scratch, Segment) {
        static N: AtomicU32 = AtomicU32::new(0);
        let bus = format!(
            "bad{}x{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let seg = Segment::create(&bus, "r", cfg).unwrap();
        (
            Scratch {
                bus,
                ring: "r".into(),
            },
            seg,
        )
    }

    fn path(&self) -> String {
        name::object_path(&name::ring_object(&self.bus, &self.ring).unwrap())
    }

    fn poke(&self, offset: usize, bytes: &[u8]) {
        let f = OpenOptions::new().write(true).open(self.path()).unwrap();
        f.write_all_at(bytes, offset as u64).unwrap();
    }

    fn open(&self) -> Result<Segment, Error> {
        Segment::open(&self.bus, &self.ring)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = Segment::unlink(&self.bus, &self.ring);
    }
}

fn small() -> RingConfig {
    RingConfig {
        slot_count: 8,
        slot_size: 256,
        max_clients: 4,
        ..RingConfig::default()
    }
}

fn corrupt(r: Result<Segment, Error>) -> (String, Corrupt) {
    match r {
        Err(Error::Corrupt { path, problem }) => (path, problem),
        Err(e) => panic!("expected a corrupt-segment error, got {e}"),
        Ok(_) => panic!("expected a corrupt-segment error, the segment was accepted"),
    }
}

#[test]
fn healthy_segment_opens() {
    let (s, _seg) = Scratch::new(&small());
    let g = s.open().unwrap().geometry().clone();
    assert_eq!(g.slot_count, 8);
    assert_eq!(g.slot_size, 256);
    assert_eq!(g.mode, Mode::Broadcast);
}

#[test]
fn wrong_magic_is_rejected() {
    let (s, _seg) = Scratch::new(&small());
    s.poke(0, b"JUNK");
    let (path, p) = corrupt(s.open());
    assert!(matches!(p, Corrupt::WrongMagic { .. }), "{p}");
    assert_eq!(path, s.path());
    let msg = Error::Corrupt { path, problem: p }.to_string();
    assert!(
        msg.contains("wrong magic") && msg.contains("gos-bus rm"),
        "{msg}"
    );
}

#[test]
fn wrong_version_is_rejected() {
    let (s, _seg) = Scratch::new(&small());
    s.poke(offset_of!(RingHeader, format_version), &99u32.to_le_bytes());
    let (_, p) = corrupt(s.open());
    assert_eq!(
        p,
        Corrupt::WrongVersion {
            found: 99,
            expected: gos_layouts::segment::RING_FORMAT_VERSION
        }
    );
}

#[test]
fn uninitialised_segment_is_rejected() {
    let (s, _seg) = Scratch::new(&small());
    s.poke(offset_of!(RingHeader, state), &0u32.to_le_bytes());
    let (_, p) = corrupt(s.open());
    assert!(matches!(p, Corrupt::NotInitialised { found: 0 }), "{p}");
}

#[test]
fn truncated_file_is_rejected() {
    let (s, seg) = Scratch::new(&small());
    let full = seg.geometry().segment_size;
    drop(seg);
    let f = OpenOptions::new().write(true).open(s.path()).unwrap();
    f.set_len(full - 4096).unwrap();
    let (_, p) = corrupt(s.open());
    assert_eq!(
        p,
        Corrupt::Truncated {
            expected: full,
            found: full - 4096
        }
    );
    f.set_len(100).unwrap();
    let (_, p) = corrupt(s.open());
    assert_eq!(
        p,
        Corrupt::Truncated {
            expected: 512,
            found: 100
        }
    );
}

#[test]
fn slot_count_not_power_of_two_is_rejected() {
    let (s, _seg) = Scratch::new(&small());
    s.poke(offset_of!(RingHeader, slot_count), &6u32.to_le_bytes());
    let (_, p) = corrupt(s.open());
    assert!(
        matches!(
            p,
            Corrupt::BadField {
                field: "slot_count",
                value: 6,
                ..
            }
        ),
        "{p}"
    );
    assert!(p.to_string().contains("power of two"));
}

#[test]
fn cursors_out_of_range_are_rejected() {
    let cfg = RingConfig {
        mode: Mode::WorkQueue,
        ..small()
    };
    let (s, _seg) = Scratch::new(&cfg);
    // tail past head
    s.poke(offset_of!(RingHeader, tail), &5u64.to_le_bytes());
    let (_, p) = corrupt(s.open());
    assert!(matches!(p, Corrupt::CursorsOutOfRange { .. }), "{p}");
    // head more than a ring ahead of tail
    s.poke(offset_of!(RingHeader, tail), &0u64.to_le_bytes());
    s.poke(offset_of!(RingHeader, head), &9u64.to_le_bytes());
    let (_, p) = corrupt(s.open());
    assert!(p.to_string().contains("head 9 and tail 0"), "{p}");
}

#[test]
fn subscriber_cursor_past_head_is_rejected() {
    let (s, seg) = Scratch::new(&small());
    let client0 = gos_layouts::segment::CLIENTS_OFFSET as usize;
    use gos_layouts::ClientEntry;
    // Active at generation 1 (the lifecycle word: state low, generation high).
    let active = (1u64 << 32) | gos_layouts::segment::CLIENT_ACTIVE as u64;
    s.poke(
        client0 + offset_of!(ClientEntry, lifecycle),
        &active.to_le_bytes(),
    );
    s.poke(
        client0 + offset_of!(ClientEntry, role),
        &gos_layouts::segment::ROLE_SUBSCRIBER.to_le_bytes(),
    );
    s.poke(
        client0 + offset_of!(ClientEntry, cursor),
        &1000u64.to_le_bytes(),
    );
    drop(seg);
    let (_, p) = corrupt(s.open());
    assert!(p.to_string().contains("cursor 1000 is past head 0"), "{p}");
}

#[test]
fn bad_mode_policy_and_geometry_are_rejected() {
    for (field, offset, value) in [
        ("mode", offset_of!(RingHeader, mode), 7u32),
        ("policy", offset_of!(RingHeader, policy), 9),
        ("slot_size", offset_of!(RingHeader, slot_size), 0),
        ("slot_stride", offset_of!(RingHeader, slot_stride), 65),
        ("max_clients", offset_of!(RingHeader, max_clients), 5000),
    ] {
        let (s, _seg) = Scratch::new(&small());
        s.poke(offset, &value.to_le_bytes());
        let (_, p) = corrupt(s.open());
        match p {
            Corrupt::BadField { field: f, .. } => assert_eq!(f, field),
            other => panic!("{field}: {other}"),
        }
    }
}

#[test]
fn create_refuses_bad_configuration_with_reason() {
    for (cfg, needle) in [
        (
            RingConfig {
                slot_count: 3,
                ..small()
            },
            "power of two",
        ),
        (
            RingConfig {
                slot_size: 0,
                ..small()
            },
            "slot_size",
        ),
        (
            RingConfig {
                mode: Mode::WorkQueue,
                policy: Policy::OverwriteOldest,
                ..small()
            },
            "work queue cannot use overwrite-oldest",
        ),
    ] {
        let e = Segment::create("badcfg", "r", &cfg).err().expect("refused");
        assert!(e.to_string().contains(needle), "{e}");
    }
}

#[test]
fn existing_and_missing_rings_say_what_to_do() {
    let (s, _seg) = Scratch::new(&small());
    let e = Segment::create(&s.bus, &s.ring, &small()).err().unwrap();
    assert!(matches!(e, Error::AlreadyExists { .. }));
    assert!(e.to_string().contains("gos-bus rm"), "{e}");
    let e = Segment::open(&s.bus, "nope").err().unwrap();
    assert!(matches!(e, Error::NoSuchRing { .. }));
    assert!(e.to_string().contains("/dev/shm/gos."), "{e}");
    assert!(e.to_string().contains("gos-bus create nope"), "{e}");
}

#[test]
fn permissions_are_applied() {
    use std::os::unix::fs::PermissionsExt;
    let cfg = RingConfig {
        permissions: 0o640,
        ..small()
    };
    let (s, _seg) = Scratch::new(&cfg);
    let mode = std::fs::metadata(s.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    let (s2, _seg2) = Scratch::new(&small());
    let mode = std::fs::metadata(s2.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "default mode is 0600");
}

#[test]
fn layout_fingerprint_is_stored() {
    let cfg = RingConfig {
        layout: RenderFrame::SCHEMA,
        ..small()
    };
    let (s, _seg) = Scratch::new(&cfg);
    let g = s.open().unwrap().geometry().clone();
    assert_eq!(g.layout_fingerprint, RenderFrame::FINGERPRINT);
    assert_eq!(g.layout_name, "RenderFrame");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Random bytes as a header, with any file length: `validate` returns an error or a
    /// geometry that fits the file, and never panics.
    #[test]
    fn random_header_never_panics(bytes in proptest::collection::vec(any::<u8>(), 512), len in any::<u64>()) {
        let h: RingHeader = bytemuck::pod_read_unaligned(&bytes);
        if let Ok(g) = gos_bus_protocol::segment::validate(&h, len) {
            prop_assert!(g.segment_size <= len);
            prop_assert!(g.slot_count.is_power_of_two());
        }
    }

    /// A valid header with one random field changed: still an error or a geometry that fits.
    #[test]
    fn mutated_header_never_panics(offset in 0usize..512, value in any::<u64>()) {
        let (s, seg) = Scratch::new(&small());
        let mut h = seg.header();
        let bytes: &mut [u8] = bytemuck::bytes_of_mut(&mut h);
        let end = (offset + 8).min(512);
        bytes[offset..end].copy_from_slice(&value.to_le_bytes()[..end - offset]);
        s.poke(0, bytemuck::bytes_of(&h));
        drop(seg);
        if let Ok(seg) = s.open() {
            prop_assert!(seg.geometry().segment_size <= std::fs::metadata(s.path()).unwrap().len());
        }
    }
}
