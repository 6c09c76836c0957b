"""A base class for bus daemons: receive, handle, retry, dead-letter, stop cleanly.

    class Upper(gos_bus.Daemon):
        ring = "events"

        def handle(self, msg):
            self.publish("results", bytes(msg.payload).upper())

    Upper().run()
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, Optional

from .client import Bus, Message, Publisher, set_client_name
from .errors import Timeout


@dataclass
class DaemonStats:
    """What a daemon did so far."""

    handled: int = 0
    failed: int = 0
    retried: int = 0
    dead_lettered: int = 0
    busy_seconds: float = 0.0


class Daemon:
    """Override `handle(msg)` (and `on_start`, `on_stop` if needed), then call `run()`.

    Class attributes configure it: `ring` (required), `layout` (default: the ring's),
    `bus` ("geometry"), `max_attempts` (3), `backoff` (first retry delay, seconds, doubling),
    `dead_letter_ring` ("dead.letters"; None to drop failed messages). A message whose
    handler raises is retried with backoff; after `max_attempts` failures it is published on
    the dead-letter ring as one JSON line (ring, seq, daemon, pid, attempts, error) followed by
    the original payload. Heartbeats come from the gos-bus library; `gos-bus monitor` shows
    handled, failed and time per message. SIGTERM and SIGINT stop it after the current
    message.
    """

    ring: str = ""
    layout: Optional[str] = None
    bus: str = "geometry"
    max_attempts: int = 3
    backoff: float = 0.05
    dead_letter_ring: Optional[str] = "dead.letters"
    wait: str = "spin"

    def __init__(self, bus: Optional[str] = None, ring: Optional[str] = None, **options: Any) -> None:
        if bus is not None:
            self.bus = bus
        if ring is not None:
            self.ring = ring
        for k, v in options.items():
            if not hasattr(type(self), k):
                raise TypeError(f"unknown daemon option {k!r}")
            setattr(self, k, v)
        if not self.ring:
            raise ValueError(f"{type(self).__name__} needs a ring (class attribute `ring` or ring=...)")
        self.stats = DaemonStats()
        # A plain flag, not a threading.Event: a signal handler that sets an Event can deadlock
        # on the Event's own lock when the signal lands while the main thread holds it.
        self._stopping = False
        # Its clients show as the daemon's class in `gos-bus info` and the monitor.
        set_client_name(type(self).__name__)
        self._bus = Bus.attach(self.bus)
        self._publishers: Dict[str, Publisher] = {}

    # -- to override ---------------------------------------------------------------------
    def on_start(self) -> None:
        """Called once before the first message."""

    def handle(self, msg: Message) -> None:
        """Handles one message; raise to have it retried (and dead-lettered in the end)."""
        raise NotImplementedError

    def on_stop(self) -> None:
        """Called once after the last message."""

    # -- helpers -------------------------------------------------------------------------
    def publish(self, ring: str, data: bytes, timeout: Optional[float] = 5.0) -> None:
        """Copies `data` into a message on `ring`."""
        if ring not in self._publishers:
            self._publishers[ring] = self._bus.publisher(ring)
        self._publishers[ring].send(data, timeout=timeout)

    def stop(self) -> None:
        """Asks the run loop to stop after the current message."""
        self._stopping = True

    # -- the loop ------------------------------------------------------------------------
    def _dead_letter(self, msg: Message, attempts: int, error: BaseException) -> None:
        self.stats.dead_lettered += 1
        if self.dead_letter_ring is None:
            return
        head = json.dumps(
            {
                "ring": self.ring,
                "seq": msg.seq,
                "daemon": type(self).__name__,
                "pid": os.getpid(),
                "attempts": attempts,
                "error": f"{type(error).__name__}: {error}",
            }
        ).encode()
        self.publish(self.dead_letter_ring, head + b"\n" + bytes(msg.payload))

    def _handle_with_retries(self, msg: Message) -> bool:
        delay = self.backoff
        for attempt in range(1, self.max_attempts + 1):
            try:
                self.handle(msg)
                return True
            except Exception as e:  # noqa: BLE001 - a daemon survives its handler's errors
                if attempt == self.max_attempts:
                    self._dead_letter(msg, attempt, e)
                    return False
                self.stats.retried += 1
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        return False

    def run(self, max_messages: Optional[int] = None, idle_timeout: Optional[float] = None) -> DaemonStats:
        """Runs until stopped (SIGTERM, SIGINT, `stop()`), after `max_messages`, or when no
        message came for `idle_timeout` seconds. Returns the stats."""
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, lambda *_: self.stop())
        sub = self._bus.subscriber(self.ring, layout=self.layout, wait=self.wait)
        self.on_start()
        idle_since = time.monotonic()
        try:
            while not self._stopping:
                if max_messages is not None and self.stats.handled + self.stats.failed >= max_messages:
                    break
                try:
                    msg = sub.recv(timeout=0.2)
                except Timeout:
                    if idle_timeout is not None and time.monotonic() - idle_since >= idle_timeout:
                        break
                    continue
                idle_since = time.monotonic()
                t0 = time.perf_counter()
                with msg:
                    ok = self._handle_with_retries(msg)
                took = time.perf_counter() - t0
                self.stats.busy_seconds += took
                if ok:
                    self.stats.handled += 1
                else:
                    self.stats.failed += 1
                sub.report(0 if ok else 1, took)
        finally:
            self.on_stop()
            sub.close()
            for p in self._publishers.values():
                p.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self.stats
