//! Fixed binary layouts of gos-bus.
//!
//! Every record is `#[repr(C)]` plain old data with a magic and a version first, every field at
//! a fixed, compile-time-checked offset, little-endian. Each carries a [`Schema`] and a 64-bit
//! fingerprint, so a reader in any language can build its own view from
//! `gos-bus layouts --json` or from the fingerprint stored in a ring's header.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod records;
pub mod registry;
pub mod schema;
pub mod segment;
pub mod values;

pub use records::{BrickPlacement, DnaJob, DnaResult, RenderFrame, RtsTexture, TerminalCell};
pub use registry::{RegistryHeader, RegistryRing};
pub use schema::{Constant, Field, Record, Scalar, Schema};
pub use segment::{ClientEntry, RingHeader, SlotHeader};
pub use values::WasmValue;

/// The pseudo-layout of rings that carry raw bytes with no record.
pub const BYTES: Schema = Schema {
    name: "Bytes",
    magic: *b"BYTE",
    version: 1,
    size: 0,
    align: 1,
    endian: "little",
    fingerprint: schema::fingerprint(*b"BYTE", "Bytes", 1, 0, 1, &[]),
    doc: "Raw bytes: the payload has no record header.",
    fields: &[],
};

/// Every published constant: the codes and flags of the message records and the ring modes
/// and policies (see [`Constant`]).
pub fn constants() -> Vec<Constant> {
    [
        records::RTS_CONSTANTS,
        records::PIXEL_CONSTANTS,
        records::DNA_JOB_CONSTANTS,
        records::DNA_RESULT_CONSTANTS,
        records::FRAME_CONSTANTS,
        records::BRICK_CONSTANTS,
        records::CELL_CONSTANTS,
        segment::RING_CONSTANTS,
    ]
    .concat()
}

/// What gos-bus publishes about its layouts, for clients in any language: the message and
/// segment schemas and the constants. Serialised as JSON by `gos-bus layouts --json`, into the
/// registry by the broker, and by the C ABI's `gos_layouts_json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Document {
    /// The message layouts ([`message_schemas`]).
    pub records: Vec<Schema>,
    /// The segment records ([`segment_schemas`]).
    pub segment: Vec<Schema>,
    /// The elements that fill a message's payload ([`element_schemas`]).
    pub elements: Vec<Schema>,
    /// The constants ([`constants`]).
    pub constants: Vec<Constant>,
}

/// The [`Document`] of this build.
pub fn document() -> Document {
    Document {
        records: message_schemas().to_vec(),
        segment: segment_schemas().to_vec(),
        elements: element_schemas().to_vec(),
        constants: constants(),
    }
}

/// The message layouts a ring can carry, raw bytes included.
pub fn message_schemas() -> [Schema; 6] {
    [
        RtsTexture::SCHEMA,
        DnaJob::SCHEMA,
        DnaResult::SCHEMA,
        RenderFrame::SCHEMA,
        BrickPlacement::SCHEMA,
        BYTES,
    ]
}

/// The segment records (ring header, client entry, slot header, registry header and ring).
pub fn segment_schemas() -> [Schema; 5] {
    [
        RingHeader::SCHEMA,
        ClientEntry::SCHEMA,
        SlotHeader::SCHEMA,
        RegistryHeader::SCHEMA,
        RegistryRing::SCHEMA,
    ]
}

/// The elements a message's payload is made of, beside raw pixels: the terminal cells of a
/// `PIXEL_CELLS` frame.
pub fn element_schemas() -> [Schema; 1] {
    [TerminalCell::SCHEMA]
}

/// Finds a message layout by name (case-insensitive) or by fingerprint.
pub fn find_schema(name: &str) -> Option<Schema> {
    message_schemas()
        .into_iter()
        .find(|s| s.name.eq_ignore_ascii_case(name))
}

/// Finds a message layout by fingerprint.
pub fn schema_by_fingerprint(fp: u64) -> Option<Schema> {
    message_schemas().into_iter().find(|s| s.fingerprint == fp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_distinct() {
        let all: Vec<Schema> = message_schemas()
            .into_iter()
            .chain(segment_schemas())
            .chain(element_schemas())
            .collect();
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a.fingerprint, b.fingerprint, "{} vs {}", a.name, b.name);
            }
        }
    }

    #[test]
    fn fingerprint_changes_with_any_field() {
        let base = RenderFrame::SCHEMA;
        let mut fields: Vec<Field> = base.fields.to_vec();
        fields[3].offset += 0; // unchanged copy gives the same value
        let same = schema::fingerprint(
            base.magic,
            base.name,
            base.version,
            base.size,
            base.align,
            &fields,
        );
        assert_eq!(same, base.fingerprint);
        fields[3].scalar = Scalar::I64;
        let changed = schema::fingerprint(
            base.magic,
            base.name,
            base.version,
            base.size,
            base.align,
            &fields,
        );
        assert_ne!(changed, base.fingerprint);
        let bumped = schema::fingerprint(
            base.magic,
            base.name,
            base.version + 1,
            base.size,
            base.align,
            base.fields,
        );
        assert_ne!(bumped, base.fingerprint);
    }

    #[test]
    fn fingerprint_matches_published_algorithm() {
        // FNV-1a 64 of the documented stream for an empty schema, computed by hand here.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut stream = Vec::new();
        stream.extend_from_slice(b"BYTE");
        stream.extend_from_slice(b"Bytes\0");
        stream.extend_from_slice(&1u16.to_le_bytes());
        stream.extend_from_slice(&0u32.to_le_bytes());
        stream.extend_from_slice(&1u32.to_le_bytes());
        for b in stream {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        assert_eq!(h, BYTES.fingerprint);
    }

    #[test]
    fn schema_json_has_every_field() {
        let json = serde_json::to_value(RenderFrame::SCHEMA).unwrap();
        assert_eq!(json["name"], "RenderFrame");
        assert_eq!(json["magic"], "GFRM");
        assert_eq!(json["size"], 192);
        let fields = json["fields"].as_array().unwrap();
        assert_eq!(fields.len(), RenderFrame::SCHEMA.fields.len());
        assert_eq!(fields[1]["name"], "version");
        assert_eq!(fields[1]["offset"], 4);
        assert_eq!(fields[1]["type"], "u16");
    }

    #[test]
    fn titles_are_cut_at_a_character_boundary() {
        let t = RenderFrame::title_bytes(&"\u{e9}".repeat(40)); // 80 bytes
        assert_eq!(&t[..], "\u{e9}".repeat(32).as_bytes());
        let t = RenderFrame::title_bytes(&format!("a{}", "\u{e9}".repeat(40)));
        assert_eq!(t[63], 0, "half a character is not kept");
        let f = RenderFrame {
            title: RenderFrame::title_bytes("Neural Console"),
            ..bytemuck::Zeroable::zeroed()
        };
        assert_eq!(f.title_text(), "Neural Console");
        assert_eq!((RenderFrame::MAGIC, RenderFrame::VERSION), (*b"GFRM", 2));
    }

    #[test]
    fn find_by_name_and_fingerprint() {
        assert_eq!(find_schema("renderframe").unwrap().name, "RenderFrame");
        assert_eq!(
            schema_by_fingerprint(DnaJob::FINGERPRINT).unwrap().name,
            "DnaJob"
        );
        assert!(find_schema("nope").is_none());
    }
}
