"""The Python client against real processes: Rust producers and consumers, the real broker."""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import gos_bus
from gos_bus.layouts import by_name
from conftest import END, Peer, decode, encode

MESSAGES = 1_000_000


def test_rust_producer_to_python_consumer_million_messages(served: str) -> None:
    bus = gos_bus.Bus.attach(served)
    sub = bus.subscriber("small")
    producer = Peer("produce", served, "small", "0", str(MESSAGES), "1")
    expected = 0
    while True:
        batch = sub.recv_many(4096, timeout=30)
        assert batch, f"nothing for 30 s after {expected} messages"
        for b in batch:
            p, seq = decode(b)
            if seq == END:
                break
            assert (p, seq) == (0, expected), "in order, none lost, none twice"
            expected += 1
        else:
            continue
        break
    assert expected == MESSAGES
    producer.finish()


def test_python_producer_to_rust_consumer(served: str) -> None:
    n = MESSAGES
    consumer = Peer("consume", served, "small", "1").ready()
    pub = gos_bus.Bus.attach(served).publisher("small")
    for seq in list(range(n)) + [END]:
        with pub.loan(timeout=30) as msg:
            encode(msg.payload[:64], 0, seq)
            msg.commit(64)
    assert int(consumer.finish()) == n


def test_send_many_publishes_in_order_to_a_rust_consumer(served: str) -> None:
    n = 100_000
    consumer = Peer("consume", served, "batched", "1").ready()
    pub = gos_bus.Bus.attach(served).publisher("batched")
    buf = bytearray(64)
    messages = []
    for seq in list(range(n)) + [END]:
        encode(memoryview(buf), 0, seq)
        messages.append(bytes(buf))
    # In chunks larger than the ring (256 slots): each call goes on batch after batch.
    for at in range(0, len(messages), 1000):
        pub.send_many(messages[at : at + 1000], timeout=60)
    assert int(consumer.finish()) == n


def test_send_many_says_how_many_went_out_when_the_ring_stays_full(served: str) -> None:
    bus = gos_bus.Bus.attach(served)
    slow = bus.subscriber("batched")  # attached, reads nothing: the ring fills up
    pub = bus.publisher("batched")
    with pytest.raises(gos_bus.Full, match="256 of 300 messages were published"):
        pub.send_many([b"m%d" % i for i in range(300)], timeout=0)
    with pytest.raises(gos_bus.Timeout, match="0 of 1 messages were published"):
        pub.send_many([b"late"], timeout=0.05)
    with pytest.raises(gos_bus.GosBusError, match="65"):
        pub.send_many([b"x" * 65])
    for i in range(256):
        with slow.recv(timeout=1) as m:
            assert bytes(m.payload) == b"m%d" % i
    pub.send_many([])


def test_big_frames_arrive_whole_and_in_place(served: str) -> None:
    frames = 200
    size = 8 << 20
    bus = gos_bus.Bus.attach(served)
    sub = bus.subscriber("big")
    consumer = Peer("consume", served, "big", "1").ready()
    pub = bus.publisher("big")
    for seq in range(frames):
        with pub.loan(timeout=30) as msg:
            msg.payload[size - 64 : size] = bytes(64)
            encode(msg.payload[:size], 0, seq)
            msg.commit(size)
        with sub.recv(timeout=30) as got:
            assert len(got) == size
            assert decode(bytes(got.payload)) == (0, seq)
    with pub.loan(timeout=30) as msg:
        encode(msg.payload[:64], 0, END)
        msg.commit(64)
    assert int(consumer.finish()) == frames


