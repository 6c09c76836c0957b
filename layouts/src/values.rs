//! Typed WebAssembly values: a WebAssembly job's arguments and returned values, as the
//! `DnaJob` (`arg_types`, `args`) and `DnaResult` (`value_types`, `values`) records carry them:
//! `DNA_VALUE_*` type codes beside 64-bit slots.

use crate::records::{DNA_MAX_VALUES, DNA_VALUE_F32, DNA_VALUE_F64, DNA_VALUE_I32, DNA_VALUE_I64};
use crate::DnaResult;
use serde_json::{json, Value};

/// One WebAssembly number value (the core types `i32`, `i64`, `f32`, `f64`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WasmValue {
    /// A 32-bit integer.
    I32(i32),
    /// A 64-bit integer.
    I64(i64),
    /// An IEEE 754 single.
    F32(f32),
    /// An IEEE 754 double.
    F64(f64),
}

impl WasmValue {
    /// Its `DNA_VALUE_*` type code.
    pub fn type_code(self) -> u8 {
        match self {
            WasmValue::I32(_) => DNA_VALUE_I32,
            WasmValue::I64(_) => DNA_VALUE_I64,
            WasmValue::F32(_) => DNA_VALUE_F32,
            WasmValue::F64(_) => DNA_VALUE_F64,
        }
    }

    /// Its type's name: `i32`, `i64`, `f32` or `f64`.
    pub fn type_name(self) -> &'static str {
        type_name(self.type_code()).unwrap_or("?")
    }

    /// Its bits in a record's 64-bit slot: integers two's complement (an `i32` in the low 32
    /// bits, sign-extended), floats their IEEE 754 bits (an `f32`'s in the low 32 bits).
    pub fn bits(self) -> u64 {
        match self {
            WasmValue::I32(v) => v as i64 as u64,
            WasmValue::I64(v) => v as u64,
            WasmValue::F32(v) => v.to_bits() as u64,
            WasmValue::F64(v) => v.to_bits(),
        }
    }

    /// The value a record's type code and slot hold.
    ///
    /// # Errors
    /// A type code that is not a `DNA_VALUE_*`.
    pub fn from_parts(code: u8, bits: u64) -> Result<WasmValue, String> {
        Ok(match code {
            DNA_VALUE_I32 => WasmValue::I32(bits as u32 as i32),
            DNA_VALUE_I64 => WasmValue::I64(bits as i64),
            DNA_VALUE_F32 => WasmValue::F32(f32::from_bits(bits as u32)),
            DNA_VALUE_F64 => WasmValue::F64(f64::from_bits(bits)),
            c => {
                return Err(format!(
                    "value type {c} is not one of i32 (1), i64 (2), f32 (3), f64 (4)"
                ))
            }
        })
    }

    /// `text` (a number) as a value of type `code`: `21`, `-3`, `0x10`, `2.5`.
    ///
    /// # Errors
    /// Not a number, or out of the type's range.
    pub fn parse(text: &str, code: u8) -> Result<WasmValue, String> {
        // One optional sign, then decimal digits or 0x and hex digits; nothing else.
        let int = |t: &str| -> Option<i128> {
            let (neg, t) = t.strip_prefix('-').map_or((false, t), |r| (true, r));
            let (digits, radix) = t.strip_prefix("0x").map_or((t, 10), |h| (h, 16));
            if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
                return None;
            }
            let v = u128::from_str_radix(digits, radix).ok()?;
            let v = i128::try_from(v).ok()?;
            Some(if neg { -v } else { v })
        };
        let bad = || format!("{text:?} is not {}", type_name(code).unwrap_or("a number"));
        Ok(match code {
            DNA_VALUE_I32 => {
                // An i32 may be given unsigned too (0xffffffff), as WebAssembly does.
                let v = int(text).ok_or_else(bad)?;
                if !(i32::MIN as i128..=u32::MAX as i128).contains(&v) {
                    return Err(format!("{text} is out of the range of an i32"));
                }
                WasmValue::I32(v as i64 as i32)
            }
            DNA_VALUE_I64 => {
                let v = int(text).ok_or_else(bad)?;
                if !(i64::MIN as i128..=u64::MAX as i128).contains(&v) {
                    return Err(format!("{text} is out of the range of an i64"));
                }
                WasmValue::I64(v as i64)
            }
            DNA_VALUE_F32 => WasmValue::F32(text.parse().map_err(|_| bad())?),
            DNA_VALUE_F64 => WasmValue::F64(text.parse().map_err(|_| bad())?),
            c => return Err(format!("value type {c} is not one of i32, i64, f32, f64")),
        })
    }

    /// As JSON: `{"type": "i32", "value": 42, "code": 1, "bits": 42}`: its type and value,
    /// and its type code and bits as a record stores them (floats that are not finite have
    /// their value as a string: `"NaN"`, `"inf"`, `"-inf"`).
    pub fn to_json(self) -> Value {
        let value = match self {
            WasmValue::I32(v) => json!(v),
            WasmValue::I64(v) => json!(v),
            WasmValue::F32(v) if v.is_finite() => json!(v),
            WasmValue::F64(v) if v.is_finite() => json!(v),
            WasmValue::F32(v) => json!(v.to_string()),
            WasmValue::F64(v) => json!(v.to_string()),
        };
        json!({ "type": self.type_name(), "value": value, "code": self.type_code(), "bits": self.bits() })
    }

    /// From JSON: `{"code": C, "bits": B}` (as a record stores it) or `{"type": "i32",
    /// "value": 21}`.
    ///
    /// # Errors
    /// Neither form, an unknown type, or a value out of its type's range.
    pub fn from_json(v: &Value) -> Result<WasmValue, String> {
        if let (Some(code), Some(bits)) = (v["code"].as_u64(), v["bits"].as_u64()) {
            let code = u8::try_from(code).map_err(|_| format!("{v} has no valid type code"))?;
            return WasmValue::from_parts(code, bits);
        }
        let ty = v["type"].as_str().unwrap_or_default();
        let code = type_code(ty).ok_or_else(|| format!("{v} has no type i32, i64, f32 or f64"))?;
        let text = match &v["value"] {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            other => return Err(format!("{other} is not a number")),
        };
        WasmValue::parse(&text, code)
    }
}

