//! gos-bus itself: ping-pong over two rings and one-way throughput over one, through the
//! typed client's loan API.

use gos_bus_client::{Bus, Bytes, Mode, Policy, Publisher, RingConfig, Subscriber, WaitStrategy};
use std::time::Instant;

/// Creates the rings a case needs.
pub fn create(bus: &Bus, ring: &str, slots: u32, size: u32, single_producer: bool) {
    let cfg = RingConfig {
        single_producer,
        mode: Mode::Broadcast,
        policy: Policy::Block,
        slot_count: slots,
        slot_size: size,
        max_clients: 4,
        ..RingConfig::default()
    };
    bus.create_ring(ring, &cfg).expect("create bench ring");
}

fn send(p: &mut Publisher<Bytes>, len: usize, seq: u64, fill: Option<&[u8]>) {
    let mut loan = p.loan().expect("loan");
    loan.set_len(len).expect("len");
    let b = loan.bytes_mut();
    if let Some(src) = fill {
        b.copy_from_slice(&src[..len]);
    }
    b[..8].copy_from_slice(&seq.to_le_bytes());
    loan.commit().expect("commit");
}

fn take(s: &Subscriber<Bytes>) -> u64 {
    digest(s.recv().expect("recv").bytes())
}

/// Reads the first 8 bytes and the last one of a message, so that the receive is not elided.
fn digest(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().expect("8 bytes")) ^ b[b.len() - 1] as u64
}

/// Ping side of a ping-pong: sends `len` bytes on `out` (without filling them when
/// `fill` is false: the loan hands the slot over as it is) and waits for the echo on `back`.
pub fn ping(bus: &Bus, out: &str, back: &str, wait: WaitStrategy, len: usize, n: u64) -> Vec<u64> {
    let mut p = bus.publisher::<Bytes>(out).expect("publisher");
    let s = bus.subscriber::<Bytes>(back).expect("subscriber");
    s.set_wait_strategy(wait);
    p.set_wait_strategy(wait);
    let mut samples = Vec::with_capacity(n as usize);
    for i in 0..n {
        let t = Instant::now();
        send(&mut p, len, i, None);
        std::hint::black_box(take(&s));
        samples.push(t.elapsed().as_nanos() as u64);
    }
    samples
}

/// Pong side: subscribes (before signalling ready), then echoes `n` messages as 64 bytes.
pub fn pong(bus: &Bus, inp: &str, back: &str, wait: WaitStrategy, n: u64) {
    let s = bus.subscriber::<Bytes>(inp).expect("subscriber");
    let mut p = bus.publisher::<Bytes>(back).expect("publisher");
    s.set_wait_strategy(wait);
    p.set_wait_strategy(wait);
    crate::harness::ready();
    for _ in 0..n {
        let v = take(&s);
        send(&mut p, 64, v, None);
    }
}

/// Producer of the throughput case: fills every message from `src`.
pub fn produce(bus: &Bus, ring: &str, size: usize, n: u64, src: &[u8]) {
    let mut p = bus.publisher::<Bytes>(ring).expect("publisher");
    p.set_wait_strategy(WaitStrategy::BusyPoll);
    for i in 0..n {
        send(&mut p, size, i, Some(src));
    }
}

/// Producer of the throughput case in batches of up to `batch` messages
/// ([`Publisher::loan_batch`]: one claim and one commit per batch), filling every message.
pub fn produce_batch(bus: &Bus, ring: &str, size: usize, n: u64, src: &[u8], batch: usize) {
    let mut p = bus.publisher::<Bytes>(ring).expect("publisher");
    p.set_wait_strategy(WaitStrategy::BusyPoll);
    let mut i = 0;
    while i < n {
        let mut b = p
            .loan_batch(batch.min((n - i) as usize))
            .expect("loan batch");
        for k in 0..b.len() {
            b.set_len(k, size).expect("len");
            let bytes = b.bytes_mut(k);
            bytes.copy_from_slice(&src[..size]);
            bytes[..8].copy_from_slice(&(i + k as u64).to_le_bytes());
        }
        i += b.len() as u64;
        b.commit().expect("commit");
    }
}

/// Consumer of the throughput case in batches of up to `batch` messages
/// ([`Subscriber::recv_batch`]: one cursor store per batch), timed from the first message as
/// [`consume`] is.
pub fn consume_batch(bus: &Bus, ring: &str, n: u64, batch: usize) -> u64 {
    let s = bus.subscriber::<Bytes>(ring).expect("subscriber");
    s.set_wait_strategy(WaitStrategy::BusyPoll);
    crate::harness::ready();
    let mut sink = take(&s);
    let t = Instant::now();
    let mut got = 1;
    while got < n {
        let b = s
            .recv_batch(batch.min((n - got) as usize), None)
            .expect("recv_batch");
        for m in b.iter() {
            sink ^= digest(m.bytes());
        }
        got += b.len() as u64;
    }
    std::hint::black_box(sink);
    t.elapsed().as_nanos() as u64
}

/// Consumer of the throughput case (busy-poll); returns ns from first to last message.
pub fn consume(bus: &Bus, ring: &str, n: u64) -> u64 {
    let s = bus.subscriber::<Bytes>(ring).expect("subscriber");
    s.set_wait_strategy(WaitStrategy::BusyPoll);
    crate::harness::ready();
    let mut sink = 0;
    sink ^= take(&s);
    let t = Instant::now();
    for _ in 1..n {
        sink ^= take(&s);
    }
    std::hint::black_box(sink);
    t.elapsed().as_nanos() as u64
}
