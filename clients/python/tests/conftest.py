"""Fixtures: the repository's Rust binaries (real processes) and a bus served by the real
broker, removed after each test."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import time
import zlib
from pathlib import Path
from typing import Callable, Iterator, List

import pytest

ROOT = Path(__file__).resolve().parents[3]
END = 2**64 - 1

MANIFEST = """
[[ring]]
name = "small"
slots = 4096
slot_size = 64

[[ring]]
name = "batched"
slots = 256
slot_size = 64
single_producer = true

[[ring]]
name = "frames"
layout = "RenderFrame"
slots = 4
slot_size = "8MiB"

[[ring]]
name = "render.frames"
layout = "RenderFrame"
policy = "overwrite"
slots = 8
slot_size = "1MiB"

[[ring]]
name = "big"
slots = 4
slot_size = "8MiB"

[[ring]]
name = "dead.letters"
slots = 64
slot_size = "64KiB"

[[ring]]
name = "rts.textures"
layout = "RtsTexture"
slots = 8
slot_size = "2MiB"

[[ring]]
name = "dna.jobs"
mode = "work-queue"
layout = "DnaJob"
slots = 64
slot_size = "64KiB"

[[ring]]
name = "dna.results"
layout = "DnaResult"
slots = 64
slot_size = "64KiB"

[[ring]]
name = "events"
slots = 256
slot_size = "4KiB"

[[ring]]
name = "jobs"
mode = "work-queue"
slots = 64
slot_size = 64
"""


def binary(name: str) -> str:
    """A Rust binary of the workspace (built by `cargo test` / `cargo build`)."""
    target = ROOT / os.environ.get("CARGO_TARGET_DIR", "target")
    for profile in ("debug", "release"):
        path = target / profile / name
        if path.exists():
            return str(path)
    raise RuntimeError(f"{name} is not built: run `cargo build -p gos-bus-tests` first")


def encode(buf: memoryview, producer: int, seq: int) -> None:
    """The test message format of gos-bus-tests: producer, seq, filler, CRC-32 of the rest."""
    n = len(buf)
    buf[0:16] = struct.pack("<QQ", producer, seq)
    buf[16 : n - 8] = bytes(n - 24)
    buf[n - 8 : n] = struct.pack("<Q", zlib.crc32(buf[: n - 8]))


def decode(b: bytes) -> tuple[int, int]:
    """Checks a test message and returns (producer, seq)."""
    n = len(b)
    stored = struct.unpack_from("<Q", b, n - 8)[0]
    actual = zlib.crc32(b[: n - 8])
    assert stored == actual, f"checksum mismatch: stored {stored:#x}, computed {actual:#x}"
    return struct.unpack_from("<QQ", b, 0)


class Peer:
    """A gos-bus-peer process."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [binary("gos-bus-peer"), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def ready(self) -> "Peer":
        assert self.line() == "ready"
        return self

    def finish(self, timeout: float = 120) -> str:
        out, _ = self.proc.communicate(timeout=timeout)
        lines = [l for l in out.splitlines() if l.startswith(("ok ", "error "))]
        assert self.proc.returncode == 0, f"peer failed: {lines}"
        return lines[-1].removeprefix("ok received=")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """A bus served by the real broker (a separate process); yields its name."""
    bus = f"py{os.getpid()}x{len(os.listdir(tmp_path))}"
    manifest = tmp_path / "rings.toml"
    manifest.write_text(MANIFEST)
    broker = Peer("broker", bus, str(manifest), "1000").ready()
    peers: List[Peer] = []
    try:
        yield bus
    finally:
        for p in peers:
            p.kill()
        assert broker.proc.stdin is not None
        broker.proc.stdin.close()
        broker.proc.wait(timeout=10)
        subprocess.run([binary("gos-bus"), "clean", "--bus", bus, "--force"], capture_output=True)


class RenderNode:
    """A real `gos-render-node` (its own process, on the real GPU adapter: lavapipe in CI)
    compositing bus `bus` into `width` x `height` frames on `render.output`."""

    width = 320
    height = 240

    def __init__(self, bus: str, fade_after: float = 0.5) -> None:
        self.bus = bus
        self.proc = subprocess.Popen(
            [binary("gos-render-node"), "--bus", bus, "--width", str(self.width), "--height", str(self.height),
             "--fade-after", str(fade_after)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip() == "ready":
                break
        else:
            raise AssertionError(f"the render node did not start: {self.proc.communicate()[1]}")
        import gos_bus

        self.output = gos_bus.Bus.attach(bus).subscriber("render.output")

    def pixel(self, frame: bytes, x: int, y: int) -> tuple:
        """The RGBA of output pixel (x, y) of a render.output payload."""
        from gos_bus.layouts import by_name

        at = by_name("RenderFrame").size + (y * self.width + x) * 4
        return tuple(frame[at : at + 4])

    def until(self, what: str, predicate: "Callable[[bytes], bool]", timeout: float = 60) -> int:
        """Reads composited frames until `predicate(payload)` holds; returns that frame's
        timestamp (ns). Fails, naming `what`, if none does within `timeout` seconds."""
        return self._first(what, predicate, timeout)[0]

    def payload_of(self, what: str, predicate: "Callable[[bytes], bool]", timeout: float = 60) -> bytes:
        """`until`, returning the frame's payload."""
        return self._first(what, predicate, timeout)[1]

    def _first(self, what: str, predicate: "Callable[[bytes], bool]", timeout: float) -> "tuple[int, bytes]":
        import gos_bus

        deadline = time.monotonic() + timeout
        last = b""
        while time.monotonic() < deadline:
            try:
                with self.output.recv(timeout=1.0) as m:
                    last = bytes(m.payload)
                    stamp = int(m.header.timestamp_ns)
            except gos_bus.Timeout:
                assert self.proc.poll() is None, f"the render node died: {self.proc.communicate()[1]}"
                continue
            if predicate(last):
                return stamp, last
        raise AssertionError(f"no composited frame showed {what} within {timeout} s")

    def stop(self) -> None:
        self.output.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()


def serve_default(bus: str) -> "subprocess.Popen[str]":
    """`gos-bus serve` on the embedded default manifest (the Geometry OS rings), attached to."""
    import gos_bus

    broker = subprocess.Popen(
        [binary("gos-bus"), "serve", "--bus", bus, "--remove-on-exit"], stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            gos_bus.Bus.attach(bus)
            return broker
        except gos_bus.BusNotRunning:
            assert broker.poll() is None, broker.communicate()[1]
            assert time.monotonic() < deadline, "the broker did not start"
            time.sleep(0.05)


@pytest.fixture
def render_node(tmp_path: Path) -> Iterator[RenderNode]:
    """The broker on the default manifest and a render node on it."""
    bus = f"node{os.getpid()}x{len(os.listdir(tmp_path))}"
    broker = serve_default(bus)
    node = None
    try:
        node = RenderNode(bus)
        yield node
    finally:
        if node is not None:
            node.stop()
        broker.send_signal(signal.SIGTERM)
        broker.wait(timeout=20)
