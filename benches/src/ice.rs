//! iceoryx2 (the crate), only when built with `--features iceoryx2`: the reference
//! zero-copy IPC library, measured the same way.

use iceoryx2::prelude::*;
use std::time::Instant;

type Svc = ipc::Service;

fn service(
    node: &Node<Svc>,
    name: &str,
    slots: usize,
) -> iceoryx2::service::port_factory::publish_subscribe::PortFactory<Svc, [u8], ()> {
    node.service_builder(&name.try_into().expect("service name"))
        .publish_subscribe::<[u8]>()
        .enable_safe_overflow(false)
        .subscriber_max_buffer_size(slots)
        .max_publishers(1)
        .max_subscribers(1)
        .open_or_create()
        .expect("iceoryx2 service")
}

fn node() -> Node<Svc> {
    // Keep iceoryx2's notice about its missing config file out of the tables.
    set_log_level(LogLevel::Error);
    NodeBuilder::new().create::<Svc>().expect("iceoryx2 node")
}

/// Ping side.
pub fn ping(prefix: &str, len: usize, n: u64) -> Vec<u64> {
    let node = node();
    let out = service(&node, &format!("{prefix}/ping"), 4);
    let back = service(&node, &format!("{prefix}/pong"), 4);
    let p = out
        .publisher_builder()
        .initial_max_slice_len(len)
        .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
        .create()
        .expect("publisher");
    let s = back.subscriber_builder().create().expect("subscriber");
    // Wait until the pong side's subscriber is connected.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let src = vec![7u8; len];
    let mut samples = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let t = Instant::now();
        let sample = p.loan_slice_uninit(len).expect("loan");
        sample.write_from_slice(&src).send().expect("send");
        loop {
            if let Some(r) = s.receive().expect("receive") {
                std::hint::black_box(r.payload()[0]);
                break;
            }
            std::hint::spin_loop();
        }
        samples.push(t.elapsed().as_nanos() as u64);
    }
    samples
}

/// Pong side.
pub fn pong(prefix: &str, n: u64) {
    let node = node();
    let inp = service(&node, &format!("{prefix}/ping"), 4);
    let back = service(&node, &format!("{prefix}/pong"), 4);
    let s = inp.subscriber_builder().create().expect("subscriber");
    let p = back
        .publisher_builder()
        .initial_max_slice_len(64)
        .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
        .create()
        .expect("publisher");
    crate::harness::ready();
    let src = [7u8; 64];
    for _ in 0..n {
        loop {
            if let Some(r) = s.receive().expect("receive") {
                std::hint::black_box(r.payload()[0]);
                break;
            }
            std::hint::spin_loop();
        }
        let sample = p.loan_slice_uninit(64).expect("loan");
        sample.write_from_slice(&src).send().expect("send");
    }
}

/// Producer of the throughput case.
pub fn produce(prefix: &str, size: usize, slots: usize, n: u64, src: &[u8]) {
    let node = node();
    let svc = service(&node, &format!("{prefix}/tp"), slots);
    let p = svc
        .publisher_builder()
        .initial_max_slice_len(size)
        .max_loaned_samples(2)
        .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
        .create()
        .expect("publisher");
    std::thread::sleep(std::time::Duration::from_millis(200));
    for _ in 0..n {
        let sample = p.loan_slice_uninit(size).expect("loan");
        sample.write_from_slice(&src[..size]).send().expect("send");
    }
}

/// Consumer: returns ns from first to last message.
pub fn consume(prefix: &str, slots: usize, n: u64) -> u64 {
    let node = node();
    let svc = service(&node, &format!("{prefix}/tp"), slots);
    let s = svc.subscriber_builder().create().expect("subscriber");
    crate::harness::ready();
    let mut got = 0;
    let mut start = None;
    let mut sink = 0u64;
    while got < n {
        if let Some(r) = s.receive().expect("receive") {
            start.get_or_insert_with(Instant::now);
            let b = r.payload();
            sink ^= b[0] as u64 ^ b[b.len() - 1] as u64;
            got += 1;
        } else {
            std::hint::spin_loop();
        }
    }
    std::hint::black_box(sink);
    start.map_or(0, |s| s.elapsed().as_nanos() as u64)
}
