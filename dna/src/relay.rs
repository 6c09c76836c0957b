//! The executor's side of a job's API calls over stdio, as `gos-dna-sandbox run --relay` and
//! `gos-dna-wasm serve` speak it: each checked call is one line on stdout,
//! `{"call": {"name": ..., "args": [...]}}`, answered by one line on stdin, `{"ok": VALUE}` or
//! `{"error": "why"}`.

use crate::api::ApiCall;
use serde_json::{json, Value};
use std::io::{BufRead, Write};

/// Sends `call` on stdout and reads the executor's answer from stdin: `Ok(value)` for
/// `{"ok": value}`, `Err(why)` for `{"error": why}`, for a closed channel and for a line that
/// is not a reply.
pub fn stdio_call(call: &ApiCall) -> Result<Value, String> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", json!({ "call": call.to_json() }))
        .and_then(|_| out.flush())
        .map_err(|e| format!("the executor is gone: {e}"))?;
    drop(out);
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => Err("the executor closed the API channel".into()),
        Ok(_) => reply(&line),
    }
}

/// An answer line: `{"ok": VALUE}` → `Ok(VALUE)`, `{"error": "why"}` → `Err(why)`.
///
/// # Errors
/// The answer is an error, or the line is not an answer.
pub fn reply(line: &str) -> Result<Value, String> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(mut o)) => match (o.remove("ok"), o.remove("error")) {
            (_, Some(e)) => Err(e
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| e.to_string())),
            (Some(v), None) => Ok(v),
            (None, None) => Err("the executor's answer has neither ok nor error".into()),
        },
        _ => Err("the executor answered with something that is not a reply".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_answer_is_an_answer() {
        assert_eq!(reply(r#"{"ok": 3}"#), Ok(Value::from(3)));
        assert_eq!(reply(r#"{"ok": null}"#), Ok(Value::Null));
        assert_eq!(reply(r#"{"error": "no"}"#), Err("no".into()));
        for bad in [r#"{"job": {}}"#, "[]", "", "ok"] {
            assert!(reply(bad).is_err(), "{bad}");
        }
    }
}
