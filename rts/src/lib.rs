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
    /// The image is not the grid its metadata states.
    #[error("the image is {width}x{height}, not the {grid}x{grid} grid its metadata states: the file is damaged or its metadata belongs to another image")]
    GridMismatch {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
        /// `grid_size` of the metadata.
        grid: u64,
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
    #[error("{key} {data_size} is larger than the {capacity} bytes a {side}x{side} image holds")]
    TooLarge {
        /// The metadata key that states it.
        key: &'static str,
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
    #[error("unsupported compression {0:?} (this loader reads zlib and Zstandard)")]
    Compression(String),
}

/// The first 8 bytes of a WebAssembly module in the binary format, version 1 (WebAssembly
/// Core Specification, 5.5.16 "Modules": magic `\0asm`, version `01 00 00 00`).
pub const WASM_MAGIC: &[u8; 8] = b"\0asm\x01\0\0\0";

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
    /// "RGBA-dense", "RGBA-code" or "linear_rgb".
    pub encoding: String,
    /// How the data's size and place were found (see [`Rule`]).
    pub rule: Rule,
    /// The named segments the metadata lists (`offsets`), each hash checked.
    pub segments: Vec<Segment>,
    /// The hashes that were checked and matched: "data_hash", and "segment NAME" for each
    /// segment whose SHA-256 the metadata states.
    pub verified: Vec<String>,
    /// Whether any hash was stated and matched (`!verified.is_empty()`).
    pub hash_verified: bool,
    /// Shannon entropy of the data, bits per byte.
    pub entropy: f32,
    /// A `PixelRTS-Blueprint` chunk was present.
    pub has_blueprint: bool,
    /// An `RTS_Logic` chunk (Hybrid DNA) was present.
    pub has_logic: bool,
    /// Every text chunk: keyword and text (compressed chunks other than the logic carriers
    /// are listed with an empty text: they are not inflated).
    pub texts: Vec<(String, String)>,
    /// Whether `data`, `sha256`, `entropy`, `segments` and `verified` are filled in: always
    /// after [`decode`] and [`decode_file`]; after [`decode_file_lazy`] only once
    /// [`RtsFile::recover_data`] ran.
    pub recovered: bool,
}

impl RtsFile {
    /// The WebAssembly module this file's data is, when it is one (a Pixel Code Executor
    /// cartridge: the data starts with the module magic `\0asm` and binary version 1, however
    /// the pixels carry it: `linear_rgb` with `embedded_type: "wasm"`, or `RGBA-code` with
    /// `original_data_b64`). None before [`RtsFile::recover_data`] and for other data.
    pub fn wasm_module(&self) -> Option<&[u8]> {
        (self.recovered && self.data.starts_with(WASM_MAGIC)).then_some(&self.data[..])
    }

    /// Recovers the data from the pixels by the file's rule and checks every hash its metadata
    /// states (once; later calls return at once). [`decode_file_lazy`] leaves this for when
    /// the data is wanted.
    ///
    /// # Errors
    /// As [`decode`]: a size the pixels cannot hold, a hash that does not match, data that does
    /// not inflate.
    pub fn recover_data(&mut self) -> Result<(), RtsError> {
        if self.recovered {
            return Ok(());
        }
        // The pixels stay where they are (views of them may be live): recover from a borrow.
        let found = found_in(&self.pixels, self.side, &self.metadata)?;
        self.apply(found);
        Ok(())
    }

    /// [`RtsFile::recover_data`] from pixels held elsewhere (a shared-memory slot, say).
    fn recover_from(&mut self, pixels: &[u8]) -> Result<(), RtsError> {
        let found = found_in(pixels, self.side, &self.metadata)?;
        self.apply(found);
        Ok(())
    }

    fn apply(&mut self, f: Found) {
        self.data = f.r.data;
        self.sha256 = f.sha256;
        self.entropy = f.entropy;
        self.encoding = f.r.encoding;
        self.rule = f.r.rule;
        self.segments = f.r.segments;
        self.hash_verified = !f.verified.is_empty();
        self.verified = f.verified;
        self.recovered = true;
    }
}

/// The data of an image and what its checks found.
struct Found {
    r: Recovered,
    sha256: [u8; 32],
    entropy: f32,
    verified: Vec<String>,
}

