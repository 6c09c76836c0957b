//! Composition: one GPU texture per source, drawn by z-order, position and zoom over the
//! terrain background, into an RGBA8 output texture that is read back into a caller's buffer.

use crate::{Gpu, RenderError};
use std::collections::HashMap;

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
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct WindowUniform {
    rect: [f32; 4],
    alpha: f32,
    pad: [f32; 3],
}

struct Source {
    texture: wgpu::Texture,
    width: u32,
    height: u32,
    uniform: wgpu::Buffer,
    bind: wgpu::BindGroup,
    placement: Placement,
}

/// The compositor: pipelines, output target, readback buffer and the sources' textures.
pub struct Compositor {
    gpu: Gpu,
    width: u32,
    height: u32,
    terrain: wgpu::RenderPipeline,
    windows: wgpu::RenderPipeline,
    frame_uniform: wgpu::Buffer,
    frame_bind: wgpu::BindGroup,
    window_layout: wgpu::BindGroupLayout,
    output: wgpu::Texture,
    readback: wgpu::Buffer,
    padded_row: u32,
    sources: HashMap<u64, Source>,
    time: f32,
}

const FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8Unorm;

/// An RGBA8 2D texture of one mip level.
fn texture_2d(
    device: &wgpu::Device,
    label: &str,
    width: u32,
    height: u32,
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
        format: FORMAT,
        usage,
        view_formats: &[],
    })
}

fn texture_entry(binding: u32) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::FRAGMENT,
        ty: wgpu::BindingType::Texture {
            sample_type: wgpu::TextureSampleType::Float { filterable: true },
            view_dimension: wgpu::TextureViewDimension::D2,
            multisampled: false,
        },
        count: None,
    }
}

