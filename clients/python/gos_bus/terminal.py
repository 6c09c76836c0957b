"""`TerminalWindow`: a terminal on the render node (the Neural Console). Text travels as
cells, not pixels; the node draws the glyphs on the GPU.

    console = gos_bus.PixelWindow.create_terminal("Neural Console", style="crt_cyan")
    console.write("\\x1b[32mok\\x1b[0m job 7 returned 42\\n")
    print(console.text())       # what the grid holds now
"""

from __future__ import annotations

import ctypes
from typing import Any, Optional, Tuple, Union

from . import _native
from .client import Bus, _check
from .errors import InvalidArgument
from .window import PixelWindow

_COLUMNS = _native.constant("TERMINAL_COLUMNS")
_ROWS = _native.constant("TERMINAL_ROWS")
_CELL_W = _native.constant("CELL_WIDTH")
_CELL_H = _native.constant("CELL_HEIGHT")
_MAX_COLUMNS = _native.constant("TERMINAL_MAX_COLUMNS")
_MAX_ROWS = _native.constant("TERMINAL_MAX_ROWS")
#: Bytes of one cell (the `TerminalCell` layout the library publishes).
_CELL_BYTES: int = next(e["size"] for e in _native.document()["elements"] if e["name"] == "TerminalCell")


class TerminalWindow(PixelWindow):
    """A window whose content is a grid of character cells, written to like a terminal.

    Made with `PixelWindow.create_terminal(title, style, dimensions)` or directly:
    `TerminalWindow(bus, title, grid=(80, 30))` (or `dimensions=(w, h)` in pixels, a cell
    being `CELL_WIDTH` x `CELL_HEIGHT` = 8 x 16). Decorated and focused by default.

    `write(text)` takes text (str or UTF-8 bytes) with control characters and ANSI escape
    sequences, parsed in Rust by the terminal buffer of the C ABI (`gos_terminal_*`, after
    Alacritty's `vte` parser): colours (SGR 30-37, 90-97, 40-47, 100-107, 38;5;n, 38;2;r;g;b),
    bold, underline, inverse; cursor moves (CUU/CUD/CUF/CUB, CUP, CHA), erasing (ED, EL),
    scrolling; `\\n` starts a new line. Each write publishes the grid (`PIXEL_CELLS`
    frames: `TerminalCell`s of 8 bytes), cursor included. `text()` returns what the grid
    holds; `cursor` where the cursor is.

    `columns` and `rows` are the grid; `width` and `height` count cells too (as the frames
    do), the window being `columns * 8` x `rows * 16` output pixels. Everything else is as
    for `PixelWindow`: the keep-alive, `move`, `focus`, `close`, `style`.
    """

    #: Every keep-alive carries the whole grid (a few KiB), so a frame that a burst of other
    #: windows' frames pushed off an overwrite-oldest ring is made good within half a second.
    refresh = PixelWindow.keepalive
    _kind = _native.constant("FRAME_NEURAL_CONSOLE")
    _format = _native.constant("PIXEL_CELLS")
    _bpp = _CELL_BYTES

    def __init__(
        self,
        bus: Union[Bus, str],
        title: str = "Neural Console",
        *,
        grid: Optional[Tuple[int, int]] = None,
        dimensions: Optional[Tuple[int, int]] = None,
        style: Optional[str] = None,
        position: Tuple[int, int] = (0, 0),
        z: int = 150,
        zoom: float = 1.0,
        decorated: bool = True,
        focus: bool = True,
        ring: str = "render.frames",
        source_id: Optional[int] = None,
    ) -> None:
        if grid is not None and dimensions is not None:
            raise InvalidArgument("give a terminal grid=(columns, rows) or dimensions=(w, h) in pixels, not both")
        most = f"1..={_MAX_COLUMNS} columns by 1..={_MAX_ROWS} rows"
        if dimensions is not None:
            if len(dimensions) != 2:
                raise InvalidArgument(f"dimensions must be (width, height) in pixels, not {dimensions!r}")
            columns, rows = int(dimensions[0]) // _CELL_W, int(dimensions[1]) // _CELL_H
            if not (1 <= columns <= _MAX_COLUMNS and 1 <= rows <= _MAX_ROWS):
                raise InvalidArgument(
                    f"dimensions={tuple(dimensions)!r} pixels make {columns}x{rows} cells of {_CELL_W}x{_CELL_H}, "
                    f"not within {most} ({_CELL_W * _MAX_COLUMNS}x{_CELL_H * _MAX_ROWS} pixels at most)"
                )
        elif grid is not None:
            if len(grid) != 2:
                raise InvalidArgument(f"grid must be (columns, rows), not {grid!r}")
            columns, rows = int(grid[0]), int(grid[1])
            if not (1 <= columns <= _MAX_COLUMNS and 1 <= rows <= _MAX_ROWS):
                raise InvalidArgument(f"grid={tuple(grid)!r} is not within {most}")
        else:
            columns, rows = _COLUMNS, _ROWS
        handle = ctypes.c_void_p()
        _check(_native.lib.gos_terminal_new(columns, rows, ctypes.byref(handle)))
        self._term: Optional[ctypes.c_void_p] = handle
        try:
            super().__init__(
                bus,
                title,
                size=(columns, rows),
                position=position,
                z=z,
                zoom=zoom,
                style=style,
                ring=ring,
                source_id=source_id,
                decorated=decorated,
                focus=focus,
            )
        except BaseException:
            self._free()
            raise
        self.columns, self.rows = columns, rows

    def _free(self) -> None:
        term, self._term = getattr(self, "_term", None), None
        if term is not None:
            _native.lib.gos_terminal_free(term)

    def _handle(self) -> ctypes.c_void_p:
        if self._term is None:
            raise InvalidArgument(f"terminal {self.title!r} was closed: make a new one")
        return self._term

    def write(self, text: Union[str, bytes], timeout: Optional[float] = 1.0) -> None:
        """Writes `text` and publishes the grid. Waits up to `timeout` seconds for a slot on
        a ring that blocks (Timeout then)."""
        if isinstance(text, str):
            data = text.encode()
        elif isinstance(text, (bytes, bytearray, memoryview)):
            data = bytes(text)
        else:
            raise InvalidArgument(f"write() takes str or UTF-8 bytes, not {type(text).__name__}")
        with self._lock:
            term = self._handle()
            _check(_native.lib.gos_terminal_write(term, data, len(data)))
            buf = (ctypes.c_char * len(self._picture)).from_buffer(self._picture)
            _native.lib.gos_terminal_cells(term, ctypes.addressof(buf), len(self._picture))
            del buf
            self._publish(None, timeout)
            self._keep_alive_started()

    def clear(self) -> None:
        """Erases the grid and puts the cursor at the top left."""
        self.write("\x1b[2J\x1b[H")

    def text(self) -> str:
        """The grid's characters: a line per row, trailing blanks cut, each ending in a
        newline."""
        with self._lock:
            term = self._handle()
            need = _native.lib.gos_terminal_text(term, None, 0)
            buf = ctypes.create_string_buffer(need)
            _native.lib.gos_terminal_text(term, buf, need)
            return buf.value.decode()

    @property
    def cursor(self) -> Tuple[int, int]:
        """The cursor's (column, row), from 0."""
        col, row = ctypes.c_uint32(), ctypes.c_uint32()
        with self._lock:
            _check(_native.lib.gos_terminal_cursor(self._handle(), ctypes.byref(col), ctypes.byref(row)))
        return col.value, row.value

    def update(self, pixels: Any, dirty: Optional[Tuple[int, int, int, int]] = None, timeout: Optional[float] = 1.0) -> None:
        """Not for terminals: raises InvalidArgument (a terminal's content is its text: use
        `write(text)`)."""
        raise InvalidArgument("a terminal window takes text, not pixels: use write(text)")

    def close(self) -> None:
        super().close()
        with self._lock:
            self._free()

    def __del__(self) -> None:
        self._free()

    def __repr__(self) -> str:
        state = "closed" if self._pub is None else "open"
        return (
            f"TerminalWindow({self.title!r}, grid=({self.columns}, {self.rows}), position={self.position}, "
            f"z={self.z}, style={self.style!r}, {state})"
        )


__all__ = ["TerminalWindow"]
