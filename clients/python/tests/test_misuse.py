"""Misuse and process faults from Python: a refused commit, a forked child."""

from __future__ import annotations

import gc
import os

import pytest

import gos_bus


def test_a_refused_commit_leaves_the_loan_open_and_the_ring_flows(served: str) -> None:
    bus = gos_bus.Bus.attach(served)
    sub = bus.subscriber("small")
    pub = bus.publisher("small")
    m = pub.loan()
    with pytest.raises(gos_bus.GosBusError, match="slot"):
        m.commit(pub.ring.slot_size + 44)
    # The loan is still open: it can be given back, and the publisher loans again.
    m.abandon()
    pub.send(b"after the refused commit", timeout=5)
    assert bytes(sub.recv(timeout=5).payload) == b"after the refused commit"
    # A commit that fails at the end of a `with` block abandons the loan.
    with pytest.raises(gos_bus.GosBusError):
        with pub.loan(timeout=5) as m:
            m.payload[:5] = b"never"
            m.length = pub.ring.slot_size + 1
    pub.send(b"and after the with block", timeout=5)
    assert bytes(sub.recv(timeout=5).payload) == b"and after the with block"


def test_a_forked_child_leaves_its_parents_clients_alone(served: str) -> None:
    bus = gos_bus.Bus.attach(served)
    sub = bus.subscriber("small")
    pub = bus.publisher("small")
    pid = os.fork()
    if pid == 0:
        # The child drops what it inherited, as interpreter shutdown would: the entries are
        # the parent's, and must stay so.
        code = 0
        try:
            # Using them is refused, clearly; dropping them leaves the parent's entries be.
            try:
                pub.send(b"from the child", timeout=1)
                code = 2
            except gos_bus.GosBusError as e:
                if "before a fork" not in str(e):
                    code = 3
            del pub, sub
            gc.collect()
            # A client of its own works in the child.
            own = gos_bus.Bus.attach(served).publisher("small")
            own.send(b"the child's own", timeout=5)
        except BaseException:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert bytes(sub.recv(timeout=5).payload) == b"the child's own"
    pub.send(b"parent still attached", timeout=5)
    assert bytes(sub.recv(timeout=5).payload) == b"parent still attached"


def test_threads_sharing_a_subscriber_and_a_publisher_take_turns(served: str) -> None:
    import threading

    bus = gos_bus.Bus.attach(served)
    sub = bus.subscriber("small")
    pub = bus.publisher("small")
    n = 4000
    got: list = []
    errors: list = []

    def produce(first: int) -> None:
        try:
            for i in range(first, n, 2):
                pub.send(i.to_bytes(4, "little"))  # as long as the consumers take
        except BaseException as e:  # noqa: BLE001
            errors.append(repr(e))

    def failed() -> bool:
        return any(e != "released under us" for e in errors)

    def consume() -> None:
        # Until every message is accounted for, however slowly the producers run (a receive
        # that times out is only a turn of this loop), or something went wrong.
        try:
            while len(got) + errors.count("released under us") < n and not failed():
                try:
                    m = sub.recv(timeout=0.2)
                except gos_bus.Timeout:
                    continue
                try:
                    got.append(int.from_bytes(bytes(m.payload), "little"))
                except ValueError:
                    # The other thread's receive released this message first (InvalidArgument,
                    # or ValueError from a view taken just before): counted by neither.
                    errors.append("released under us")
        except BaseException as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=produce, args=(k,)) for k in (0, 1)]
    threads += [threading.Thread(target=consume) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Every message arrived exactly once, taken by one thread or the other; a message held by
    # one thread and released by the other's receive raised (InvalidArgument or ValueError)
    # instead of showing another message's bytes.
    lost = errors.count("released under us")
    assert [e for e in errors if e != "released under us"] == []
    assert len(got) + lost == n and len(set(got)) == len(got)


def test_close_from_another_thread_ends_a_receive_that_waits_forever(served: str) -> None:
    import threading

    sub = gos_bus.Bus.attach(served).subscriber("small")
    outcome: list = []

    def wait_forever() -> None:
        try:
            sub.recv()
        except gos_bus.InvalidArgument as e:
            outcome.append(str(e))

    t = threading.Thread(target=wait_forever)
    t.start()
    while not sub._lock.locked():  # the receive is waiting inside the library
        pass
    sub.close()
    t.join()
    assert len(outcome) == 1 and "was closed" in outcome[0], outcome


def test_closing_a_publisher_waits_for_another_threads_loan(served: str) -> None:
    import threading

    bus = gos_bus.Bus.attach(served)
    sub = bus.subscriber("small")
    pub = bus.publisher("small")
    loaned, release = threading.Event(), threading.Event()

    def write() -> None:
        with pub.loan(timeout=5) as m:
            loaned.set()
            release.wait()
            m.payload[:8] = b"finished"
            m.commit(8)

    t = threading.Thread(target=write)
    t.start()
    loaned.wait()
    closer = threading.Thread(target=pub.close)
    closer.start()
    release.set()  # the writer finishes while close() waits for it
    t.join()
    closer.join()
    # The message was committed whole before the publisher left.
    assert bytes(sub.recv(timeout=5).payload) == b"finished"


def test_views_kept_from_a_message_keep_the_ring_mapped(served: str) -> None:
    bus = gos_bus.Bus.attach(served)
    pub = bus.publisher("small")
    sub = bus.subscriber("small")
    pub.send(b"kept view", timeout=5)
    msg = sub.recv(timeout=5)
    tail = msg.payload[5:]
    header_less = msg.tail()
    del msg
    sub.close()
    del sub
    gc.collect()
    # The subscriber and its ring handle are gone; the slices still read mapped memory.
    assert bytes(tail) == b"view" and bytes(header_less) == b"kept view"
