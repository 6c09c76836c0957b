//! Hybrid DNA carried by PixelRTS files, as Geometry OS writes it:
//!
//! - an `RTS_Logic` text chunk (tEXt, iTXt or zTXt) holding the script itself, or a JSON
//!   object whose `code` holds it (and `language`, default Python);
//! - a "Hybrid-DNA-v1" record: the `PixelRTS` metadata chunk with `"format": "Hybrid-DNA-v1"`,
//!   `source_code_b64` = base64(zlib(source)) and `language`.
//!
//! [`extract`] reads the text chunks (before and after the image data, which it skips without
//! decoding it into a frame) and returns the first carrier found, `RTS_Logic` first. Only the
//! two keywords that can carry logic are inflated, each to at most [`MAX_CODE`]; the file is
//! at most [`MAX_FILE`]. A malformed carrier is an [`RtsError`] naming it.

use crate::RtsError;
use base64::Engine;
use serde_json::Value;

/// Largest source accepted, in bytes (after inflating).
pub const MAX_CODE: usize = 1 << 20;

/// Largest file [`extract_file`] reads, in bytes (a PixelRTS image of the largest side,
/// 8192 x 8192 RGBA, is 256 MiB before compression).
pub const MAX_FILE: u64 = 512 << 20;

/// The text keywords that can carry logic (the only ones inflated).
const CARRIERS: [&str; 2] = ["RTS_Logic", "PixelRTS"];

/// Hybrid DNA found in a PixelRTS file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logic {
    /// The source code.
    pub code: String,
    /// Its language as the file states it (lower case; "python" when it says nothing).
    pub language: String,
    /// Where it was: "RTS_Logic tEXt", "RTS_Logic iTXt", "RTS_Logic zTXt" or "Hybrid-DNA-v1".
    pub carrier: &'static str,
}

