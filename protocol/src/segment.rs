//! Ring segments: POSIX shared-memory objects created, reserved, mapped, validated.
//!
//! Creation: `shm_open(O_CREAT | O_EXCL)` with the requested mode (0600 by default), `fchmod`
//! (so the umask cannot narrow it), `ftruncate`, then `posix_fallocate` so that a full
//! `/dev/shm` fails here with [`Error::NoSpace`] instead of a SIGBUS later. The header is
//! written, the slot stamps set, and the `state` word is stored last with Release: an attacher
//! that sees `READY` (Acquire) sees a complete segment. Attaching validates every header field
//! against the file size before any pointer is formed.

use crate::control::{ClientCtl, RingCtl, SlotCtl, Table};
use crate::error::{Corrupt, Error, Result};
use crate::name;
use crate::ring::{Mode, Policy, RingRef};
use crate::shm;
use crate::sync::{AtomicU64, Ordering::*};
use gos_layouts::segment::*;
use gos_layouts::{RingHeader, Schema, SlotHeader};
use std::mem::size_of;
use std::ptr::NonNull;

/// Largest slot count a segment may declare.
pub const MAX_SLOTS: u32 = 1 << 24;
/// Largest slot size a segment may declare (1 GiB).
pub const MAX_SLOT_SIZE: u32 = 1 << 30;
/// Largest client table.
pub const MAX_CLIENTS: u32 = 1024;
/// Size of a slot header.
pub const SLOT_HEADER: u64 = size_of::<SlotHeader>() as u64;

/// How to build a ring.
#[derive(Debug, Clone, Copy)]
pub struct RingConfig {
    /// Broadcast or work queue.
    pub mode: Mode,
    /// What producers do when a subscriber is a full ring behind (broadcast only).
    pub policy: Policy,
    /// Number of slots; a power of two.
    pub slot_count: u32,
    /// Largest payload in bytes.
    pub slot_size: u32,
    /// Size of the client table.
    pub max_clients: u32,
    /// The record layout the ring carries.
    pub layout: Schema,
    /// Permission bits of the shared-memory object.
    pub permissions: u32,
    /// One publisher at a time, claiming without atomic read-modify-writes (fastest; a
    /// second publisher is refused while one is attached).
    pub single_producer: bool,
}

impl Default for RingConfig {
    fn default() -> Self {
        RingConfig {
            mode: Mode::Broadcast,
            policy: Policy::Block,
            slot_count: 1024,
            slot_size: 4096,
            max_clients: 64,
            layout: gos_layouts::BYTES,
            permissions: 0o600,
            single_producer: false,
        }
    }
}

/// The validated geometry of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Geometry {
    /// Broadcast or work queue.
    pub mode: Mode,
    /// Producer policy.
    pub policy: Policy,
    /// Number of slots (a power of two).
    pub slot_count: u32,
    /// Largest payload.
    pub slot_size: u32,
    /// Bytes from slot to slot.
    pub slot_stride: u32,
    /// Client table size.
    pub max_clients: u32,
    /// Total size.
    pub segment_size: u64,
    /// Offset of the first slot.
    pub slots_offset: u64,
    /// Fingerprint of the layout carried.
    pub layout_fingerprint: u64,
    /// Name of the layout carried.
    pub layout_name: String,
    /// Ring name stored in the header.
    pub ring_name: String,
    /// Permission bits at creation.
    pub permissions: u32,
    /// One publisher at a time.
    pub single_producer: bool,
    /// The publisher reuses the buffer of the newest released message (`RING_HOT_BUFFERS`).
    pub hot_buffers: bool,
    /// Creator pid.
    pub creator_pid: u32,
    /// Creation time (ns since the epoch).
    pub created_ns: i64,
}

fn round_up(v: u64, to: u64) -> Option<u64> {
    v.checked_add(to - 1).map(|x| x / to * to)
}

