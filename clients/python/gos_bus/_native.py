"""Loading the gos-bus C ABI (libgos_bus_c.so) and declaring its functions for ctypes.

Lookup order: the GOS_BUS_LIB environment variable; the copy inside this package (`pip install`
builds it); the Cargo target folders of the repository this package sits in (the newer of
release and debug).
"""

from __future__ import annotations

import ctypes
import json
import os
import sysconfig
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Optional

LIB_NAME = "libgos_bus_c.so"


class RingInfo(ctypes.Structure):
    _fields_ = [
        ("slot_count", ctypes.c_uint32),
        ("slot_size", ctypes.c_uint32),
        ("mode", ctypes.c_uint32),
        ("policy", ctypes.c_uint32),
        ("layout_fingerprint", ctypes.c_uint64),
        ("single_producer", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32),
    ]


class Loan(ctypes.Structure):
    _fields_ = [
        ("ptr", ctypes.c_void_p),
        ("capacity", ctypes.c_uint64),
        ("seq", ctypes.c_uint64),
    ]


class Message(ctypes.Structure):
    _fields_ = [
        ("ptr", ctypes.c_void_p),
        ("len", ctypes.c_uint64),
        ("seq", ctypes.c_uint64),
        ("deliveries", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32),
    ]


def _candidates(name: str = LIB_NAME, env_var: str = "GOS_BUS_LIB") -> list[Path]:
    """Where `name` (the library, or a program built beside it) may be: `env_var`, this
    package's folder, then the repository's Cargo target folders, newest build first."""
    found = []
    env = os.environ.get(env_var)
    if env:
        found.append(Path(env))
    here = Path(__file__).resolve().parent
    # Inside this package: the library as setuptools-rust names it (libgos_bus_c.<ext suffix>,
    # or plain), a program under its own name.
    stem = name[: -len(".so")] if name.endswith(".so") else None
    found += sorted(here.glob(stem + "*.so")) if stem else [here / name]
    if stem is None:
        # A program pip installed beside the interpreter (the environment's bin/, or the
        # user's with `pip install --user`).
        found.append(Path(sysconfig.get_path("scripts")) / name)
        found.append(Path(sysconfig.get_path("scripts", f"{os.name}_user")) / name)
    for parent in here.parents:
        if (parent / "Cargo.toml").exists() and (parent / "clients" / "c").exists():
            # Cargo's target folder: CARGO_TARGET_DIR when set (relative to the workspace,
            # as cargo reads it), else the workspace's own.
            target = parent / os.environ.get("CARGO_TARGET_DIR", "target")
            built = [target / p / name for p in ("release", "debug")]
            found += sorted(built, key=lambda p: p.stat().st_mtime if p.exists() else 0, reverse=True)
            break
    return found


def _load() -> ctypes.CDLL:
    tried = _candidates()
    for path in tried:
        if path.is_file():
            return ctypes.CDLL(str(path))
    raise OSError(
        f"cannot find {LIB_NAME} (looked at: {', '.join(str(p) for p in tried) or 'nothing'}): install the "
        "package with `pip install ./clients/python` (which builds it), build it with "
        "`cargo build --release -p gos-bus-c`, or set GOS_BUS_LIB=/path/to/libgos_bus_c.so"
    )


def tool(name: str, env_var: str, package: str = "gos-dna") -> Path:
    """A program of gos-bus (e.g. `gos-dna-sandbox`): at `env_var`, beside the interpreter
    (where `pip install` puts it), or in the repository's target folders."""
    env = os.environ.get(env_var)
    if env and not (os.path.isfile(env) and os.access(env, os.X_OK)):
        raise FileNotFoundError(f"{env_var}={env} is not an executable file: point it at {name}, or unset it")
    tried = _candidates(name, env_var)
    for path in tried:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise FileNotFoundError(
        f"cannot find {name} (looked at: {', '.join(str(p) for p in tried)}): build it with "
        f"`cargo build --release -p {package}`, or set {env_var}=/path/to/{name}"
    )


