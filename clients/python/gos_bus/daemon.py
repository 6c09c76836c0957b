"""`BaseDaemon`, the Geometry OS daemon base class: lifecycle hooks, retries, dead letters,
structured events, metrics, a clean stop.

    class Upper(gos_bus.BaseDaemon):
        ring = "events"

        def on_brick(self, brick):
            self.publish("results", bytes(brick.payload).upper())

    Upper().run()

`Daemon` is the same class under its older name.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from types import FrameType
from typing import Any, Dict, Optional, TextIO, Union

from .client import Bus, Message, Publisher, Subscriber, set_client_name
from .errors import GosBusError, Timeout


@dataclass
class DaemonStats:
    """What a daemon did so far: bricks `handled` (its `on_brick` returned) and `failed` (given
    up after `max_attempts`, then dead-lettered or dropped), `errors` (every exception its hooks
    raised, each attempt counted), `retried` attempts, `dead_lettered` bricks, and
    `busy_seconds` spent in `on_brick`."""

    handled: int = 0
    failed: int = 0
    retried: int = 0
    dead_lettered: int = 0
    busy_seconds: float = 0.0
    errors: int = 0


class BaseDaemon:
    """A daemon on the bus: override the hooks, then call `run()`.

    Hooks (each optional but `on_brick` for a daemon with a ring):

    - `on_start()`: once, before the first brick.
    - `on_brick(brick)`: one message of `ring` (a `Message`: `brick.header` is the record,
      `brick.payload` the slot, both views of the shared memory, valid during the call).
      Raise to have it retried.
    - `on_error(error, brick) -> bool`: every exception `on_brick` (`brick` set) or `on_tick`
      (`brick` None) raises. True (the default) goes on: the brick is retried while attempts
      are left, then dead-lettered; False stops the daemon after dead-lettering the brick.
    - `on_tick()`: every `tick_interval` seconds while running (None: never), between bricks.
      The place to refresh what must stay fresh; a `PixelWindow` needs no refreshing.
    - `on_stop()`: once, after the last brick, before the clients are closed.

    Class attributes (or keyword arguments of the constructor) configure it: `ring` (the ring
    of the bricks; None for a daemon that only ticks), `layout` (default: the ring's),
    `bus_name` ("geometry"), `name` (the client name `gos-bus info` and the monitor show;
    default the class name), `max_attempts` (3), `backoff` (first retry delay, seconds,
    doubling up to 1 s), `dead_letter_ring` ("dead.letters"; None drops failed bricks),
    `tick_interval`, `wait` ('spin', 'busy' or 'block', as `Bus.subscriber` takes it) and
    `log_events` (True: one JSON line per event on stderr).

    `self.bus` is the `Bus`; every client made from it (publishers, subscribers, windows) is
    closed when the daemon stops. SIGTERM and SIGINT stop it after the current brick (when
    `run()` is called from the main thread).

    Events, one JSON object per line on stderr, each with `event`, `daemon`, `pid` and `time`
    (seconds since the Unix epoch): `daemon_started` (`ring`, `bus`), `brick_processed` (`seq`,
    `ms`, `attempts`), `error_occurred` (`seq`, None for a tick; `error`; `attempt`; `action`:
    retry, dead_letter or drop for a brick, continue for a tick, followed by ", stop" (or just
    "stop" for a tick) when `on_error` said False), `daemon_stopped` (`reason` and the metrics).

    Metrics (`metrics()`): `bricks_processed` (bricks finished: handled or given up; the
    monitor's `n` for the daemon's subscriber), `errors_count` (the monitor's `failed`) and
    `uptime` (seconds since `run()` began; the monitor shows its process's `up`).
    """

    ring: Optional[str] = None
    layout: Optional[str] = None
    bus_name: str = "geometry"
    name: Optional[str] = None
    max_attempts: int = 3
    backoff: float = 0.05
    dead_letter_ring: Optional[str] = "dead.letters"
    tick_interval: Optional[float] = None
    wait: str = "spin"
    log_events: bool = True

    def __init__(self, bus: Union[None, str, Bus] = None, ring: Optional[str] = None, **options: Any) -> None:
        if ring is not None:
            self.ring = ring
        for k, v in options.items():
            if k.startswith("_") or not hasattr(type(self), k) or callable(getattr(type(self), k)):
                raise TypeError(f"unknown daemon option {k!r}")
            setattr(self, k, v)
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts}")
        if self.tick_interval is not None and not self.tick_interval > 0:
            raise ValueError(f"tick_interval must be a positive number of seconds, not {self.tick_interval}")
        if self.ring is None and self.tick_interval is None:
            raise ValueError(f"{type(self).__name__} needs a ring (class attribute `ring` or ring=...) or a tick_interval")
        if not self.name:
            self.name = type(self).__name__
        # The older Daemon named its bus with a class attribute `bus`: honour it.
        legacy = getattr(type(self), "bus", None)
        if bus is None and isinstance(legacy, str):
            bus = legacy
        self.stats = DaemonStats()
        # A plain flag, not a threading.Event: a signal handler that sets an Event can deadlock
        # on the Event's own lock when the signal lands while the main thread holds it.
        self._stopping = False
        self._stop_reason = "stop()"
        self._started: Optional[float] = None
        # Its clients show under the daemon's name in `gos-bus info` and the monitor.
        set_client_name(self.name)
        if isinstance(bus, Bus):
            self.bus = bus
        else:
            self.bus = Bus.attach(bus if bus is not None else self.bus_name)
        self._publishers: Dict[str, Publisher] = {}
        self._sub: Optional[Subscriber] = None

    @property
    def _bus(self) -> Bus:
        """The older Daemon's name for `self.bus`."""
        return self.bus

    # -- to override ---------------------------------------------------------------------
    def on_start(self) -> None:
        """Called once before the first brick."""

    def on_brick(self, brick: Message) -> None:
        """Handles one brick (a message of `ring`); raise to have it retried."""
        handle = getattr(self, "handle", None)
        if handle is None:
            raise NotImplementedError(f"{type(self).__name__} has a ring but no on_brick")
        # A daemon written for the older name of this hook.
        handle(brick)

    def on_error(self, error: BaseException, brick: Optional[Message]) -> bool:
        """Called with every exception `on_brick` or `on_tick` raises (`brick` None for a
        tick). True goes on (retries, then dead letter); False stops the daemon."""
        return True

    def on_tick(self) -> None:
        """Called every `tick_interval` seconds while the daemon runs."""

    def on_stop(self) -> None:
        """Called once after the last brick, before the daemon's clients are closed."""

    # -- helpers -------------------------------------------------------------------------
    def publish(self, ring: str, data: bytes, timeout: Optional[float] = 5.0) -> None:
        """Copies `data` into a message on `ring` (its publisher opened on first use)."""
        self._publisher(ring).send(data, timeout=timeout)

    def _publisher(self, ring: str) -> Publisher:
        """The daemon's publisher on `ring`, opened on first use."""
        if ring not in self._publishers:
            self._publishers[ring] = self.bus.publisher(ring)
        return self._publishers[ring]

    def stop(self, reason: str = "stop()") -> None:
        """Asks the run loop to stop after the current brick."""
        self._stop_reason = reason
        self._stopping = True

    def metrics(self) -> Dict[str, Any]:
        """`bricks_processed`, `errors_count` and `uptime` (seconds since `run()` began)."""
        return {
            "bricks_processed": self.stats.handled + self.stats.failed,
            "errors_count": self.stats.errors,
            "uptime": round(time.monotonic() - self._started, 3) if self._started is not None else 0.0,
        }

    def log_event(self, event: str, **fields: Any) -> None:
        """Writes one event as a JSON line on stderr (when `log_events`)."""
        if not self.log_events:
            return
        record = {"event": event, "daemon": self.name, "pid": os.getpid(), "time": round(time.time(), 6)}
        record.update(fields)
        stream: TextIO = sys.stderr
        print(json.dumps(record, default=str), file=stream, flush=True)

    # -- the loop ------------------------------------------------------------------------
    def _dead_letter(self, msg: Message, attempts: int, error: BaseException) -> None:
        """Parks `msg` on the dead-letter ring: one JSON line, a newline, the payload (cut to
        what a slot holds, `length` saying how long it was). A ring that cannot take it is
        reported as an event; the daemon goes on."""
        self.stats.dead_lettered += 1
        ring = self.dead_letter_ring
        if ring is None:
            return
        payload = bytes(msg.payload)
        head = {
            "ring": self.ring,
            "seq": msg.seq,
            "daemon": self.name,
            "pid": os.getpid(),
            "attempts": attempts,
            "error": f"{type(error).__name__}: {error}",
            "length": len(payload),
        }
        try:
            pub = self._publisher(ring)
            line = json.dumps(head).encode() + b"\n"
            pub.send(line + payload[: max(0, pub.ring.slot_size - len(line))], timeout=5.0)
        except GosBusError as e:
            self.log_event("error_occurred", seq=msg.seq, error=f"dead letter not parked: {type(e).__name__}: {e}",
                           attempt=attempts, action="drop")

    def _error(self, error: BaseException, brick: Optional[Message], attempt: int, last: bool) -> bool:
        """Counts one error, asks `on_error`, and logs what follows; True to go on."""
        self.stats.errors += 1
        try:
            go_on = bool(self.on_error(error, brick))
        except Exception as e:  # noqa: BLE001 - a hook that fails stops the daemon, said once
            error = RuntimeError(f"{type(error).__name__}: {error}; then on_error raised {type(e).__name__}: {e}")
            go_on = False
        if brick is None:
            action = "continue"
            if self._sub is not None:
                self._sub.report(1, 0.0)  # the monitor's `failed` counts every error
        elif go_on and not last:
            action = "retry"
        else:
            action = "drop" if self.dead_letter_ring is None else "dead_letter"
        self.log_event(
            "error_occurred",
            seq=None if brick is None else brick.seq,
            error=f"{type(error).__name__}: {error}",
            attempt=attempt,
            action=action if go_on else "stop" if brick is None else f"{action}, stop",
        )
        if not go_on:
            self.stop(f"on_error returned False for {type(error).__name__}")
        return go_on

    def _handle_with_retries(self, msg: Message) -> tuple[bool, int, int]:
        """(handled, attempts, errors) for one brick."""
        delay = self.backoff
        errors = 0
        for attempt in range(1, self.max_attempts + 1):
            try:
                self.on_brick(msg)
                return True, attempt, errors
            except Exception as e:  # noqa: BLE001 - a daemon survives its hook's errors
                errors += 1
                last = attempt == self.max_attempts
                if not self._error(e, msg, attempt, last) or last:
                    self._dead_letter(msg, attempt, e)
                    return False, attempt, errors
                self.stats.retried += 1
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        return False, self.max_attempts, errors

    def _tick(self) -> None:
        try:
            self.on_tick()
        except Exception as e:  # noqa: BLE001 - reported through on_error
            self._error(e, None, 1, True)

    def _on_signal(self, signum: int, _frame: Optional[FrameType]) -> None:
        self.stop(signal.Signals(signum).name)

    def run(
        self, max_messages: Optional[int] = None, idle_timeout: Optional[float] = None, seconds: Optional[float] = None
    ) -> DaemonStats:
        """Runs until stopped (SIGTERM, SIGINT, `stop()`, `on_error` returning False), after
        `max_messages` bricks, when no brick came for `idle_timeout` seconds, or after
        `seconds`. Closes every client made from `self.bus` at the end. Returns the stats."""
        previous: Dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[int(sig)] = signal.signal(sig, self._on_signal)
        self._started = time.monotonic()
        reason = "error"
        started = False
        try:
            if self.ring is not None:
                self._sub = self.bus.subscriber(self.ring, layout=self.layout, wait=self.wait)
            self.on_start()
            started = True
            self.log_event("daemon_started", ring=self.ring, bus=self.bus.name)
            reason = self._loop(max_messages, idle_timeout, seconds)
        finally:
            try:
                if started:
                    self.on_stop()
            finally:
                if started:
                    self.log_event("daemon_stopped", reason=reason, **self.metrics())
                self.bus.close()
                self._publishers.clear()
                self._sub = None
                # Ready to run again (a stop asked before this run was honoured by it).
                self._stopping = False
                for signum, handler in previous.items():
                    signal.signal(signum, handler)
        return self.stats

    def _loop(self, max_messages: Optional[int], idle_timeout: Optional[float], seconds: Optional[float]) -> str:
        sub = self._sub
        idle_since = time.monotonic()
        end = None if seconds is None else idle_since + seconds
        next_tick = None if self.tick_interval is None else time.monotonic() + self.tick_interval
        while not self._stopping:
            if max_messages is not None and self.stats.handled + self.stats.failed >= max_messages:
                return f"max_messages {max_messages}"
            now = time.monotonic()
            if end is not None and now >= end:
                return f"ran {seconds} s"
            if next_tick is not None and now >= next_tick:
                self._tick()
                # From the end of this tick: a slow on_tick leaves room for bricks.
                next_tick = time.monotonic() + (self.tick_interval or 0)
                continue
            wait = 0.2 if next_tick is None else max(0.0, min(0.2, next_tick - now))
            if end is not None:
                wait = max(0.0, min(wait, end - now))
            if sub is None:
                time.sleep(wait)
                continue
            try:
                msg = sub.recv(timeout=wait)
            except Timeout:
                if idle_timeout is not None and time.monotonic() - idle_since >= idle_timeout:
                    return f"idle for {idle_timeout} s"
                continue
            idle_since = time.monotonic()
            t0 = time.perf_counter()
            with msg:
                ok, attempts, errors = self._handle_with_retries(msg)
                seq = msg.seq
            took = time.perf_counter() - t0
            self.stats.busy_seconds += took
            if ok:
                self.stats.handled += 1
                self.log_event("brick_processed", seq=seq, ms=round(took * 1e3, 3), attempts=attempts)
            else:
                self.stats.failed += 1
            sub.report(errors, took)
        return self._stop_reason


#: The older name of `BaseDaemon` (the same class): its hook `handle(msg)` still works.
Daemon = BaseDaemon

__all__ = ["BaseDaemon", "Daemon", "DaemonStats"]
