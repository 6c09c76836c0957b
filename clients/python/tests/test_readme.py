"""The README's Python example runs as written (against a bus served for the test)."""

from __future__ import annotations

import re
from pathlib import Path


def test_readme_python_example(served: str, capsys) -> None:
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    exec(compile(code.replace('"geometry"', repr(served)), "README.md", "exec"), {})
    assert capsys.readouterr().out.strip() == "64 64 255.0"


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
