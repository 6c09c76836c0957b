"""The Geometry OS proposal's Hybrid DNA API: HybridDNA.execute, its errors, RtsAsset.extract_dna,
and DNA taken from assets by the RTS watcher, run by the executor, its calls seen on the bus."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import gos_bus
from conftest import binary
from gos_bus import HybridDNA, HybridDNAExecutionError, HybridDNARejectedError, HybridDNATimeoutError, RtsAsset

PKG = Path(__file__).resolve().parents[1]
VARIANTS = Path(os.environ.get("GOS_RTS_VARIANTS") or Path(__file__).resolve().parents[3] / "assets" / "rts-variants")
EXPECTED = json.loads((VARIANTS / "expected.json").read_text())
SANDBOX = subprocess.run([binary("gos-dna-sandbox"), "probe"], capture_output=True).returncode == 0
needs_sandbox = pytest.mark.skipif(not SANDBOX, reason="this kernel lacks a sandbox layer (gos-dna-sandbox probe)")


@needs_sandbox
def test_execute_injects_the_api_and_returns_what_the_job_printed() -> None:
    placed = []

    def spawn_brick(x: int, y: int, texture_id: int) -> int:
        placed.append((x, y, texture_id))
        return len(placed)

    dna = HybridDNA("n = spawn_brick(3, 4)\nimport gos\ngos.log(f'brick {n}')\nprint('placed', n)", texture_id=99)
    logged = []
    result = dna.execute(sandbox=True, api={"spawn_brick": spawn_brick, "log": logged.append}, timeout=30)
    assert result.ok and result.output == "placed 1\n"
    assert placed == [(3, 4, 99)], "texture_id 0 means the DNA's own texture"
    assert logged == ["brick 1"]
    assert result.calls == 2 and result.refused == 0
    assert result.confined == {"landlock": "full", "seccomp": True}


@needs_sandbox
def test_each_failure_is_its_own_exception_with_the_result() -> None:
    with pytest.raises(HybridDNATimeoutError) as t:
        HybridDNA("while True:\n    pass\n").execute(timeout=0.5)
    assert t.value.result is not None and t.value.result.limit == "wall-time"
    with pytest.raises(HybridDNAExecutionError) as e:
        HybridDNA("raise KeyError('genome')", source="test").execute()
    assert e.value.result is not None and "KeyError: 'genome'" in e.value.result.output
    assert str(e.value).startswith("Hybrid DNA (test): error: exit code 1, KeyError")
    with pytest.raises(HybridDNAExecutionError, match="not granted"):
        HybridDNA("spawn_brick(1, 2)").execute(api={"log": print})
    with pytest.raises(ValueError, match="unknown API function 'format_disk'"):
        HybridDNA("pass").execute(api={"format_disk": print})
    with pytest.raises(HybridDNARejectedError, match="python only"):
        HybridDNA("(module)", language="wasm").execute()
    # An API function that raises is an error inside the job, not in the caller.
    def broken(message: str) -> None:
        raise RuntimeError("disk full")

    r = HybridDNA("import gos\ntry:\n    log('x')\nexcept gos.ApiError as e:\n    print(e)").execute(api={"log": broken})
    assert r.output == "log: RuntimeError: disk full\n"
    # Without check, the result comes back whatever it is.
    assert HybridDNA("import sys; sys.exit(3)").execute(check=False).exit_code == 3


def test_without_a_sandbox_the_code_runs_as_a_plain_process() -> None:
    r = HybridDNA("import os\nprint(os.path.exists('/etc/hostname'))").execute(sandbox=False)
    assert r.ok and r.output == "True\n" and r.confined is None


def test_extract_dna_reads_every_carrier_geometry_os_writes() -> None:
    with_logic = [c for c in EXPECTED if "logic" in c]
    assert len(with_logic) == 4
    for case in with_logic:
        asset = RtsAsset.load(VARIANTS / case["file"])
        dna = asset.extract_dna()
        assert dna is not None and dna.code == case["logic"], case["file"]
        assert dna.texture_id == asset.texture_id != 0
    assert RtsAsset.load(VARIANTS / "module.rts.png").extract_dna() is None
    with pytest.raises(gos_bus.RtsAssetError, match="check the path"):
        RtsAsset.load(VARIANTS / "missing.rts.png")


@needs_sandbox
def test_extracted_dna_runs_in_the_sandbox() -> None:
    outputs = {}
    for case in (c for c in EXPECTED if "logic" in c):
        dna = RtsAsset.load(VARIANTS / case["file"]).extract_dna()
        assert dna is not None
        calls = []
        r = dna.execute(api={"spawn_brick": lambda *a: calls.append(a) or 1})
        outputs[case["file"]] = (r.output, calls)
    assert outputs["hybrid-dna-v1.rts.png"][0] == "9.0\n"
    assert outputs["logic-json.rts.png"][0] == outputs["logic-ztxt.rts.png"][0] == "45\n"
    itxt = RtsAsset.load(VARIANTS / "logic-itxt.rts.png")
    assert outputs["logic-itxt.rts.png"] == ("brick online\n", [(3, 4, itxt.texture_id)])


@needs_sandbox
def test_assets_that_carry_logic_become_jobs_whose_calls_reach_the_bus(served: str, tmp_path: Path) -> None:
    folder = tmp_path / "rts"
    folder.mkdir()
    # hybrid-dna-v1 has no size key (its texture is the whole grid); its DNA is a job too.
    for name in ("logic-itxt.rts.png", "logic-json.rts.png", "hybrid-dna-v1.rts.png"):
        shutil.copy(VARIANTS / name, folder / name)
    bus = gos_bus.Bus.attach(served)
    results = bus.subscriber("dna.results")
    events = bus.subscriber("events")
    executor = subprocess.Popen([sys.executable, "-m", "gos_bus.daemons", "dna-exec", "--bus", served],
                                cwd=PKG, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watcher = subprocess.Popen([sys.executable, "-m", "gos_bus.daemons", "rts-watch", "--bus", served,
                                "--folder", str(folder)], cwd=PKG, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        done = {}
        while len(done) < 3:
            with results.recv(timeout=60) as r:
                h = r.header
                done[h.job_id] = (h.status, bytes(r.tail()[: h.output_len]).decode(), h.api_calls)
        with events.recv(timeout=30) as m:
            event = json.loads(bytes(m.payload))
    finally:
        for p in (watcher, executor):
            p.terminate()
            p.communicate(timeout=30)
    assert all(job_id >> 63 == 1 for job_id in done), "asset jobs carry the top bit"
    assert sorted(v[:2] for v in done.values()) == [(0, "45\n"), (0, "9.0\n"), (0, "brick online\n")]
    itxt = RtsAsset.load(folder / "logic-itxt.rts.png")
    assert event["event"] == "spawn_brick" and (event["x"], event["y"]) == (3, 4)
    assert event["shown_texture"] == event["texture_id"] == itxt.texture_id


def test_an_executor_without_its_sandbox_refuses_to_start(served: str, tmp_path: Path) -> None:
    # No bwrap on PATH: the executor says what is missing, in one line, and runs nothing; the
    # weaker mode does not change that (namespaces are the one layer it cannot do without).
    env = dict(os.environ, PATH=str(tmp_path))
    for weaker in ([], ["--weaker-sandbox"]):
        done = subprocess.run([sys.executable, "-m", "gos_bus.daemons", "dna-exec", "--bus", served, *weaker],
                              cwd=PKG, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode != 0 and done.stdout == "", weaker
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert "bwrap is not on PATH" in lines[0] and "--no-sandbox" in lines[0], lines[0]


def test_settings_that_cannot_work_stop_the_executor_at_start(served: str) -> None:
    # A limit that is not one, an interpreter that does not exist: one line at start, not a
    # rejection of every job later.
    for bad, says in ((["--limit", "memory=lots"], "'lots' is not a byte count"),
                      (["--python", "/nonexistent/python3"], "/nonexistent/python3")):
        done = subprocess.run([sys.executable, "-m", "gos_bus.daemons", "dna-exec", "--bus", served, *bad],
                              cwd=PKG, capture_output=True, text=True, timeout=60)
        assert done.returncode != 0 and done.stdout == "", bad
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "cannot run jobs with these settings" in lines[0] and says in lines[0], done.stderr


def _descendants(pid: int) -> set:
    """Every process below `pid`, from /proc."""
    children: dict = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            found.add(c)
            todo.append(c)
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@needs_sandbox
def test_a_job_dies_with_its_executor(served: str) -> None:
    bus = gos_bus.Bus.attach(served)
    events = bus.subscriber("events")
    jobs = bus.publisher("dna.jobs")
    executor = subprocess.Popen([sys.executable, "-m", "gos_bus.daemons", "dna-exec", "--bus", served],
                                cwd=PKG, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert executor.stdout is not None and executor.stdout.readline().strip() == "ready"
    from gos_bus.daemons import API_ALL, make_job

    head, code = make_job(1, "log('spinning')\nwhile True:\n    pass\n", timeout_ms=600_000, api_mask=API_ALL)
    jobs.send(head + code, timeout=5)
    with events.recv(timeout=30) as m:  # the job is running
        assert json.loads(bytes(m.payload))["message"] == "spinning"
    below = _descendants(executor.pid)
    assert len(below) >= 3, "runner, bubblewrap and the job"
    executor.kill()
    executor.wait()
    # Every process of the job goes (SIGKILL down the chain: runner, bwrap, the sandbox).
    deadline = time.monotonic() + 60
    while any(_alive(p) for p in below):
        assert time.monotonic() < deadline, f"still running: {[p for p in below if _alive(p)]}"
        time.sleep(0.05)
