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
