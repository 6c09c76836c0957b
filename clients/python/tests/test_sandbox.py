"""Hybrid DNA is hostile: escape attempts through the real executor on a real bus.

One broker and one `dna-exec` process serve every test here. Each escape is a job that must
fail at its goal; after each, the executor and the bus keep working: every ring still
validates (`gos-bus monitor --once --json`) and the next benign job runs ok. Each result
says why the job failed: status, exit code and the limit that hit.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Dict, Iterator, Tuple

import pytest

import gos_bus
from conftest import MANIFEST, Peer, binary
from gos_bus import _native
from gos_bus.daemons import STATUS_ERROR, STATUS_OK, STATUS_TIMEOUT, make_job

PKG = Path(__file__).resolve().parents[1]
LIMIT = {c["name"]: c["value"] for c in _native.document()["constants"] if c["name"].startswith("DNA_LIMIT_")}
API_ALL = _native.constant("DNA_API_LOG") | _native.constant("DNA_API_SPAWN_BRICK") | _native.constant("DNA_API_DEPLOY_TO_MAP")

pytestmark = pytest.mark.skipif(
    subprocess.run([binary("gos-dna-sandbox"), "probe"], capture_output=True).returncode != 0,
    reason="this kernel lacks a sandbox layer (gos-dna-sandbox probe says which); the executor refuses to run",
)


class Bench:
    """The bus, the executor, a publisher of jobs and a subscriber of results."""

    def __init__(self, bus: str, executor: subprocess.Popen) -> None:
        self.bus = bus
        self.executor = executor
        self.attached = gos_bus.Bus.attach(bus)
        self.jobs = self.attached.publisher("dna.jobs")
        self.results = self.attached.subscriber("dna.results")
        self.next_id = 1

    def run(self, code: str, timeout_ms: int = 10_000, api_mask: int = 0) -> Tuple[int, int, int, str]:
        """Submits one job and waits for its result: (status, exit code, limit, output)."""
        job_id = self.next_id
        self.next_id += 1
        head, body = make_job(job_id, code, timeout_ms=timeout_ms, api_mask=api_mask)
        self.jobs.send(head + body, timeout=5)
        while True:
            with self.results.recv(timeout=60) as r:
                h = r.header
                if h.job_id == job_id:
                    return h.status, h.exit_code, h.limit, bytes(r.tail()[: h.output_len]).decode()

    def rings_whole(self) -> Dict[str, object]:
        """Every ring as the monitor reads it; fails if one does not validate."""
        out = subprocess.run([binary("gos-bus"), "monitor", "--once", "--json", "--bus", self.bus],
                             capture_output=True, text=True, check=True)
        snap = json.loads(out.stdout)
        assert snap.get("registry_error") is None, snap["registry_error"]
        bad = {r["name"]: r["error"] for r in snap["rings"] if r.get("error")}
        assert not bad, f"damaged rings after the job: {bad}"
        return snap

    def still_works(self) -> None:
        assert self.executor.poll() is None, "the executor died"
        self.rings_whole()
        status, code, limit, out = self.run("print(sum(range(10)))")
        assert (status, code, limit, out) == (STATUS_OK, 0, 0, "45\n")


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    tmp = tmp_path_factory.mktemp("sandbox")
    bus = f"sbx{os.getpid()}"
    manifest = tmp / "rings.toml"
    manifest.write_text(MANIFEST)
    broker = Peer("broker", bus, str(manifest), "1000").ready()
    executor = subprocess.Popen(
        [sys.executable, "-m", "gos_bus.daemons", "dna-exec", "--bus", bus, "--limit", "cpu=2"],
        cwd=PKG, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert executor.stdout is not None and executor.stdout.readline().strip() == "ready"
    b = Bench(bus, executor)
    try:
        yield b
    finally:
        executor.send_signal(signal.SIGTERM)
        executor.communicate(timeout=30)
        assert broker.proc.stdin is not None
        broker.proc.stdin.close()
        broker.proc.wait(timeout=10)
        subprocess.run([binary("gos-bus"), "clean", "--bus", bus, "--force"], capture_output=True)


def test_the_bus_memory_is_out_of_reach(bench: Bench) -> None:
    rings = sorted(p for p in os.listdir("/dev/shm") if p.startswith(f"gos.{bench.bus}"))
    assert f"gos.{bench.bus}.events" in rings
    before = {r: Path("/dev/shm", r).read_bytes()[:16] for r in rings}
    code = f"""
import os
print("listing", os.listdir("/dev/shm"))
for name in {rings!r}:
    for mode in ("rb", "r+b", "wb"):
        try:
            with open("/dev/shm/" + name, mode) as f:
                f.write(b"\\xff" * 64) if "b" in mode and mode != "rb" else f.read(64)
            print("ESCAPED", name, mode)
        except OSError as e:
            print("refused", name, mode, type(e).__name__)
