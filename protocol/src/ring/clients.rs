//! The client table: every publisher, subscriber and worker holds one entry while attached.
//!
//! An entry is claimed by CAS `state: FREE -> CLAIMING`, filled, and activated with a SeqCst
//! store; it is freed with a Release store of `FREE`. The entry carries what crash recovery
//! needs (pid, process start time, heartbeat, claim generation).
//!
//! The subscriber join must not let a producer overwrite a message the new subscriber will
//! read. The subscriber stores its cursor `h` and activates (Release), issues a SeqCst fence
//! F_S, and re-reads `head` (Acquire) until it reads `h` again. A producer about to overwrite
//! sequence `x >= h` must have claimed `x + capacity`, so the minimum cursor M of its last
//! scan exceeds `h`; M is at most the `head` value `v > h` it loaded before that scan, whose
//! scan starts with a SeqCst fence F_P. The write of `v` comes after `h` in `head`'s
//! modification order and (claims are AcqRel, the load Acquire) happens before F_P, while the
//! subscriber's last read of `h` follows F_S: so F_S precedes F_P in the SeqCst order
//! (C++20 [atomics.order]), and the scan after F_P sees the subscriber active with a cursor of
//! at least `h` (the Release activation), making M <= h: a contradiction. Checked by loom
//! (`loom_subscriber_join_races_producer`).

use super::RingRef;
use crate::sync::{fence, Ordering::*};
use gos_layouts::segment::{CLIENT_ACTIVE, CLIENT_CLAIMING, CLIENT_FREE, ROLE_SUBSCRIBER};

/// Identity written into a claimed entry.
#[derive(Debug, Clone, Copy)]
pub struct Identity {
    /// 1 publisher, 2 subscriber, 3 worker.
    pub role: u32,
    /// Process id.
    pub pid: u32,
    /// Process start time (clock ticks since boot).
    pub start_time: u64,
    /// Heartbeat value to start with.
    pub now_ns: u64,
    /// Name, NUL-padded.
    pub name: [u8; 24],
}

/// Claims a free entry and activates it; for a subscriber, runs the join protocol.
/// Returns the entry index, or `None` when the table is full.
pub fn claim(ring: &RingRef<'_>, id: &Identity) -> Option<usize> {
    for i in 0..ring.clients.len() {
        let e = ring.clients.get(i);
        if e.state.load(Relaxed) != CLIENT_FREE {
            continue;
        }
        if e.state
            .compare_exchange(CLIENT_FREE, CLIENT_CLAIMING, Acquire, Relaxed)
            .is_err()
        {
            continue;
        }
        e.generation.fetch_add(1, Relaxed);
        e.role.store(id.role, Relaxed);
        e.pid.store(id.pid, Relaxed);
        e.start_time.store(id.start_time, Relaxed);
        e.heartbeat_ns.store(id.now_ns, Relaxed);
        e.drops.store(0, Relaxed);
        e.count.store(0, Relaxed);
        e.bytes.store(0, Relaxed);
        e.claimed.store(0, Relaxed);
        e.flags.store(0, Relaxed);
        e.failed.store(0, Relaxed);
        e.work_ns.store(0, Relaxed);
        e.gpu_ns.store(0, Relaxed);
        for (w, chunk) in e.name.iter().zip(id.name.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            w.store(u64::from_le_bytes(b), Relaxed);
        }
        if id.role == ROLE_SUBSCRIBER {
            join(ring, i);
        } else {
            e.cursor.store(0, Relaxed);
            // SeqCst (Release at least): readers that see ACTIVE see the fields above.
            e.state.store(CLIENT_ACTIVE, Release);
        }
        return Some(i);
    }
    None
}

/// Activates subscriber entry `i` at the current head (see the module docs for why it loops).
fn join(ring: &RingRef<'_>, i: usize) {
    let e = ring.clients.get(i);
    let mut h = ring.ctl.head.load(Acquire);
    e.cursor.store(h, Relaxed);
    // Release: a scan that sees ACTIVE (Acquire) sees the cursor above.
    e.state.store(CLIENT_ACTIVE, Release);
    loop {
        // SeqCst fence F_S: pairs with the fence that starts every producer scan.
        fence(SeqCst);
        // Acquire: pairs with the producers' AcqRel claims.
        let now = ring.ctl.head.load(Acquire);
        if now == h {
            return;
        }
        // A producer may have moved our cursor already (overwrite-oldest): then it saw us.
        match e.cursor.compare_exchange(h, now, AcqRel, Acquire) {
            Ok(_) => h = now,
            Err(_) => return,
        }
    }
}

/// Frees entry `i`.
pub fn free(ring: &RingRef<'_>, i: usize) {
    // Release: everything this client did happens before another client claims the entry.
    ring.clients.get(i).state.store(CLIENT_FREE, Release);
}

/// The subscriber cursor of entry `i` (without the hold bit).
#[inline]
pub fn cursor(ring: &RingRef<'_>, i: usize) -> u64 {
    ring.clients.get(i).cursor.load(Acquire) & !gos_layouts::segment::CURSOR_HOLD
}

/// Single-producer ring: makes entry `i` the one publisher. Returns the entry index of the
/// current holder when another publisher has it.
pub fn take_producer_token(ring: &RingRef<'_>, i: usize) -> Result<(), usize> {
    // AcqRel: acquires the previous holder's release (its last claims of `head`), and
    // publishes ours.
    match ring
        .ctl
        .producer_token
        .compare_exchange(0, i as u32 + 1, AcqRel, Acquire)
    {
        Ok(_) => Ok(()),
        Err(holder) => Err(holder.saturating_sub(1) as usize),
    }
}

/// Gives the single-producer token back (entry `i` must hold it).
pub fn release_producer_token(ring: &RingRef<'_>, i: usize) {
    // Release: pairs with the AcqRel CAS of the next holder.
    let _ = ring
        .ctl
        .producer_token
        .compare_exchange(i as u32 + 1, 0, Release, Relaxed);
}
