//! The worker a DNA executor keeps: a separate process, confined before its first job, that
//! relays API calls and goes on past a request it cannot use.

use base64::Engine as _;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

fn cartridge(name: &str) -> String {
    let file = gos_rts::decode_file(&gos_rts::variants_dir().join(name)).unwrap();
    base64::engine::general_purpose::STANDARD.encode(file.wasm_module().unwrap())
}

#[test]
fn the_worker_is_confined_relays_calls_and_survives_bad_requests() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gos-dna-wasm"))
        .arg("serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let mut output = BufReader::new(child.stdout.take().unwrap());
    let mut read = || {
        let mut line = String::new();
        output.read_line(&mut line).unwrap();
        serde_json::from_str::<Value>(&line).unwrap()
    };
    let ready = read();
    assert_eq!(ready["ready"]["confined"]["seccomp"], true, "{ready}");
    assert_eq!(ready["ready"]["confined"]["landlock"], "full", "{ready}");
    // The kernel's own word: a seccomp filter and no_new_privs on the worker.
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.split_whitespace().eq(["Seccomp:", "2"])),
        "{status}"
    );
    assert!(
        status
            .lines()
            .any(|l| l.split_whitespace().eq(["NoNewPrivs:", "1"])),
        "{status}"
    );

    let mut send = |v: Value| writeln!(input, "{v}").unwrap();
    send(json!({"job": {"module": "not base64!", "export": ""}}));
    let r = read();
    assert_eq!(r["result"]["status"], "rejected");
    assert!(
        r["result"]["reason"].as_str().unwrap().contains("base64"),
        "{r}"
    );

    let import = cartridge("wasm-import.rts.png");
    send(json!({"job": {"module": import, "api_mask": 2, "timeout_ms": 5000}}));
    let call = read();
    assert_eq!(
        call["call"],
        json!({"name": "spawn_brick", "args": [3, 4, 0]})
    );
    send(json!({"ok": 1}));
    let r = read();
    assert_eq!(r["result"]["status"], "ok", "{r}");
    assert_eq!(r["result"]["calls"], 1);
    assert_eq!(r["result"]["cached"], false);

    // The same module again: compiled once; an executor's refusal traps it.
    send(json!({"job": {"module": import, "api_mask": 2}}));
    assert!(read().get("call").is_some());
    send(json!({"error": "no texture"}));
    let r = read();
    assert_eq!(r["result"]["status"], "error", "{r}");
    assert_eq!(r["result"]["cached"], true);

    let double = cartridge("wasm-double.rts.png");
    send(
        json!({"job": {"module": double, "export": "double", "args": [{"type": "i32", "value": 21}]}}),
    );
    let r = read();
    assert_eq!(
        r["result"]["values"],
        json!([{"type": "i32", "value": 42, "code": 1, "bits": 42}]),
        "{r}"
    );
    drop(input);
    assert!(
        child.wait().unwrap().success(),
        "the worker ends when its input does"
    );
}

/// Set in the child of `the_worker_filter_refuses_sockets_programs_and_namespaces`.
const PROBE: &str = "GOS_DNA_WASM_CONFINE_PROBE";

#[test]
fn the_worker_filter_refuses_sockets_programs_and_namespaces() {
    if std::env::var_os(PROBE).is_some() {
        // In a process of its own (this test binary run again): confine as the worker does,
        // then try what the worker must never do.
        let applied = gos_dna::confine::restrict(&gos_dna::confine::Confinement {
            profile: gos_dna::confine::Profile::Worker,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(applied.landlock, "full");
        assert!(applied.seccomp);
        // SAFETY: plain system calls with no pointers, or with a valid NUL-terminated path;
        // each is expected to fail.
        unsafe {
            assert_eq!(libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0), -1);
            assert_eq!(libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0), -1);
            assert_eq!(libc::unshare(libc::CLONE_NEWUSER), -1);
            let argv = [c"/bin/true".as_ptr(), std::ptr::null()];
            assert_eq!(libc::execv(c"/bin/true".as_ptr(), argv.as_ptr()), -1);
        }
        assert!(
            std::fs::read("/etc/hostname").is_err(),
            "no file can be read"
        );
        assert!(
            std::fs::File::create("/tmp/gos-dna-wasm-probe").is_err(),
            "none written"
        );
        // Threads still start (clone3 says ENOSYS, the C library falls back to clone).
        assert_eq!(std::thread::spawn(|| 7).join().unwrap(), 7);
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "the_worker_filter_refuses_sockets_programs_and_namespaces",
            "--nocapture",
        ])
        .env(PROBE, "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the confined probe failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
}
