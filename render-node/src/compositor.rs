//! Composition: one GPU texture per source and per RTS texture id, drawn by z-order, position
//! and zoom over the terrain background (shaded from the latest heightmap), into an RGBA8
//! output texture that is read back into a caller's buffer, with the GPU time of the pass
//! where the adapter has timestamp queries.

use crate::terrain::{self, Camera};
use crate::text::{CellGrid, Decoration, Text};
use crate::{Gpu, RenderError};
use std::collections::HashMap;
use std::time::Duration;

/// Pixel formats of a window's pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// 8-bit red, green, blue, alpha.
    Rgba8,
    /// 8-bit blue, green, red, alpha (swizzled when drawn).
    Bgra8,
}

/// Pixel formats of a terrain heightmap (the height is the first channel, 0..1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeightFormat {
    /// One 8-bit channel.
    R8,
    /// One 32-bit float channel.
    R32F,
    /// RGBA8; the red channel is the height.
    Rgba8,
}

impl HeightFormat {
    fn texture_format(self) -> wgpu::TextureFormat {
        match self {
            HeightFormat::R8 => wgpu::TextureFormat::R8Unorm,
            HeightFormat::R32F => wgpu::TextureFormat::R32Float,
            HeightFormat::Rgba8 => wgpu::TextureFormat::Rgba8Unorm,
        }
    }

    fn bytes_per_pixel(self) -> u32 {
        match self {
            HeightFormat::R8 => 1,
            _ => 4,
        }
    }
}

/// Where and how a source's window is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    /// Left edge in output pixels.
    pub x: i32,
    /// Top edge in output pixels.
    pub y: i32,
    /// Scale (1.0 = one texel per pixel).
    pub zoom: f32,
    /// Stacking order; higher is nearer.
    pub z: i32,
    /// Opacity, 0..1 (fades a source that stopped publishing).
    pub alpha: f32,
}

