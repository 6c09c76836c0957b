"""docs/NEW_DAEMON.md as written: its thumbnail daemon and its try-it script, each its own
process, against the real broker (the embedded default manifest) and the real render node,
with the composited pixels checked against the textures."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, List

from conftest import ROOT, RenderNode, binary

import gos_bus

DOC = ROOT / "docs" / "NEW_DAEMON.md"
PKG = str(ROOT / "clients" / "python")


def blocks() -> List[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


def test_the_daemon_is_short() -> None:
    own = [line for line in blocks()[0].splitlines() if line.strip()]
    assert len(own) <= 40, f"{len(own)} lines"


def test_new_daemon_guide_runs_as_written(render_node: RenderNode, tmp_path: Path) -> None:
    node = render_node
    daemon_code, try_code = blocks()[:2]
    (tmp_path / "thumbnails.py").write_text(daemon_code)
    (tmp_path / "try_it.py").write_text(try_code)
    env = dict(os.environ, PYTHONPATH=PKG)
    bus = gos_bus.Bus.attach(node.bus)
    textures = bus.subscriber("rts.textures")
    daemon = subprocess.Popen([sys.executable, str(tmp_path / "thumbnails.py"), node.bus], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # The daemon is attached once its subscriber shows on rts.textures, under its class.
        deadline = time.monotonic() + 30
        while True:
            snap = json.loads(subprocess.run([binary("gos-bus"), "monitor", "--bus", node.bus, "--once", "--json"],
                                             capture_output=True, text=True, check=True).stdout)
            ring = next(r for r in snap["rings"] if r["name"] == "rts.textures")
            mine = [c for c in ring["clients"] if c["pid"] == daemon.pid]
            if mine:
                assert mine[0]["name"] == "Thumbnails"
                break
            assert daemon.poll() is None, daemon.communicate()
            assert time.monotonic() < deadline, "the daemon did not attach"
            time.sleep(0.1)
        # As the guide says: from the repository root, two sample textures.
        command = re.search(r"run `python3 try_it.py (.*?)`", DOC.read_text()).group(1).split()
        command[0] = node.bus
        tried = subprocess.run([sys.executable, str(tmp_path / "try_it.py"), *command], cwd=ROOT, env=env,
                               capture_output=True, text=True, timeout=60)
        assert tried.returncode == 0, tried.stderr
        printed = re.search(r"It prints:\n\n```text\n(.*?)```", DOC.read_text(), re.S).group(1)
        assert tried.stdout == printed
        # The thumbnails the guide describes, worked out here from the published textures.
        thumbs: List[Any] = []
        for _ in range(2):
            with textures.recv(timeout=10) as m:
                step = max(1, m.header.width // 128)
                thumbs.append(m.pixels()[::step, ::step].copy())
        assert [t.shape for t in thumbs] == [(128, 128, 4), (128, 128, 4)]

        def shows_both(frame: bytes) -> bool:
            for n, thumb in enumerate(thumbs):
                for x, y in ((0, 0), (5, 70), (64, 64), (127, 127), (100, 3)):
                    want = tuple(int(v) for v in thumb[y, x, :3]) + (255,)  # opaque
                    if node.pixel(frame, 16 + 144 * n + x, 16 + y) != want:
                        return False
            return True

        node.until("both thumbnails, texel for texel", shows_both)
        daemon.send_signal(signal.SIGTERM)
        out, err = daemon.communicate(timeout=30)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.communicate()
    assert daemon.returncode == 0, err
    assert out.strip().splitlines()[-1] == "2 textures, 0 failed"
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert [e["event"] for e in events] == ["daemon_started", "brick_processed", "brick_processed", "daemon_stopped"]
    assert events[-1]["bricks_processed"] == 2 and events[-1]["errors_count"] == 0
    # The daemon's windows went with it.
    node.until("the thumbnails gone", lambda f: node.pixel(f, 16 + 64, 16 + 64) != tuple(int(v) for v in thumbs[0][64, 64, :3]) + (255,))
