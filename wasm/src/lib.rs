//! Hybrid DNA in WebAssembly: the Pixel Code Executor's cartridges, run in wasmtime.
//!
//! A Geometry OS cartridge is a `.rts.png` whose data is a WebAssembly module
//! ([`gos_rts::RtsFile::wasm_module`]). [`WasmRunner::run`] runs one export of it:
//!
//! - **No capability but the API.** A module may import only the functions of the injected
//!   API ([`gos_dna::api`]) under the module name [`gos_dna::api::MODULE`] (`gos`), and only
//!   those its job's `allowed_api_mask` grants; any other import (WASI included: no files,
//!   clocks, environment or network) is refused before instantiation, naming the import
//!   ([`imports`]).
//! - **Time**: epoch interruption ([`TICK`]); a job past its wall-clock limit traps and is a
//!   timeout.
//! - **Memory**: a store limit on linear memory and tables; `memory.grow` past it returns -1.
//! - **Calls**: each host call is checked by [`gos_dna::api::parse_call`] (the same check as
//!   for Python jobs: one definition, two languages) and handed to the executor's handler.
//! - Modules are compiled once and cached by SHA-256.
//!
//! `gos-dna-wasm serve` is the long-lived worker the DNA executor talks to; it confines
//! itself (Landlock with no file access, seccomp, `no_new_privs`) before its first job.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod host;
pub mod imports;
pub mod runner;

pub use runner::{WasmJob, WasmLimits, WasmRunner, TICK};