/// Recovers the data of `pixels` by the rule of `metadata` and checks its hashes.
fn found_in(pixels: &[u8], side: u32, metadata: &str) -> Result<Found, RtsError> {
    let meta: Value =
        serde_json::from_str(metadata).map_err(|e| RtsError::Metadata(e.to_string()))?;
    let obj = meta
        .as_object()
        .ok_or_else(|| RtsError::Metadata("it is not a JSON object".into()))?;
    let r = recover(obj, pixels, side)?;
    // The hash and the entropy each take a pass over the data: one on each core (or one after
    // the other where no thread can be started).
    let (sha256, entropy) = std::thread::scope(|s| {
        let hash = std::thread::Builder::new()
            .spawn_scoped(s, || -> [u8; 32] { Sha256::digest(&r.data).into() });
        let e = entropy(&r.data);
        let h = hash
            .ok()
            .and_then(|h| h.join().ok())
            .unwrap_or_else(|| Sha256::digest(&r.data).into());
        (h, e)
    });
    let mut verified = r.verified.clone();
    if check_stated_hash(obj, &sha256)? {
        verified.insert(0, "data_hash".into());
    }
    Ok(Found {
        r,
        sha256,
        entropy,
        verified,
    })
}

/// How a loader found the data of a PixelRTS file: which key gave its size, and where its bytes
/// are. Geometry OS writes several shapes of file (see `assets/rts-variants/`); each has its
/// rule, and a file that states no size at all gives the whole grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// `data_size` bytes along the Hilbert curve.
    DataSize,
    /// The largest end of the named segments (`offsets`) along the Hilbert curve.
    Segments,
    /// `code_size` bytes along the Hilbert curve (the `rts_raw_riscv` sidecar).
    CodeSize,
    /// `wasm_size` (or `data_size`) bytes from the R, G and B of the pixels in row-major order
    /// (the `linear_rgb` encoding; alpha unused).
    LinearRgb,
    /// `encoded_size` bytes along the Hilbert curve, inflated (zlib, or Zstandard by its magic)
    /// to `data_size`.
    Compressed,
    /// `original_data_b64` of the metadata (RGBA-code images).
    RgbaCode,
    /// Metadata that states no size (a Hybrid-DNA-v1 record, say): the whole grid.
    WholeGrid,
    /// No metadata at all: the whole grid, nothing verified.
    NoMetadata,
}

impl Rule {
    /// One line that says it.
    pub fn describe(self) -> &'static str {
        match self {
            Rule::DataSize => "data_size bytes in Hilbert order",
            Rule::Segments => "size from segments (largest end), in Hilbert order",
            Rule::CodeSize => "code_size bytes in Hilbert order (rts_raw_riscv)",
            Rule::LinearRgb => "wasm_size bytes from R, G, B in row-major order (linear_rgb)",
            Rule::Compressed => "encoded_size bytes in Hilbert order, inflated to data_size",
            Rule::RgbaCode => "original_data_b64 of the metadata (RGBA-code)",
            Rule::WholeGrid => "no size key: the whole grid in Hilbert order",
            Rule::NoMetadata => "no metadata: the whole grid in Hilbert order, nothing verified",
        }
    }
}

/// A named part of the data (`offsets` in the metadata): `[start, end)` in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Its name.
    pub name: String,
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// Whether the metadata states its SHA-256 (and it matched).
    pub verified: bool,
}

/// A PixelRTS image of `data` as the Geometry OS encoder lays it out: an RGBA8 PNG of side
/// `side` whose pixels carry `data` along the Hilbert curve (unused bytes zero), with `meta`
/// (JSON) in a `PixelRTS` text chunk. For tests, benchmarks and tools that make files.
///
/// # Panics
/// When `side` is not a power of two or `data` is longer than `side * side * 4` bytes.
pub fn encode(side: u32, data: &[u8], meta: &str) -> Vec<u8> {
    assert!(side.is_power_of_two() && data.len() as u64 <= side as u64 * side as u64 * 4);
    let mut pixels = vec![0u8; side as usize * side as usize * 4];
    for (d, chunk) in data.chunks(4).enumerate() {
        let (x, y) = hilbert::d2xy(side, d as u64);
        let at = (y as usize * side as usize + x as usize) * 4;
        pixels[at..at + chunk.len()].copy_from_slice(chunk);
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, side, side);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    let written = enc
        .add_text_chunk("PixelRTS".into(), format!("PixelRTS{meta}"))
        .and_then(|()| enc.write_header())
        .and_then(|mut w| w.write_image_data(&pixels));
    // Writing into a Vec fails only on a bad argument, which the assert rules out.
    written.expect("a PNG encodes into memory");
    out
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
    let e = -counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            p * p.log2()
        })
        .sum::<f64>() as f32;
    // One repeated byte gives -0.0: say 0.
    if e > 0.0 {
        e
    } else {
        0.0
    }
}

