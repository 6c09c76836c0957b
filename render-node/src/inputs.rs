//! What the node takes from the bus, checked against its payload and applied to the
//! compositor: a `RenderFrame` (a window's pixels, a terrain heightmap, or a window that shows
//! an RTS texture), an `RtsTexture` (verified against its SHA-256 before it is shown) and a
//! `BrickPlacement` (an RTS texture laid on a map cell of the terrain).
//!
//! Every size, offset and format is checked before a byte reaches the GPU, so a hostile or
//! buggy producer yields a [`RenderError`] with the reason, never a panic or a GPU error.

use crate::{Compositor, Dirty, HeightFormat, PixelFormat, Placement, RenderError};
use gos_layouts::records::{
    BrickPlacement, RenderFrame, RtsTexture, BRICK_FLAG_REMOVE, FRAME_CORTEX_OVERLAY,
    FRAME_FLAG_CLOSE, FRAME_FLAG_DECORATED, FRAME_FLAG_DIRTY_RECT, FRAME_FLAG_KEEPALIVE,
    FRAME_PIXEL_WINDOW, FRAME_TERRAIN_HEIGHTMAP, PIXEL_BGRA8, PIXEL_CELLS, PIXEL_R32F, PIXEL_R8,
    PIXEL_RGBA8,
};

/// Largest zoom a window may ask for.
pub const MAX_ZOOM: f32 = 64.0;

/// What a frame did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Uploaded a window's pixels (`bytes` of them).
    Window {
        /// Bytes uploaded (the dirty rectangle's rows, or the whole frame).
        bytes: u64,
    },
    /// Replaced the terrain's heightmap.
    Heightmap {
        /// Bytes uploaded.
        bytes: u64,
    },
    /// Placed a window that shows an RTS texture (nothing uploaded).
    ShowsTexture,
    /// A keep-alive (`FRAME_FLAG_KEEPALIVE`): the source's window stays, placed anew;
    /// `known` is false when the compositor holds no such source (nothing changed).
    KeepAlive {
        /// Whether the source was there to keep.
        known: bool,
    },
    /// The source closed its window (`FRAME_FLAG_CLOSE`): it was removed.
    Closed,
}

impl Applied {
    /// Bytes sent to the GPU.
    pub fn bytes(self) -> u64 {
        match self {
            Applied::Window { bytes } | Applied::Heightmap { bytes } => bytes,
            Applied::ShowsTexture | Applied::KeepAlive { .. } | Applied::Closed => 0,
        }
    }
}

/// The placement a frame asks for; a zoom of 0 (a zeroed field) means 1. The reason when the
/// zoom is not finite or not within (0, [`MAX_ZOOM`]].
pub fn placement(f: &RenderFrame) -> Result<Placement, String> {
    let zoom = if f.zoom == 0.0 { 1.0 } else { f.zoom };
    if !(zoom.is_finite() && zoom > 0.0 && zoom <= MAX_ZOOM) {
        return Err(format!("zoom {} is not within (0, {MAX_ZOOM}]", f.zoom));
    }
    Ok(Placement {
        x: f.pos_x,
        y: f.pos_y,
        zoom,
        z: f.z_order,
        alpha: 1.0,
    })
}

/// The style a frame names: its `style` bytes up to the first NUL, when they are UTF-8 and
/// not empty.
pub fn style_of(f: &RenderFrame) -> Option<&str> {
    let end = f
        .style
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(f.style.len());
    std::str::from_utf8(&f.style[..end])
        .ok()
        .filter(|s| !s.is_empty())
}

/// What every frame of a window says beside its pixels: its style, its decorations and
/// title, its focus request.
fn dress(c: &mut Compositor, f: &RenderFrame) {
    c.set_style(f.source_id, style_of(f));
    let decorated = f.flags & FRAME_FLAG_DECORATED != 0;
    c.set_title(f.source_id, decorated.then(|| f.title_text()).as_deref());
    c.request_focus(f.source_id, f.focus);
}

