"""Terminal windows and decorations against the real render node: text written with ANSI
colours shows as glyphs in those colours (the same character, the same pixels), the grid
and cursor follow the writes, a decorated window has its title bar and border at their
offsets, and the focus shows in their colour."""

from __future__ import annotations

from typing import List, Tuple

import pytest

import gos_bus
from conftest import RenderNode
from gos_bus import _native

GREEN = (0, 205, 0, 255)  # xterm palette 2
BLACK = (0, 0, 0, 255)
FOCUSED_BORDER = (0, 204, 255)  # the node's focus colour (gos_render_node::text::decoration_colours)
TITLE_BAR = _native.constant("FRAME_TITLE_BAR")
BORDER = _native.constant("FRAME_BORDER")


def cell(node: RenderNode, frame: bytes, x: int, y: int) -> List[Tuple[int, ...]]:
    """The 8x16 pixels of the cell whose top-left output pixel is (x, y)."""
    return [node.pixel(frame, x + gx, y + gy) for gy in range(16) for gx in range(8)]


def near(a: Tuple[int, ...], b: Tuple[int, ...]) -> bool:
    return all(abs(p - q) <= 1 for p, q in zip(a, b))


def test_a_terminal_shows_its_text_as_glyphs_decorated_and_focused(render_node: RenderNode) -> None:
    node = render_node
    x, y = 40, 60
    term = gos_bus.PixelWindow.create_terminal("Console", grid=(20, 4), bus=node.bus, position=(x, y))
    assert isinstance(term, gos_bus.TerminalWindow)
    assert (term.columns, term.rows, term.width, term.height) == (20, 4, 20, 4)
    term.write("\x1b[32mOOH\x1b[0m\n")
    assert term.text() == "OOH\n\n\n\n"
    assert term.cursor == (0, 1)

    def shows_text(f: bytes) -> bool:
        first = cell(node, f, x, y)
        return set(first) == {GREEN, BLACK} and first == cell(node, f, x + 8, y) and first != cell(node, f, x + 16, y)

    f = node.payload_of("green glyphs, one per character", shows_text)
    # The cursor's block, at the start of the second row: the default grey, full.
    assert set(cell(node, f, x, y + 16)) == {(229, 229, 229, 255)}
    # Decorated and focused by default: the border in the focus colour, the title bar above.
    assert near(node.pixel(f, x - 1, y + 5)[:3], FOCUSED_BORDER)
    assert near(node.pixel(f, x - BORDER, y - TITLE_BAR - 1)[:3], FOCUSED_BORDER)
    bar = node.pixel(f, x + 20 * 8 - 3, y - TITLE_BAR + 3)
    assert not near(bar[:3], FOCUSED_BORDER) and bar != BLACK
    # A write replaces what the node shows: the first cell shows the H of the third, which
    # is erased.
    h = cell(node, f, x + 16, y)
    term.write("\x1b[1;1H\x1b[2K\x1b[32mH")
    assert term.text().splitlines()[0] == "H"
    node.until("the rewritten line", lambda f: cell(node, f, x, y) == h and set(cell(node, f, x + 16, y)) == {BLACK})
    term.close()
    with pytest.raises(gos_bus.InvalidArgument, match="closed"):
        term.write("more")


def test_the_focus_moves_to_the_last_window_that_asks(render_node: RenderNode) -> None:
    node = render_node
    a = gos_bus.PixelWindow(node.bus, "A", size=(32, 16), position=(30, 60), decorated=True, focus=True)
    b = gos_bus.PixelWindow(node.bus, "B", size=(32, 16), position=(150, 60), decorated=True)
    a.update(bytes((0, 0, 255, 255)) * (32 * 16))
    b.update(bytes((0, 0, 255, 255)) * (32 * 16))
    border = lambda f, w: node.pixel(f, w.position[0] - 1, w.position[1] + 4)[:3]  # noqa: E731
    node.payload_of("A focused, B not", lambda f: near(border(f, a), FOCUSED_BORDER) and not near(border(f, b), FOCUSED_BORDER))
    b.focus()
    since = node.until("B focused, A not", lambda f: near(border(f, b), FOCUSED_BORDER) and not near(border(f, a), FOCUSED_BORDER))
    # A's keep-alives (every 0.5 s) carry its old request: they do not take the focus back.
    stamp = lambda f: int.from_bytes(f[16:24], "little")  # noqa: E731
    later = node.payload_of("1.5 s of frames", lambda f: stamp(f) >= since + 1_500_000_000)
    assert near(border(later, b), FOCUSED_BORDER) and not near(border(later, a), FOCUSED_BORDER)
    a.focus()
    node.until("A focused again", lambda f: near(border(f, a), FOCUSED_BORDER) and not near(border(f, b), FOCUSED_BORDER))
    a.close()
    b.close()


