//! WebAssembly jobs, run for real in wasmtime: every cartridge of the fixtures (as
//! `expected.json` describes it), and each way a module can fail.

use gos_dna::api::ApiCall;
use gos_dna::{Limit, Status, WasmValue};
use gos_dna_wasm::host::WasmHandler;
use gos_dna_wasm::{WasmJob, WasmLimits, WasmRunner};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Calls = Arc<Mutex<Vec<String>>>;

/// A handler that records each call as `name(args)` and lets it through.
fn recorder() -> (WasmHandler, Calls) {
    let calls: Calls = Arc::default();
    let c = calls.clone();
    let h: WasmHandler = Box::new(move |call: &ApiCall| {
        let args: Vec<String> = call.args.iter().map(Value::to_string).collect();
        c.lock()
            .unwrap()
            .push(format!("{}({})", call.function.name, args.join(", ")));
        Ok(Value::Null)
    });
    (h, calls)
}

fn job<'a>(module: &'a [u8], export: &'a str, args: &'a [WasmValue], mask: u64) -> WasmJob<'a> {
    WasmJob {
        module,
        export,
        args,
        api_mask: mask,
        limits: WasmLimits {
            wall: Duration::from_secs(10),
            ..WasmLimits::default()
        },
    }
}

fn wat(text: &str) -> Vec<u8> {
    wat::parse_str(text).expect("valid WAT")
}

fn cartridge(name: &str) -> Vec<u8> {
    let path = gos_rts::variants_dir().join(name);
    let file = gos_rts::decode_file(&path).expect("the fixture decodes");
    file.wasm_module()
        .expect("a cartridge carries a module")
        .to_vec()
}

