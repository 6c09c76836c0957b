"""Packaging as Python users expect: `pip wheel` builds the C ABI library and the sandbox
programs with setuptools-rust into a wheel tagged for the platform; that wheel installs into
a fresh virtual environment with no Rust on PATH and attaches to a real broker from a folder
outside the repository; its version is the Cargo workspace's."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

from conftest import ROOT, serve_default

PKG = ROOT / "clients" / "python"


def cargo_version() -> str:
    text = (ROOT / "Cargo.toml").read_text()
    table = re.search(r"^\[workspace\.package\]$(.*?)(?=^\[)", text, re.M | re.S)
    assert table is not None
    found = re.search(r'^version\s*=\s*"([^"]+)"', table.group(1), re.M)
    assert found is not None
    return found.group(1)


def test_a_wheel_installs_and_attaches_without_rust(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    # The workspace's debug build (CI has just made it) is reused: cargo rebuilds only what
    # the wheel needs differently. A user's `pip install` builds in release.
    env = dict(os.environ, SETUPTOOLS_RUST_CARGO_PROFILE="dev", CARGO_BUILD_JOBS="2")
    env.setdefault("CARGO_TARGET_DIR", str(ROOT / "target"))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-w", str(wheels), str(PKG)],
        env=env, capture_output=True, text=True,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,) = wheels.glob("*.whl")
    version = cargo_version()
    # Tagged for this platform, for any Python 3: the library has no Python bindings.
    assert wheel.name == f"gos_bus-{version}-py3-none-linux_{platform.machine()}.whl", wheel.name
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        metadata = z.read(f"gos_bus-{version}.dist-info/METADATA").decode()
    assert any(re.fullmatch(r"gos_bus/libgos_bus_c[^/]*\.so", n) for n in names), names
    for program in ("gos-dna-sandbox", "gos-dna-wasm"):
        assert f"gos_bus-{version}.data/scripts/{program}" in names
    for field in (f"Version: {version}", "License-Expression: MIT OR Apache-2.0", "Requires-Python: >=3.9",
                  "Classifier: Operating System :: POSIX :: Linux", "Description-Content-Type: text/markdown"):
        assert field in metadata, field

    # A fresh environment whose PATH holds nothing but its own bin/: no cargo, no rustc.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bare = {"PATH": str(venv / "bin"), "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-index", "--disable-pip-version-check", str(wheel)],
        env=bare, capture_output=True, text=True,
    )
    assert installed.returncode == 0, installed.stderr

    bus = f"wheel{os.getpid()}"
    broker = serve_default(bus)
    try:
        script = textwrap.dedent(
            f"""
            import shutil, gos_bus, gos_bus._native as native
            assert shutil.which("cargo") is None and shutil.which("rustc") is None
            bus = gos_bus.Bus.attach({bus!r})
            with bus.subscriber("events") as sub, bus.publisher("events") as pub:
                pub.send(b"from the wheel", timeout=5)
                with sub.recv(timeout=5) as m:
                    print(bytes(m.payload).decode())
            print(gos_bus.__version__)
            print(native.lib._name)
            print(native.tool("gos-dna-sandbox", "GOS_DNA_SANDBOX"))
            """
        )
        away = tmp_path / "elsewhere"
        away.mkdir()
        ran = subprocess.run([str(venv / "bin" / "python"), "-c", script], cwd=away, env=bare,
                             capture_output=True, text=True, timeout=60)
    finally:
        broker.terminate()
        broker.wait(timeout=20)
    assert ran.returncode == 0, ran.stderr
    message, seen_version, library, sandbox = ran.stdout.splitlines()
    assert message == "from the wheel"
    assert seen_version == version
    # What it loaded and found is the installed copy, not the repository's build.
    assert library.startswith(str(venv)), library
    assert sandbox == str(venv / "bin" / "gos-dna-sandbox")
