//! What a running module's store holds, and the API's functions as host functions.

use crate::imports;
use gos_dna::api::{self, ApiCall, ApiFunction, ParamKind};
use serde_json::Value;
use wasmtime::{Caller, Extern, FuncType, Linker, ResourceLimiter, Val};

/// What carries out a checked call for a module: `Ok` lets the module go on (a value is not
/// returned to WebAssembly), `Err(why)` traps it.
pub type WasmHandler = Box<dyn FnMut(&ApiCall) -> Result<Value, String> + Send>;

/// The state of one job's store.
pub struct HostState {
    /// The job's `allowed_api_mask`.
    pub mask: u64,
    /// Calls the handler carried out.
    pub calls: u32,
    /// Calls refused (not granted, malformed, over the bound, or failed in the handler).
    pub refused: u32,
    /// Most calls a job may make.
    pub max_calls: u32,
    /// Carries out the calls.
    pub handler: WasmHandler,
    /// The memory and table limits.
    pub limiter: Limiter,
}

/// Bounds a store's linear memory (bytes, all memories together) and table elements, and
/// remembers a refused memory (so that an instantiation that fails for it is reported as
/// ended by the memory limit).
pub struct Limiter {
    /// Most bytes of linear memory.
    pub memory: usize,
    /// Most table elements per table.
    pub table_elements: usize,
    /// Bytes the store's memories hold now.
    pub used: usize,
    /// A memory's growth (or its initial size) was refused.
    pub refused_memory: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let after = self.used - current.min(self.used) + desired;
        if after > self.memory {
            self.refused_memory = true;
            return Ok(false);
        }
        self.used = after;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.table_elements)
    }

    fn instances(&self) -> usize {
        1
    }

    fn memories(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        4
    }
}

/// Defines `functions` (the module's checked imports) in `linker`.
///
/// # Errors
/// Wasmtime refused a definition (a bug: each is defined once, with its own signature).
pub fn define(
    linker: &mut Linker<HostState>,
    functions: &[&'static ApiFunction],
) -> wasmtime::Result<()> {
    for &f in functions {
        let ty = FuncType::new(linker.engine(), imports::params_of(f), []);
        linker.func_new(api::MODULE, f.name, ty, move |caller, params, _results| {
            call(caller, f, params)
        })?;
    }
    Ok(())
}

/// One host call: the arguments read (texts from the module's memory), checked as every
/// language's calls are, and handed to the handler. A refusal traps with one line.
fn call(
    mut caller: Caller<'_, HostState>,
    f: &'static ApiFunction,
    params: &[Val],
) -> wasmtime::Result<()> {
    let state = caller.data_mut();
    if state.calls + state.refused >= state.max_calls {
        state.refused += 1;
        return Err(trap(format!(
            "{}: refused: more than {} API calls",
            f.name, state.max_calls
        )));
    }
    let args = match read_args(&mut caller, f, params) {
        Ok(a) => a,
        Err(e) => {
            caller.data_mut().refused += 1;
            return Err(trap(format!("{}: refused: {e}", f.name)));
        }
    };
    let mask = caller.data().mask;
    let call = match api::parse_call(f.name, args, mask) {
        Ok(c) => c,
        Err(e) => {
            caller.data_mut().refused += 1;
            return Err(trap(format!("refused: {e}")));
        }
    };
    let state = caller.data_mut();
    match (state.handler)(&call) {
        Ok(_) => {
            state.calls += 1;
            Ok(())
        }
        Err(e) => {
            state.refused += 1;
            Err(trap(format!("{}: {e}", f.name)))
        }
    }
}

/// The call's arguments as JSON values, in the API's order.
fn read_args(
    caller: &mut Caller<'_, HostState>,
    f: &ApiFunction,
    params: &[Val],
) -> Result<Vec<Value>, String> {
    let mut it = params.iter();
    let mut next = || it.next().cloned().ok_or("too few arguments");
    let mut args = Vec::with_capacity(f.params.len());
    for p in f.params {
        args.push(match p.kind {
            ParamKind::Int { .. } => match next()? {
                Val::I32(v) => Value::from(v),
                Val::I64(v) => Value::from(v),
                _ => return Err(format!("argument {} is not an integer", p.name)),
            },
            ParamKind::Id => match next()? {
                Val::I64(v) => Value::from(v as u64),
                _ => return Err(format!("argument {} is not an i64", p.name)),
            },
            ParamKind::Text { .. } | ParamKind::Name => {
                let (Val::I32(ptr), Val::I32(len)) = (next()?, next()?) else {
                    return Err(format!("argument {} is not a pointer and a length", p.name));
                };
                Value::from(read_text(caller, p.name, ptr as u32, len as u32)?)
            }
        });
    }
    Ok(args)
}

/// `len` bytes of UTF-8 at `ptr` in the module's exported `memory`, bounds-checked.
fn read_text(
    caller: &mut Caller<'_, HostState>,
    name: &str,
    ptr: u32,
    len: u32,
) -> Result<String, String> {
    if len as usize > api::MAX_LINE {
        return Err(format!(
            "argument {name} is {len} bytes; at most {} are read",
            api::MAX_LINE
        ));
    }
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        return Err(format!(
            "argument {name} is text, and the module exports no memory to read it from"
        ));
    };
    let data = memory.data(&caller);
    let end = ptr as usize + len as usize;
    let bytes = data.get(ptr as usize..end).ok_or_else(|| {
        format!(
            "argument {name} ({len} bytes at {ptr}) lies outside the module's memory ({} bytes)",
            data.len()
        )
    })?;
    String::from_utf8(bytes.to_vec()).map_err(|_| format!("argument {name} is not UTF-8"))
}

fn trap(text: String) -> wasmtime::Error {
    wasmtime::Error::msg(text)
}
