"""PixelRTS textures from Python: decoded and published by the Rust loader (through the C ABI),
never by decoding PNG in Python."""

from __future__ import annotations

import ctypes
import json
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple

if TYPE_CHECKING:
    from .dna import HybridDNA

from . import _native
from .client import Bus, Ring, _check, _sliced
from .errors import GosBusError, InvalidArgument


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
        self._lock = threading.Lock()
        bus._track(self)

    def publish(self, path: str, timeout: Optional[float] = None) -> Published:
        """Decodes `path` and publishes it; GosBusError (with the reason) if it is not usable,
        Timeout (nothing published) if no slot came free within `timeout` seconds."""
        tid, size = ctypes.c_uint64(), ctypes.c_uint64()
        digest = ctypes.create_string_buffer(32)
        def call(ns: int) -> Tuple[int, None]:
            # A long wait goes in slices (the file is read again for each), so close() gets in.
            if not self._handle:
                raise InvalidArgument(f"this RTS publisher on ring '{self.ring.name}' was closed: make a new one")
            code = _native.lib.gos_rts_publish(
                self._handle, str(path).encode(), ns, ctypes.byref(tid), ctypes.byref(size), digest
            )
            return int(code), None

        _check(_sliced(self._lock, call, timeout)[0])
        return Published(tid.value, size.value, digest.raw.hex())

    def close(self) -> None:
        """Leaves the ring; `publish` raises InvalidArgument after this."""
        with self._lock:
            if self._handle:
                _native.lib.gos_rts_publisher_free(self._handle)
                self._handle = None

    def __enter__(self) -> "RtsPublisher":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


class RtsAssetError(GosBusError):
    """A file that is not a usable PixelRTS asset: the message says what is wrong and what to do."""


@dataclass(frozen=True)
class Segment:
    """A named part of an asset's data (`offsets` in its metadata): bytes `[start, end)`;
    `verified` when the metadata states its SHA-256 (and it matched)."""

    name: str
    start: int
    end: int
    verified: bool


def _logic_of(path: str) -> Optional[Dict[str, Any]]:
    """The Hybrid DNA `path` carries, as the C ABI describes it (None when it carries none)."""
    need = ctypes.c_size_t()
    raw = path.encode()
    _check(_native.lib.gos_rts_logic_json(raw, None, 0, ctypes.byref(need)))
    while True:  # the file may change between two reads: ask again if it grew
        size = need.value
        buf = ctypes.create_string_buffer(size)
        _check(_native.lib.gos_rts_logic_json(raw, buf, size, ctypes.byref(need)))
        if need.value <= size:
            found: Dict[str, Any] = json.loads(buf.value.decode("utf-8"))
            return found


def extract_dna(path: "os.PathLike[str] | str") -> "Optional[HybridDNA]":
    """The Hybrid DNA of the file at `path` without decoding its texture (the RTS watcher uses
    it, so a file whose texture is unusable still gives its DNA); None when it carries none."""
    from .dna import HybridDNA

    path = os.fspath(path)
    logic = _logic_of(path)
    if logic is None:
        return None
    return HybridDNA(logic["code"], source=f"{path} ({logic['carrier']})", language=logic["language"],
                     texture_id=int(logic["texture_id"]))


class _Handle:
    """Owns a loaded asset of the C ABI; freed when the last reference (the asset, or a view of
    its buffers) goes."""

    def __init__(self, ptr: ctypes.c_void_p) -> None:
        self.ptr = ptr

    def __del__(self) -> None:
        if self.ptr:
            _native.lib.gos_rts_asset_free(self.ptr)
            self.ptr = ctypes.c_void_p()


