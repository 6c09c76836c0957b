"""Bus, publishers and subscribers: the shared memory itself, seen through ctypes."""

from __future__ import annotations

import ctypes
import itertools
import threading
import time
import weakref
from typing import Any, Callable, Iterator, List, Optional, Protocol, Sequence, Tuple, TypeVar

from . import _native
from .errors import Full, GosBusError, InvalidArgument, LayoutMismatch, NoSuchRing, Timeout, from_code
from .layouts import Layout, by_fingerprint, by_name

_lib = _native.lib


def _check(code: int) -> int:
    if code < 0 or code == _native.TIMEOUT:
        raise from_code(code, _native.last_error())
    return code


def set_client_name(name: str) -> None:
    """Names this process's clients from now on (publishers, subscribers and workers made
    after the call), as `gos-bus info` and the monitor show them; UTF-8, cut to 24 bytes. By
    default a Python program's clients are named after its script (`argv[0]` without `.py`),
    and a Daemon's after its class."""
    _check(_native.lib.gos_set_client_name(str(name).encode()))


def _default_client_name() -> str:
    """The script's name (`bench` for `python3 bench.py`, `daemons` for `python3 -m
    gos_bus.daemons`), else `python` (an interactive session, `python3 -c`)."""
    import os
    import sys

    argv0 = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] not in ("", "-c", "-") else ""
    return (argv0[:-3] if argv0.endswith(".py") else argv0) or "python"


def _ns(timeout: Optional[float]) -> int:
    return -1 if timeout is None else max(0, int(timeout * 1e9))


#: Longest a blocking call waits inside the library at a time, holding its client's lock:
#: a longer wait is taken in slices of this many seconds, so that other threads (and
#: `close()`) get their turn in between.
WAIT_SLICE = 0.25


_SLICE_NS = int(WAIT_SLICE * 1e9)
_OK = _native.OK
_TIMEOUT = _native.TIMEOUT


def _first_wait(timeout: Optional[float]) -> int:
    """Nanoseconds the first call of a wait of `timeout` seconds waits: all of it, or one
    slice of a longer one (then `_Deadline` takes over)."""
    if timeout is None or timeout > WAIT_SLICE:
        return _SLICE_NS
    return int(timeout * 1e9) if timeout > 0 else 0


class _Deadline:
    """A wait of `timeout` seconds (None: forever), taken in slices of at most WAIT_SLICE."""

    __slots__ = ("_end",)

    def __init__(self, timeout: Optional[float]) -> None:
        self._end = None if timeout is None else time.monotonic() + max(0.0, timeout)

    def slice(self) -> Tuple[int, bool]:
        """(nanoseconds to wait now, whether this is the last slice)."""
        if self._end is None:
            return int(WAIT_SLICE * 1e9), False
        left = self._end - time.monotonic()
        if left <= WAIT_SLICE:
            return max(0, int(left * 1e9)), True
        return int(WAIT_SLICE * 1e9), False


_R = TypeVar("_R")


def _longer(timeout: Optional[float]) -> bool:
    """Whether a wait of `timeout` seconds goes on after a first call that waited one slice."""
    return timeout is None or timeout > WAIT_SLICE


def _sliced_rest(
    lock: threading.Lock, call: Callable[[int], Tuple[int, Optional[_R]]], timeout: Optional[float]
) -> Tuple[int, Optional[_R]]:
    """The rest of a wait of `timeout` seconds (None: forever) whose first call waited one
    slice and timed out: `call(ns)` under `lock`, slice after slice, the lock let go in
    between (so that other threads and `close()` get in), until it returns something other
    than TIMEOUT or the time is up. `call` returns the library's status and, on success,
    what it made under the lock. (The first call is made inline by each caller: that is the
    hot path, one call into the library under one lock.)"""
    wait = _Deadline(None if timeout is None else timeout - WAIT_SLICE)
    while True:
        with lock:
            ns, last = wait.slice()
            code, result = call(ns)
        if code != _TIMEOUT or last:
            return code, result


def _sliced(
    lock: threading.Lock, call: Callable[[int], Tuple[int, Optional[_R]]], timeout: Optional[float]
) -> Tuple[int, Optional[_R]]:
    """`call(ns)` under `lock` for a wait of up to `timeout` seconds, in slices: the first
    call, then `_sliced_rest` when it timed out and time is left."""
    with lock:
        code, result = call(_first_wait(timeout))
    if code == _TIMEOUT and _longer(timeout):
        return _sliced_rest(lock, call, timeout)
    return code, result


