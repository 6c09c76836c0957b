"""The two daemons as real processes: the RTS watcher and the Hybrid DNA executor."""

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
from gos_bus.daemons import CODE_HYBRID, CODE_ZLIB, STATUS_ERROR, STATUS_OK, STATUS_REJECTED, STATUS_TIMEOUT, make_job

PKG = Path(__file__).resolve().parents[1]
# GOS_RTS_FIXTURES when set (scripts/test points it at ../shared/fixtures/rts), else the
# repository's copies in assets/rts.
FIXTURES = Path(os.environ.get("GOS_RTS_FIXTURES") or Path(__file__).resolve().parents[3] / "assets" / "rts")


def daemon(*args: str) -> subprocess.Popen:
    p = subprocess.Popen(
        [sys.executable, "-m", "gos_bus.daemons", *args],
        cwd=PKG,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    return p


def test_rts_watcher_publishes_new_and_changed_files(served: str, tmp_path: Path) -> None:
    assert (FIXTURES / "expected.json").exists(), f"PixelRTS fixtures missing at {FIXTURES}"
    expected = {e["file"]: e for e in json.loads((FIXTURES / "expected.json").read_text())}
    folder = tmp_path / "assets"
    folder.mkdir()
    for name in expected:
        shutil.copy(FIXTURES / name, folder / name)
    (folder / "broken.rts.png").write_bytes(b"not a png")
    sub = gos_bus.Bus.attach(served).subscriber("rts.textures")
    watcher = daemon("rts-watch", "--folder", str(folder), "--bus", served, "--every", "0.1")
    try:
        got = {}
        for _ in expected:
            with sub.recv(timeout=10) as msg:
                h = msg.header
                got[bytes(h.sha256).hex()] = (h.width, h.data_size, bytes(msg.tail()[h.pixel_bytes : h.pixel_bytes + h.metadata_len]))
        for e in expected.values():
            assert e["sha256"] in got, f"{e['file']} decoded to its expected SHA-256"
            assert got[e["sha256"]][1] == e["data_size"]
            assert json.loads(got[e["sha256"]][2])["data_size"] == e["data_size"]
        # A changed file is published again.
        time.sleep(0.05)
        shutil.copy(FIXTURES / "blob-65536.rts.png", folder / "blob-1.rts.png")
        with sub.recv(timeout=10) as msg:
            assert bytes(msg.header.sha256).hex() == expected["blob-65536.rts.png"]["sha256"]
    finally:
        watcher.terminate()
        out, err = watcher.communicate(timeout=10)
    assert watcher.returncode == 0
    assert "skipped broken.rts.png: cannot use" in err and "not a valid PNG" in err


def _submit(pub: gos_bus.Publisher, job_id: int, source: str, **kw) -> None:
    head, code = make_job(job_id, source, **kw)
    n = len(head)  # the DnaJob record's size, as the layouts say
    with pub.loan() as m:
        m.payload[:n] = head
        m.payload[n : n + len(code)] = code
        m.commit(n + len(code))



def published(bus: str, ring: str) -> int:
    """Messages published on `ring`, as `gos-bus monitor --once --json` reports it."""
    out = subprocess.run(
        [binary("gos-bus"), "monitor", "--bus", bus, "--once", "--json"], capture_output=True, text=True, check=True
    ).stdout
    return next(r["published"] for r in json.loads(out)["rings"] if r["name"] == ring)


def test_rts_watcher_stops_on_sigterm_while_the_ring_is_full(served: str, tmp_path: Path) -> None:
    """A subscriber that never reads fills the block-policy ring (8 slots); the watcher, with
    more files to publish, must still stop promptly on SIGTERM."""
    folder = tmp_path / "many"
    folder.mkdir()
    names = [e["file"] for e in json.loads((FIXTURES / "expected.json").read_text())]
    for copy in range(3):
        for name in names:
            shutil.copy(FIXTURES / name, folder / f"c{copy}-{name}")
    sub = gos_bus.Bus.attach(served).subscriber("rts.textures")  # attached, never reads
    watcher = daemon("rts-watch", "--folder", str(folder), "--bus", served, "--every", "0.1")
    try:
        deadline = time.monotonic() + 10
        while published(served, "rts.textures") < 8:
            assert time.monotonic() < deadline, "the watcher did not fill the ring"
            time.sleep(0.05)
        time.sleep(0.5)
        # 15 files, 8 slots, nobody reading: the watcher is waiting for a slot.
        assert published(served, "rts.textures") == 8
        watcher.terminate()
        # Stopping is the event (the timeout only keeps a hung watcher from hanging the suite).
        watcher.communicate(timeout=60)
        assert watcher.returncode == 0
    finally:
        if watcher.poll() is None:
            watcher.kill()
        sub.close()

OPEN_FDS = """
import os
n = 0
for fd in range(1024):
    try:
        os.fstat(fd)
        n += 1
    except OSError:
        pass
print(n)
"""


def test_dna_executor_runs_each_job_in_a_sandboxed_process(served: str) -> None:
    bus = gos_bus.Bus.attach(served)
    results = bus.subscriber("dna.results")
    jobs = bus.publisher("dna.jobs")
    execs = [daemon("dna-exec", "--bus", served) for _ in range(2)]  # two competing executors
    try:
        _submit(jobs, 1, "print(6 * 7)")
        _submit(jobs, 2, "raise ValueError('bad genome')")
        _submit(jobs, 3, "while True: pass", timeout_ms=500)
        _submit(jobs, 4, "import os\nprint(sorted(os.environ))", encoding=CODE_ZLIB)
        _submit(jobs, 5, OPEN_FDS, encoding=CODE_HYBRID)
        _submit(jobs, 6, "x = bytearray(1 << 30)")
        head, code = make_job(7, "print(1)")
        with jobs.loan() as m:  # a job whose code does not match its CRC-32
            m.payload[: len(head)] = head
            m.payload[len(head) : len(head) + len(code)] = b"X" * len(code)
            m.commit(len(head) + len(code))
        out = {}
        for _ in range(7):
            with results.recv(timeout=20) as r:
                h = r.header
                out[h.job_id] = (h.status, bytes(r.tail()[: h.output_len]).decode())
    finally:
        for e in execs:
            e.terminate()
            e.communicate(timeout=10)
    assert out[1] == (STATUS_OK, "42\n")
    assert out[2][0] == STATUS_ERROR and "ValueError: bad genome" in out[2][1]
    assert out[3][0] == STATUS_TIMEOUT and "wall-time limit of 0.500 s" in out[3][1]
    assert out[4][0] == STATUS_OK and set(eval(out[4][1])) <= {"HOME", "LANG", "LC_CTYPE", "PATH", "PWD", "TMPDIR"}
    # stdin, stdout, stderr and the API channel's two ends: nothing inherited from the executor.
    assert out[5][0] == STATUS_OK and int(out[5][1]) <= 5, "no inherited file descriptors"
    assert out[6][0] == STATUS_ERROR and "MemoryError" in out[6][1], "the memory limit holds"
    assert out[7][0] == STATUS_REJECTED and "CRC-32" in out[7][1]


def test_clients_are_named_after_their_daemon_not_the_interpreter(served: str) -> None:
    """`gos-bus info` names a Daemon's clients after its class, and other Python clients after
    their script, never `python3.11`."""

    class ThumbnailDaemon(gos_bus.Daemon):
        ring = "events"
        layout = "Bytes"

        def handle(self, msg: gos_bus.Message) -> None:
            pass

    daemon = ThumbnailDaemon(bus=served)
    sub = daemon.bus.subscriber("events")
    gos_bus.set_client_name("thumbnail-\u00e9t\u00e9\n-a-long-name-to-cut")
    other = gos_bus.Bus.attach(served).subscriber("events")
    try:
        info = json.loads(subprocess.run([binary("gos-bus"), "info", "events", "--bus", served, "--json"],
                                         capture_output=True, text=True, check=True).stdout)
    finally:
        sub.close()
        other.close()
    names = sorted(c["name"] for c in info["clients"])
    assert names == ["ThumbnailDaemon", "thumbnail-\u00e9t\u00e9?-a-long-"], names  # 24 bytes
