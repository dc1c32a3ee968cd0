//! Opaque pagination cursors over a sorted list: a cursor is the (base64) key of the last item
//! of the previous page, so it stays meaningful when the list changes between pages.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::error::GatewayError;

/// Items after `cursor` in `sorted` (sorted by `key`), at most `size`, and the next cursor.
pub fn page<E, T>(
    sorted: &[E],
    cursor: Option<&str>,
    size: usize,
    key: impl Fn(&E) -> &str,
    item: impl Fn(&E) -> T,
) -> Result<(Vec<T>, Option<String>), GatewayError> {
    let start = match cursor {
        None => 0,
        Some(cursor) => {
            let last = decode(cursor).ok_or_else(|| GatewayError::InvalidCursor {
                cursor: cursor.to_owned(),
            })?;
            sorted.partition_point(|entry| key(entry) <= last.as_str())
        }
    };
    let end = sorted.len().min(start.saturating_add(size.max(1)));
    let page = sorted[start..end].iter().map(item).collect();
    let next = (end < sorted.len()).then(|| encode(key(&sorted[end - 1])));
    Ok((page, next))
}

fn encode(last_key: &str) -> String {
    URL_SAFE_NO_PAD.encode(last_key)
}

fn decode(cursor: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips() {
        assert_eq!(decode(&encode("a__b")).as_deref(), Some("a__b"));
        assert_eq!(decode("***"), None);
    }

    #[test]
    fn pages_cover_everything_once() {
        let items = ["a", "b", "c", "d", "e"];
        let mut cursor = None;
        let mut seen = Vec::new();
        loop {
            let (page, next) = page(&items, cursor.as_deref(), 2, |s| s, |s| *s).unwrap();
            seen.extend(page);
            match next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, items);
    }
}
