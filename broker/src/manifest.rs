//! The broker's manifest: which rings a bus has, in TOML.
//!
//! ```toml
//! [[ring]]
//! name = "render.frames"     # required
//! mode = "broadcast"         # broadcast (default) | work-queue
//! layout = "RenderFrame"     # a layout of `gos-bus layouts`; default Bytes
//! policy = "overwrite"       # block (default) | overwrite (broadcast only)
//! slots = 8                  # a power of two; default 1024
//! slot_size = "8101KiB"      # bytes, or a string with B, KiB, MiB, GiB; default 4KiB
//! permissions = "0600"       # octal; default 0600
//! single_producer = false    # one publisher at a time; default false
//! max_clients = 64           # default 64
//! ```

use gos_bus_protocol::{name, RingConfig};
use gos_bus_protocol::{Error, Result};
use gos_bus_protocol::{Mode, Policy};
use serde::Deserialize;

/// The manifest compiled into `gos-bus`: the Geometry OS rings.
pub const DEFAULT_MANIFEST: &str = include_str!("default_manifest.toml");

/// Parses a size: a number of bytes, or a string such as `4096`, `64KiB`, `8MiB`.
pub fn parse_size(s: &str) -> std::result::Result<u32, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (try 4096, 64KiB or 8MiB)"))?;
    let mul: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1 << 10,
        "m" | "mib" | "mb" => 1 << 20,
        "g" | "gib" | "gb" => 1 << 30,
        u => return Err(format!("unknown size unit {u:?} (use B, KiB, MiB or GiB)")),
    };
    n.checked_mul(mul)
        .filter(|v| *v <= u32::MAX as u64)
        .map(|v| v as u32)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Parses permission bits written in octal, such as `0600`.
