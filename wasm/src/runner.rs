//! The engine, the module cache, and one job's run.

use crate::host::{self, HostState, Limiter, WasmHandler};
use crate::imports::{self, shown};
use gos_dna::limits::{Limit, Limits, Status};
use gos_dna::{Outcome, WasmValue};
use gos_layouts::records::DNA_MAX_VALUES;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use wasmtime::{Config, Engine, ExternType, FuncType, Linker, Module, Store, Trap, Val, ValType};

/// How often the engine's epoch advances: the resolution of the time limit.
pub const TICK: Duration = Duration::from_millis(5);
/// Largest module accepted, in bytes.
pub const MAX_MODULE: usize = 16 << 20;
/// Modules kept compiled (the oldest is dropped first)...
pub const CACHE_MODULES: usize = 64;
/// ...and the most bytes of module (their binary size) kept compiled together.
pub const CACHE_BYTES: usize = 128 << 20;
/// The entry points tried, in order, when a job names no export.
pub const ENTRY_POINTS: [&str; 3] = ["run", "main", "_start"];

/// What bounds one module's run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WasmLimits {
    /// Wall-clock limit (from instantiation, its start function included, to the export's
    /// return), kept to [`TICK`].
    pub wall: Duration,
    /// Most bytes of linear memory (`memory.grow` past it returns -1; a module that declares
    /// more is not instantiated).
    pub memory: usize,
    /// Most elements per table.
    pub table_elements: usize,
    /// Most API calls.
    pub max_calls: u32,
}

impl Default for WasmLimits {
    /// 30 s, 64 MiB, 100,000 table elements, the scripts' call bound.
    fn default() -> Self {
        WasmLimits {
            wall: Duration::from_secs(30),
            memory: 64 << 20,
            table_elements: 100_000,
            max_calls: Limits::default().max_calls,
        }
    }
}

/// One call of one module's export.
#[derive(Debug, Clone)]
pub struct WasmJob<'a> {
    /// The module, binary format.
    pub module: &'a [u8],
    /// The export to call; empty: the entry point (see [`entry`]).
    pub export: &'a str,
    /// Its arguments, of the export's parameter types.
    pub args: &'a [WasmValue],
    /// The `DnaJob::allowed_api_mask` bits its imports may use.
    pub api_mask: u64,
    /// Its limits.
    pub limits: WasmLimits,
}

/// Compiles modules (once each, cached by SHA-256: at most [`CACHE_MODULES`] of them and
/// [`CACHE_BYTES`] in all) and runs jobs. One per process.
pub struct WasmRunner {
    engine: Engine,
    cache: Mutex<Cache>,
    ticker: Mutex<Option<std::thread::JoinHandle<()>>>,
    clock: Arc<Clock>,
    compiled: AtomicU64,
    hits: AtomicU64,
}

/// What the ticker thread waits on: the jobs running now (it ticks only while one does, so an
/// idle worker uses no CPU), and whether the runner is gone.
#[derive(Default)]
struct Clock {
    state: Mutex<(usize, bool)>,
    changed: Condvar,
}

/// Counts one running job while it lives.
struct Running<'a>(&'a Clock);

impl<'a> Running<'a> {
    fn new(clock: &'a Clock) -> Running<'a> {
        lock(&clock.state).0 += 1;
        clock.changed.notify_all();
        Running(clock)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        lock(&self.0.state).0 -= 1;
    }
}

#[derive(Default)]
struct Cache {
    modules: HashMap<[u8; 32], Module>,
    order: VecDeque<([u8; 32], usize)>,
    bytes: usize,
}

impl WasmRunner {
    /// An engine with epoch interruption, and no copy-on-write memory images (they need
    /// `memfd_create`, which the sandbox's seccomp filter refuses).
    ///
    /// # Errors
    /// Wasmtime cannot run on this machine (its compiler does not support the CPU).
    pub fn new() -> Result<WasmRunner, String> {
        let mut c = Config::new();
        c.epoch_interruption(true).memory_init_cow(false);
        let engine = Engine::new(&c).map_err(|e| format!("cannot start wasmtime: {e:#}"))?;
        Ok(WasmRunner {
            engine,
            cache: Mutex::default(),
            ticker: Mutex::default(),
            clock: Arc::default(),
            compiled: AtomicU64::new(0),
            hits: AtomicU64::new(0),
        })
    }

