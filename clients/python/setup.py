"""Ships libgos_bus_c.so, gos-dna-sandbox (the Hybrid DNA sandbox) and gos-dna-wasm (its
WebAssembly worker) inside the package when they have been built in this repository
(`cargo build --release -p gos-bus-c -p gos-dna -p gos-dna-wasm`), so that an installed
`gos_bus` finds them without GOS_BUS_LIB, GOS_DNA_SANDBOX or GOS_DNA_WASM. Everything else is
in pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parents[1].parent
SHIPPED = ("libgos_bus_c.so", "gos-dna-sandbox", "gos-dna-wasm")


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        for name in SHIPPED:
            built = [ROOT / "target" / p / name for p in ("release", "debug")]
            built = [p for p in built if p.exists()]
            if built:
                newest = max(built, key=lambda p: p.stat().st_mtime)
                target = Path(self.build_lib) / "gos_bus" / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(newest, target)


setup(cmdclass={"build_py": BuildWithLibrary})
