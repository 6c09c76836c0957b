"""docs/NEW_DAEMON.md as written: its daemon and its try-it script, each its own process,
against the real broker serving the embedded default manifest."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import ROOT, binary

import gos_bus


def blocks() -> list[str]:
    doc = (ROOT / "docs" / "NEW_DAEMON.md").read_text()
    return re.findall(r"```python\n(.*?)```", doc, re.S)


def test_the_daemon_is_under_30_lines() -> None:
    daemon = blocks()[0]
    own = [l for l in daemon.splitlines() if l.strip()]
    assert len(own) < 30, f"{len(own)} lines"


def test_new_daemon_guide_runs_as_written(tmp_path: Path) -> None:
    daemon_code, try_code = blocks()[:2]
    (tmp_path / "job_reporter.py").write_text(daemon_code)
    (tmp_path / "try_it.py").write_text(try_code)
    bus = f"guide{os.getpid()}"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "clients" / "python"))
    broker = subprocess.Popen(
        [binary("gos-bus"), "serve", "--bus", bus, "--remove-on-exit"],
        stderr=subprocess.PIPE,
        text=True,
    )
    daemon = None
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                gos_bus.Bus.attach(bus)
                break
            except gos_bus.BusNotRunning:
                assert time.monotonic() < deadline, "the broker did not start"
                time.sleep(0.05)
        daemon = subprocess.Popen(
            [sys.executable, "job_reporter.py", bus],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # The daemon is attached once its subscriber shows on dna.results.
        deadline = time.monotonic() + 10
        while True:
            listing = subprocess.run(
                [binary("gos-bus"), "monitor", "--bus", bus, "--once", "--json"],
                capture_output=True,
                text=True,
            ).stdout
            if f'"pid": {daemon.pid}' in listing or f'"pid":{daemon.pid}' in listing:
                break
            assert daemon.poll() is None, daemon.communicate()
            assert time.monotonic() < deadline, "the daemon did not attach"
            time.sleep(0.1)
        tried = subprocess.run(
            [sys.executable, "try_it.py", bus], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30
        )
        assert tried.returncode == 0, tried.stderr
        doc = (ROOT / "docs" / "NEW_DAEMON.md").read_text()
        printed = re.search(r"It prints:\n\n```text\n(.*?)```", doc, re.S).group(1)
        assert tried.stdout == printed
        daemon.send_signal(signal.SIGTERM)
        out, err = daemon.communicate(timeout=10)
        assert daemon.returncode == 0, err
        assert out.strip() == "handled 1, dead-lettered 1"
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.kill()
        broker.send_signal(signal.SIGTERM)
        broker.wait(timeout=10)
