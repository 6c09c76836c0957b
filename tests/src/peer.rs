//! A `gos-bus-peer` process as the tests drive it: spawned, read line by line, killed or
//! waited for. A peer left running by a failed test is killed when dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// A running peer process.
pub struct Peer {
    /// The process.
    pub child: Child,
    out: BufReader<ChildStdout>,
    stdin: Option<ChildStdin>,
}

impl Peer {
    /// Spawns `exe args...` with stdin and stdout piped and stderr inherited.
    pub fn spawn(exe: &str, args: &[&str]) -> Peer {
        Peer::spawn_with(exe, args, Stdio::inherit())
    }

    /// Spawns with the given stderr.
    pub fn spawn_with(exe: &str, args: &[&str], stderr: Stdio) -> Peer {
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn gos-bus-peer");
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        let stdin = child.stdin.take();
        Peer { child, out, stdin }
    }

    /// The next line the peer printed.
    pub fn line(&mut self) -> String {
        let mut s = String::new();
        self.out.read_line(&mut s).expect("read peer");
        s.trim().to_string()
    }

    /// Waits for the peer to say `ready` (attached).
    pub fn ready(mut self) -> Peer {
        let l = self.line();
        assert_eq!(l, "ready", "peer did not start: {l:?}");
        self
    }

    /// SIGKILL, then reap.
    pub fn kill(mut self) {
        self.child.kill().expect("kill peer");
        self.child.wait().expect("wait peer");
    }

    /// Waits for `ok received=X` and the exit; returns X. Panics if the peer failed.
    pub fn finish(mut self) -> String {
        let mut l = self.line();
        while !l.starts_with("ok ") && !l.starts_with("error ") && !l.is_empty() {
            l = self.line();
        }
        let status = self.child.wait().expect("wait peer");
        assert!(status.success(), "peer failed: {l}");
        l.strip_prefix("ok received=").unwrap_or(&l).to_string()
    }

    /// Waits for the end and parses the count the peer reported.
    pub fn count(self) -> u64 {
        let s = self.finish();
        s.parse()
            .unwrap_or_else(|_| panic!("unexpected peer output {s:?}"))
    }

    /// Writes `line` to the peer's stdin.
    pub fn say(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{line}").expect("write to peer");
        stdin.flush().expect("flush to peer");
    }

    /// Closes the peer's stdin (a broker peer stops then) and waits for a clean exit.
    pub fn stop(mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().expect("wait peer");
        assert!(status.success());
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // A test that failed half-way leaves no process behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