class _Closeable(Protocol):
    def close(self) -> None: ...


def _closed(kind: str, ring: str) -> InvalidArgument:
    return InvalidArgument(f"this {kind} on ring '{ring}' was closed: make a new one")


class Ring:
    """An open ring: its geometry and the layout it carries."""

    def __init__(self, bus: "Bus", name: str) -> None:
        self._handle: Optional[ctypes.c_void_p] = None
        handle = ctypes.c_void_p()
        _check(_lib.gos_ring_open(bus.name.encode(), name.encode(), int(bus.needs_broker), ctypes.byref(handle)))
        self._handle = handle
        self.name = name
        info = _native.RingInfo()
        _check(_lib.gos_ring_info(handle, ctypes.byref(info)))
        self.slot_size = info.slot_size
        self.slot_count = info.slot_count
        self.mode = "broadcast" if info.mode == _native.constant("MODE_BROADCAST") else "work-queue"
        self.policy = "overwrite" if info.policy == _native.constant("POLICY_OVERWRITE") else "block"
        self.layout: Optional[Layout] = by_fingerprint(info.layout_fingerprint)
        self.fingerprint = info.layout_fingerprint

    def check_layout(self, wanted: Optional[str]) -> Optional[Layout]:
        """The layout to use: the ring's, or `wanted` if it is the same; LayoutMismatch if not."""
        if wanted is None:
            return self.layout
        want = by_name(wanted)
        if want.name == "Bytes":
            return want
        if want.fingerprint != self.fingerprint:
            have = self.layout.name if self.layout else "an unknown layout"
            raise LayoutMismatch(
                f"layout mismatch on ring '{self.name}': it carries {have} "
                f"(fingerprint {self.fingerprint:#018x}) but this client uses {want.name} "
                f"(fingerprint {want.fingerprint:#018x}); use the ring's layout, or 'Bytes' for raw access"
            )
        return want

    def close(self) -> None:
        if self._handle:
            _lib.gos_ring_close(self._handle)
            self._handle = None

    def __del__(self) -> None:
        self.close()


class Bus:
    """A bus of gos-bus. `Bus.attach` needs a running broker; `Bus.standalone` does not.

    The bus keeps track of the clients made from it (publishers, subscribers, windows):
    `close()`, or the end of a `with` block, closes them all, so that the broker sees them
    leave rather than reaping them when the process has gone. A closed bus can make new
    clients."""

    def __init__(self, name: str, needs_broker: bool) -> None:
        self.name = name
        self.needs_broker = needs_broker
        self._clients: "weakref.WeakSet[Any]" = weakref.WeakSet()
        self._clients_lock = threading.Lock()

    def _track(self, client: _Closeable) -> None:
        """Has `close()` close `client` too."""
        with self._clients_lock:
            self._clients.add(client)

    def close(self) -> None:
        """Closes every client made from this bus that is still open."""
        with self._clients_lock:
            clients = list(self._clients)
            self._clients.clear()
        # What is made of publishers (a window) first, while its publisher is still open.
        clients.sort(key=lambda c: isinstance(c, (Publisher, Subscriber)))
        for c in clients:
            c.close()

    def __enter__(self) -> "Bus":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @classmethod
    def attach(cls, name: str = "geometry") -> "Bus":
        """Attaches to a bus served by `gos-bus serve` (BusNotRunning otherwise)."""
        bus = cls(name, True)
        # Open nothing yet, but fail now, with the broker's message, if the bus is not running.
        try:
            Ring(bus, "__probe__")
        except NoSuchRing:
            pass
        return bus

    @classmethod
    def standalone(cls, name: str) -> "Bus":
        """A bus whose rings were made by hand (tests, self-contained programs)."""
        return cls(name, False)

    def publisher(self, ring: str, layout: Optional[str] = None) -> "Publisher":
        """A publisher on `ring`; `layout` (a record name, or 'Bytes') must match the ring's."""
        p = Publisher(Ring(self, ring), layout)
        self._track(p)
        return p

    def subscriber(self, ring: str, layout: Optional[str] = None, wait: str = "spin") -> "Subscriber":
        """A subscriber on `ring` (a competing worker on a work queue). `wait`: 'spin' (spin
        then sleep, the default), 'busy' (never sleep) or 'block' (sleep at once)."""
        s = Subscriber(Ring(self, ring), layout, wait)
        self._track(s)
        return s


