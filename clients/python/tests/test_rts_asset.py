"""RtsAsset, the proposal's unified RTS asset handling: every variant Geometry OS writes, through
the one Rust loader over the C ABI, with the pixels viewed where the loader decoded them."""

from __future__ import annotations

import gc
import json
import os
from pathlib import Path

import numpy as np
import pytest

from gos_bus import RtsAsset, RtsAssetError

VARIANTS = Path(os.environ.get("GOS_RTS_VARIANTS") or Path(__file__).resolve().parents[3] / "assets" / "rts-variants")
EXPECTED = json.loads((VARIANTS / "expected.json").read_text())


@pytest.mark.parametrize("case", EXPECTED, ids=[c["file"] for c in EXPECTED])
def test_every_variant_loads_to_its_expected_bytes(case: dict) -> None:
    path = VARIANTS / case["file"]
    if "error" in case:
        with pytest.raises(RtsAssetError) as e:
            RtsAsset.load(path)
        message = str(e.value)
        assert "\n" not in message and "gos-bus rts info" in message, message
        size = next(w for w in case["error"].split() if "x" in w and w[0].isdigit())
        assert size in message, message
        return
    asset = RtsAsset.load(path)
    assert len(asset.data) == case["data_size"]
    assert asset.sha256 == case["sha256"]
    import hashlib

    assert hashlib.sha256(asset.data).hexdigest() == case["sha256"], "data is the bytes the loader hashed"
    w, h = asset.dimensions
    assert asset.texture.shape == (h, w, 4) and asset.texture.dtype == np.uint8
    for name, (start, end) in case.get("segments", {}).items():
        seg = asset.segments[name]
        assert (seg.start, seg.end, seg.verified) == (start, end, True)
        assert f"segment {name}" in asset.verified
    if "logic" in case:
        dna = asset.extract_dna()
        assert dna is not None and dna.code == case["logic"] and dna.texture_id == asset.texture_id
    else:
        assert asset.extract_dna() is None
    assert asset.rule, "the rule that found the data is named"


def test_metadata_merges_every_text_chunk_with_the_sidecar() -> None:
    module = RtsAsset.load(VARIANTS / "module.rts.png")  # a sidecar named module.rts.rts.meta.json
    assert module.metadata["embedded_type"] == "wasm" and module.metadata["wasm_size"] == 61
    assert "linear_rgb" in module.rule
    itxt = RtsAsset.load(VARIANTS / "logic-itxt.rts.png")  # the PixelRTS chunk and an RTS_Logic chunk
    assert itxt.metadata["data_size"] == 200 and itxt.metadata["RTS_Logic"].startswith("print('brick online')")
    json_logic = RtsAsset.load(VARIANTS / "logic-json.rts.png")
    assert json_logic.metadata["RTS_Logic"]["language"] == "python", "JSON text chunks are decoded"
    bare = RtsAsset.load(VARIANTS / "no-metadata.rts.png")
    assert bare.metadata == {} and bare.verified == [] and "nothing verified" in bare.rule


def test_the_texture_is_a_view_of_the_loaders_buffer_and_keeps_it_alive() -> None:
    asset = RtsAsset.load(VARIANTS / "segments-no-data-size.rts.png")
    a, b = asset.texture, asset.texture
    assert a.__array_interface__["data"][0] == b.__array_interface__["data"][0], "no copy per access"
    total = int(a.sum())
    del asset, b
    gc.collect()
    assert int(a.sum()) == total, "a view outlives the name of its asset"
    assert not a.flags.owndata


def test_a_closed_asset_says_so_and_its_views_stay_valid() -> None:
    with RtsAsset.load(VARIANTS / "logic-json.rts.png") as asset:
        data = asset.data
        texture = asset.texture
        before = (bytes(data), texture.copy())
    with pytest.raises(RtsAssetError, match="load it again"):
        asset.data
    gc.collect()
    # The views outlive close(): they keep the loader's buffers.
    assert bytes(data) == before[0] and (texture == before[1]).all()
    with pytest.raises(ValueError):
        texture[0, 0, 0] = 1  # read-only: the loader's memory is not the caller's to write


def test_a_file_that_is_not_a_png_is_one_clear_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.rts.png"
    junk.write_bytes(b"not a png")
    with pytest.raises(RtsAssetError, match="not a valid PNG"):
        RtsAsset.load(junk)


def _with_chunk_text(src: Path, dst: Path, keyword: bytes, text: bytes) -> None:
    """A copy of the PNG `src` whose tEXt chunk `keyword` holds `text` (CRC recomputed)."""
    import struct
    import zlib

    raw = src.read_bytes()
    out, i = bytearray(raw[:8]), 8
    while i < len(raw):
        (n,) = struct.unpack(">I", raw[i : i + 4])
        kind, body = raw[i + 4 : i + 8], raw[i + 8 : i + 8 + n]
        if kind == b"tEXt" and body.startswith(keyword + b"\0"):
            body = keyword + b"\0" + text
        out += struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        i += 12 + n
    dst.write_bytes(bytes(out))


def test_a_hash_that_does_not_match_is_caught_when_the_data_is_used(tmp_path: Path) -> None:
    src = VARIANTS / "logic-json.rts.png"
    meta = RtsAsset.load(src).metadata
    forged = {k: v for k, v in meta.items() if k != "RTS_Logic"}
    forged["data_hash"] = "00" * 32
    bad = tmp_path / "forged.rts.png"
    _with_chunk_text(src, bad, b"PixelRTS", b"PixelRTS" + json.dumps(forged).encode())
    asset = RtsAsset.load(bad)  # the PNG and the metadata are fine: the texture can be shown
    assert asset.texture.shape == (8, 8, 4)
    with pytest.raises(RtsAssetError, match="SHA-256 mismatch"):
        asset.data


def test_the_watcher_publishes_every_usable_variant_and_names_the_broken(served: str, tmp_path: Path, capsys) -> None:
    import shutil

    from gos_bus.daemons import RtsWatcher

    folder = tmp_path / "variants"
    shutil.copytree(VARIANTS, folder)
    watcher = RtsWatcher(str(folder), bus=served)
    published = watcher.scan()
    usable = [c for c in EXPECTED if "error" not in c]
    broken = [c["file"] for c in EXPECTED if "error" in c]
    assert published == len(usable) and watcher.errors == len(broken)
    err = capsys.readouterr().err
    for name in broken:
        assert f"skipped {name}" in err
    watcher.stop()
