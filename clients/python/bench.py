"""Python client benchmark, side by side in one run (figures drift on these machines, so
ratios to multiprocessing.Queue are printed too):

- consumer throughput for 64 B messages from a Rust producer process, with `recv` and with
  `recv_many`, against multiprocessing.Queue, multiprocessing.Pipe and a pure-Python
  busy-spin ring over multiprocessing.shared_memory (each between two processes);
- round trip Python -> Rust -> Python over two gos-bus rings (busy-poll and spin-then-block),
  against mp.Pipe and the pure-Python shared-memory spin.

    cargo build --release -p gos-bus -p gos-bus-bench -p gos-bus-c -p gos-bus-tests
    python3 clients/python/bench.py [--quick]
"""

from __future__ import annotations

import multiprocessing as mp
import os
import statistics
import struct
import subprocess
import sys
import time
from multiprocessing import shared_memory
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Measure the optimised library, whatever else was built more recently.
_release_lib = ROOT / "target" / "release" / "libgos_bus_c.so"
if "GOS_BUS_LIB" not in os.environ and _release_lib.exists():
    os.environ["GOS_BUS_LIB"] = str(_release_lib)
sys.path.insert(0, str(Path(__file__).resolve().parent))
import gos_bus  # noqa: E402

QUICK = "--quick" in sys.argv
N = 200_000 if QUICK else 1_000_000
RTT_N = 20_000 if QUICK else 100_000
MSG = b"x" * 64


def tool(name: str) -> str:
    p = ROOT / "target" / "release" / name
    if p.exists():
        return str(p)
    sys.exit(f"{name} is not built: cargo build --release -p gos-bus -p gos-bus-bench -p gos-bus-c -p gos-bus-tests")


def pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and os.cpu_count() and os.cpu_count() > 1:
        os.sched_setaffinity(0, {cpu})


# -- references between two Python processes --------------------------------------------------
def _queue_producer(q, n):
    pin(1)
    for _ in range(n):
        q.put(MSG)


def bench_queue(n: int) -> float:
    q = mp.Queue(maxsize=4096)
    p = mp.Process(target=_queue_producer, args=(q, n))
    p.start()
    q.get()
    t = time.perf_counter()
    for _ in range(n - 1):
        q.get()
    dt = time.perf_counter() - t
    p.join()
    return (n - 1) / dt


def _pipe_producer(c, n):
    pin(1)
    for _ in range(n):
        c.send_bytes(MSG)


def bench_pipe(n: int) -> float:
    a, b = mp.Pipe(duplex=False)
    p = mp.Process(target=_pipe_producer, args=(b, n))
    p.start()
    a.recv_bytes()
    t = time.perf_counter()
    for _ in range(n - 1):
        a.recv_bytes()
    dt = time.perf_counter() - t
    p.join()
    return (n - 1) / dt


SLOTS = 1024


def _shm_producer(name, n):
    pin(1)
    shm = shared_memory.SharedMemory(name=name)
    buf = shm.buf
    head = 0
    for _ in range(n):
        while head - struct.unpack_from("<Q", buf, 64)[0] >= SLOTS:
            pass
        off = 128 + (head % SLOTS) * 64
        buf[off : off + 64] = MSG
        head += 1
        struct.pack_into("<Q", buf, 0, head)
    shm.close()


def bench_shm(n: int) -> float:
    shm = shared_memory.SharedMemory(create=True, size=128 + SLOTS * 64)
    shm.buf[:128] = bytes(128)
    p = mp.Process(target=_shm_producer, args=(shm.name, n))
    p.start()
    buf, tail, t = shm.buf, 0, None
    while tail < n:
        head = struct.unpack_from("<Q", buf, 0)[0]
        while tail < head:
            off = 128 + (tail % SLOTS) * 64
            bytes(buf[off : off + 64])
            tail += 1
            if t is None:
                t = time.perf_counter()
        struct.pack_into("<Q", buf, 64, tail)
    dt = time.perf_counter() - t
    p.join()
    del buf
    shm.close()
    shm.unlink()
    return (n - 1) / dt


def _pipe_pong(c, n):
    pin(1)
    for _ in range(n):
        c.send_bytes(c.recv_bytes())


def rtt_pipe(n: int) -> list[float]:
    a, b = mp.Pipe()
    p = mp.Process(target=_pipe_pong, args=(b, n))
    p.start()
    out = []
    for _ in range(n):
        t = time.perf_counter_ns()
        a.send_bytes(MSG)
        a.recv_bytes()
        out.append(time.perf_counter_ns() - t)
    p.join()
    return out


