//! The C ABI of gos-bus, for ctypes (the `gos_bus` Python package) and C programs.
//!
//! Every function returns a status code (`GOS_OK`, `GOS_TIMEOUT`, or a negative `GOS_E*`),
//! keeps the text of the last error of the calling thread for `gos_last_error`, checks every
//! pointer it is given, and never lets a panic cross the boundary. Handles are opaque; a handle
//! is used by one thread at a time. Blocking calls sleep without holding any lock (ctypes
//! releases the GIL around every call).
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

use gos_bus_client::{Bus, Bytes, Error, Publisher, Ring, Subscriber, WaitStrategy};
use std::cell::RefCell;
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

/// Success.
pub const GOS_OK: i32 = 0;
/// Nothing arrived, or no slot freed, before the timeout.
pub const GOS_TIMEOUT: i32 = 1;
/// Any other error (see `gos_last_error`).
pub const GOS_EOTHER: i32 = -1;
/// The bus has no broker (no registry).
pub const GOS_EBUS_NOT_RUNNING: i32 = -2;
/// The ring does not exist.
pub const GOS_ENO_SUCH_RING: i32 = -3;
/// A segment failed validation (damaged or not a gos-bus ring).
pub const GOS_ECORRUPT: i32 = -4;
/// An argument is invalid (null pointer, bad UTF-8, length past the slot).
pub const GOS_EINVALID: i32 = -5;
/// A single-producer ring already has its publisher, or the client table is full.
pub const GOS_EBUSY: i32 = -6;
/// Permission denied on a segment.
pub const GOS_EPERMISSION: i32 = -7;
/// The broker reaped this client.
pub const GOS_EREAPED: i32 = -8;
/// A bug inside gos-bus (a panic was caught at the boundary).
pub const GOS_EPANIC: i32 = -9;

/// The status codes by name, published in `gos_layouts_json` (`status_codes`) so that bindings
/// read them instead of copying them.
const STATUS_CODES: &[(&str, i32)] = &[
    ("GOS_OK", GOS_OK),
    ("GOS_TIMEOUT", GOS_TIMEOUT),
    ("GOS_EOTHER", GOS_EOTHER),
    ("GOS_EBUS_NOT_RUNNING", GOS_EBUS_NOT_RUNNING),
    ("GOS_ENO_SUCH_RING", GOS_ENO_SUCH_RING),
    ("GOS_ECORRUPT", GOS_ECORRUPT),
    ("GOS_EINVALID", GOS_EINVALID),
    ("GOS_EBUSY", GOS_EBUSY),
    ("GOS_EPERMISSION", GOS_EPERMISSION),
    ("GOS_EREAPED", GOS_EREAPED),
    ("GOS_EPANIC", GOS_EPANIC),
];

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

fn code_of(e: &Error) -> i32 {
    match e {
        Error::Timeout(_) => GOS_TIMEOUT,
        Error::BusNotRunning { .. } => GOS_EBUS_NOT_RUNNING,
        Error::NoSuchRing { .. } => GOS_ENO_SUCH_RING,
        Error::Corrupt { .. } => GOS_ECORRUPT,
        Error::InvalidName { .. }
        | Error::PayloadTooLarge { .. }
        | Error::InvalidConfig(_)
        | Error::Misuse(_)
        | Error::Rts { .. } => GOS_EINVALID,
        Error::ProducerBusy { .. } | Error::ClientTableFull { .. } => GOS_EBUSY,
        Error::PermissionDenied { .. } => GOS_EPERMISSION,
        Error::Reaped { .. } => GOS_EREAPED,
        _ => GOS_EOTHER,
    }
}

/// Runs `f`, turning errors and panics into status codes and the last-error text.
fn guard(f: impl FnOnce() -> Result<i32, Error>) -> i32 {
    let (code, text) = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(code)) => return code,
        Ok(Err(e)) => (code_of(&e), e.to_string()),
        Err(_) => (
            GOS_EPANIC,
            "internal error in gos-bus (a panic was caught)".into(),
        ),
    };
    LAST_ERROR.with(|l| *l.borrow_mut() = text);
    code
}

fn invalid(what: &str) -> Error {
    Error::Misuse(what.into())
}

/// # Safety
/// `p` is null or a NUL-terminated string that stays valid during the call.
unsafe fn text<'a>(p: *const c_char, what: &str) -> Result<&'a str, Error> {
    if p.is_null() {
        return Err(invalid(&format!("{what} is a null pointer")));
    }
    // SAFETY: non-null, and NUL-terminated per the caller's contract.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| invalid(&format!("{what} is not UTF-8")))
}

fn timeout(ns: i64) -> Option<Duration> {
    (ns >= 0).then(|| Duration::from_nanos(ns as u64))
}

/// Copies `s` with a NUL into `buf` (when it fits) and returns the bytes it needs, NUL included.
///
/// # Safety
/// `buf` is null or valid for writes of `len` bytes.
unsafe fn copy_out(s: &str, buf: *mut c_char, len: usize) -> usize {
    let need = s.len() + 1;
    if !buf.is_null() && len >= need {
        // SAFETY: `buf` has room for `need` <= `len` bytes (caller's contract, checked).
        unsafe {
            std::ptr::copy_nonoverlapping(s.as_ptr(), buf.cast::<u8>(), s.len());
            *buf.add(s.len()) = 0;
        }
    }
    need
}

/// Copies the last error of this thread into `buf` (NUL-terminated, when `len` is enough) and
/// returns the length it needs, NUL included.
///
/// # Safety
/// `buf` is null or valid for writes of `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn gos_last_error(buf: *mut c_char, len: usize) -> usize {
    LAST_ERROR.with(|l| {
        // SAFETY: forwarded contract.
        unsafe { copy_out(&l.borrow(), buf, len) }
    })
}