/// A rectangle of a source's pixels that changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dirty {
    /// Left.
    pub x: u32,
    /// Top.
    pub y: u32,
    /// Width.
    pub w: u32,
    /// Height.
    pub h: u32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct FrameUniform {
    size: [f32; 2],
    time: f32,
    has_heightmap: f32,
    /// World size, height scale, lowest and highest height (`terrain`).
    terrain: [f32; 4],
    /// Vertices along a side of the mesh (x).
    grid: [f32; 4],
    /// World to clip space, column-major.
    view_proj: [[f32; 4]; 4],
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct WindowUniform {
    rect: [f32; 4],
    alpha: f32,
    bgra: f32,
    opaque: f32,
    pad: f32,
}

/// A brick of the terrain: an RTS texture on a map cell.
struct Brick {
    texture_id: u64,
    lift: f32,
    uniform: wgpu::Buffer,
    /// `None` until its texture is on the GPU (and again when the texture is re-created).
    bind: Option<wgpu::BindGroup>,
}

/// World units a brick lies above the ground when its placement says 0.
pub const DEFAULT_BRICK_LIFT: f32 = 2.0;
/// Quads along a brick's side: it follows the ground in as many steps as the terrain mesh
/// has across one map cell (255 / 16).
const BRICK_STEPS: u32 = 16;

/// A texture on the GPU and its size.
struct Image {
    texture: wgpu::Texture,
    width: u32,
    height: u32,
    format: wgpu::TextureFormat,
}

/// What a window shows.
enum Content {
    /// Its own pixels, in this format.
    Pixels(Image, PixelFormat),
    /// An RTS texture, at this size (`None`: the texture's own).
    Rts(u64, Option<(u32, u32)>),
    /// Terminal cells, drawn into the image (8 x 16 pixels a cell) when they change.
    Cells(Image, CellGrid),
}

struct Source {
    content: Content,
    /// The named style it is drawn with (plain when unknown).
    style: Option<String>,
    /// Its title bar and border, when it is decorated.
    decor: Option<Decoration>,
    uniform: wgpu::Buffer,
    /// `None` while the RTS texture it shows has not arrived.
    bind: Option<wgpu::BindGroup>,
    placement: Placement,
}

/// Timestamp queries around the composition pass.
struct Timer {
    set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    read: wgpu::Buffer,
    /// Nanoseconds per tick.
    period: f64,
}

/// The compositor: pipelines, output target, readback buffer and the sources' textures.
pub struct Compositor {
    gpu: Gpu,
    width: u32,
    height: u32,
    terrain: wgpu::RenderPipeline,
    windows: wgpu::RenderPipeline,
    brick_pipeline: wgpu::RenderPipeline,
    /// Window pipelines of the named styles.
    styles: HashMap<String, wgpu::RenderPipeline>,
    bricks: HashMap<(i32, i32), Brick>,
    depth: wgpu::Texture,
    camera: Camera,
    frame_uniform: wgpu::Buffer,
    frame_bind: wgpu::BindGroup,
    frame_layout: wgpu::BindGroupLayout,
    sampler: wgpu::Sampler,
    window_layout: wgpu::BindGroupLayout,
    output: wgpu::Texture,
    readback: wgpu::Buffer,
    padded_row: u32,
    sources: HashMap<u64, Source>,
    textures: HashMap<u64, Image>,
    heightmap: Option<Image>,
    timer: Option<Timer>,
    gpu_time: Option<Duration>,
    time: f32,
    shader: wgpu::ShaderModule,
    window_pipeline_layout: wgpu::PipelineLayout,
    /// Drawing the output onto another target (a window): its format, pipeline and bindings.
    blit: Option<(wgpu::TextureFormat, wgpu::RenderPipeline, wgpu::BindGroup)>,
    /// The glyph atlas and the pipelines of terminals and decorations.
    text: Text,
    /// The window shown focused (the last to ask).
    focused: Option<u64>,
    /// Each source's last focus request (`RenderFrame::focus`).
    focus_requests: HashMap<u64, u32>,
}

pub(crate) const FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8Unorm;

/// An RGBA8 2D texture of one mip level.
fn texture_2d(
    device: &wgpu::Device,
    label: &str,
    width: u32,
    height: u32,
    usage: wgpu::TextureUsages,
) -> wgpu::Texture {
    texture_of(device, label, width, height, FORMAT, usage)
}

/// A 2D texture of one mip level in `format`.
fn texture_of(
    device: &wgpu::Device,
    label: &str,
    width: u32,
    height: u32,
    format: wgpu::TextureFormat,
    usage: wgpu::TextureUsages,
) -> wgpu::Texture {
    device.create_texture(&wgpu::TextureDescriptor {
        label: Some(label),
        size: wgpu::Extent3d {
            width,
            height,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format,
        usage,
        view_formats: &[],
    })
}

/// Checks that `height` rows of `width` pixels of `bpp` bytes, rows `stride` apart, fit in
/// `len` bytes and in a texture of side `max`; the reason when they do not.
fn check_rows(
    width: u32,
    height: u32,
    stride: u32,
    bpp: u32,
    len: usize,
    max: u32,
) -> Result<(), String> {
    if width == 0 || height == 0 || width > max || height > max {
        return Err(format!("size {width}x{height} is not within 1..={max}"));
    }
    let row = width as u64 * bpp as u64;
    if (stride as u64) < row {
        return Err(format!(
            "stride {stride} is shorter than a row of {row} bytes"
        ));
    }
    if !stride.is_multiple_of(bpp) {
        return Err(format!(
            "stride {stride} is not a multiple of the {bpp}-byte pixel"
        ));
    }
    let need = stride as u64 * (height as u64 - 1) + row;
    if (len as u64) < need {
        return Err(format!(
            "{width}x{height} with stride {stride} needs {need} bytes, the frame has {len}"
        ));
    }
    Ok(())
}

/// Writes `height` rows of `pixels` (rows `stride` apart) into `texture` at (`x`, `y`).
fn write_rows(
    queue: &wgpu::Queue,
    texture: &wgpu::Texture,
    (x, y, width, height): (u32, u32, u32, u32),
    stride: u32,
    pixels: &[u8],
) {
    queue.write_texture(
        wgpu::TexelCopyTextureInfo {
            texture,
            mip_level: 0,
            origin: wgpu::Origin3d { x, y, z: 0 },
            aspect: wgpu::TextureAspect::All,
        },
        pixels,
        wgpu::TexelCopyBufferLayout {
            offset: 0,
            bytes_per_row: Some(stride),
            rows_per_image: None,
        },
        wgpu::Extent3d {
            width,
            height,
            depth_or_array_layers: 1,
        },
    );
}

/// A uniform buffer holding one `T`, written with `queue.write_buffer`.
pub(crate) fn uniform_buffer<T>(device: &wgpu::Device, label: &str) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: std::mem::size_of::<T>() as u64,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// A render pipeline of the node's shader module.
pub(crate) fn pipeline(
    device: &wgpu::Device,
    shader: &wgpu::ShaderModule,
    (label, layout): (&str, &wgpu::PipelineLayout),
    (vs, fs): (&str, &str),
    topology: wgpu::PrimitiveTopology,
    (format, blend): (wgpu::TextureFormat, Option<wgpu::BlendState>),
    depth: Option<wgpu::DepthStencilState>,
) -> wgpu::RenderPipeline {
    device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some(label),
        layout: Some(layout),
        vertex: wgpu::VertexState {
            module: shader,
            entry_point: Some(vs),
            compilation_options: Default::default(),
            buffers: &[],
        },
        fragment: Some(wgpu::FragmentState {
            module: shader,
            entry_point: Some(fs),
            compilation_options: Default::default(),
            targets: &[Some(wgpu::ColorTargetState {
                format,
                blend,
                write_mask: wgpu::ColorWrites::ALL,
            })],
        }),
        primitive: wgpu::PrimitiveState {
            topology,
            ..Default::default()
        },
        depth_stencil: depth,
        multisample: Default::default(),
        multiview_mask: None,
        cache: None,
    })
}

/// The depth buffer's format (the terrain mesh hides itself; windows ignore it).
const DEPTH: wgpu::TextureFormat = wgpu::TextureFormat::Depth32Float;

/// Depth state: the terrain tests and writes depth; windows are drawn over it regardless.
pub(crate) fn depth_state(terrain: bool) -> wgpu::DepthStencilState {
    wgpu::DepthStencilState {
        format: DEPTH,
        depth_write_enabled: Some(terrain),
        depth_compare: Some(if terrain {
            wgpu::CompareFunction::Less
        } else {
            wgpu::CompareFunction::Always
        }),
        stencil: Default::default(),
        bias: Default::default(),
    }
}

/// The colour above the terrain's horizon.
const SKY: wgpu::Color = wgpu::Color {
    r: 0.004,
    g: 0.008,
    b: 0.02,
    a: 1.0,
};

/// A render pass that clears `view` first (to the sky colour when it has a depth buffer,
/// else to black), and `depth` to the far plane.
fn clear_pass<'e>(
    encoder: &'e mut wgpu::CommandEncoder,
    label: &str,
    view: &wgpu::TextureView,
    depth: Option<&wgpu::TextureView>,
    timestamp_writes: Option<wgpu::RenderPassTimestampWrites<'_>>,
) -> wgpu::RenderPass<'e> {
    encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
        label: Some(label),
        color_attachments: &[Some(wgpu::RenderPassColorAttachment {
            view,
            depth_slice: None,
            resolve_target: None,
            ops: wgpu::Operations {
                load: wgpu::LoadOp::Clear(if depth.is_some() {
                    SKY
                } else {
                    wgpu::Color::BLACK
                }),
                store: wgpu::StoreOp::Store,
            },
        })],
        depth_stencil_attachment: depth.map(|view| wgpu::RenderPassDepthStencilAttachment {
            view,
            depth_ops: Some(wgpu::Operations {
                load: wgpu::LoadOp::Clear(1.0),
                store: wgpu::StoreOp::Discard,
            }),
            stencil_ops: None,
        }),
        timestamp_writes,
        occlusion_query_set: None,
        multiview_mask: None,
    })
}