fn expected() -> Vec<Value> {
    let text = std::fs::read_to_string(gos_rts::variants_dir().join("expected.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v.as_array()
        .or_else(|| v["variants"].as_array())
        .expect("a list of variants")
        .iter()
        .filter(|e| e.get("wasm").is_some())
        .cloned()
        .collect()
}

#[test]
fn every_wasm_cartridge_does_what_expected_json_says() {
    let runner = WasmRunner::new().unwrap();
    let cases = expected();
    assert_eq!(
        cases.len(),
        5,
        "five WebAssembly cartridges in the fixtures"
    );
    for case in cases {
        let file = case["file"].as_str().unwrap();
        let module = cartridge(file);
        let w = &case["wasm"];
        let export = w["export"].as_str().unwrap();
        let args: Vec<WasmValue> = w["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| WasmValue::I32(a.as_i64().unwrap() as i32))
            .collect();
        let (mut handler, calls) = recorder();
        let mut j = job(&module, export, &args, gos_dna::api::ALL);
        j.limits.wall = Duration::from_millis(300);
        let o = runner.run(&j, &mut handler);
        match &w["result"] {
            Value::Array(want) => {
                assert_eq!(o.status, Status::Ok, "{file}: {}", o.reason);
                let got: Vec<i64> = o
                    .values
                    .iter()
                    .map(|v| match v {
                        WasmValue::I32(x) => *x as i64,
                        other => panic!("{file}: {other:?}"),
                    })
                    .collect();
                let want: Vec<i64> = want.iter().map(|v| v.as_i64().unwrap()).collect();
                assert_eq!(got, want, "{file}");
            }
            Value::String(s) if s == "time limit" => {
                assert_eq!(o.status, Status::Timeout, "{file}: {}", o.reason);
                assert_eq!(o.limit, Limit::WallTime);
                assert!(
                    o.wall >= Duration::from_millis(300),
                    "{file} stopped at its limit, not before"
                );
            }
            Value::String(s) if s.starts_with("calls gos.spawn_brick") => {
                assert_eq!(o.status, Status::Ok, "{file}: {}", o.reason);
                assert_eq!(*calls.lock().unwrap(), ["spawn_brick(3, 4, 0)"], "{file}");
                assert_eq!((o.calls, o.refused), (1, 0));
            }
            other => panic!("{file}: unknown expectation {other}"),
        }
    }
}

#[test]
fn an_import_the_job_is_not_granted_is_refused_at_instantiation_by_name() {
    let runner = WasmRunner::new().unwrap();
    let module = cartridge("wasm-import.rts.png");
    let (mut handler, calls) = recorder();
    let grant_log = gos_layouts::records::DNA_API_LOG;
    let o = runner.run(&job(&module, "run", &[], grant_log), &mut handler);
    assert_eq!(o.status, Status::Rejected, "{}", o.reason);
    assert!(
        o.reason.contains("gos.spawn_brick") && o.reason.contains("not granted"),
        "{}",
        o.reason
    );
    assert!(calls.lock().unwrap().is_empty(), "nothing ran");
}

#[test]
fn imports_outside_the_api_are_refused_so_a_module_reaches_no_file_clock_or_network() {
    let runner = WasmRunner::new().unwrap();
    for (import, sig) in [
        (
            "wasi_snapshot_preview1\" \"path_open",
            "(param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)",
        ),
        (
            "wasi_snapshot_preview1\" \"sock_accept",
            "(param i32 i32 i32) (result i32)",
        ),
        (
            "wasi_snapshot_preview1\" \"fd_write",
            "(param i32 i32 i32 i32) (result i32)",
        ),
        ("env\" \"open", "(param i32 i32) (result i32)"),
        ("gos\" \"read_bus", "(param i32) (result i32)"),
    ] {
        let module = wat(&format!(
            r#"(module (import "{import}" (func {sig})) (func (export "run")))"#
        ));
        let (mut handler, _) = recorder();
        let o = runner.run(&job(&module, "", &[], gos_dna::api::ALL), &mut handler);
        let name = import.replace("\" \"", ".");
        assert_eq!(o.status, Status::Rejected, "{name}: {}", o.reason);
        assert!(
            o.reason.contains(&name),
            "the reason names {name}: {}",
            o.reason
        );
    }
    // The API's own function under the wrong signature is refused too.
    let module =
        wat(r#"(module (import "gos" "spawn_brick" (func (param i32))) (func (export "run")))"#);
    let (mut handler, _) = recorder();
    let o = runner.run(&job(&module, "", &[], gos_dna::api::ALL), &mut handler);
    assert_eq!(o.status, Status::Rejected);
    assert!(o.reason.contains("(i32, i32, i64) -> ()"), "{}", o.reason);
}

#[test]
fn a_malformed_module_is_rejected_in_one_line() {
    let runner = WasmRunner::new().unwrap();
    for bytes in [&b"\0asm\x01\0\0\0\x01\xff"[..], b"not wasm at all", b""] {
        let (mut handler, _) = recorder();
        let o = runner.run(&job(bytes, "", &[], 0), &mut handler);
        assert_eq!(o.status, Status::Rejected);
        assert!(
            o.reason.starts_with("not a valid WebAssembly module"),
            "{}",
            o.reason
        );
        assert!(!o.reason.contains('\n'));
    }
}

#[test]
fn traps_end_the_job_as_an_error_naming_the_trap() {
    let runner = WasmRunner::new().unwrap();
    let module = wat(r#"(module
            (func (export "boom") unreachable)
            (func (export "div") (param i32) (result i32) (i32.div_s (i32.const 1) (local.get 0)))
            (func $deep (export "deep") (call $deep)))"#);
    for (export, args, want) in [
        ("boom", vec![], "unreachable"),
        ("div", vec![WasmValue::I32(0)], "divide by zero"),
        ("deep", vec![], "call stack exhausted"),
    ] {
        let (mut handler, _) = recorder();
        let o = runner.run(&job(&module, export, &args, 0), &mut handler);
        assert_eq!(o.status, Status::Error, "{export}");
        assert!(o.reason.contains(want), "{export}: {}", o.reason);
    }
    let (mut handler, _) = recorder();
    let o = runner.run(
        &job(&module, "div", &[WasmValue::I32(0x7f)], 0),
        &mut handler,
    );
    assert_eq!(o.values, [WasmValue::I32(0)], "{}", o.reason);
}

#[test]
fn a_result_too_large_for_the_record_and_wrong_arguments_are_rejected() {
    let runner = WasmRunner::new().unwrap();
    let nine = wat(
        r#"(module (func (export "nine") (result i32 i32 i32 i32 i32 i32 i32 i32 i32)
            i32.const 1 i32.const 2 i32.const 3 i32.const 4 i32.const 5
            i32.const 6 i32.const 7 i32.const 8 i32.const 9)
          (func (export "eight") (result i64 i64 i64 i64 f32 f32 f64 f64)
            i64.const 1 i64.const 2 i64.const 3 i64.const -4
            f32.const 1.5 f32.const 2.5 f64.const 3.5 f64.const -4.5)
          (func (export "vec") (result v128) v128.const i32x4 0 0 0 0))"#,
    );
    let (mut handler, _) = recorder();
    let o = runner.run(&job(&nine, "nine", &[], 0), &mut handler);
    assert_eq!(o.status, Status::Rejected);
    assert!(
        o.reason.contains("returns 9 values") && o.reason.contains("at most 8"),
        "{}",
        o.reason
    );
    let o = runner.run(&job(&nine, "eight", &[], 0), &mut handler);
    assert_eq!(o.status, Status::Ok, "{}", o.reason);
    assert_eq!(o.values.len(), 8);
    assert_eq!(o.values[3], WasmValue::I64(-4));
    assert_eq!(o.values[7], WasmValue::F64(-4.5));
    let o = runner.run(&job(&nine, "vec", &[], 0), &mut handler);
    assert_eq!(o.status, Status::Rejected);
    assert!(o.reason.contains("v128"), "{}", o.reason);
    let double = cartridge("wasm-double.rts.png");
    let o = runner.run(
        &job(&double, "double", &[WasmValue::I64(21)], 0),
        &mut handler,
    );
    assert_eq!(o.status, Status::Rejected);
    assert!(
        o.reason.contains("takes (i32) but was given (i64)"),
        "{}",
        o.reason
    );
    let o = runner.run(&job(&double, "triple", &[], 0), &mut handler);
    assert!(
        o.reason.contains("no function triple") && o.reason.contains("double"),
        "{}",
        o.reason
    );
}

#[test]
fn memory_is_bounded_by_the_limit_not_by_the_address_space() {
    let runner = WasmRunner::new().unwrap();
    // Grows by 32 MiB steps until refused; returns the pages it holds.
    let module = wat(r#"(module (memory 1)
            (func (export "fill") (result i32)
              (block $full (loop $more
                (br_if $full (i32.eq (memory.grow (i32.const 512)) (i32.const -1)))
                (br $more)))
              memory.size))"#);
    let (mut handler, _) = recorder();
    let mut j = job(&module, "fill", &[], 0);
    j.limits.memory = 16 << 20;
    let o = runner.run(&j, &mut handler);
    assert_eq!(o.status, Status::Ok, "{}", o.reason);
    assert_eq!(o.values, [WasmValue::I32(1)], "16 MiB holds no 32 MiB step");
    j.limits.memory = 100 << 20;
    let o = runner.run(&j, &mut handler);
    assert_eq!(
        o.values,
        [WasmValue::I32(1 + 3 * 512)],
        "three steps fit in 100 MiB"
    );
    // A module that declares more than the limit does not start.
    let big = wat(r#"(module (memory 2000) (func (export "run")))"#);
    let mut j = job(&big, "", &[], 0);
    j.limits.memory = 64 << 20;
    let o = runner.run(&j, &mut handler);
    assert_eq!(o.status, Status::Error);
    assert_eq!(o.limit, Limit::Memory, "{}", o.reason);
}

#[test]
fn host_calls_are_checked_like_python_calls_and_texts_stay_inside_memory() {
    let runner = WasmRunner::new().unwrap();
    let module = wat(r#"(module
            (import "gos" "log" (func $log (param i32 i32)))
            (import "gos" "spawn_brick" (func $spawn (param i32 i32 i64)))
            (memory (export "memory") 1)
            (data (i32.const 16) "hello from wasm")
            (func (export "hello") (call $log (i32.const 16) (i32.const 15)))
            (func (export "outside") (call $log (i32.const 65530) (i32.const 100)))
            (func (export "far") (call $spawn (i32.const 2000000) (i32.const 0) (i64.const 0)))
            (func (export "many") (loop $l (call $log (i32.const 16) (i32.const 5)) (br $l))))"#);
    let (mut handler, calls) = recorder();
    let all = gos_dna::api::ALL;
    let o = runner.run(&job(&module, "hello", &[], all), &mut handler);
    assert_eq!(o.status, Status::Ok, "{}", o.reason);
    assert_eq!(*calls.lock().unwrap(), ["log(\"hello from wasm\")"]);
    let o = runner.run(&job(&module, "outside", &[], all), &mut handler);
    assert_eq!(o.status, Status::Error);
    assert!(
        o.reason.contains("outside the module's memory"),
        "{}",
        o.reason
    );
    assert_eq!((o.calls, o.refused), (0, 1));
    let o = runner.run(&job(&module, "far", &[], all), &mut handler);
    assert_eq!(o.status, Status::Error);
    assert!(
        o.reason.contains("spawn_brick") && o.reason.contains("argument x"),
        "{}",
        o.reason
    );
    let mut j = job(&module, "many", &[], all);
    j.limits.max_calls = 20;
    let o = runner.run(&j, &mut handler);
    assert_eq!(o.status, Status::Error);
    assert_eq!((o.calls, o.refused), (20, 1), "{}", o.reason);
    assert_eq!(
        calls.lock().unwrap().len(),
        21,
        "the handler saw only what was allowed"
    );
    // A handler's refusal traps the module with its reason.
    let mut refusing: WasmHandler = Box::new(|_| Err("no texture to show".into()));
    let module = cartridge("wasm-import.rts.png");
    let o = runner.run(&job(&module, "run", &[], all), &mut refusing);
    assert_eq!(o.status, Status::Error);
    assert!(
        o.reason.contains("spawn_brick: no texture to show"),
        "{}",
        o.reason
    );
}

#[test]
fn a_module_is_compiled_once() {
    let runner = WasmRunner::new().unwrap();
    let module = cartridge("wasm-answer.rts.png");
    for _ in 0..3 {
        let (mut handler, _) = recorder();
        let o = runner.run(&job(&module, "", &[], 0), &mut handler);
        assert_eq!(
            o.values,
            [WasmValue::I32(7)],
            "the entry point is its one export"
        );
    }
    assert_eq!(runner.stats(), (1, 2));
}

#[test]
fn reasons_are_one_line_without_wasmtime_backtraces() {
    let runner = WasmRunner::new().unwrap();
    let module = cartridge("wasm-import.rts.png");
    let mut refusing: WasmHandler = Box::new(|_| Err("no texture to show".into()));
    let o = runner.run(&job(&module, "run", &[], gos_dna::api::ALL), &mut refusing);
    assert_eq!(o.reason, "run(): spawn_brick: no texture to show");
    let big = wat(r#"(module (memory 2000) (func (export "run")))"#);
    let (mut handler, _) = recorder();
    let o = runner.run(&job(&big, "", &[], 0), &mut handler);
    assert!(
        !o.reason.contains("backtrace") && !o.reason.contains('\n'),
        "{}",
        o.reason
    );
    assert!(
        o.reason.contains("its limit of 67108864 bytes"),
        "{}",
        o.reason
    );
}

#[test]
fn the_clock_ticks_again_for_every_job_after_an_idle_time() {
    // The epoch ticks only while a job runs: each of these must still be stopped.
    let runner = WasmRunner::new().unwrap();
    let spin = cartridge("wasm-spin.rts.png");
    let answer = cartridge("wasm-answer.rts.png");
    for _ in 0..3 {
        let (mut handler, _) = recorder();
        let mut j = job(&spin, "spin", &[], 0);
        j.limits.wall = Duration::from_millis(50);
        let o = runner.run(&j, &mut handler);
        assert_eq!(o.status, Status::Timeout, "{}", o.reason);
        let o = runner.run(&job(&answer, "", &[], 0), &mut handler);
        assert_eq!(o.values, [WasmValue::I32(7)]);
    }
}

#[test]
fn hostile_names_cannot_break_a_reason_line() {
    let runner = WasmRunner::new().unwrap();
    let module = wat(r#"(module
            (import "evil\nFAKE: ok\u{1b}[31m" "x" (func))
            (func (export "run")))"#);
    let (mut handler, _) = recorder();
    let o = runner.run(&job(&module, "", &[], 0), &mut handler);
    assert_eq!(o.status, Status::Rejected);
    assert!(
        !o.reason.contains('\n') && !o.reason.contains('\u{1b}'),
        "{:?}",
        o.reason
    );
    assert!(o.reason.contains(r"evil\nFAKE"), "{}", o.reason);
    let long = "n".repeat(10_000);
    let module = wat(&format!(
        r#"(module (func (export "{long}") (result i32) i32.const 1) (func (export "a\nb") (param i32)))"#
    ));
    let o = runner.run(&job(&module, "missing", &[], 0), &mut handler);
    assert!(o.reason.len() < 400, "{} bytes", o.reason.len());
    assert!(!o.reason.contains('\n'), "{:?}", o.reason);
}

#[test]
fn only_a_module_that_cannot_start_for_memory_is_ended_by_the_memory_limit() {
    let runner = WasmRunner::new().unwrap();
    // Growth refused (-1), then a trap that has nothing to do with memory.
    let module = wat(r#"(module (memory 1)
            (func (export "run") (result i32)
              (drop (memory.grow (i32.const 4096)))
              (i32.div_u (i32.const 1) (i32.const 0))))"#);
    let (mut handler, _) = recorder();
    let mut j = job(&module, "", &[], 0);
    j.limits.memory = 1 << 20;
    let o = runner.run(&j, &mut handler);
    assert_eq!(o.status, Status::Error);
    assert_eq!(o.limit, Limit::None, "{}", o.reason);
    assert!(o.reason.contains("divide by zero"), "{}", o.reason);
}
