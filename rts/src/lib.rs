//! PixelRTS v2 (`.rts.png`) decoding, as `../shared/PIXELRTS.md` describes the format.
//!
//! A PixelRTS image is an RGBA8 PNG, a square of side `2^order`, whose pixels carry data bytes
//! along a Hilbert curve (R, G, B, A = bytes 0..3 of each 4-byte group). The metadata (JSON) is
//! in a `PixelRTS` text chunk or a sidecar file. [`decode`] checks everything before using it:
//! a malformed file is an [`RtsError`] naming the problem, never a panic.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod hilbert;
pub mod logic;

use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Largest side accepted (the format is seen up to 4096).
pub const MAX_SIDE: u32 = 8192;

/// What is wrong with a PixelRTS file.
#[derive(Debug, thiserror::Error)]
pub enum RtsError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not a PNG, or a PNG the decoder rejects.
    #[error("not a valid PNG: {0}")]
    Png(String),
    /// Not 8-bit RGBA.
    #[error("the image is {found}, but PixelRTS needs 8-bit RGBA")]
    ColorType {
        /// What the image is.
        found: String,
    },
    /// Not a power-of-two square.
    #[error("the image is {width}x{height}, but PixelRTS needs a square whose side is a power of two (at most {MAX_SIDE})")]
    Shape {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
    },
    /// No metadata in the PNG nor beside it.
    #[error("no PixelRTS metadata: no `PixelRTS` text chunk and no sidecar ({looked})")]
    NoMetadata {
        /// The sidecar paths looked at.
        looked: String,
    },
    /// The metadata is not the JSON it should be.
    #[error("malformed PixelRTS metadata: {0}")]
    Metadata(String),
    /// The metadata claims more data than the pixels hold.
    #[error(
        "data_size {data_size} is larger than the {capacity} bytes a {side}x{side} image holds"
    )]
    TooLarge {
        /// Claimed size.
        data_size: u64,
        /// What the image holds.
        capacity: u64,
        /// Side.
        side: u32,
    },
    /// The recovered data does not have the SHA-256 the metadata states.
    #[error("SHA-256 mismatch: the metadata says {expected}, the data hashes to {actual}")]
    HashMismatch {
        /// From the metadata.
        expected: String,
        /// Computed.
        actual: String,
    },
    /// A compression this loader does not read.
    #[error("unsupported compression {0:?} (this loader reads uncompressed PixelRTS)")]
    Compression(String),
}

/// A decoded PixelRTS file.
#[derive(Debug, Clone)]
pub struct RtsFile {
    /// Side of the square image in pixels.
    pub side: u32,
    /// Hilbert order (`side = 2^order`).
    pub order: u32,
    /// The RGBA8 pixels, row by row (`side * side * 4` bytes).
    pub pixels: Vec<u8>,
    /// The recovered original data.
    pub data: Vec<u8>,
    /// SHA-256 of `data`.
    pub sha256: [u8; 32],
    /// The metadata JSON, compact, as found.
    pub metadata: String,
    /// "RGBA-dense" or "RGBA-code".
    pub encoding: String,
    /// Whether the metadata hash was present and matched.
    pub hash_verified: bool,
    /// Shannon entropy of the data, bits per byte.
    pub entropy: f32,
    /// A `PixelRTS-Blueprint` chunk was present.
    pub has_blueprint: bool,
    /// An `RTS_Logic` chunk (Hybrid DNA) was present.
    pub has_logic: bool,
}

/// The folder of sample PixelRTS files: `GOS_RTS_FIXTURES` when set, else this repository's
/// `assets/rts` (copies of the files the Geometry OS encoder made, with their `expected.json`).
/// For tests, benchmarks and demos.
pub fn samples_dir() -> PathBuf {
    std::env::var_os("GOS_RTS_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets/rts"))
}

/// The folder of one small file per PixelRTS variant Geometry OS writes (with
/// `expected.json`: the right bytes, the rule, the logic carried, or the error):
/// `GOS_RTS_VARIANTS` when set, else this repository's `assets/rts-variants`.
pub fn variants_dir() -> PathBuf {
    std::env::var_os("GOS_RTS_VARIANTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets/rts-variants"))
}

/// Hex of bytes.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn entropy(data: &[u8]) -> f32 {
    if data.is_empty() {
        return 0.0;
    }
    let mut counts = [0u64; 256];
    for &b in data {
        counts[b as usize] += 1;
    }
    let n = data.len() as f64;
    -counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            p * p.log2()
        })
        .sum::<f64>() as f32
}