impl std::fmt::Display for WasmValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WasmValue::I32(v) => write!(f, "{v}"),
            WasmValue::I64(v) => write!(f, "{v}"),
            WasmValue::F32(v) => write!(f, "{v}"),
            WasmValue::F64(v) => write!(f, "{v}"),
        }
    }
}

/// The name of type code `code` (`i32`, `i64`, `f32`, `f64`).
pub fn type_name(code: u8) -> Option<&'static str> {
    Some(match code {
        DNA_VALUE_I32 => "i32",
        DNA_VALUE_I64 => "i64",
        DNA_VALUE_F32 => "f32",
        DNA_VALUE_F64 => "f64",
        _ => return None,
    })
}

/// The type code named `name`.
pub fn type_code(name: &str) -> Option<u8> {
    [DNA_VALUE_I32, DNA_VALUE_I64, DNA_VALUE_F32, DNA_VALUE_F64]
        .into_iter()
        .find(|&c| type_name(c) == Some(name))
}

/// The values a result carries.
///
/// # Errors
/// More than [`DNA_MAX_VALUES`], or a type code that is not a `DNA_VALUE_*`.
pub fn result_values(r: &DnaResult) -> Result<Vec<WasmValue>, String> {
    let n = r.value_count as usize;
    if n > DNA_MAX_VALUES {
        return Err(format!(
            "the result says it has {n} values; a DnaResult carries at most {DNA_MAX_VALUES}"
        ));
    }
    (0..n)
        .map(|i| WasmValue::from_parts(r.value_types[i], r.values[i]))
        .collect()
}

/// Writes `values` into `r`.
///
/// # Errors
/// More than [`DNA_MAX_VALUES`] values (nothing is written).
pub fn set_result_values(r: &mut DnaResult, values: &[WasmValue]) -> Result<(), String> {
    if values.len() > DNA_MAX_VALUES {
        return Err(format!(
            "{} values; a DnaResult carries at most {DNA_MAX_VALUES}",
            values.len()
        ));
    }
    r.value_count = values.len() as u16;
    for (i, v) in values.iter().enumerate() {
        r.value_types[i] = v.type_code();
        r.values[i] = v.bits();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_survive_the_record_and_json() {
        for v in [
            WasmValue::I32(-7),
            WasmValue::I32(i32::MAX),
            WasmValue::I64(i64::MIN),
            WasmValue::F32(1.5),
            WasmValue::F64(-0.25),
        ] {
            assert_eq!(WasmValue::from_parts(v.type_code(), v.bits()).unwrap(), v);
            assert_eq!(WasmValue::from_json(&v.to_json()).unwrap(), v);
        }
        let mut r: DnaResult = bytemuck::Zeroable::zeroed();
        set_result_values(&mut r, &[WasmValue::I32(42), WasmValue::F64(2.0)]).unwrap();
        assert_eq!(
            result_values(&r).unwrap(),
            [WasmValue::I32(42), WasmValue::F64(2.0)]
        );
        assert!(set_result_values(&mut r, &[WasmValue::I32(0); 9]).is_err());
        r.value_count = 200;
        assert!(result_values(&r).is_err(), "a hostile count is an error");
    }

    #[test]
    fn texts_parse_within_their_type() {
        assert_eq!(
            WasmValue::parse("21", DNA_VALUE_I32).unwrap(),
            WasmValue::I32(21)
        );
        assert_eq!(
            WasmValue::parse("0xffffffff", DNA_VALUE_I32).unwrap(),
            WasmValue::I32(-1)
        );
        assert!(WasmValue::parse("4294967296", DNA_VALUE_I32).is_err());
        assert!(WasmValue::parse("1.5", DNA_VALUE_I64).is_err());
        for bad in ["--5", "-0x-5", "+5", "0x", "-", "", " 5"] {
            assert!(WasmValue::parse(bad, DNA_VALUE_I32).is_err(), "{bad:?}");
        }
        assert_eq!(
            WasmValue::parse("-0x10", DNA_VALUE_I64).unwrap(),
            WasmValue::I64(-16)
        );
        assert_eq!(
            WasmValue::parse("2.5", DNA_VALUE_F32).unwrap(),
            WasmValue::F32(2.5)
        );
    }
}