/// The `pixel_bytes` bytes at `pixel_offset` of a payload, checked against its length.
fn pixels_of(body: &[u8], offset: u32, len: u64) -> Result<&[u8], String> {
    let start = offset as usize;
    usize::try_from(len)
        .ok()
        .and_then(|len| start.checked_add(len))
        .filter(|&end| end <= body.len())
        .map(|end| &body[start..end])
        .ok_or_else(|| {
            format!(
                "pixel_offset {offset} + pixel_bytes {len} is past the {}-byte payload",
                body.len()
            )
        })
}

/// Applies frame `f`, whose payload (record included) is `body`, to `c`.
///
/// A window with `pixel_bytes` = 0 and a `texture_id` shows that RTS texture, at `width` x
/// `height` when both are set, else at the texture's size, times the zoom. A frame flagged
/// `FRAME_FLAG_CLOSE` removes its source; one flagged `FRAME_FLAG_KEEPALIVE` carries no pixels
/// and only places a source the compositor already holds.
pub fn apply_frame(
    c: &mut Compositor,
    f: &RenderFrame,
    body: &[u8],
) -> Result<Applied, RenderError> {
    let bad = |reason: String| RenderError::BadFrame {
        source_id: f.source_id,
        reason,
    };
    if &f.magic != b"GFRM" {
        return Err(bad(format!("magic {:?} is not GFRM", f.magic)));
    }
    if f.version != RenderFrame::VERSION {
        return Err(bad(format!(
            "RenderFrame version {} is not this node's {}: rebuild the producer against this gos-bus",
            f.version,
            RenderFrame::VERSION
        )));
    }
    let window = (FRAME_PIXEL_WINDOW..=FRAME_CORTEX_OVERLAY).contains(&f.kind);
    if !window && f.kind != FRAME_TERRAIN_HEIGHTMAP {
        return Err(bad(format!("unknown kind {}", f.kind)));
    }
    if f.flags & FRAME_FLAG_CLOSE != 0 {
        c.remove(f.source_id);
        return Ok(Applied::Closed);
    }
    if f.flags & FRAME_FLAG_KEEPALIVE != 0 {
        let known = c.has_source(f.source_id);
        if known && window {
            c.place(f.source_id, placement(f).map_err(bad)?);
            dress(c, f);
        }
        return Ok(Applied::KeepAlive { known });
    }
    if window && f.pixel_bytes == 0 && f.texture_id != 0 {
        let place = placement(f).map_err(bad)?;
        let max = c.gpu().device.limits().max_texture_dimension_2d;
        let size = match (f.width, f.height) {
            (0, 0) => None,
            (w, h) if (1..=max).contains(&w) && (1..=max).contains(&h) => Some((w, h)),
            (w, h) => return Err(bad(format!("size {w}x{h} is not within 1..={max}"))),
        };
        c.show_texture(f.source_id, f.texture_id, size, place);
        dress(c, f);
        return Ok(Applied::ShowsTexture);
    }
    let pixels = pixels_of(body, f.pixel_offset, f.pixel_bytes as u64).map_err(bad)?;
    let geometry = (f.width, f.height, f.stride);
    if !window {
        let format = match f.pixel_format {
            PIXEL_R8 => HeightFormat::R8,
            PIXEL_R32F => HeightFormat::R32F,
            PIXEL_RGBA8 => HeightFormat::Rgba8,
            p => {
                return Err(bad(format!(
                    "pixel format {p} is not a heightmap's (R8, R32F, RGBA8)"
                )))
            }
        };
        c.set_heightmap(f.source_id, format, geometry, pixels)?;
        return Ok(Applied::Heightmap {
            bytes: pixels.len() as u64,
        });
    }
    let place = placement(f).map_err(bad)?;
    if f.pixel_format == PIXEL_CELLS {
        c.upload_cells(f.source_id, geometry, pixels)?;
        c.place(f.source_id, place);
        dress(c, f);
        return Ok(Applied::Window {
            bytes: f.height as u64 * f.width as u64 * 8,
        });
    }
    let format = match f.pixel_format {
        PIXEL_RGBA8 => PixelFormat::Rgba8,
        PIXEL_BGRA8 => PixelFormat::Bgra8,
        p => {
            return Err(bad(format!(
                "pixel format {p} is not a window's (RGBA8, BGRA8, cells)"
            )))
        }
    };
    let dirty = (f.flags & FRAME_FLAG_DIRTY_RECT != 0).then_some(Dirty {
        x: f.dirty_x,
        y: f.dirty_y,
        w: f.dirty_w,
        h: f.dirty_h,
    });
    c.upload_pixels(f.source_id, format, geometry, pixels, dirty)?;
    c.place(f.source_id, place);
    dress(c, f);
    let rows = dirty.map_or(f.height, |d| d.h) as u64;
    let row = dirty.map_or(f.width, |d| d.w) as u64 * 4;
    Ok(Applied::Window { bytes: rows * row })
}