/// The sidecar files the format allows for `image`: `<image>.meta.json`, `<stem>.rts.meta.json`.
pub fn sidecars(image: &Path) -> Vec<PathBuf> {
    let mut out = vec![PathBuf::from(format!("{}.meta.json", image.display()))];
    let name = image.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if let Some(stem) = name.strip_suffix(".rts.png") {
        out.push(image.with_file_name(format!("{stem}.rts.meta.json")));
    }
    out
}

/// Reads and decodes a `.rts.png` file (metadata from the PNG, else from a sidecar).
pub fn decode_file(path: &Path) -> Result<RtsFile, RtsError> {
    let bytes = std::fs::read(path).map_err(|e| RtsError::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    let sidecar = sidecars(path)
        .into_iter()
        .find_map(|p| std::fs::read_to_string(p).ok());
    let looked = sidecars(path)
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    decode(&bytes, sidecar.as_deref()).map_err(|e| match e {
        RtsError::NoMetadata { .. } => RtsError::NoMetadata { looked },
        e => e,
    })
}

/// Decodes PixelRTS PNG bytes; `sidecar` is the sidecar JSON, used when the PNG has no
/// `PixelRTS` chunk.
pub fn decode(png_bytes: &[u8], sidecar: Option<&str>) -> Result<RtsFile, RtsError> {
    let mut pixels = Vec::new();
    let mut file = decode_into(png_bytes, sidecar, |n| {
        pixels.resize(n, 0);
        Some(&mut pixels[..])
    })?;
    file.pixels = pixels;
    Ok(file)
}

/// Decodes like [`decode`], but the pixels go straight into the buffer `place` returns when
/// asked for `n` bytes (`side * side * 4`), once the image and its metadata have been checked
/// (a loaned shared-memory slot, say). `None` from `place` refuses the file as too large. The
/// returned file's `pixels` is empty: they are in the buffer.
pub fn decode_into<'a>(
    png_bytes: &[u8],
    sidecar: Option<&str>,
    place: impl FnOnce(usize) -> Option<&'a mut [u8]>,
) -> Result<RtsFile, RtsError> {
    let mut decoder = png::Decoder::new(png_bytes);
    decoder.set_transformations(png::Transformations::IDENTITY);
    // Refuse absurd images before allocating for them.
    decoder.set_limits(png::Limits {
        bytes: (MAX_SIDE as usize) * (MAX_SIDE as usize) * 4 + (1 << 20),
    });
    let mut reader = decoder
        .read_info()
        .map_err(|e| RtsError::Png(e.to_string()))?;
    let info = reader.info();
    let (width, height) = (info.width, info.height);
    if info.color_type != png::ColorType::Rgba || info.bit_depth != png::BitDepth::Eight {
        return Err(RtsError::ColorType {
            found: format!(
                "{:?} with {} bits per channel",
                info.color_type, info.bit_depth as u8
            ),
        });
    }
    if width != height || !width.is_power_of_two() || width > MAX_SIDE {
        return Err(RtsError::Shape { width, height });
    }
    let need = reader.output_buffer_size();
    if need != (width as usize) * (height as usize) * 4 {
        return Err(RtsError::Png(format!("unexpected frame size {need}")));
    }
    let pixels: &'a mut [u8] = place(need).ok_or(RtsError::TooLarge {
        data_size: need as u64,
        capacity: 0,
        side: width,
    })?;
    if pixels.len() < need {
        return Err(RtsError::Png(
            "the buffer given for the pixels is too small".into(),
        ));
    }
    let pixels: &mut [u8] = &mut pixels[..need];
    reader
        .next_frame(pixels)
        .map_err(|e| RtsError::Png(e.to_string()))?;
    // The text chunks may also come after the image data: read them from the finished reader.
    let _ = reader.finish();
    let texts = logic::texts(reader.info());
    let chunk = texts
        .iter()
        .find(|(k, _, _)| k == "PixelRTS")
        .map(|(_, v, _)| v.strip_prefix("PixelRTS").unwrap_or(v).to_string());
    let has_blueprint = texts.iter().any(|(k, _, _)| k == "PixelRTS-Blueprint");
    let has_logic = matches!(logic::from_texts(&texts), Ok(Some(_)));
    let meta_text = chunk
        .or_else(|| sidecar.map(str::to_string))
        .ok_or(RtsError::NoMetadata {
            looked: "no sidecar given".into(),
        })?;
    let meta: Value =
        serde_json::from_str(&meta_text).map_err(|e| RtsError::Metadata(e.to_string()))?;
    let obj = meta
        .as_object()
        .ok_or_else(|| RtsError::Metadata("it is not a JSON object".into()))?;
    let side = width;
    let (data, encoding) = recover(obj, pixels, side)?;
    let sha256: [u8; 32] = Sha256::digest(&data).into();
    let hash_verified = check_stated_hash(obj, &sha256)?;
    Ok(RtsFile {
        side,
        order: side.trailing_zeros(),
        entropy: entropy(&data),
        pixels: Vec::new(),
        data,
        sha256,
        metadata: serde_json::to_string(&meta).unwrap_or(meta_text),
        encoding,
        hash_verified,
        has_blueprint,
        has_logic,
    })
}

