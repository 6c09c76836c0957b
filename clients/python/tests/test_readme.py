"""The README's Python example runs as written (against a bus served for the test)."""

from __future__ import annotations

import re
from pathlib import Path


def test_readme_python_example(served: str, capsys) -> None:
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    exec(compile(code.replace('"geometry"', repr(served)), "README.md", "exec"), {})
    assert capsys.readouterr().out.strip() == "64 64 255.0"
