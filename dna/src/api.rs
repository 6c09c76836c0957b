//! The API injected into Hybrid DNA: one definition, checked here for every language.
//!
//! A job cannot touch the bus (its sandbox has no `/dev/shm` of the bus, no network). It asks
//! its executor instead, one call per line on its own channel: a JSON object
//! `{"call": NAME, "args": [ARG, ...]}` of at most [`MAX_LINE`] bytes. The executor checks each
//! line with [`parse_call`] (known function, granted by the job's `allowed_api_mask`, arity,
//! every argument's type and range) before anything happens, then answers one line:
//! `{"ok": VALUE}` or `{"error": "why"}`. A job makes at most its limit of calls
//! ([`crate::Limits::max_calls`]); each one after that is read and refused.
//!
//! Python jobs see the functions as builtins (and as the module [`MODULE`]), generated from
//! [`API`] by [`python_prelude`]; a WebAssembly runtime would import them from the same
//! module name. The bits are the layouts' `DNA_API_*` constants.

use gos_layouts::records::{DNA_API_DEPLOY_TO_MAP, DNA_API_LOG, DNA_API_SPAWN_BRICK};
use serde_json::Value;

/// The module name the API lives under (Python: `import gos`; WebAssembly: the import module).
pub const MODULE: &str = "gos";

/// Longest call line a job may send, in bytes (the newline excluded).
pub const MAX_LINE: usize = 4096;

/// Map and screen coordinates accepted, in pixels, on each axis.
pub const COORD_RANGE: std::ops::RangeInclusive<i64> = -1_000_000..=1_000_000;

/// What an argument may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// An integer in an inclusive range.
    Int {
        /// Smallest value.
        min: i64,
        /// Largest value.
        max: i64,
    },
    /// An unsigned 64-bit id (a texture id; 0 = the job's own texture).
    Id,
    /// Text of at most `max_chars` characters, none of them a control character.
    Text {
        /// Longest text, in characters.
        max_chars: usize,
    },
    /// A name: 1 to 64 characters of `A-Z a-z 0-9 _ . -`.
    Name,
}

/// One parameter of an API function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    /// Its name (the keyword in Python).
    pub name: &'static str,
    /// What it may be.
    pub kind: ParamKind,
    /// Its default, as a Python literal, when it may be left out.
    pub default: Option<&'static str>,
}

/// One function of the injected API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiFunction {
    /// Its name.
    pub name: &'static str,
    /// Its bit in `DnaJob::allowed_api_mask`.
    pub bit: u64,
    /// Its parameters, in order.
    pub params: &'static [Param],
    /// What it does and what it returns.
    pub doc: &'static str,
}

const XY: [Param; 2] = [
    Param {
        name: "x",
        kind: ParamKind::Int {
            min: *COORD_RANGE.start(),
            max: *COORD_RANGE.end(),
        },
        default: None,
    },
    Param {
        name: "y",
        kind: ParamKind::Int {
            min: *COORD_RANGE.start(),
            max: *COORD_RANGE.end(),
        },
        default: None,
    },
];

/// The API, as the Geometry OS proposal names it.
pub const API: &[ApiFunction] = &[
    ApiFunction {
        name: "log",
        bit: DNA_API_LOG,
        params: &[Param {
            name: "message",
            kind: ParamKind::Text { max_chars: 1000 },
            default: None,
        }],
        doc:
            "log(message): one line on the bus's `events` ring, tagged with the job. Returns None.",
    },
    ApiFunction {
        name: "spawn_brick",
        bit: DNA_API_SPAWN_BRICK,
        params: &[
            XY[0],
            XY[1],
            Param {
                name: "texture_id",
                kind: ParamKind::Id,
                default: Some("0"),
            },
        ],
        doc:
            "spawn_brick(x, y, texture_id=0): shows an RTS texture (0 = the job's own) as a window \
              whose top-left corner is at output pixel (x, y). Returns the brick's number.",
    },
    ApiFunction {
        name: "deploy_to_map",
        bit: DNA_API_DEPLOY_TO_MAP,
        params: &[
            XY[0],
            XY[1],
            Param {
                name: "name",
                kind: ParamKind::Name,
                default: None,
            },
        ],
        doc: "deploy_to_map(x, y, name): places the brick `name` at map cell (x, y) (an event on \
              `events`). Returns True.",
    },
];

/// Every bit of [`API`].
pub const ALL: u64 = DNA_API_LOG | DNA_API_SPAWN_BRICK | DNA_API_DEPLOY_TO_MAP;

/// The function called `name`.
pub fn function(name: &str) -> Option<&'static ApiFunction> {
    API.iter().find(|f| f.name == name)
}