    /// Modules compiled and jobs that found theirs in the cache.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.compiled.load(Ordering::Relaxed),
            self.hits.load(Ordering::Relaxed),
        )
    }

    /// Compiles, instantiates and calls a module of one empty function, so that whatever the
    /// engine sets up on first use (signal handlers, code memory) is set up now, before the
    /// process confines itself. Starts no thread.
    ///
    /// # Errors
    /// The engine cannot run code here.
    pub fn warm_up(&self) -> Result<(), String> {
        // (module (func (export "run")))
        const EMPTY: &[u8] = b"\0asm\x01\0\0\0\x01\x04\x01\x60\0\0\x03\x02\x01\0\x07\x07\x01\x03run\0\0\x0a\x04\x01\x02\0\x0b";
        let module = Module::new(&self.engine, EMPTY).map_err(|e| format!("wasmtime: {e:#}"))?;
        let mut store = Store::new(&self.engine, ());
        store.set_epoch_deadline(u64::MAX / 2);
        let instance = Linker::new(&self.engine)
            .instantiate(&mut store, &module)
            .map_err(|e| format!("wasmtime: {e:#}"))?;
        let run = instance
            .get_typed_func::<(), ()>(&mut store, "run")
            .map_err(|e| format!("wasmtime: {e:#}"))?;
        run.call(&mut store, ())
            .map_err(|e| format!("wasmtime: {e:#}"))
    }

    /// The compiled module of `bytes`, from the cache when it was compiled before (the
    /// second value says so).
    ///
    /// # Errors
    /// Larger than [`MAX_MODULE`], or not a valid module (one line).
    pub fn module(&self, bytes: &[u8]) -> Result<(Module, bool), String> {
        if bytes.len() > MAX_MODULE {
            return Err(format!(
                "the module is {} bytes; at most {MAX_MODULE} are run",
                bytes.len()
            ));
        }
        let key: [u8; 32] = Sha256::digest(bytes).into();
        if let Some(m) = lock(&self.cache).modules.get(&key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok((m.clone(), true));
        }
        let m = Module::new(&self.engine, bytes)
            .map_err(|e| format!("not a valid WebAssembly module: {}", cause(&e)))?;
        self.compiled.fetch_add(1, Ordering::Relaxed);
        let mut cache = lock(&self.cache);
        if cache.modules.insert(key, m.clone()).is_none() {
            cache.order.push_back((key, bytes.len()));
            cache.bytes += bytes.len();
        }
        while cache.order.len() > CACHE_MODULES || cache.bytes > CACHE_BYTES {
            let Some((old, size)) = cache.order.pop_front() else {
                break;
            };
            cache.modules.remove(&old);
            cache.bytes -= size;
        }
        Ok((m, false))
    }

    /// Advances the epoch every [`TICK`] while a job runs, from a thread of its own (started
    /// on the first job; it sleeps on a condition variable while none runs).
    fn start_ticker(&self) {
        let mut t = lock(&self.ticker);
        if t.is_none() {
            let (engine, clock) = (self.engine.clone(), self.clock.clone());
            *t = Some(std::thread::spawn(move || loop {
                {
                    let mut s = lock(&clock.state);
                    while s.0 == 0 && !s.1 {
                        s = clock
                            .changed
                            .wait(s)
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                    }
                    if s.1 {
                        return;
                    }
                }
                std::thread::sleep(TICK);
                engine.increment_epoch();
            }));
        }
    }

    /// Runs `job`, its API calls carried out by `handler`. Never fails: a module that cannot
    /// run is a [`Status::Rejected`] outcome naming why; a trap is an error; the time limit a
    /// timeout. The exit code is 0 for ok, 1 for an error or a timeout, -1 for rejected.
    pub fn run(&self, job: &WasmJob<'_>, handler: &mut WasmHandler) -> Outcome {
        self.run_cached(job, handler).0
    }

    /// As [`WasmRunner::run`], and whether the module came from the cache (None when it could
    /// not be compiled).
    pub fn run_cached(
        &self,
        job: &WasmJob<'_>,
        handler: &mut WasmHandler,
    ) -> (Outcome, Option<bool>) {
        let mut cached = None;
        let o = self.run_inner(job, handler, &mut cached);
        (o, cached)
    }

    fn run_inner(
        &self,
        job: &WasmJob<'_>,
        handler: &mut WasmHandler,
        cached: &mut Option<bool>,
    ) -> Outcome {
        let start = Instant::now();
        // The output of a module is the one line that says how it ended (what it logs goes
        // to the executor, as `log` calls).
        let finish = |mut o: Outcome| {
            o.wall = start.elapsed();
            o.output = format!("{}\n", o.reason).into_bytes();
            o
        };
        let prepared = self.module(job.module).and_then(|(module, hit)| {
            *cached = Some(hit);
            let functions = imports::check(&module, job.api_mask)?;
            let (name, ty) = entry(&module, job.export)?;
            check_call(&name, &ty, job.args)?;
            Ok((module, functions, name, ty))
        });
        let (module, functions, name, ty) = match prepared {
            Ok(p) => p,
            Err(why) => return finish(Outcome::rejected(why)),
        };
        self.start_ticker();
        let _running = Running::new(&self.clock);
        let state = HostState {
            mask: job.api_mask,
            calls: 0,
            refused: 0,
            max_calls: job.limits.max_calls,
            handler: std::mem::replace(handler, Box::new(|_| Err("no handler".into()))),
            limiter: Limiter {
                memory: job.limits.memory,
                table_elements: job.limits.table_elements,
                used: 0,
                refused_memory: false,
            },
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(job.limits.wall.as_nanos().div_ceil(TICK.as_nanos()) as u64 + 1);
        store.epoch_deadline_trap();
        let params: Vec<Val> = job.args.iter().map(|&a| to_val(a)).collect();
        let mut results: Vec<Val> = ty.results().map(|_| Val::I32(0)).collect();
        let ran = (|| {
            let mut linker = Linker::new(&self.engine);
            host::define(&mut linker, &functions)?;
            let instance = linker.instantiate(&mut store, &module)?;
            let f = instance.get_func(&mut store, &name).ok_or_else(|| {
                wasmtime::Error::msg(format!("the export {} went away", shown(&name)))
            })?;
            f.call(&mut store, &params, &mut results)
        })();
        let state = store.into_data();
        *handler = state.handler;
        let call = format!(
            "{}({})",
            shown(&name),
            job.args
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut o = Outcome::rejected(String::new());
        o.calls = state.calls;
        o.refused = state.refused;
        match ran {
            Ok(()) => {
                o.values = results.iter().filter_map(from_val).collect();
                o.status = Status::Ok;
                o.exit_code = 0;
                o.reason = match &o.values[..] {
                    [] => format!("{call} returned nothing"),
                    [v] => format!("{call} returned {v}"),
                    vs => format!(
                        "{call} returned ({})",
                        vs.iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
            }
            Err(e) => {
                o.exit_code = 1;
                o.status = Status::Error;
                o.reason = match e.downcast_ref::<Trap>() {
                    Some(Trap::Interrupt) => {
                        o.status = Status::Timeout;
                        o.limit = Limit::WallTime;
                        format!(
                            "{call} ran past its time limit of {:.3} s and was stopped",
                            job.limits.wall.as_secs_f64()
                        )
                    }
                    Some(trap) => format!("{call} trapped: {trap}"),
                    // A host call's refusal, or an instantiation that failed: the cause itself,
                    // without the backtrace wasmtime wraps it in.
                    // Not a trap: instantiation failed, for want of memory when the limiter
                    // refused some (a module's own `memory.grow` failing returns -1 instead).
                    None if state.limiter.refused_memory => {
                        o.limit = Limit::Memory;
                        format!(
                            "{call}: the module needs more linear memory than its limit of {} \
                             bytes ({}; a page is 64 KiB): raise the limit",
                            job.limits.memory,
                            cause(&e)
                        )
                    }
                    None => format!("{call}: {}", cause(&e)),
                };
            }
        }
        finish(o)
    }
}

impl Drop for WasmRunner {
    fn drop(&mut self) {
        lock(&self.clock.state).1 = true;
        self.clock.changed.notify_all();
        if let Some(t) = lock(&self.ticker).take() {
            let _ = t.join();
        }
    }
}

/// The export a job calls: `export` when it names one, else the module's entry point: the
/// first of [`ENTRY_POINTS`] it exports as a function, else its one exported function without
/// parameters.
///
/// # Errors
/// No such export, not a function, or no entry point (one line listing the exports).
pub fn entry(module: &Module, export: &str) -> Result<(String, FuncType), String> {
    let funcs: Vec<(String, FuncType)> = module
        .exports()
        .filter_map(|e| match e.ty() {
            ExternType::Func(f) => Some((e.name().to_string(), f)),
            _ => None,
        })
        .collect();
    let names = || {
        let mut n: Vec<String> = funcs.iter().take(8).map(|(n, _)| shown(n)).collect();
        if funcs.len() > 8 {
            n.push(format!("and {} more", funcs.len() - 8));
        }
        if n.is_empty() {
            "no functions".into()
        } else {
            n.join(", ")
        }
    };
    if !export.is_empty() {
        return funcs
            .iter()
            .find(|(n, _)| n == export)
            .cloned()
            .ok_or_else(|| {
                format!(
                    "the module exports no function {} (it exports {})",
                    shown(export),
                    names()
                )
            });
    }
    if let Some(f) = ENTRY_POINTS
        .iter()
        .find_map(|e| funcs.iter().find(|(n, _)| n == e))
    {
        return Ok(f.clone());
    }
    let bare: Vec<_> = funcs
        .iter()
        .filter(|(_, t)| t.params().len() == 0)
        .collect();
    match bare[..] {
        [one] => Ok(one.clone()),
        _ => Err(format!(
            "the job names no export and the module has no entry point ({}, or one function \
             without parameters): name the export to call; it exports {}",
            ENTRY_POINTS.join(", "),
            names()
        )),
    }
}

/// Checks that `args` fit the export's parameters and that its results fit a `DnaResult`.
fn check_call(name: &str, ty: &FuncType, args: &[WasmValue]) -> Result<(), String> {
    let name = shown(name);
    let params: Vec<ValType> = ty.params().collect();
    let results: Vec<ValType> = ty.results().collect();
    if let Some(t) = params
        .iter()
        .chain(&results)
        .find(|t| value_type(t).is_none())
    {
        return Err(format!(
            "{name} is {}: a job carries only i32, i64, f32 and f64 values, not {t}",
            imports::describe(&params, &results)
        ));
    }
    if results.len() > DNA_MAX_VALUES {
        return Err(format!(
            "{name} returns {} values; a DnaResult carries at most {DNA_MAX_VALUES}",
            results.len()
        ));
    }
    let given: Vec<&str> = args.iter().map(|a| a.type_name()).collect();
    let wanted: Vec<&str> = params.iter().filter_map(value_type).collect();
    if given != wanted {
        return Err(format!(
            "{name} takes ({}) but was given ({})",
            wanted.join(", "),
            given.join(", ")
        ));
    }
    Ok(())
}

/// The name of a number type (None for vectors and references).
pub fn value_type(t: &ValType) -> Option<&'static str> {
    Some(match t {
        ValType::I32 => "i32",
        ValType::I64 => "i64",
        ValType::F32 => "f32",
        ValType::F64 => "f64",
        _ => return None,
    })
}

fn to_val(v: WasmValue) -> Val {
    match v {
        WasmValue::I32(x) => Val::I32(x),
        WasmValue::I64(x) => Val::I64(x),
        WasmValue::F32(x) => Val::F32(x.to_bits()),
        WasmValue::F64(x) => Val::F64(x.to_bits()),
    }
}

fn from_val(v: &Val) -> Option<WasmValue> {
    Some(match *v {
        Val::I32(x) => WasmValue::I32(x),
        Val::I64(x) => WasmValue::I64(x),
        Val::F32(x) => WasmValue::F32(f32::from_bits(x)),
        Val::F64(x) => WasmValue::F64(f64::from_bits(x)),
        _ => return None,
    })
}

/// The innermost cause of an error, on one line.
fn cause(e: &wasmtime::Error) -> String {
    e.root_cause()
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
