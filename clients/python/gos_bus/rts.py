"""PixelRTS textures from Python: decoded and published by the Rust loader (through the C ABI),
never by decoding PNG in Python."""

from __future__ import annotations

import ctypes
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from .dna import HybridDNA

from . import _native
from .client import Bus, Ring, _check, _ns


@dataclass(frozen=True)
class Published:
    """What was published for one file."""

    texture_id: int
    data_size: int
    sha256: str


class RtsPublisher:
    """Publishes `.rts.png` files on a ring whose layout is RtsTexture (default `rts.textures`)."""

    def __init__(self, bus: Bus, ring: str = "rts.textures") -> None:
        self._handle: Optional[ctypes.c_void_p] = None
        self.ring = Ring(bus, ring)
        self.ring.check_layout("RtsTexture")
        handle = ctypes.c_void_p()
        _check(_native.lib.gos_rts_publisher_new(self.ring._handle, ctypes.byref(handle)))
        self._handle = handle

    def publish(self, path: str, timeout: Optional[float] = None) -> Published:
        """Decodes `path` and publishes it; GosBusError (with the reason) if it is not usable,
        Timeout (nothing published) if no slot came free within `timeout` seconds."""
        tid, size = ctypes.c_uint64(), ctypes.c_uint64()
        digest = ctypes.create_string_buffer(32)
        _check(
            _native.lib.gos_rts_publish(
                self._handle, str(path).encode(), _ns(timeout), ctypes.byref(tid), ctypes.byref(size), digest
            )
        )
        return Published(tid.value, size.value, digest.raw.hex())

    def close(self) -> None:
        if self._handle:
            _native.lib.gos_rts_publisher_free(self._handle)
            self._handle = None

    def __enter__(self) -> "RtsPublisher":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


class RtsAsset:
    """A PixelRTS file (`.rts.png`), as the Geometry OS proposal names it. Here: its path, the
    texture id it is published under, and the Hybrid DNA it carries (`extract_dna`); the Rust
    loader reads it (`RtsPublisher` publishes the texture)."""

    def __init__(self, path: "os.PathLike[str] | str") -> None:
        self.path = os.fspath(path)
        self._logic: Optional[dict] = None
        self._read = False

    @classmethod
    def load(cls, path: "os.PathLike[str] | str") -> "RtsAsset":
        """The asset at `path`, its chunks read: FileNotFoundError if there is no such file,
        GosBusError if it is not a PNG (or carries a malformed logic chunk)."""
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no PixelRTS file at {os.fspath(path)}")
        asset = cls(path)
        asset._logic_json()
        return asset

    def __repr__(self) -> str:
        return f"RtsAsset({self.path!r})"

    def _logic_json(self) -> Optional[dict]:
        if not self._read:
            need = ctypes.c_size_t()
            path = self.path.encode()
            _check(_native.lib.gos_rts_logic_json(path, None, 0, ctypes.byref(need)))
            while True:  # the file may change between two reads: ask again if it grew
                size = need.value
                buf = ctypes.create_string_buffer(size)
                _check(_native.lib.gos_rts_logic_json(path, buf, size, ctypes.byref(need)))
                if need.value <= size:
                    break
            self._logic = json.loads(buf.value.decode("utf-8"))
            self._read = True
        return self._logic

    @property
    def texture_id(self) -> int:
        """The id its texture is published under on `rts.textures` (FNV-1a 64 of its path)."""
        logic = self._logic_json()
        if logic is not None:
            return int(logic["texture_id"])
        return int(_native.lib.gos_rts_texture_id(os.path.realpath(self.path).encode()))

    def extract_dna(self) -> "Optional[HybridDNA]":
        """The Hybrid DNA this file carries (an `RTS_Logic` chunk in tEXt, iTXt or zTXt, raw or
        JSON with `code`; or a "Hybrid-DNA-v1" record), None when it carries none. A malformed
        carrier raises GosBusError with the reason."""
        from .dna import HybridDNA

        logic = self._logic_json()
        if logic is None:
            return None
        return HybridDNA(
            logic["code"],
            source=f"{self.path} ({logic['carrier']})",
            language=logic["language"],
            texture_id=int(logic["texture_id"]),
        )