/// The mask granting the functions named in `names` (comma-separated; `all` for every one).
///
/// # Errors
/// A name that is not in [`API`], with the list of known ones.
pub fn mask_of(names: &str) -> Result<u64, String> {
    let mut mask = 0;
    for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if name == "all" {
            mask |= ALL;
            continue;
        }
        match function(name) {
            Some(f) => mask |= f.bit,
            None => {
                return Err(format!(
                    "unknown API function '{name}' (known: {})",
                    known()
                ))
            }
        }
    }
    Ok(mask)
}

/// The names of the functions `mask` grants, comma-separated.
pub fn names_of(mask: u64) -> String {
    let names: Vec<&str> = API
        .iter()
        .filter(|f| mask & f.bit != 0)
        .map(|f| f.name)
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(",")
    }
}

fn arity(min: usize, max: usize) -> String {
    match (min, max) {
        (1, 1) => "1 argument".into(),
        (a, b) if a == b => format!("{a} arguments"),
        (a, b) => format!("{a} to {b} arguments"),
    }
}

fn known() -> String {
    API.iter().map(|f| f.name).collect::<Vec<_>>().join(", ")
}

/// A call that passed every check: the function and its arguments, defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiCall {
    /// The function.
    pub function: &'static ApiFunction,
    /// One value per parameter, in order: integers for `Int` and `Id`, strings for the rest.
    pub args: Vec<Value>,
}

impl ApiCall {
    /// The call as one JSON object: `{"name": ..., "args": [...]}`.
    pub fn to_json(&self) -> Value {
        serde_json::json!({ "name": self.function.name, "args": self.args })
    }

    /// Argument `i` as a signed integer (for `Int` parameters).
    pub fn int(&self, i: usize) -> i64 {
        self.args[i].as_i64().unwrap_or_default()
    }

    /// Argument `i` as an id (for `Id` parameters).
    pub fn id(&self, i: usize) -> u64 {
        self.args[i].as_u64().unwrap_or_default()
    }

    /// Argument `i` as text (for `Text` and `Name` parameters).
    pub fn text(&self, i: usize) -> &str {
        self.args[i].as_str().unwrap_or_default()
    }
}

/// What a job sent on its channel.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// A call, checked.
    Call(ApiCall),
    /// The job's own report of how it ended: the exception's type and `errno` (set by the
    /// prelude when the script raises; a job can only lie about itself with it).
    Exit {
        /// The exception's class name.
        exception: String,
        /// Its `errno`, when it has one.
        errno: Option<i64>,
        /// Its message: at most 200 characters, control characters removed.
        message: String,
    },
}

/// Why a line was refused; the text is what the job is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// Longer than [`MAX_LINE`].
    #[error("a call line is longer than {MAX_LINE} bytes")]
    TooLong,
    /// Not the JSON object described above.
    #[error("malformed call: {0}")]
    Malformed(String),
    /// No such function.
    #[error("unknown API function '{0}' (known: {known})", known = known())]
    Unknown(String),
    /// The job's mask does not grant it.
    #[error("{0} is not granted to this job")]
    NotGranted(&'static str),
    /// Wrong number of arguments.
    #[error("{name} takes {}, got {got}", arity(*min, *max))]
    Arity {
        /// The function.
        name: &'static str,
        /// Fewest arguments.
        min: usize,
        /// Most arguments.
        max: usize,
        /// Given.
        got: usize,
    },
    /// An argument of the wrong type or out of range.
    #[error("{name}: argument {param} {why}")]
    Argument {
        /// The function.
        name: &'static str,
        /// The parameter.
        param: &'static str,
        /// What is wrong.
        why: String,
    },
}

/// Checks one line from a job against [`API`] and `mask`.
///
/// # Errors
/// A [`CallError`] naming the first problem; nothing about the line is trusted before.
pub fn parse_line(line: &[u8], mask: u64) -> Result<Line, CallError> {
    if line.len() > MAX_LINE {
        return Err(CallError::TooLong);
    }
    let v: Value = serde_json::from_slice(line).map_err(|e| CallError::Malformed(e.to_string()))?;
    let Value::Object(obj) = v else {
        return Err(CallError::Malformed("not a JSON object".into()));
    };
    if let Some(exit) = obj.get("exit") {
        let exception = exit
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        let errno = exit.get("errno").and_then(Value::as_i64);
        let message = exit
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        return Ok(Line::Exit {
            exception,
            errno,
            message,
        });
    }
    let name = obj
        .get("call")
        .and_then(Value::as_str)
        .ok_or_else(|| CallError::Malformed("no \"call\" name".into()))?;
    let args = match obj.get("args") {
        None => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => return Err(CallError::Malformed("\"args\" is not a list".into())),
    };
    parse_call(name, args, mask).map(Line::Call)
}

