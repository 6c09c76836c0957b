//! `gos-bus inspect`: the last records of a ring, decoded through the schema the ring carries.
//!
//! Slots are read without taking them (the mapping is read-only): each one is copied between
//! two reads of its stamp, and a copy whose stamp changed meanwhile (a producer rewrote the
//! slot) is dropped. Lengths are clamped to the slot size before anything is read.

use gos_bus_protocol::Mode;
use gos_bus_protocol::Segment;
use gos_layouts::{Scalar, Schema};
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::atomic::Ordering::*;

/// One decoded record.
#[derive(Debug, Clone, Serialize)]
pub struct Decoded {
    /// Sequence number.
    pub seq: u64,
    /// Payload length.
    pub len: u32,
    /// The fields of the record in layout order (empty for raw bytes).
    pub fields: Fields,
    /// The first bytes after the record, hex.
    pub tail_hex: String,
}

/// Decoded fields, in the order of the layout (serialised as a JSON object in that order).
#[derive(Debug, Clone, Default)]
pub struct Fields(pub Vec<(String, Value)>);

impl Fields {
    /// The value of field `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// The fields in layout order.
    pub fn iter(&self) -> impl Iterator<Item = &(String, Value)> {
        self.0.iter()
    }
}

impl Serialize for Fields {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

fn scalar(b: &[u8], s: Scalar) -> Value {
    let mut w = [0u8; 8];
    w[..b.len()].copy_from_slice(b);
    let u = u64::from_le_bytes(w);
    match s {
        Scalar::U8 | Scalar::U16 | Scalar::U32 | Scalar::U64 => json!(u),
        Scalar::I32 => json!(u as u32 as i32),
        Scalar::I64 => json!(u as i64),
        Scalar::F32 => json!(f32::from_bits(u as u32)),
        Scalar::F64 => json!(f64::from_bits(u)),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Decodes `bytes` (at least `schema.size` long) field by field.
pub fn decode(schema: &Schema, bytes: &[u8]) -> Fields {
    let mut out = Vec::new();
    for f in schema.fields {
        let size = f.scalar.size();
        let start = f.offset as usize;
        let end = start + size * f.count as usize;
        let Some(raw) = bytes.get(start..end) else {
            break;
        };
        let v = if f.count == 1 {
            scalar(raw, f.scalar)
        } else if f.scalar == Scalar::U8 && raw.iter().all(|&c| c == 0) {
            // An unused text field (a title, a style) or reserved bytes.
            json!("")
        } else if f.scalar == Scalar::U8 {
            let trimmed: Vec<u8> = raw.iter().copied().take_while(|&c| c != 0).collect();
            if !trimmed.is_empty()
                && trimmed.iter().all(|c| c.is_ascii_graphic() || *c == b' ')
                && raw[trimmed.len()..].iter().all(|&c| c == 0)
            {
                json!(String::from_utf8_lossy(&trimmed))
            } else {
                json!(hex(raw))
            }
        } else {
            Value::Array(
                raw.chunks_exact(size)
                    .map(|c| scalar(c, f.scalar))
                    .collect(),
            )
        };
        out.push((f.name.to_string(), v));
    }
    Fields(out)
}

/// The last `n` committed records of `seg`, oldest first.
pub fn last_records(seg: &Segment, n: usize) -> Vec<Decoded> {
    let g = seg.geometry();
    let schema =
        gos_layouts::schema_by_fingerprint(g.layout_fingerprint).unwrap_or(gos_layouts::BYTES);
    let r = seg.ring();
    let head = r.ctl.head().load(Acquire);
    let from = head.saturating_sub((n as u64).min(g.slot_count as u64));
    let mut out = Vec::new();
    for seq in from..head {
        let slot = r.slot(seq);
        let committed = |stamp: u64| match g.mode {
            Mode::Broadcast => stamp == seq + 1,
            Mode::WorkQueue => stamp == seq + 1 || stamp == seq + g.slot_count as u64,
        };
        let before = slot.stamp().load(Acquire);
        if !committed(before)
            || slot.flags().load(Relaxed) & gos_layouts::segment::SLOT_SKIPPED != 0
        {
            continue;
        }
        let len = slot.len().load(Relaxed).min(g.slot_size);
        let take = (len as usize).min(schema.size as usize + 32);
        let mut copy = vec![0u8; take];
        // On a ring with hot buffers a released slot's buffer can go to the publisher while
        // the slot's stamp stays: the buffer index is checked too.
        let buffer = slot.buffer().load(Relaxed);
        // SAFETY: `take` <= slot_size bytes of the slot's payload, inside the mapping. The
        // bytes may change under us (a producer rewriting the slot); they are plain bytes,
        // and the stamp and buffer checks below drop such a copy.
        unsafe {
            std::ptr::copy_nonoverlapping(seg.payload_ptr(seq), copy.as_mut_ptr(), take);
        }
        std::sync::atomic::fence(Acquire);
        if slot.stamp().load(Relaxed) != before || slot.buffer().load(Relaxed) != buffer {
            continue;
        }
        let head_len = (schema.size as usize).min(copy.len());
        out.push(Decoded {
            seq,
            len,
            fields: decode(&schema, &copy[..head_len]),
            tail_hex: hex(&copy[head_len..]),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use gos_layouts::{Record, RenderFrame};
    use proptest::prelude::*;

    #[test]
    fn decodes_a_render_frame() {
        let mut f = RenderFrame {
            magic: *b"GFRM",
            version: RenderFrame::VERSION,
            width: 640,
            pos_x: -5,
            zoom: 1.5,
            ..bytemuck::Zeroable::zeroed()
        };
        f.style[..8].copy_from_slice(b"crt_cyan");
        let d = decode(&RenderFrame::SCHEMA, bytemuck::bytes_of(&f));
        assert_eq!(d.get("magic").unwrap(), "GFRM");
        assert_eq!(d.get("width").unwrap(), 640);
        assert_eq!(d.get("pos_x").unwrap(), -5);
        assert_eq!(d.get("zoom").unwrap(), 1.5);
        assert_eq!(d.get("style").unwrap(), "crt_cyan");
        assert_eq!(d.get("title").unwrap(), "", "an empty title, not 128 zeros");
        assert_eq!(d.get("reserved").unwrap(), "");
        let names: Vec<&str> = d.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            &names[..4],
            ["magic", "version", "pixel_format", "frame_seq"]
        );
    }

    proptest! {
        /// Any bytes decode through any schema without a panic.
        #[test]
        fn random_bytes_decode(bytes in proptest::collection::vec(any::<u8>(), 0..300), which in 0usize..gos_layouts::message_schemas().len()) {
            let schema = gos_layouts::message_schemas()[which];
            let _ = decode(&schema, &bytes);
        }
    }
}
