//! PixelRTS textures on the bus: decode a `.rts.png` (with `gos-rts`) straight into a loaned
//! `rts.textures` slot: the `RtsTexture` record, then the RGBA8 pixels, then the metadata JSON.

use crate::client::{Loan, Publisher, RtsTexture};
use crate::error::{Error, Result};
use gos_layouts::records::{
    RTS_ENCODING_CODE, RTS_ENCODING_DENSE, RTS_FLAG_HAS_BLUEPRINT, RTS_FLAG_HAS_LOGIC,
};
pub use gos_rts::{decode_file, RtsError, RtsFile};
use std::path::Path;

/// A stable texture id for a file: FNV-1a 64 of its canonical path.
pub fn texture_id(path: &Path) -> u64 {
    let canon = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in canon.to_string_lossy().bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The descriptor of a decoded file.
pub fn describe(file: &RtsFile, id: u64, mtime_ns: i64) -> RtsTexture {
    RtsTexture {
        magic: *b"RTSD",
        version: 1,
        encoding: if file.encoding == "RGBA-code" {
            RTS_ENCODING_CODE
        } else {
            RTS_ENCODING_DENSE
        },
        texture_id: id,
        width: file.side,
        height: file.side,
        hilbert_order: file.order,
        flags: (if file.has_logic {
            RTS_FLAG_HAS_LOGIC
        } else {
            0
        }) | (if file.has_blueprint {
            RTS_FLAG_HAS_BLUEPRINT
        } else {
            0
        }),
        data_size: file.data.len() as u64,
        encoded_size: file.data.len() as u64,
        sha256: file.sha256,
        entropy: file.entropy,
        pixel_format: 1,
        mtime_ns,
        metadata_len: file.metadata.len() as u32,
        pixel_offset: std::mem::size_of::<RtsTexture>() as u32,
        pixel_bytes: file.pixels.len() as u64,
        ..bytemuck::Zeroable::zeroed()
    }
}

/// Decodes `path` and publishes it on `publisher` (an `rts.textures` ring). Returns the
/// descriptor published.
pub fn publish_file(publisher: &mut Publisher<RtsTexture>, path: &Path) -> Result<RtsTexture> {
    let bad = |e: RtsError| Error::Rts {
        path: path.display().to_string(),
        problem: e.to_string(),
    };
    let file = decode_file(path).map_err(bad)?;
    let mtime_ns = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64);
    let desc = describe(&file, texture_id(path), mtime_ns);
    let need = std::mem::size_of::<RtsTexture>() + file.pixels.len() + file.metadata.len();
    if need > publisher.slot_size() {
        return Err(Error::PayloadTooLarge {
            ring: publisher.ring().name().into(),
            len: need,
            slot_size: publisher.slot_size() as u32,
        });
    }
    let mut loan: Loan<'_, RtsTexture> = publisher.loan()?;
    *loan.header_mut() = desc;
    let tail = loan.tail_mut();
    tail[..file.pixels.len()].copy_from_slice(&file.pixels);
    tail[file.pixels.len()..file.pixels.len() + file.metadata.len()]
        .copy_from_slice(file.metadata.as_bytes());
    loan.set_tail_len(file.pixels.len() + file.metadata.len())?;
    loan.commit();
    Ok(desc)
}
