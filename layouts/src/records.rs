//! The message records of Geometry OS: RTS textures, Hybrid DNA jobs and results, render frames.
//!
//! Each record sits at the start of a slot's payload; variable-length data (pixels, code,
//! output, JSON metadata) follows it in the same slot, at the offset the record states.

use crate::record;

crate::constants! {
    RTS_CONSTANTS;
    /// `RtsTexture::encoding`: data bytes packed densely along the Hilbert curve.
    pub const RTS_ENCODING_DENSE: u16 = 0;
    /// `RtsTexture::encoding`: pixels coloured by meaning, original bytes in the metadata.
    pub const RTS_ENCODING_CODE: u16 = 1;
    /// `RtsTexture::flags`: the data was compressed before encoding.
    pub const RTS_FLAG_COMPRESSED: u32 = 1 << 0;
    /// `RtsTexture::flags`: the data is executable (kernel, WASM, script).
    pub const RTS_FLAG_EXECUTABLE: u32 = 1 << 1;
    /// `RtsTexture::flags`: the file carries Hybrid DNA logic (`RTS_Logic`).
    pub const RTS_FLAG_HAS_LOGIC: u32 = 1 << 2;
    /// `RtsTexture::flags`: the file carries a `PixelRTS-Blueprint` chunk.
    pub const RTS_FLAG_HAS_BLUEPRINT: u32 = 1 << 3;
}

crate::constants! {
    PIXEL_CONSTANTS;
    /// Pixel format: 8-bit RGBA, 4 bytes per pixel.
    pub const PIXEL_RGBA8: u16 = 1;
    /// Pixel format: 8-bit BGRA, 4 bytes per pixel.
    pub const PIXEL_BGRA8: u16 = 2;
    /// Pixel format: one 8-bit channel (heightmaps).
    pub const PIXEL_R8: u16 = 3;
    /// Pixel format: one 32-bit float channel (heightmaps).
    pub const PIXEL_R32F: u16 = 4;
    /// Pixel format: terminal cells (`TerminalCell`, 8 bytes each); width and height count
    /// columns and rows.
    pub const PIXEL_CELLS: u16 = 5;
}

record! {
    /// Descriptor of a PixelRTS v2 texture; the RGBA8 pixels follow at `pixel_offset`, then
    /// `metadata_len` bytes of the PixelRTS JSON metadata.
    pub struct RtsTexture: magic b"RTSD", version 1, size 128, align 8 {
        /// Magic `RTSD`.
        pub magic: [u8; 4] = 0,
        /// Layout version (1).
        pub version: u16 = 4,
        /// 0 = RGBA-dense, 1 = RGBA-code.
        pub encoding: u16 = 6,
        /// Texture id chosen by the publisher (stable per file).
        pub texture_id: u64 = 8,
        /// Image width in pixels (a power of two).
        pub width: u32 = 16,
        /// Image height in pixels (equal to width).
        pub height: u32 = 20,
        /// Hilbert curve order: width = 2^order.
        pub hilbert_order: u32 = 24,
        /// Bit set: 1 compressed, 2 executable, 4 has logic, 8 has blueprint.
        pub flags: u32 = 28,
        /// Length of the original data recovered from the pixels.
        pub data_size: u64 = 32,
        /// Length of the encoded (possibly compressed) data.
        pub encoded_size: u64 = 40,
        /// SHA-256 of the original data.
        pub sha256: [u8; 32] = 48,
        /// Shannon entropy of the data in bits per byte.
        pub entropy: f32 = 80,
        /// Pixel format of the pixels that follow (1 = RGBA8).
        pub pixel_format: u32 = 84,
        /// Position on the infinite map, x.
        pub map_x: i32 = 88,
        /// Position on the infinite map, y.
        pub map_y: i32 = 92,
        /// File modification time, nanoseconds since the Unix epoch.
        pub mtime_ns: i64 = 96,
        /// Length of the PixelRTS JSON metadata after the pixels.
        pub metadata_len: u32 = 104,
        /// Offset of the pixels from the start of the payload.
        pub pixel_offset: u32 = 108,
        /// Length of the pixels in bytes (width * height * 4).
        pub pixel_bytes: u64 = 112,
        /// Reserved, zero.
        pub reserved: [u8; 8] = 120,
    }
}

