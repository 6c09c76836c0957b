"""PixelRTS textures from Python: decoded and published by the Rust loader (through the C ABI),
never by decoding PNG in Python."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any, Optional

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
