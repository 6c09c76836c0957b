//! The glyph atlas: GNU Unifont's 8x16 glyphs (the `unifont` crate, Unifont 15.1) in one
//! R8 texture of [`ATLAS_COLUMNS`] x [`ATLAS_ROWS`] slots, filled as characters first appear.
//! Slot 0 is the blank, slot 1 the replacement character U+FFFD, which also stands for a
//! character the font lacks, a double-width one, and any once the atlas is full.

use std::collections::HashMap;

/// Slots across the atlas texture.
pub const ATLAS_COLUMNS: u32 = 64;
/// Slots down the atlas texture.
pub const ATLAS_ROWS: u32 = 32;
/// Glyph width, pixels (`CELL_WIDTH`).
pub const GLYPH_W: u32 = gos_layouts::records::CELL_WIDTH;
/// Glyph height, pixels (`CELL_HEIGHT`).
pub const GLYPH_H: u32 = gos_layouts::records::CELL_HEIGHT;
/// The slot of the blank.
pub const BLANK: u32 = 0;
/// The slot of U+FFFD.
pub const REPLACEMENT: u32 = 1;

/// The pixels of `c`'s glyph, row by row, 255 lit and 0 dark; `None` when Unifont has no
/// single-width glyph for it.
pub fn bitmap(c: char) -> Option<[u8; (GLYPH_W * GLYPH_H) as usize]> {
    let g = unifont::get_glyph(c).filter(|g| !g.is_fullwidth())?;
    let mut out = [0u8; (GLYPH_W * GLYPH_H) as usize];
    for y in 0..GLYPH_H as usize {
        for x in 0..GLYPH_W as usize {
            if g.get_pixel(x, y) {
                out[y * GLYPH_W as usize + x] = 255;
            }
        }
    }
    Some(out)
}

/// The atlas texture and which slot holds which character.
pub(crate) struct GlyphAtlas {
    pub(crate) texture: wgpu::Texture,
    slots: HashMap<char, u32>,
    next: u32,
}

impl GlyphAtlas {
    /// An atlas holding the blank, U+FFFD and printable ASCII.
    pub(crate) fn new(device: &wgpu::Device, queue: &wgpu::Queue) -> GlyphAtlas {
        let texture = device.create_texture(&wgpu::TextureDescriptor {
            label: Some("glyph atlas"),
            size: wgpu::Extent3d {
                width: ATLAS_COLUMNS * GLYPH_W,
                height: ATLAS_ROWS * GLYPH_H,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::R8Unorm,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        let mut atlas = GlyphAtlas {
            texture,
            slots: HashMap::new(),
            next: 0,
        };
        atlas.add(queue, ' ', [0; (GLYPH_W * GLYPH_H) as usize]);
        let replacement = bitmap('\u{fffd}').unwrap_or([255; (GLYPH_W * GLYPH_H) as usize]);
        atlas.add(queue, '\u{fffd}', replacement);
        for c in '!'..='~' {
            atlas.slot(queue, c);
        }
        atlas
    }

    fn add(
        &mut self,
        queue: &wgpu::Queue,
        c: char,
        pixels: [u8; (GLYPH_W * GLYPH_H) as usize],
    ) -> u32 {
        let slot = self.next;
        self.next += 1;
        queue.write_texture(
            wgpu::TexelCopyTextureInfo {
                texture: &self.texture,
                mip_level: 0,
                origin: wgpu::Origin3d {
                    x: (slot % ATLAS_COLUMNS) * GLYPH_W,
                    y: (slot / ATLAS_COLUMNS) * GLYPH_H,
                    z: 0,
                },
                aspect: wgpu::TextureAspect::All,
            },
            &pixels,
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(GLYPH_W),
                rows_per_image: None,
            },
            wgpu::Extent3d {
                width: GLYPH_W,
                height: GLYPH_H,
                depth_or_array_layers: 1,
            },
        );
        self.slots.insert(c, slot);
        slot
    }

    /// The slot of `c`, uploading its glyph the first time.
    pub(crate) fn slot(&mut self, queue: &wgpu::Queue, c: char) -> u32 {
        if let Some(&s) = self.slots.get(&c) {
            return s;
        }
        if c == '\0' || c.is_whitespace() {
            return BLANK;
        }
        if self.next == ATLAS_COLUMNS * ATLAS_ROWS {
            return REPLACEMENT;
        }
        match bitmap(c) {
            Some(pixels) => self.add(queue, c, pixels),
            None => {
                self.slots.insert(c, REPLACEMENT);
                REPLACEMENT
            }
        }
    }

    /// The slot of codepoint `cp` (0 and invalid values: the blank and U+FFFD).
    pub(crate) fn slot_of(&mut self, queue: &wgpu::Queue, cp: u32) -> u32 {
        match char::from_u32(cp) {
            _ if cp == 0 => BLANK,
            Some(c) => self.slot(queue, c),
            None => REPLACEMENT,
        }
    }
}
