//! An on-screen window showing the composited frames (Cargo feature `window`, off by default).
//!
//! The node's loop stays in charge: [`Viewer::pump`] handles the window's pending events
//! without blocking (winit's `pump_app_events`), and [`Viewer::present`] draws the last
//! composited frame onto the window's surface, stretched to the window's size. Closing the
//! window, or Escape or `q` in it, stops the node.

use crate::{Backend, Compositor, Gpu, RenderError};
use std::sync::Arc;
use std::time::Duration;
use winit::application::ApplicationHandler;
use winit::event::WindowEvent;
use winit::event_loop::{ActiveEventLoop, EventLoop};
use winit::keyboard::{Key, NamedKey};
use winit::platform::pump_events::{EventLoopExtPumpEvents, PumpStatus};
use winit::window::{Window, WindowAttributes, WindowId};

#[derive(Default)]
struct App {
    attributes: WindowAttributes,
    window: Option<Arc<Window>>,
    error: Option<String>,
    closed: bool,
    resized: Option<(u32, u32)>,
}

impl ApplicationHandler for App {
    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        if self.window.is_none() {
            match event_loop.create_window(self.attributes.clone()) {
                Ok(w) => self.window = Some(Arc::new(w)),
                Err(e) => self.error = Some(e.to_string()),
            }
        }
    }

    fn window_event(&mut self, _: &ActiveEventLoop, _: WindowId, event: WindowEvent) {
        match event {
            WindowEvent::CloseRequested => self.closed = true,
            WindowEvent::Resized(size) => self.resized = Some((size.width, size.height)),
            WindowEvent::KeyboardInput { event, .. } if event.state.is_pressed() => {
                match event.logical_key {
                    Key::Named(NamedKey::Escape) => self.closed = true,
                    Key::Character(c) if c == "q" => self.closed = true,
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

/// A window, its surface, and the GPU opened to present to it.
pub struct Viewer {
    event_loop: EventLoop<()>,
    app: App,
    surface: wgpu::Surface<'static>,
    config: wgpu::SurfaceConfiguration,
    presented: u64,
}

impl Viewer {
    /// Opens a `width` x `height` window titled `title` and the GPU of `backend` that can
    /// present to it. Fails with the reason where there is no display.
    pub fn open(
        title: &str,
        width: u32,
        height: u32,
        backend: Backend,
    ) -> Result<(Viewer, Gpu), RenderError> {
        let no_window = |e: String| {
            RenderError::Device(format!(
                "cannot open a window: {e}; set DISPLAY or WAYLAND_DISPLAY, or run without --window"
            ))
        };
        let mut event_loop = EventLoop::new().map_err(|e| no_window(e.to_string()))?;
        let mut app = App {
            attributes: Window::default_attributes()
                .with_title(title)
                .with_inner_size(winit::dpi::PhysicalSize::new(width, height)),
            ..Default::default()
        };
        // The first events create the window (`resumed`).
        for _ in 0..100 {
            if app.window.is_some() || app.error.is_some() {
                break;
            }
            if let PumpStatus::Exit(code) =
                event_loop.pump_app_events(Some(Duration::from_millis(10)), &mut app)
            {
                return Err(no_window(format!("the event loop exited ({code})")));
            }
        }
        let window = match (app.window.clone(), app.error.take()) {
            (Some(w), _) => w,
            (None, Some(e)) => return Err(no_window(e)),
            (None, None) => return Err(no_window("no window was created".into())),
        };
        let desc = wgpu::InstanceDescriptor::new_with_display_handle(Box::new(
            event_loop.owned_display_handle(),
        ));
        let instance = Gpu::instance(backend, desc);
        let surface = instance
            .create_surface(window.clone())
            .map_err(|e| no_window(e.to_string()))?;
        let gpu = Gpu::on(instance, backend, Some(&surface))?;
        let caps = surface.get_capabilities(&gpu.adapter);
        // A linear format shows the same colours as the snapshots.
        let format = caps
            .formats
            .iter()
            .copied()
            .find(|f| !f.is_srgb())
            .or_else(|| caps.formats.first().copied())
            .ok_or_else(|| no_window("the surface offers no format".into()))?;
        let size = window.inner_size();
        let config = wgpu::SurfaceConfiguration {
            usage: wgpu::TextureUsages::RENDER_ATTACHMENT,
            format,
            color_space: wgpu::SurfaceColorSpace::Auto,
            width: size.width.max(1),
            height: size.height.max(1),
            present_mode: wgpu::PresentMode::AutoVsync,
            desired_maximum_frame_latency: 2,
            alpha_mode: caps.alpha_modes.first().copied().unwrap_or_default(),
            view_formats: vec![],
        };
        surface.configure(&gpu.device, &config);
        Ok((
            Viewer {
                event_loop,
                app,
                surface,
                config,
                presented: 0,
            },
            gpu,
        ))
    }

    /// Handles the window's pending events; `false` once the window was closed.
    pub fn pump(&mut self) -> bool {
        if let PumpStatus::Exit(_) = self
            .event_loop
            .pump_app_events(Some(Duration::ZERO), &mut self.app)
        {
            self.app.closed = true;
        }
        !self.app.closed
    }

    /// Draws the last frame `c` composited onto the window.
    pub fn present(&mut self, c: &mut Compositor) -> Result<(), RenderError> {
        if let Some((w, h)) = self.app.resized.take() {
            self.config.width = w.max(1);
            self.config.height = h.max(1);
            self.surface.configure(&c.gpu().device, &self.config);
        }
        let frame = match self.surface.get_current_texture() {
            wgpu::CurrentSurfaceTexture::Success(t)
            | wgpu::CurrentSurfaceTexture::Suboptimal(t) => t,
            wgpu::CurrentSurfaceTexture::Outdated | wgpu::CurrentSurfaceTexture::Lost => {
                // Resized or lost: configure again, show the next frame.
                self.surface.configure(&c.gpu().device, &self.config);
                return Ok(());
            }
            wgpu::CurrentSurfaceTexture::Timeout | wgpu::CurrentSurfaceTexture::Occluded => {
                return Ok(())
            }
            wgpu::CurrentSurfaceTexture::Validation => {
                return Err(RenderError::Device(
                    "the window's surface is not valid".into(),
                ))
            }
        };
        let view = frame.texture.create_view(&Default::default());
        c.present(&view, self.config.format);
        c.gpu().queue.present(frame);
        self.presented += 1;
        Ok(())
    }

    /// Frames presented so far.
    pub fn presented(&self) -> u64 {
        self.presented
    }
}
