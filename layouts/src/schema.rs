//! Self-description of a record: its schema and the 64-bit fingerprint computed from it.
//!
//! Every field is little-endian. The fingerprint is FNV-1a (64-bit) over a canonical byte
//! stream, so any language can recompute it from the JSON printed by `gos-bus layouts --json`:
//!
//! ```text
//! magic (4 bytes) | name (UTF-8) | 0x00 | version (u16 LE) | size (u32 LE) | align (u32 LE)
//! then for every field, in offset order:
//! name (UTF-8) | 0x00 | offset (u32 LE) | scalar code (u8) | count (u32 LE)
//! ```

use serde::Serialize;

/// The scalar type of a field (or of each element of an array field).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scalar {
    /// Unsigned 8-bit integer.
    U8,
    /// Unsigned 16-bit integer.
    U16,
    /// Unsigned 32-bit integer.
    U32,
    /// Unsigned 64-bit integer.
    U64,
    /// Signed 32-bit integer.
    I32,
    /// Signed 64-bit integer.
    I64,
    /// IEEE-754 binary32.
    F32,
    /// IEEE-754 binary64.
    F64,
}

impl Scalar {
    /// The code of this scalar in the fingerprint stream.
    pub const fn code(self) -> u8 {
        match self {
            Scalar::U8 => 1,
            Scalar::U16 => 2,
            Scalar::U32 => 3,
            Scalar::U64 => 4,
            Scalar::I32 => 5,
            Scalar::I64 => 6,
            Scalar::F32 => 7,
            Scalar::F64 => 8,
        }
    }

    /// Size of one element in bytes.
    pub const fn size(self) -> usize {
        match self {
            Scalar::U8 => 1,
            Scalar::U16 => 2,
            Scalar::U32 | Scalar::I32 | Scalar::F32 => 4,
            Scalar::U64 | Scalar::I64 | Scalar::F64 => 8,
        }
    }

    /// Lower-case name, as printed in tables and JSON.
    pub const fn name(self) -> &'static str {
        match self {
            Scalar::U8 => "u8",
            Scalar::U16 => "u16",
            Scalar::U32 => "u32",
            Scalar::U64 => "u64",
            Scalar::I32 => "i32",
            Scalar::I64 => "i64",
            Scalar::F32 => "f32",
            Scalar::F64 => "f64",
        }
    }
}

/// A Rust type that can be a field of a record: a scalar or an array of scalars.
pub trait FieldType {
    /// The element type.
    const SCALAR: Scalar;
    /// Number of elements (1 for a plain scalar).
    const COUNT: u32;
}

macro_rules! scalar_field {
    ($($t:ty => $s:ident),* $(,)?) => {
        $(impl FieldType for $t {
            const SCALAR: Scalar = Scalar::$s;
            const COUNT: u32 = 1;
        })*
    };
}
scalar_field!(u8 => U8, u16 => U16, u32 => U32, u64 => U64, i32 => I32, i64 => I64, f32 => F32, f64 => F64);

impl<T: FieldType, const N: usize> FieldType for [T; N] {
    const SCALAR: Scalar = T::SCALAR;
    const COUNT: u32 = T::COUNT * N as u32;
}

/// One field of a record's schema.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Field {
    /// Field name.
    pub name: &'static str,
    /// Byte offset from the start of the record.
    pub offset: u32,
    /// Element type.
    #[serde(rename = "type")]
    pub scalar: Scalar,
    /// Number of elements; 1 for a scalar, N for an array `[T; N]`.
    pub count: u32,
    /// What the field means.
    pub doc: &'static str,
}

/// The complete description of a record, as stored in shared memory and printed as JSON.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Schema {
    /// Record name, e.g. `RenderFrame`.
    pub name: &'static str,
    /// Four-byte magic, as ASCII.
    #[serde(serialize_with = "magic_as_str")]
    pub magic: [u8; 4],
    /// Layout version.
    pub version: u16,
    /// Size in bytes.
    pub size: u32,
    /// Alignment in bytes.
    pub align: u32,
    /// Byte order of every field (always `little`).
    pub endian: &'static str,
    /// 64-bit fingerprint of this schema.
    #[serde(serialize_with = "hex_u64")]
    pub fingerprint: u64,
    /// What the record is for.
    pub doc: &'static str,
    /// The fields in offset order.
    pub fields: &'static [Field],
}

fn magic_as_str<S: serde::Serializer>(m: &[u8; 4], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(m))
}

fn hex_u64<S: serde::Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{v:#018x}"))
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

const fn fnv_bytes(mut h: u64, bytes: &[u8]) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(FNV_PRIME);
        i += 1;
    }
    h
}

const fn fnv_u32(h: u64, v: u32) -> u64 {
    fnv_bytes(h, &v.to_le_bytes())
}

