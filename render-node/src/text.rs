//! Text on the GPU, from the glyph atlas ([`crate::glyphs`]): terminal windows, whose cells
//! (`TerminalCell`) are drawn into the window's own texture by `fs_cells` when they change
//! (so styles, zoom and blending treat a terminal like any window), and window decorations as
//! Geometry OS draws them (`fs_decor`: a 30 px title bar with the title, a 2 px border, the
//! focus in colour).

use crate::compositor::{depth_state, pipeline, uniform_buffer, uniform_entry, FORMAT};
use crate::glyphs::GlyphAtlas;
use crate::glyphs::ATLAS_COLUMNS;
use gos_layouts::records::{
    CELL_ATTR_BOLD, CELL_ATTR_CURSOR, CELL_ATTR_INVERSE, CELL_ATTR_UNDERLINE, CELL_HEIGHT,
    CELL_WIDTH, FRAME_BORDER, FRAME_TITLE_BAR,
};
use gos_layouts::TerminalCell;

/// Title glyphs a decoration holds at most (the `RenderFrame::title` bytes).
const TITLE_MAX: usize = gos_layouts::records::FRAME_TITLE_BYTES;
/// Pixels from a decorated window's left edge to its title, and from its title to the right.
const TITLE_MARGIN: u32 = 8;

/// The WGSL constants `text.wgsl` uses, from the layouts' own values (no copy in the shader).
fn constants() -> String {
    format!(
        "const CELL_W: u32 = {CELL_WIDTH}u;\nconst CELL_H: u32 = {CELL_HEIGHT}u;\n\
         const ATLAS_COLUMNS: u32 = {ATLAS_COLUMNS}u;\n\
         const BORDER: f32 = {FRAME_BORDER}.0;\nconst TITLE_BAR: f32 = {FRAME_TITLE_BAR}.0;\n\
         const TITLE_MARGIN: f32 = {TITLE_MARGIN}.0;\n\
         const ATTR_BOLD: u32 = {CELL_ATTR_BOLD}u;\nconst ATTR_UNDERLINE: u32 = {CELL_ATTR_UNDERLINE}u;\n\
         const ATTR_INVERSE: u32 = {CELL_ATTR_INVERSE}u;\nconst ATTR_CURSOR: u32 = {CELL_ATTR_CURSOR}u;\n"
    )
}
/// Title bar and border: focused, then not.
const FOCUSED: ([f32; 3], [f32; 3], [f32; 3]) = ([0.0, 0.42, 0.55], [0.0, 0.8, 1.0], [1.0; 3]);
const UNFOCUSED: ([f32; 3], [f32; 3], [f32; 3]) =
    ([0.16, 0.17, 0.2], [0.3, 0.32, 0.36], [0.72, 0.74, 0.78]);

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct DecorUniform {
    outer: [f32; 4],
    content: [f32; 4],
    bar: [f32; 4],
    border: [f32; 4],
    ink: [f32; 4],
    title: [[u32; 4]; TITLE_MAX / 4],
}

/// The atlas and the two pipelines that draw text.
pub(crate) struct Text {
    pub(crate) atlas: GlyphAtlas,
    cells_layout: wgpu::BindGroupLayout,
    decor_layout: wgpu::BindGroupLayout,
    cells_pipeline: wgpu::RenderPipeline,
    pub(crate) decor_pipeline: wgpu::RenderPipeline,
}

fn texture_entry(binding: u32, sample_type: wgpu::TextureSampleType) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::FRAGMENT,
        ty: wgpu::BindingType::Texture {
            sample_type,
            view_dimension: wgpu::TextureViewDimension::D2,
            multisampled: false,
        },
        count: None,
    }
}

