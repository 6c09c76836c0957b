//! Hybrid DNA, run as the untrusted code it is.
//!
//! Hybrid DNA arrives inside RTS assets and evolved genomes, so a job is hostile by default.
//! [`Runner::run`] starts it under kernel isolation built from well-kept tools:
//!
//! 1. **bubblewrap** ([`run`]): new user, mount, PID, IPC, network, UTS and cgroup namespaces;
//!    a root that holds only read-only binds of the interpreter's folders, a minimal `/dev`
//!    (none of the host's `/dev/shm`, so none of the bus) and a private tmpfs work folder of a
//!    fixed size; no host process, no network; the sandbox dies with its runner.
//! 2. **Landlock, seccomp, rlimits, `no_new_privs`** ([`confine`]), raised by this crate's
//!    `gos-dna-sandbox confine` inside the namespaces just before the interpreter starts.
//!
//! The job reaches the world only through the injected [`api`], one checked JSON line per
//! call on a channel of its own; the runner's caller (the DNA executor) carries the call out.
//! [`probe`] says which layers the kernel offers; an executor that lacks one refuses to run
//! unless its operator chooses the weaker mode.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod api;
pub mod cli;
pub mod confine;
pub mod limits;
pub mod probe;
pub mod relay;
pub mod run;

pub use api::{ApiCall, ApiFunction, API};
pub use gos_layouts::values::{self, WasmValue};
pub use limits::{Limit, Limits, Status};
pub use probe::{probe, Probe};
pub use run::{Isolation, Job, Outcome, Runner};