crate::constants! {
    DNA_JOB_CONSTANTS;
    /// `DnaJob::kind`: a script.
    pub const DNA_KIND_SCRIPT: u16 = 0;
    /// `DnaJob::kind`: a genome.
    pub const DNA_KIND_GENOME: u16 = 1;
    /// `DnaJob::kind`: a WASM module.
    pub const DNA_KIND_WASM: u16 = 2;
    /// `DnaJob::code_encoding`: plain UTF-8.
    pub const DNA_CODE_UTF8: u16 = 0;
    /// `DnaJob::code_encoding`: zlib-compressed.
    pub const DNA_CODE_ZLIB: u16 = 1;
    /// `DnaJob::code_encoding`: "Hybrid-DNA-v1", base64 of zlib.
    pub const DNA_CODE_HYBRID_V1: u16 = 2;
    /// Default `DnaJob::timeout_ms`.
    pub const DNA_DEFAULT_TIMEOUT_MS: u32 = 30_000;
    /// `DnaJob::language`: unknown.
    pub const DNA_LANG_UNKNOWN: u16 = 0;
    /// `DnaJob::language`: Python.
    pub const DNA_LANG_PYTHON: u16 = 1;
    /// `DnaJob::language`: JavaScript.
    pub const DNA_LANG_JAVASCRIPT: u16 = 2;
    /// `DnaJob::language`: WebAssembly.
    pub const DNA_LANG_WASM: u16 = 3;
    /// `DnaJob::allowed_api_mask` bit: `log(message)` (a line on the `events` ring).
    pub const DNA_API_LOG: u64 = 1 << 0;
    /// `DnaJob::allowed_api_mask` bit: `spawn_brick(x, y, texture_id)` (a window on screen).
    pub const DNA_API_SPAWN_BRICK: u64 = 1 << 1;
    /// `DnaJob::allowed_api_mask` bit: `deploy_to_map(x, y, name)` (a brick placed on the map).
    pub const DNA_API_DEPLOY_TO_MAP: u64 = 1 << 2;
    /// `DnaJob::arg_types` and `DnaResult::value_types`: a 32-bit integer (the low 32 bits of
    /// its slot, two's complement).
    pub const DNA_VALUE_I32: u8 = 1;
    /// `DnaJob::arg_types` and `DnaResult::value_types`: a 64-bit integer (two's complement).
    pub const DNA_VALUE_I64: u8 = 2;
    /// `DnaJob::arg_types` and `DnaResult::value_types`: an IEEE 754 single (its bits in the
    /// low 32 bits of its slot).
    pub const DNA_VALUE_F32: u8 = 3;
    /// `DnaJob::arg_types` and `DnaResult::value_types`: an IEEE 754 double (its bits).
    pub const DNA_VALUE_F64: u8 = 4;
    /// Most arguments a `DnaJob` carries (`DnaJob::args`), and most values a `DnaResult`
    /// carries (`DnaResult::values`).
    pub const DNA_MAX_VALUES: usize = 8;
    /// Longest export name a `DnaJob` carries (`DnaJob::export`), in bytes of UTF-8.
    pub const DNA_EXPORT_MAX: usize = 64;
}

