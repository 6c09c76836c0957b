"""Fixtures: the repository's Rust binaries (real processes) and a bus served by the real
broker, removed after each test."""

from __future__ import annotations

import os
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Iterator, List

import pytest

ROOT = Path(__file__).resolve().parents[3]
END = 2**64 - 1

MANIFEST = """
[[ring]]
name = "small"
slots = 4096
slot_size = 64

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