/// The sidecar files looked for beside `image`, in this order (the first that exists is
/// used): `<file>.meta.json`, `<file without .png>.meta.json`, `<stem>.rts.meta.json` (stem:
/// the name without `.rts.png`), `<file without .png>.rts.meta.json`. So `module.rts.png` may
/// have `module.rts.png.meta.json`, `module.rts.meta.json` or `module.rts.rts.meta.json`.
pub fn sidecars(image: &Path) -> Vec<PathBuf> {
    let name = image.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let mut out = vec![image.with_file_name(format!("{name}.meta.json"))];
    if let Some(base) = name.strip_suffix(".png") {
        out.push(image.with_file_name(format!("{base}.meta.json")));
    }
    if let Some(stem) = name.strip_suffix(".rts.png") {
        out.push(image.with_file_name(format!("{stem}.rts.meta.json")));
    }
    if let Some(base) = name.strip_suffix(".png") {
        out.push(image.with_file_name(format!("{base}.rts.meta.json")));
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(p.clone()));
    out
}

/// Reads and decodes a `.rts.png` file (metadata from the PNG, else from a sidecar).
pub fn decode_file(path: &Path) -> Result<RtsFile, RtsError> {
    let mut file = decode_file_lazy(path)?;
    file.recover_data()?;
    Ok(file)
}

/// The first of [`sidecars`] of `image` that can be read: its path and its text.
pub fn read_sidecar(image: &Path) -> Option<(PathBuf, String)> {
    sidecars(image)
        .into_iter()
        .find_map(|p| std::fs::read_to_string(&p).ok().map(|t| (p, t)))
}

/// A PixelRTS file loaded for a program to use: the decoded file, the sidecar it came with,
/// and all of its metadata in one JSON object ([`Asset::metadata`]).
#[derive(Debug, Clone)]
pub struct Asset {
    /// The decoded file.
    pub file: RtsFile,
    /// The sidecar that was read, if any.
    pub sidecar: Option<PathBuf>,
    /// Every text chunk by keyword (its JSON decoded when it is JSON; a `PixelRTS` chunk
    /// without its `PixelRTS` prefix), over the sidecar's keys; the PixelRTS metadata's own keys
    /// at the top level.
    pub metadata: Value,
}

/// Loads the file at `path` as [`decode_file_lazy`] does (the data is recovered and checked
/// when [`RtsFile::recover_data`] is called), with its sidecar and merged metadata.
///
/// # Errors
/// As [`decode_file_lazy`].
pub fn load(path: &Path) -> Result<Asset, RtsError> {
    let (file, sidecar) = read_file(path)?;
    let mut merged = serde_json::Map::new();
    if let Some(Value::Object(side)) = sidecar
        .as_ref()
        .and_then(|(_, t)| serde_json::from_str::<Value>(t).ok())
    {
        merged.extend(side);
    }
    if let Ok(Value::Object(meta)) = serde_json::from_str::<Value>(&file.metadata) {
        merged.extend(meta);
    }
    for (k, v) in &file.texts {
        if k == "PixelRTS" {
            continue;
        }
        let value = serde_json::from_str::<Value>(v).unwrap_or_else(|_| Value::from(v.as_str()));
        merged.insert(k.clone(), value);
    }
    Ok(Asset {
        file,
        sidecar: sidecar.map(|(p, _)| p),
        metadata: Value::Object(merged),
    })
}

/// Reads a `.rts.png` file as [`decode_file`] does, but leaves the data for later: the PNG is
/// decoded, its shape and metadata checked and its rule found; the data is recovered and its
/// hashes checked by [`RtsFile::recover_data`], when it is wanted. What a program that only
/// shows the texture pays is the PNG decode.
///
/// # Errors
/// As [`decode_file`], for what it checks.
pub fn decode_file_lazy(path: &Path) -> Result<RtsFile, RtsError> {
    read_file(path).map(|(file, _)| file)
}