def _pixels(
    payload: memoryview,
    header: Any,
    layout: Optional[Layout],
    width: Optional[int],
    height: Optional[int],
    channels: int,
    offset: Optional[int],
) -> Any:
    import numpy as np

    def field(name: str) -> Optional[int]:
        return int(getattr(header, name)) if header is not None and hasattr(header, name) else None

    w = width if width is not None else field("width")
    h = height if height is not None else field("height")
    if w is None or h is None:
        raise ValueError("pixels() needs width and height (the record has none)")
    start = offset if offset is not None else (field("pixel_offset") or (layout.size if layout else 0))
    n = w * h * channels
    if start + n > len(payload):
        raise ValueError(f"{w}x{h}x{channels} pixels at offset {start} do not fit the {len(payload)}-byte payload")
    return np.frombuffer(payload, dtype=np.uint8, count=n, offset=start).reshape(h, w, channels)


def _drop(view: memoryview) -> None:
    """Releases a view; one still exported (a numpy array made from it) is left to the GC."""
    try:
        view.release()
    except BufferError:
        pass


def _view(ptr: int, size: int, writable: bool, ring: "Ring") -> memoryview:
    """A view of `size` bytes at `ptr` in `ring`'s mapping; it (and every slice of it) keeps
    the ring, and so the mapping, alive."""
    array = (ctypes.c_char * size).from_address(ptr)
    array._ring = ring  # type: ignore[attr-defined]
    mv = memoryview(array).cast("B")
    return mv if writable else mv.toreadonly()


def _record_at(struct: Any, ptr: int, ring: "Ring") -> Any:
    """The record structure over the slot at `ptr`, keeping `ring` mapped while it lives."""
    record = struct.from_address(ptr)
    record._ring = ring
    return record


def _prefill(header: Any, layout: Layout, ptr: int) -> None:
    """A loaned record starts from zero (a slot holds the previous message's bytes) with what
    its layout fixes: the magic, the version, and the pixels' offset (right after the record)."""
    ctypes.memset(ptr, 0, layout.size)
    names = layout.field_names
    if "magic" in names:
        header.magic[:] = list(layout.schema["magic"].encode())
    if "version" in names:
        header.version = layout.schema["version"]
    if "pixel_offset" in names:
        header.pixel_offset = layout.size