/// The version of this library, as a NUL-terminated UTF-8 string with static lifetime
/// (the Cargo workspace's version, which the Python package carries too).
#[no_mangle]
pub extern "C" fn gos_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Copies the JSON description of every layout (as `gos-bus layouts --json`) into `buf` and
/// returns the length it needs, NUL included.
///
/// # Safety
/// `buf` is null or valid for writes of `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn gos_layouts_json(buf: *mut c_char, len: usize) -> usize {
    let mut doc = serde_json::to_value(gos_layouts::document()).expect("serialises");
    doc["status_codes"] = STATUS_CODES
        .iter()
        .map(|(name, code)| (name.to_string(), serde_json::Value::from(*code)))
        .collect::<serde_json::Map<_, _>>()
        .into();
    let json = doc.to_string();
    // SAFETY: forwarded contract.
    unsafe { copy_out(&json, buf, len) }
}

/// Names this process's clients from now on, as `gos-bus info` and the monitor show them
/// (by default the executable's name: `python3.11` for every Python program). UTF-8, cut to
/// 24 bytes. Returns `GOS_EINVALID` for a null pointer or text that is not UTF-8.
///
/// # Safety
/// `name` is a NUL-terminated string, or null.
#[no_mangle]
pub unsafe extern "C" fn gos_set_client_name(name: *const c_char) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let name = unsafe { text(name, "name")? };
        gos_bus_client::set_client_name(name);
        Ok(GOS_OK)
    })
}

/// An open ring.
pub struct GosRing {
    ring: Ring,
}

/// What a ring is.
#[repr(C)]
pub struct GosRingInfo {
    /// Number of slots.
    pub slot_count: u32,
    /// Largest payload.
    pub slot_size: u32,
    /// 1 broadcast, 2 work queue.
    pub mode: u32,
    /// 1 block, 2 overwrite-oldest.
    pub policy: u32,
    /// Fingerprint of the layout the ring carries.
    pub layout_fingerprint: u64,
    /// 1 when one publisher at a time.
    pub single_producer: u32,
    /// Padding.
    pub reserved: u32,
}

/// Opens ring `ring` of bus `bus`. With `need_broker` non-zero the bus must have a broker
/// (`GOS_EBUS_NOT_RUNNING` otherwise); with 0 the ring may have been made by hand.
///
/// # Safety
/// `bus` and `ring` are NUL-terminated strings; `out` is valid for one write.
#[no_mangle]
pub unsafe extern "C" fn gos_ring_open(
    bus: *const c_char,
    ring: *const c_char,
    need_broker: i32,
    out: *mut *mut GosRing,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let (bus, ring) = unsafe { (text(bus, "bus")?, text(ring, "ring")?) };
        if out.is_null() {
            return Err(invalid("out is a null pointer"));
        }
        let b = if need_broker != 0 {
            Bus::attach(bus)?
        } else {
            Bus::standalone(bus)?
        };
        let handle = Box::new(GosRing {
            ring: b.open_ring(ring)?,
        });
        // SAFETY: `out` is non-null and valid for a write (caller's contract).
        unsafe { *out = Box::into_raw(handle) };
        Ok(GOS_OK)
    })
}

/// Describes an open ring.
///
/// # Safety
/// `ring` comes from `gos_ring_open` and is not closed; `out` is valid for one write.
#[no_mangle]
pub unsafe extern "C" fn gos_ring_info(ring: *const GosRing, out: *mut GosRingInfo) -> i32 {
    guard(|| {
        // SAFETY: a live handle from gos_ring_open, or null (checked).
        let r = unsafe { ring.as_ref() }.ok_or_else(|| invalid("ring is a null pointer"))?;
        if out.is_null() {
            return Err(invalid("out is a null pointer"));
        }
        let g = r.ring.segment().geometry();
        let info = GosRingInfo {
            slot_count: g.slot_count,
            slot_size: g.slot_size,
            mode: g.mode.code(),
            policy: g.policy.code(),
            layout_fingerprint: g.layout_fingerprint,
            single_producer: g.single_producer as u32,
            reserved: 0,
        };
        // SAFETY: non-null and valid for a write (caller's contract).
        unsafe { out.write(info) };
        Ok(GOS_OK)
    })
}

/// Closes a ring handle (publishers and subscribers made from it stay usable).
///
/// # Safety
/// `ring` comes from `gos_ring_open` and is closed once, or is null.
#[no_mangle]
pub unsafe extern "C" fn gos_ring_close(ring: *mut GosRing) {
    if !ring.is_null() {
        // SAFETY: made by Box::into_raw in gos_ring_open, closed once.
        drop(unsafe { Box::from_raw(ring) });
    }
}

/// A publisher.
pub struct GosPublisher {
    p: Publisher<Bytes>,
}

/// A slot loaned by `gos_publisher_loan`.
#[repr(C)]
pub struct GosLoan {
    /// The payload: `capacity` writable bytes in shared memory, until commit or abandon.
    pub ptr: *mut u8,
    /// Slot size.
    pub capacity: u64,
    /// Sequence number.
    pub seq: u64,
}