/// [`decode_file_lazy`], with the sidecar it read (path and text).
fn read_file(path: &Path) -> Result<(RtsFile, Option<(PathBuf, String)>), RtsError> {
    let bytes = std::fs::read(path).map_err(|e| RtsError::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    let sidecar = read_sidecar(path);
    let mut pixels = Vec::new();
    let mut file = read_into(
        &bytes,
        sidecar.as_ref().map(|(_, t)| t.as_str()),
        |n| {
            pixels.resize(n, 0);
            Some(&mut pixels[..])
        },
        true,
    )?;
    file.pixels = pixels;
    Ok((file, sidecar))
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
    read_into(png_bytes, sidecar, place, false)
}

/// Reads the PNG into the buffer `place` gives, checks the shape and the metadata, and (unless
/// `lazy`) recovers the data and checks its hashes.
fn read_into<'a>(
    png_bytes: &[u8],
    sidecar: Option<&str>,
    place: impl FnOnce(usize) -> Option<&'a mut [u8]>,
    lazy: bool,
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
    // The metadata read so far (a chunk before the image data, or the sidecar) may state the
    // grid: a mismatch says so, which is clearer than a bare shape error.
    let early = logic::texts(info)
        .into_iter()
        .find(|(k, _, _)| k == "PixelRTS")
        .map(|(_, v, _)| v.strip_prefix("PixelRTS").unwrap_or(&v).to_string())
        .or_else(|| sidecar.map(str::to_string));
    let grid = early
        .and_then(|m| serde_json::from_str::<Value>(&m).ok())
        .and_then(|m| m.get("grid_size").and_then(Value::as_u64));
    if let Some(grid) = grid {
        if (width as u64, height as u64) != (grid, grid) {
            return Err(RtsError::GridMismatch {
                width,
                height,
                grid,
            });
        }
    }
    if width != height || !width.is_power_of_two() || width > MAX_SIDE {
        return Err(RtsError::Shape { width, height });
    }
    let need = reader.output_buffer_size();
    if need != (width as usize) * (height as usize) * 4 {
        return Err(RtsError::Png(format!("unexpected frame size {need}")));
    }
    let pixels: &'a mut [u8] = place(need).ok_or(RtsError::TooLarge {
        key: "the image",
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
        .unwrap_or_else(|| "{}".into());
    let meta: Value =
        serde_json::from_str(&meta_text).map_err(|e| RtsError::Metadata(e.to_string()))?;
    let obj = meta
        .as_object()
        .ok_or_else(|| RtsError::Metadata("it is not a JSON object".into()))?;
    let side = width;
    let mut file = RtsFile {
        side,
        order: side.trailing_zeros(),
        entropy: 0.0,
        pixels: Vec::new(),
        data: Vec::new(),
        sha256: [0; 32],
        metadata: serde_json::to_string(&meta).unwrap_or(meta_text),
        encoding: encoding_of(obj),
        rule: rule_of(obj),
        segments: Vec::new(),
        hash_verified: false,
        verified: Vec::new(),
        has_blueprint,
        has_logic,
        texts: texts.into_iter().map(|(k, v, _)| (k, v)).collect(),
        recovered: false,
    };
    if !lazy {
        file.recover_from(pixels)?;
    }
    Ok(file)
}

/// The encoding an object of metadata names ("RGBA-dense" when it names none).
fn encoding_of(obj: &serde_json::Map<String, Value>) -> String {
    obj.get("encoding")
        .and_then(|e| e.as_str().or_else(|| e.get("type").and_then(Value::as_str)))
        .or_else(|| obj.get("encoding_mode").and_then(Value::as_str))
        .unwrap_or("RGBA-dense")
        .to_string()
}

/// What [`recover`] found.
struct Recovered {
    data: Vec<u8>,
    encoding: String,
    rule: Rule,
    segments: Vec<Segment>,
    verified: Vec<String>,
}

/// A size the metadata states under `key`, if it states one.
fn size_key(obj: &serde_json::Map<String, Value>, key: &str) -> Result<Option<u64>, RtsError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| RtsError::Metadata(format!("{key} {v} is not a size"))),
    }
}

/// The first `n` bytes along the Hilbert curve of a `side` x `side` RGBA image.
fn hilbert_bytes(pixels: &[u8], side: u32, n: u64, key: &'static str) -> Result<Vec<u8>, RtsError> {
    let capacity = side as u64 * side as u64 * 4;
    if n > capacity || pixels.len() as u64 != capacity {
        return Err(RtsError::TooLarge {
            key,
            data_size: n,
            capacity,
            side,
        });
    }
    Ok(hilbert::gather(pixels, side, n as usize))
}

