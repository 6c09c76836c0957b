//! Bus and ring names, and the POSIX shared-memory object names built from them.

use crate::error::{Error, Result};

/// Longest bus or ring name in bytes (a ring name must fit `RingHeader::ring_name`).
pub const MAX_NAME: usize = 63;
/// The default bus name.
pub const DEFAULT_BUS: &str = "geometry";
/// Prefix of every shared-memory object of gos-bus.
pub const SHM_PREFIX: &str = "gos.";
/// Where POSIX shared-memory objects live on Linux.
pub const SHM_DIR: &str = "/dev/shm";

fn check(kind: &'static str, name: &str, allow_dot: bool) -> Result<()> {
    let bad = |reason: &str| Error::InvalidName {
        kind,
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if name.is_empty() {
        return Err(bad("it is empty"));
    }
    if name.len() > MAX_NAME {
        return Err(bad(&format!("it is longer than {MAX_NAME} bytes")));
    }
    if name.starts_with('.') || name.starts_with('-') {
        return Err(bad("it must not start with '.' or '-'"));
    }
    if name.contains("..") {
        return Err(bad("it must not contain '..'"));
    }
    if let Some(c) = name
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || (allow_dot && c == '.')))
    {
        return Err(bad(&format!(
            "it contains {c:?}; use letters, digits, '_', '-'{}",
            if allow_dot { " and '.'" } else { "" }
        )));
    }
    Ok(())
}

/// Validates a bus name: letters, digits, `_` and `-` (no `.`, which separates the ring).
pub fn check_bus(name: &str) -> Result<()> {
    check("bus", name, false)
}

/// Validates a ring name: letters, digits, `_`, `-` and `.`; no `/`, no `..`.
pub fn check_ring(name: &str) -> Result<()> {
    check("ring", name, true)
}

/// The shared-memory object name of a ring, e.g. `/gos.geometry.render.frames`.
pub fn ring_object(bus: &str, ring: &str) -> Result<String> {
    check_bus(bus)?;
    check_ring(ring)?;
    Ok(format!("/{SHM_PREFIX}{bus}.{ring}"))
}

/// Where the object appears in the file system, for messages.
pub fn object_path(object: &str) -> String {
    format!("{SHM_DIR}{object}")
}

/// The ring names of `bus` found in `/dev/shm`, sorted.
pub fn list_rings(bus: &str) -> Result<Vec<String>> {
    check_bus(bus)?;
    let prefix = format!("{SHM_PREFIX}{bus}.");
    let dir = std::fs::read_dir(SHM_DIR).map_err(|e| Error::Os {
        op: "list",
        path: SHM_DIR.to_string(),
        source: e,
    })?;
    let mut out: Vec<String> = dir
        .filter_map(|d| d.ok())
        .filter_map(|d| d.file_name().into_string().ok())
        .filter_map(|n| n.strip_prefix(&prefix).map(str::to_string))
        .filter(|r| check_ring(r).is_ok())
        .collect();
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_names() {
        assert_eq!(
            ring_object("geometry", "render.frames").unwrap(),
            "/gos.geometry.render.frames"
        );
        assert!(check_ring("dna_jobs-2").is_ok());
    }

    #[test]
    fn bad_names_say_why() {
        for (bus, ring, needle) in [
            ("geometry", "a/b", "'/'"),
            ("geometry", "a..b", "'..'"),
            ("geometry", "", "empty"),
            ("geo.metry", "x", "'.'"),
            ("geometry", ".hidden", "start"),
        ] {
            let e = ring_object(bus, ring).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
        let long = "x".repeat(64);
        assert!(ring_object("geometry", &long)
            .unwrap_err()
            .to_string()
            .contains("longer than 63"));
    }
}