/// Computes the fingerprint of a schema (see the module documentation for the byte stream).
pub const fn fingerprint(
    magic: [u8; 4],
    name: &str,
    version: u16,
    size: u32,
    align: u32,
    fields: &[Field],
) -> u64 {
    let mut h = fnv_bytes(FNV_OFFSET, &magic);
    h = fnv_bytes(h, name.as_bytes());
    h = fnv_bytes(h, &[0]);
    h = fnv_bytes(h, &version.to_le_bytes());
    h = fnv_u32(h, size);
    h = fnv_u32(h, align);
    let mut i = 0;
    while i < fields.len() {
        let f = &fields[i];
        h = fnv_bytes(h, f.name.as_bytes());
        h = fnv_bytes(h, &[0]);
        h = fnv_u32(h, f.offset);
        h = fnv_bytes(h, &[f.scalar.code()]);
        h = fnv_u32(h, f.count);
        i += 1;
    }
    h
}

/// A fixed binary layout: `#[repr(C)]`, plain old data, with a schema.
pub trait Record: bytemuck::Pod {
    /// The record's schema.
    const SCHEMA: Schema;
    /// Shorthand for `SCHEMA.fingerprint`.
    const FINGERPRINT: u64 = Self::SCHEMA.fingerprint;
}

/// Checks at compile time that a field list tiles a record exactly: fields in offset order,
/// no overlap, no gap, ending at `size`. Used by [`crate::record!`].
pub const fn fields_tile(fields: &[Field], size: u32) -> bool {
    let mut end = 0u32;
    let mut i = 0;
    while i < fields.len() {
        let f = &fields[i];
        if f.offset != end {
            return false;
        }
        end = f.offset + f.count * f.scalar.size() as u32;
        i += 1;
    }
    end == size
}

/// Defines a record: the `#[repr(C)]` Pod struct, compile-time assertions of its size,
/// alignment and every field offset, and its [`Record`] implementation with the schema.
#[macro_export]
macro_rules! record {
    (
        $(#[doc = $doc:literal])*
        pub struct $name:ident : magic $magic:literal, version $version:literal, size $size:literal, align $align:literal {
            $( $(#[doc = $fdoc:literal])* pub $field:ident : $ty:ty = $off:literal, )*
        }
    ) => {
        $(#[doc = $doc])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
        pub struct $name {
            $( $(#[doc = $fdoc])* pub $field: $ty, )*
        }

        const _: () = assert!(::core::mem::size_of::<$name>() == $size, "record size");
        const _: () = assert!(::core::mem::align_of::<$name>() == $align, "record alignment");
        $( const _: () = assert!(::core::mem::offset_of!($name, $field) == $off, concat!("offset of ", stringify!($field))); )*

        impl $crate::schema::Record for $name {
            const SCHEMA: $crate::schema::Schema = {
                const FIELDS: &[$crate::schema::Field] = &[
                    $( $crate::schema::Field {
                        name: stringify!($field),
                        offset: $off,
                        scalar: <$ty as $crate::schema::FieldType>::SCALAR,
                        count: <$ty as $crate::schema::FieldType>::COUNT,
                        doc: concat!($($fdoc),*).trim_ascii(),
                    }, )*
                ];
                const _: () = assert!($crate::schema::fields_tile(FIELDS, $size), "fields must tile the record");
                $crate::schema::Schema {
                    name: stringify!($name),
                    magic: *$magic,
                    version: $version,
                    size: $size,
                    align: $align,
                    endian: "little",
                    fingerprint: $crate::schema::fingerprint(*$magic, stringify!($name), $version, $size, $align, FIELDS),
                    doc: concat!($($doc),*).trim_ascii(),
                    fields: FIELDS,
                }
            };
        }

        impl $name {
            /// The record's magic.
            pub const MAGIC: [u8; 4] = *$magic;
            /// The record's layout version.
            pub const VERSION: u16 = $version;
        }
    };
}

/// A named constant of the layouts (a field's code, flag or default), published beside the
/// schemas (`constants` in `gos-bus layouts --json`, the registry and the C ABI's
/// `gos_layouts_json`) so that clients in other languages read it instead of copying it.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Constant {
    /// The Rust name, e.g. `DNA_STATUS_OK`.
    pub name: &'static str,
    /// Its value.
    pub value: i64,
    /// What it means.
    pub doc: &'static str,
}

/// Declares constants and, under `$list`, the [`Constant`] table that publishes them.
#[macro_export]
macro_rules! constants {
    (
        $list:ident;
        $( $(#[doc = $doc:literal])+ pub const $name:ident : $ty:ty = $value:expr; )*
    ) => {
        $( $(#[doc = $doc])+ pub const $name: $ty = $value; )*
        /// The constants above, for [`crate::constants`].
        pub(crate) const $list: &[$crate::schema::Constant] = &[$(
            $crate::schema::Constant {
                name: stringify!($name),
                value: $name as i64,
                doc: concat!($($doc),+),
            },
        )*];
    };
}