/// The encoding an object of metadata names ("RGBA-dense" when it names none).
fn encoding_of(obj: &serde_json::Map<String, Value>) -> String {
    obj.get("encoding")
        .and_then(|e| e.get("type"))
        .and_then(Value::as_str)
        .or_else(|| obj.get("encoding_mode").and_then(Value::as_str))
        .unwrap_or("RGBA-dense")
        .to_string()
}

/// The original data of an image: from the pixels along the Hilbert curve (RGBA-dense), or
/// from `original_data_b64` of the metadata (RGBA-code). Returns it with the encoding.
fn recover(
    obj: &serde_json::Map<String, Value>,
    pixels: &[u8],
    side: u32,
) -> Result<(Vec<u8>, String), RtsError> {
    if let Some(c) = obj.get("compression") {
        let kind = c
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string();
        if kind != "none" {
            return Err(RtsError::Compression(kind));
        }
    }
    let encoding = encoding_of(obj);
    let capacity = side as u64 * side as u64 * 4;
    if pixels.len() as u64 != capacity {
        return Err(RtsError::Png(format!(
            "{} bytes of pixels for a {side}x{side} image, which has {capacity}",
            pixels.len()
        )));
    }
    let data = if encoding == "RGBA-code" {
        let b64 = obj
            .get("original_data_b64")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                RtsError::Metadata("an RGBA-code image needs `original_data_b64`".into())
            })?;
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| RtsError::Metadata(format!("original_data_b64: {e}")))?
    } else {
        let data_size = match obj.get("data_size") {
            Some(v) => v
                .as_u64()
                .ok_or_else(|| RtsError::Metadata(format!("data_size {v} is not a size")))?,
            None => return Err(RtsError::Metadata("`data_size` is missing".into())),
        };
        if data_size > capacity {
            return Err(RtsError::TooLarge {
                data_size,
                capacity,
                side,
            });
        }
        let mut data = Vec::with_capacity(data_size as usize);
        let mut d = 0u64;
        while (data.len() as u64) < data_size {
            let (x, y) = hilbert::d2xy(side, d);
            let at = ((y as usize) * side as usize + x as usize) * 4;
            let take = ((data_size - data.len() as u64) as usize).min(4);
            data.extend_from_slice(&pixels[at..at + take]);
            d += 1;
        }
        data
    };
    Ok((data, encoding))
}

/// Checks `sha256` against the `data_hash` the metadata states, if it states one.
fn check_stated_hash(
    obj: &serde_json::Map<String, Value>,
    sha256: &[u8; 32],
) -> Result<bool, RtsError> {
    let Some(expected) = obj.get("data_hash").and_then(Value::as_str) else {
        return Ok(false);
    };
    let actual = hex(sha256);
    if !expected.eq_ignore_ascii_case(&actual) {
        return Err(RtsError::HashMismatch {
            expected: expected.to_string(),
            actual,
        });
    }
    Ok(true)
}

/// Checks already-decoded pixels (an `rts.textures` slot, say) against their metadata JSON and
/// the SHA-256 a descriptor states: the data is recovered as [`decode`] does and hashed. A
/// texture that was damaged or forged on its way is an error naming what differs.
pub fn verify(pixels: &[u8], side: u32, metadata: &str, sha256: &[u8; 32]) -> Result<(), RtsError> {
    if side == 0 || !side.is_power_of_two() || side > MAX_SIDE {
        return Err(RtsError::Shape {
            width: side,
            height: side,
        });
    }
    let meta: Value =
        serde_json::from_str(metadata).map_err(|e| RtsError::Metadata(e.to_string()))?;
    let obj = meta
        .as_object()
        .ok_or_else(|| RtsError::Metadata("it is not a JSON object".into()))?;
    let (data, _) = recover(obj, pixels, side)?;
    let actual: [u8; 32] = Sha256::digest(&data).into();
    check_stated_hash(obj, &actual)?;
    if &actual != sha256 {
        return Err(RtsError::HashMismatch {
            expected: hex(sha256),
            actual: hex(&actual),
        });
    }
    Ok(())
}
