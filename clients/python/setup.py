"""Ships libgos_bus_c.so inside the package when it has been built in this repository
(`cargo build --release -p gos-bus-c`), so that an installed `gos_bus` finds it without
GOS_BUS_LIB. Everything else is in pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parents[1].parent
LIB = "libgos_bus_c.so"


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        built = [ROOT / "target" / p / LIB for p in ("release", "debug")]
        built = [p for p in built if p.exists()]
        if built:
            newest = max(built, key=lambda p: p.stat().st_mtime)
            target = Path(self.build_lib) / "gos_bus" / LIB
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(newest, target)


setup(cmdclass={"build_py": BuildWithLibrary})