/// Checks a call by name and arguments (what [`parse_line`] does after the JSON).
///
/// # Errors
/// As [`parse_line`].
pub fn parse_call(name: &str, mut args: Vec<Value>, mask: u64) -> Result<ApiCall, CallError> {
    let f = function(name).ok_or_else(|| CallError::Unknown(name.chars().take(64).collect()))?;
    if mask & f.bit == 0 {
        return Err(CallError::NotGranted(f.name));
    }
    let max = f.params.len();
    let min = f.params.iter().filter(|p| p.default.is_none()).count();
    if args.len() < min || args.len() > max {
        return Err(CallError::Arity {
            name: f.name,
            min,
            max,
            got: args.len(),
        });
    }
    for p in &f.params[args.len()..] {
        // Only parameters with defaults remain; their defaults are integer literals or text.
        let d = p.default.unwrap_or("0");
        args.push(
            d.parse::<u64>()
                .map(Value::from)
                .unwrap_or_else(|_| d.into()),
        );
    }
    for (p, a) in f.params.iter().zip(&args) {
        check_arg(p, a).map_err(|why| CallError::Argument {
            name: f.name,
            param: p.name,
            why,
        })?;
    }
    Ok(ApiCall { function: f, args })
}

fn check_arg(p: &Param, a: &Value) -> Result<(), String> {
    match p.kind {
        ParamKind::Int { min, max } => match a.as_i64() {
            Some(v) if (min..=max).contains(&v) => Ok(()),
            Some(v) => Err(format!("{v} is outside {min}..={max}")),
            None => Err(format!("must be an integer, got {}", kind_of(a))),
        },
        ParamKind::Id => match a.as_u64() {
            Some(_) => Ok(()),
            None => Err(format!("must be an integer 0..=2^64-1, got {}", kind_of(a))),
        },
        ParamKind::Text { max_chars } => match a.as_str() {
            Some(s) if s.chars().count() > max_chars => {
                Err(format!("is longer than {max_chars} characters"))
            }
            Some(s) if s.chars().any(char::is_control) => {
                Err("contains a control character".into())
            }
            Some(_) => Ok(()),
            None => Err(format!("must be text, got {}", kind_of(a))),
        },
        ParamKind::Name => match a.as_str() {
            Some(s)
                if (1..=64).contains(&s.len())
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)) =>
            {
                Ok(())
            }
            Some(_) => Err("must be 1 to 64 characters of A-Z a-z 0-9 _ . -".into()),
            None => Err(format!("must be a name, got {}", kind_of(a))),
        },
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a float",
        Value::Number(_) => "an integer out of range",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The Python run before a job's script, inside the sandbox: defines every function of [`API`]
/// as a builtin and in the module [`MODULE`] (each sends one line on the channel and waits for
/// its answer; a refused call raises `gos.ApiError`), reports an uncaught exception's type and
/// `errno` on the channel, then runs the script as `__main__`.
///
/// Run as `python -I -S -B PRELUDE SCRIPT`; the channel's file descriptors are in
/// `GOS_DNA_CALLS_FD` (the job writes) and `GOS_DNA_REPLIES_FD` (the job reads).
pub fn python_prelude() -> String {
    let mut s = String::from(PRELUDE_HEAD);
    for f in API {
        let sig: Vec<String> = f
            .params
            .iter()
            .map(|p| match p.default {
                Some(d) => format!("{}={d}", p.name),
                None => p.name.to_string(),
            })
            .collect();
        let names: Vec<&str> = f.params.iter().map(|p| p.name).collect();
        s.push_str(&format!(
            "def {name}({sig}):\n    {doc:?}\n    return _call({name:?}, [{args}])\n_export({name})\n",
            name = f.name,
            sig = sig.join(", "),
            doc = f.doc,
            args = names.join(", "),
        ));
    }
    s.push_str(PRELUDE_TAIL);
    s.replace("@MODULE@", MODULE)
}

const PRELUDE_HEAD: &str = r#"import builtins, json, os, sys, types
_calls = os.fdopen(int(os.environ.pop("GOS_DNA_CALLS_FD")), "w", buffering=1, closefd=True)
_replies = os.fdopen(int(os.environ.pop("GOS_DNA_REPLIES_FD")), "r", closefd=True)
_gos = types.ModuleType("@MODULE@", "The Hybrid DNA API, answered by the executor.")
class ApiError(RuntimeError):
    "An API call the executor refused or could not carry out."
