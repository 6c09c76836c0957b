//! Process plumbing of the benchmarks: spawning the other side, pinning, statistics.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

/// Number of CPUs online (not the affinity mask, which pinning narrows).
pub fn cpus() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    n.max(1) as usize
}

/// Pins the calling process to one CPU (best effort: a machine with one CPU is left as is).
pub fn pin(cpu: usize) {
    // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET write inside it; sched_setaffinity
    // reads it. Failure (no such CPU) only leaves the affinity unchanged.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// The other process of a measurement.
pub struct Peer {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Peer {
    /// Spawns this executable as `--child ARGS...` and waits for it to print `ready`.
    pub fn spawn(args: &[String]) -> Peer {
        let exe = std::env::current_exe().expect("own executable");
        let mut child = Command::new(exe)
            .arg("--child")
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn benchmark child");
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut p = Peer { child, out };
        let l = p.line();
        assert_eq!(l, "ready", "child failed to start: {l:?}");
        p
    }

    fn line(&mut self) -> String {
        let mut s = String::new();
        self.out.read_line(&mut s).expect("read child");
        s.trim().to_string()
    }

    /// Waits for the child's `result N` line and its exit.
    pub fn result(mut self) -> u64 {
        let l = self.line();
        let status = self.child.wait().expect("wait child");
        assert!(status.success(), "child failed: {l}");
        l.strip_prefix("result ")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("bad child output {l:?}"))
    }
}

/// Child side: says it is ready.
pub fn ready() {
    use std::io::Write;
    println!("ready");
    std::io::stdout().flush().ok();
}

/// Child side: reports its result.
pub fn report(v: u64) {
    println!("result {v}");
}

/// Latency percentiles of a set of round trips, in nanoseconds.
#[derive(Debug, Clone, Copy)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
}

/// Percentiles of `samples` (nanoseconds).
pub fn percentiles(samples: &mut [u64]) -> Percentiles {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize] as f64;
    Percentiles {
        p50: at(0.50),
        p99: at(0.99),
        p999: at(0.999),
    }
}

/// A duration as microseconds with sensible precision.
pub fn us(ns: f64) -> String {
    if ns < 10_000.0 {
        format!("{:.2}", ns / 1000.0)
    } else {
        format!("{:.1}", ns / 1000.0)
    }
}

/// Sleeps briefly so the previous case's processes are gone before the next starts.
pub fn settle() {
    std::thread::sleep(Duration::from_millis(50));
}
