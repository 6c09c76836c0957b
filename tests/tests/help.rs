//! Every binary and example of the workspace answers `--help` with its usage, exit status 0,
//! and does nothing else: no bus attached (none is running for this test), no benchmark run.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

#[test]
fn every_program_answers_help_and_does_nothing_else() {
    let dir = bin_dir();
    let programs = [
        "gos-bus",
        "gos-bus-peer",
        "gos-render-node",
        "gos-render-bench",
        "gos-dna-sandbox",
        "gos-dna-wasm",
        "gos-bus-bench",
        "examples/frames",
        "examples/watch",
        "examples/load_bench",
    ];
    let mut missing = Vec::new();
    for p in programs {
        let path = dir.join(p);
        if !path.exists() {
            missing.push(p);
            continue;
        }
        let out = Command::new(&path)
            // A bus name no broker serves: a program that attached would fail.
            .env("GOS_BUS", "no-such-bus-for-help")
            .arg("--help")
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(
            out.status.success(),
            "{p} --help: {:?}\n{stdout}{stderr}",
            out.status
        );
        assert!(
            stdout.to_lowercase().contains("usage")
                || stdout.contains(p.rsplit('/').next().unwrap()),
            "{p} --help prints its usage: {stdout}"
        );
        assert!(
            !stderr.to_lowercase().contains("error"),
            "{p} --help: {stderr}"
        );
        assert!(
            !stdout.contains("| ---"),
            "{p} --help ran the benchmark: {stdout}"
        );
    }
    assert!(
        missing.is_empty(),
        "not built: {missing:?} (build the workspace first: `cargo build --workspace --bins --examples`)"
    );
}
