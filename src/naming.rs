//! The names clients see: `{prefix}{tool}`, made safe for the big clients.
//!
//! Exposed names must match `^[a-zA-Z0-9_-]{1,64}$`. Other characters become `_`; a name
//! that is still too long keeps its first 55 characters and gets `_` plus 8 hex digits of a
//! SHA-256 of the full unsafe name, so the short form is stable across restarts and distinct
//! for distinct long names. Routing never parses these names back: it looks them up.

use sha2::{Digest, Sha256};

/// The longest name the major clients accept.
pub const MAX_NAME_LEN: usize = 64;
const HASH_HEX_LEN: usize = 8;

/// The client-safe name of `tool` behind `prefix`.
pub fn exposed_name(prefix: &str, tool: &str) -> String {
    let raw = format!("{prefix}{tool}");
    let mut safe: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.is_empty() || safe.len() > MAX_NAME_LEN {
        // `safe` is ASCII by construction, so byte truncation lands on a char boundary.
        safe.truncate(MAX_NAME_LEN - HASH_HEX_LEN - 1);
        safe.push('_');
        safe.push_str(&short_hash(&raw));
    }
    safe
}

fn short_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest
        .iter()
        .take(HASH_HEX_LEN / 2)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Whether a name is acceptable to clients as it stands.
pub fn is_client_safe(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_prefix_joins_with_double_underscore() {
        assert_eq!(
            exposed_name("time__", "get_current_time"),
            "time__get_current_time"
        );
    }

    #[test]
    fn empty_prefix_passes_names_through() {
        assert_eq!(exposed_name("", "echo"), "echo");
    }

    #[test]
    fn unsafe_characters_become_underscores() {
        assert_eq!(exposed_name("fs__", "read file.v2/x"), "fs__read_file_v2_x");
    }

    #[test]
    fn long_names_are_shortened_stably_and_distinctly() {
        let a = exposed_name("x__", &"a".repeat(100));
        let b = exposed_name("x__", &format!("{}b", "a".repeat(99)));
        assert_eq!(a.len(), MAX_NAME_LEN);
        assert!(is_client_safe(&a));
        assert_ne!(a, b);
        assert_eq!(a, exposed_name("x__", &"a".repeat(100)));
    }

    #[test]
    fn non_ascii_is_replaced_per_character() {
        let name = exposed_name("", "météo");
        assert_eq!(name, "m_t_o");
        assert!(is_client_safe(&name));
    }

    #[test]
    fn empty_name_gets_a_hash() {
        assert!(is_client_safe(&exposed_name("", "")));
    }
}
