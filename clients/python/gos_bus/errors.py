"""Exceptions of the gos-bus Python client. Each message says what happened and what to do."""

from __future__ import annotations


class GosBusError(Exception):
    """Base of every gos-bus error."""


class BusNotRunning(GosBusError):
    """The bus has no broker: start it with `gos-bus serve`."""


class NoSuchRing(GosBusError):
    """The ring does not exist on this bus."""


class LayoutMismatch(GosBusError):
    """The ring carries another record layout than the one asked for."""


class Timeout(GosBusError):
    """Nothing arrived (or no slot freed) before the timeout."""


class Full(GosBusError):
    """The ring had no free slot and the caller asked not to wait."""


class Corrupt(GosBusError):
    """A segment failed validation (damaged, or not a gos-bus ring)."""


class Busy(GosBusError):
    """A single-producer ring already has its publisher, or the client table is full."""


class Reaped(GosBusError):
    """The broker took this client's entry back (it stopped beating for too long)."""


class InvalidArgument(GosBusError, ValueError):
    """A call the client cannot make as asked: a bad name or size, a message still held, a
    layout or configuration out of range. The message says what to do instead."""


class PermissionDenied(GosBusError, PermissionError):
    """The operating system refused access to a segment (another user's bus, its modes)."""


class SystemFailure(GosBusError, OSError):
    """A system call failed (mapping, futex, file system); the message names it."""


class InternalError(GosBusError):
    """A bug in gos-bus (a Rust panic was caught at the C ABI): please report it."""


# Which exception each C ABI status stands for, by the status's name; the numbers come from the
# library (`_native.status_code`), never from a copy here.
_BY_NAME = {
    "GOS_TIMEOUT": Timeout,
    "GOS_EBUS_NOT_RUNNING": BusNotRunning,
    "GOS_ENO_SUCH_RING": NoSuchRing,
    "GOS_ECORRUPT": Corrupt,
    "GOS_EBUSY": Busy,
    "GOS_EREAPED": Reaped,
    "GOS_EINVALID": InvalidArgument,
    "GOS_EPERMISSION": PermissionDenied,
    "GOS_EOTHER": SystemFailure,
    "GOS_EPANIC": InternalError,
}


def from_code(code: int, message: str) -> GosBusError:
    """The exception for a status code of the C ABI."""
    from . import _native

    # A code this package does not know (a newer library's) is a plain GosBusError.
    return _BY_NAME.get(_native.status_name(code) or "", GosBusError)(message)
