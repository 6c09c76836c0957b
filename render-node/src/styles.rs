//! Named shader styles: WGSL effects a window names (`RenderFrame::style`), built in
//! ([`BUILT_IN`]: `crt_cyan`) or loaded from a folder of `NAME.wgsl` files that is watched
//! for changes ([`StyleFolder`]). A style that fails validation is reported in one line and
//! its last good version stays.

use crate::Compositor;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// The styles every node has: (name, WGSL).
pub const BUILT_IN: &[(&str, &str)] = &[("crt_cyan", include_str!("../styles/crt_cyan.wgsl"))];

/// Loads the built-in styles into `c`.
pub fn load_built_in(c: &mut Compositor) -> Result<(), String> {
    for (name, source) in BUILT_IN {
        c.load_style(name, source)
            .map_err(|e| format!("built-in style {name}: {e}"))?;
    }
    Ok(())
}

/// A folder of `NAME.wgsl` styles, loaded when first seen and again whenever a file's
/// modification time changes (checked at most every `every`).
pub struct StyleFolder {
    dir: PathBuf,
    every: Duration,
    checked: Option<Instant>,
    seen: HashMap<PathBuf, SystemTime>,
}

impl StyleFolder {
    /// Watches `dir`, looking at most every `every`.
    pub fn new(dir: &Path, every: Duration) -> StyleFolder {
        StyleFolder {
            dir: dir.to_path_buf(),
            every,
            checked: None,
            seen: HashMap::new(),
        }
    }

    /// Loads the styles that are new or changed since the last look (when `every` has passed)
    /// into `c`; returns one line per file loaded or refused, to be printed.
    pub fn poll(&mut self, c: &mut Compositor) -> Vec<String> {
        if self.checked.is_some_and(|t| t.elapsed() < self.every) {
            return Vec::new();
        }
        self.checked = Some(Instant::now());
        let mut said = Vec::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) => {
                if self
                    .seen
                    .insert(self.dir.clone(), SystemTime::UNIX_EPOCH)
                    .is_none()
                {
                    said.push(format!("styles folder {}: {e}", self.dir.display()));
                }
                return said;
            }
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
            .collect();
        paths.sort();
        for path in paths {
            let Ok(modified) = std::fs::metadata(&path).and_then(|m| m.modified()) else {
                continue;
            };
            if self.seen.get(&path) == Some(&modified) {
                continue;
            }
            self.seen.insert(path.clone(), modified);
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let result = std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|source| c.load_style(&name, &source));
            said.push(match result {
                Ok(()) => format!("style {name} loaded from {}", path.display()),
                Err(e) => format!(
                    "style {name} in {} refused: {e}; keeping the last good one",
                    path.display()
                ),
            });
        }
        said
    }
}
