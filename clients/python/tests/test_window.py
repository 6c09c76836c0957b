"""PixelWindow against the real render node: a valid frame from one update, a window that
stays without being published again, moves, blends by alpha unless opaque, and goes away on
close() or when its process ends (cleanly or killed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import gos_bus
from conftest import RenderNode

GREEN = (0, 255, 0, 255)
PKG = str(Path(__file__).resolve().parents[1])


def solid(w: int, h: int, rgba: tuple) -> bytes:
    return bytes(rgba) * (w * h)


def test_a_window_published_once_stays_moves_and_goes_on_close(render_node: RenderNode) -> None:
    node = render_node
    win = gos_bus.PixelWindow(node.bus, "stays", size=(32, 32), position=(100, 50), z=300)
    win.update(solid(32, 32, GREEN))
    shown = node.until("the window", lambda f: node.pixel(f, 116, 66) == GREEN)
    # The node fades a silent source after 0.5 s and drops it after 1 s: three seconds of
    # composited frames later the window is still there, kept alive without new pixels.
    later = node.until("three seconds of frames", lambda f: int.from_bytes(f[16:24], "little") >= shown + 3_000_000_000)
    assert later >= shown
    node.until("the window kept alive", lambda f: node.pixel(f, 116, 66) == GREEN)
    # A move travels without pixels: the picture shows at the new place only.
    win.move(position=(200, 150))
    node.until(
        "the window moved", lambda f: node.pixel(f, 216, 166) == GREEN and node.pixel(f, 116, 66) != GREEN
    )
    win.close()
    node.until("the window gone", lambda f: node.pixel(f, 216, 166) != GREEN)
    with pytest.raises(gos_bus.InvalidArgument, match="closed"):
        win.update(solid(32, 32, GREEN))


def test_alpha_blends_unless_the_window_is_opaque(render_node: RenderNode) -> None:
    node = render_node
    # RTS pixels: red, and an alpha byte that is data (0 here), not opacity.
    data = solid(16, 16, (255, 0, 0, 0))
    see_through = gos_bus.PixelWindow(node.bus, "see-through", size=(16, 16), position=(20, 20))
    opaque = gos_bus.PixelWindow(node.bus, "opaque", size=(16, 16), position=(60, 20), opaque=True)
    see_through.update(data)
    opaque.update(data)
    frame_with = node.until("the opaque window", lambda f: node.pixel(f, 68, 28) == (255, 0, 0, 255))
    assert frame_with
    # The see-through one leaves the terrain visible: not red.
    node.until("the terrain under the see-through one", lambda f: node.pixel(f, 28, 28)[:3] != (255, 0, 0))
    see_through.close()
    opaque.close()


def test_bad_updates_are_refused_with_the_reason(render_node: RenderNode) -> None:
    win = gos_bus.PixelWindow(render_node.bus, "strict", size=(8, 4))
    with pytest.raises(gos_bus.InvalidArgument, match="not the 128 of a 8x4"):
        win.update(b"\0" * 100)
    with pytest.raises(gos_bus.InvalidArgument, match="not within the 8x4 window"):
        win.update(b"\0" * 128, dirty=(6, 0, 4, 1))
    with pytest.raises(gos_bus.InvalidArgument, match="zoom"):
        gos_bus.PixelWindow(render_node.bus, "zoomed", zoom=0)
    with pytest.raises(gos_bus.InvalidArgument, match="bytes per frame"):
        gos_bus.PixelWindow(render_node.bus, "huge", size=(8192, 8192))
    win.close()


@pytest.mark.parametrize("ending", ["exit", "SIGKILL"])
def test_a_window_goes_when_its_process_ends(render_node: RenderNode, ending: str) -> None:
    node = render_node
    script = textwrap.dedent(
        f"""
        import sys, time
        import gos_bus
        win = gos_bus.PixelWindow({node.bus!r}, "child", size=(24, 24), position=(150, 100))
        win.update(bytes((0, 255, 0, 255)) * (24 * 24))
        print("shown", flush=True)
        sys.stdin.readline()
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], cwd=PKG, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, env=dict(os.environ, PYTHONPATH=PKG))
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "shown"
        node.until("the child's window", lambda f: node.pixel(f, 160, 110) == GREEN)
        if ending == "exit":
            assert child.stdin is not None
            child.stdin.close()  # a normal exit: the window closes itself
            assert child.wait(timeout=30) == 0
        else:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
        node.until("the child's window gone", lambda f: node.pixel(f, 160, 110) != GREEN)
    finally:
        if child.poll() is None:
            child.kill()


def test_a_window_in_the_crt_cyan_style_has_dark_scanlines(render_node: RenderNode) -> None:
    node = render_node
    win = gos_bus.PixelWindow(node.bus, "crt", size=(64, 32), position=(100, 40), style="crt_cyan")
    win.update(solid(64, 32, (160, 160, 160, 255)))

    def scanlines(f: bytes) -> bool:
        even, odd = node.pixel(f, 132, 56), node.pixel(f, 132, 57)
        return even[1] > 100 and odd[1] < even[1] * 0.6 and even[0] < even[1]

    node.until("the window's scanlines", scanlines)
    win.close()
    with pytest.raises(gos_bus.InvalidArgument, match="longer than 16 bytes"):
        gos_bus.PixelWindow(node.bus, "x", style="a_style_name_too_long")
