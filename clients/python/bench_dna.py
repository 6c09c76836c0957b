"""What isolation costs a Hybrid DNA job: the time from publishing a trivial job on `dna.jobs` to
its result on `dna.results`, through the DNA executor with the sandbox and without it, beside
starting the same script as a plain subprocess, and a trivial WebAssembly job (a cartridge's
module, compiled once and then cached) through the same executor. Prints a Markdown table.

    python3 clients/python/bench_dna.py [--runs 30]

Needs the release (or debug) build: `cargo build --release -p gos-bus -p gos-bus-c -p gos-dna -p gos-dna-wasm`.
Starts its own broker on a bus of its own and removes it at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gos_bus import Bus, RtsAsset, _native  # noqa: E402
from gos_bus.daemons import make_job, make_wasm_job  # noqa: E402

CODE = "print(sum(range(10)))"
CARTRIDGE = HERE.parents[1] / "assets" / "rts-variants" / "wasm-answer.rts.png"


def script_job(i: int) -> tuple:
    head, code = make_job(i, CODE)
    return head + code, lambda r: r.header.status == 0 and bytes(r.tail()[: r.header.output_len]) == b"45\n"


def wasm_job(i: int) -> tuple:
    module = RtsAsset.load(CARTRIDGE).wasm_module
    assert module is not None
    head, code = make_wasm_job(i, module)
    return head + code, lambda r: r.header.status == 0 and r.header.value_count == 1 and r.header.values[0] == 7


def gos_bus_binary() -> Path:
    return _native.tool("gos-bus", "GOS_BUS_BIN")


def figures(samples: list) -> tuple:
    s = sorted(samples)
    return statistics.median(s), s[int(len(s) * 0.9) - 1], statistics.fmean(s)


def through_the_bus(bus: str, runs: int, extra: list, job=script_job) -> list:
    ex = subprocess.Popen([sys.executable, "-m", "gos_bus.daemons", "dna-exec", "--bus", bus, *extra],
                          cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert ex.stdout is not None
    if ex.stdout.readline().strip() != "ready":
        sys.exit(f"bench_dna: the executor did not start: {ex.communicate()[1].strip()}")
    b = Bus.attach(bus)
    jobs, results = b.publisher("dna.jobs"), b.subscriber("dna.results")
    took = []
    try:
        for i in range(runs + 2):  # two to warm up
            message, ok = job(i + 1)
            t0 = time.perf_counter()
            jobs.send(message, timeout=5)
            with results.recv(timeout=60) as r:
                assert ok(r), bytes(r.tail()[: r.header.output_len])
            if i >= 2:
                took.append((time.perf_counter() - t0) * 1e3)
    finally:
        jobs.close()
        results.close()
        ex.terminate()
        ex.communicate(timeout=30)
    return took


def plain(runs: int) -> list:
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    took = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = subprocess.run([python, "-I", "-S", "-B", "-c", CODE], capture_output=True, check=True).stdout
        assert out == b"45\n"
        took.append((time.perf_counter() - t0) * 1e3)
    return took


def main() -> None:
    ap = argparse.ArgumentParser(prog="bench_dna.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=30, help="jobs per way (default 30)")
    args = ap.parse_args()
    bus = f"benchdna{os.getpid()}"
    broker = subprocess.Popen([str(gos_bus_binary()), "serve", "--bus", bus, "--remove-on-exit"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    assert broker.stderr is not None
    while "serving bus" not in (line := broker.stderr.readline()):
        if not line:
            sys.exit("bench_dna: the broker did not start")
    try:
        rows = [
            ("plain subprocess (python3 -I -S -c), no bus", plain(args.runs)),
            ("DNA executor, --no-sandbox (plain child of gos-dna-sandbox)", through_the_bus(bus, args.runs, ["--no-sandbox"])),
            ("DNA executor, sandbox (namespaces, Landlock, seccomp, rlimits)", through_the_bus(bus, args.runs, [])),
            ("DNA executor, WebAssembly job (wasmtime worker, module cached)",
             through_the_bus(bus, args.runs, [], job=wasm_job)),
        ]
    finally:
        broker.terminate()
        broker.wait(timeout=30)
    base = figures(rows[0][1])[0]
    print(f"| trivial job, {args.runs} runs each | p50 ms | p90 ms | mean ms | p50 / plain |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, took in rows:
        p50, p90, mean = figures(took)
        print(f"| {name} | {p50:.1f} | {p90:.1f} | {mean:.1f} | {p50 / base:.2f}x |")


if __name__ == "__main__":
    main()