def _shm_pong(name, n):
    pin(1)
    shm = shared_memory.SharedMemory(name=name)
    buf = shm.buf
    for i in range(1, n + 1):
        while struct.unpack_from("<Q", buf, 0)[0] != i:
            pass
        struct.pack_into("<Q", buf, 64, i)
    shm.close()


def rtt_shm(n: int) -> list[float]:
    shm = shared_memory.SharedMemory(create=True, size=128)
    shm.buf[:128] = bytes(128)
    p = mp.Process(target=_shm_pong, args=(shm.name, n))
    p.start()
    buf, out = shm.buf, []
    for i in range(1, n + 1):
        t = time.perf_counter_ns()
        struct.pack_into("<Q", buf, 0, i)
        while struct.unpack_from("<Q", buf, 64)[0] != i:
            pass
        out.append(time.perf_counter_ns() - t)
    p.join()
    del buf
    shm.close()
    shm.unlink()
    return out


# -- gos-bus ----------------------------------------------------------------------------------
def create(bus: str, ring: str, slots: int) -> None:
    subprocess.run(
        [tool("gos-bus"), "create", ring, "--bus", bus, "--slots", str(slots), "--slot-size", "64"],
        check=True,
        capture_output=True,
    )


def bench_gos(bus: str, n: int, many: bool) -> float:
    create(bus, "tp", 4096)
    try:
        sub = gos_bus.Bus.standalone(bus).subscriber("tp", wait="busy")
        prod = subprocess.Popen(
            [tool("gos-bus-peer"), "produce", bus, "tp", "0", str(n), "0"],
            stdout=subprocess.DEVNULL,
        )
        if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
            os.sched_setaffinity(prod.pid, {1})
        got = 0
        sub.recv(timeout=30).release()
        got = 1
        t = time.perf_counter()
        if many:
            while got < n:
                got += len(sub.recv_many(4096, timeout=30))
        else:
            while got < n:
                sub.recv(timeout=30)
                got += 1
            sub.recv_many(0)
        dt = time.perf_counter() - t
        prod.wait()
        sub.close()
        return (n - 1) / dt
    finally:
        subprocess.run([tool("gos-bus"), "rm", "tp", "--bus", bus], capture_output=True)


def rtt_gos(bus: str, n: int, wait: str) -> list[float]:
    create(bus, "ping", 64)
    create(bus, "pong", 64)
    try:
        b = gos_bus.Bus.standalone(bus)
        child = subprocess.Popen(
            [tool("gos-bus-bench"), "--child", "bus-pong", bus, "ping", "pong", "busy" if wait == "busy" else "spin", str(n)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        pub = b.publisher("ping")
        sub = b.subscriber("pong", wait=wait)
        out = []
        send, recv = pub.send, sub.recv
        for _ in range(n):
            t = time.perf_counter_ns()
            send(MSG)
            recv()  # the previous message is released by the next receive
            out.append(time.perf_counter_ns() - t)
        child.wait()
        pub.close()
        sub.close()
        return out
    finally:
        subprocess.run([tool("gos-bus"), "rm", "ping", "pong", "--bus", bus], capture_output=True)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] / 1000


def main() -> None:
    pin(0)
    bus = f"pybench{os.getpid()}"
    print(f"## Python client benchmark ({N} messages, {RTT_N} round trips; Python {sys.version.split()[0]})\n")
    rows = [
        ("multiprocessing.Queue", bench_queue(N)),
        ("multiprocessing.Pipe", bench_pipe(N)),
        ("pure-Python spin over shared_memory", bench_shm(N)),
        ("gos-bus, Rust producer, recv()", bench_gos(bus, N, False)),
        ("gos-bus, Rust producer, recv_many(4096)", bench_gos(bus, N, True)),
    ]
    base = rows[0][1]
    print("| 64 B to a Python consumer | messages/s | / mp.Queue |")
    print("| --- | ---: | ---: |")
    for name, r in rows:
        print(f"| {name} | {r / 1e3:,.0f} k | {r / base:.1f}x |")
    rt = [
        ("multiprocessing.Pipe (Python <-> Python)", rtt_pipe(RTT_N)),
        ("pure-Python spin over shared_memory", rtt_shm(RTT_N)),
        ("gos-bus, Python <-> Rust, busy-poll", rtt_gos(bus, RTT_N, "busy")),
        ("gos-bus, Python <-> Rust, spin-then-block", rtt_gos(bus, RTT_N, "spin")),
    ]
    print("\n| round trip, 64 B | p50 us | p99 us |")
    print("| --- | ---: | ---: |")
    for name, xs in rt:
        print(f"| {name} | {pct(xs, 0.5):.1f} | {pct(xs, 0.99):.1f} |")


if __name__ == "__main__":
    main()