/// Zstandard's frame magic, which Geometry OS's encoder may write whatever `type` says.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// The most data a compressed PixelRTS file may inflate to: what the largest image holds.
pub const MAX_INFLATED: u64 = MAX_SIDE as u64 * MAX_SIDE as u64 * 4;

/// Inflates `raw` (zlib, or Zstandard when it starts with its magic) to exactly `size` bytes,
/// `size` at most [`MAX_INFLATED`] (a stated size is refused before anything is inflated).
fn inflate(raw: &[u8], kind: &str, size: u64) -> Result<Vec<u8>, RtsError> {
    if size > MAX_INFLATED {
        return Err(RtsError::Metadata(format!(
            "data_size {size} is more than the {MAX_INFLATED} bytes compressed PixelRTS data may inflate to"
        )));
    }
    let limit = size as usize;
    let out = if raw.starts_with(&ZSTD_MAGIC) {
        use std::io::Read;
        let mut d = ruzstd::decoding::StreamingDecoder::new(raw)
            .map_err(|e| RtsError::Metadata(format!("the Zstandard data is damaged: {e}")))?;
        let mut out = Vec::new();
        (&mut d)
            .take(limit as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| RtsError::Metadata(format!("the Zstandard data is damaged: {e}")))?;
        out
    } else if kind == "zlib" || kind == "deflate" {
        miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(raw, limit + 1).map_err(|e| {
            RtsError::Metadata(format!("the zlib data does not inflate: {:?}", e.status))
        })?
    } else {
        return Err(RtsError::Compression(kind.to_string()));
    };
    if out.len() as u64 != size {
        return Err(RtsError::Metadata(format!(
            "the data inflates to {}{} bytes, but data_size says {size}",
            out.len().min(limit),
            if out.len() > limit { "+" } else { "" }
        )));
    }
    Ok(out)
}

/// The most segments `offsets` may list (each is hashed).
pub const MAX_SEGMENTS: usize = 1024;

/// The named segments of `offsets`, each `[start, end)` inside `len` bytes of data, with the
/// SHA-256 the segment (or `hashes`) states checked.
fn segments(
    obj: &serde_json::Map<String, Value>,
    data: &[u8],
) -> Result<(Vec<Segment>, Vec<String>), RtsError> {
    let Some(Value::Object(offsets)) = obj.get("offsets") else {
        return Ok((Vec::new(), Vec::new()));
    };
    if offsets.len() > MAX_SEGMENTS {
        return Err(RtsError::Metadata(format!(
            "`offsets` lists {} segments, more than the {MAX_SEGMENTS} a file may have",
            offsets.len()
        )));
    }
    let hashes = obj.get("hashes").and_then(Value::as_object);
    let (mut out, mut verified) = (Vec::new(), Vec::new());
    for (name, seg) in offsets {
        let bound = |k: &str| {
            seg.get(k)
                .and_then(Value::as_u64)
                .ok_or_else(|| RtsError::Metadata(format!("segment {name} has no `{k}` size")))
        };
        let (start, end) = (bound("start")?, bound("end")?);
        if start > end || end > data.len() as u64 {
            return Err(RtsError::Metadata(format!(
                "segment {name} [{start}, {end}) is not inside the {} bytes of data",
                data.len()
            )));
        }
        let stated = seg
            .get("sha256")
            .and_then(Value::as_str)
            .or_else(|| hashes.and_then(|h| h.get(name)).and_then(Value::as_str));
        // An empty segment proves nothing: its hash is not counted as a check.
        let stated = stated.filter(|_| end > start);
        if let Some(expected) = stated {
            let actual = hex(&Sha256::digest(&data[start as usize..end as usize]));
            if !expected.eq_ignore_ascii_case(&actual) {
                return Err(RtsError::HashMismatch {
                    expected: format!("{expected} (segment {name})"),
                    actual,
                });
            }
            verified.push(format!("segment {name}"));
        }
        out.push(Segment {
            name: name.clone(),
            start,
            end,
            verified: stated.is_some(),
        });
    }
    Ok((out, verified))
}