fn frame_bind_group(
    device: &wgpu::Device,
    layout: &wgpu::BindGroupLayout,
    uniform: &wgpu::Buffer,
    heightmap: &wgpu::Texture,
    sampler: &wgpu::Sampler,
) -> wgpu::BindGroup {
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("frame"),
        layout,
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: uniform.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: wgpu::BindingResource::TextureView(
                    &heightmap.create_view(&Default::default()),
                ),
            },
            wgpu::BindGroupEntry {
                binding: 2,
                resource: wgpu::BindingResource::Sampler(sampler),
            },
        ],
    })
}

fn texture_entry(binding: u32, filterable: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        // The heightmap displaces the terrain's vertices.
        visibility: wgpu::ShaderStages::VERTEX_FRAGMENT,
        ty: wgpu::BindingType::Texture {
            sample_type: wgpu::TextureSampleType::Float { filterable },
            view_dimension: wgpu::TextureViewDimension::D2,
            multisampled: false,
        },
        count: None,
    }
}

pub(crate) fn uniform_entry(binding: u32) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::VERTEX_FRAGMENT,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

impl Compositor {
    /// A compositor drawing `width` x `height` frames on `gpu`.
    pub fn new(gpu: Gpu, width: u32, height: u32) -> Result<Compositor, RenderError> {
        let max = gpu.device.limits().max_texture_dimension_2d;
        if width == 0 || height == 0 || width > max || height > max {
            return Err(RenderError::Device(format!(
                "output {width}x{height} is not within 1..={max}"
            )));
        }
        let device = &gpu.device;
        let shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("gos-render-node shaders"),
            source: wgpu::ShaderSource::Wgsl(include_str!("shaders.wgsl").into()),
        });
        let frame_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("frame"),
            entries: &[
                uniform_entry(0),
                // Not filterable, so an R32F heightmap binds without an extra feature.
                texture_entry(1, false),
                wgpu::BindGroupLayoutEntry {
                    binding: 2,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Sampler(wgpu::SamplerBindingType::NonFiltering),
                    count: None,
                },
            ],
        });
        let window_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("window"),
            entries: &[uniform_entry(0), texture_entry(1, true)],
        });
        let frame_uniform = uniform_buffer::<FrameUniform>(device, "frame uniform");
        let heightmap = texture_2d(
            device,
            "heightmap",
            1,
            1,
            wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
        );
        let sampler = device.create_sampler(&wgpu::SamplerDescriptor {
            label: Some("nearest"),
            ..Default::default()
        });
        let frame_bind =
            frame_bind_group(device, &frame_layout, &frame_uniform, &heightmap, &sampler);
        let terrain_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("terrain"),
            bind_group_layouts: &[Some(&frame_layout)],
            immediate_size: 0,
        });
        let window_pipeline_layout =
            device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some("windows"),
                bind_group_layouts: &[Some(&frame_layout), Some(&window_layout)],
                immediate_size: 0,
            });
        let terrain = pipeline(
            device,
            &shader,
            ("terrain", &terrain_layout),
            ("vs_terrain", "fs_terrain"),
            wgpu::PrimitiveTopology::TriangleList,
            (FORMAT, None),
            Some(depth_state(true)),
        );
        let windows = pipeline(
            device,
            &shader,
            ("windows", &window_pipeline_layout),
            ("vs_window", "fs_window"),
            wgpu::PrimitiveTopology::TriangleStrip,
            (FORMAT, Some(wgpu::BlendState::ALPHA_BLENDING)),
            Some(depth_state(false)),
        );
        let brick_pipeline = pipeline(
            device,
            &shader,
            ("bricks", &window_pipeline_layout),
            ("vs_brick", "fs_brick"),
            wgpu::PrimitiveTopology::TriangleList,
            (FORMAT, None),
            Some(wgpu::DepthStencilState {
                depth_compare: Some(wgpu::CompareFunction::LessEqual),
                ..depth_state(true)
            }),
        );
        let depth = texture_of(
            device,
            "depth",
            width,
            height,
            DEPTH,
            wgpu::TextureUsages::RENDER_ATTACHMENT,
        );
        let output = texture_2d(
            device,
            "output",
            width,
            height,
            wgpu::TextureUsages::RENDER_ATTACHMENT
                | wgpu::TextureUsages::COPY_SRC
                | wgpu::TextureUsages::TEXTURE_BINDING,
        );
        let padded_row = (width * 4).next_multiple_of(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT);
        let readback = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: padded_row as u64 * height as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let timer = gpu.timestamps.then(|| Timer {
            set: device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("composition time"),
                ty: wgpu::QueryType::Timestamp,
                count: 2,
            }),
            resolve: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timestamps"),
                size: 2 * wgpu::QUERY_SIZE as u64,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
            read: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timestamps readback"),
                size: 2 * wgpu::QUERY_SIZE as u64,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            period: gpu.queue.get_timestamp_period() as f64,
        });
        let text = Text::new(device, &gpu.queue, &frame_layout);
        Ok(Compositor {
            text,
            focused: None,
            focus_requests: HashMap::new(),
            gpu,
            width,
            height,
            terrain,
            windows,
            brick_pipeline,
            styles: HashMap::new(),
            bricks: HashMap::new(),
            depth,
            camera: Camera::default(),
            frame_uniform,
            frame_bind,
            frame_layout,
            sampler,
            window_layout,
            output,
            readback,
            padded_row,
            sources: HashMap::new(),
            textures: HashMap::new(),
            heightmap: None,
            timer,
            gpu_time: None,
            time: 0.0,
            shader,
            window_pipeline_layout,
            blit: None,
        })
    }

    /// The GPU this compositor draws on.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Output size.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// The camera the terrain is seen through.
    pub fn camera(&self) -> Camera {
        self.camera
    }

    /// Moves the camera (from the next frame on).
    pub fn set_camera(&mut self, camera: Camera) {
        self.camera = camera;
    }

    /// Uploads the RGBA8 pixels of `source_id`: [`Compositor::upload_pixels`] in RGBA8.
    pub fn upload(
        &mut self,
        source_id: u64,
        width: u32,
        height: u32,
        stride: u32,
        pixels: &[u8],
        dirty: Option<Dirty>,
    ) -> Result<(), RenderError> {
        self.upload_pixels(
            source_id,
            PixelFormat::Rgba8,
            (width, height, stride),
            pixels,
            dirty,
        )
    }

    /// Uploads the pixels of `source_id` (`width` x `height`, rows `stride` bytes apart) straight
    /// from `pixels` (a shared-memory slot, typically), the whole frame or only `dirty`. The
    /// source's texture is re-created when its size or format changes. A frame whose sizes do
    /// not fit its pixels is refused with the reason, before anything reaches the GPU.
    pub fn upload_pixels(
        &mut self,
        source_id: u64,
        format: PixelFormat,
        (width, height, stride): (u32, u32, u32),
        pixels: &[u8],
        dirty: Option<Dirty>,
    ) -> Result<(), RenderError> {
        let bad = |reason: String| RenderError::BadFrame { source_id, reason };
        let max = self.gpu.device.limits().max_texture_dimension_2d;
        check_rows(width, height, stride, 4, pixels.len(), max).map_err(bad)?;
        let d = dirty.unwrap_or(Dirty {
            x: 0,
            y: 0,
            w: width,
            h: height,
        });
        if d.w == 0
            || d.h == 0
            || d.x.saturating_add(d.w) > width
            || d.y.saturating_add(d.h) > height
        {
            return Err(bad(format!(
                "dirty rectangle {d:?} is not inside {width}x{height}"
            )));
        }
        let current = self.sources.get(&source_id).and_then(|s| match &s.content {
            Content::Pixels(img, f) => Some((img.width, img.height, *f)),
            Content::Rts(..) | Content::Cells(..) => None,
        });
        if current != Some((width, height, format)) {
            let image = Image {
                texture: texture_2d(
                    &self.gpu.device,
                    "window",
                    width,
                    height,
                    wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
                ),
                width,
                height,
                format: FORMAT,
            };
            let placement = self.sources.get(&source_id).map(|s| s.placement);
            let source = self.make_source(Content::Pixels(image, format), placement);
            self.sources.insert(source_id, source);
            if dirty.is_some() {
                // A new texture has no old pixels to keep: upload everything.
                return self.upload_pixels(
                    source_id,
                    format,
                    (width, height, stride),
                    pixels,
                    None,
                );
            }
        }
        let Content::Pixels(image, _) = &self.sources[&source_id].content else {
            unreachable!("the source was just given pixels");
        };
        let offset = d.y as usize * stride as usize + d.x as usize * 4;
        write_rows(
            &self.gpu.queue,
            &image.texture,
            (d.x, d.y, d.w, d.h),
            stride,
            &pixels[offset..],
        );
        Ok(())
    }

    /// Uploads RTS texture `texture_id`: `side` x `side` RGBA8 pixels, rows `side * 4` apart
    /// (an `rts.textures` slot, typically). Windows that show it see the new pixels.
    pub fn upload_texture(
        &mut self,
        texture_id: u64,
        side: u32,
        pixels: &[u8],
    ) -> Result<(), RenderError> {
        let max = self.gpu.device.limits().max_texture_dimension_2d;
        check_rows(side, side, side.saturating_mul(4), 4, pixels.len(), max)
            .map_err(|reason| RenderError::BadTexture { texture_id, reason })?;
        let same = self
            .textures
            .get(&texture_id)
            .is_some_and(|t| (t.width, t.height) == (side, side));
        if !same {
            let image = Image {
                texture: texture_2d(
                    &self.gpu.device,
                    "rts",
                    side,
                    side,
                    wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
                ),
                width: side,
                height: side,
                format: FORMAT,
            };
            // Bricks that show it are bound again at the next frame.
            for b in self.bricks.values_mut() {
                if b.texture_id == texture_id {
                    b.bind = None;
                }
            }
            // Re-bind the windows that show it.
            let binds: Vec<(u64, wgpu::BindGroup)> = self
                .sources
                .iter()
                .filter(|(_, s)| matches!(s.content, Content::Rts(t, _) if t == texture_id))
                .map(|(id, s)| (*id, self.window_bind(&s.uniform, &image)))
                .collect();
            for (id, bind) in binds {
                if let Some(s) = self.sources.get_mut(&id) {
                    s.bind = Some(bind);
                }
            }
            self.textures.insert(texture_id, image);
        }
        write_rows(
            &self.gpu.queue,
            &self.textures[&texture_id].texture,
            (0, 0, side, side),
            side * 4,
            pixels,
        );
        Ok(())
    }

    /// Lays RTS texture `texture_id` on map cell (`x`, `y`) of the terrain (0 <= x, y <
    /// `BRICK_MAP_CELLS`), `lift` world units above the ground (0: [`DEFAULT_BRICK_LIFT`]),
    /// replacing the cell's brick. Drawn once the texture has arrived. The reason when the
    /// cell is off the terrain, the texture id is 0 or the lift is not a finite number
    /// within the terrain's heights.
    pub fn place_brick(
        &mut self,
        (x, y): (i32, i32),
        texture_id: u64,
        lift: f32,
    ) -> Result<(), String> {
        let cells = gos_layouts::records::BRICK_MAP_CELLS as i32;
        if !(0..cells).contains(&x) || !(0..cells).contains(&y) {
            return Err(format!(
                "map cell ({x}, {y}) is off the terrain's {cells}x{cells} cells"
            ));
        }
        if texture_id == 0 {
            return Err("texture id 0 means none".into());
        }
        if !(lift.is_finite() && (0.0..=terrain::MAX_HEIGHT).contains(&lift)) {
            return Err(format!(
                "lift {lift} is not within 0..={}",
                terrain::MAX_HEIGHT
            ));
        }
        let lift = if lift == 0.0 {
            DEFAULT_BRICK_LIFT
        } else {
            lift
        };
        let n = cells as f32;
        let (u, v) = (x as f32 / n, y as f32 / n);
        let shape = WindowUniform {
            rect: [u, v, u + 1.0 / n, v + 1.0 / n],
            alpha: lift,
            bgra: 0.0,
            opaque: 1.0,
            pad: BRICK_STEPS as f32,
        };
        let brick = match self.bricks.get_mut(&(x, y)) {
            Some(b) => {
                if (b.texture_id, b.lift) == (texture_id, lift) {
                    return Ok(()); // republished as it was: nothing to write
                }
                if b.texture_id != texture_id {
                    b.bind = None;
                }
                b.texture_id = texture_id;
                b.lift = lift;
                b
            }
            None => self.bricks.entry((x, y)).or_insert(Brick {
                texture_id,
                lift,
                uniform: uniform_buffer::<WindowUniform>(&self.gpu.device, "brick uniform"),
                bind: None,
            }),
        };
        // The brick's shape (its cell and lift) changes only here: written once, not per frame.
        self.gpu
            .queue
            .write_buffer(&brick.uniform, 0, bytemuck::bytes_of(&shape));
        Ok(())
    }

    /// Takes the brick off map cell (`x`, `y`); whether there was one.
    pub fn remove_brick(&mut self, cell: (i32, i32)) -> bool {
        self.bricks.remove(&cell).is_some()
    }

    /// The bricks laid, as (cell, texture id), sorted by cell.
    pub fn bricks(&self) -> Vec<((i32, i32), u64)> {
        let mut v: Vec<_> = self
            .bricks
            .iter()
            .map(|(k, b)| (*k, b.texture_id))
            .collect();
        v.sort();
        v
    }

    /// Binds the bricks whose texture has arrived (their uniforms were written when placed).
    fn prepare_bricks(&mut self) {
        let binds: Vec<((i32, i32), wgpu::BindGroup)> = self
            .bricks
            .iter()
            .filter(|(_, b)| b.bind.is_none())
            .filter_map(|(cell, b)| {
                let image = self.textures.get(&b.texture_id)?;
                Some((*cell, self.window_bind(&b.uniform, image)))
            })
            .collect();
        for (cell, bind) in binds {
            if let Some(b) = self.bricks.get_mut(&cell) {
                b.bind = Some(bind);
            }
        }
    }

    /// Whether RTS texture `texture_id` has been uploaded.
    pub fn has_texture(&self, texture_id: u64) -> bool {
        self.textures.contains_key(&texture_id)
    }

    /// Makes `source_id` a window that shows RTS texture `texture_id`, at `size` (`None`: the
    /// texture's own size) times the placement's zoom. Until the texture arrives the window is
    /// not drawn.
    pub fn show_texture(
        &mut self,
        source_id: u64,
        texture_id: u64,
        size: Option<(u32, u32)>,
        placement: Placement,
    ) {
        if let Some(s) = self.sources.get_mut(&source_id) {
            if let Content::Rts(t, sz) = &mut s.content {
                if *t == texture_id {
                    *sz = size;
                    s.placement = placement;
                    return;
                }
            }
        }
        let source = self.make_source(Content::Rts(texture_id, size), Some(placement));
        self.sources.insert(source_id, source);
    }

    /// Sets the terrain's heightmap: `width` x `height` heights in `format` (the first channel,
    /// 0..1), rows `stride` bytes apart. The terrain is shaded from it from the next frame on.
    pub fn set_heightmap(
        &mut self,
        source_id: u64,
        format: HeightFormat,
        (width, height, stride): (u32, u32, u32),
        pixels: &[u8],
    ) -> Result<(), RenderError> {
        let max = self.gpu.device.limits().max_texture_dimension_2d;
        let bpp = format.bytes_per_pixel();
        check_rows(width, height, stride, bpp, pixels.len(), max)
            .map_err(|reason| RenderError::BadFrame { source_id, reason })?;
        if format == HeightFormat::R32F {
            // Heights move the terrain's vertices: a NaN or infinity would tear the mesh.
            let row = (width * 4) as usize;
            let bad = (0..height as usize)
                .flat_map(|y| pixels[y * stride as usize..][..row].chunks_exact(4))
                .any(|b| !f32::from_le_bytes([b[0], b[1], b[2], b[3]]).is_finite());
            if bad {
                return Err(RenderError::BadFrame {
                    source_id,
                    reason: "an R32F height is not a finite number".into(),
                });
            }
        }
        let tf = format.texture_format();
        let same = self
            .heightmap
            .as_ref()
            .is_some_and(|h| (h.width, h.height, h.format) == (width, height, tf));
        if !same {
            let texture = texture_of(
                &self.gpu.device,
                "heightmap",
                width,
                height,
                tf,
                wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            );
            self.frame_bind = frame_bind_group(
                &self.gpu.device,
                &self.frame_layout,
                &self.frame_uniform,
                &texture,
                &self.sampler,
            );
            self.heightmap = Some(Image {
                texture,
                width,
                height,
                format: tf,
            });
        }
        let h = self.heightmap.as_ref().expect("set above");
        write_rows(
            &self.gpu.queue,
            &h.texture,
            (0, 0, width, height),
            stride,
            pixels,
        );
        Ok(())
    }

    /// The bind group of a window: its uniform and the texture it shows.
    fn window_bind(&self, uniform: &wgpu::Buffer, image: &Image) -> wgpu::BindGroup {
        self.gpu
            .device
            .create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("window"),
                layout: &self.window_layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: uniform.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: wgpu::BindingResource::TextureView(
                            &image.texture.create_view(&Default::default()),
                        ),
                    },
                ],
            })
    }

    /// A window showing `content`, bound when what it shows is on the GPU.
    fn make_source(&self, content: Content, placement: Option<Placement>) -> Source {
        let uniform = uniform_buffer::<WindowUniform>(&self.gpu.device, "window uniform");
        let image = match &content {
            Content::Pixels(img, _) | Content::Cells(img, _) => Some(img),
            Content::Rts(id, _) => self.textures.get(id),
        };
        let bind = image.map(|img| self.window_bind(&uniform, img));
        Source {
            content,
            style: None,
            decor: None,
            uniform,
            bind,
            placement: placement.unwrap_or(Placement {
                x: 0,
                y: 0,
                zoom: 1.0,
                z: 0,
                alpha: 1.0,
            }),
        }
    }

    /// Loads (or replaces) style `name`: WGSL that defines `fn style(uv: vec2<f32>, size:
    /// vec2<f32>) -> vec4<f32>`, the colour at `uv` (0..1 across the window) of a window `size`
    /// output pixels large, which may read the window's pixels with `window_texel(uv)` and the
    /// frame's uniform (`frame.time`, ...). The source is compiled with the node's shaders and
    /// validated; when it fails, the error's first line comes back and the style keeps its last
    /// good version. Names are 1 to 16 bytes of `a-z`, `0-9` and `_`.
    pub fn load_style(&mut self, name: &str, source: &str) -> Result<(), String> {
        let good = (1..=16).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !good {
            return Err(format!(
                "style name {name:?} is not 1 to 16 of a-z, 0-9 and _"
            ));
        }
        let device = &self.gpu.device;
        // Every kind of error the module or the pipeline may raise (a backend's compiler
        // failing comes as Internal): any of them refuses the style.
        let scopes = [
            device.push_error_scope(wgpu::ErrorFilter::Validation),
            device.push_error_scope(wgpu::ErrorFilter::OutOfMemory),
            device.push_error_scope(wgpu::ErrorFilter::Internal),
        ];
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(name),
            source: wgpu::ShaderSource::Wgsl(
                [
                    include_str!("shaders.wgsl"),
                    source,
                    include_str!("styled.wgsl"),
                ]
                .concat()
                .into(),
            ),
        });
        let pipe = pipeline(
            device,
            &module,
            (name, &self.window_pipeline_layout),
            ("vs_window", "fs_styled"),
            wgpu::PrimitiveTopology::TriangleStrip,
            (FORMAT, Some(wgpu::BlendState::ALPHA_BLENDING)),
            Some(depth_state(false)),
        );
        let errors: Vec<wgpu::Error> = scopes
            .into_iter()
            .rev()
            .filter_map(|scope| pollster::block_on(scope.pop()))
            .collect();
        if let Some(e) = errors.into_iter().next() {
            let text = e.to_string();
            let first = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with("Validation Error"))
                .unwrap_or("invalid");
            return Err(first.to_string());
        }
        self.styles.insert(name.to_string(), pipe);
        Ok(())
    }

    /// The names of the styles loaded, sorted.
    pub fn styles(&self) -> Vec<String> {
        let mut v: Vec<String> = self.styles.keys().cloned().collect();
        v.sort();
        v
    }

    /// Draws the window of `source_id` with style `style` (None or an unknown name: plain).
    pub fn set_style(&mut self, source_id: u64, style: Option<&str>) {
        // Called for every frame: allocates only when the style changes.
        if let Some(s) = self.sources.get_mut(&source_id) {
            if s.style.as_deref() != style {
                s.style = style.map(str::to_string);
            }
        }
    }

    /// Places the window of `source_id` (ignored until the source has uploaded pixels).
    pub fn place(&mut self, source_id: u64, placement: Placement) {
        if let Some(s) = self.sources.get_mut(&source_id) {
            s.placement = placement;
        }
    }

    /// Whether `source_id` is a window or heightmap the compositor holds.
    pub fn has_source(&self, source_id: u64) -> bool {
        self.sources.contains_key(&source_id)
    }

    /// Forgets a source.
    pub fn remove(&mut self, source_id: u64) {
        self.sources.remove(&source_id);
        self.focus_requests.remove(&source_id);
        if self.focused == Some(source_id) {
            self.focused = None;
        }
    }

    /// Uploads the terminal cells of `source_id`: `columns` x `rows` `TerminalCell`s, rows
    /// `stride` bytes apart, straight from `cells` (a shared-memory slot, typically). The
    /// window is `columns * 8` x `rows * 16` pixels; its texture is redrawn from the cells on
    /// the GPU at the next frame. Sizes that do not fit the bytes, or a grid larger than
    /// `TERMINAL_MAX_COLUMNS` x `TERMINAL_MAX_ROWS`, are refused with the reason.
    pub fn upload_cells(
        &mut self,
        source_id: u64,
        (columns, rows, stride): (u32, u32, u32),
        cells: &[u8],
    ) -> Result<(), RenderError> {
        use gos_layouts::records::{
            CELL_HEIGHT, CELL_WIDTH, TERMINAL_MAX_COLUMNS, TERMINAL_MAX_ROWS,
        };
        let bad = |reason: String| RenderError::BadFrame { source_id, reason };
        let max = self.gpu.device.limits().max_texture_dimension_2d;
        check_rows(
            columns,
            rows,
            stride,
            size_of::<gos_layouts::TerminalCell>() as u32,
            cells.len(),
            max,
        )
        .map_err(bad)?;
        // A small frame of cells makes a large texture (8 x 16 pixels of 4 bytes a cell, 64
        // times its 8 bytes): the grid is bounded so that a terminal costs the GPU no more
        // than a pixel window.
        let (most_columns, most_rows) = (
            TERMINAL_MAX_COLUMNS.min(max / CELL_WIDTH),
            TERMINAL_MAX_ROWS.min(max / CELL_HEIGHT),
        );
        if columns > most_columns || rows > most_rows {
            return Err(bad(format!(
                "a terminal of {columns}x{rows} cells is larger than {most_columns}x{most_rows}"
            )));
        }
        let (width, height) = (columns * CELL_WIDTH, rows * CELL_HEIGHT);
        let same = self.sources.get(&source_id).is_some_and(|s| {
            matches!(&s.content, Content::Cells(_, g) if (g.columns, g.rows) == (columns, rows))
        });
        if !same {
            let image = Image {
                texture: texture_2d(
                    &self.gpu.device,
                    "terminal",
                    width,
                    height,
                    wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::RENDER_ATTACHMENT,
                ),
                width,
                height,
                format: FORMAT,
            };
            let grid = CellGrid::new(&self.gpu.device, &self.text, columns, rows);
            let placement = self.sources.get(&source_id).map(|s| s.placement);
            let source = self.make_source(Content::Cells(image, grid), placement);
            self.sources.insert(source_id, source);
        }
        let Some(Source {
            content: Content::Cells(_, grid),
            ..
        }) = self.sources.get_mut(&source_id)
        else {
            unreachable!("the source was just given cells");
        };
        grid.write(&self.gpu.queue, &mut self.text.atlas, stride, cells);
        Ok(())
    }

    /// Decorates the window of `source_id` with a title bar showing `title` and a border
    /// (`None`: undecorated). The decorations lie outside the window's pixels: the title bar
    /// `FRAME_TITLE_BAR` pixels above them, the border `FRAME_BORDER` pixels around both.
    pub fn set_title(&mut self, source_id: u64, title: Option<&str>) {
        let Some(s) = self.sources.get_mut(&source_id) else {
            return;
        };
        match title {
            None => s.decor = None,
            Some(t) => {
                let d = s
                    .decor
                    .get_or_insert_with(|| Decoration::new(&self.gpu.device, &self.text));
                d.retitle(&self.gpu.queue, &mut self.text.atlas, t);
            }
        }
    }

    /// Shows the window of `source_id` focused (and no other).
    pub fn focus(&mut self, source_id: u64) {
        if self.sources.contains_key(&source_id) {
            self.focused = Some(source_id);
        }
    }

    /// Takes a frame's focus request (`RenderFrame::focus`): a new non-zero value from a
    /// source focuses its window; the same value again (every keep-alive carries it) does
    /// not, so the focus stays with the last window to ask.
    pub fn request_focus(&mut self, source_id: u64, request: u32) {
        if !self.sources.contains_key(&source_id) {
            return;
        }
        let last = self.focus_requests.insert(source_id, request);
        if request != 0 && last != Some(request) {
            self.focused = Some(source_id);
        }
    }

    /// The window shown focused.
    pub fn focused(&self) -> Option<u64> {
        self.focused
    }

    /// Composites every source over the terrain and copies the result for `read_back`.
    pub fn render(&mut self, time: f32) {
        self.time = time;
        self.prepare_bricks();
        let q = &self.gpu.queue;
        q.write_buffer(
            &self.frame_uniform,
            0,
            bytemuck::bytes_of(&FrameUniform {
                size: [self.width as f32, self.height as f32],
                time,
                has_heightmap: if self.heightmap.is_some() { 1.0 } else { 0.0 },
                terrain: [
                    terrain::SIZE,
                    terrain::HEIGHT_SCALE,
                    terrain::MIN_HEIGHT,
                    terrain::MAX_HEIGHT,
                ],
                grid: [terrain::GRID as f32, 0.0, 0.0, 0.0],
                view_proj: self
                    .camera
                    .view_projection(self.width as f32 / self.height as f32),
            }),
        );
        let mut encoder = self
            .gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("frame"),
            });
        // Terminals whose cells changed are drawn into their windows' textures first.
        for s in self.sources.values_mut() {
            if let Content::Cells(image, grid) = &mut s.content {
                if grid.pending {
                    grid.draw(&mut encoder, &self.text, &self.frame_bind, &image.texture);
                }
            }
        }
        // Drawable windows (bound), nearest last.
        let mut order: Vec<(u64, &Source, &wgpu::BindGroup)> = self
            .sources
            .iter()
            .filter_map(|(id, s)| s.bind.as_ref().map(|b| (*id, s, b)))
            .collect();
        order.sort_by_key(|(_, s, _)| s.placement.z);
        for (id, s, _) in &order {
            let p = s.placement;
            // An RTS texture's alpha channel carries data, not coverage: drawn opaque.
            let ((w, h), bgra, opaque) = match &s.content {
                Content::Pixels(img, f) => {
                    ((img.width, img.height), *f == PixelFormat::Bgra8, false)
                }
                Content::Rts(id, size) => (
                    size.or_else(|| self.textures.get(id).map(|t| (t.width, t.height)))
                        .unwrap_or((0, 0)),
                    false,
                    true,
                ),
                Content::Cells(img, _) => ((img.width, img.height), false, true),
            };
            let rect = [p.x as f32, p.y as f32, w as f32 * p.zoom, h as f32 * p.zoom];
            if let Some(d) = &s.decor {
                d.place(q, rect, self.focused == Some(*id), p.alpha.clamp(0.0, 1.0));
            }
            q.write_buffer(
                &s.uniform,
                0,
                bytemuck::bytes_of(&WindowUniform {
                    rect,
                    alpha: p.alpha.clamp(0.0, 1.0),
                    bgra: if bgra { 1.0 } else { 0.0 },
                    opaque: if opaque { 1.0 } else { 0.0 },
                    pad: 0.0,
                }),
            );
        }
        let view = self.output.create_view(&Default::default());
        {
            let timestamps = self
                .timer
                .as_ref()
                .map(|t| wgpu::RenderPassTimestampWrites {
                    query_set: &t.set,
                    beginning_of_pass_write_index: Some(0),
                    end_of_pass_write_index: Some(1),
                });
            let depth = self.depth.create_view(&Default::default());
            let mut pass = clear_pass(&mut encoder, "composite", &view, Some(&depth), timestamps);
            pass.set_pipeline(&self.terrain);
            pass.set_bind_group(0, &self.frame_bind, &[]);
            let cells = terrain::GRID - 1;
            pass.draw(0..cells * cells * 6, 0..1);
            pass.set_pipeline(&self.brick_pipeline);
            for bind in self.bricks.values().filter_map(|b| b.bind.as_ref()) {
                pass.set_bind_group(1, bind, &[]);
                pass.draw(0..BRICK_STEPS * BRICK_STEPS * 6, 0..1);
            }
            for (_, s, bind) in &order {
                if let Some(d) = &s.decor {
                    pass.set_pipeline(&self.text.decor_pipeline);
                    pass.set_bind_group(1, &d.bind, &[]);
                    pass.draw(0..4, 0..1);
                }
                let styled = s.style.as_ref().and_then(|name| self.styles.get(name));
                pass.set_pipeline(styled.unwrap_or(&self.windows));
                pass.set_bind_group(1, *bind, &[]);
                pass.draw(0..4, 0..1);
            }
        }
        encoder.copy_texture_to_buffer(
            wgpu::TexelCopyTextureInfo {
                texture: &self.output,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            wgpu::TexelCopyBufferInfo {
                buffer: &self.readback,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(self.padded_row),
                    rows_per_image: None,
                },
            },
            wgpu::Extent3d {
                width: self.width,
                height: self.height,
                depth_or_array_layers: 1,
            },
        );
        if let Some(t) = &self.timer {
            encoder.resolve_query_set(&t.set, 0..2, &t.resolve, 0);
            encoder.copy_buffer_to_buffer(&t.resolve, 0, &t.read, 0, 2 * wgpu::QUERY_SIZE as u64);
        }
        q.submit([encoder.finish()]);
    }

    /// Draws the last composited frame onto `target` (a window's surface texture, of
    /// `format`), stretched to its size. Call after [`Compositor::render`].
    pub fn present(&mut self, target: &wgpu::TextureView, format: wgpu::TextureFormat) {
        if self.blit.as_ref().is_none_or(|(f, _, _)| *f != format) {
            let device = &self.gpu.device;
            let pipe = pipeline(
                device,
                &self.shader,
                ("present", &self.window_pipeline_layout),
                ("vs_window", "fs_window"),
                wgpu::PrimitiveTopology::TriangleStrip,
                (format, None),
                None,
            );
            let uniform = uniform_buffer::<WindowUniform>(device, "present uniform");
            self.gpu.queue.write_buffer(
                &uniform,
                0,
                bytemuck::bytes_of(&WindowUniform {
                    rect: [0.0, 0.0, self.width as f32, self.height as f32],
                    alpha: 1.0,
                    bgra: 0.0,
                    opaque: 1.0,
                    pad: 0.0,
                }),
            );
            let output = Image {
                texture: self.output.clone(),
                width: self.width,
                height: self.height,
                format: FORMAT,
            };
            let bind = self.window_bind(&uniform, &output);
            self.blit = Some((format, pipe, bind));
        }
        let (_, pipe, bind) = self.blit.as_ref().expect("made above");
        let mut encoder = self
            .gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("present"),
            });
        {
            let mut pass = clear_pass(&mut encoder, "present", target, None, None);
            pass.set_pipeline(pipe);
            pass.set_bind_group(0, &self.frame_bind, &[]);
            pass.set_bind_group(1, bind, &[]);
            pass.draw(0..4, 0..1);
        }
        self.gpu.queue.submit([encoder.finish()]);
    }

    /// GPU time of the last composition pass read back, where the adapter has timestamp
    /// queries (`None` where it has not).
    pub fn gpu_time(&self) -> Option<Duration> {
        self.gpu_time
    }

    /// Copies the last rendered frame (RGBA8, `width * 4` bytes a row) into `out`, which must
    /// hold `width * height * 4` bytes (a loaned `render.output` slot, typically).
    pub fn read_back(&mut self, out: &mut [u8]) -> Result<(), RenderError> {
        let row = self.width as usize * 4;
        let need = row * self.height as usize;
        if out.len() < need {
            return Err(RenderError::Device(format!(
                "read_back needs {need} bytes, got {}",
                out.len()
            )));
        }
        let slice = self.readback.slice(..);
        let (tx, rx) = std::sync::mpsc::channel();
        let tx2 = tx.clone();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        let mut waiting = 1;
        if let Some(t) = &self.timer {
            t.read.slice(..).map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx2.send(r);
            });
            waiting += 1;
        }
        self.gpu
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| RenderError::Poll(e.to_string()))?;
        for _ in 0..waiting {
            rx.recv()
                .map_err(|e| RenderError::Poll(e.to_string()))?
                .map_err(|e| RenderError::Poll(e.to_string()))?;
        }
        if let Some(t) = &self.timer {
            let ticks = {
                let data = t
                    .read
                    .slice(..)
                    .get_mapped_range()
                    .map_err(|e| RenderError::Poll(e.to_string()))?;
                let stamp = |i: usize| {
                    u64::from_le_bytes(data[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]))
                };
                stamp(1).saturating_sub(stamp(0))
            };
            t.read.unmap();
            self.gpu_time = Some(Duration::from_nanos((ticks as f64 * t.period) as u64));
        }
        {
            let data = slice
                .get_mapped_range()
                .map_err(|e| RenderError::Poll(e.to_string()))?;
            for (y, dst) in out[..need].chunks_exact_mut(row).enumerate() {
                let at = y * self.padded_row as usize;
                dst.copy_from_slice(&data[at..at + row]);
            }
        }
        self.readback.unmap();
        Ok(())
    }
}
