//! Unix domain stream sockets: the usual way processes talk, as a reference.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Instant;

/// Binds the listening socket at `path`.
pub fn listen(path: &str) -> UnixListener {
    let _ = std::fs::remove_file(path);
    UnixListener::bind(path).expect("bind unix socket")
}

/// Ping side over an accepted connection.
pub fn ping(l: &UnixListener, len: usize, n: u64) -> Vec<u64> {
    let (mut s, _) = l.accept().expect("accept");
    let mut buf = vec![7u8; len];
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let t = Instant::now();
        s.write_all(&buf).expect("write");
        s.read_exact(&mut buf).expect("read");
        out.push(t.elapsed().as_nanos() as u64);
    }
    out
}

/// Pong side: connects and echoes.
pub fn pong(path: &str, len: usize, n: u64) {
    let mut s = UnixStream::connect(path).expect("connect");
    crate::harness::ready();
    let mut buf = vec![0u8; len];
    for _ in 0..n {
        s.read_exact(&mut buf).expect("read");
        s.write_all(&buf).expect("write");
    }
}

/// Producer of the throughput case.
pub fn produce(l: &UnixListener, size: usize, n: u64, src: &[u8]) {
    let (mut s, _) = l.accept().expect("accept");
    for _ in 0..n {
        s.write_all(&src[..size]).expect("write");
    }
}

/// Consumer: returns ns from first to last message.
pub fn consume(path: &str, size: usize, n: u64) -> u64 {
    let mut s = UnixStream::connect(path).expect("connect");
    crate::harness::ready();
    let mut buf = vec![0u8; size];
    s.read_exact(&mut buf).expect("read");
    let t = Instant::now();
    for _ in 1..n {
        s.read_exact(&mut buf).expect("read");
    }
    t.elapsed().as_nanos() as u64
}