def test_header_is_a_structure_over_the_slot(served: str) -> None:
    bus = gos_bus.Bus.attach(served)
    sub = bus.subscriber("frames")
    pub = bus.publisher("frames")
    with pub.loan() as msg:
        assert type(msg.header).__name__ == "RenderFrame"
        assert ctypes.addressof(msg.header) == ctypes.addressof(ctypes.c_char.from_buffer(msg.payload))
        msg.header.magic[:] = list(b"GFRM")
        msg.header.width, msg.header.height = 640, 480
        msg.tail()[:4] = b"\x01\x02\x03\x04"
        msg.commit(by_name("RenderFrame").size + 640 * 480 * 4)
    with sub.recv(timeout=5) as got:
        assert bytes(got.header.magic) == b"GFRM"
        assert (got.header.width, got.header.height) == (640, 480)
        assert bytes(got.tail()[:4]) == b"\x01\x02\x03\x04"
        assert got.payload.readonly


def test_numpy_pixels_share_the_slot(served: str) -> None:
    np = pytest.importorskip("numpy", reason="numpy is optional; CI installs it")
    bus = gos_bus.Bus.attach(served)
    sub = bus.subscriber("frames")
    pub = bus.publisher("frames")
    with pub.loan() as msg:
        px = msg.pixels(64, 32)
        assert px.shape == (32, 64, 4)
        base = ctypes.addressof(ctypes.c_char.from_buffer(msg.payload))
        assert px.ctypes.data == base + by_name("RenderFrame").size, "the array is the shared memory itself"
        px[:, :, 0] = 200
        msg.commit(by_name("RenderFrame").size + 64 * 32 * 4)
    with sub.recv(timeout=5) as got:
        view = got.pixels(64, 32)
        assert int(view[5, 7, 0]) == 200
        assert not view.flags.writeable
        del view


def test_errors_say_what_happened(served: str) -> None:
    with pytest.raises(gos_bus.BusNotRunning, match="gos-bus serve --bus nobus"):
        gos_bus.Bus.attach("nobus")
    bus = gos_bus.Bus.attach(served)
    with pytest.raises(gos_bus.NoSuchRing, match="ring 'nope'"):
        bus.subscriber("nope")
    with pytest.raises(gos_bus.LayoutMismatch, match="carries RenderFrame .* uses DnaJob"):
        bus.subscriber("frames", layout="DnaJob")
    sub = bus.subscriber("small", wait="block")
    t = time.monotonic()
    with pytest.raises(gos_bus.Timeout):
        sub.recv(timeout=0.05)
    assert time.monotonic() - t >= 0.05
    pub = bus.publisher("small")
    with pytest.raises(gos_bus.GosBusError, match="does not fit"):
        with pub.loan() as msg:
            msg.commit(65)


def test_rust_big_frames_to_python(served: str) -> None:
    frames = 200
    sub = gos_bus.Bus.attach(served).subscriber("big")
    producer = Peer("produce-big", served, "big", "0", str(frames))
    for seq in range(frames):
        with sub.recv(timeout=30) as got:
            assert len(got) == 8 << 20
            assert decode(bytes(got.payload)) == (0, seq), "every 8 MiB frame whole"
    producer.finish()


def _worker(served: str, mode: str) -> subprocess.Popen:
    p = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("worker.py")), served, "jobs", mode],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    return p


def test_python_worker_processes_take_each_job_once(served: str) -> None:
    workers = [_worker(served, "take") for _ in range(3)]
    Peer("produce", served, "jobs", "0", "3000", "0").finish()
    seen = []
    for w in workers:
        out, _ = w.communicate(timeout=60)
        lines = out.split()
        assert lines[-1] == "done"
        seen += [int(x) for x in lines[:-1]]
    assert sorted(seen) == list(range(3000)), "every job exactly once, across processes"


def test_python_worker_killed_mid_job_is_reaped_and_the_job_survives(served: str) -> None:
    holder = _worker(served, "hold")
    pub = gos_bus.Bus.attach(served).publisher("jobs")
    with pub.loan() as msg:
        encode(msg.payload[:64], 0, 77)
        msg.commit(64)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "holding 77"
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    sub = gos_bus.Bus.attach(served).subscriber("jobs")
    with sub.recv(timeout=10) as msg:
        assert decode(bytes(msg.payload)) == (0, 77)
        assert msg.deliveries == 2, "the same job, handed out again by the broker"




