"""Record layouts as ctypes structures, built from the schemas gos-bus publishes (never a
hand-written copy): `gos-bus layouts --json`, the registry, and the C ABI all give the same
JSON, and every field's offset is checked against it."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any, Dict, FrozenSet, Optional, Type

from . import _native

_SCALARS = {
    "u8": ctypes.c_uint8,
    "u16": ctypes.c_uint16,
    "u32": ctypes.c_uint32,
    "u64": ctypes.c_uint64,
    "i32": ctypes.c_int32,
    "i64": ctypes.c_int64,
    "f32": ctypes.c_float,
    "f64": ctypes.c_double,
}


@dataclass(frozen=True)
class Layout:
    """One record layout: its schema, fingerprint and ctypes structure (None for raw bytes)."""

    name: str
    fingerprint: int
    size: int
    schema: Dict[str, Any]
    struct: Optional[Type[ctypes.LittleEndianStructure]]

    @cached_property
    def field_names(self) -> FrozenSet[str]:
        """The names of its fields (worked out once)."""
        return frozenset(f["name"] for f in self.schema["fields"])


def _build(schema: Dict[str, Any]) -> Optional[Type[ctypes.LittleEndianStructure]]:
    if not schema["fields"]:
        return None
    fields = []
    for f in schema["fields"]:
        t = _SCALARS[f["type"]]
        fields.append((f["name"], t * f["count"] if f["count"] > 1 else t))
    cls = type(schema["name"], (ctypes.LittleEndianStructure,), {"_fields_": fields})
    for f in schema["fields"]:
        if getattr(cls, f["name"]).offset != f["offset"]:
            raise TypeError(f"{schema['name']}.{f['name']}: ctypes puts it at another offset")
    if ctypes.sizeof(cls) != schema["size"]:
        raise TypeError(f"{schema['name']}: ctypes size {ctypes.sizeof(cls)} != {schema['size']}")
    return cls


@lru_cache(maxsize=1)
def all_layouts() -> Dict[str, Layout]:
    """Every message layout by name."""
    doc = _native.document()
    out = {}
    for schema in doc["records"]:
        out[schema["name"]] = Layout(
            name=schema["name"],
            fingerprint=int(schema["fingerprint"], 16),
            size=schema["size"],
            schema=schema,
            struct=_build(schema),
        )
    return out


def by_name(name: str) -> Layout:
    """The layout called `name` (case-insensitive)."""
    for n, layout in all_layouts().items():
        if n.lower() == name.lower():
            return layout
    known = ", ".join(all_layouts())
    raise KeyError(f"unknown layout {name!r}; known: {known}")


def by_fingerprint(fp: int) -> Optional[Layout]:
    """The layout with fingerprint `fp`, if this build knows it."""
    for layout in all_layouts().values():
        if layout.fingerprint == fp:
            return layout
    return None
