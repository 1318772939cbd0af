//! Text as the monitor tables' `varchar` columns take it.
//!
//! The upstream tables are `utf8` (3-byte UTF-8) with fixed widths, and one value that does not
//! fit fails a whole multi-row `INSERT`, so stat and property fit every text before it becomes
//! part of a key.

use std::borrow::Cow;

/// `s` as it can be stored in a MySQL `utf8` (3-byte) column of `max_chars` characters: cut
/// after `max_chars` characters (never inside one), and every character outside the Basic
/// Multilingual Plane (4 bytes in UTF-8, e.g. emoji) replaced with U+FFFD.
///
/// Why: one such character makes MySQL reject the whole multi-row `INSERT`, and in strict mode
/// so does one over-long value. Borrows when nothing has to change (the common case: ASCII
/// that fits), so calling it on every key costs a scan and no allocation.
pub fn column_text(s: &str, max_chars: usize) -> Cow<'_, str> {
    if s.len() <= max_chars && s.is_ascii() {
        return Cow::Borrowed(s);
    }
    let end = s.char_indices().nth(max_chars).map_or(s.len(), |(i, _)| i);
    let kept = s.get(..end).unwrap_or(s);
    if !kept.chars().any(|c| c.len_utf8() == 4) {
        return Cow::Borrowed(kept);
    }
    Cow::Owned(kept.chars().map(|c| if c.len_utf8() == 4 { char::REPLACEMENT_CHARACTER } else { c }).collect())
}

/// `s` after [`column_text`], reusing its allocation when only a cut is needed.
pub fn fit(mut s: String, max_chars: usize) -> String {
    let keep = match column_text(&s, max_chars) {
        Cow::Owned(replaced) => return replaced,
        Cow::Borrowed(kept) => kept.len(),
    };
    s.truncate(keep);
    s
}
