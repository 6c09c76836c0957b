"""The daemon framework: handling, retries with backoff, dead letters, counters, clean stop."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import gos_bus
from conftest import binary


class Flaky(gos_bus.Daemon):
    """Fails twice on every message whose first byte is 1, once on 2, never otherwise."""

    ring = "jobs"
    backoff = 0.01

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.tries = {}
        self.seen = []

    def handle(self, msg):
        kind = msg.payload[0]
        n = self.tries.get(msg.seq, 0) + 1
        self.tries[msg.seq] = n
        if kind == 9:
            raise ValueError(f"job {msg.seq} is poison")
        if kind == 1 and n <= 2 or kind == 2 and n <= 1:
            raise RuntimeError("transient")
        self.seen.append(msg.seq)


def test_retries_then_dead_letter_with_the_error(served: str) -> None:
    bus = gos_bus.Bus.attach(served)
    dead = bus.subscriber("dead.letters")
    daemon = Flaky(bus=served, max_attempts=3)
    pub = bus.publisher("jobs")
    for kind in (0, 1, 2, 9, 0):
        pub.send(bytes([kind]) + b"payload")
    stats = daemon.run(max_messages=5, idle_timeout=5)
    assert stats.handled == 4 and stats.failed == 1 and stats.dead_lettered == 1
    assert stats.retried == 2 + 1 + 2, "two retries, one retry, two retries before giving up"
    with dead.recv(timeout=2) as letter:
        head, _, body = bytes(letter.payload).partition(b"\n")
        info = json.loads(head)
        assert info["error"] == "ValueError: job 3 is poison"
        assert info["attempts"] == 3 and info["ring"] == "jobs" and info["daemon"] == "Flaky"
        assert body == bytes([9]) + b"payload", "the original message travels with the error"


def test_counters_visible_while_running_and_sigterm_stops_cleanly(served: str, tmp_path: Path) -> None:
    script = tmp_path / "d.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys, time
            sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
            import gos_bus

            class Slow(gos_bus.Daemon):
                ring = "jobs"
                def on_start(self):
                    print("started", flush=True)
                def handle(self, msg):
                    time.sleep(0.002)
                    if msg.payload[0] == 9:
                        raise ValueError("nope")
                def on_stop(self):
                    print("stopped", self.stats.handled, self.stats.failed, flush=True)

            Slow(bus={served!r}, max_attempts=1).run()
            """
        )
    )
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
    pub = gos_bus.Bus.attach(served).publisher("jobs")
    for i in range(20):
        pub.send(bytes([9 if i == 5 else 0]))
    deadline = time.monotonic() + 10
    worker = None
    while time.monotonic() < deadline:
        snap = json.loads(
            subprocess.run(
                [binary("gos-bus"), "monitor", "--bus", served, "--once", "--json", "--refresh-ms", "10"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        jobs = next(r for r in snap["rings"] if r["name"] == "jobs")
        worker = next((c for c in jobs["clients"] if c["role"] == "worker"), None)
        if worker and worker["count"] >= 20:
            break
        time.sleep(0.05)
    assert worker is not None and worker["count"] >= 20, worker
    assert worker["failed"] == 1
    assert worker["handle_us"] >= 1000, "about 2 ms per message"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert out.strip() == "stopped 19 1"