/// Makes a publisher on `ring`.
///
/// # Safety
/// `ring` is a live handle; `out` is valid for one write.
#[no_mangle]
pub unsafe extern "C" fn gos_publisher_new(
    ring: *const GosRing,
    out: *mut *mut GosPublisher,
) -> i32 {
    guard(|| {
        // SAFETY: a live handle, or null (checked).
        let r = unsafe { ring.as_ref() }.ok_or_else(|| invalid("ring is a null pointer"))?;
        if out.is_null() {
            return Err(invalid("out is a null pointer"));
        }
        let handle = Box::new(GosPublisher {
            p: r.ring.publisher::<Bytes>()?,
        });
        // SAFETY: non-null and valid for a write.
        unsafe { *out = Box::into_raw(handle) };
        Ok(GOS_OK)
    })
}

/// Loans the next slot, waiting for space up to `timeout_ns` (negative: forever; 0: do not
/// wait, `GOS_TIMEOUT` when full).
///
/// # Safety
/// `publisher` is a live handle; `out` is valid for one write.
#[no_mangle]
pub unsafe extern "C" fn gos_publisher_loan(
    publisher: *mut GosPublisher,
    timeout_ns: i64,
    out: *mut GosLoan,
) -> i32 {
    guard(|| {
        // SAFETY: a live handle used by one thread at a time, or null (checked).
        let p =
            unsafe { publisher.as_mut() }.ok_or_else(|| invalid("publisher is a null pointer"))?;
        if out.is_null() {
            return Err(invalid("out is a null pointer"));
        }
        let loan = p.p.loan_raw(timeout(timeout_ns))?;
        // SAFETY: non-null and valid for a write.
        unsafe {
            out.write(GosLoan {
                ptr: loan.ptr,
                capacity: loan.capacity as u64,
                seq: loan.seq,
            })
        };
        Ok(GOS_OK)
    })
}

/// Publishes the outstanding loan with `len` payload bytes.
///
/// # Safety
/// `publisher` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn gos_publisher_commit(publisher: *mut GosPublisher, len: u64) -> i32 {
    guard(|| {
        // SAFETY: a live handle, or null (checked).
        let p =
            unsafe { publisher.as_mut() }.ok_or_else(|| invalid("publisher is a null pointer"))?;
        p.p.commit_raw(usize::try_from(len).map_err(|_| invalid("len is too large"))?)?;
        Ok(GOS_OK)
    })
}

/// Gives the outstanding loan back unpublished.
///
/// # Safety
/// `publisher` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn gos_publisher_abandon(publisher: *mut GosPublisher) -> i32 {
    guard(|| {
        // SAFETY: a live handle, or null (checked).
        let p =
            unsafe { publisher.as_mut() }.ok_or_else(|| invalid("publisher is a null pointer"))?;
        p.p.abandon_raw()?;
        Ok(GOS_OK)
    })
}

/// Frees a publisher (an outstanding loan is abandoned).
///
/// # Safety
/// `publisher` comes from `gos_publisher_new` and is freed once, or is null.
#[no_mangle]
pub unsafe extern "C" fn gos_publisher_free(publisher: *mut GosPublisher) {
    if !publisher.is_null() {
        // SAFETY: made by Box::into_raw, freed once.
        drop(unsafe { Box::from_raw(publisher) });
    }
}

/// A subscriber (a competing worker on a work queue).
pub struct GosSubscriber {
    s: Subscriber<Bytes>,
    /// An error `gos_subscriber_recv_many` met after it had copied messages out: returned,
    /// by the next receive, after those messages were handed over.
    deferred: std::cell::Cell<Option<Error>>,
}

/// A message received by `gos_subscriber_recv`.
#[repr(C)]
pub struct GosMessage {
    /// The payload: `len` bytes in shared memory, readable until release.
    pub ptr: *const u8,
    /// Payload length.
    pub len: u64,
    /// Sequence number.
    pub seq: u64,
    /// Work queue: times handed to a worker, this time included.
    pub deliveries: u32,
    /// Padding.
    pub reserved: u32,
}

/// Makes a subscriber on `ring`. `wait`: 0 spin then block (default), 1 busy-poll, 2 block.
///
/// # Safety
/// `ring` is a live handle; `out` is valid for one write.
#[no_mangle]
pub unsafe extern "C" fn gos_subscriber_new(
    ring: *const GosRing,
    wait: i32,
    out: *mut *mut GosSubscriber,
) -> i32 {
    guard(|| {
        // SAFETY: a live handle, or null (checked).
        let r = unsafe { ring.as_ref() }.ok_or_else(|| invalid("ring is a null pointer"))?;
        if out.is_null() {
            return Err(invalid("out is a null pointer"));
        }
        let s = r.ring.subscriber::<Bytes>()?;
        s.set_wait_strategy(match wait {
            1 => WaitStrategy::BusyPoll,
            2 => WaitStrategy::Block,
            _ => WaitStrategy::default(),
        });
        // SAFETY: non-null and valid for a write.
        unsafe {
            *out = Box::into_raw(Box::new(GosSubscriber {
                s,
                deferred: std::cell::Cell::new(None),
            }))
        };
        Ok(GOS_OK)
    })
}

/// Waits up to `timeout_ns` (negative: forever; 0: do not wait) for the next message,
/// releasing the previous one first if it is still held. The message stays readable, in
/// place, until `gos_subscriber_release` or the next receive.
///
/// # Safety
/// `subscriber` is a live handle; `out` is valid for one write.
#[no_mangle]
pub unsafe extern "C" fn gos_subscriber_recv(
    subscriber: *mut GosSubscriber,
    timeout_ns: i64,
    out: *mut GosMessage,
) -> i32 {
    guard(|| {
        // SAFETY: a live handle, or null (checked).
        let s = unsafe { subscriber.as_ref() }
            .ok_or_else(|| invalid("subscriber is a null pointer"))?;
        if out.is_null() {
            return Err(invalid("out is a null pointer"));
        }
        // A reap while the previous message was held is reported by the receive below.
        let _ = s.s.release_raw();
        if let Some(e) = s.deferred.take() {
            return Err(e);
        }
        let m = s.s.recv_raw(timeout(timeout_ns))?;
        // SAFETY: non-null and valid for a write.
        unsafe {
            out.write(GosMessage {
                ptr: m.ptr,
                len: m.len as u64,
                seq: m.seq,
                deliveries: m.deliveries,
                reserved: 0,
            })
        };
        Ok(GOS_OK)
    })
}