fn uniform_entry(binding: u32) -> wgpu::BindGroupLayoutEntry {
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
                texture_entry(1),
                wgpu::BindGroupLayoutEntry {
                    binding: 2,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
                    count: None,
                },
            ],
        });
        let window_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("window"),
            entries: &[uniform_entry(0), texture_entry(1)],
        });
        let frame_uniform = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("frame uniform"),
            size: std::mem::size_of::<FrameUniform>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
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
        let frame_bind = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("frame"),
            layout: &frame_layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: frame_uniform.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: wgpu::BindingResource::TextureView(
                        &heightmap.create_view(&Default::default()),
                    ),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: wgpu::BindingResource::Sampler(&sampler),
                },
            ],
        });
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
        let pipeline = |label: &str,
                        layout: &wgpu::PipelineLayout,
                        vs: &str,
                        fs: &str,
                        topology: wgpu::PrimitiveTopology,
                        blend: Option<wgpu::BlendState>| {
            device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
                label: Some(label),
                layout: Some(layout),
                vertex: wgpu::VertexState {
                    module: &shader,
                    entry_point: Some(vs),
                    compilation_options: Default::default(),
                    buffers: &[],
                },
                fragment: Some(wgpu::FragmentState {
                    module: &shader,
                    entry_point: Some(fs),
                    compilation_options: Default::default(),
                    targets: &[Some(wgpu::ColorTargetState {
                        format: FORMAT,
                        blend,
                        write_mask: wgpu::ColorWrites::ALL,
                    })],
                }),
                primitive: wgpu::PrimitiveState {
                    topology,
                    ..Default::default()
                },
                depth_stencil: None,
                multisample: Default::default(),
                multiview_mask: None,
                cache: None,
            })
        };
        let terrain = pipeline(
            "terrain",
            &terrain_layout,
            "vs_full",
            "fs_terrain",
            wgpu::PrimitiveTopology::TriangleList,
            None,
        );
        let windows = pipeline(
            "windows",
            &window_pipeline_layout,
            "vs_window",
            "fs_window",
            wgpu::PrimitiveTopology::TriangleStrip,
            Some(wgpu::BlendState::ALPHA_BLENDING),
        );
        let output = texture_2d(
            device,
            "output",
            width,
            height,
            wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
        );
        let padded_row = (width * 4).next_multiple_of(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT);
        let readback = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: padded_row as u64 * height as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Ok(Compositor {
            gpu,
            width,
            height,
            terrain,
            windows,
            frame_uniform,
            frame_bind,
            window_layout,
            output,
            readback,
            padded_row,
            sources: HashMap::new(),
            time: 0.0,
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

    /// Uploads the pixels of `source_id` (RGBA8, rows `stride` bytes apart) straight from
    /// `pixels` (a shared-memory slot, typically), the whole frame or only `dirty`. The source's
    /// texture is re-created when its size changes. A frame whose sizes do not fit its pixels is
    /// refused with the reason.
    pub fn upload(
        &mut self,
        source_id: u64,
        width: u32,
        height: u32,
        stride: u32,
        pixels: &[u8],
        dirty: Option<Dirty>,
    ) -> Result<(), RenderError> {
        let bad = |reason: String| RenderError::BadFrame { source_id, reason };
        let max = self.gpu.device.limits().max_texture_dimension_2d;
        if width == 0 || height == 0 || width > max || height > max {
            return Err(bad(format!(
                "size {width}x{height} is not within 1..={max}"
            )));
        }
        let row = width as u64 * 4;
        if (stride as u64) < row {
            return Err(bad(format!(
                "stride {stride} is shorter than a row of {row} bytes"
            )));
        }
        let need = stride as u64 * (height as u64 - 1) + row;
        if (pixels.len() as u64) < need {
            return Err(bad(format!(
                "{width}x{height} with stride {stride} needs {need} bytes, the frame has {}",
                pixels.len()
            )));
        }
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
        let recreate = self
            .sources
            .get(&source_id)
            .is_none_or(|s| (s.width, s.height) != (width, height));
        if recreate {
            let placement = self.sources.get(&source_id).map(|s| s.placement);
            let source = self.make_source(width, height, placement);
            self.sources.insert(source_id, source);
            if dirty.is_some() {
                // A new texture has no old pixels to keep: upload everything.
                return self.upload(source_id, width, height, stride, pixels, None);
            }
        }
        let texture = &self.sources[&source_id].texture;
        let offset = d.y as usize * stride as usize + d.x as usize * 4;
        self.gpu.queue.write_texture(
            wgpu::TexelCopyTextureInfo {
                texture,
                mip_level: 0,
                origin: wgpu::Origin3d {
                    x: d.x,
                    y: d.y,
                    z: 0,
                },
                aspect: wgpu::TextureAspect::All,
            },
            &pixels[offset..],
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(stride),
                rows_per_image: None,
            },
            wgpu::Extent3d {
                width: d.w,
                height: d.h,
                depth_or_array_layers: 1,
            },
        );
        Ok(())
    }

    fn make_source(&self, width: u32, height: u32, placement: Option<Placement>) -> Source {
        let device = &self.gpu.device;
        let texture = texture_2d(
            device,
            "window",
            width,
            height,
            wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
        );
        let uniform = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("window uniform"),
            size: std::mem::size_of::<WindowUniform>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let bind = device.create_bind_group(&wgpu::BindGroupDescriptor {
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
                        &texture.create_view(&Default::default()),
                    ),
                },
            ],
        });
        Source {
            texture,
            width,
            height,
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

    /// Places the window of `source_id` (ignored until the source has uploaded pixels).
    pub fn place(&mut self, source_id: u64, placement: Placement) {
        if let Some(s) = self.sources.get_mut(&source_id) {
            s.placement = placement;
        }
    }

    /// Forgets a source.
    pub fn remove(&mut self, source_id: u64) {
        self.sources.remove(&source_id);
    }

    /// Composites every source over the terrain and copies the result for `read_back`.
    pub fn render(&mut self, time: f32) {
        self.time = time;
        let q = &self.gpu.queue;
        q.write_buffer(
            &self.frame_uniform,
            0,
            bytemuck::bytes_of(&FrameUniform {
                size: [self.width as f32, self.height as f32],
                time,
                has_heightmap: 0.0,
            }),
        );
        let mut order: Vec<&Source> = self.sources.values().collect();
        order.sort_by_key(|s| s.placement.z);
        for s in &order {
            let p = s.placement;
            q.write_buffer(
                &s.uniform,
                0,
                bytemuck::bytes_of(&WindowUniform {
                    rect: [
                        p.x as f32,
                        p.y as f32,
                        s.width as f32 * p.zoom,
                        s.height as f32 * p.zoom,
                    ],
                    alpha: p.alpha.clamp(0.0, 1.0),
                    pad: [0.0; 3],
                }),
            );
        }
        let view = self.output.create_view(&Default::default());
        let mut encoder = self
            .gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("frame"),
            });
        {
            let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("composite"),
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
            pass.set_pipeline(&self.terrain);
            pass.set_bind_group(0, &self.frame_bind, &[]);
            pass.draw(0..3, 0..1);
            pass.set_pipeline(&self.windows);
            for s in &order {
                pass.set_bind_group(1, &s.bind, &[]);
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
        q.submit([encoder.finish()]);
    }

    /// Copies the last rendered frame (RGBA8, `width * 4` bytes a row) into `out`, which must
    /// hold `width * height * 4` bytes (a loaned `render.output` slot, typically).
    pub fn read_back(&self, out: &mut [u8]) -> Result<(), RenderError> {
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
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.gpu
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| RenderError::Poll(e.to_string()))?;
        rx.recv()
            .map_err(|e| RenderError::Poll(e.to_string()))?
            .map_err(|e| RenderError::Poll(e.to_string()))?;
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
