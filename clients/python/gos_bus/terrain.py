"""`NeuralTerrain`: the bricks of the render node's neural terrain, from a Geometry OS map
manifest or placed live.

    terrain = gos_bus.NeuralTerrain.from_manifest("manifest.json", bricks="assets/rts")
    terrain.add_brick(position=(3, 4), asset=gos_bus.RtsAsset.load("brick.rts.png"))
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

from . import _native
from .client import Bus, Publisher
from .errors import GosBusError, InvalidArgument
from .layouts import by_name
from .rts import RtsAsset, RtsPublisher

_BRICK = by_name("BrickPlacement")
#: Map cells along each side of the terrain (`BRICK_MAP_CELLS` of the layouts).
MAP_CELLS = _native.constant("BRICK_MAP_CELLS")
_REMOVE = _native.constant("BRICK_FLAG_REMOVE")

Cell = Tuple[int, int]


def _cell(position: Any) -> Cell:
    try:
        x, y = (int(v) for v in position)
    except (TypeError, ValueError):
        raise InvalidArgument(f"a brick position is (x, y) in map cells, not {position!r}") from None
    if not (0 <= x < MAP_CELLS and 0 <= y < MAP_CELLS):
        raise InvalidArgument(f"map cell ({x}, {y}) is off the terrain's {MAP_CELLS}x{MAP_CELLS} cells")
    return x, y


class NeuralTerrain:
    """The bricks laid on the neural terrain: RTS textures on map cells.

    `add_brick(position=(x, y), asset=...)` publishes the asset's texture on `rts.textures`
    and its placement (a `BrickPlacement` record) on `terrain.bricks`; the render node lays
    the texture on map cell (x, y), following the ground (0 <= x, y < `MAP_CELLS`, x west to
    east, y north to south; the heightmap's first row is north). One brick per cell.
    `remove_brick(position)` takes one off. A thread publishes the placements again every
    `republish` seconds, and the textures every `retexture` seconds, so that a render node
    started later has them; `close()` (or the end of a `with` block) stops it, leaving the
    bricks where they are (`clear()` first to take them off).
    """

    republish = 2.0
    retexture = 20.0

    def __init__(self, bus: Union[Bus, str] = "geometry", ring: str = "terrain.bricks",
                 textures_ring: str = "rts.textures") -> None:
        self.bus = bus if isinstance(bus, Bus) else Bus.attach(bus)
        self._placements: Publisher = self.bus.publisher(ring, layout="BrickPlacement")
        self._textures = RtsPublisher(self.bus, textures_ring)
        self._bricks: Dict[Cell, Tuple[int, str, int]] = {}  # cell -> (texture id, path, timestamp ns)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.bus._track(self)

    @classmethod
    def from_manifest(cls, manifest: Union[str, "os.PathLike[str]"], bricks: Union[str, "os.PathLike[str]", None] = None,
                      bus: Union[Bus, str] = "geometry") -> "NeuralTerrain":
        """A terrain with the bricks a Geometry OS map manifest lists: JSON
        `{"x,y": {"brick": "<name>", "timestamp": <seconds>}, ...}`, each brick a `.rts.png` in
        the folder `bricks` (default: the manifest's), named with or without that suffix."""
        path = Path(manifest)
        try:
            entries = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise InvalidArgument(f"cannot read the map manifest {path}: {e}") from None
        if not isinstance(entries, dict):
            raise InvalidArgument(f"{path}: a map manifest is an object of \"x,y\": {{\"brick\": ...}} entries")
        folder = Path(bricks) if bricks is not None else path.parent
        placed = []
        for key, entry in entries.items():
            try:
                cell = _cell(str(key).split(","))
                name = str(entry["brick"])
                stamp = float(entry.get("timestamp", 0))
            except (KeyError, TypeError, ValueError, AttributeError, InvalidArgument) as e:
                raise InvalidArgument(f"{path}: entry {key!r} is not a \"x,y\": {{\"brick\": name, \"timestamp\": t}} ({e})") from None
            candidates = [folder / name, folder / f"{name}.rts.png"]
            found = next((c for c in candidates if c.is_file()), None)
            if found is None:
                raise FileNotFoundError(f"{path}: brick {name!r} of cell {key} is not in {folder} (looked for "
                                        f"{', '.join(c.name for c in candidates)})")
            placed.append((cell, found, stamp))
        terrain = cls(bus)
        try:
            for cell, found, stamp in placed:
                terrain.add_brick(cell, found, timestamp=stamp)
        except BaseException:
            terrain.close()
            raise
        return terrain

    def add_brick(self, position: Any, asset: Union[RtsAsset, str, "os.PathLike[str]"],
                  timestamp: Optional[float] = None) -> int:
        """Lays `asset` (an `RtsAsset` or the path of a `.rts.png`) on map cell `position`
        (x, y); returns its texture id. `timestamp`: when it was placed, seconds since the
        Unix epoch (default now)."""
        cell = _cell(position)
        path = str(asset.path if isinstance(asset, RtsAsset) else asset)
        stamp = int((time.time() if timestamp is None else timestamp) * 1e9)
        with self._lock:
            texture_id = self._textures.publish(path, timeout=5.0).texture_id
            self._bricks[cell] = (texture_id, path, stamp)
            self._send(cell, texture_id, stamp, 0)
            if self._thread is None:
                self._thread = threading.Thread(target=self._refresh, name="neural terrain", daemon=True)
                self._thread.start()
        return texture_id

    def remove_brick(self, position: Any) -> bool:
        """Takes the brick off map cell `position`; whether there was one."""
        cell = _cell(position)
        with self._lock:
            had = self._bricks.pop(cell, None) is not None
            self._send(cell, 0, time.time_ns(), _REMOVE)
        return had

    def clear(self) -> None:
        """Takes every brick off."""
        for cell in list(self.bricks):
            self.remove_brick(cell)

    def placed(self) -> Dict[Cell, str]:
        """The bricks laid: map cell -> the path of its `.rts.png`."""
        with self._lock:
            return {cell: b[1] for cell, b in self._bricks.items()}

    @property
    def bricks(self) -> Dict[Cell, int]:
        """The bricks laid: map cell -> texture id."""
        with self._lock:
            return {cell: b[0] for cell, b in self._bricks.items()}

    def _send(self, cell: Cell, texture_id: int, stamp: int, flags: int) -> None:
        """Publishes one placement. Holds the lock."""
        with self._placements.loan(timeout=1.0) as m:
            h = m.header
            h.flags = flags
            h.texture_id = texture_id
            h.map_x, h.map_y = cell
            h.timestamp_ns = stamp

    def _refresh(self) -> None:
        rounds = 0
        per_texture = max(1, round(self.retexture / self.republish))
        while not self._stop.wait(self.republish):
            rounds += 1
            # The placements under the lock (tiny records; a brick removed meanwhile must not
            # come back), one at a time: a full ring skips that brick until the next round.
            with self._lock:
                bricks = list(self._bricks.items())
                for cell, (texture_id, _, stamp) in bricks:
                    try:
                        self._send(cell, texture_id, stamp, 0)
                    except GosBusError:
                        continue
            if rounds % per_texture:
                continue
            # The textures outside it (decoding takes time), each on its own: a file gone or
            # broken since is skipped, the others still go.
            for path in sorted({b[1] for _, b in bricks}):
                if self._stop.is_set():
                    return
                try:
                    self._textures.publish(path, timeout=0.5)
                except GosBusError:
                    continue

    def close(self) -> None:
        """Stops republishing and leaves the rings (the bricks stay on the terrain)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self._placements.close()
        self._textures.close()

    def __enter__(self) -> "NeuralTerrain":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"NeuralTerrain({len(self._bricks)} bricks on {MAP_CELLS}x{MAP_CELLS} cells)"


__all__ = ["NeuralTerrain", "MAP_CELLS"]
