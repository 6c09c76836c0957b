//! Choosing a backend and an adapter, and opening the device.

use crate::RenderError;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// Which graphics API to drive the GPU through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Vulkan (lavapipe on machines without a GPU).
    Vulkan,
    /// OpenGL / GLES through EGL (the NVIDIA H100 machine, see GPU.md).
    Gl,
}

impl Backend {
    /// The backend a program runs on: `option` (its `--backend`) when given, else
    /// `WGPU_BACKEND`, else Vulkan.
    ///
    /// # Errors
    /// A name [`Backend::parse`] does not know (one line, saying what to use).
    pub fn choose(option: Option<&str>) -> Result<Backend, String> {
        let name = option
            .map(str::to_string)
            .or_else(|| std::env::var("WGPU_BACKEND").ok())
            .unwrap_or_else(|| "vulkan".into());
        Backend::parse(&name).ok_or_else(|| format!("unknown backend {name:?} (use vulkan or gl)"))
    }

    /// From `--backend` or `WGPU_BACKEND`: `vulkan`/`vk` or `gl`/`gles`.
    pub fn parse(s: &str) -> Option<Backend> {
        match s.to_ascii_lowercase().as_str() {
            "vulkan" | "vk" => Some(Backend::Vulkan),
            "gl" | "gles" | "opengl" => Some(Backend::Gl),
            _ => None,
        }
    }

    fn backends(self) -> wgpu::Backends {
        match self {
            Backend::Vulkan => wgpu::Backends::VULKAN,
            Backend::Gl => wgpu::Backends::GL,
        }
    }
}

/// An open GPU device.
pub struct Gpu {
    /// The device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// What the adapter says it is.
    pub info: wgpu::AdapterInfo,
    /// The backend in use.
    pub backend: Backend,
    /// Whether the device has timestamp queries (GPU time per frame).
    pub timestamps: bool,
    errors: Arc<AtomicU64>,
    /// The adapter the device was opened on.
    pub adapter: wgpu::Adapter,
}

/// Gives a headless program a runtime folder when it has none, before the graphics driver
/// loads: Mesa's Vulkan driver looks for a Wayland display while it starts, and libwayland
/// prints "error: XDG_RUNTIME_DIR is invalid or not set in the environment." (twice) when
/// `XDG_RUNTIME_DIR` is unset. With the temporary folder there it finds no display, quietly.
///
/// Call it first thing in `main`, before any thread starts (it sets an environment variable).
pub fn quiet_wayland_probe() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
}

impl Gpu {
    /// Opens the first adapter of `backend`, with downlevel limits.
    pub fn open(backend: Backend) -> Result<Gpu, RenderError> {
        let instance = Self::instance(
            backend,
            wgpu::InstanceDescriptor::new_without_display_handle(),
        );
        Self::on(instance, backend, None)
    }

    /// An instance of `backend` from `desc`. No indirect-call validation: GL on the H100
    /// machine is 3.3 without compute shaders.
    pub(crate) fn instance(backend: Backend, mut desc: wgpu::InstanceDescriptor) -> wgpu::Instance {
        desc.backends = backend.backends();
        desc.flags = wgpu::InstanceFlags::empty();
        wgpu::Instance::new(desc)
    }

    /// Opens the first adapter of `instance` (one that can present to `surface`, if given).
    pub(crate) fn on(
        instance: wgpu::Instance,
        backend: Backend,
        surface: Option<&wgpu::Surface<'_>>,
    ) -> Result<Gpu, RenderError> {
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            compatible_surface: surface,
            force_fallback_adapter: false,
            ..Default::default()
        }))
        .map_err(|e| RenderError::NoAdapter {
            backend: format!("{backend:?}"),
            reason: e.to_string(),
        })?;
        let timestamps = adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY);
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("gos-render-node"),
            required_features: if timestamps {
                wgpu::Features::TIMESTAMP_QUERY
            } else {
                wgpu::Features::empty()
            },
            required_limits:
                wgpu::Limits::downlevel_webgl2_defaults().using_resolution(adapter.limits()),
            ..Default::default()
        }))
        .map_err(|e| RenderError::Device(e.to_string()))?;
        // A validation error is a bug of the node (every input is checked before it reaches
        // the GPU): count it, log it, keep running.
        let errors = Arc::new(AtomicU64::new(0));
        let seen = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            seen.fetch_add(1, Relaxed);
            eprintln!("gos-render-node: GPU error: {e}");
        }));
        Ok(Gpu {
            device,
            queue,
            info: adapter.get_info(),
            backend,
            timestamps,
            errors,
            adapter,
        })
    }

    /// GPU errors (validation, out of memory) seen so far; 0 unless the node has a bug.
    pub fn errors(&self) -> u64 {
        self.errors.load(Relaxed)
    }

    /// One line naming the adapter, for logs.
    pub fn describe(&self) -> String {
        format!(
            "{} ({:?}, driver {} {})",
            self.info.name, self.info.backend, self.info.driver, self.info.driver_info
        )
    }
}