def test_terminal_sizes_and_misuse(render_node: RenderNode) -> None:
    node = render_node
    with gos_bus.PixelWindow.create_terminal(bus=node.bus, dimensions=(800, 600)) as t:
        assert (t.columns, t.rows) == (100, 37)
        assert t.decorated and t.title == "Neural Console"
        with pytest.raises(gos_bus.InvalidArgument, match="takes text"):
            t.update(b"")
    with gos_bus.PixelWindow.create_terminal(bus=node.bus) as t:
        assert (t.columns, t.rows) == (80, 30)
    with pytest.raises(gos_bus.InvalidArgument, match="not both"):
        gos_bus.PixelWindow.create_terminal(bus=node.bus, grid=(10, 2), dimensions=(80, 32))
    with pytest.raises(gos_bus.InvalidArgument, match=r"dimensions=\(4, 4\) pixels make 0x0 cells of 8x16"):
        gos_bus.PixelWindow.create_terminal(bus=node.bus, dimensions=(4, 4))
    with pytest.raises(gos_bus.InvalidArgument, match=r"grid=\(257, 2\) is not within 1..=256 columns by 1..=128 rows"):
        gos_bus.PixelWindow.create_terminal(bus=node.bus, grid=(257, 2))
    with pytest.raises(gos_bus.InvalidArgument, match=r"grid=\(-1, 10\)"):
        gos_bus.PixelWindow.create_terminal(bus=node.bus, grid=(-1, 10))
    with gos_bus.PixelWindow.create_terminal(bus=node.bus, grid=(4, 1)) as t:
        with pytest.raises(gos_bus.InvalidArgument, match="takes str or UTF-8 bytes, not int"):
            t.write(42)  # type: ignore[arg-type]
        t.write(bytearray(b"ok"))
        assert t.text() == "ok\n"


def test_a_terminal_lost_in_a_burst_of_frames_comes_back_with_its_next_beat(render_node: RenderNode) -> None:
    """render.frames drops its oldest frames when it fills: a burst of another window's frames
    can push a terminal's last frame off it. Every keep-alive of a terminal carries its whole
    grid, so the node gets it back at the next beat."""
    node = render_node
    x = gos_bus.PixelWindow.create_terminal("X", grid=(30, 4), bus=node.bus, position=(20, 50), focus=False)
    y = gos_bus.PixelWindow.create_terminal("Y", grid=(30, 4), bus=node.bus, position=(20, 150), focus=False)
    frames = gos_bus.Bus.attach(node.bus).subscriber("render.frames")
    x.write("\x1b[32mX")
    for i in range(40):  # five times the ring's slots
        y.write(f"Y line {i}\n")
    beats = 0
    while beats < 3:
        try:
            with frames.recv(timeout=1.0) as m:
                h = m.header
                if h.source_id != x.source_id:
                    continue
                assert h.pixel_bytes == 30 * 4 * 8 and not h.flags & _native.constant("FRAME_FLAG_KEEPALIVE"), \
                    "a terminal's keep-alive carries its cells"
                beats += 1
        except gos_bus.Timeout:
            # No deadline of our own: keep waiting for X's beats while its keep-alive runs.
            thread = x._thread
            assert thread is not None and thread.is_alive(), "X's keep-alive thread stopped"
    node.until("X's green glyph", lambda f: GREEN in cell(node, f, 20, 50))
    x.close()
    y.close()
    frames.close()