/// Receives up to `max` messages in one call, copying each into `buf` (`cap` bytes) one after
/// another and its length into `lens[i]`; waits up to `timeout_ns` for the first only. Stops
/// early when fewer than `slot_size` bytes of `buf` are left. Writes the number received to
/// `count` (0 on timeout, with `GOS_OK`). For many small messages at the cost of one call.
///
/// # Safety
/// `subscriber` is a live handle; `buf` is valid for `cap` bytes of writes, `lens` for `max`
/// u32 writes, `count` for one.
#[no_mangle]
pub unsafe extern "C" fn gos_subscriber_recv_many(
    subscriber: *mut GosSubscriber,
    max: u32,
    timeout_ns: i64,
    buf: *mut u8,
    cap: u64,
    lens: *mut u32,
    count: *mut u32,
) -> i32 {
    // SAFETY: the caller's contract, as `gos_subscriber_recv_copies`'s with no `seqs`.
    unsafe {
        gos_subscriber_recv_copies(
            subscriber,
            max,
            timeout_ns,
            buf,
            cap,
            lens,
            std::ptr::null_mut(),
            count,
        )
    }
}

/// `gos_subscriber_recv_many` that also writes each message's sequence number to `seqs[i]`
/// when `seqs` is not null: what a binding needs to hand the copies out one by one as
/// messages (the Python client's `recv` on rings of small slots).
///
/// # Safety
/// As `gos_subscriber_recv_many`; `seqs` is null or valid for `max` u64 writes.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gos_subscriber_recv_copies(
    subscriber: *mut GosSubscriber,
    max: u32,
    timeout_ns: i64,
    buf: *mut u8,
    cap: u64,
    lens: *mut u32,
    seqs: *mut u64,
    count: *mut u32,
) -> i32 {
    guard(|| {
        // SAFETY: a live handle, or null (checked).
        let s = unsafe { subscriber.as_ref() }
            .ok_or_else(|| invalid("subscriber is a null pointer"))?;
        if buf.is_null() || lens.is_null() || count.is_null() {
            return Err(invalid("an out pointer is null"));
        }
        let _ = s.s.release_raw();
        if let Some(e) = s.deferred.take() {
            return Err(e);
        }
        let slot = s.s.ring().segment().geometry().slot_size as u64;
        let (mut used, mut n) = (0u64, 0u32);
        let mut wait = timeout(timeout_ns);
        while n < max && cap - used >= slot {
            let m = match s.s.recv_raw(wait) {
                Ok(m) => m,
                Err(Error::Timeout(_)) => break,
                // Messages already copied out were released: they are the caller's now, so
                // hand them over; the error comes back on the next call.
                Err(e) if n > 0 => {
                    s.deferred.set(Some(e));
                    break;
                }
                Err(e) => return Err(e),
            };
            // SAFETY: `m.len` <= slot_size <= cap - used bytes fit at buf + used (checked
            // above); the view is valid until release_raw; `lens` has room for `max` > n.
            unsafe {
                std::ptr::copy_nonoverlapping(m.ptr, buf.add(used as usize), m.len);
                *lens.add(n as usize) = m.len as u32;
                if !seqs.is_null() {
                    // SAFETY: `seqs` has room for `max` > n (caller's contract).
                    *seqs.add(n as usize) = m.seq;
                }
            }
            used += m.len as u64;
            n += 1;
            wait = Some(Duration::ZERO);
            // Copied out already: a reap noticed here is the next call's to report.
            if let Err(e) = s.s.release_raw() {
                s.deferred.set(Some(e));
                break;
            }
        }
        // SAFETY: non-null and valid for a write.
        unsafe { count.write(n) };
        Ok(GOS_OK)
    })
}

/// Copies `len` bytes from `data` into a loaned slot and publishes it, in one call.
///
/// # Safety
/// `publisher` is a live handle; `data` is valid for `len` bytes of reads.
#[no_mangle]
pub unsafe extern "C" fn gos_publisher_send(
    publisher: *mut GosPublisher,
    data: *const u8,
    len: u64,
    timeout_ns: i64,
) -> i32 {
    guard(|| {
        // SAFETY: a live handle, or null (checked).
        let p =
            unsafe { publisher.as_mut() }.ok_or_else(|| invalid("publisher is a null pointer"))?;
        if data.is_null() && len > 0 {
            return Err(invalid("data is a null pointer"));
        }
        let len = usize::try_from(len).map_err(|_| invalid("len is too large"))?;
        if len > p.p.slot_size() {
            return Err(Error::PayloadTooLarge {
                ring: p.p.ring().name().into(),
                len,
                slot_size: p.p.slot_size() as u32,
            });
        }
        let loan = p.p.loan_raw(timeout(timeout_ns))?;
        // SAFETY: `len` <= slot_size bytes: readable at `data` (caller) and writable in the
        // loaned slot until commit.
        unsafe { std::ptr::copy_nonoverlapping(data, loan.ptr, len) };
        p.p.commit_raw(len)?;
        Ok(GOS_OK)
    })
}