impl Text {
    pub(crate) fn new(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        frame_layout: &wgpu::BindGroupLayout,
    ) -> Text {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("text"),
            source: wgpu::ShaderSource::Wgsl(
                [
                    include_str!("shaders.wgsl"),
                    &constants(),
                    include_str!("text.wgsl"),
                ]
                .concat()
                .into(),
            ),
        });
        let atlas_entry = texture_entry(3, wgpu::TextureSampleType::Float { filterable: false });
        let cells_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("cells"),
            entries: &[atlas_entry, texture_entry(4, wgpu::TextureSampleType::Uint)],
        });
        let decor_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("decoration"),
            entries: &[uniform_entry(2), atlas_entry],
        });
        let layout = |label, group: &wgpu::BindGroupLayout| {
            device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(label),
                bind_group_layouts: &[Some(frame_layout), Some(group)],
                immediate_size: 0,
            })
        };
        let cells_pipeline = pipeline(
            device,
            &module,
            ("cells", &layout("cells", &cells_layout)),
            ("vs_cells", "fs_cells"),
            wgpu::PrimitiveTopology::TriangleList,
            (FORMAT, None),
            None,
        );
        let decor_pipeline = pipeline(
            device,
            &module,
            ("decorations", &layout("decorations", &decor_layout)),
            ("vs_decor", "fs_decor"),
            wgpu::PrimitiveTopology::TriangleStrip,
            (FORMAT, Some(wgpu::BlendState::ALPHA_BLENDING)),
            Some(depth_state(false)),
        );
        Text {
            atlas: GlyphAtlas::new(device, queue),
            cells_layout,
            decor_layout,
            cells_pipeline,
            decor_pipeline,
        }
    }
}

/// A terminal window's cells on the GPU: per cell (atlas slot, fg | bg << 8 | attrs << 16).
pub(crate) struct CellGrid {
    pub(crate) columns: u32,
    pub(crate) rows: u32,
    texture: wgpu::Texture,
    bind: wgpu::BindGroup,
    staged: Vec<[u32; 2]>,
    /// New cells not drawn into the window's texture yet.
    pub(crate) pending: bool,
}

impl CellGrid {
    pub(crate) fn new(device: &wgpu::Device, text: &Text, columns: u32, rows: u32) -> CellGrid {
        let texture = device.create_texture(&wgpu::TextureDescriptor {
            label: Some("terminal cells"),
            size: wgpu::Extent3d {
                width: columns,
                height: rows,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rg32Uint,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        let view = |t: &wgpu::Texture| t.create_view(&Default::default());
        let bind = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("cells"),
            layout: &text.cells_layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 3,
                    resource: wgpu::BindingResource::TextureView(&view(&text.atlas.texture)),
                },
                wgpu::BindGroupEntry {
                    binding: 4,
                    resource: wgpu::BindingResource::TextureView(&view(&texture)),
                },
            ],
        });
        CellGrid {
            columns,
            rows,
            texture,
            bind,
            staged: Vec::with_capacity((columns * rows) as usize),
            pending: false,
        }
    }

    /// Takes new cells (`rows` of `columns` cells, `stride` bytes apart; sizes checked by the
    /// caller), mapping each character to its atlas slot, and uploads them.
    pub(crate) fn write(
        &mut self,
        queue: &wgpu::Queue,
        atlas: &mut GlyphAtlas,
        stride: u32,
        bytes: &[u8],
    ) {
        self.staged.clear();
        let cell = size_of::<TerminalCell>();
        for row in 0..self.rows as usize {
            let line = &bytes[row * stride as usize..][..self.columns as usize * cell];
            for c in line.chunks_exact(cell) {
                let cp = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                let colours = u32::from(c[4]) | u32::from(c[5]) << 8 | u32::from(c[6]) << 16;
                self.staged.push([atlas.slot_of(queue, cp), colours]);
            }
        }
        queue.write_texture(
            wgpu::TexelCopyTextureInfo {
                texture: &self.texture,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            bytemuck::cast_slice(&self.staged),
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(self.columns * 8),
                rows_per_image: None,
            },
            wgpu::Extent3d {
                width: self.columns,
                height: self.rows,
                depth_or_array_layers: 1,
            },
        );
        self.pending = true;
    }

    /// Draws the cells into `target` (the window's texture, 8 x 16 pixels a cell).
    pub(crate) fn draw(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        text: &Text,
        frame_bind: &wgpu::BindGroup,
        target: &wgpu::Texture,
    ) {
        let view = target.create_view(&Default::default());
        let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("terminal"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view: &view,
                depth_slice: None,
                resolve_target: None,
                ops: wgpu::Operations {
                    load: wgpu::LoadOp::Clear(wgpu::Color::BLACK),
                    store: wgpu::StoreOp::Store,
                },
            })],
            depth_stencil_attachment: None,
            timestamp_writes: None,
            occlusion_query_set: None,
            multiview_mask: None,
        });
        pass.set_pipeline(&text.cells_pipeline);
        pass.set_bind_group(0, frame_bind, &[]);
        pass.set_bind_group(1, &self.bind, &[]);
        pass.draw(0..3, 0..1);
        self.pending = false;
    }
}

