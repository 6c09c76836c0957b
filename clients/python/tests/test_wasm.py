"""WebAssembly Hybrid DNA: Pixel Code Executor cartridges, run by the DNA executor in its
wasmtime worker (gos-dna-wasm), through a real broker; values come back in the DnaResult."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, Tuple

import pytest

import gos_bus
from gos_bus import RtsAsset
from gos_bus.daemons import API_ALL, make_job, make_wasm_job
from test_dna import PKG, VARIANTS, needs_sandbox

WASM = {e["file"]: e["wasm"] for e in json.loads((VARIANTS / "expected.json").read_text()) if "wasm" in e}
LOG = gos_bus._native.constant("DNA_API_LOG")


def module(name: str) -> bytes:
    m = RtsAsset.load(VARIANTS / name).wasm_module
    assert m is not None
    return m


def test_cartridges_carry_modules_and_other_assets_do_not() -> None:
    assert len(WASM) == 5
    for name in WASM:
        assert module(name)[:4] == b"\0asm"
    assert RtsAsset.load(VARIANTS / "logic-itxt.rts.png").wasm_module is None


def test_wasm_jobs_refuse_what_a_record_cannot_carry() -> None:
    with pytest.raises(ValueError, match="longer than 64 bytes"):
        make_wasm_job(1, b"\0asm", export="x" * 65)
    with pytest.raises(ValueError, match="at most 8"):
        make_wasm_job(1, b"\0asm", args=(("i32", 1),) * 9)
    with pytest.raises(ValueError, match="out of the range of an i32"):
        make_wasm_job(1, b"\0asm", args=(("i32", 1 << 32),))
    with pytest.raises(ValueError, match="not one of"):
        make_wasm_job(1, b"\0asm", args=(("u8", 1),))


@pytest.fixture
def executor(served: str) -> Iterator[Tuple[Any, Any, Any]]:
    bus = gos_bus.Bus.attach(served)
    results = bus.subscriber("dna.results")
    events = bus.subscriber("events")
    jobs = bus.publisher("dna.jobs")
    p = subprocess.Popen([sys.executable, "-m", "gos_bus.daemons", "dna-exec", "--bus", served],
                         cwd=PKG, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    try:
        yield jobs, results, events
    finally:
        p.terminate()
        _, err = p.communicate(timeout=30)
        assert "WebAssembly: wasmtime, worker confined by Landlock (full) and seccomp" in err, err


def _results(results: Any, n: int) -> Dict[int, Dict[str, Any]]:
    out = {}
    while len(out) < n:
        with results.recv(timeout=60) as r:
            h = r.header
            values = []
            for i in range(h.value_count):
                values.append((h.value_types[i], h.values[i]))
            out[h.job_id] = {"status": h.status, "output": bytes(r.tail()[: h.output_len]).decode(),
                             "calls": h.api_calls, "limit": h.limit, "values": values}
    return out


@needs_sandbox
def test_every_cartridge_runs_in_the_executor_as_expected_json_says(executor: Tuple[Any, Any, Any]) -> None:
    jobs, results, events = executor
    c = gos_bus._native.constant
    sent = {}
    for i, (name, want) in enumerate(sorted(WASM.items()), start=1):
        args = tuple(("i32", a) for a in want["args"])
        texture = RtsAsset.load(VARIANTS / name).texture_id  # spawn_brick(x, y, 0) shows it
        head, code = make_wasm_job(i, module(name), export=want["export"], args=args, timeout_ms=500, api_mask=API_ALL,
                                   texture_id=texture)
        jobs.send(head + code, timeout=5)
        sent[i] = (name, want)
    # The import cartridge again, granted only `log`: refused before it runs, naming the import.
    head, code = make_wasm_job(99, module("wasm-import.rts.png"), api_mask=LOG)
    jobs.send(head + code, timeout=5)
    # A script beside them still runs in the Python sandbox.
    head, code = make_job(100, "print(6 * 7)")
    jobs.send(head + code, timeout=5)
    done = _results(results, len(sent) + 2)
    for i, (name, want) in sent.items():
        r = done[i]
        if isinstance(want["result"], list):
            assert r["status"] == c("DNA_STATUS_OK"), (name, r)
            assert r["values"] == [(c("DNA_VALUE_I32"), v & ((1 << 64) - 1)) for v in want["result"]], (name, r)
        elif want["result"] == "time limit":
            assert r["status"] == c("DNA_STATUS_TIMEOUT") and r["limit"] == c("DNA_LIMIT_WALL_TIME"), (name, r)
        else:
            assert r["status"] == c("DNA_STATUS_OK") and r["calls"] == 1, (name, r)
    assert done[99]["status"] == c("DNA_STATUS_REJECTED")
    assert "gos.spawn_brick" in done[99]["output"] and "not granted" in done[99]["output"]
    assert done[100]["output"] == "42\n"
    with events.recv(timeout=30) as m:
        event = json.loads(bytes(m.payload))
    assert event["event"] == "spawn_brick" and (event["x"], event["y"]) == (3, 4), event


@needs_sandbox
def test_a_broken_module_and_a_trap_are_answered_and_the_worker_goes_on(executor: Tuple[Any, Any, Any]) -> None:
    jobs, results, _ = executor
    c = gos_bus._native.constant
    double = module("wasm-double.rts.png")
    for i, (mod, export, args) in enumerate([
        (b"\0asm\x01\0\0\0\x05\xff", "", ()),                 # malformed
        (double, "double", (("i64", 21),)),                   # wrong argument type
        (double, "double", (("i32", 2 ** 30),)),              # wraps, as i32.mul does
        (double, "double", (("i32", -21),)),
    ], start=1):
        head, code = make_wasm_job(i, mod, export=export, args=args)
        jobs.send(head + code, timeout=5)
    done = _results(results, 4)
    assert done[1]["status"] == c("DNA_STATUS_REJECTED") and "not a valid WebAssembly module" in done[1]["output"]
    assert done[2]["status"] == c("DNA_STATUS_REJECTED") and "takes (i32) but was given (i64)" in done[2]["output"]
    assert done[3]["values"] == [(c("DNA_VALUE_I32"), (-(2 ** 31)) & ((1 << 64) - 1))], done[3]
    assert done[4]["values"] == [(c("DNA_VALUE_I32"), -42 & ((1 << 64) - 1))], done[4]


@needs_sandbox
def test_the_watcher_turns_a_cartridge_into_a_wasm_job_whose_call_reaches_the_bus(
        executor: Tuple[Any, Any, Any], served: str, tmp_path: Path) -> None:
    _, results, events = executor
    folder = tmp_path / "rts"
    folder.mkdir()
    for name in ("wasm-import.rts.png", "wasm-import.rts.rts.meta.json"):
        shutil.copy(VARIANTS / name, folder / name)
    watcher = subprocess.Popen([sys.executable, "-m", "gos_bus.daemons", "rts-watch", "--bus", served,
                                "--folder", str(folder)], cwd=PKG, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        (job_id, r), = _results(results, 1).items()
        with events.recv(timeout=30) as m:
            event = json.loads(bytes(m.payload))
    finally:
        watcher.terminate()
        out, _ = watcher.communicate(timeout=30)
    assert job_id >> 62 == 0b11, "an asset's WebAssembly job"
    assert r["status"] == 0 and r["calls"] == 1, r
    texture = RtsAsset.load(folder / "wasm-import.rts.png").texture_id
    assert event["event"] == "spawn_brick" and event["shown_texture"] == texture, event
    assert "submitted WebAssembly job" in out


def test_a_worker_lost_mid_job_is_reported_and_replaced() -> None:
    from gos_bus.dna import WasmSandbox

    worker = WasmSandbox()
    assert worker.start()["seccomp"] is True
    spawn = gos_bus._native.constant("DNA_API_SPAWN_BRICK")

    def crash(name: str, args: list) -> None:
        assert worker._p is not None
        worker._p.kill()  # the worker dies while the module waits for this answer
        worker._p.wait()

    r = worker.run(module("wasm-import.rts.png"), crash, api_mask=spawn, timeout=5)
    assert r.status == "error" and "worker ended mid-job (signal 9)" in r.reason, r
    assert r.output.strip() == r.reason

    def stall(name: str, args: list) -> None:
        import time

        time.sleep(3)  # longer than the job's time limit and the grace together

    slow = WasmSandbox(grace=0.5)
    r = slow.run(module("wasm-import.rts.png"), stall, api_mask=spawn, timeout=0.2)
    assert r.status == "timeout" and "did not answer within" in r.reason, r
    # Both start again for the next job.
    for w in (worker, slow):
        assert w.run(module("wasm-answer.rts.png"), crash).values[0]["value"] == 7
        w.close()


def test_values_no_record_can_hold_are_refused() -> None:
    from gos_bus.daemons import _checked_values

    i32 = gos_bus._native.constant("DNA_VALUE_I32")
    assert _checked_values(({"code": i32, "bits": 7},)) == ({"code": i32, "bits": 7},)
    assert _checked_values(({"code": i32, "bits": 7},) * 9) is None
    assert _checked_values(({"code": 99, "bits": 7},)) is None
    assert _checked_values(({"code": i32, "bits": -1},)) is None
    assert _checked_values(({"code": i32, "bits": 1 << 64},)) is None


def test_arguments_and_limits_are_checked_before_anything_runs() -> None:
    from gos_bus.dna import WasmSandbox

    for bad in [("i32", 2.5), ("i32", "21"), ("i32", True), ("f64", "1.5")]:
        with pytest.raises(ValueError, match="is not an"):
            make_wasm_job(1, b"\0asm", args=(bad,))
    with pytest.raises(ValueError, match="not a \\(type, value\\) pair"):
        make_wasm_job(1, b"\0asm", args=(21,))  # type: ignore[arg-type]
    worker = WasmSandbox()
    for t in (0, -1, 1e300, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="from 0.001 to 604800"):
            worker.run(module("wasm-answer.rts.png"), lambda n, a: None, timeout=t)
    r = worker.run(module("wasm-double.rts.png"), lambda n, a: None, export="double", args=[{"type": "f64"}])
    assert r.status == "rejected" and "job.args[0]" in r.reason, r
    worker.close()
    with pytest.raises(gos_bus.HybridDNARejectedError, match="cannot be started"):
        WasmSandbox(tool=Path("/etc/passwd")).start()