/// Publishes `count` messages in batches (one claim and one commit per batch on a
/// single-producer ring): the messages lie back to back in `data`, message `i` being
/// `lens[i]` bytes. Waits for space at most `timeout_ns` in all (negative: as long as it
/// takes). Writes how many were published to `*sent`: all of them with `GOS_OK`, fewer with
/// `GOS_TIMEOUT` when the wait ran out (0 on any error). `lens` must be aligned for u32.
/// A message over the slot size is refused
/// (`GOS_EINVALID`) before any is published.
///
/// # Safety
/// `publisher` is a live handle; `lens` is valid for `count` reads; `data` for the sum of
/// `lens` bytes of reads; `sent` for one write.
#[no_mangle]
pub unsafe extern "C" fn gos_publisher_send_many(
    publisher: *mut GosPublisher,
    data: *const u8,
    lens: *const u32,
    count: u32,
    timeout_ns: i64,
    sent: *mut u32,
) -> i32 {
    guard(|| {
        // SAFETY: a live handle, or null (checked).
        let p =
            unsafe { publisher.as_mut() }.ok_or_else(|| invalid("publisher is a null pointer"))?;
        if sent.is_null() || (count > 0 && lens.is_null()) {
            return Err(invalid("lens or sent is a null pointer"));
        }
        // SAFETY: non-null (checked) and valid for a write; 0 until something is published.
        unsafe { sent.write(0) };
        let lens: &[u32] = if count == 0 {
            &[]
        } else {
            // SAFETY: `lens` is non-null and valid for `count` reads (caller's contract).
            unsafe { std::slice::from_raw_parts(lens, count as usize) }
        };
        let total: u64 = lens.iter().map(|&l| l as u64).sum();
        if data.is_null() && total > 0 {
            return Err(invalid("data is a null pointer"));
        }
        let total = usize::try_from(total).map_err(|_| invalid("the messages are too large"))?;
        let bytes: &[u8] = if total == 0 {
            &[]
        } else {
            // SAFETY: `data` is non-null and valid for `total` bytes of reads (caller's contract).
            unsafe { std::slice::from_raw_parts(data, total) }
        };
        let mut messages = Vec::with_capacity(lens.len());
        let mut at = 0;
        for &l in lens {
            messages.push(&bytes[at..at + l as usize]);
            at += l as usize;
        }
        let n = p.p.send_many(&messages, timeout(timeout_ns))?;
        // SAFETY: non-null (checked) and valid for a write.
        unsafe { sent.write(n as u32) };
        Ok(if n == messages.len() {
            GOS_OK
        } else {
            GOS_TIMEOUT
        })
    })
}

/// Releases the message returned by the last `gos_subscriber_recv`. `GOS_EREAPED` when the
/// broker reaped this subscriber while it held the message (the view stayed intact until now).
///
/// # Safety
/// `subscriber` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn gos_subscriber_release(subscriber: *mut GosSubscriber) -> i32 {
    guard(|| {
        // SAFETY: a live handle, or null (checked).
        let s = unsafe { subscriber.as_ref() }
            .ok_or_else(|| invalid("subscriber is a null pointer"))?;
        s.s.release_raw()?;
        Ok(GOS_OK)
    })
}

/// Messages received and messages lost to overwrite-oldest, so far.
///
/// # Safety
/// `subscriber` is a live handle; `received` and `dropped` are valid for one write each.
#[no_mangle]
pub unsafe extern "C" fn gos_subscriber_stats(
    subscriber: *const GosSubscriber,
    received: *mut u64,
    dropped: *mut u64,
) -> i32 {
    guard(|| {
        // SAFETY: a live handle, or null (checked).
        let s = unsafe { subscriber.as_ref() }
            .ok_or_else(|| invalid("subscriber is a null pointer"))?;
        if received.is_null() || dropped.is_null() {
            return Err(invalid("an out pointer is null"));
        }
        // SAFETY: non-null and valid for a write each.
        unsafe {
            received.write(s.s.received());
            dropped.write(s.s.dropped());
        }
        Ok(GOS_OK)
    })
}

/// Adds to the handler counters shown by `gos-bus monitor`: `failed` messages whose handling
/// failed, `work_ns` nanoseconds spent handling messages.
///
/// # Safety
/// `subscriber` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn gos_subscriber_report(
    subscriber: *const GosSubscriber,
    failed: u64,
    work_ns: u64,
) -> i32 {
    guard(|| {
        // SAFETY: a live handle, or null (checked).
        let s = unsafe { subscriber.as_ref() }
            .ok_or_else(|| invalid("subscriber is a null pointer"))?;
        s.s.report(failed, Duration::from_nanos(work_ns));
        Ok(GOS_OK)
    })
}

/// Frees a subscriber (a held message is released).
///
/// # Safety
/// `subscriber` comes from `gos_subscriber_new` and is freed once, or is null.
#[no_mangle]
pub unsafe extern "C" fn gos_subscriber_free(subscriber: *mut GosSubscriber) {
    if !subscriber.is_null() {
        // SAFETY: made by Box::into_raw, freed once.
        drop(unsafe { Box::from_raw(subscriber) });
    }
}

/// A publisher of PixelRTS textures (an `rts.textures` ring: layout `RtsTexture`).
pub struct GosRtsPublisher {
    p: Publisher<gos_layouts::RtsTexture>,
}

