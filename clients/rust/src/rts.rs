//! PixelRTS textures on the bus: decode a `.rts.png` (with `gos-rts`) straight into a loaned
//! `rts.textures` slot: the `RtsTexture` record, then the RGBA8 pixels, then the metadata JSON.

use crate::{Loan, Publisher, RtsTexture};
use gos_bus_protocol::{Error, Result};
use gos_layouts::records::{
    RTS_ENCODING_CODE, RTS_ENCODING_DENSE, RTS_FLAG_HAS_BLUEPRINT, RTS_FLAG_HAS_LOGIC,
};
use gos_rts::{RtsError, RtsFile};
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
        pixel_bytes: file.side as u64 * file.side as u64 * 4,
        ..bytemuck::Zeroable::zeroed()
    }
}

/// Decodes `path` straight into a loaned slot of `publisher` (an `rts.textures` ring): the
/// PNG decoder writes the pixels into shared memory, then the record and the metadata JSON are
/// put around them. Returns the descriptor published. A file that fails after the slot was
/// loaned leaves a skipped slot, which consumers pass over.
pub fn publish_file(publisher: &mut Publisher<RtsTexture>, path: &Path) -> Result<RtsTexture> {
    publish_file_within(publisher, path, None)
}

/// [`publish_file`], waiting for a free slot at most `timeout` (`None`: as long as it takes);
/// then [`Error::Timeout`], with nothing published, so a daemon can check whether it should
/// stop and try again.
pub fn publish_file_within(
    publisher: &mut Publisher<RtsTexture>,
    path: &Path,
    timeout: Option<std::time::Duration>,
) -> Result<RtsTexture> {
    let bad = |e: RtsError| Error::Rts {
        path: path.display().to_string(),
        problem: e.to_string(),
    };
    let bytes = std::fs::read(path).map_err(|e| {
        bad(RtsError::Io {
            path: path.display().to_string(),
            source: e,
        })
    })?;
    let sidecar = gos_rts::read_sidecar(path).map(|(_, text)| text);
    let mtime_ns = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64);
    let head = std::mem::size_of::<RtsTexture>();
    let room = publisher.slot_size() - head;
    let ring = publisher.ring().name().to_string();
    let mut loan: Loan<'_, RtsTexture> = match timeout {
        Some(t) => publisher.loan_timeout(t)?,
        None => publisher.loan()?,
    };
    let file = {
        let tail = loan.tail_mut();
        gos_rts::decode_into(&bytes, sidecar.as_deref(), |n| tail.get_mut(..n))
    }
    .map_err(|e| match e {
        RtsError::TooLarge {
            capacity: 0,
            data_size,
            ..
        } => Error::PayloadTooLarge {
            ring: ring.clone(),
            len: head + data_size as usize,
            slot_size: (head + room) as u32,
        },
        e => bad(e),
    })?;
    let pixel_bytes = (file.side as usize) * (file.side as usize) * 4;
    if pixel_bytes + file.metadata.len() > room {
        return Err(Error::PayloadTooLarge {
            ring,
            len: head + pixel_bytes + file.metadata.len(),
            slot_size: (head + room) as u32,
        });
    }
    let desc = describe(&file, texture_id(path), mtime_ns);
    *loan.header_mut() = desc;
    loan.tail_mut()[pixel_bytes..pixel_bytes + file.metadata.len()]
        .copy_from_slice(file.metadata.as_bytes());
    loan.set_tail_len(pixel_bytes + file.metadata.len())?;
    loan.commit()?;
    Ok(desc)
}

pub use gos_rts::{hex, Asset};

/// Loads the PixelRTS file at `path` for a program (pixels, data, merged metadata; see
/// `gos_rts::load`), with the same loader the publishers use.
///
/// # Errors
/// [`Error::Rts`] naming the file and what is wrong with it.
pub fn load(path: &Path) -> Result<Asset> {
    gos_rts::load(path).map_err(|e| Error::Rts {
        path: path.display().to_string(),
        problem: e.to_string(),
    })
}

/// The Hybrid DNA the PixelRTS file at `path` carries, if any (an `RTS_Logic` chunk or a
/// "Hybrid-DNA-v1" record; see `gos_rts::logic`).
///
/// # Errors
/// [`Error::Rts`] naming the file: unreadable, not a PNG, or a malformed carrier.
pub fn logic_of(path: &Path) -> Result<Option<gos_rts::logic::Logic>> {
    gos_rts::logic::extract_file(path).map_err(|e| Error::Rts {
        path: path.display().to_string(),
        problem: e.to_string(),
    })
}