/// One text chunk: keyword, text, and the chunk type it came in.
pub(crate) type Text = (String, String, &'static str);

/// The text chunks of a decoded PNG's info: every tEXt (as stored), and the iTXt and zTXt
/// chunks whose keyword can carry logic, inflated to at most [`MAX_CODE`] each (the first of
/// each keyword only, so a file of many compressed chunks cannot make it inflate more).
pub(crate) fn texts(info: &png::Info) -> Vec<Text> {
    let mut out: Vec<Text> = info
        .uncompressed_latin1_text
        .iter()
        .map(|t| (t.keyword.clone(), t.text.clone(), "tEXt"))
        .collect();
    for keyword in CARRIERS {
        if let Some(t) = info.utf8_text.iter().find(|t| t.keyword == keyword) {
            let mut t = t.clone();
            if t.decompress_text_with_limit(MAX_CODE).is_ok() {
                if let Ok(v) = t.get_text() {
                    out.push((t.keyword.clone(), v, "iTXt"));
                }
            }
        }
        if let Some(t) = info
            .compressed_latin1_text
            .iter()
            .find(|t| t.keyword == keyword)
        {
            let mut t = t.clone();
            if t.decompress_text_with_limit(MAX_CODE).is_ok() {
                if let Ok(v) = t.get_text() {
                    out.push((t.keyword.clone(), v, "zTXt"));
                }
            }
        }
    }
    // Keywords of other text chunks still count (a blueprint is seen by its keyword).
    out.extend(
        info.utf8_text
            .iter()
            .map(|t| &t.keyword)
            .chain(info.compressed_latin1_text.iter().map(|t| &t.keyword))
            .filter(|k| !CARRIERS.contains(&k.as_str()))
            .map(|k| (k.clone(), String::new(), "compressed")),
    );
    out
}

/// The Hybrid DNA of a PNG file's bytes, if it carries any.
///
/// # Errors
/// Not a PNG, or a carrier that is malformed (JSON without a string `code`, bad base64, a
/// zlib stream that does not inflate, more than [`MAX_CODE`] bytes, not UTF-8).
pub fn extract(png_bytes: &[u8]) -> Result<Option<Logic>, RtsError> {
    let mut decoder = png::Decoder::new(png_bytes);
    decoder.set_limits(png::Limits {
        bytes: (crate::MAX_SIDE as usize) * (crate::MAX_SIDE as usize) * 4 + (1 << 20),
    });
    let mut reader = decoder
        .read_info()
        .map_err(|e| RtsError::Png(e.to_string()))?;
    // Text chunks may follow the image data: read to the end of the file, skipping the image
    // (no frame is allocated, whatever size the header claims).
    reader.finish().map_err(|e| RtsError::Png(e.to_string()))?;
    from_texts(&texts(reader.info()))
}

/// [`extract`] on a file.
///
/// # Errors
/// As [`extract`], and a file that cannot be read.
pub fn extract_file(path: &std::path::Path) -> Result<Option<Logic>, RtsError> {
    let io = |source| RtsError::Io {
        path: path.display().to_string(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_FILE {
        return Err(RtsError::Png(format!(
            "the file is {len} bytes, more than the {MAX_FILE} a PixelRTS image can be"
        )));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    extract(&bytes)
}

pub(crate) fn from_texts(texts: &[Text]) -> Result<Option<Logic>, RtsError> {
    let bad = |what: &str| RtsError::Metadata(what.to_string());
    if let Some((_, text, kind)) = texts.iter().find(|(k, _, _)| k == "RTS_Logic") {
        let carrier = match *kind {
            "iTXt" => "RTS_Logic iTXt",
            "zTXt" => "RTS_Logic zTXt",
            _ => "RTS_Logic tEXt",
        };
        if text.len() > MAX_CODE {
            return Err(bad("the RTS_Logic chunk is larger than 1 MiB"));
        }
        let (code, language) = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(o)) => {
                let code = o
                    .get("code")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("the RTS_Logic JSON has no string \"code\""))?;
                (code.to_string(), language(o.get("language")))
            }
            _ => (text.clone(), "python".to_string()),
        };
        return Ok(Some(Logic {
            code,
            language,
            carrier,
        }));
    }
    let Some((_, meta, _)) = texts.iter().find(|(k, _, _)| k == "PixelRTS") else {
        return Ok(None);
    };
    let meta = meta.strip_prefix("PixelRTS").unwrap_or(meta);
    let Ok(Value::Object(o)) = serde_json::from_str::<Value>(meta) else {
        return Ok(None);
    };
    if o.get("format").and_then(Value::as_str) != Some("Hybrid-DNA-v1") {
        return Ok(None);
    }
    let b64 = o
        .get("source_code_b64")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("the Hybrid-DNA-v1 record has no string source_code_b64"))?;
    if b64.len() > MAX_CODE * 2 {
        return Err(bad("source_code_b64 is larger than 2 MiB"));
    }
    let zipped = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| bad(&format!("source_code_b64 is not base64: {e}")))?;
    let source = miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(&zipped, MAX_CODE)
        .map_err(|e| bad(&format!("source_code_b64 does not inflate (zlib): {e:?}")))?;
    let code =
        String::from_utf8(source).map_err(|_| bad("the Hybrid-DNA-v1 source is not UTF-8"))?;
    Ok(Some(Logic {
        code,
        language: language(o.get("language")),
        carrier: "Hybrid-DNA-v1",
    }))
}

fn language(v: Option<&Value>) -> String {
    v.and_then(Value::as_str)
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "python".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(k: &str, v: &str) -> Text {
        (k.into(), v.into(), "tEXt")
    }

    #[test]
    fn json_without_code_and_bad_hybrid_records_are_errors_not_panics() {
        assert!(from_texts(&[t("RTS_Logic", r#"{"language":"python"}"#)]).is_err());
        let bad_b64 = r#"PixelRTS{"format":"Hybrid-DNA-v1","source_code_b64":"%%%"}"#;
        assert!(from_texts(&[t("PixelRTS", bad_b64)])
            .unwrap_err()
            .to_string()
            .contains("base64"));
        let not_zlib = r#"PixelRTS{"format":"Hybrid-DNA-v1","source_code_b64":"aGVsbG8="}"#;
        assert!(from_texts(&[t("PixelRTS", not_zlib)])
            .unwrap_err()
            .to_string()
            .contains("inflate"));
    }

    #[test]
    fn plain_pixelrts_metadata_carries_no_logic() {
        let meta = r#"PixelRTS{"format":"PixelRTS-2.0","data_size":4}"#;
        assert_eq!(from_texts(&[t("PixelRTS", meta)]).unwrap(), None);
        assert_eq!(from_texts(&[]).unwrap(), None);
    }
}
