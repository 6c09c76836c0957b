"""Builds the Rust parts of the package at install time, with setuptools-rust, from the Cargo
workspace this folder sits in (`pip install ./clients/python`, or `pip wheel`):

- `gos_bus/libgos_bus_c*.so`, the gos-bus C ABI library the package loads with ctypes
  (clients/c: a cdylib with no Python bindings, so the wheel is tagged `py3-none-<platform>`:
  any Python 3 on that platform loads it);
- `gos-dna-sandbox` (dna/) and `gos-dna-wasm` (wasm/), the Hybrid DNA sandbox and its
  WebAssembly worker, installed beside the interpreter (the environment's `bin/`).

The version is the workspace's (`[workspace.package] version` in Cargo.toml): one version for
Cargo and Python. Everything else is in pyproject.toml.
"""

import re
from pathlib import Path

from setuptools import setup
from setuptools_rust import Binding, RustBin, RustExtension

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools older than 70.1
    from wheel.bdist_wheel import bdist_wheel  # type: ignore[no-redef]

HERE = Path(__file__).resolve().parent
WORKSPACE = HERE.parents[1]


def workspace_version() -> str:
    """`version` of the `[workspace.package]` table of the workspace's Cargo.toml."""
    text = (WORKSPACE / "Cargo.toml").read_text()
    table = re.search(r"^\[workspace\.package\]$(.*?)(?=^\[|\Z)", text, re.M | re.S)
    found = table and re.search(r'^version\s*=\s*"([^"]+)"', table.group(1), re.M)
    if not found:
        raise SystemExit(f"no [workspace.package] version in {WORKSPACE / 'Cargo.toml'}")
    return found.group(1)


class PlatformWheel(bdist_wheel):
    """Tags the wheel for its platform but for no Python ABI: the library is plain C."""

    def get_tag(self):
        _, _, platform = super().get_tag()
        return "py3", "none", platform


setup(
    version=workspace_version(),
    rust_extensions=[
        RustExtension("gos_bus.libgos_bus_c", path="../c/Cargo.toml", binding=Binding.NoBinding, py_limited_api=False),
        RustBin("gos-dna-sandbox", path="../../dna/Cargo.toml"),
        RustBin("gos-dna-wasm", path="../../wasm/Cargo.toml"),
    ],
    cmdclass={"bdist_wheel": PlatformWheel},
    zip_safe=False,
)