def test_full_when_asked_not_to_wait(served: str) -> None:
    bus = gos_bus.Bus.attach(served)
    slow = bus.subscriber("big")  # attached, reads nothing: a block ring fills up
    pub = bus.publisher("big")
    for _ in range(4):
        pub.send(b"x")
    with pytest.raises(gos_bus.Full, match="ring 'big' is full"):
        pub.loan(timeout=0)
    with pytest.raises(gos_bus.Full):
        pub.send(b"y", timeout=0)
    slow.recv(timeout=1).release()
    pub.send(b"z", timeout=0)


def test_blocking_calls_release_the_gil(served: str) -> None:
    import threading

    sub = gos_bus.Bus.attach(served).subscriber("small", wait="block")
    done = threading.Event()

    def wait_for_nothing() -> None:
        with pytest.raises(gos_bus.Timeout):
            sub.recv(timeout=0.5)
        done.set()

    t = threading.Thread(target=wait_for_nothing)
    t.start()
    spins = 0
    start = time.monotonic()
    while not done.is_set():
        spins += 1
    t.join()
    assert time.monotonic() - start >= 0.5
    assert spins > 100_000, f"the main thread ran while the other waited in the library ({spins})"


def test_constants_come_from_the_library() -> None:
    """The Python package reads codes from the Rust layouts (through the C ABI), never from a
    copy: they match what `gos-bus layouts --json` prints, and errors map by status name."""
    import json
    import subprocess

    from conftest import binary
    from gos_bus import _native, daemons, errors

    printed = json.loads(subprocess.run([binary("gos-bus"), "layouts", "--json"], check=True, capture_output=True, text=True).stdout)
    by_name = {c["name"]: c["value"] for c in printed["constants"]}
    assert {c["name"]: c["value"] for c in _native.document()["constants"]} == by_name
    assert daemons.CODE_HYBRID == by_name["DNA_CODE_HYBRID_V1"] == 2
    assert daemons.STATUS_REJECTED == by_name["DNA_STATUS_REJECTED"] == 3
    assert daemons.LANG_PYTHON == by_name["DNA_LANG_PYTHON"] == 1
    assert isinstance(errors.from_code(_native.status_code("GOS_EREAPED"), "x"), errors.Reaped)
    assert isinstance(errors.from_code(_native.TIMEOUT, "x"), errors.Timeout)
    assert type(errors.from_code(-1000, "x")) is errors.GosBusError


def test_every_status_of_the_c_abi_has_its_own_exception(served: str) -> None:
    from gos_bus import _native, errors

    names = [n for n in _native.document()["status_codes"] if n not in ("GOS_OK", "GOS_TIMEOUT")]
    for name in names:
        e = errors.from_code(_native.status_code(name), "why")
        assert type(e) is not gos_bus.GosBusError, f"{name} has no class of its own"
    assert isinstance(errors.from_code(_native.status_code("GOS_EINVALID"), ""), ValueError)
    assert isinstance(errors.from_code(_native.status_code("GOS_EPERMISSION"), ""), PermissionError)
    bus = gos_bus.Bus.attach(served)
    with pytest.raises(gos_bus.InvalidArgument) as bad:
        bus.publisher("no such name!")
    assert isinstance(bad.value, ValueError) and "invalid ring configuration" not in str(bad.value)


def test_recv_many_allocates_what_it_can_return_not_n_slots(served: str) -> None:
    bus = gos_bus.Bus.attach(served)
    sub, pub = bus.subscriber("big"), bus.publisher("big")  # 8 MiB slots
    for i in range(3):
        pub.send(bytes([i]) * 16)
    # 4096 slots of 8 MiB would be 32 GiB; one call's buffer is one slot here.
    got = sub.recv_many(4096, timeout=1.0)
    assert got == [bytes([i]) * 16 for i in range(3)]
    assert sub._many is not None and len(sub._many[0]) <= 8 << 20
    # More messages than one call's buffer holds come in further calls, in order.
    small_sub, small_pub = bus.subscriber("events"), bus.publisher("events")  # 4 KiB slots
    small_sub.many_bytes = 16 << 10  # four messages a call
    for i in range(200):
        small_pub.send(i.to_bytes(4, "little"))
    got = small_sub.recv_many(1000, timeout=1.0)
    assert [int.from_bytes(m, "little") for m in got] == list(range(200))
    assert small_sub.recv_many(10) == []