/// Checks RTS texture `t`, whose payload (record included) is `body`: its sizes, then the
/// SHA-256 of the data its pixels carry (recovered as the decoder does); uploads it to `c`.
/// Returns the bytes uploaded.
pub fn apply_texture(c: &mut Compositor, t: &RtsTexture, body: &[u8]) -> Result<u64, RenderError> {
    let bad = |reason: String| RenderError::BadTexture {
        texture_id: t.texture_id,
        reason,
    };
    if &t.magic != b"RTSD" {
        return Err(bad(format!("magic {:?} is not RTSD", t.magic)));
    }
    if t.texture_id == 0 {
        return Err(bad("texture id 0 means none".into()));
    }
    if t.pixel_format != PIXEL_RGBA8 as u32 {
        return Err(bad(format!("pixel format {} is not RGBA8", t.pixel_format)));
    }
    let side = t.width;
    if t.height != side || !side.is_power_of_two() || side > gos_rts::MAX_SIDE {
        return Err(bad(format!(
            "{}x{} is not a square with a power-of-two side of at most {}",
            t.width,
            t.height,
            gos_rts::MAX_SIDE
        )));
    }
    let need = side as u64 * side as u64 * 4;
    if t.pixel_bytes != need {
        return Err(bad(format!(
            "pixel_bytes {} is not the {need} of a {side}x{side} image",
            t.pixel_bytes
        )));
    }
    let pixels = pixels_of(body, t.pixel_offset, need).map_err(bad)?;
    let meta_at = t.pixel_offset as usize + pixels.len();
    let metadata = body
        .get(meta_at..)
        .and_then(|m| m.get(..t.metadata_len as usize))
        .ok_or_else(|| {
            bad(format!(
                "metadata_len {} is past the payload",
                t.metadata_len
            ))
        })?;
    let metadata = std::str::from_utf8(metadata)
        .map_err(|e| bad(format!("the metadata is not UTF-8: {e}")))?;
    gos_rts::verify(pixels, side, metadata, &t.sha256).map_err(|e| bad(e.to_string()))?;
    c.upload_texture(t.texture_id, side, pixels)?;
    Ok(need)
}

/// Lays (or, flagged `BRICK_FLAG_REMOVE`, takes off) the brick of placement `b` on `c`; the
/// reason when its magic, version, cell, texture id or lift is not one.
pub fn apply_brick(c: &mut Compositor, b: &BrickPlacement) -> Result<(), RenderError> {
    let bad = |reason: String| RenderError::BadBrick {
        x: b.map_x,
        y: b.map_y,
        reason,
    };
    if &b.magic != b"GBRK" {
        return Err(bad(format!("magic {:?} is not GBRK", b.magic)));
    }
    if b.version != 1 {
        return Err(bad(format!("version {} is not 1", b.version)));
    }
    if b.flags & BRICK_FLAG_REMOVE != 0 {
        c.remove_brick((b.map_x, b.map_y));
        return Ok(());
    }
    c.place_brick((b.map_x, b.map_y), b.texture_id, b.lift)
        .map_err(bad)
}