_gos.ApiError = ApiError
def _call(name, args):
    _calls.write(json.dumps({"call": name, "args": args}) + "\n")
    line = _replies.readline()
    if not line:
        raise ApiError("the executor closed the API channel")
    reply = json.loads(line)
    if "error" in reply:
        raise ApiError(reply["error"])
    return reply.get("ok")
def _export(f):
    setattr(_gos, f.__name__, f)
    setattr(builtins, f.__name__, f)
"#;

const PRELUDE_TAIL: &str = r#"sys.modules["@MODULE@"] = _gos
def _report(kind, exc, tb):
    try:
        errno = getattr(exc, "errno", None)
        report = {"type": kind.__name__, "errno": errno if isinstance(errno, int) else None, "message": str(exc)[:200]}
        _calls.write(json.dumps({"exit": report}) + "\n")
        _calls.flush()
    except Exception:
        pass
    # The traceback starts at the job's own code, not in this prelude or runpy.
    while tb is not None and (tb.tb_frame.f_code.co_filename == __file__
                              or tb.tb_frame.f_code.co_filename.startswith("<frozen runpy")):
        tb = tb.tb_next
    sys.__excepthook__(kind, exc.with_traceback(tb), tb)
sys.excepthook = _report
_script = sys.argv[1]
sys.argv = sys.argv[1:]
del types
import runpy
runpy.run_path(_script, run_name="__main__")
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: &str, mask: u64) -> Result<Line, CallError> {
        parse_line(s.as_bytes(), mask)
    }

    #[test]
    fn a_granted_call_is_checked_and_its_defaults_filled() {
        let Line::Call(c) = line(r#"{"call":"spawn_brick","args":[3,4]}"#, ALL).unwrap() else {
            panic!("not a call")
        };
        assert_eq!(c.function.name, "spawn_brick");
        assert_eq!((c.int(0), c.int(1), c.id(2)), (3, 4, 0));
    }

    #[test]
    fn every_kind_of_bad_call_is_refused_with_its_reason() {
        let cases = [
            (
                r#"{"call":"spawn_brick","args":[1,2,3]}"#,
                DNA_API_LOG,
                "not granted",
            ),
            (
                r#"{"call":"format_disk","args":[]}"#,
                ALL,
                "unknown API function",
            ),
            (
                r#"{"call":"log","args":[]}"#,
                ALL,
                "log takes 1 argument, got 0",
            ),
            (
                r#"{"call":"spawn_brick","args":[1.5,2]}"#,
                ALL,
                "must be an integer",
            ),
            (
                r#"{"call":"spawn_brick","args":[1,99999999999]}"#,
                ALL,
                "outside",
            ),
            (
                r#"{"call":"spawn_brick","args":[1,2,-1]}"#,
                ALL,
                "0..=2^64-1",
            ),
            (
                r#"{"call":"deploy_to_map","args":[1,2,"../x"]}"#,
                ALL,
                "must be 1 to 64",
            ),
            (
                r#"{"call":"log","args":["a\u0007b"]}"#,
                ALL,
                "control character",
            ),
            (r#"[1,2]"#, ALL, "not a JSON object"),
            (r#"{"call":"log","args":"x"}"#, ALL, "not a list"),
            ("{\"call\":", ALL, "malformed call"),
        ];
        for (text, mask, want) in cases {
            let err = line(text, mask).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
        let long = format!(r#"{{"call":"log","args":["{}"]}}"#, "a".repeat(MAX_LINE));
        assert_eq!(line(&long, ALL), Err(CallError::TooLong));
    }

    #[test]
    fn an_exit_report_is_kept_to_a_plain_class_name() {
        let got = line(
            r#"{"exit":{"type":"Memory Error\n!","errno":12,"message":"no\u001b[2Jroom"}}"#,
            0,
        )
        .unwrap();
        assert_eq!(
            got,
            Line::Exit {
                exception: "MemoryError".into(),
                errno: Some(12),
                message: "no[2Jroom".into(),
            }
        );
    }

    #[test]
    fn masks_by_name_round_trip_and_unknown_names_are_refused() {
        let m = mask_of("log, spawn_brick").unwrap();
        assert_eq!(m, DNA_API_LOG | DNA_API_SPAWN_BRICK);
        assert_eq!(names_of(m), "log,spawn_brick");
        assert_eq!(mask_of("all").unwrap(), ALL);
        assert!(mask_of("log,rm_rf").unwrap_err().contains("rm_rf"));
    }

    #[test]
    fn the_prelude_defines_every_function() {
        let p = python_prelude();
        for f in API {
            assert!(p.contains(&format!("def {}(", f.name)), "{}", f.name);
        }
        assert!(p.contains("def spawn_brick(x, y, texture_id=0):"));
    }
}
