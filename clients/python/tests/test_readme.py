"""The README's Python example runs as written (against a bus served for the test)."""

from __future__ import annotations

import re
from pathlib import Path


def test_readme_python_example(tmp_path: Path, capsys) -> None:
    """Against the real broker and render node: it prints what the README says, and the
    node's composited frames show both windows where it says."""
    import os
    import signal

    from conftest import RenderNode, serve_default

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    said = re.search(r"It prints `(.*?)`, and the render node shows an orange square at \((\d+), (\d+)\)\s+and a "
                     r"blue one at \((\d+), (\d+)\)", readme)
    bus = f"readme{os.getpid()}"
    broker = serve_default(bus)
    # A node that keeps a silent source for long: the loaned frame is published once.
    node = RenderNode(bus, fade_after=60)
    scope: dict = {}
    try:
        exec(compile(code.replace('"geometry"', repr(bus)), "README.md", "exec"), scope)
        assert capsys.readouterr().out.strip() == said.group(1)
        ox, oy, bx, by = (int(said.group(i)) for i in range(2, 6))
        node.until(
            "the orange and the blue window",
            lambda f: node.pixel(f, ox + 32, oy + 32) == (255, 128, 0, 255)
            and node.pixel(f, bx + 32, by + 32) == (0, 128, 255, 255),
        )
        scope["window"].close()
        scope["bus"].close()
    finally:
        node.stop()
        broker.send_signal(signal.SIGTERM)
        broker.wait(timeout=20)


def test_readme_hybrid_dna_example(capsys, monkeypatch) -> None:
    import subprocess

    from conftest import binary

    root = Path(__file__).resolve().parents[3]
    readme = (root / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    code = next(b for b in blocks if "HybridDNA" in b)
    if subprocess.run([binary("gos-dna-sandbox"), "probe"], capture_output=True).returncode != 0:
        import pytest

        pytest.skip("this kernel lacks a sandbox layer (gos-dna-sandbox probe)")
    monkeypatch.chdir(root)
    exec(compile(code, "README.md", "exec"), {})
    assert capsys.readouterr().out.splitlines() == [
        "brick 1 [(3, 4)] {'landlock': 'full', 'seccomp': True}",
        "wall-time",
        "print('brick online')",
    ]


def test_readme_rts_asset_example(capsys, monkeypatch) -> None:
    root = Path(__file__).resolve().parents[3]
    readme = (root / "README.md").read_text()
    code = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "RtsAsset.load(" in b and "segments" in b)
    monkeypatch.chdir(root)
    exec(compile(code, "README.md", "exec"), {})
    # Each print's expected output is the comment under it (or beside it).
    wanted = [line.split("# ", 1)[1] for line in code.splitlines() if "# " in line and not line.startswith("from")]
    got = capsys.readouterr().out.splitlines()
    assert got[0] == wanted[0] and got[1] == wanted[1] and got[2] == wanted[2], (got, wanted)


def test_readme_wasm_examples() -> None:
    """Each `gos-dna-wasm run` line of the README prints what its comment says."""
    import subprocess

    from conftest import binary

    root = Path(__file__).resolve().parents[3]
    readme = (root / "README.md").read_text()
    section = readme.split("### WebAssembly cartridges", 1)[1].split("\n### ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("gos-dna-wasm ")]
    assert len(lines) == 6
    for line in lines:
        command, _, want = line.partition("#")
        args = command.split()[1:]
        done = subprocess.run([binary("gos-dna-wasm"), *args], cwd=root, capture_output=True, text=True, timeout=60)
        said = done.stdout + done.stderr
        want = want.strip()
        if want.startswith("the API"):
            assert "gos.spawn_brick (i32, i32, i64) -> ()" in said, said
        else:
            assert want in said, (line, said)


def test_readme_terrain_example(render_node, capsys, monkeypatch) -> None:
    """Against a broker and a render node: it prints what the README says, and the brick's
    placement reaches terrain.bricks."""
    import gos_bus

    root = Path(__file__).resolve().parents[3]
    readme = (root / "README.md").read_text()
    code = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "NeuralTerrain(" in b)
    said = re.search(r"It prints `(\d+ brick on .*?)`", readme).group(1)
    placements = gos_bus.Bus.attach(render_node.bus).subscriber("terrain.bricks")
    monkeypatch.chdir(root)
    exec(compile(code.replace('"geometry"', repr(render_node.bus)), "README.md", "exec"), {})
    assert capsys.readouterr().out.strip() == said
    with placements.recv(timeout=10) as m:
        assert (m.header.map_x, m.header.map_y) == (7, 5) and m.header.texture_id != 0


def test_readme_terminal_example(render_node, capsys) -> None:
    """Against a broker and a render node: it prints what the README says, and the console
    reaches render.frames as cells (PIXEL_CELLS) with its title, decorated."""
    import gos_bus
    from gos_bus import _native

    root = Path(__file__).resolve().parents[3]
    readme = (root / "README.md").read_text()
    code = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "create_terminal(" in b)
    said = re.search(r"It prints `(\d+ x \d+ cells: .*?)`", readme).group(1)
    frames = gos_bus.Bus.attach(render_node.bus).subscriber("render.frames")
    exec(compile(code.replace('"geometry"', repr(render_node.bus)), "README.md", "exec"), {})
    assert capsys.readouterr().out.strip() == said
    with frames.recv(timeout=10) as m:
        h = m.header
        assert h.pixel_format == _native.constant("PIXEL_CELLS")
        assert (h.width, h.height) == (80, 12)
        assert h.flags & _native.constant("FRAME_FLAG_DECORATED")
        assert bytes(h.title).rstrip(b"\0") == b"Neural Console"