class RtsAsset:
    """A PixelRTS file (`.rts.png`), the Geometry OS proposal's unified RTS asset.

    `RtsAsset.load(path)` decodes it with the one Rust loader (the one the RTS watcher and
    `gos-bus rts publish` use): the PNG, its shape, its metadata and the rule that finds its
    data are checked at once; the data itself is recovered, and every hash the metadata states
    checked, on first use of `.data`, `.sha256`, `.verified` or `.segments` (RtsAssetError
    then, for a hash that does not match). The views are read-only, and keep the loader's
    buffers alive after `close()` or the asset itself is gone. It offers `.dimensions` (width, height), `.texture` (the RGBA8 pixels, a
    numpy `(h, w, 4)` uint8 array when numpy is present, else a memoryview; a view of the
    loader's own buffer, not a copy), `.data` (the decoded bytes, a memoryview), `.metadata`
    (a dict: every text chunk, JSON-decoded when it is JSON, over the sidecar's keys), `.segments`
    (name to Segment), `.rule` (how the data was found), `.sha256`, `.verified` (the hashes
    checked), `.texture_id`, `.extract_dna()`, `.wasm_module` (the module a cartridge carries).
    """

    def __init__(self, path: str, handle: "_Handle", info: Dict[str, Any]) -> None:
        self.path = path
        self._holder: Optional[_Handle] = handle
        self._info = info
        self._found: Optional[Dict[str, Any]] = None
        self._lock = threading.Lock()  # the C handle is used by one thread at a time

    @property
    def _handle(self) -> Optional[ctypes.c_void_p]:
        return self._holder.ptr if self._holder else None

    def _recovered(self) -> Dict[str, Any]:
        """What the data's recovery found (done once, on first use): the loader recovers the
        data by the rule and checks every stated hash; RtsAssetError when one does not match."""
        with self._lock:
            return self._recover_locked()

    def _recover_locked(self) -> Dict[str, Any]:
        if self._found is None:
            if not self._handle:
                raise RtsAssetError(f"{self.path} was closed: load it again")
            need = ctypes.c_size_t()
            code = _native.lib.gos_rts_asset_recover(self._handle, None, 0, ctypes.byref(need))
            if code != _native.OK:
                raise RtsAssetError(f"{_native.last_error()} (gos-bus rts info {self.path} shows what the loader sees)")
            buf = ctypes.create_string_buffer(need.value)
            _check(_native.lib.gos_rts_asset_recover(self._handle, buf, need.value, ctypes.byref(need)))
            self._found = json.loads(buf.value.decode("utf-8"))
        return self._found

    @classmethod
    def load(cls, path: "os.PathLike[str] | str") -> "RtsAsset":
        """Loads the asset at `path`; RtsAssetError says why a file cannot be used."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise RtsAssetError(f"no file at {path}: check the path (a .rts.png file)")
        handle = ctypes.c_void_p()
        code = _native.lib.gos_rts_load(path.encode(), ctypes.byref(handle))
        if code != _native.OK:
            raise RtsAssetError(
                f"{_native.last_error()} (gos-bus rts info {path} shows what the loader sees)"
            )
        holder = _Handle(handle)
        need = _native.lib.gos_rts_asset_info(handle, None, 0)
        buf = ctypes.create_string_buffer(need)
        _native.lib.gos_rts_asset_info(handle, buf, need)
        return cls(path, holder, json.loads(buf.value.decode("utf-8")))

    def __repr__(self) -> str:
        w, h = self.dimensions
        return f"RtsAsset({self.path!r}, {w}x{h}, rule {self.rule!r})"

    def _bytes(self, which: int) -> memoryview:
        """A read-only view of the loader's pixels (0) or data (1); it keeps the loader's
        buffers alive (even past `close()`)."""
        with self._lock:
            holder = self._holder
            if holder is None:
                raise RtsAssetError(f"{self.path} was closed: load it again")
            ptr, n = ctypes.POINTER(ctypes.c_uint8)(), ctypes.c_uint64()
            _check(_native.lib.gos_rts_asset_bytes(holder.ptr, which, ctypes.byref(ptr), ctypes.byref(n)))
        if n.value == 0:
            return memoryview(b"")
        array = (ctypes.c_uint8 * n.value).from_address(ctypes.addressof(ptr.contents))
        array._owner = holder  # type: ignore[attr-defined]  # the buffers live while a view does
        return memoryview(array).cast("B").toreadonly()

    @property
    def dimensions(self) -> "tuple[int, int]":
        """(width, height) in pixels."""
        return int(self._info["width"]), int(self._info["height"])

    @property
    def texture(self) -> Any:
        """The RGBA8 pixels: a numpy (h, w, 4) uint8 array when numpy is present, else a flat
        memoryview; either way a view of the loader's buffer."""
        view = self._bytes(0)
        try:
            import numpy as np
        except ImportError:
            return view
        w, h = self.dimensions
        return np.frombuffer(view, dtype=np.uint8).reshape(h, w, 4)

    @property
    def data(self) -> memoryview:
        """The decoded bytes (exactly what the rule found; recovered and hash-checked on first
        use)."""
        self._recovered()
        return self._bytes(1)

    @property
    def wasm_module(self) -> Optional[bytes]:
        """The WebAssembly module this file carries (a Pixel Code Executor cartridge: its data
        is a module, as the Rust loader decides), None when its data is something else."""
        if not self._recovered().get("wasm_module"):
            return None
        return bytes(self._bytes(1))

    @property
    def metadata(self) -> Dict[str, Any]:
        """Every text chunk by keyword (JSON-decoded when it is JSON) over the sidecar's keys;
        the PixelRTS metadata's own keys at the top level."""
        return dict(self._info["metadata"])

    @property
    def segments(self) -> "dict[str, Segment]":
        """The named segments of the metadata's `offsets`, by name."""
        return {s["name"]: Segment(s["name"], s["start"], s["end"], s["verified"])
                for s in self._recovered()["segments"]}

    @property
    def rule(self) -> str:
        """How the loader found the data (which size key, which order), in one line."""
        return str(self._info["rule"])

    @property
    def sha256(self) -> str:
        """SHA-256 of `data`, hex."""
        return str(self._recovered()["sha256"])

    @property
    def verified(self) -> "list[str]":
        """The hashes that were stated and matched ("data_hash", "segment NAME")."""
        return list(self._recovered()["verified"])

    @property
    def texture_id(self) -> int:
        """The id its texture is published under on `rts.textures` (FNV-1a 64 of its path)."""
        return int(self._info["texture_id"])

    def extract_dna(self) -> "Optional[HybridDNA]":
        """The Hybrid DNA this file carries (an `RTS_Logic` chunk in tEXt, iTXt or zTXt, raw or
        JSON with `code`; or a "Hybrid-DNA-v1" record), None when it carries none."""
        from .dna import HybridDNA

        logic = self._info.get("logic")
        if logic is None:
            return None
        return HybridDNA(logic["code"], source=f"{self.path} ({logic['carrier']})", language=logic["language"],
                         texture_id=self.texture_id)

    def close(self) -> None:
        """Lets go of the loader's buffers: they are freed once no view of them is left."""
        with self._lock:
            self._holder = None

    def __enter__(self) -> "RtsAsset":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()
