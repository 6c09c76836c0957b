//! The machine's limits: a ping-pong on two atomic counters, the same ping-pong sleeping in
//! the kernel (FUTEX_WAIT / FUTEX_WAKE), and an SPSC copy ring, all in a shared-memory file,
//! with nothing else on the path.

use gos_bus_protocol::wait::{futex_wait, wake_all};
use memmap2::MmapRaw;
use std::fs::OpenOptions;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};

/// A shared file in `/dev/shm` for the bare references.
pub struct Shm {
    map: MmapRaw,
    path: String,
}

impl Shm {
    /// Creates (or opens, for the child) `/dev/shm/NAME` of `len` bytes.
    pub fn open(name: &str, len: usize, create: bool) -> Shm {
        let path = format!("/dev/shm/{name}");
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(&path)
            .expect("open bare shm file");
        if create {
            f.set_len(len as u64).expect("size bare shm file");
        }
        let map = memmap2::MmapOptions::new()
            .len(len)
            .map_raw(&f)
            .expect("map bare shm file");
        Shm { map, path }
    }

    fn word(&self, offset: usize) -> &AtomicU64 {
        assert!(offset + 8 <= self.map.len() && offset.is_multiple_of(8));
        // SAFETY: in bounds and aligned (checked above, page-aligned base); the file is only
        // ever accessed through atomics at these offsets.
        unsafe { &*self.map.as_ptr().add(offset).cast::<AtomicU64>() }
    }

    fn word32(&self, offset: usize) -> &AtomicU32 {
        assert!(offset + 4 <= self.map.len() && offset.is_multiple_of(4));
        // SAFETY: in bounds and aligned (checked above, page-aligned base); the file is only
        // ever accessed through atomics at these offsets.
        unsafe { &*self.map.as_ptr().add(offset).cast::<AtomicU32>() }
    }

    fn ptr(&self, offset: usize) -> *mut u8 {
        assert!(offset <= self.map.len());
        // SAFETY: in bounds (checked above).
        unsafe { self.map.as_mut_ptr().add(offset) }
    }

    /// Removes the file.
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Ping side: `n` round trips; returns each one's duration in ns.
pub fn ping(shm: &Shm, n: u64) -> Vec<u64> {
    let (ping, pong) = (shm.word(0), shm.word(128));
    let mut out = Vec::with_capacity(n as usize);
    for i in 1..=n {
        let t = std::time::Instant::now();
        ping.store(i, Release);
        while pong.load(Acquire) != i {
            std::hint::spin_loop();
        }
        out.push(t.elapsed().as_nanos() as u64);
    }
    out
}

/// Pong side: answers `n` pings.
pub fn pong(shm: &Shm, n: u64) {
    let (ping, pong) = (shm.word(0), shm.word(128));
    for i in 1..=n {
        while ping.load(Acquire) != i {
            std::hint::spin_loop();
        }
        pong.store(i, Release);
    }
}

/// Sleeps in the kernel until `word` holds `want` (it only counts up).
fn sleep_until(word: &AtomicU32, want: u32) {
    loop {
        let v = word.load(Acquire);
        if v == want {
            return;
        }
        futex_wait(word, v, None);
    }
}

/// Ping side of the futex ping-pong: `n` round trips in which each side sleeps in FUTEX_WAIT
/// until the other's counter moves and is woken by FUTEX_WAKE (the kernel's own cost of a
/// blocking hand-off each way); returns each one's duration in ns.
pub fn futex_ping(shm: &Shm, n: u64) -> Vec<u64> {
    let (ping, pong) = (shm.word32(0), shm.word32(128));
    let mut out = Vec::with_capacity(n as usize);
    for i in 1..=n as u32 {
        let t = std::time::Instant::now();
        ping.store(i, Release);
        wake_all(ping);
        sleep_until(pong, i);
        out.push(t.elapsed().as_nanos() as u64);
    }
    out
}

/// Pong side of the futex ping-pong: answers `n` pings.
pub fn futex_pong(shm: &Shm, n: u64) {
    let (ping, pong) = (shm.word32(0), shm.word32(128));
    for i in 1..=n as u32 {
        sleep_until(ping, i);
        pong.store(i, Release);
        wake_all(pong);
    }
}

/// Bytes needed for a copy ring of `slots` messages of `size` bytes.
pub fn ring_len(slots: usize, size: usize) -> usize {
    256 + slots * size.next_multiple_of(64)
}

/// Producer of the SPSC copy ring (rtrb-style: each side caches the other's index).
pub fn produce(shm: &Shm, slots: usize, size: usize, n: u64, src: &[u8]) {
    let (head, tail) = (shm.word(0), shm.word(128));
    let stride = size.next_multiple_of(64);
    let mut cached_tail = 0u64;
    for i in 0..n {
        while i - cached_tail >= slots as u64 {
            cached_tail = tail.load(Acquire);
            std::hint::spin_loop();
        }
        let p = shm.ptr(256 + (i as usize % slots) * stride);
        // SAFETY: the slot is inside the mapping and owned by the producer until `head`
        // passes it; `src` has `size` bytes.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), p, size) };
        head.store(i + 1, Release);
    }
}

/// Consumer of the SPSC copy ring: copies each message out; returns ns from first to last.
pub fn consume(shm: &Shm, slots: usize, size: usize, n: u64) -> u64 {
    let (head, tail) = (shm.word(0), shm.word(128));
    let stride = size.next_multiple_of(64);
    let mut dst = vec![0u8; size];
    let mut cached_head = 0u64;
    let mut start = None;
    let mut sink = 0u64;
    for i in 0..n {
        while cached_head <= i {
            cached_head = head.load(Acquire);
            std::hint::spin_loop();
        }
        start.get_or_insert_with(std::time::Instant::now);
        let p = shm.ptr(256 + (i as usize % slots) * stride);
        // SAFETY: the slot is inside the mapping and owned by the consumer until `tail`
        // passes it.
        unsafe { std::ptr::copy_nonoverlapping(p, dst.as_mut_ptr(), size) };
        sink ^= dst[0] as u64 ^ dst[size - 1] as u64;
        tail.store(i + 1, Release);
    }
    std::hint::black_box(sink);
    start.map_or(0, |s| s.elapsed().as_nanos() as u64)
}