class LoanedMessage:
    """A loaned slot: write `header` fields and `payload` bytes in place, then commit (or use
    it as a context manager: committed on exit, abandoned on an exception). The record comes
    zeroed with its magic, version and pixel offset filled in; `pixels()` fills in the rest
    that describes the pixels."""

    def __init__(self, pub: "Publisher", loan: _native.Loan) -> None:
        self._pub = pub
        self.seq = loan.seq
        self.capacity = loan.capacity
        self._ptr = loan.ptr
        self.length = pub.layout.size if pub.layout else 0
        self.payload = _view(loan.ptr, loan.capacity, True, pub.ring)
        struct = pub.layout.struct if pub.layout else None
        self.header: Any = _record_at(struct, loan.ptr, pub.ring) if struct else None
        if pub.layout is not None and self.header is not None:
            _prefill(self.header, pub.layout, loan.ptr)
        self._done = False

    def tail(self) -> memoryview:
        """The bytes after the record (pixels, code, output)."""
        return self.payload[self._pub.layout.size if self._pub.layout else 0 :]

    def pixels(
        self,
        width: Optional[int] = None,
        height: Optional[int] = None,
        channels: int = 4,
        offset: Optional[int] = None,
    ) -> Any:
        """A writable numpy array (height, width, channels) of uint8 over the slot itself
        (numpy needed). Width, height and the pixel offset default to the record's fields
        (`width`, `height`, `pixel_offset`) where it has them. The record is told what the
        pixels are: `width` and `height` when given, `stride`, `pixel_bytes`, and
        `pixel_format` RGBA8 for 4 channels unless one was set. The length to commit grows to
        cover the pixels."""
        h = self.header
        fields = self._pub.layout.field_names if self._pub.layout else frozenset()
        # The record says what the pixels are: the size given, their stride and byte count,
        # and RGBA8 for four channels when no format was chosen.
        if width is not None and "width" in fields:
            h.width = width
        if height is not None and "height" in fields:
            h.height = height
        px = _pixels(self.payload, h, self._pub.layout, width, height, channels, offset)
        if "stride" in fields:
            h.stride = px.shape[1] * channels
        if "pixel_bytes" in fields:
            h.pixel_bytes = px.nbytes
        if "pixel_format" in fields and channels == 4 and not h.pixel_format:
            h.pixel_format = _native.constant("PIXEL_RGBA8")
        end = px.ctypes.data + px.nbytes - ctypes.addressof(ctypes.c_char.from_buffer(self.payload))
        self.length = max(self.length, end)
        return px

    def commit(self, length: Optional[int] = None) -> None:
        """Publishes the message: `length` payload bytes (default: the record alone, or what
        `length` was set to). A commit that fails (a length over the slot size, say) leaves
        the loan open: fix it and commit again, or `abandon()` it. After `Reaped` there is
        no loan left (the broker took it back)."""
        if self._done:
            raise InvalidArgument("this loan was already committed or abandoned: loan again")
        n = self.length if length is None else length
        code = self._pub._commit(n)
        if code == _native.OK:
            self._done = True
            return
        # The library keeps the loan open after a refused commit (and has none after a
        # reap); abandon() below is safe either way.
        raise from_code(code, _native.last_error())

    def _revoke(self) -> None:
        """The publisher closed under this loan: it is over, and its views are dropped."""
        self._done = True
        _drop(self.payload)
        self.header = None

    def abandon(self) -> None:
        """Gives the slot back unpublished (consumers skip it). Does nothing once the loan
        was committed or abandoned."""
        if not self._done:
            self._done = True
            self._pub._abandon()

    def __enter__(self) -> "LoanedMessage":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None and not self._done:
            try:
                self.commit()
            except BaseException:
                self.abandon()
                raise
        else:
            self.abandon()