"""
    status, _, _, out = bench.run(code)
    assert status == STATUS_OK and "ESCAPED" not in out and "listing []" in out, out
    # The magics and versions the job aimed at are untouched (the rest is live state).
    assert {r: Path("/dev/shm", r).read_bytes()[:16] for r in rings} == before
    bench.still_works()


def test_a_canary_file_cannot_be_read(bench: Bench, tmp_path: Path) -> None:
    secret = uuid.uuid4().hex
    canary = tmp_path / "canary.txt"
    canary.write_text(secret)
    canary.chmod(0o644)
    code = f"""
for path in ({str(canary)!r}, "/etc/passwd", "/etc/shadow", "/root/.bashrc", "/proc/1/environ"):
    try:
        print("READ", path, open(path).read())
    except OSError as e:
        print("refused", path, type(e).__name__)
# What is mounted but not granted: Landlock refuses writing in the sandbox's own /dev.
try:
    open("/dev/shm/stash", "w").write("x")
    print("WROTE /dev/shm/stash")
except OSError as e:
    print("dev", type(e).__name__)
"""
    status, _, _, out = bench.run(code)
    assert status == STATUS_OK and secret not in out and "READ" not in out, out
    assert "dev PermissionError" in out, out
    assert not Path("/dev/shm/stash").exists()
    bench.still_works()


def test_nothing_is_written_outside_the_work_folder(bench: Bench, tmp_path: Path) -> None:
    token = uuid.uuid4().hex
    targets = [tmp_path / f"escape-{token}", Path(f"/tmp/escape-{token}"), Path(f"/usr/escape-{token}")]
    tmp_path.chmod(0o777)  # even a folder open to everyone stays out of reach
    code = f"""
for path in {[str(t) for t in targets]!r} + ["/work/inside"]:
    try:
        open(path, "w").write("x")
        print("WROTE", path)
    except OSError as e:
        print("refused", path, type(e).__name__)
"""
    status, _, _, out = bench.run(code)
    assert status == STATUS_OK, out
    assert "WROTE /work/inside" in out, "the work folder is writable"
    for t in targets:
        assert not t.exists(), f"{t} was written"
        assert f"WROTE {t}" not in out
    bench.still_works()


def test_no_connection_reaches_a_listener_on_loopback(bench: Bench) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    code = f"""
import socket
for family, addr in ((socket.AF_INET, ("127.0.0.1", {port})), (socket.AF_INET6, ("::1", {port}))):
    try:
        socket.create_connection(addr[:2], timeout=2)
        print("CONNECTED", addr)
    except OSError as e:
        print("refused", addr, type(e).__name__, e.errno)
"""
    try:
        status, _, _, out = bench.run(code)
        assert status == STATUS_OK and "CONNECTED" not in out, out
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever reached it
    finally:
        listener.close()
    bench.still_works()


def test_no_descriptor_of_the_executor_reaches_the_job(tmp_path: Path) -> None:
    # An open file of whoever starts the runner (here a secret file on descriptor N) is not
    # inherited: the job has stdio and its channel (3, 4), nothing else.
    secret = tmp_path / "secret"
    secret.write_text("s3cret")
    code = tmp_path / "fds.py"
    code.write_text("import os\nfds = []\nfor fd in range(1024):\n    try:\n        os.fstat(fd)\n        fds.append(fd)\n"
                    "    except OSError:\n        pass\nprint(fds)\n")
    with open(secret) as held:
        done = subprocess.run([binary("gos-dna-sandbox"), "run", str(code)], pass_fds=(held.fileno(),),
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[0, 1, 2, 3, 4]\n"


def test_a_fork_bomb_stops_at_the_process_limit(bench: Bench) -> None:
    status, code, limit, out = bench.run("import os\nwhile True:\n    os.fork()\n")
    assert status == STATUS_ERROR and code == 1 and limit == LIMIT["DNA_LIMIT_PROCESSES"], out
    assert "process limit of 32" in out
    bench.still_works()


def test_memory_past_the_limit_is_refused(bench: Bench) -> None:
    status, code, limit, out = bench.run("x = bytearray(2 << 30)\nprint('GOT IT')\n")
    assert status == STATUS_ERROR and code == 1 and limit == LIMIT["DNA_LIMIT_MEMORY"], out
    assert "GOT IT" not in out and "MemoryError" in out
    bench.still_works()


def test_a_spin_stops_at_the_cpu_limit(bench: Bench) -> None:
    # The executor runs with --limit cpu=2; the job's own time limit (10 s) is further away.
    status, code, limit, out = bench.run("while True:\n    pass\n", timeout_ms=10_000)
    assert status == STATUS_TIMEOUT and limit == LIMIT["DNA_LIMIT_CPU_TIME"], out
    assert code == 128 + signal.SIGXCPU and "CPU-time limit of 2 s" in out
    bench.still_works()


def test_no_other_process_can_be_signalled_or_traced(bench: Bench) -> None:
    victim = subprocess.Popen(["sleep", "600"])
    try:
        code = f"""
