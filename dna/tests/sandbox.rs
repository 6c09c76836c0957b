//! The runner with real processes: bubblewrap, the confining helper (this crate's binary) and
//! Python. Where the kernel lacks a layer, each test checks that the job is refused instead.

use gos_dna::api::ApiCall;
use gos_dna::run::{Isolation, Job, Runner};
use gos_dna::{probe, Limit, Limits, Status};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

const HELPER: &str = env!("CARGO_BIN_EXE_gos-dna-sandbox");

fn sandbox() -> Runner {
    let p = probe::probe();
    Runner::new(
        "auto",
        Isolation::Sandbox {
            bwrap: p.bwrap.unwrap_or_else(|| "bwrap".into()),
            helper: HELPER.into(),
            weaker: false,
        },
    )
    .unwrap()
}

fn job(code: &str, mask: u64) -> Job {
    Job {
        code: code.into(),
        api_mask: mask,
        limits: Limits::with_wall(Duration::from_secs(20)),
    }
}

/// `Some(outcome)` where the sandbox can run; else checks the job was refused and says why.
fn run(code: &str, mask: u64, handler: &mut gos_dna::run::Handler<'_>) -> Option<gos_dna::Outcome> {
    let o = sandbox().run(&job(code, mask), handler);
    if !probe::probe().complete() {
        assert_eq!(o.status, Status::Rejected, "{}", o.reason);
        assert!(o.reason.contains("sandbox could not start"), "{}", o.reason);
        return None;
    }
    Some(o)
}

#[test]
fn checked_calls_reach_the_handler_and_the_rest_are_refused_in_the_job() {
    let mut seen: Vec<(String, Vec<Value>)> = Vec::new();
    let mut handler = |c: &ApiCall| -> Result<Value, String> {
        seen.push((c.function.name.into(), c.args.clone()));
        Ok(Value::from(seen.len()))
    };
    let code = r#"
import gos
print(spawn_brick(1, 2), spawn_brick(3, 4, 5))
for bad in (lambda: log("x"), lambda: spawn_brick(1, 2, -5)):
    try:
        bad()
    except gos.ApiError as e:
        print("refused:", e)
"#;
    let mask = gos_layouts::records::DNA_API_SPAWN_BRICK;
    let Some(o) = run(code, mask, &mut handler) else {
        return;
    };
    assert_eq!(
        o.status,
        Status::Ok,
        "{}: {}",
        o.reason,
        String::from_utf8_lossy(&o.output)
    );
    let out = String::from_utf8_lossy(&o.output);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1 2");
    assert_eq!(lines[1], "refused: log is not granted to this job");
    assert!(lines[2].starts_with("refused: spawn_brick: argument texture_id must be an integer"));
    assert_eq!((o.calls, o.refused), (2, 2));
    assert_eq!(
        seen,
        [
            (
                "spawn_brick".to_string(),
                vec![1.into(), 2.into(), 0.into()]
            ),
            (
                "spawn_brick".to_string(),
                vec![3.into(), 4.into(), 5.into()]
            ),
        ]
    );
    assert_eq!(
        o.confined,
        Some(serde_json::json!({"landlock": "full", "seccomp": true}))
    );
}

#[test]
fn the_sandbox_hides_what_a_plain_process_sees() {
    let code = "import os\nprint(os.path.exists('/etc/hostname'), os.getuid())";
    let mut none = |_: &ApiCall| -> Result<Value, String> { Err("none".into()) };
    let plain = Runner::new("auto", Isolation::Plain)
        .unwrap()
        .run(&job(code, 0), &mut none);
    assert_eq!(plain.status, Status::Ok);
    let me = nix::unistd::getuid().as_raw();
    assert_eq!(
        String::from_utf8_lossy(&plain.output),
        format!("True {me}\n")
    );
    assert_eq!(plain.confined, None);
    let Some(boxed) = run(code, 0, &mut none) else {
        return;
    };
    // Inside its user namespace the job is 65534, whoever started it.
    assert_eq!(String::from_utf8_lossy(&boxed.output), "False 65534\n");
}

#[test]
fn a_signal_that_ends_the_job_names_its_limit() {
    let mut none = |_: &ApiCall| -> Result<Value, String> { Err("none".into()) };
    let mut j = job("while True:\n    pass\n", 0);
    j.limits.cpu_secs = 1;
    let o = sandbox().run(&j, &mut none);
    if !probe::probe().complete() {
        assert_eq!(o.status, Status::Rejected);
        return;
    }
    assert_eq!(
        (o.status, o.limit),
        (Status::Timeout, Limit::CpuTime),
        "{}",
        o.reason
    );
    assert_eq!(o.exit_code, 128 + libc::SIGXCPU);
    // A job that ignores SIGXCPU meets the hard limit's SIGKILL a second later: still the CPU.
    let mut j = job(
        "import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True:\n    pass\n",
        0,
    );
    j.limits.cpu_secs = 1;
    let o = sandbox().run(&j, &mut none);
    assert_eq!(o.exit_code, 128 + libc::SIGKILL, "{}", o.reason);
    assert_eq!(
        (o.status, o.limit),
        (Status::Timeout, Limit::CpuTime),
        "{}",
        o.reason
    );
}

#[test]
fn every_command_answers_help_without_running_anything() {
    for args in [
        &["--help"][..],
        &["run", "--help"],
        &["probe", "--help"],
        &["api", "--help"],
    ] {
        let out = Command::new(HELPER).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage: gos-dna-sandbox"), "{args:?}: {text}");
    }
}

#[test]
fn without_bwrap_a_job_is_refused_in_one_line() {
    let dir = std::env::temp_dir();
    let out = Command::new(HELPER)
        .args(["run", "/dev/null"])
        .env("PATH", &dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("bwrap is not on PATH"), "{err}");
}