class Publisher:
    """Publishes on one ring, zero copy: `with pub.loan() as msg: ...`, or `send(data)` to
    copy. Safe to share between threads: its calls take turns (a loan is the publisher's
    until committed or abandoned; loaning again before that is an error). Close it with
    `close()` (or `with`, or its bus's `close()`)."""

    #: Longest `close()` waits for a loan another thread is writing to be committed or
    #: abandoned, seconds; after that the loan is abandoned under it.
    close_wait = 5.0

    def __init__(self, ring: Ring, layout: Optional[str]) -> None:
        self._handle: Optional[ctypes.c_void_p] = None
        self._lock = threading.Lock()
        # Signalled when the open loan is committed or abandoned.
        self._settled = threading.Condition(self._lock)
        self._open: Optional[LoanedMessage] = None
        self._open_in = 0
        self.ring = ring
        self.layout = ring.check_layout(layout)
        handle = ctypes.c_void_p()
        _check(_lib.gos_publisher_new(ring._handle, ctypes.byref(handle)))
        self._handle = handle
        self._loan = _native.Loan()

    def _live(self) -> ctypes.c_void_p:
        if not self._handle:
            raise _closed("publisher", self.ring.name)
        return self._handle

    def loan(self, timeout: Optional[float] = None) -> LoanedMessage:
        """Loans the next slot, waiting for space up to `timeout` seconds (None: forever;
        0: Full at once when the ring is full). The record comes pre-filled (see
        `LoanedMessage`)."""
        code, loaned = _sliced(self._lock, self._loan_call, timeout)
        if loaned is None:
            raise self._refused(code, timeout)
        return loaned

    def _loan_call(self, ns: int) -> Tuple[int, Optional[LoanedMessage]]:
        """One loan, waiting up to `ns`. Holds the lock."""
        code = _lib.gos_publisher_loan(self._live(), ns, ctypes.byref(self._loan))
        if code != _OK:
            return code, None
        m = LoanedMessage(self, self._loan)
        self._open, self._open_in = m, threading.get_ident()
        return code, m

    def send(self, data: bytes, timeout: Optional[float] = None) -> None:
        """Copies `data` into a slot and publishes it (one call into the library), waiting
        for space up to `timeout` seconds (None: forever; 0: Full at once)."""
        n = len(data)
        with self._lock:
            handle = self._handle
            if not handle:
                raise _closed("publisher", self.ring.name)
            code = _lib.gos_publisher_send(handle, data, n, _first_wait(timeout))
        if code == _OK:
            return
        if code == _TIMEOUT and _longer(timeout):
            code, _ = _sliced_rest(
                self._lock, lambda ns: (_lib.gos_publisher_send(self._live(), data, n, ns), None), timeout
            )
            if code == _OK:
                return
        raise self._refused(code, timeout)

    def send_many(self, messages: Sequence[bytes], timeout: Optional[float] = None) -> None:
        """Publishes each of `messages` (bytes-like) in order, in batches: one call into the
        library for all of them (a batch is one claim and one commit on a single-producer
        ring), waiting for space up to `timeout` seconds in all (None: forever; each call
        into the library waits at most one slice of it, so the total overshoots by at most
        one batch's copy). Raises Timeout (or Full, for 0) naming how many went out when the
        time ran out first; a message over the slot size is refused before any is
        published (an error after some batches went out does not say how many did)."""
        count = len(messages)
        if count == 0:
            return
        lens = (ctypes.c_uint32 * count)(*[len(m) for m in messages])
        data = b"".join(messages)
        wait = _Deadline(timeout)
        done = 0
        sent = ctypes.c_uint32()
        while True:
            ns, last = wait.slice() if timeout != 0 else (0, True)
            with self._lock:
                handle = self._live()
                sent.value = 0
                at = sum(lens[:done])
                rest = ctypes.cast(ctypes.addressof(lens) + done * 4, ctypes.POINTER(ctypes.c_uint32))
                code = _lib.gos_publisher_send_many(
                    handle, data[at:] if at else data, rest, count - done, ns, ctypes.byref(sent)
                )
            done += sent.value
            if code == _OK:
                return
            if code != _TIMEOUT:
                raise from_code(code, _native.last_error())
            if last:
                what = f"{done} of {count} messages were published"
                if timeout == 0:
                    raise Full(f"ring '{self.ring.name}' is full: {what}")
                raise Timeout(f"ring '{self.ring.name}' stayed full for {timeout:g} s: {what} (its readers are behind)")

    def _refused(self, code: int, timeout: Optional[float]) -> GosBusError:
        """The error of a loan or send that returned `code`."""
        if code != _TIMEOUT:
            return from_code(code, _native.last_error())
        if timeout == 0:
            return Full(f"ring '{self.ring.name}' is full")
        return Timeout(f"ring '{self.ring.name}' stayed full for {timeout:g} s (its readers are behind)")

    def _settle(self) -> None:
        """The open loan is over (committed or abandoned). Holds the lock."""
        self._open = None
        self._settled.notify_all()

    def _commit(self, n: int) -> int:
        with self._lock:
            code = int(_lib.gos_publisher_commit(self._live(), n))
            if code == _native.OK:
                self._settle()
            return code

    def _abandon(self) -> None:
        with self._lock:
            if self._handle:
                _lib.gos_publisher_abandon(self._handle)
            self._settle()

    def close(self) -> None:
        """Leaves the ring. A loan another thread is writing is waited for (`close_wait`
        seconds at most), then abandoned; its `payload` and `header` are gone after that.
        Further calls raise InvalidArgument."""
        with self._lock:
            if not self._handle:
                return
            if self._open is not None and self._open_in != threading.get_ident():
                self._settled.wait_for(lambda: self._open is None, timeout=self.close_wait)
            if self._open is not None:
                self._open._revoke()
                self._settle()
            _lib.gos_publisher_free(self._handle)
            self._handle = None

    def __enter__(self) -> "Publisher":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