/// Makes a texture publisher on `ring` (its layout must be `RtsTexture`).
///
/// # Safety
/// `ring` is a live handle; `out` is valid for one write.
#[no_mangle]
pub unsafe extern "C" fn gos_rts_publisher_new(
    ring: *const GosRing,
    out: *mut *mut GosRtsPublisher,
) -> i32 {
    guard(|| {
        // SAFETY: a live handle, or null (checked).
        let r = unsafe { ring.as_ref() }.ok_or_else(|| invalid("ring is a null pointer"))?;
        if out.is_null() {
            return Err(invalid("out is a null pointer"));
        }
        let p = r.ring.publisher::<gos_layouts::RtsTexture>()?;
        // SAFETY: non-null and valid for a write.
        unsafe { *out = Box::into_raw(Box::new(GosRtsPublisher { p })) };
        Ok(GOS_OK)
    })
}

/// Decodes the PixelRTS file at `path` (PNG, metadata, Hilbert walk, SHA-256 check) and
/// publishes it: the `RtsTexture` record, the pixels, the metadata JSON. Writes its texture
/// id, data size and SHA-256 (32 bytes) to the out pointers that are not null. Waits for a
/// free slot up to `timeout_ns` (negative: forever), then returns `GOS_TIMEOUT` with nothing
/// published. A file that is not usable PixelRTS fails with `GOS_EINVALID` and the reason.
///
/// # Safety
/// `publisher` is a live handle; `path` is a NUL-terminated string; `texture_id` and
/// `data_size` are null or valid for one write; `sha256` is null or valid for 32 bytes.
#[no_mangle]
pub unsafe extern "C" fn gos_rts_publish(
    publisher: *mut GosRtsPublisher,
    path: *const c_char,
    timeout_ns: i64,
    texture_id: *mut u64,
    data_size: *mut u64,
    sha256: *mut u8,
) -> i32 {
    guard(|| {
        // SAFETY: a live handle, or null (checked).
        let p =
            unsafe { publisher.as_mut() }.ok_or_else(|| invalid("publisher is a null pointer"))?;
        // SAFETY: forwarded contract.
        let path = unsafe { text(path, "path")? };
        let d = gos_bus_client::rts::publish_file_within(
            &mut p.p,
            std::path::Path::new(path),
            timeout(timeout_ns),
        )?;
        // SAFETY: each pointer is null or valid for its write (caller's contract).
        unsafe {
            if !texture_id.is_null() {
                texture_id.write(d.texture_id);
            }
            if !data_size.is_null() {
                data_size.write(d.data_size);
            }
            if !sha256.is_null() {
                std::ptr::copy_nonoverlapping(d.sha256.as_ptr(), sha256, 32);
            }
        }
        Ok(GOS_OK)
    })
}

/// The Hybrid DNA that the PixelRTS file at `path` carries, as JSON: `null` when it carries
/// none, else `{"code", "language", "carrier", "texture_id"}` (`carrier`: "RTS_Logic tEXt",
/// "RTS_Logic iTXt", "RTS_Logic zTXt" or "Hybrid-DNA-v1"; `texture_id`: the id its texture
/// is published under). Copies it NUL-terminated into `buf` when `len` is enough and writes
/// the length it needs (NUL included) to `need`. A file that cannot be read, or whose carrier
/// is malformed, fails with the reason.
///
/// # Safety
/// `path` is a NUL-terminated string; `buf` is null or valid for `len` bytes; `need` is valid
/// for one write.
#[no_mangle]
pub unsafe extern "C" fn gos_rts_logic_json(
    path: *const c_char,
    buf: *mut c_char,
    len: usize,
    need: *mut usize,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let path = std::path::Path::new(unsafe { text(path, "path")? });
        if need.is_null() {
            return Err(invalid("need is a null pointer"));
        }
        let json = match gos_bus_client::rts::logic_of(path)? {
            None => serde_json::Value::Null,
            Some(l) => serde_json::json!({
                "code": l.code,
                "language": l.language,
                "carrier": l.carrier,
                "texture_id": gos_bus_client::rts::texture_id(path),
            }),
        };
        // SAFETY: forwarded contract; `need` is non-null (checked) and valid for a write.
        unsafe { need.write(copy_out(&json.to_string(), buf, len)) };
        Ok(GOS_OK)
    })
}

/// A PixelRTS file loaded for a program (`RtsAsset` in Python): the decoded pixels and data,
/// and a JSON description.
pub struct GosRtsAsset {
    asset: gos_bus_client::rts::Asset,
    info: String,
    path: String,
}

/// Loads the PixelRTS file at `path` with the one loader (PNG, metadata from the chunk or a
/// sidecar, the rule that finds its data, hashes checked) and writes a handle to `out`. A file
/// that is not usable fails with `GOS_EINVALID` and the reason.
///
/// # Safety
/// `path` is a NUL-terminated string; `out` is valid for one write.
#[no_mangle]
pub unsafe extern "C" fn gos_rts_load(path: *const c_char, out: *mut *mut GosRtsAsset) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let path = std::path::Path::new(unsafe { text(path, "path")? });
        if out.is_null() {
            return Err(invalid("out is a null pointer"));
        }
        let asset = gos_bus_client::rts::load(path)?;
        let f = &asset.file;
        let logic = gos_bus_client::rts::logic_of(path).ok().flatten();
        let info = serde_json::json!({
            "width": f.side,
            "height": f.side,
            "hilbert_order": f.order,
            "encoding": f.encoding,
            "rule": f.rule.describe(),
            "has_logic": f.has_logic,
            "logic": logic.map(|l| serde_json::json!({
                "code": l.code, "language": l.language, "carrier": l.carrier,
            })),
            "texture_id": gos_bus_client::rts::texture_id(path),
            "sidecar": asset.sidecar.as_ref().map(|p| p.display().to_string()),
            "metadata": asset.metadata,
        })
        .to_string();
        let path = path.display().to_string();
        // SAFETY: non-null and valid for a write.
        unsafe { *out = Box::into_raw(Box::new(GosRtsAsset { asset, info, path })) };
        Ok(GOS_OK)
    })
}