/// The rule an object of metadata fits: the first of RGBA-code, linear_rgb, compression,
/// `data_size`, `code_size`, `offsets`, then the whole grid.
fn rule_of(obj: &serde_json::Map<String, Value>) -> Rule {
    let encoding = encoding_of(obj);
    // Compressed unless absent, null, false, or a type of "", "none" or "raw".
    let compressed = obj.get("compression").is_some_and(|c| match c {
        Value::Null | Value::Bool(false) => false,
        _ => c
            .get("type")
            .and_then(Value::as_str)
            .or_else(|| c.as_str())
            .is_none_or(|k| !["", "none", "raw"].contains(&k.to_ascii_lowercase().as_str())),
    });
    if encoding == "RGBA-code" {
        Rule::RgbaCode
    } else if encoding == "linear_rgb" {
        Rule::LinearRgb
    } else if compressed {
        Rule::Compressed
    } else if obj.get("data_size").is_some_and(|v| !v.is_null()) {
        Rule::DataSize
    } else if obj.get("code_size").is_some_and(|v| !v.is_null()) {
        Rule::CodeSize
    } else if matches!(obj.get("offsets"), Some(Value::Object(_))) {
        Rule::Segments
    } else if obj.is_empty() {
        Rule::NoMetadata
    } else {
        Rule::WholeGrid
    }
}

/// The original data of an image, by the first rule its metadata fits (see [`Rule`]).
fn recover(
    obj: &serde_json::Map<String, Value>,
    pixels: &[u8],
    side: u32,
) -> Result<Recovered, RtsError> {
    let capacity = side as u64 * side as u64 * 4;
    if pixels.len() as u64 != capacity {
        return Err(RtsError::Png(format!(
            "{} bytes of pixels for a {side}x{side} image, which has {capacity}",
            pixels.len()
        )));
    }
    let encoding = encoding_of(obj);
    let rule = rule_of(obj);
    let data = match rule {
        Rule::RgbaCode => {
            let b64 = obj
                .get("original_data_b64")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    RtsError::Metadata("an RGBA-code image needs `original_data_b64`".into())
                })?;
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| RtsError::Metadata(format!("original_data_b64: {e}")))?
        }
        Rule::LinearRgb => {
            let n = match size_key(obj, "wasm_size")? {
                Some(n) => n,
                None => size_key(obj, "data_size")?.ok_or_else(|| {
                    RtsError::Metadata("a linear_rgb image needs `wasm_size` or `data_size`".into())
                })?,
            };
            let room = side as u64 * side as u64 * 3;
            if n > room {
                return Err(RtsError::TooLarge {
                    key: "wasm_size",
                    data_size: n,
                    capacity: room,
                    side,
                });
            }
            pixels
                .chunks_exact(4)
                .flat_map(|p| &p[..3])
                .take(n as usize)
                .copied()
                .collect()
        }
        Rule::Compressed => {
            let c = obj.get("compression");
            let kind = c
                .and_then(|c| c.get("type").and_then(Value::as_str).or_else(|| c.as_str()))
                .unwrap_or("unknown")
                .to_ascii_lowercase();
            let encoded = match size_key(obj, "encoded_size")? {
                Some(n) => n,
                None => c
                    .and_then(|c| c.get("compressed_size"))
                    .and_then(Value::as_u64)
                    .ok_or_else(|| {
                        RtsError::Metadata("compressed data needs `encoded_size`".into())
                    })?,
            };
            let size = match size_key(obj, "data_size")? {
                Some(n) => n,
                None => c
                    .and_then(|c| c.get("original_size"))
                    .and_then(Value::as_u64)
                    .ok_or_else(|| {
                        RtsError::Metadata("compressed data needs `data_size`".into())
                    })?,
            };
            let raw = hilbert_bytes(pixels, side, encoded, "encoded_size")?;
            inflate(&raw, &kind, size)?
        }
        Rule::DataSize => hilbert_bytes(
            pixels,
            side,
            size_key(obj, "data_size")?.unwrap_or(0),
            "data_size",
        )?,
        Rule::CodeSize => hilbert_bytes(
            pixels,
            side,
            size_key(obj, "code_size")?.unwrap_or(0),
            "code_size",
        )?,
        Rule::Segments => {
            let end = obj
                .get("offsets")
                .and_then(Value::as_object)
                .and_then(|o| {
                    o.values()
                        .filter_map(|s| s.get("end").and_then(Value::as_u64))
                        .max()
                })
                .ok_or_else(|| {
                    RtsError::Metadata("`offsets` names no segment with an end".into())
                })?;
            hilbert_bytes(pixels, side, end, "the largest segment end")?
        }
        Rule::NoMetadata | Rule::WholeGrid => hilbert_bytes(pixels, side, capacity, "the grid")?,
    };
    let (segments, verified) = segments(obj, &data)?;
    Ok(Recovered {
        data,
        encoding,
        rule,
        segments,
        verified,
    })
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
    let data = recover(obj, pixels, side)?.data;
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
