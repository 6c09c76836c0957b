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
