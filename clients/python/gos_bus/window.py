"""`PixelWindow`: a window of pixels on the render node, owned by this process.

    win = gos_bus.PixelWindow(bus, "thumbnail", size=(128, 128), position=(40, 40))
    win.update(pixels)          # bytes of 128*128*4 RGBA8, or a (128, 128, 4) uint8 array
    ...                         # it stays on screen: no need to publish again
    win.close()                 # gone at once (or when this process exits)
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Optional, Tuple, Union

from . import _native
from .client import Bus, LoanedMessage, Publisher
from .errors import Full, GosBusError, InvalidArgument, Timeout
from .layouts import by_name

_FRAME = by_name("RenderFrame")
_RGBA8 = _native.constant("PIXEL_RGBA8")
_PIXEL_WINDOW = _native.constant("FRAME_PIXEL_WINDOW")
_VISIBLE = _native.constant("FRAME_FLAG_VISIBLE")
_DIRTY = _native.constant("FRAME_FLAG_DIRTY_RECT")
_KEEPALIVE = _native.constant("FRAME_FLAG_KEEPALIVE")
_CLOSE = _native.constant("FRAME_FLAG_CLOSE")
_DECORATED = _native.constant("FRAME_FLAG_DECORATED")
_TITLE_BYTES = next(f["count"] for f in _FRAME.schema["fields"] if f["name"] == "title")
#: Largest zoom the render node accepts (`gos_render_node::inputs::MAX_ZOOM`).
MAX_ZOOM = 64.0
#: Largest side of a window, pixels (the GPU's usual 2D texture limit).
MAX_SIDE = 8192


def source_id_of(title: str) -> int:
    """The source id a window titled `title` publishes under: the 64-bit FNV-1a hash of
    "window:" + its UTF-8 title (never 0). The same title replaces the same window, even
    across restarts of its process."""
    h = 0xCBF29CE484222325
    for b in ("window:" + title).encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFF_FFFF_FFFF_FFFF
    return h or 1


def _as_bytes(pixels: Any, width: int, height: int) -> memoryview:
    """`pixels` (bytes-like, or an array of shape (height, width, 4) of uint8) as one flat
    read-only run of width*height*4 bytes."""
    try:
        view = memoryview(pixels)
    except TypeError:
        raise InvalidArgument(f"pixels must be bytes or a uint8 array, not {type(pixels).__name__}") from None
    if not view.c_contiguous:
        import numpy as np

        contiguous: Any = np.ascontiguousarray(pixels)
        view = memoryview(contiguous)
    shape = tuple(view.shape or ())
    if view.ndim > 1 and shape != (height, width, 4):
        raise InvalidArgument(f"pixels of shape {shape} are not this window's ({height}, {width}, 4)")
    if view.itemsize != 1:
        raise InvalidArgument(f"pixels must be bytes (uint8), not items of {view.itemsize} bytes")
    flat = view.cast("B") if view.ndim != 1 or view.format != "B" else view
    need = width * height * 4
    if flat.nbytes != need:
        raise InvalidArgument(f"{flat.nbytes} bytes of pixels are not the {need} of a {width}x{height} RGBA8 window")
    return flat


class PixelWindow:
    """A window of RGBA8 pixels on the render node (`render.frames`), owned by this process.

    `PixelWindow(bus, title, size=(w, h), position=(x, y), z=100, zoom=1.0)`: `bus` is a
    `Bus` or a bus name; `size` in pixels; `position` is the top-left corner in output pixels
    (x to the right, y down, (0, 0) the top-left of the node's output); `z` the stacking
    order (higher is nearer; the DNA executor's brick windows use 200); `zoom` scales the
    window on screen (0 < zoom <= 64). `title` names the window: its source id is derived
    from it (`source_id_of`), unless `source_id=` is given.

    `update(pixels, dirty=None)` publishes a picture: bytes of w*h*4 (RGBA8, rows top to
    bottom) or a (h, w, 4) uint8 array; `dirty=(x, y, w, h)` says only that rectangle
    changed (the node uploads only it). The record is filled in for you: magic, version,
    size, stride, pixel format, placement.

    The window stays on screen until `close()` or the end of the process: a thread sends a
    keep-alive (`FRAME_FLAG_KEEPALIVE`, no pixels) every `keepalive` seconds, which the
    render node honours (it fades a source silent for its `--fade-after`, 2 s by default),
    and the whole picture again every `refresh` seconds, for a node started later. `close()`
    (also at a normal exit of the interpreter) sends `FRAME_FLAG_CLOSE`, which removes it at
    once; a process killed outright has its window fade.

    `decorated=True` has the node draw it as Geometry OS does: a title bar of
    `FRAME_TITLE_BAR` (30) pixels above it with its title, and a border of `FRAME_BORDER` (2)
    pixels around both; `position` stays the top-left of the pixels. `focus=True` (or a
    later `focus()`) asks for the focus: the node shows one window focused, the last to ask.
    `PixelWindow.create_terminal(...)` makes a terminal window instead (`TerminalWindow`).

    `style` names a shader style the render node draws the window with (`crt_cyan` is built
    in: curvature, scanlines, a cyan glow; `gos-render-node --styles DIR` loads more); an
    unknown name draws it plain.

    Alpha is opacity: the node blends each window over what lies below by its pixels' alpha.
    Pixels whose fourth byte is data rather than opacity (RTS textures are) would come out
    see-through: pass `opaque=True` to publish them with alpha 255.

    Thread-safe: `update`, `move` and `close` take turns with the keep-alive thread.
    """

    keepalive = 0.5
    refresh = 5.0
    #: What the frames carry: RenderFrame `kind`, `pixel_format` and bytes per pixel.
    _kind = _PIXEL_WINDOW
    _format = _RGBA8
    _bpp = 4

    def __init__(
        self,
        bus: Union[Bus, str],
        title: str,
        size: Tuple[int, int] = (256, 256),
        position: Tuple[int, int] = (0, 0),
        z: int = 100,
        zoom: float = 1.0,
        *,
        opaque: bool = False,
        style: Optional[str] = None,
        ring: str = "render.frames",
        source_id: Optional[int] = None,
        decorated: bool = False,
        focus: bool = False,
    ) -> None:
        if not isinstance(title, str) or not title:
            raise InvalidArgument("a window needs a title (a non-empty str)")
        w, h = (int(v) for v in size)
        if not (1 <= w <= MAX_SIDE and 1 <= h <= MAX_SIDE):
            raise InvalidArgument(f"window size {w}x{h} is not within 1..{MAX_SIDE} on each side")
        self._check_place(position, zoom)
        self._style = b""
        if style:
            self._style = style.encode()
            if len(self._style) > 16:
                raise InvalidArgument(f"style name {style!r} is longer than 16 bytes")
        self.bus = bus if isinstance(bus, Bus) else Bus.attach(bus)
        self.title = title
        self.width, self.height = w, h
        self.position = (int(position[0]), int(position[1]))
        self.z = int(z)
        self.zoom = float(zoom)
        self.opaque = opaque
        self.decorated = decorated
        # The focus request frames carry: a new non-zero value asks for the focus.
        self._focus = 1 if focus else 0
        self._title = title.encode()[:_TITLE_BYTES].decode(errors="ignore").encode()
        self.source_id = source_id if source_id is not None else source_id_of(title)
        self._lock = threading.Lock()
        self._pub: Optional[Publisher] = self.bus.publisher(ring, layout="RenderFrame")
        need = _FRAME.size + w * h * self._bpp
        if need > self._pub.ring.slot_size:
            self._pub.close()
            raise InvalidArgument(
                f"a {w}x{h} window needs {need} bytes per frame but ring '{ring}' has "
                f"{self._pub.ring.slot_size}-byte slots: make it smaller, or give the ring larger slots"
            )
        self._picture = bytearray(w * h * self._bpp)
        self._shown = False
        self._seq = 0
        self._error: Optional[GosBusError] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.bus._track(self)
        # At a normal exit the window closes (and leaves the screen at once).
        ref = weakref.ref(self)
        self._atexit = lambda: (lambda w: w.close() if w is not None else None)(ref())
        atexit.register(self._atexit)

    @property
    def style(self) -> Optional[str]:
        """The shader style it is drawn with (fixed when the window is made)."""
        return self._style.decode() or None

    @staticmethod
    def _check_place(position: Tuple[int, int], zoom: float) -> None:
        if len(position) != 2:
            raise InvalidArgument(f"position must be (x, y), not {position!r}")
        if not (0 < zoom <= MAX_ZOOM):
            raise InvalidArgument(f"zoom {zoom} is not within (0, {MAX_ZOOM}]")

    def _record(self, m: LoanedMessage, flags: int) -> None:
        h = m.header
        self._seq += 1
        h.frame_seq = self._seq
        h.timestamp_ns = time.time_ns()
        h.source_id = self.source_id
        h.kind = self._kind
        h.flags = _VISIBLE | flags | (_DECORATED if self.decorated else 0)
        h.pixel_format = self._format
        h.width, h.height, h.stride = self.width, self.height, self.width * self._bpp
        h.focus = self._focus
        h.title[: len(self._title)] = list(self._title)
        h.pos_x, h.pos_y = self.position
        h.zoom = self.zoom
        h.z_order = self.z
        h.style[: len(self._style)] = list(self._style)

    def _publish(self, dirty: Optional[Tuple[int, int, int, int]], timeout: Optional[float]) -> None:
        """The whole picture (the node uploads only `dirty` when given). Holds the lock."""
        pub = self._live()
        n = len(self._picture)
        with pub.loan(timeout=timeout) as m:
            self._record(m, _DIRTY if dirty else 0)
            if dirty:
                m.header.dirty_x, m.header.dirty_y, m.header.dirty_w, m.header.dirty_h = dirty
            m.header.pixel_bytes = n
            at = _FRAME.size
            m.payload[at : at + n] = self._picture
            m.length = at + n
        self._shown = True

    def _signal(self, flags: int, timeout: Optional[float]) -> None:
        """A frame without pixels: a keep-alive or the close. Holds the lock."""
        with self._live().loan(timeout=timeout) as m:
            self._record(m, flags)

    def _live(self) -> Publisher:
        if self._pub is None:
            raise InvalidArgument(f"window {self.title!r} was closed: make a new one")
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return self._pub

    def update(self, pixels: Any, dirty: Optional[Tuple[int, int, int, int]] = None, timeout: Optional[float] = 1.0) -> None:
        """Publishes `pixels` (w*h*4 bytes of RGBA8, or a (h, w, 4) uint8 array) as the
        window's picture; `dirty=(x, y, w, h)` when only that rectangle changed. Waits up to
        `timeout` seconds for a slot on a ring that blocks (Timeout then)."""
        flat = _as_bytes(pixels, self.width, self.height)
        if dirty is not None:
            x, y, dw, dh = (int(v) for v in dirty)
            if dw <= 0 or dh <= 0 or x < 0 or y < 0 or x + dw > self.width or y + dh > self.height:
                raise InvalidArgument(f"dirty rectangle {dirty} is not within the {self.width}x{self.height} window")
            dirty = (x, y, dw, dh)
        with self._lock:
            self._picture[:] = flat
            if self.opaque:
                self._picture[3::4] = b"\xff" * (len(self._picture) // 4)
            # The node has not seen the window yet: the whole picture is news to it.
            self._publish(dirty if self._shown else None, timeout)
            self._keep_alive_started()

    def _keep_alive_started(self) -> None:
        """Starts the keep-alive thread after the first picture. Holds the lock."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._keep_alive, name=f"window {self.title}", daemon=True)
            self._thread.start()

    def focus(self) -> None:
        """Asks the render node to show this window focused: it shows one, the last to ask
        (each call is a new request, so asking again takes the focus back)."""
        with self._lock:
            self._focus = self._focus % 0xFFFF_FFFF + 1
            if self._shown:
                self._signal(_KEEPALIVE, timeout=1.0)

    @staticmethod
    def create_terminal(
        title: str = "Neural Console",
        style: Optional[str] = None,
        dimensions: Optional[Tuple[int, int]] = None,
        *,
        grid: Optional[Tuple[int, int]] = None,
        bus: Union[Bus, str] = "geometry",
        position: Tuple[int, int] = (0, 0),
        z: int = 150,
        zoom: float = 1.0,
        decorated: bool = True,
        focus: bool = True,
        ring: str = "render.frames",
    ) -> "TerminalWindow":
        """A terminal window (the Neural Console): `dimensions=(w, h)` in pixels makes a
        grid of w // 8 by h // 16 cells, or `grid=(columns, rows)` says it (80x30 when
        neither is given). Write to it with `.write(text)`. See `TerminalWindow`."""
        from .terminal import TerminalWindow

        return TerminalWindow(
            bus,
            title,
            style=style,
            dimensions=dimensions,
            grid=grid,
            position=position,
            z=z,
            zoom=zoom,
            decorated=decorated,
            focus=focus,
            ring=ring,
        )

    def move(self, position: Optional[Tuple[int, int]] = None, z: Optional[int] = None, zoom: Optional[float] = None) -> None:
        """Places the window anew (its picture stays; no pixels travel)."""
        self._check_place(position or self.position, self.zoom if zoom is None else zoom)
        with self._lock:
            if position is not None:
                self.position = (int(position[0]), int(position[1]))
            if z is not None:
                self.z = int(z)
            if zoom is not None:
                self.zoom = float(zoom)
            if self._shown:
                self._signal(_KEEPALIVE, timeout=1.0)

    def _keep_alive(self) -> None:
        beats = 0
        per_refresh = max(1, round(self.refresh / self.keepalive))
        while not self._stop.wait(self.keepalive):
            beats += 1
            with self._lock:
                if self._pub is None:
                    return
                try:
                    if beats % per_refresh == 0:
                        self._publish(None, timeout=0.1)
                    else:
                        self._signal(_KEEPALIVE, timeout=0.1)
                except GosBusError as e:
                    # A ring that stayed full skips a beat; anything else (the broker took
                    # the publisher back) is the next update()'s to raise.
                    if not isinstance(e, (Timeout, Full)):
                        # The next update() raises it, and starts a new keep-alive thread.
                        self._error = e
                        self._thread = None
                        return

    def close(self) -> None:
        """Removes the window from the screen and leaves the ring. Safe to call twice."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        with self._lock:
            pub, self._pub = self._pub, None
            if pub is None:
                return
            try:
                if self._shown:
                    self._error = None
                    self._pub = pub
                    self._signal(_CLOSE, timeout=0.5)
            except GosBusError:
                pass  # it fades instead
            finally:
                self._pub = None
                pub.close()
        atexit.unregister(self._atexit)

    def __enter__(self) -> "PixelWindow":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._pub is None else "open"
        return (
            f"PixelWindow({self.title!r}, size=({self.width}, {self.height}), position={self.position}, "
            f"z={self.z}, zoom={self.zoom}, source_id={self.source_id:#x}, {state})"
        )


if TYPE_CHECKING:
    from .terminal import TerminalWindow

__all__ = ["PixelWindow", "source_id_of", "MAX_ZOOM", "MAX_SIDE"]