def test_a_released_message_is_gone(served: str) -> None:
    bus = gos_bus.Bus.attach(served)
    sub, pub = bus.subscriber("render.frames"), bus.publisher("render.frames")
    for w in (10, 20):
        with pub.loan() as m:
            m.header.width = w
    first = sub.recv(timeout=1.0)
    payload = first.payload
    assert first.header.width == 10
    second = sub.recv(timeout=1.0)  # releases the first
    assert second.header.width == 20
    for use in (lambda: first.header, lambda: first.payload, lambda: first.tail(), lambda: len(first)):
        with pytest.raises(gos_bus.InvalidArgument, match="was released"):
            use()
    with pytest.raises(ValueError):
        bytes(payload)  # a view kept from before is released too
    second.release()
    with pytest.raises(gos_bus.InvalidArgument):
        second.header.width


def test_loans_come_prefilled_and_pixels_describe_themselves(served: str) -> None:
    bus = gos_bus.Bus.attach(served)
    sub, pub = bus.subscriber("render.frames"), bus.publisher("render.frames")
    # Dirty the slots first: a loan must not show a previous message's fields.
    for _ in range(8):
        with pub.loan() as m:
            m.header.stride, m.header.texture_id, m.header.width = 999, 77, 5
    sub.recv_many(100)
    with pub.loan() as m:
        h = m.header
        assert bytes(h.magic) == b"GFRM" and h.version == gos_bus.by_name("RenderFrame").schema["version"]
        assert (h.stride, h.texture_id, h.width) == (0, 0, 0), "the record starts from zero"
        assert h.pixel_offset == gos_bus.by_name("RenderFrame").size
        m.pixels(8, 4)[:] = 200
    with sub.recv(timeout=1.0) as got:
        h = got.header
        assert (h.width, h.height, h.stride, h.pixel_bytes) == (8, 4, 32, 128)
        assert h.pixel_format == gos_bus._native.constant("PIXEL_RGBA8")
        assert got.pixels().min() == 200


def test_recv_takes_small_messages_ahead_in_one_call_and_keeps_their_order(served: str) -> None:
    bus = gos_bus.Bus.attach(served)
    sub = bus.subscriber("small")
    pub = bus.publisher("small")
    buf = bytearray(64)
    for seq in range(1000):
        encode(memoryview(buf), 0, seq)
        pub.send(bytes(buf))
    first = sub.recv(timeout=5)
    assert decode(bytes(first.payload)) == (0, 0)
    # One call into the library took every message there (up to COPY_BATCH), copied out.
    received, _ = sub.stats()
    assert received == gos_bus.Subscriber.COPY_BATCH
    expected = 1
    # recv and recv_many mixed: none lost, none twice, in order.
    while expected < 1000:
        if expected % 3:
            got = [bytes(sub.recv(timeout=5).payload)]
        else:
            got = sub.recv_many(7, timeout=5)
        for b in got:
            assert decode(b) == (0, expected)
            expected += 1
    with pytest.raises(gos_bus.Timeout):
        sub.recv(timeout=0.05)


def test_a_work_queue_is_never_read_ahead(served: str) -> None:
    bus = gos_bus.Bus.attach(served)
    pub = bus.publisher("jobs")
    for i in range(10):
        pub.send(b"job %d" % i)
    worker, other = bus.subscriber("jobs"), bus.subscriber("jobs")
    assert bytes(worker.recv(timeout=5).payload) == b"job 0"
    # The first worker took one job, not all ten: the next goes to the other worker.
    assert bytes(other.recv(timeout=5).payload) == b"job 1"
