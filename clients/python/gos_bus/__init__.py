"""gos_bus: attach Python daemons to gos-bus, the shared-memory IPC bus of Geometry OS.

    import gos_bus
    bus = gos_bus.Bus.attach("geometry")
    sub = bus.subscriber("render.frames")
    with sub.recv(timeout=1.0) as msg:
        print(msg.header.width, msg.header.height, len(msg.tail()))

Standard library only (numpy optional, for `pixels()`); the work is done by the gos-bus C ABI
(libgos_bus_c.so), so the bytes you see are the shared memory itself.
"""

from .client import Bus, LoanedMessage, Message, Publisher, Ring, Subscriber, set_client_name
from .client import _default_client_name
from .daemon import BaseDaemon, Daemon, DaemonStats
from .window import PixelWindow
from .terminal import TerminalWindow
from .terrain import NeuralTerrain
from .rts import RtsAsset, RtsAssetError, RtsPublisher, Segment
from .dna import (
    ExecutionResult,
    HybridDNA,
    HybridDNAError,
    HybridDNAExecutionError,
    HybridDNARejectedError,
    HybridDNATimeoutError,
    Sandbox,
)
from .errors import (
    BusNotRunning,
    Busy,
    Corrupt,
    Full,
    GosBusError,
    InternalError,
    InvalidArgument,
    LayoutMismatch,
    NoSuchRing,
    PermissionDenied,
    Reaped,
    SystemFailure,
    Timeout,
)
from .layouts import Layout, all_layouts, by_name
from ._native import version as _library_version

#: The package's version: the gos-bus library's, which is the Cargo workspace's.
__version__ = _library_version()

# Python programs are all `python3.11` to the executable-name default: name them after the
# script instead (a BaseDaemon names its clients after its class).
set_client_name(_default_client_name())

__all__ = [
    "Bus",
    "set_client_name",
    "BaseDaemon",
    "Daemon",
    "DaemonStats",
    "PixelWindow",
    "TerminalWindow",
    "NeuralTerrain",
    "RtsPublisher",
    "RtsAsset",
    "RtsAssetError",
    "Segment",
    "HybridDNA",
    "HybridDNAError",
    "HybridDNATimeoutError",
    "HybridDNAExecutionError",
    "HybridDNARejectedError",
    "ExecutionResult",
    "Sandbox",
    "Publisher",
    "Subscriber",
    "Message",
    "LoanedMessage",
    "Ring",
    "Layout",
    "all_layouts",
    "by_name",
    "GosBusError",
    "BusNotRunning",
    "NoSuchRing",
    "LayoutMismatch",
    "Timeout",
    "Full",
    "Corrupt",
    "Busy",
    "Reaped",
    "InvalidArgument",
    "PermissionDenied",
    "SystemFailure",
    "InternalError",
]