record! {
    /// A Hybrid DNA job; `code_len` bytes of code follow the record. A script is Python source;
    /// a WebAssembly module (kind 2) names the export to call and carries its arguments.
    pub struct DnaJob: magic b"DNAJ", version 2, size 256, align 8 {
        /// Magic `DNAJ`.
        pub magic: [u8; 4] = 0,
        /// Layout version (2).
        pub version: u16 = 4,
        /// 0 = script, 1 = genome, 2 = wasm.
        pub kind: u16 = 6,
        /// Job id, unique per submitter.
        pub job_id: u64 = 8,
        /// Texture the job belongs to (0 = none).
        pub texture_id: u64 = 16,
        /// Evolution generation.
        pub generation: u32 = 24,
        /// Time limit in milliseconds (default 30000).
        pub timeout_ms: u32 = 28,
        /// Submission time, nanoseconds since the Unix epoch.
        pub submitted_ns: i64 = 32,
        /// Fitness score of the genome.
        pub fitness: f64 = 40,
        /// Bit mask of the APIs the code may call.
        pub allowed_api_mask: u64 = 48,
        /// 0 = unknown, 1 = python, 2 = javascript, 3 = wasm.
        pub language: u16 = 56,
        /// 0 = utf-8, 1 = zlib, 2 = Hybrid-DNA-v1 (base64 of zlib).
        pub code_encoding: u16 = 58,
        /// 0 = none, 1 = boot daemon, 2 = rebuild city.
        pub action: u16 = 60,
        /// Reserved, zero.
        pub reserved0: u16 = 62,
        /// Spawn position, x.
        pub spawn_x: i32 = 64,
        /// Spawn position, y.
        pub spawn_y: i32 = 68,
        /// Map position, x.
        pub map_x: i32 = 72,
        /// Map position, y.
        pub map_y: i32 = 76,
        /// Length of the code after the record.
        pub code_len: u32 = 80,
        /// CRC-32 (IEEE) of the code bytes.
        pub code_crc32: u32 = 84,
        /// WebAssembly: how many of `args` the export takes (at most 8).
        pub arg_count: u16 = 88,
        /// Reserved, zero.
        pub reserved1: [u8; 6] = 90,
        /// WebAssembly: each argument's type (`DNA_VALUE_*`).
        pub arg_types: [u8; 8] = 96,
        /// WebAssembly: each argument's bits, as its `arg_types` entry says.
        pub args: [u64; 8] = 104,
        /// WebAssembly: the export to call, UTF-8, zero-padded (all zero: the module's entry
        /// point: `run`, `main`, `_start`, else its one export without parameters).
        pub export: [u8; 64] = 168,
        /// Reserved, zero.
        pub reserved: [u8; 24] = 232,
    }
}

crate::constants! {
    DNA_RESULT_CONSTANTS;
    /// `DnaResult::status`: finished normally.
    pub const DNA_STATUS_OK: u16 = 0;
    /// `DnaResult::status`: raised an error (text in the output).
    pub const DNA_STATUS_ERROR: u16 = 1;
    /// `DnaResult::status`: exceeded its time limit.
    pub const DNA_STATUS_TIMEOUT: u16 = 2;
    /// `DnaResult::status`: refused before running.
    pub const DNA_STATUS_REJECTED: u16 = 3;
    /// `DnaResult::limit`: no limit ended the job.
    pub const DNA_LIMIT_NONE: u16 = 0;
    /// `DnaResult::limit`: the wall-clock time limit (the job's `timeout_ms`).
    pub const DNA_LIMIT_WALL_TIME: u16 = 1;
    /// `DnaResult::limit`: the CPU time limit (`RLIMIT_CPU`).
    pub const DNA_LIMIT_CPU_TIME: u16 = 2;
    /// `DnaResult::limit`: the address-space limit (`RLIMIT_AS`).
    pub const DNA_LIMIT_MEMORY: u16 = 3;
    /// `DnaResult::limit`: the process limit (`RLIMIT_NPROC`).
    pub const DNA_LIMIT_PROCESSES: u16 = 4;
    /// `DnaResult::limit`: the file-size limit (`RLIMIT_FSIZE`).
    pub const DNA_LIMIT_FILE_SIZE: u16 = 5;
    /// `DnaResult::limit`: the output limit (the job was stopped when it passed it).
    pub const DNA_LIMIT_OUTPUT: u16 = 6;
    /// `DnaResult::limit`: the work folder's size.
    pub const DNA_LIMIT_WORK_FOLDER: u16 = 7;
    /// `DnaResult::limit`: the open-files limit (`RLIMIT_NOFILE`).
    pub const DNA_LIMIT_OPEN_FILES: u16 = 8;
    /// `DnaResult::limit`: a system call the sandbox forbids (seccomp, Landlock).
    pub const DNA_LIMIT_FORBIDDEN: u16 = 9;
}

