//! The gos-bus render node's GPU side: a wgpu device (Vulkan, or GL where Vulkan does not
//! work), and a compositor that draws pixel windows by z-order, position and zoom over the
//! neural terrain (a heightmap-displaced mesh in perspective, [`terrain`]), into an output
//! texture that is read back to the CPU.
//!
//! It stays within downlevel limits (render pipelines only, no compute), so the same code runs
//! on Mesa's lavapipe, on discrete GPUs through Vulkan, and through GL (see `../shared/GPU.md`).
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod compositor;
pub mod glyphs;
mod gpu;
pub mod inputs;
pub mod styles;
pub mod terrain;
pub mod text;
#[cfg(feature = "window")]
pub mod window;

pub use compositor::{Compositor, Dirty, HeightFormat, PixelFormat, Placement, DEFAULT_BRICK_LIFT};
pub use gpu::{quiet_wayland_probe, Backend, Gpu};

/// Errors of the render node.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// No adapter for the requested backend.
    #[error("no GPU adapter for backend {backend}: {reason}; install Mesa's Vulkan driver (apt-get install mesa-vulkan-drivers) or try --backend gl")]
    NoAdapter {
        /// The backend asked for.
        backend: String,
        /// What wgpu said.
        reason: String,
    },
    /// The device could not be created.
    #[error("cannot open the GPU device: {0}")]
    Device(String),
    /// A frame whose sizes do not fit its pixels.
    #[error("bad frame from source {source_id}: {reason}")]
    BadFrame {
        /// The source.
        source_id: u64,
        /// What is wrong.
        reason: String,
    },
    /// An RTS texture that cannot be shown.
    #[error("bad RTS texture {texture_id:#018x}: {reason}")]
    BadTexture {
        /// The texture id.
        texture_id: u64,
        /// What is wrong.
        reason: String,
    },
    /// A brick placement that cannot be laid.
    #[error("bad brick placement at map cell ({x}, {y}): {reason}")]
    BadBrick {
        /// The cell, x.
        x: i32,
        /// The cell, y.
        y: i32,
        /// What is wrong.
        reason: String,
    },
    /// Waiting for the GPU failed.
    #[error("GPU wait failed: {0}")]
    Poll(String),
}