/// The description of a loaded asset as JSON (`width`, `height`, `hilbert_order`,
/// `encoding`, `rule`, `has_logic`, `logic`, `texture_id`, `sidecar`, `metadata`): copied
/// NUL-terminated into `buf` when `len` is enough; returns the length it needs, NUL included
/// (0 for a null handle).
///
/// # Safety
/// `asset` is a live handle or null; `buf` is null or valid for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn gos_rts_asset_info(
    asset: *const GosRtsAsset,
    buf: *mut c_char,
    len: usize,
) -> usize {
    // SAFETY: a live handle, or null.
    match unsafe { asset.as_ref() } {
        // SAFETY: forwarded contract.
        Some(a) => unsafe { copy_out(&a.info, buf, len) },
        None => 0,
    }
}

/// Recovers a loaded asset's data by its rule and checks every hash its metadata states (the
/// first call does the work), then copies JSON of what it found (`data_size`, `sha256`,
/// `verified`, `segments`, `entropy`, and `wasm_module`: whether the data is a WebAssembly
/// module) NUL-terminated into `buf` when `len` is enough and
/// writes the length it needs to `need`. Data the pixels cannot hold, a hash that does not
/// match or data that does not inflate fails with `GOS_EINVALID` and the reason.
///
/// # Safety
/// `asset` is a live handle used by one thread at a time, or null; `buf` is null or valid for
/// `len` bytes; `need` is valid for one write.
#[no_mangle]
pub unsafe extern "C" fn gos_rts_asset_recover(
    asset: *mut GosRtsAsset,
    buf: *mut c_char,
    len: usize,
    need: *mut usize,
) -> i32 {
    guard(|| {
        // SAFETY: a live handle, or null (checked).
        let a = unsafe { asset.as_mut() }.ok_or_else(|| invalid("asset is a null pointer"))?;
        if need.is_null() {
            return Err(invalid("need is a null pointer"));
        }
        a.asset.file.recover_data().map_err(|e| Error::Rts {
            path: a.path.clone(),
            problem: e.to_string(),
        })?;
        let f = &a.asset.file;
        let json = serde_json::json!({
            "data_size": f.data.len(),
            "sha256": gos_bus_client::rts::hex(&f.sha256),
            "verified": f.verified,
            "segments": f.segments.iter().map(|s| serde_json::json!({
                "name": s.name, "start": s.start, "end": s.end, "verified": s.verified,
            })).collect::<Vec<_>>(),
            "entropy": f.entropy,
            "wasm_module": f.wasm_module().is_some(),
        })
        .to_string();
        // SAFETY: forwarded contract; `need` is non-null (checked).
        unsafe { need.write(copy_out(&json, buf, len)) };
        Ok(GOS_OK)
    })
}

/// Where a loaded asset's bytes are: `which` 0 for the RGBA8 pixels (row by row, `width *
/// height * 4` bytes), 1 for the decoded data (empty until `gos_rts_asset_recover`). They stay
/// valid until the handle is freed. Returns `GOS_EINVALID` for a null handle or pointer, or
/// another `which`.
///
/// # Safety
/// `asset` is a live handle or null; `ptr` and `len` are valid for one write each.
#[no_mangle]
pub unsafe extern "C" fn gos_rts_asset_bytes(
    asset: *const GosRtsAsset,
    which: u32,
    ptr: *mut *const u8,
    len: *mut u64,
) -> i32 {
    guard(|| {
        // SAFETY: a live handle, or null (checked).
        let a = unsafe { asset.as_ref() }.ok_or_else(|| invalid("asset is a null pointer"))?;
        if ptr.is_null() || len.is_null() {
            return Err(invalid("ptr or len is a null pointer"));
        }
        let bytes: &[u8] = match which {
            0 => &a.asset.file.pixels,
            1 => &a.asset.file.data,
            _ => return Err(invalid("which is 0 (pixels) or 1 (data)")),
        };
        // SAFETY: both non-null and valid for a write (checked, caller's contract).
        unsafe {
            ptr.write(bytes.as_ptr());
            len.write(bytes.len() as u64);
        }
        Ok(GOS_OK)
    })
}

/// Frees a loaded asset (its pixel and data views end with it).
///
/// # Safety
/// `asset` comes from `gos_rts_load` and is freed once, or is null.
#[no_mangle]
pub unsafe extern "C" fn gos_rts_asset_free(asset: *mut GosRtsAsset) {
    if !asset.is_null() {
        // SAFETY: made by Box::into_raw, freed once.
        drop(unsafe { Box::from_raw(asset) });
    }
}

/// The id a PixelRTS file at `path` is published under on `rts.textures` (FNV-1a 64 of its
/// canonical path); 0 when `path` is null or not UTF-8.
///
/// # Safety
/// `path` is null or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn gos_rts_texture_id(path: *const c_char) -> u64 {
    // SAFETY: forwarded contract.
    match unsafe { text(path, "path") } {
        Ok(p) => gos_bus_client::rts::texture_id(std::path::Path::new(p)),
        Err(_) => 0,
    }
}

/// Frees a texture publisher.
///
/// # Safety
/// `publisher` comes from `gos_rts_publisher_new` and is freed once, or is null.
#[no_mangle]
pub unsafe extern "C" fn gos_rts_publisher_free(publisher: *mut GosRtsPublisher) {
    if !publisher.is_null() {
        // SAFETY: made by Box::into_raw, freed once.
        drop(unsafe { Box::from_raw(publisher) });
    }
}

