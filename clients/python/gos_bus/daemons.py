"""Two Geometry OS daemons on the bus.

    python3 -m gos_bus.daemons rts-watch --folder assets/ [--bus geometry] [--every 0.5]
    python3 -m gos_bus.daemons dna-exec [--bus geometry]

- `RtsWatcher` publishes every new or changed `.rts.png` of a folder on `rts.textures`, through
  the Rust loader. A file that is not usable PixelRTS is reported once (until it changes) and
  skipped.
- `DnaExecutor` takes `DnaJob`s from `dna.jobs` (a work queue: run several to share the work),
  runs each Python script in its own process with the job's time limit, CPU and memory limits,
  no inherited file descriptors and a scrubbed environment, and publishes a `DnaResult` (ok,
  error with the output, timeout, rejected) on `dna.results`.
"""

from __future__ import annotations

import argparse
import base64
import ctypes
import os
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path
from typing import Dict, Optional, Tuple

from .client import Bus, Message
from .daemon import Daemon
from .errors import GosBusError, Timeout
from . import _native
from .layouts import by_name
from .rts import RtsPublisher

# DnaJob / DnaResult codes, as the layouts define them (read from the library).
CODE_UTF8 = _native.constant("DNA_CODE_UTF8")
CODE_ZLIB = _native.constant("DNA_CODE_ZLIB")
CODE_HYBRID = _native.constant("DNA_CODE_HYBRID_V1")
LANG_UNKNOWN = _native.constant("DNA_LANG_UNKNOWN")
LANG_PYTHON = _native.constant("DNA_LANG_PYTHON")
STATUS_OK = _native.constant("DNA_STATUS_OK")
STATUS_ERROR = _native.constant("DNA_STATUS_ERROR")
STATUS_TIMEOUT = _native.constant("DNA_STATUS_TIMEOUT")
STATUS_REJECTED = _native.constant("DNA_STATUS_REJECTED")
DEFAULT_TIMEOUT_MS = _native.constant("DNA_DEFAULT_TIMEOUT_MS")
# The records themselves: sizes (where the code and output start), versions and magics.
_JOB = by_name("DnaJob")
_RESULT = by_name("DnaResult")


class RtsWatcher:
    """Publishes new and changed `.rts.png` files of `folder` on `rts.textures`."""

    def __init__(self, folder: str, bus: str = "geometry", ring: str = "rts.textures", every: float = 0.5) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"{folder} is not a folder to watch")
        self.every = every
        self._pub = RtsPublisher(Bus.attach(bus), ring)
        self._seen: Dict[str, Tuple[int, int]] = {}
        # A plain flag, not a threading.Event: a signal handler that sets an Event can deadlock
        # on the Event's own lock when the signal lands while the main thread holds it.
        self._stopping = False
        self.published = 0
        self.errors = 0

    def scan(self) -> int:
        """One pass over the folder; returns how many files were published."""
        n = 0
        for entry in sorted(os.scandir(self.folder), key=lambda e: e.name):
            if not entry.name.endswith(".rts.png") or not entry.is_file():
                continue
            st = entry.stat()
            key = (st.st_mtime_ns, st.st_size)
            if self._seen.get(entry.path) == key:
                continue
            if self._stopping:
                break
            try:
                # A full ring (its readers behind) must not keep the watcher from stopping:
                # wait a little, then leave the file for the next scan.
                p = self._pub.publish(entry.path, timeout=0.2)
            except Timeout:
                continue
            except GosBusError as e:
                self._seen[entry.path] = key
                self.errors += 1
                print(f"rts-watch: skipped {entry.name}: {e}", file=sys.stderr, flush=True)
                continue
            self._seen[entry.path] = key
            n += 1
            self.published += 1
            print(f"rts-watch: published {entry.name} ({p.data_size} bytes, sha256 {p.sha256[:16]}...)", flush=True)
        return n

    def stop(self) -> None:
        """Asks `run` to stop (safe from a signal handler and from another thread)."""
        self._stopping = True

    def run(self, seconds: Optional[float] = None) -> None:
        """Scans every `every` seconds until stopped (SIGTERM/SIGINT) or `seconds` pass."""
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self.stop())
        end = None if seconds is None else time.monotonic() + seconds
        while not self._stopping and (end is None or time.monotonic() < end):
            self.scan()
            # Sleep in short slices so a stop is seen within 50 ms.
            until = time.monotonic() + self.every
            while not self._stopping and time.monotonic() < until:
                time.sleep(min(0.05, max(0.0, until - time.monotonic())))
        self._pub.close()


# Runs in the job's own interpreter: sets hard limits the job cannot raise, then runs it.
_BOOT = (
    "import resource, runpy, sys\n"
    "cpu, mem = int(sys.argv[2]), int(sys.argv[3])\n"
    "resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))\n"
    "resource.setrlimit(resource.RLIMIT_AS, (mem, mem))\n"
    "resource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n"
    "script = sys.argv[1]\n"
    "sys.argv = [script]\n"
    "runpy.run_path(script, run_name='__main__')\n"
)