/// Stride, slots offset and total size for a configuration, with every rule checked.
fn sizes(slot_count: u32, slot_size: u32, max_clients: u32) -> Result<(u64, u64, u64), Corrupt> {
    if slot_count == 0 || !slot_count.is_power_of_two() || slot_count > MAX_SLOTS {
        return Err(Corrupt::BadField {
            field: "slot_count",
            value: slot_count as u64,
            why: "is not a power of two from 1 to 2^24",
        });
    }
    if slot_size == 0 || slot_size > MAX_SLOT_SIZE {
        return Err(Corrupt::BadField {
            field: "slot_size",
            value: slot_size as u64,
            why: "is not from 1 byte to 1 GiB",
        });
    }
    if max_clients == 0 || max_clients > MAX_CLIENTS {
        return Err(Corrupt::BadField {
            field: "max_clients",
            value: max_clients as u64,
            why: "is not from 1 to 1024",
        });
    }
    let overflow = Corrupt::BadField {
        field: "segment_size",
        value: u64::MAX,
        why: "the geometry overflows",
    };
    let stride = round_up(SLOT_HEADER + slot_size as u64, SLOT_ALIGN).ok_or(overflow.clone())?;
    let clients_end = CLIENTS_OFFSET + max_clients as u64 * size_of::<ClientEntry>() as u64;
    let slots_offset = round_up(clients_end, SLOTS_ALIGN).ok_or(overflow.clone())?;
    let size = stride
        .checked_mul(slot_count as u64)
        .and_then(|b| b.checked_add(slots_offset))
        .ok_or(overflow)?;
    Ok((stride, slots_offset, size))
}

use gos_layouts::ClientEntry;

fn name_field<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [0u8; N];
    let n = s.len().min(N);
    out[..n].copy_from_slice(&s.as_bytes()[..n]);
    out
}