record! {
    /// The result of a DNA job; `output_len` bytes of output follow the record. A WebAssembly
    /// job's returned values are in `values`.
    pub struct DnaResult: magic b"DNAR", version 3, size 136, align 8 {
        /// Magic `DNAR`.
        pub magic: [u8; 4] = 0,
        /// Layout version (3).
        pub version: u16 = 4,
        /// 0 = ok, 1 = error, 2 = timeout, 3 = rejected.
        pub status: u16 = 6,
        /// Id of the job this answers.
        pub job_id: u64 = 8,
        /// Start time, nanoseconds since the Unix epoch.
        pub started_ns: i64 = 16,
        /// Finish time, nanoseconds since the Unix epoch.
        pub finished_ns: i64 = 24,
        /// Texture produced by the job (0 = none).
        pub output_texture_id: u64 = 32,
        /// Exit code of the process that ran the job (128 + N when signal N ended it).
        pub exit_code: i32 = 40,
        /// Length of the output after the record.
        pub output_len: u32 = 44,
        /// The limit that ended the job (`DNA_LIMIT_*`; 0 = none).
        pub limit: u16 = 48,
        /// Reserved, zero.
        pub reserved0: u16 = 50,
        /// API calls the job made that the executor carried out.
        pub api_calls: u32 = 52,
        /// API calls the executor refused (not granted, malformed, over the bound).
        pub api_refused: u32 = 56,
        /// WebAssembly: how many values the export returned (at most 8).
        pub value_count: u16 = 60,
        /// Reserved, zero.
        pub reserved1: u16 = 62,
        /// WebAssembly: each returned value's type (`DNA_VALUE_*`).
        pub value_types: [u8; 8] = 64,
        /// WebAssembly: each returned value's bits, as its `value_types` entry says.
        pub values: [u64; 8] = 72,
    }
}

crate::constants! {
    FRAME_CONSTANTS;
    /// `RenderFrame::kind`: a pixel window.
    pub const FRAME_PIXEL_WINDOW: u16 = 0;
    /// `RenderFrame::kind`: the neural console.
    pub const FRAME_NEURAL_CONSOLE: u16 = 1;
    /// `RenderFrame::kind`: a VM framebuffer.
    pub const FRAME_VM_FRAMEBUFFER: u16 = 2;
    /// `RenderFrame::kind`: a cortex overlay.
    pub const FRAME_CORTEX_OVERLAY: u16 = 3;
    /// `RenderFrame::kind`: a terrain heightmap.
    pub const FRAME_TERRAIN_HEIGHTMAP: u16 = 4;
    /// `RenderFrame::flags`: the dirty rectangle is valid (else the whole frame changed).
    pub const FRAME_FLAG_DIRTY_RECT: u32 = 1 << 0;
    /// `RenderFrame::flags`: the window is visible.
    pub const FRAME_FLAG_VISIBLE: u32 = 1 << 1;
    /// `RenderFrame::flags`: a keep-alive: no pixels; the render node keeps the source's last
    /// picture on screen (it fades a source silent for its `--fade-after`) and takes the
    /// placement (position, z, zoom) from this frame. Ignored for a source it does not show.
    pub const FRAME_FLAG_KEEPALIVE: u32 = 1 << 2;
    /// `RenderFrame::flags`: the source closed its window: the render node removes it now.
    pub const FRAME_FLAG_CLOSE: u32 = 1 << 3;
    /// `RenderFrame::flags`: draw the window decorated, as Geometry OS does: a title bar of
    /// `FRAME_TITLE_BAR` pixels above the window with its `title`, and a border of
    /// `FRAME_BORDER` pixels around both, in the focus colour when the window is the focused
    /// one. The window's position stays the top-left of its pixels; the decorations lie
    /// outside them.
    pub const FRAME_FLAG_DECORATED: u32 = 1 << 4;
    /// Height of a decorated window's title bar, output pixels.
    pub const FRAME_TITLE_BAR: u32 = 30;
    /// Width of a decorated window's border, output pixels.
    pub const FRAME_BORDER: u32 = 2;
}

