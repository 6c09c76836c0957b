//! The name this process's clients show in `gos-bus info` and the monitor.

use std::sync::Mutex;

/// Bytes of a name a client-table entry holds (`ClientEntry::name`).
pub const CLIENT_NAME_MAX: usize = 24;

static NAME: Mutex<Option<String>> = Mutex::new(None);

/// Names this process's clients from now on (publishers, subscribers and workers made after
/// the call), as `gos-bus info` and the monitor show them: a daemon's class, a tool's name.
/// Without it they are named after the executable (which, for Python, is only `python3.11`).
/// Cut to [`CLIENT_NAME_MAX`] bytes on a character boundary; control characters become `?`.
pub fn set_client_name(name: &str) {
    let clean: String = name
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    *NAME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(clean);
}

/// The name an entry records: the one set, else the executable's file name.
pub(crate) fn entry_name() -> [u8; CLIENT_NAME_MAX] {
    let set = NAME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let name = set.unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_string))
            .unwrap_or_else(|| "client".into())
    });
    let mut end = name.len().min(CLIENT_NAME_MAX);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = [0u8; CLIENT_NAME_MAX];
    out[..end].copy_from_slice(&name.as_bytes()[..end]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cut_on_a_character_boundary_and_cleaned() {
        set_client_name("thumbnail-daemon-\u{e9}\u{e9}\u{e9}\u{e9}\n");
        let n = entry_name();
        let text = std::str::from_utf8(&n).unwrap().trim_end_matches('\0');
        assert_eq!(text, "thumbnail-daemon-\u{e9}\u{e9}\u{e9}");
        set_client_name("a\nb");
        assert_eq!(&entry_name()[..4], b"a?b\0");
    }
}