lib = _load()
_p = ctypes.c_void_p
_i32 = ctypes.c_int32
_sig = {
    "gos_last_error": ([ctypes.c_char_p, ctypes.c_size_t], ctypes.c_size_t),
    "gos_layouts_json": ([ctypes.c_char_p, ctypes.c_size_t], ctypes.c_size_t),
    "gos_version": ([], ctypes.c_char_p),
    "gos_set_client_name": ([ctypes.c_char_p], _i32),
    "gos_ring_open": ([ctypes.c_char_p, ctypes.c_char_p, _i32, ctypes.POINTER(_p)], _i32),
    "gos_ring_info": ([_p, ctypes.POINTER(RingInfo)], _i32),
    "gos_ring_close": ([_p], None),
    "gos_publisher_new": ([_p, ctypes.POINTER(_p)], _i32),
    "gos_publisher_loan": ([_p, ctypes.c_int64, ctypes.POINTER(Loan)], _i32),
    "gos_publisher_commit": ([_p, ctypes.c_uint64], _i32),
    "gos_publisher_abandon": ([_p], _i32),
    "gos_publisher_free": ([_p], None),
    "gos_subscriber_new": ([_p, _i32, ctypes.POINTER(_p)], _i32),
    "gos_subscriber_recv": ([_p, ctypes.c_int64, ctypes.POINTER(Message)], _i32),
    "gos_subscriber_release": ([_p], _i32),
    "gos_subscriber_stats": ([_p, ctypes.POINTER(ctypes.c_uint64), ctypes.POINTER(ctypes.c_uint64)], _i32),
    "gos_subscriber_report": ([_p, ctypes.c_uint64, ctypes.c_uint64], _i32),
    "gos_subscriber_recv_many": (
        [_p, ctypes.c_uint32, ctypes.c_int64, _p, ctypes.c_uint64, _p, ctypes.POINTER(ctypes.c_uint32)],
        _i32,
    ),
    "gos_subscriber_recv_copies": (
        [_p, ctypes.c_uint32, ctypes.c_int64, _p, ctypes.c_uint64, _p, _p, ctypes.POINTER(ctypes.c_uint32)],
        _i32,
    ),
    "gos_publisher_send": ([_p, ctypes.c_char_p, ctypes.c_uint64, ctypes.c_int64], _i32),
    "gos_publisher_send_many": (
        [_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint32), ctypes.c_uint32, ctypes.c_int64, ctypes.POINTER(ctypes.c_uint32)],
        _i32,
    ),
    "gos_subscriber_free": ([_p], None),
    "gos_rts_publisher_new": ([_p, ctypes.POINTER(_p)], _i32),
    "gos_rts_publish": (
        [_p, ctypes.c_char_p, ctypes.c_int64, ctypes.POINTER(ctypes.c_uint64), ctypes.POINTER(ctypes.c_uint64), ctypes.c_char_p],
        _i32,
    ),
    "gos_rts_publisher_free": ([_p], None),
    "gos_rts_logic_json": ([ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t)], _i32),
    "gos_rts_texture_id": ([ctypes.c_char_p], ctypes.c_uint64),
    "gos_rts_load": ([ctypes.c_char_p, ctypes.POINTER(_p)], _i32),
    "gos_rts_asset_info": ([_p, ctypes.c_char_p, ctypes.c_size_t], ctypes.c_size_t),
    "gos_rts_asset_bytes": ([_p, ctypes.c_uint32, ctypes.POINTER(ctypes.POINTER(ctypes.c_uint8)), ctypes.POINTER(ctypes.c_uint64)], _i32),
    "gos_rts_asset_recover": ([_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t)], _i32),
    "gos_rts_asset_free": ([_p], None),
    "gos_terminal_new": ([ctypes.c_uint32, ctypes.c_uint32, ctypes.POINTER(_p)], _i32),
    "gos_terminal_write": ([_p, ctypes.c_char_p, ctypes.c_size_t], _i32),
    "gos_terminal_cells": ([_p, _p, ctypes.c_size_t], ctypes.c_size_t),
    "gos_terminal_cursor": ([_p, ctypes.POINTER(ctypes.c_uint32), ctypes.POINTER(ctypes.c_uint32)], _i32),
    "gos_terminal_text": ([_p, ctypes.c_char_p, ctypes.c_size_t], ctypes.c_size_t),
    "gos_terminal_free": ([_p], None),
}
_missing = [n for n in _sig if not hasattr(lib, n)]
if _missing:
    raise OSError(
        f"{lib._name} lacks {', '.join(_missing)}: it is older than this package; rebuild it "
        "(`cargo build --release -p gos-bus-c`) or reinstall the package"
    )
for _name, (_args, _ret) in _sig.items():
    _f = getattr(lib, _name)
    _f.argtypes = _args
    _f.restype = _ret


def version() -> str:
    """The library's version (the Cargo workspace's)."""
    v: bytes = lib.gos_version()
    return v.decode()


def last_error() -> str:
    need = lib.gos_last_error(None, 0)
    buf = ctypes.create_string_buffer(need)
    lib.gos_last_error(buf, need)
    return buf.value.decode("utf-8", "replace")


def layouts_json() -> str:
    need = lib.gos_layouts_json(None, 0)
    buf = ctypes.create_string_buffer(need)
    lib.gos_layouts_json(buf, need)
    return buf.value.decode("utf-8")


@lru_cache(maxsize=1)
def document() -> Dict[str, Any]:
    """What the library publishes about its layouts: `records` and `segment` schemas,
    `constants` (codes and flags of the records, ring modes) and `status_codes` (the C ABI's
    return codes), as `gos-bus layouts --json` prints them."""
    doc: Dict[str, Any] = json.loads(layouts_json())
    return doc


def constant(name: str) -> int:
    """The value of a layouts constant (e.g. `DNA_STATUS_OK`), as the Rust side defines it."""
    for c in document()["constants"]:
        if c["name"] == name:
            return int(c["value"])
    raise KeyError(f"gos-bus publishes no constant {name!r}: is {LIB_NAME} older than this package?")


def status_code(name: str) -> int:
    """The value of a C ABI status code (e.g. `GOS_TIMEOUT`)."""
    try:
        return int(document()["status_codes"][name])
    except KeyError:
        raise KeyError(f"gos-bus publishes no status code {name!r}: is {LIB_NAME} older than this package?") from None


def status_name(code: int) -> Optional[str]:
    """The name of C ABI status `code` (None for one this package does not know: a newer
    library's)."""
    for name, value in document()["status_codes"].items():
        if value == code:
            return str(name)
    return None


OK = status_code("GOS_OK")
TIMEOUT = status_code("GOS_TIMEOUT")