class Message:
    """A received message: `header` (the record, a ctypes structure over the slot) and
    `payload` (a read-only memoryview of the slot; of a copy, and `header` a copy too, on a
    ring `Subscriber.recv` reads ahead: see `Subscriber.COPY_MAX_SLOT`). Valid until `release()`, the end of a
    `with` block, or the next receive on the same subscriber; after that `header`, `payload`,
    `tail()` and `pixels()` raise InvalidArgument (and the `payload` view kept from before
    raises ValueError). What was taken from them before cannot be revoked: a slice of the
    payload, `tail()`, the header structure kept in a variable, a numpy array from `pixels()`
    go on showing whatever the slot holds next, so copy what you keep (`bytes(...)`,
    `arr.copy()`). They keep the ring mapped, so reading them is never a crash."""

    __slots__ = ("_sub", "seq", "deliveries", "_payload", "_header", "_released")

    def __init__(self, sub: "Subscriber", seq: int, deliveries: int, view: memoryview, header: Any) -> None:
        self._sub = sub
        self.seq = seq
        self.deliveries = deliveries
        self._payload = view
        self._header = header
        self._released = False

    def _live(self) -> None:
        if self._released:
            raise InvalidArgument(
                f"message {self.seq} was released (by release(), its with block, or the next receive): "
                "copy what you need before that"
            )

    @property
    def header(self) -> Any:
        """The record: a ctypes structure over the slot (None for a ring without a layout)."""
        self._live()
        return self._header

    @property
    def payload(self) -> memoryview:
        """The whole message, a read-only view of the slot."""
        self._live()
        return self._payload

    def __len__(self) -> int:
        return len(self.payload)

    def tail(self) -> memoryview:
        """The bytes after the record."""
        return self.payload[self._sub.layout.size if self._sub.layout else 0 :]

    def pixels(
        self,
        width: Optional[int] = None,
        height: Optional[int] = None,
        channels: int = 4,
        offset: Optional[int] = None,
    ) -> Any:
        """A read-only numpy array (height, width, channels) over the slot itself (numpy
        needed); sizes default to the record's fields, as for a loan."""
        return _pixels(self.payload, self.header, self._sub.layout, width, height, channels, offset)

    def release(self) -> None:
        """Gives the slot back to the producers (the views become invalid)."""
        if not self._released:
            self._released = True
            _drop(self._payload)
            self._sub._release(self)

    def __enter__(self) -> "Message":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


