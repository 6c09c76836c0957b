"""BaseDaemon: its hooks in order, on_error deciding, ticks, JSON events, metrics in the
monitor, and a SIGTERM that closes every client (a helper thread's too) instead of leaving
them for the broker to reap."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Iterator, List, Optional

import pytest

import gos_bus
from conftest import MANIFEST, Peer, binary

PKG = str(Path(__file__).resolve().parents[1])


def monitor(bus: str) -> dict:
    out = subprocess.run(
        [binary("gos-bus"), "monitor", "--bus", bus, "--once", "--json", "--refresh-ms", "10"],
        capture_output=True, text=True, check=True,
    ).stdout
    return json.loads(out)


class Recorder(gos_bus.BaseDaemon):
    ring = "jobs"
    tick_interval = 0.05
    backoff = 0.001
    log_events = False

    def __init__(self, *a: Any, **k: Any) -> None:
        super().__init__(*a, **k)
        self.calls: List[str] = []
        self.errors: List[tuple] = []
        self.ticks = 0

    def on_start(self) -> None:
        self.calls.append("start")

    def on_brick(self, brick: gos_bus.Message) -> None:
        kind = bytes(brick.payload)[0]
        self.calls.append(f"brick {kind}")
        if kind == 9:
            raise ValueError("poison")

    def on_error(self, error: BaseException, brick: Optional[gos_bus.Message]) -> bool:
        self.errors.append((type(error).__name__, None if brick is None else bytes(brick.payload)[0]))
        return bytes(brick.payload)[0] != 9 or len(self.errors) < 2 if brick is not None else True

    def on_tick(self) -> None:
        self.ticks += 1
        if self.ticks == 3:
            raise RuntimeError("tick trouble")

    def on_stop(self) -> None:
        self.calls.append("stop")


def test_hooks_in_order_and_on_error_false_stops_after_the_dead_letter(served: str) -> None:
    bus = gos_bus.Bus.attach(served)
    dead = bus.subscriber("dead.letters")
    jobs = bus.publisher("jobs")
    for kind in (1, 2, 9, 3):
        jobs.send(bytes([kind]))
    d = Recorder(bus=served, max_attempts=3)
    assert isinstance(d.bus, gos_bus.Bus)
    stats = d.run()
    # 9 fails once (on_error: go on, retry), fails again (on_error: False): dead-lettered,
    # and the daemon stops before brick 3.
    assert d.calls == ["start", "brick 1", "brick 2", "brick 9", "brick 9", "stop"], d.calls
    assert d.errors[:2] == [("ValueError", 9), ("ValueError", 9)]
    assert stats.handled == 2 and stats.failed == 1 and stats.dead_lettered == 1
    with dead.recv(timeout=5) as letter:
        assert json.loads(bytes(letter.payload).split(b"\n")[0])["attempts"] == 2
    m = d.metrics()
    assert m["bricks_processed"] == 3 and m["errors_count"] == 2 and m["uptime"] > 0
    # The daemon closed its clients: its worker on jobs and its publisher of dead letters
    # are gone (the test's own publisher and subscriber stay).
    roles = {(r["name"], c["role"]) for r in monitor(served)["rings"] for c in r["clients"] if c["pid"] == os.getpid()}
    assert roles == {("jobs", "publisher"), ("dead.letters", "subscriber")}, roles


def test_ticks_come_at_their_interval_and_a_tick_error_goes_to_on_error(served: str) -> None:
    class Ticker(Recorder):
        ring = None

        def on_tick(self) -> None:
            super().on_tick()
            if self.ticks == 5:
                self.stop()

    d = Ticker(bus=served)
    t0 = time.monotonic()
    d.run()
    took = time.monotonic() - t0
    assert d.ticks == 5
    assert took >= 5 * 0.05, "five ticks 50 ms apart"
    assert d.errors == [("RuntimeError", None)], "the third tick's error, with no brick"
    assert d.metrics()["errors_count"] == 1


def test_options_are_checked() -> None:
    with pytest.raises(TypeError, match="unknown daemon option 'colour'"):
        Recorder(bus="nobus-at-all", colour="red")
    with pytest.raises(ValueError, match="needs a ring"):
        gos_bus.BaseDaemon(bus="nobus-at-all")


@pytest.fixture
def slow_broker(tmp_path: Path) -> Iterator[str]:
    """A broker that reaps a dead client's entries only after a minute: an entry still there
    after its process exited was left by a client that was never closed."""
    bus = f"bd{os.getpid()}"
    manifest = tmp_path / "rings.toml"
    manifest.write_text(MANIFEST)
    broker = Peer("broker", bus, str(manifest), "60000").ready()
    try:
        yield bus
    finally:
        assert broker.proc.stdin is not None
        broker.proc.stdin.close()
        broker.proc.wait(timeout=10)
        subprocess.run([binary("gos-bus"), "clean", "--bus", bus, "--force"], capture_output=True)


def test_sigterm_closes_every_client_and_the_events_and_metrics_show(slow_broker: str, tmp_path: Path) -> None:
    bus = slow_broker
    script = tmp_path / "thumbs.py"
    script.write_text(textwrap.dedent(
        f"""
        import threading, time
        import gos_bus

        class Thumbnailer(gos_bus.BaseDaemon):
            ring = "jobs"

            def on_start(self):
                # A helper thread with a publisher of its own, made from self.bus.
                pub = self.bus.publisher("events")
                def beat():
                    while True:
                        try:
                            pub.send(b"beat", timeout=0)
                        except gos_bus.GosBusError:
                            return
                        time.sleep(0.01)
                threading.Thread(target=beat, daemon=True).start()
                print("started", flush=True)

            def on_brick(self, brick):
                if bytes(brick.payload) == b"bad":
                    raise ValueError("bad brick")

        Thumbnailer(bus={bus!r}, max_attempts=1).run()
        """
    ))
    proc = subprocess.Popen([sys.executable, str(script)], cwd=PKG, env=dict(os.environ, PYTHONPATH=PKG),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
        jobs = gos_bus.Bus.attach(bus).publisher("jobs")
        for data in (b"ok", b"bad", b"ok"):
            jobs.send(data)
        # The monitor shows the daemon under its class name with its metrics.
        deadline = time.monotonic() + 30
        while True:
            ring = next(r for r in monitor(bus)["rings"] if r["name"] == "jobs")
            mine = [c for c in ring["clients"] if c["pid"] == proc.pid]
            if mine and mine[0]["count"] == 3:
                break
            assert time.monotonic() < deadline, mine
            time.sleep(0.05)
        assert mine[0]["name"] == "Thumbnailer"
        assert mine[0]["failed"] == 1, "errors_count"
        assert mine[0]["uptime_s"] > 0
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "daemon_started" and kinds[-1] == "daemon_stopped", kinds
    assert kinds.count("brick_processed") == 2 and kinds.count("error_occurred") == 1
    error = next(e for e in events if e["event"] == "error_occurred")
    assert error["error"] == "ValueError: bad brick" and error["action"] == "dead_letter"
    stopped = events[-1]
    assert stopped["reason"] == "SIGTERM" and stopped["daemon"] == "Thumbnailer"
    assert stopped["bricks_processed"] == 3 and stopped["errors_count"] == 1 and stopped["uptime"] > 0
    # Every client of the process left the bus itself, the helper's publisher too: none is
    # left for the broker to reap.
    left = [(r["name"], c["role"]) for r in monitor(bus)["rings"] for c in r["clients"] if c["pid"] == proc.pid]
    assert left == [], left


def test_a_brick_too_big_for_a_dead_letter_is_cut_and_the_daemon_goes_on(served: str) -> None:
    class Picky(gos_bus.BaseDaemon):
        ring = "big"
        max_attempts = 1
        log_events = False

        def on_start(self) -> None:
            # Subscribed by now (a broadcast ring shows what comes after): send two bricks.
            big = self.bus.publisher("big")
            big.send(bytes(range(256)) * 4096, timeout=5)  # 1 MiB; dead.letters slots hold 64 KiB
            big.send(b"small", timeout=5)

        def on_brick(self, brick: gos_bus.Message) -> None:
            if len(brick.payload) > 1000:
                raise ValueError("too big for me")

    bus = gos_bus.Bus.attach(served)
    dead = bus.subscriber("dead.letters")
    stats = Picky(bus=served).run(max_messages=2, idle_timeout=30)
    assert stats.handled == 1 and stats.failed == 1
    with dead.recv(timeout=5) as letter:
        line, _, body = bytes(letter.payload).partition(b"\n")
        head = json.loads(line)
        assert head["length"] == 1 << 20 and head["error"] == "ValueError: too big for me"
        assert 0 < len(body) < 1 << 16 and body == (bytes(range(256)) * 4096)[: len(body)]


def test_a_daemon_that_cannot_start_says_why_and_skips_on_stop(served: str) -> None:
    class Nowhere(Recorder):
        ring = "no.such.ring"

    d = Nowhere(bus=served)
    with pytest.raises(gos_bus.NoSuchRing):
        d.run()
    assert d.calls == [], "neither on_start nor on_stop ran"


def test_a_stop_before_run_is_kept_and_the_older_daemon_still_works(served: str) -> None:
    d = Recorder(bus=served)
    d.stop()
    assert d.run().handled == 0 and d.calls == ["start", "stop"]

    class Old(gos_bus.Daemon):  # the older spelling: class attribute `bus`, hook `handle`
        bus = served
        ring = "jobs"
        log_events = False

        def handle(self, msg: gos_bus.Message) -> None:
            self.publish("events", bytes(msg.payload))

    old = Old()
    assert isinstance(old.bus, gos_bus.Bus) and old.bus.name == served and old._bus is old.bus
    events = gos_bus.Bus.attach(served).subscriber("events")  # not old.bus: run() closes its clients
    gos_bus.Bus.attach(served).publisher("jobs").send(b"legacy", timeout=5)
    assert old.run(max_messages=1).handled == 1
    with events.recv(timeout=5) as m:
        assert bytes(m.payload) == b"legacy"