class DnaExecutor(Daemon):
    """Runs Hybrid DNA jobs from `dna.jobs` and answers on `dna.results`."""

    ring = "dna.jobs"
    layout = "DnaJob"
    results_ring = "dna.results"
    memory_limit = 256 << 20
    max_output = 60_000
    max_attempts = 1

    def on_start(self) -> None:
        self._result = _RESULT
        self._results = self._bus.publisher(self.results_ring, layout="DnaResult")

    def on_stop(self) -> None:
        self._results.close()

    def _code(self, job, code: bytes) -> Optional[str]:
        if zlib.crc32(code) & 0xFFFFFFFF != job.code_crc32:
            return None
        if job.code_encoding == CODE_UTF8:
            return code.decode("utf-8")
        if job.code_encoding == CODE_ZLIB:
            return zlib.decompress(code).decode("utf-8")
        if job.code_encoding == CODE_HYBRID:
            return zlib.decompress(base64.b64decode(code)).decode("utf-8")
        return None

    def run_job(self, job, code: bytes) -> Tuple[int, int, bytes]:
        """Runs one job: (status, exit code, output)."""
        if job.language not in (LANG_UNKNOWN, LANG_PYTHON):
            return STATUS_REJECTED, -1, f"language {job.language} is not supported (python only)".encode()
        try:
            source = self._code(job, code)
        except Exception as e:  # noqa: BLE001 - a broken job is rejected, not fatal
            return STATUS_REJECTED, -1, f"cannot decode the code: {e}".encode()
        if source is None:
            return STATUS_REJECTED, -1, b"the code does not match its CRC-32 or encoding"
        timeout = (job.timeout_ms or DEFAULT_TIMEOUT_MS) / 1000
        with tempfile.TemporaryDirectory(prefix="dna-") as work:
            script = Path(work) / "job.py"
            script.write_text(source)
            try:
                cpu = str(max(1, int(timeout + 0.999)))
                done = subprocess.run(
                    [sys.executable, "-I", "-S", "-c", _BOOT, str(script), cpu, str(self.memory_limit)],
                    cwd=work,
                    env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    close_fds=True,
                    timeout=timeout,
                    start_new_session=True,
                )
            except subprocess.TimeoutExpired as e:
                out = (e.output or b"") + f"\ntimed out after {timeout:g} s".encode()
                return STATUS_TIMEOUT, -9, out
        status = STATUS_OK if done.returncode == 0 else STATUS_ERROR
        return status, done.returncode, done.stdout

    def handle(self, msg: Message) -> None:
        job = msg.header
        code = bytes(msg.payload[_JOB.size : _JOB.size + job.code_len])
        started = time.time_ns()
        status, exit_code, output = self.run_job(job, code)
        output = output[: self.max_output]
        with self._results.loan() as r:
            h = r.header
            h.magic[:] = list(_RESULT.schema["magic"].encode())
            h.version = _RESULT.schema["version"]
            h.status = status
            h.job_id = job.job_id
            h.started_ns = started
            h.finished_ns = time.time_ns()
            h.exit_code = exit_code
            h.output_len = len(output)
            r.payload[_RESULT.size : _RESULT.size + len(output)] = output
            r.commit(_RESULT.size + len(output))


def make_job(job_id: int, source: str, timeout_ms: int = DEFAULT_TIMEOUT_MS, encoding: int = CODE_UTF8) -> Tuple[bytes, bytes]:
    """The bytes of a DnaJob record and its code, for publishing (used by tests and tools)."""
    raw = source.encode()
    code = {CODE_UTF8: raw, CODE_ZLIB: zlib.compress(raw), CODE_HYBRID: base64.b64encode(zlib.compress(raw))}[encoding]
    job = _JOB.struct()  # type: ignore[misc]
    job.magic[:] = list(_JOB.schema["magic"].encode())
    job.version = _JOB.schema["version"]
    job.job_id = job_id
    job.timeout_ms = timeout_ms
    job.submitted_ns = time.time_ns()
    job.language = LANG_PYTHON
    job.code_encoding = encoding
    job.code_len = len(code)
    job.code_crc32 = zlib.crc32(code) & 0xFFFFFFFF
    return bytes(job), code


def main(argv: Optional[list] = None) -> None:
    ap = argparse.ArgumentParser(prog="python3 -m gos_bus.daemons", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("rts-watch", help="publish new and changed .rts.png files of a folder")
    w.add_argument("--folder", required=True)
    w.add_argument("--bus", default="geometry")
    w.add_argument("--every", type=float, default=0.5, help="seconds between scans")
    w.add_argument("--seconds", type=float, default=None, help="stop after this long")
    d = sub.add_parser("dna-exec", help="run Hybrid DNA jobs from dna.jobs")
    d.add_argument("--bus", default="geometry")
    d.add_argument("--jobs", type=int, default=None, help="stop after this many jobs")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "rts-watch":
            print("ready", flush=True)
            RtsWatcher(args.folder, bus=args.bus, every=args.every).run(args.seconds)
        else:
            ex = DnaExecutor(bus=args.bus)
            print("ready", flush=True)
            stats = ex.run(max_messages=args.jobs)
            print(f"dna-exec: {stats.handled} jobs done, {stats.failed} failed", flush=True)
    except (GosBusError, FileNotFoundError) as e:
        sys.exit(f"{ap.prog} {args.cmd}: {e}")


if __name__ == "__main__":
    main()
