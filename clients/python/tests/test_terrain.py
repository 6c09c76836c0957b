"""NeuralTerrain against the real render node: a Geometry OS map manifest's bricks and one
added live reach `terrain.bricks` as placements and show on the composited terrain; bad
manifests and positions are refused in one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Set, Tuple

import pytest

import gos_bus
from gos_bus.layouts import by_name
from conftest import ROOT, RenderNode

SAMPLES = ROOT / "assets" / "rts"


def texels(bus: gos_bus.Bus, sub: gos_bus.Subscriber, n: int) -> Set[Tuple[int, ...]]:
    """The RGB colours of the next `n` textures on rts.textures."""
    colours: Set[Tuple[int, ...]] = set()
    for _ in range(n):
        with sub.recv(timeout=10) as m:
            px = m.pixels()
            colours |= {tuple(int(c) for c in p[:3]) for p in px.reshape(-1, 4)}
    return colours


def rgb_in(frame: bytes) -> Set[Tuple[int, ...]]:
    return {tuple(frame[i : i + 3]) for i in range(by_name("RenderFrame").size, len(frame), 4)}


def test_a_manifests_bricks_and_one_added_live_show_on_the_terrain(render_node: RenderNode, tmp_path: Path) -> None:
    node = render_node
    bus = gos_bus.Bus.attach(node.bus)
    placements = bus.subscriber("terrain.bricks")
    textures = bus.subscriber("rts.textures")
    baseline = rgb_in(bytes(node.output.recv(timeout=30).payload))
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({
        "7,5": {"brick": "blob-65536", "timestamp": 1700000000},
        "9,5": {"brick": "blob-300001.rts.png", "timestamp": 1700000001.5},
    }))
    terrain = gos_bus.NeuralTerrain.from_manifest(manifest, bricks=SAMPLES, bus=bus)
    try:
        assert terrain.bricks.keys() == {(7, 5), (9, 5)}
        seen = {}
        while len(seen) < 2:  # (republished placements may come in between)
            with placements.recv(timeout=10) as m:
                h = m.header
                seen[(h.map_x, h.map_y)] = (h.texture_id, h.timestamp_ns)
        assert {cell: tid for cell, (tid, _) in seen.items()} == terrain.bricks
        assert seen[(9, 5)][1] == 1700000001_500000000
        colours = texels(bus, textures, 2) - baseline
        # The node lays them: texel colours that the bare terrain did not have show up.
        node.until("the manifest's bricks", lambda f: len(rgb_in(f) & colours) > 8)
        # One more, live, on another cell.
        asset = gos_bus.RtsAsset.load(SAMPLES / "blob-1000.rts.png")
        tid = terrain.add_brick(position=(8, 10), asset=asset)
        while True:  # past the manifest's placements, republished every 2 s
            with placements.recv(timeout=10) as m:
                if (m.header.map_x, m.header.map_y) == (8, 10):
                    assert m.header.texture_id == tid
                    break
        live = texels(bus, textures, 1) - baseline - colours
        node.until("the brick added live", lambda f: len(rgb_in(f) & live) > 3)
        # Taken off: its colours leave the terrain.
        assert terrain.remove_brick((8, 10))
        node.until("the live brick gone", lambda f: len(rgb_in(f) & live) == 0)
    finally:
        terrain.close()


def test_bad_manifests_and_cells_are_refused_in_one_line(render_node: RenderNode, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    for text, words in [
        ("not json", "cannot read the map manifest"),
        ('{"a,b": {"brick": "x"}}', "is not a"),
        ('{"1,2": {"nobrick": 1}}', "is not a"),
        ('{"99,2": {"brick": "blob-1"}}', "off the terrain"),
    ]:
        bad.write_text(text)
        with pytest.raises(gos_bus.InvalidArgument, match=words):
            gos_bus.NeuralTerrain.from_manifest(bad, bricks=SAMPLES, bus=render_node.bus)
    bad.write_text('{"1,2": {"brick": "missing-brick"}}')
    with pytest.raises(FileNotFoundError, match="brick 'missing-brick' of cell 1,2"):
        gos_bus.NeuralTerrain.from_manifest(bad, bricks=SAMPLES, bus=render_node.bus)
    with gos_bus.NeuralTerrain(render_node.bus) as terrain:
        with pytest.raises(gos_bus.InvalidArgument, match="off the terrain"):
            terrain.add_brick((-1, 0), SAMPLES / "blob-1.rts.png")
        with pytest.raises(gos_bus.InvalidArgument, match="position is"):
            terrain.add_brick("here", SAMPLES / "blob-1.rts.png")


def test_the_terrain_daemon_lays_each_file_once_and_a_changed_one_on_its_own_cell(render_node: RenderNode,
                                                                                  tmp_path: Path) -> None:
    import os
    import shutil

    from gos_bus.daemons import TerrainKeeper

    folder = tmp_path / "bricks"
    folder.mkdir()
    for name in ("blob-1.rts.png", "blob-5.rts.png"):
        shutil.copy(SAMPLES / name, folder / name)
    manifest = tmp_path / "map.json"
    manifest.write_text(json.dumps({"3,3": {"brick": "blob-1", "timestamp": 1}}))
    keeper = TerrainKeeper(str(folder), bus=render_node.bus, manifest=str(manifest), log_events=False)
    keeper.on_start()
    try:
        assert keeper.terrain is not None
        placed = keeper.terrain.placed()
        # The manifest's brick where it says, the other file on a free cell: each once.
        assert sorted(Path(p).name for p in placed.values()) == ["blob-1.rts.png", "blob-5.rts.png"]
        assert Path(placed[(3, 3)]).name == "blob-1.rts.png"
        assert keeper.scan() == 0, "nothing new, nothing laid"
        cell = next(c for c, p in placed.items() if p.endswith("blob-5.rts.png"))
        # The file changes: laid again on its own cell, not on a new one.
        later = os.stat(folder / "blob-5.rts.png").st_mtime + 10
        os.utime(folder / "blob-5.rts.png", (later, later))
        assert keeper.scan() == 1
        again = keeper.terrain.placed()
        assert len(again) == 2 and again[cell].endswith("blob-5.rts.png")
    finally:
        keeper.on_stop()