crate::constants! {
    CELL_CONSTANTS;
    /// Width of a terminal cell's glyph, pixels.
    pub const CELL_WIDTH: u32 = 8;
    /// Height of a terminal cell's glyph, pixels.
    pub const CELL_HEIGHT: u32 = 16;
    /// `TerminalCell::attrs`: bold (drawn in the bright variant of colours 0-7).
    pub const CELL_ATTR_BOLD: u8 = 1 << 0;
    /// `TerminalCell::attrs`: underlined (the glyph's last row lit).
    pub const CELL_ATTR_UNDERLINE: u8 = 1 << 1;
    /// `TerminalCell::attrs`: foreground and background swapped.
    pub const CELL_ATTR_INVERSE: u8 = 1 << 2;
    /// `TerminalCell::attrs`: the cursor is on this cell (drawn as a block: inverse).
    pub const CELL_ATTR_CURSOR: u8 = 1 << 3;
    /// Columns of a terminal by default.
    pub const TERMINAL_COLUMNS: u32 = 80;
    /// Rows of a terminal by default.
    pub const TERMINAL_ROWS: u32 = 30;
    /// Most columns of a terminal: its window is at most 2048 pixels wide (a 16 MiB texture,
    /// like a pixel window's, for a 256 KiB frame of cells).
    pub const TERMINAL_MAX_COLUMNS: u32 = 256;
    /// Most rows of a terminal (2048 pixels).
    pub const TERMINAL_MAX_ROWS: u32 = 128;
}

record! {
    /// One character cell of a terminal window: the pixels of a `RenderFrame` whose
    /// `pixel_format` is `PIXEL_CELLS` are `width` x `height` of these, row by row, `stride`
    /// bytes apart. The render node draws each as a `CELL_WIDTH` x `CELL_HEIGHT` glyph of GNU
    /// Unifont in its colours. Colours are indices into the xterm 256-colour palette (0-7 the
    /// ANSI colours, 8-15 their bright variants, 16-231 a 6x6x6 cube, 232-255 greys).
    pub struct TerminalCell: magic b"GCEL", version 1, size 8, align 4 {
        /// The character, a Unicode scalar value (0: blank; not a scalar value: U+FFFD).
        pub codepoint: u32 = 0,
        /// Foreground colour, xterm 256-colour palette index.
        pub fg: u8 = 4,
        /// Background colour, xterm 256-colour palette index.
        pub bg: u8 = 5,
        /// Bit set of `CELL_ATTR_*`.
        pub attrs: u8 = 6,
        /// Reserved, zero.
        pub reserved: u8 = 7,
    }
}

record! {
    /// A render frame; `pixel_bytes` bytes of pixels follow at `pixel_offset`, rows `stride`
    /// bytes apart (for `PIXEL_CELLS`, terminal cells: `width` columns by `height` rows).
    pub struct RenderFrame: magic b"GFRM", version 2, size 192, align 8 {
        /// Magic `GFRM`.
        pub magic: [u8; 4] = 0,
        /// Layout version (2: the `title` made it 192 bytes).
        pub version: u16 = 4,
        /// 1 = RGBA8, 2 = BGRA8, 3 = R8, 4 = R32F, 5 = terminal cells (`PIXEL_*`).
        pub pixel_format: u16 = 6,
        /// Frame sequence number of this source.
        pub frame_seq: u64 = 8,
        /// Capture time, nanoseconds since the Unix epoch.
        pub timestamp_ns: i64 = 16,
        /// Id of the source (window, console, VM).
        pub source_id: u64 = 24,
        /// 0 pixel window, 1 neural console, 2 VM framebuffer, 3 cortex overlay, 4 heightmap.
        pub kind: u16 = 32,
        /// Reserved, zero.
        pub reserved0: u16 = 34,
        /// Bit set: 1 dirty rectangle valid, 2 visible.
        pub flags: u32 = 36,
        /// Width in pixels.
        pub width: u32 = 40,
        /// Height in pixels.
        pub height: u32 = 44,
        /// Bytes from one row to the next.
        pub stride: u32 = 48,
        /// Dirty rectangle, x.
        pub dirty_x: u32 = 52,
        /// Dirty rectangle, y.
        pub dirty_y: u32 = 56,
        /// Dirty rectangle, width.
        pub dirty_w: u32 = 60,
        /// Dirty rectangle, height.
        pub dirty_h: u32 = 64,
        /// Position on screen, x.
        pub pos_x: i32 = 68,
        /// Position on screen, y.
        pub pos_y: i32 = 72,
        /// A focus request: the render node shows one window focused, and gives the focus to
        /// a source whose `focus` changes to a new non-zero value (so a window that keeps
        /// sending the same value does not take it back); 0 asks for nothing.
        pub focus: u32 = 76,
        /// Zoom factor (1.0 = natural size).
        pub zoom: f32 = 80,
        /// Stacking order; higher is nearer.
        pub z_order: i32 = 84,
        /// RTS texture shown by this window (0 = none).
        pub texture_id: u64 = 88,
        /// Offset of the pixels from the start of the payload.
        pub pixel_offset: u32 = 96,
        /// Length of the pixels in bytes.
        pub pixel_bytes: u32 = 100,
        /// The named shader style the window is drawn with (NUL-padded UTF-8, such as
        /// `crt_cyan`; empty: plain). An unknown name draws it plain.
        pub style: [u8; 16] = 104,
        /// The window's title, NUL-padded UTF-8, shown in its title bar when
        /// `FRAME_FLAG_DECORATED` is set.
        pub title: [u8; FRAME_TITLE_BYTES] = 120,
        /// Reserved, zero.
        pub reserved: [u8; 8] = 184,
    }
}