class Subscriber:
    """Receives from one ring: `sub.recv(timeout=...)`, `sub.recv_many(n)`, or iterate.

    Safe to share between threads: its calls take turns (a long wait is taken in slices of
    `WAIT_SLICE` seconds, so another thread's call, or `close()`, waits at most that long).
    It holds one message at a time: each receive releases the previous message, whichever
    thread has it; give each thread its own subscriber (on a work queue they share the work)
    to hold messages side by side. Close it with `close()` (or `with`, or its bus's
    `close()`)."""

    _WAIT = {"spin": 0, "busy": 1, "block": 2}

    #: On a broadcast ring under the block policy whose slots are at most this many bytes,
    #: `recv` takes every message
    #: that is there (up to COPY_BATCH) in one call into the library, copied out and released
    #: at once, and hands them out one by one without crossing into the library again: a call
    #: costs about as much as copying a few KiB, so small messages are cheaper copied than
    #: viewed in place. Their `payload` is then a read-only view of the copy. Work queues are
    #: never read ahead (a job taken is a job this worker must finish), nor overwrite-oldest
    #: rings (their readers want what is newest, not a stash of what was). Messages taken
    #: ahead count in `stats()` as received, and `close()` drops those not handed out.
    COPY_MAX_SLOT = 4096
    #: Most messages one such call takes.
    COPY_BATCH = 256

    def __init__(self, ring: Ring, layout: Optional[str], wait: str) -> None:
        self._handle: Optional[ctypes.c_void_p] = None
        if wait not in self._WAIT:
            raise ValueError(f"wait must be one of {', '.join(self._WAIT)}, not {wait!r}")
        self._lock = threading.Lock()
        self.ring = ring
        self.layout = ring.check_layout(layout)
        handle = ctypes.c_void_p()
        _check(_lib.gos_subscriber_new(ring._handle, self._WAIT[wait], ctypes.byref(handle)))
        self._handle = handle
        self._msg = _native.Message()
        self._msg_ref = ctypes.byref(self._msg)
        self._held: Optional[Message] = None
        self._slots: dict[int, Tuple[memoryview, Any]] = {}
        self._many: Optional[Tuple[Any, Any]] = None
        self._rec = self.layout.size if self.layout else 0
        # Small slots of a broadcast ring: `recv` takes what is there in one call and hands the
        # copies out one by one (see COPY_MAX_SLOT).
        self._copies = ring.mode == "broadcast" and ring.policy == "block" and ring.slot_size <= self.COPY_MAX_SLOT
        # What the last such call took: the copies back to back, their offsets (one more than
        # messages) and sequence numbers; `_ahead_i` of `_ahead_n` handed out so far.
        self._ahead: Tuple[bytes, List[int], List[int]] = (b"", [0], [])
        self._ahead_view = memoryview(b"")  # of `_ahead`'s copies, sliced per message
        self._ahead_i = 0
        self._ahead_n = 0
        self._batch: Optional[Tuple[Any, Any, Any]] = None
        self._struct = self.layout.struct if self.layout else None

    def _live(self) -> ctypes.c_void_p:
        if not self._handle:
            raise _closed("subscriber", self.ring.name)
        return self._handle

    def _forget_held(self) -> None:
        """Marks the held message released (the library releases its slot at the next call)."""
        held = self._held
        if held is not None:
            held._released = True
            _drop(held._payload)
            self._held = None

    def _release(self, msg: "Message") -> None:
        with self._lock:
            if self._held is msg and self._handle:
                self._held = None
                if not self._copies:  # a copy's slot went back when it was taken
                    _lib.gos_subscriber_release(self._handle)

    def _slot(self, ptr: int) -> Tuple[memoryview, Any]:
        """The read-only view and the record of the slot at `ptr`, made once per slot."""
        cached = self._slots.get(ptr)
        if cached is None:
            struct = self.layout.struct if self.layout else None
            cached = (_view(ptr, self.ring.slot_size, False, self.ring), _record_at(struct, ptr, self.ring) if struct else None)
            self._slots[ptr] = cached
        return cached

    def recv(self, timeout: Optional[float] = None) -> Message:
        """The next message, waiting up to `timeout` seconds (None: forever). The previous
        message of this subscriber is released. Raises Timeout."""
        with self._lock:
            held = self._held
            if held is not None:
                held._released = True
                _drop(held._payload)
                self._held = None
            if self._ahead_i < self._ahead_n:
                return self._next_copy()  # taken ahead by the last call (none after close)
            handle = self._handle
            if not handle:
                raise _closed("subscriber", self.ring.name)
            if self._copies:
                code, msg = self._fetch_call(_first_wait(timeout))
                if msg is not None:
                    return msg
                call = self._fetch_call
            else:
                code = _lib.gos_subscriber_recv(handle, _first_wait(timeout), self._msg_ref)
                if code == _OK:
                    return self._message()
                call = self._recv_call
        # The rest of a long wait, in slices with the lock let go in between.
        if code == _TIMEOUT and _longer(timeout):
            code, msg = _sliced_rest(self._lock, call, timeout)
            if msg is not None:
                return msg
        if code != _TIMEOUT:
            raise from_code(code, _native.last_error())
        raise Timeout(f"no message on ring '{self.ring.name}' within {timeout:g} s")

    def _fetch_call(self, ns: int) -> Tuple[int, Optional[Message]]:
        """Takes what is there (waiting up to `ns` for the first) into `_ahead`, copied, and
        returns the first as the message. Holds the lock."""
        if self._batch is None:
            n = self.COPY_BATCH
            self._batch = (
                ctypes.create_string_buffer(n * self.ring.slot_size),
                (ctypes.c_uint32 * n)(),
                (ctypes.c_uint64 * n)(),
            )
        buf, lens, seqs = self._batch
        count = ctypes.c_uint32()
        code = _lib.gos_subscriber_recv_copies(
            self._live(), len(lens), ns, buf, ctypes.sizeof(buf), lens, seqs, ctypes.byref(count)
        )
        if code != _OK:
            return code, None
        k = count.value
        if k == 0:
            return _TIMEOUT, None
        offs = list(itertools.accumulate(lens[:k], initial=0))
        self._ahead = (ctypes.string_at(buf, offs[-1]), offs, seqs[:k])
        self._ahead_i, self._ahead_n = 0, k
        self._ahead_view = memoryview(self._ahead[0])
        return code, self._next_copy()

    def _next_copy(self) -> Message:
        """The next message taken ahead by `_fetch_call`, over its copy. Holds the lock."""
        _, offs, seqs = self._ahead
        i = self._ahead_i
        self._ahead_i = i + 1
        piece = self._ahead_view[offs[i] : offs[i + 1]]  # one view over the copy, no second copy
        struct = self._struct
        header = struct.from_buffer_copy(piece) if struct is not None and len(piece) >= self._rec else None
        msg = Message(self, seqs[i], 0, piece, header)
        self._held = msg
        return msg

    def _recv_call(self, ns: int) -> Tuple[int, Optional[Message]]:
        """One receive, waiting up to `ns`. Holds the lock."""
        code = _lib.gos_subscriber_recv(self._live(), ns, self._msg_ref)
        return code, self._message() if code == _OK else None

    def _message(self) -> Message:
        """The message the library just handed out (in `self._msg`). Holds the lock."""
        m = self._msg
        slot = self._slots.get(m.ptr)
        view, header = slot if slot is not None else self._slot(m.ptr)
        msg = Message(self, m.seq, m.deliveries, view[: m.len], header if header is not None and m.len >= self._rec else None)
        self._held = msg
        return msg

    #: Most bytes `recv_many` copies per call into the library (and keeps allocated): at least
    #: one slot. More messages than fit are taken in further calls that do not wait.
    many_bytes = 4 << 20

    def recv_many(self, n: int, timeout: Optional[float] = 0) -> List[bytes]:
        """Up to `n` messages as bytes (copies), waiting up to `timeout` for the first only.
        Takes them in as few calls into the library as its buffer allows: `many_bytes` (4 MiB,
        at least one slot), allocated once, whatever `n` is."""
        wait = _Deadline(timeout)
        out: List[bytes] = []
        while True:
            with self._lock:
                # Messages `recv` took ahead come first (another thread's `recv` may have
                # taken some while the lock was let go: in order, they come before the rest).
                data, offs, _ = self._ahead
                while self._ahead_i < self._ahead_n and len(out) < n:
                    i = self._ahead_i
                    out.append(data[offs[i] : offs[i + 1]])
                    self._ahead_i = i + 1
                if out:
                    wait = _Deadline(0)  # something to return already: only what is there
                handle = self._live()
                self._forget_held()
                if n <= 0 or len(out) >= n:
                    return out
                slot = self.ring.slot_size
                per_call = max(1, min(n, self.many_bytes // slot))
                if self._many is None or len(self._many[1]) < per_call:
                    self._many = (ctypes.create_string_buffer(per_call * slot), (ctypes.c_uint32 * per_call)())
                buf, lens = self._many
                ns, last = wait.slice()
                while len(out) < n:
                    want = min(n - len(out), len(lens))
                    count = ctypes.c_uint32()
                    code = _lib.gos_subscriber_recv_many(
                        handle, want, ns, buf, ctypes.sizeof(buf), lens, ctypes.byref(count)
                    )
                    _check(code)
                    k = count.value
                    if k == 0 and not out and not last:
                        break  # the first message is not there yet: wait again, lock let go
                    sizes = lens[:k]
                    data = ctypes.string_at(buf, sum(sizes))
                    at = 0
                    for size in sizes:
                        out.append(data[at : at + size])
                        at += size
                    if k < want:
                        return out
                    ns = 0
                else:
                    return out

    def report(self, failed: int = 0, work_seconds: float = 0.0) -> None:
        """Adds to this subscriber's handler counters, shown by `gos-bus monitor`: `failed`
        handlings (the monitor's `failed`) and `work_seconds` spent (its time per message)."""
        with self._lock:
            _check(_lib.gos_subscriber_report(self._live(), failed, int(work_seconds * 1e9)))

    def stats(self) -> Tuple[int, int]:
        """(messages received, messages lost to overwrite-oldest)."""
        received, dropped = ctypes.c_uint64(), ctypes.c_uint64()
        with self._lock:
            _check(_lib.gos_subscriber_stats(self._live(), ctypes.byref(received), ctypes.byref(dropped)))
        return received.value, dropped.value

    def __iter__(self) -> Iterator[Message]:
        while True:
            yield self.recv()

    def close(self) -> None:
        """Leaves the ring (the held message is released). Further calls raise
        InvalidArgument."""
        with self._lock:
            if self._handle:
                self._forget_held()
                self._ahead_n = 0
                for view, _ in self._slots.values():
                    _drop(view)
                self._slots.clear()
                _lib.gos_subscriber_free(self._handle)
                self._handle = None

    def __enter__(self) -> "Subscriber":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


__all__ = ["Bus", "Publisher", "Subscriber", "Message", "LoanedMessage", "Ring", "Timeout"]
