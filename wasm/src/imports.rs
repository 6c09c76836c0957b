//! The API as WebAssembly sees it: each function's signature, derived from its definition in
//! [`gos_dna::api::API`], and the check of a module's imports against a job's grant.
//!
//! | API parameter kind | WebAssembly parameters |
//! |---|---|
//! | integer in the `i32` range (coordinates) | `i32` |
//! | integer beyond it | `i64` |
//! | id (a texture id; 0 = the job's own) | `i64` (its bits) |
//! | text, name | `i32` pointer and `i32` length of UTF-8 bytes in the module's exported `memory` |
//!
//! No function returns a value: a call the executor refuses or cannot carry out traps (the
//! job ends as an error naming the call), as an uncaught `gos.ApiError` ends a Python job.
//! So `spawn_brick(x, y, texture_id)` is `(i32, i32, i64) -> ()`, `log(message)` is
//! `(i32, i32) -> ()` and `deploy_to_map(x, y, name)` is `(i32, i32, i32, i32) -> ()`.

use gos_dna::api::{self, ApiFunction, ParamKind};
use wasmtime::{ExternType, FuncType, Module, ValType};

/// A name a module chose (an import's, an export's), as messages show it: at most 64
/// characters, control characters and quotes escaped, so that a hostile module cannot break a
/// one-line reason or write to the terminal it is printed on.
pub fn shown(name: &str) -> String {
    let mut out: String = name.chars().take(64).flat_map(char::escape_debug).collect();
    if name.chars().count() > 64 {
        out.push_str("...");
    }
    out
}

/// The WebAssembly parameter types of `f`, in order.
pub fn params_of(f: &ApiFunction) -> Vec<ValType> {
    f.params
        .iter()
        .flat_map(|p| match p.kind {
            ParamKind::Int { min, max } if min >= i32::MIN as i64 && max <= i32::MAX as i64 => {
                vec![ValType::I32]
            }
            ParamKind::Int { .. } | ParamKind::Id => vec![ValType::I64],
            ParamKind::Text { .. } | ParamKind::Name => vec![ValType::I32, ValType::I32],
        })
        .collect()
}

/// `f`'s signature as text, `(i32, i32, i64) -> ()`.
pub fn signature_of(f: &ApiFunction) -> String {
    describe(&params_of(f), &[])
}

/// A signature as text: `(i32, i64) -> (f64)`.
pub fn describe(params: &[ValType], results: &[ValType]) -> String {
    let list = |t: &[ValType]| {
        t.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("({}) -> ({})", list(params), list(results))
}

/// The API functions `module` imports, each checked: from the module `gos`, known, granted by
/// `mask`, with the API's signature.
///
/// # Errors
/// One line naming the first import that is not so, and what to do.
pub fn check(module: &Module, mask: u64) -> Result<Vec<&'static ApiFunction>, String> {
    let mut used = Vec::new();
    for import in module.imports() {
        let (m, name) = (shown(import.module()), shown(import.name()));
        let (m, name) = (m.as_str(), name.as_str());
        if m != api::MODULE {
            return Err(format!(
                "the module imports {m}.{name}, which the sandbox does not provide: a module may \
                 import only the API ({}), nothing else (no WASI: no files, clocks, environment or network)",
                all()
            ));
        }
        let Some(f) = api::function(import.name()).filter(|_| import.name() == name) else {
            return Err(format!(
                "the module imports {m}.{name}, which the API does not have (it has {})",
                all()
            ));
        };
        let ExternType::Func(ty) = import.ty() else {
            return Err(format!(
                "the module imports {m}.{name} as something other than a function"
            ));
        };
        if f.bit & mask == 0 {
            return Err(format!(
                "the module imports {m}.{name}, which this job is not granted (its allowed_api_mask \
                 lacks bit {:#x}; grant {name} to run it)",
                f.bit
            ));
        }
        let want = params_of(f);
        if !same(&ty, &want) {
            return Err(format!(
                "the module imports {m}.{name} as {}, but the API's {name} is {}",
                describe(
                    &ty.params().collect::<Vec<_>>(),
                    &ty.results().collect::<Vec<_>>()
                ),
                describe(&want, &[])
            ));
        }
        if !used.iter().any(|u: &&ApiFunction| u.name == f.name) {
            used.push(f);
        }
    }
    Ok(used)
}

fn same(ty: &FuncType, params: &[ValType]) -> bool {
    ty.results().len() == 0
        && ty.params().len() == params.len()
        && ty.params().zip(params).all(|(a, b)| ValType::eq(&a, b))
}

fn all() -> String {
    api::API
        .iter()
        .map(|f| format!("{}.{} {}", api::MODULE, f.name, signature_of(f)))
        .collect::<Vec<_>>()
        .join(", ")
}