/// Bytes of `RenderFrame::title`.
pub const FRAME_TITLE_BYTES: usize = 64;

impl RenderFrame {
    /// `text` as a `title`: its UTF-8, cut at a character boundary to fit
    /// [`FRAME_TITLE_BYTES`], NUL-padded.
    pub fn title_bytes(text: &str) -> [u8; FRAME_TITLE_BYTES] {
        let mut end = text.len().min(FRAME_TITLE_BYTES);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let mut out = [0u8; FRAME_TITLE_BYTES];
        out[..end].copy_from_slice(&text.as_bytes()[..end]);
        out
    }

    /// The `title`: its bytes up to the first NUL, invalid UTF-8 replaced.
    pub fn title_text(&self) -> std::borrow::Cow<'_, str> {
        let end = self
            .title
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.title.len());
        String::from_utf8_lossy(&self.title[..end])
    }
}

crate::constants! {
    BRICK_CONSTANTS;
    /// `BrickPlacement::flags`: take the brick off its cell (the texture id is ignored).
    pub const BRICK_FLAG_REMOVE: u16 = 1 << 0;
    /// Map cells along each side of the terrain: cell (x, y), 0 <= x, y < 16, covers
    /// [x/16, (x+1)/16] of the terrain's width (west to east) and [y/16, (y+1)/16] of its depth
    /// (north, the heightmap's first row, to south).
    pub const BRICK_MAP_CELLS: u32 = 16;
}

record! {
    /// A brick of the neural terrain: an RTS texture (of `rts.textures`) laid on one map cell,
    /// following the ground. One brick per cell: a placement replaces the cell's brick.
    /// Published on `terrain.bricks` (by `NeuralTerrain`, again every few seconds so that a
    /// render node started later has them).
    pub struct BrickPlacement: magic b"GBRK", version 1, size 64, align 8 {
        /// Magic `GBRK`.
        pub magic: [u8; 4] = 0,
        /// Layout version (1).
        pub version: u16 = 4,
        /// Bit set: 1 remove the cell's brick.
        pub flags: u16 = 6,
        /// RTS texture laid on the cell (`RtsTexture::texture_id`).
        pub texture_id: u64 = 8,
        /// Map cell, x (west to east), 0..`BRICK_MAP_CELLS`.
        pub map_x: i32 = 16,
        /// Map cell, y (north to south), 0..`BRICK_MAP_CELLS`.
        pub map_y: i32 = 20,
        /// When the brick was placed (the map manifest's timestamp), nanoseconds since the
        /// Unix epoch.
        pub timestamp_ns: i64 = 24,
        /// World units above the ground (0: the node's default lift).
        pub lift: f32 = 32,
        /// Reserved, zero.
        pub reserved: [u8; 28] = 36,
    }
}