fn field_str(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Checks a ring configuration; on error returns the field and the reason.
pub fn check_config(cfg: &RingConfig) -> Result<(), (&'static str, String)> {
    if let Err(Corrupt::BadField { field, value, why }) =
        sizes(cfg.slot_count, cfg.slot_size, cfg.max_clients)
    {
        let field = match field {
            "slot_count" => "slots",
            f => f,
        };
        return Err((field, format!("{value} {why}")));
    }
    if cfg.mode == Mode::WorkQueue && cfg.policy == Policy::OverwriteOldest {
        return Err((
            "policy",
            "a work queue cannot use overwrite-oldest: every job must reach one worker".into(),
        ));
    }
    if cfg.mode == Mode::WorkQueue && cfg.single_producer {
        return Err((
            "single_producer",
            "a work queue cannot be single-producer: the broker hands a dead worker's jobs back \
             as a second producer"
                .into(),
        ));
    }
    if cfg.permissions & !0o777 != 0 {
        return Err((
            "permissions",
            format!(
                "{:#o} are not file mode bits (use e.g. 0600)",
                cfg.permissions
            ),
        ));
    }
    Ok(())
}

/// Validates a header snapshot against the size of the file it came from.
pub fn validate(h: &RingHeader, file_len: u64) -> Result<Geometry, Corrupt> {
    if h.magic != RING_MAGIC {
        return Err(Corrupt::WrongMagic {
            found: String::from_utf8_lossy(&h.magic).into_owned(),
        });
    }
    if h.format_version != RING_FORMAT_VERSION {
        return Err(Corrupt::WrongVersion {
            found: h.format_version,
            expected: RING_FORMAT_VERSION,
        });
    }
    if h.state != RING_STATE_READY {
        return Err(Corrupt::NotInitialised { found: h.state });
    }
    if h.flags & !RING_KNOWN_FLAGS != 0 {
        return Err(Corrupt::BadField {
            field: "flags",
            value: h.flags as u64,
            why: "has bits this build does not know",
        });
    }
    if h.flags & RING_HOT_BUFFERS != 0
        && (h.flags & RING_SINGLE_PRODUCER == 0 || h.mode != MODE_BROADCAST)
    {
        return Err(Corrupt::BadField {
            field: "flags",
            value: h.flags as u64,
            why: "hot buffers are only for single-producer broadcast rings",
        });
    }
    let mode = Mode::from_code(h.mode).ok_or(Corrupt::BadField {
        field: "mode",
        value: h.mode as u64,
        why: "must be 1 (broadcast) or 2 (work queue)",
    })?;
    let policy = Policy::from_code(h.policy).ok_or(Corrupt::BadField {
        field: "policy",
        value: h.policy as u64,
        why: "must be 1 (block) or 2 (overwrite-oldest)",
    })?;
    let (stride, slots_offset, size) = sizes(h.slot_count, h.slot_size, h.max_clients)?;
    if h.slot_stride as u64 != stride {
        return Err(Corrupt::BadField {
            field: "slot_stride",
            value: h.slot_stride as u64,
            why: "does not match slot_size",
        });
    }
    if h.clients_offset != CLIENTS_OFFSET || h.slots_offset != slots_offset {
        return Err(Corrupt::BadField {
            field: "slots_offset",
            value: h.slots_offset,
            why: "does not match the client table size",
        });
    }
    if h.segment_size != size {
        return Err(Corrupt::BadField {
            field: "segment_size",
            value: h.segment_size,
            why: "does not match the slot geometry",
        });
    }
    if file_len < size {
        return Err(Corrupt::Truncated {
            expected: size,
            found: file_len,
        });
    }
    if h.head > u64::MAX / 4 || h.tail > u64::MAX / 4 {
        return Err(Corrupt::CursorsOutOfRange {
            what: format!("head {} / tail {} beyond 2^62", h.head, h.tail),
        });
    }
    Ok(Geometry {
        mode,
        policy,
        slot_count: h.slot_count,
        slot_size: h.slot_size,
        slot_stride: h.slot_stride,
        max_clients: h.max_clients,
        segment_size: size,
        slots_offset,
        layout_fingerprint: h.layout_fingerprint,
        layout_name: field_str(&h.layout_name),
        ring_name: field_str(&h.ring_name),
        permissions: h.mode_bits,
        single_producer: h.flags & RING_SINGLE_PRODUCER != 0,
        hot_buffers: h.flags & RING_HOT_BUFFERS != 0,
        creator_pid: h.creator_pid,
        created_ns: h.created_ns,
    })
}

/// A mapped ring segment.
pub struct Segment {
    map: memmap2::MmapRaw,
    bus: String,
    ring: String,
    path: String,
    geometry: Geometry,
    writable: bool,
}

impl Segment {
    /// Creates ring `ring` of bus `bus`. Fails with [`Error::AlreadyExists`] if it exists.
    pub fn create(bus: &str, ring: &str, cfg: &RingConfig) -> Result<Segment> {
        let object = name::ring_object(bus, ring)?;
        let path = name::object_path(&object);
        check_config(cfg)
            .map_err(|(field, why)| Error::InvalidConfig(format!("{field}: {why}")))?;
        let (stride, slots_offset, size) = sizes(cfg.slot_count, cfg.slot_size, cfg.max_clients)
            .map_err(|p| Error::InvalidConfig(p.to_string()))?;
        let exists = || Error::AlreadyExists {
            bus: bus.into(),
            ring: ring.into(),
            path: path.clone(),
        };
        let map = shm::create(&object, size, cfg.permissions, exists)?;
        let built = Self::build(map, bus, ring, &path, cfg, stride, slots_offset, size);
        if built.is_err() {
            let _ = nix::sys::mman::shm_unlink(object.as_str());
        }
        built
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        map: memmap2::MmapRaw,
        bus: &str,
        ring: &str,
        path: &str,
        cfg: &RingConfig,
        stride: u64,
        slots_offset: u64,
        size: u64,
    ) -> Result<Segment> {
        let header = RingHeader {
            magic: RING_MAGIC,
            format_version: RING_FORMAT_VERSION,
            state: RING_STATE_BUILDING,
            mode: cfg.mode.code(),
            layout_fingerprint: cfg.layout.fingerprint,
            policy: cfg.policy.code(),
            slot_count: cfg.slot_count,
            slot_size: cfg.slot_size,
            slot_stride: stride as u32,
            max_clients: cfg.max_clients,
            mode_bits: cfg.permissions,
            flags: if cfg.single_producer {
                RING_SINGLE_PRODUCER
                    | if cfg.mode == Mode::Broadcast && cfg.slot_size >= HOT_BUFFERS_MIN_SLOT {
                        RING_HOT_BUFFERS
                    } else {
                        0
                    }
            } else {
                0
            },
            segment_size: size,
            clients_offset: CLIENTS_OFFSET,
            slots_offset,
            created_ns: crate::proc::now_ns() as i64,
            creator_pid: std::process::id(),
            layout_name: name_field(cfg.layout.name),
            ring_name: name_field(ring),
            ..bytemuck::Zeroable::zeroed()
        };
        // SAFETY: the mapping is `size` >= 512 bytes, page-aligned, fresh (zero-filled) and not
        // yet READY, so no peer uses it; writing a Pod header there is a plain byte copy.
        unsafe { map.as_mut_ptr().cast::<RingHeader>().write(header) };
        let ready = RingHeader {
            state: RING_STATE_READY,
            ..header
        };
        let geometry = validate(&ready, size).map_err(|problem| Error::Corrupt {
            path: path.into(),
            problem,
        })?;
        let seg = Segment {
            map,
            bus: bus.into(),
            ring: ring.into(),
            path: path.into(),
            geometry,
            writable: true,
        };
        let r = seg.ring();
        for i in 0..cfg.slot_count as u64 {
            // Each slot starts with its own buffer.
            r.slot(i).buffer().store(i as u32, Relaxed);
            if cfg.mode == Mode::WorkQueue {
                r.slot(i).stamp().store(i, Relaxed);
            }
        }
        // Release: pairs with the Acquire load of `state` in `open`; everything above is
        // visible to a client that sees READY.
        seg.ctl().state().store(RING_STATE_READY, Release);
        Ok(seg)
    }

    /// Opens an existing ring for reading and writing, validating its header.
    pub fn open(bus: &str, ring: &str) -> Result<Segment> {
        Self::open_with(bus, ring, true)
    }

    /// Opens an existing ring read-only (for inspection; never changes what it watches).
    pub fn open_read_only(bus: &str, ring: &str) -> Result<Segment> {
        Self::open_with(bus, ring, false)
    }

    fn open_with(bus: &str, ring: &str, writable: bool) -> Result<Segment> {
        let object = name::ring_object(bus, ring)?;
        let path = name::object_path(&object);
        let missing = || Error::NoSuchRing {
            bus: bus.into(),
            ring: ring.into(),
            path: path.clone(),
        };
        let (map, len) = shm::open(&object, writable, missing)?;
        let corrupt = |problem| Error::Corrupt {
            path: path.clone(),
            problem,
        };
        if len < size_of::<RingHeader>() as u64 {
            return Err(corrupt(Corrupt::Truncated {
                expected: size_of::<RingHeader>() as u64,
                found: len,
            }));
        }
        let mut seg = Segment {
            map,
            bus: bus.into(),
            ring: ring.into(),
            path: path.clone(),
            geometry: Geometry::placeholder(),
            writable,
        };
        // A segment being created right now becomes READY within microseconds: wait a little.
        for _ in 0..50 {
            // Acquire: pairs with the Release store of READY in `build`.
            if seg.ctl().state().load(Acquire) == RING_STATE_READY {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        seg.geometry = validate(&seg.header(), len).map_err(corrupt)?;
        seg.check_cursors().map_err(corrupt)?;
        Ok(seg)
    }

    /// Removes ring `ring` of bus `bus` from `/dev/shm`. Mapped segments stay usable by the
    /// processes that hold them until they detach.
    pub fn unlink(bus: &str, ring: &str) -> Result<()> {
        let object = name::ring_object(bus, ring)?;
        let path = name::object_path(&object);
        shm::unlink(&object, || Error::NoSuchRing {
            bus: bus.into(),
            ring: ring.into(),
            path: path.clone(),
        })
    }

    /// Checks the live cursors: no subscriber past `head`; on a work queue, `tail <= head <=
    /// tail + slot_count`. (Not on a header snapshot: a busy ring moves between two loads.)
    pub fn check_cursors(&self) -> Result<(), Corrupt> {
        let r = self.ring();
        if self.geometry.mode == Mode::WorkQueue {
            let count = self.geometry.slot_count as u64;
            for _ in 0..100 {
                // tail, head, tail: if tail did not move, (t1, head) is a consistent pair.
                let t1 = r.ctl.tail().load(Acquire);
                let head = r.ctl.head().load(Acquire);
                if r.ctl.tail().load(Acquire) != t1 {
                    continue;
                }
                if t1 > head || head - t1 > count {
                    return Err(Corrupt::CursorsOutOfRange {
                        what: format!(
                            "head {head} and tail {t1} (tail must not pass head, nor head lead by more than {count})"
                        ),
                    });
                }
                break;
            }
        }
        for i in 0..r.clients.len() {
            let e = r.clients.get(i);
            if crate::ring::entry::is_active(e) && e.role().load(Relaxed) == ROLE_SUBSCRIBER {
                // The cursor first, then head: a cursor never passes the head read after it.
                let c = e.cursor().load(Acquire) & !CURSOR_HOLD;
                let head = r.ctl.head().load(Acquire);
                if c > head {
                    return Err(Corrupt::CursorsOutOfRange {
                        what: format!("subscriber {i} cursor {c} is past head {head}"),
                    });
                }
            }
        }
        Ok(())
    }

    /// Checks every slot's stamp against the states the protocol makes (for the broker's
    /// scan; O(slots)): broadcast, 0 or one past a sequence of that slot that was claimed;
    /// work queue, the slot's index, a commit (+1) or a release (+capacity) of its laps, at
    /// most a lap past `head`. A stamp outside them can never become one a producer waits
    /// for, so the ring is reported damaged instead of waited on. `head` is read after the
    /// stamps, so a busy ring never looks damaged.
    pub fn check_stamps(&self) -> Result<(), Corrupt> {
        let r = self.ring();
        let cap = r.capacity;
        let stamps: Vec<u64> = (0..cap)
            .map(|i| r.slots.get(i as usize).stamp().load(Acquire))
            .collect();
        let head = r.ctl.head().load(Acquire);
        for (i, &stamp) in stamps.iter().enumerate() {
            let i = i as u64;
            let ok = match self.geometry.mode {
                Mode::Broadcast => stamp == 0 || ((stamp - 1) % cap == i && stamp <= head),
                Mode::WorkQueue => {
                    let lap = stamp.wrapping_sub(i) % cap;
                    stamp >= i && (lap == 0 || lap == 1) && stamp <= head + cap
                }
            };
            if !ok {
                return Err(Corrupt::CursorsOutOfRange {
                    what: format!(
                        "slot {i} has stamp {stamp}, which no sequence of the ring makes (head {head})"
                    ),
                });
            }
        }
        Ok(())
    }

    /// A consistent-enough snapshot of the header (every word read atomically).
    pub fn header(&self) -> RingHeader {
        let mut words = [0u64; 64];
        let base = self.map.as_ptr().cast::<AtomicU64>();
        for (i, w) in words.iter_mut().enumerate() {
            // SAFETY: the mapping is at least 512 bytes (checked before mapping/validation) and
            // page-aligned, so word `i < 64` is in bounds and 8-aligned; reading it atomically
            // never races with the atomic writers of the header.
            *w = unsafe { &*base.add(i) }.load(Relaxed);
        }
        bytemuck::cast(words)
    }

    #[inline]
    fn ctl(&self) -> &RingCtl {
        // SAFETY: the mapping is at least 512 bytes and page-aligned; RingCtl has the layout of
        // RingHeader (asserted in `control`) and its run-time words are atomics.
        unsafe { &*self.map.as_ptr().cast::<RingCtl>() }
    }

    /// The ring protocols' view of this segment.
    #[inline]
    pub fn ring(&self) -> RingRef<'_> {
        let g = &self.geometry;
        let base = self.map.as_mut_ptr();
        // SAFETY: `validate` checked that the client table (512 + 128 * max_clients) and the
        // slots (slots_offset + stride * slot_count) lie inside the mapping, whose length is at
        // least `segment_size`; offsets are multiples of 64 on a page-aligned base, and the
        // records there are accessed only through atomics or under the ring protocol.
        let (clients, slots) = unsafe {
            (
                Table::<ClientCtl>::from_raw(
                    NonNull::new_unchecked(base.add(CLIENTS_OFFSET as usize)),
                    size_of::<ClientCtl>(),
                    g.max_clients as usize,
                ),
                Table::<SlotCtl>::from_raw(
                    NonNull::new_unchecked(base.add(g.slots_offset as usize)),
                    g.slot_stride as usize,
                    g.slot_count as usize,
                ),
            )
        };
        RingRef {
            ctl: self.ctl(),
            clients,
            slots,
            capacity: g.slot_count as u64,
        }
    }

    /// Pointer to the payload of the slot of `seq` (`slot_size` bytes): the buffer its
    /// `SlotHeader::buffer` names, masked to the slot count (a hostile value stays inside the
    /// mapping). Read it after the stamp that gives the caller the slot (a consumer's Acquire,
    /// a producer's claim).
    #[inline]
    pub fn payload_ptr(&self, seq: u64) -> *mut u8 {
        let r = self.ring();
        let buffer = r.slot(seq).buffer().load(Relaxed) as u64 & (r.capacity - 1);
        // SAFETY: `buffer` < slot_count, and the slot stride is at least header + slot_size,
        // so the payload lies inside slot `buffer`, inside the mapping.
        unsafe { r.slots.ptr(buffer as usize).add(SLOT_HEADER as usize) }
    }

    /// Asks the CPU to fetch the first two cache lines of the slot of `seq` for writing, so
    /// that the producer's next loan finds them owned instead of stalling on the consumer's
    /// copy (a read-for-ownership started early instead of on the critical path).
    #[inline]
    pub fn prefetch_for_write(&self, seq: u64) {
        #[cfg(target_arch = "x86_64")]
        if !self.geometry.hot_buffers {
            let r = self.ring();
            let p = r.slots.ptr(r.index(seq)).cast::<i8>();
            // SAFETY: a prefetch is only a hint: it never faults and changes no memory; the
            // addresses are inside the mapping anyway (slot stride is at least 64 bytes, and
            // the second line is in the slot or the next one, which the mapping also holds
            // except for the last slot, whose next line a hint may name harmlessly).
            unsafe {
                use std::arch::x86_64::{_mm_prefetch, _MM_HINT_ET0};
                _mm_prefetch::<_MM_HINT_ET0>(p);
                _mm_prefetch::<_MM_HINT_ET0>(p.wrapping_add(64));
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = seq;
    }

    /// The validated geometry.
    #[inline]
    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// Bus name.
    pub fn bus(&self) -> &str {
        &self.bus
    }

    /// Ring name.
    pub fn name(&self) -> &str {
        &self.ring
    }

    /// Path in the file system.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// True when mapped read-write.
    pub fn is_writable(&self) -> bool {
        self.writable
    }
}

impl Geometry {
    fn placeholder() -> Geometry {
        Geometry {
            mode: Mode::Broadcast,
            policy: Policy::Block,
            slot_count: 1,
            slot_size: 1,
            slot_stride: 64,
            max_clients: 0,
            segment_size: 0,
            slots_offset: 0,
            layout_fingerprint: 0,
            layout_name: String::new(),
            ring_name: String::new(),
            permissions: 0,
            single_producer: false,
            hot_buffers: false,
            creator_pid: 0,
            created_ns: 0,
        }
    }
}

// SAFETY: the mapping is shared memory accessed only through atomics and the ring protocol;
// `Segment` holds no thread-affine state.
unsafe impl Send for Segment {}
// SAFETY: as above; all shared access goes through `&AtomicX` or protocol-owned slots.
unsafe impl Sync for Segment {}