/// A terminal buffer (`gos_bus_client::terminal::Terminal`): text with ANSI escape sequences
/// in, terminal cells out (`TerminalCell`, the payload of a `PIXEL_CELLS` render frame).
pub struct GosTerminal {
    terminal: gos_bus_client::terminal::Terminal,
}

/// Makes an empty `columns` x `rows` terminal and writes a handle to `out`. A size outside
/// 1..=`TERMINAL_MAX_COLUMNS` columns by 1..=`TERMINAL_MAX_ROWS` rows (256 by 128) fails with
/// `GOS_EINVALID` and the reason. A handle is used by one thread at a time.
///
/// # Safety
/// `out` is valid for one write.
#[no_mangle]
pub unsafe extern "C" fn gos_terminal_new(
    columns: u32,
    rows: u32,
    out: *mut *mut GosTerminal,
) -> i32 {
    guard(|| {
        if out.is_null() {
            return Err(invalid("out is a null pointer"));
        }
        let terminal =
            gos_bus_client::terminal::Terminal::new(columns, rows).map_err(Error::Misuse)?;
        // SAFETY: non-null (checked) and valid for a write (caller's contract).
        unsafe { *out = Box::into_raw(Box::new(GosTerminal { terminal })) };
        Ok(GOS_OK)
    })
}

/// Writes `len` bytes of UTF-8 text with control characters and ANSI escape sequences to
/// the terminal (a sequence split across calls is completed by the next).
///
/// # Safety
/// `terminal` is a live handle used by one thread at a time (no other call on it runs
/// meanwhile), or null; `bytes` is valid for `len` bytes (or null when `len` is 0).
#[no_mangle]
pub unsafe extern "C" fn gos_terminal_write(
    terminal: *mut GosTerminal,
    bytes: *const u8,
    len: usize,
) -> i32 {
    guard(|| {
        // SAFETY: a live handle, or null (checked).
        let t =
            unsafe { terminal.as_mut() }.ok_or_else(|| invalid("terminal is a null pointer"))?;
        if len == 0 {
            return Ok(GOS_OK);
        }
        if bytes.is_null() {
            return Err(invalid("bytes is a null pointer"));
        }
        // SAFETY: non-null, valid for `len` bytes (caller's contract).
        t.terminal
            .write(unsafe { std::slice::from_raw_parts(bytes, len) });
        Ok(GOS_OK)
    })
}

/// Copies the terminal's cells (`columns * rows` `TerminalCell`s of 8 bytes, row by row, the
/// cursor's cell marked `CELL_ATTR_CURSOR`) into `buf` when `len` is enough; returns the
/// bytes it needs (0 for a null handle).
///
/// # Safety
/// `terminal` is a live handle or null, not written to (`gos_terminal_write`) or freed by
/// another thread during the call; `buf` is null or valid for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn gos_terminal_cells(
    terminal: *const GosTerminal,
    buf: *mut u8,
    len: usize,
) -> usize {
    // SAFETY: a live handle, or null.
    let Some(t) = (unsafe { terminal.as_ref() }) else {
        return 0;
    };
    let need = t.terminal.byte_len();
    if !buf.is_null() && len >= need {
        // SAFETY: non-null and valid for `len` >= `need` bytes (caller's contract).
        t.terminal
            .copy_cells(unsafe { std::slice::from_raw_parts_mut(buf, need) });
    }
    need
}

/// Writes the terminal's cursor (column, row, from 0) to `column` and `row`.
///
/// # Safety
/// `terminal` is a live handle or null, not written to or freed by another thread during the
/// call; `column` and `row` are valid for one write each.
#[no_mangle]
pub unsafe extern "C" fn gos_terminal_cursor(
    terminal: *const GosTerminal,
    column: *mut u32,
    row: *mut u32,
) -> i32 {
    guard(|| {
        // SAFETY: a live handle, or null (checked).
        let t =
            unsafe { terminal.as_ref() }.ok_or_else(|| invalid("terminal is a null pointer"))?;
        if column.is_null() || row.is_null() {
            return Err(invalid("column or row is a null pointer"));
        }
        let (c, r) = t.terminal.cursor();
        // SAFETY: both non-null and valid for a write (checked, caller's contract).
        unsafe {
            column.write(c);
            row.write(r);
        }
        Ok(GOS_OK)
    })
}

/// The terminal's characters, a line per row with trailing blanks cut: copied
/// NUL-terminated into `buf` when `len` is enough; returns the length it needs, NUL included
/// (0 for a null handle).
///
/// # Safety
/// `terminal` is a live handle or null, not written to or freed by another thread during the
/// call; `buf` is null or valid for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn gos_terminal_text(
    terminal: *const GosTerminal,
    buf: *mut c_char,
    len: usize,
) -> usize {
    // SAFETY: a live handle, or null.
    match unsafe { terminal.as_ref() } {
        // SAFETY: forwarded contract.
        Some(t) => unsafe { copy_out(&t.terminal.text(), buf, len) },
        None => 0,
    }
}

/// Frees a terminal.
///
/// # Safety
/// `terminal` comes from `gos_terminal_new` and is freed once, or is null.
#[no_mangle]
pub unsafe extern "C" fn gos_terminal_free(terminal: *mut GosTerminal) {
    if !terminal.is_null() {
        // SAFETY: made by Box::into_raw, freed once.
        drop(unsafe { Box::from_raw(terminal) });
    }
}