pub fn parse_octal(s: &str) -> std::result::Result<u32, String> {
    u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("{s:?} is not an octal mode such as 0600"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    ring: Vec<Spec>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Size {
    Bytes(u64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    name: String,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    layout: Option<String>,
    #[serde(default)]
    policy: Option<String>,
    #[serde(default)]
    slots: Option<u32>,
    #[serde(default)]
    slot_size: Option<Size>,
    #[serde(default)]
    permissions: Option<String>,
    #[serde(default)]
    single_producer: Option<bool>,
    #[serde(default)]
    max_clients: Option<u32>,
}

/// A parsed, validated manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Where it came from (a path, or "the embedded default manifest").
    pub origin: String,
    /// The rings, in manifest order.
    pub rings: Vec<(String, RingConfig)>,
}

impl Manifest {
    /// The embedded Geometry OS manifest.
    pub fn default_geometry() -> Manifest {
        Manifest::parse(DEFAULT_MANIFEST, "the embedded default manifest")
            .expect("the embedded manifest is valid (tested)")
    }

    /// Reads and parses a manifest file.
    pub fn load(path: &std::path::Path) -> Result<Manifest> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| Error::Manifest {
            origin: origin.clone(),
            problem: format!("cannot read it: {e}"),
        })?;
        Manifest::parse(&text, &origin)
    }

    /// Parses manifest text; every error names the ring, the field and the reason.
    pub fn parse(text: &str, origin: &str) -> Result<Manifest> {
        let bad = |problem: String| Error::Manifest {
            origin: origin.to_string(),
            problem,
        };
        let file: File = toml::from_str(text).map_err(|e| bad(e.to_string().trim().to_string()))?;
        if file.ring.is_empty() {
            return Err(bad("it lists no ring (add a [[ring]] table)".into()));
        }
        let mut rings: Vec<(String, RingConfig)> = Vec::new();
        for spec in file.ring {
            let ring = spec.name.clone();
            let field = |f: &str, why: String| bad(format!("ring '{ring}': field `{f}`: {why}"));
            name::check_ring(&ring).map_err(|e| field("name", e.to_string()))?;
            if rings.iter().any(|(n, _)| *n == ring) {
                return Err(field("name", "a ring of this name is listed twice".into()));
            }
            let mode = match spec.mode.as_deref().unwrap_or("broadcast") {
                "broadcast" => Mode::Broadcast,
                "work-queue" => Mode::WorkQueue,
                m => {
                    return Err(field(
                        "mode",
                        format!("{m:?} is not broadcast or work-queue"),
                    ))
                }
            };
            let policy = match spec.policy.as_deref().unwrap_or("block") {
                "block" => Policy::Block,
                "overwrite" => Policy::OverwriteOldest,
                p => return Err(field("policy", format!("{p:?} is not block or overwrite"))),
            };
            let layout_name = spec.layout.as_deref().unwrap_or("Bytes");
            let layout = gos_layouts::find_schema(layout_name).ok_or_else(|| {
                let known: Vec<&str> = gos_layouts::message_schemas()
                    .iter()
                    .map(|s| s.name)
                    .collect();
                field(
                    "layout",
                    format!(
                        "unknown layout {layout_name:?}; known: {}",
                        known.join(", ")
                    ),
                )
            })?;
            let slot_size = match spec.slot_size {
                None => 4096,
                Some(Size::Bytes(n)) => u32::try_from(n)
                    .map_err(|_| field("slot_size", format!("{n} is larger than 4 GiB")))?,
                Some(Size::Text(t)) => parse_size(&t).map_err(|e| field("slot_size", e))?,
            };
            let permissions = match spec.permissions {
                None => 0o600,
                Some(p) => parse_octal(&p).map_err(|e| field("permissions", e))?,
            };
            let cfg = RingConfig {
                mode,
                policy,
                slot_count: spec.slots.unwrap_or(1024),
                slot_size,
                max_clients: spec.max_clients.unwrap_or(64),
                layout,
                permissions,
                single_producer: spec.single_producer.unwrap_or(false),
            };
            gos_bus_protocol::segment::check_config(&cfg).map_err(|(f, why)| field(f, why))?;
            rings.push((ring, cfg));
        }
        Ok(Manifest {
            origin: origin.to_string(),
            rings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_manifest_has_the_geometry_os_rings() {
        let m = Manifest::default_geometry();
        let names: Vec<&str> = m.rings.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "rts.textures",
                "dna.jobs",
                "dna.results",
                "render.frames",
                "render.output",
                "terrain.bricks",
                "dead.letters",
                "events"
            ]
        );
        let (_, frames) = &m.rings[3];
        assert_eq!(m.rings[6].0, "dead.letters");
        assert!(
            frames.slot_size as usize >= size_of::<gos_layouts::RenderFrame>() + 1920 * 1080 * 4
        );
        assert_eq!(frames.policy, Policy::OverwriteOldest);
        let (_, rts) = &m.rings[0];
        assert!(
            rts.slot_size as usize
                >= size_of::<gos_layouts::RtsTexture>() + 2048 * 2048 * 4 + 65536
        );
        assert_eq!(m.rings[1].1.mode, Mode::WorkQueue);
    }

    #[test]
    fn bad_manifests_name_field_and_reason() {
        for (text, needle) in [
            (
                "[[ring]]\nname = \"a\"\nslots = 3\n",
                "ring 'a': field `slots`: 3 is not a power of two",
            ),
            (
                "[[ring]]\nname = \"a\"\nmode = \"fifo\"\n",
                "ring 'a': field `mode`: \"fifo\" is not broadcast or work-queue",
            ),
            (
                "[[ring]]\nname = \"a\"\nlayout = \"Nope\"\n",
                "field `layout`: unknown layout \"Nope\"",
            ),
            (
                "[[ring]]\nname = \"a\"\nslot_size = \"9XB\"\n",
                "field `slot_size`: unknown size unit",
            ),
            (
                "[[ring]]\nname = \"a\"\nslotz = 8\n",
                "unknown field `slotz`",
            ),
            ("[[ring]]\nname = \"a/b\"\n", "field `name`"),
            (
                "[[ring]]\nname = \"a\"\n[[ring]]\nname = \"a\"\n",
                "listed twice",
            ),
            (
                "[[ring]]\nname = \"a\"\nmode = \"work-queue\"\npolicy = \"overwrite\"\n",
                "work queue cannot use overwrite",
            ),
            (
                "[[ring]]\nname = \"a\"\npermissions = \"999\"\n",
                "field `permissions`",
            ),
            ("", "lists no ring"),
            ("[[ring]\n", "manifest"),
        ] {
            let e = Manifest::parse(text, "test.toml").unwrap_err().to_string();
            assert!(e.contains(needle), "{text:?}: {e}");
            assert!(e.starts_with("manifest test.toml"), "{e}");
        }
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("8MiB"), Ok(8 << 20));
        assert!(parse_size("5GiB").is_err());
        assert_eq!(parse_octal("0640"), Ok(0o640));
        assert!(parse_octal("0800").is_err());
    }
}