/// A decorated window's title bar and border.
pub(crate) struct Decoration {
    title: String,
    slots: [u32; TITLE_MAX],
    len: usize,
    uniform: wgpu::Buffer,
    pub(crate) bind: wgpu::BindGroup,
}

impl Decoration {
    pub(crate) fn new(device: &wgpu::Device, text: &Text) -> Decoration {
        let uniform = uniform_buffer::<DecorUniform>(device, "decoration uniform");
        let bind = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("decoration"),
            layout: &text.decor_layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: uniform.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 3,
                    resource: wgpu::BindingResource::TextureView(
                        &text.atlas.texture.create_view(&Default::default()),
                    ),
                },
            ],
        });
        Decoration {
            title: String::new(),
            slots: [0; TITLE_MAX],
            len: 0,
            uniform,
            bind,
        }
    }

    /// Shows `title` (its glyphs looked up only when it changes).
    pub(crate) fn retitle(&mut self, queue: &wgpu::Queue, atlas: &mut GlyphAtlas, title: &str) {
        if self.title == title {
            return;
        }
        self.title = title.to_string();
        self.len = 0;
        for (slot, c) in self.slots.iter_mut().zip(title.chars()) {
            *slot = atlas.slot(queue, c);
            self.len += 1;
        }
    }

    /// Writes the uniform for a window whose pixels cover `content` (x, y, w, h in output
    /// pixels), `focused` or not, at opacity `alpha`.
    pub(crate) fn place(&self, queue: &wgpu::Queue, content: [f32; 4], focused: bool, alpha: f32) {
        let (b, t) = (FRAME_BORDER as f32, FRAME_TITLE_BAR as f32);
        let [x, y, w, h] = content;
        let (bar, border, ink) = if focused { FOCUSED } else { UNFOCUSED };
        // As many glyphs as fit between the margins.
        let fit = ((w - 2.0 * TITLE_MARGIN as f32).max(0.0) / CELL_WIDTH as f32) as usize;
        let mut title = [[0u32; 4]; TITLE_MAX / 4];
        for (i, s) in self.slots.iter().enumerate() {
            title[i / 4][i % 4] = *s;
        }
        let u = DecorUniform {
            outer: [x - b, y - t - b, w + 2.0 * b, h + t + 2.0 * b],
            content,
            bar: [bar[0], bar[1], bar[2], alpha],
            border: [border[0], border[1], border[2], self.len.min(fit) as f32],
            ink: [ink[0], ink[1], ink[2], 1.0],
            title,
        };
        queue.write_buffer(&self.uniform, 0, bytemuck::bytes_of(&u));
    }
}

/// The colours decorations are drawn in, as RGBA8 (title bar, border, title text): focused
/// when `focused`. For tests that look for them.
pub fn decoration_colours(focused: bool) -> [[u8; 4]; 3] {
    let (bar, border, ink) = if focused { FOCUSED } else { UNFOCUSED };
    let rgba = |c: [f32; 3]| {
        let q = |v: f32| (v * 255.0).round() as u8;
        [q(c[0]), q(c[1]), q(c[2]), 255]
    };
    [rgba(bar), rgba(border), rgba(ink)]
}