import ctypes, os, signal
for pid in ({victim.pid}, {bench.executor.pid}, {os.getpid()}, 1, -1):
    try:
        os.kill(pid, signal.SIGKILL)
        print("signalled", pid)
    except OSError as e:
        print("refused kill", pid, type(e).__name__)
libc = ctypes.CDLL(None, use_errno=True)
for pid in ({victim.pid}, {bench.executor.pid}, 1):
    r = libc.ptrace(16, pid, None, None)  # PTRACE_ATTACH
    print("ptrace", pid, r, ctypes.get_errno())
# Inside the sandbox too: its own init is out of the job's Landlock domain (signals scoped),
# and even its own child cannot be traced (seccomp).
try:
    os.kill(1, 0)
    print("SIGNALLED init")
except OSError as e:
    print("init", type(e).__name__)
child = os.fork()
if child == 0:
    os.read(os.open("/dev/null", os.O_RDONLY), 1)
    os._exit(0)
print("ptrace own child", libc.ptrace(16, child, None, None), ctypes.get_errno())
os.kill(child, signal.SIGKILL)
os.waitpid(child, 0)
"""
        status, _, _, out = bench.run(code)
        assert "ptrace" in out, out
        for line in out.splitlines():
            if line.startswith("ptrace "):
                assert line.split()[-2] == "-1", f"ptrace attached: {line}"
        assert "init PermissionError" in out and "SIGNALLED" not in out, out
        assert "ptrace own child -1 1" in out, "seccomp refuses ptrace with EPERM"
        assert victim.poll() is None, "the victim was killed"
        assert bench.executor.poll() is None, "the executor was killed"
        assert status in (STATUS_OK, STATUS_ERROR), out
    finally:
        victim.kill()
        victim.wait()
    bench.still_works()


def test_filling_the_work_folder_stops_at_its_size(bench: Bench) -> None:
    code = "with open('/work/fill', 'wb') as f:\n    for _ in range(1024):\n        f.write(bytes(1 << 20))\n"
    status, code_, limit, out = bench.run(code)
    assert status == STATUS_ERROR and code_ == 1 and limit == LIMIT["DNA_LIMIT_WORK_FOLDER"], out
    assert "work folder full: 16 MiB" in out
    bench.still_works()


def test_printing_gigabytes_stops_at_the_output_limit(bench: Bench) -> None:
    code = "import sys\nline = 'x' * (1 << 20)\nfor _ in range(4096):\n    sys.stdout.write(line)\n"
    status, _, limit, out = bench.run(code)
    assert status == STATUS_ERROR and limit == LIMIT["DNA_LIMIT_OUTPUT"], out[-200:]
    assert len(out) < 100_000, "the executor kept only the limit's worth"
    assert "passed the limit of 65536 bytes" in out
    bench.still_works()


def test_api_calls_are_checked_and_answered_through_the_bus(bench: Bench) -> None:
    events = bench.attached.subscriber("events")
    code = """
import gos
print(spawn_brick(40, 50, 7))
log("hello from a genome")
print(deploy_to_map(3, 4, "tower"))
for bad in ((lambda: spawn_brick("x", 1)), (lambda: log("a" * 5000)), (lambda: gos.deploy_to_map(1, 2, "../etc"))):
    try:
        bad()
        print("ACCEPTED")
    except gos.ApiError as e:
        print("refused:", e)
"""
    status, _, _, out = bench.run(code, api_mask=API_ALL)
    assert status == STATUS_OK and "ACCEPTED" not in out, out
    brick = out.splitlines()[0]
    assert brick.isdigit() and int(brick) >= 1, out
    assert out.splitlines()[1] == "True", out
    seen = []
    while len(seen) < 3:
        with events.recv(timeout=10) as m:
            seen.append(json.loads(bytes(m.payload)))
    assert [e["event"] for e in seen] == ["spawn_brick", "dna_log", "deploy_to_map"]
    assert (seen[0]["x"], seen[0]["y"], seen[0]["shown_texture"]) == (40, 50, 7)
    assert seen[1]["message"] == "hello from a genome"
    assert seen[2]["brick"] == "tower"
    # Not granted: refused in the job, nothing published.
    published = {r["name"]: r["published"] for r in bench.rings_whole()["rings"]}
    status, _, _, out = bench.run("log('x')")
    assert status == STATUS_ERROR and "log is not granted to this job" in out, out
    after = {r["name"]: r["published"] for r in bench.rings_whole()["rings"]}
    assert after["events"] == published["events"]
    events.close()
    bench.still_works()
