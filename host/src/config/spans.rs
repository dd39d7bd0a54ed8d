//! Where things are in provisioner.toml: lines, columns and keys from toml's spans,
//! and values cut short for messages.

use std::collections::BTreeMap;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::QUOTE_LIMIT;

pub(super) fn line_of(source: &str, offset: usize) -> usize {
    source.as_bytes()[..offset.min(source.len())].iter().filter(|b| **b == b'\n').count() + 1
}

/// 1-based column of a byte offset, in characters.
pub(super) fn column_of(source: &str, offset: usize) -> usize {
    let offset = offset.min(source.len());
    let line_start = source.as_bytes()[..offset].iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    source.get(line_start..offset).map_or(offset - line_start, |s| s.chars().count()) + 1
}

/// `text` as a message may quote it: whole if short, else its first characters and
/// its size.
pub fn clip(text: &str) -> String {
    match text.char_indices().nth(QUOTE_LIMIT) {
        None => text.to_string(),
        Some((cut, _)) => format!("{}…({} bytes)", &text[..cut], text.len()),
    }
}

/// Clip every quoted stretch ("…" with escapes, or `…`) of a message from a parser or
/// deserializer, which quote the offending value whatever its size.
pub(super) fn clip_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(1024));
    let mut rest = message;
    while let Some(open) = rest.find(['"', '`']) {
        let quote = rest.as_bytes()[open];
        out.push_str(&rest[..=open]);
        let body = &rest[open + 1..];
        // The closing quote, skipping backslash escapes inside "…".
        let mut close = None;
        let mut escaped = false;
        for (i, b) in body.bytes().enumerate() {
            if escaped {
                escaped = false;
            } else if b == b'\\' && quote == b'"' {
                escaped = true;
            } else if b == quote {
                close = Some(i);
                break;
            }
        }
        let end = close.unwrap_or(body.len());
        out.push_str(&clip(&body[..end]));
        match close {
            Some(end) => {
                out.push(quote as char);
                rest = &body[end + 1..];
            }
            None => rest = "",
        }
    }
    out.push_str(rest);
    out
}

/// `prefix.key`, quoting a key that is not a bare TOML key so the path reads back
/// unambiguously (`env."a.b"`).
pub fn join_key(prefix: &str, key: &str) -> String {
    let bare = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let key = if bare { clip(key) } else { format!("{:?}", clip(key)) };
    if prefix.is_empty() {
        key
    } else {
        format!("{prefix}.{key}")
    }
}

pub(super) fn span_holds(span: &std::ops::Range<usize>, offset: usize) -> bool {
    span.start <= offset && (offset < span.end || span.is_empty() && offset == span.start)
}

/// The key path (`services.web.replicas`, `a.b[0]`) of the innermost key or value
/// at `offset` in a parsed document, for deserializer errors, which know the
/// span of what they refused but do not tell its key.
pub(super) fn key_at(table: &DeTable<'_>, offset: usize, prefix: &str) -> Option<String> {
    for (key, value) in table.iter() {
        let path = join_key(prefix, key.get_ref());
        // Deepest first: a header table's own span can cover its whole section.
        if let Some(found) = value_key_at(value, offset, &path) {
            return Some(found);
        }
        if span_holds(&key.span(), offset) {
            return Some(path);
        }
    }
    None
}

pub(super) fn value_key_at(value: &Spanned<DeValue<'_>>, offset: usize, path: &str) -> Option<String> {
    let inner = match value.get_ref() {
        DeValue::Table(table) => key_at(table, offset, path),
        DeValue::Array(items) => {
            items.iter().enumerate().find_map(|(i, item)| value_key_at(item, offset, &format!("{path}[{i}]")))
        }
        _ => None,
    };
    inner.or_else(|| span_holds(&value.span(), offset).then(|| path.to_string()))
}

/// The value at a key path given as segments, in a parsed document.
pub(super) fn lookup<'d, 'i>(table: &'d DeTable<'i>, path: &[&str]) -> Option<&'d Spanned<DeValue<'i>>> {
    let (first, rest) = path.split_first()?;
    let value = table.iter().find(|(k, _)| k.get_ref() == first).map(|(_, v)| v)?;
    if rest.is_empty() {
        return Some(value);
    }
    match value.get_ref() {
        DeValue::Table(inner) => lookup(inner, rest),
        _ => None,
    }
}

/// The line of every value under a service's `config`, by its path inside `config`
/// (`env.DATABASE_URL`, `command[0]`), so checks of the config can name the line of
/// the key itself rather than the service's.
pub(super) fn value_lines(value: &Spanned<DeValue<'_>>, path: &str, source: &str, lines: &mut BTreeMap<String, usize>) {
    if !path.is_empty() {
        lines.insert(path.to_string(), line_of(source, value.span().start));
    }
    match value.get_ref() {
        DeValue::Table(table) => {
            for (key, inner) in table.iter() {
                value_lines(inner, &join_key(path, key.get_ref()), source, lines);
            }
        }
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                value_lines(item, &format!("{path}[{i}]"), source, lines);
            }
        }
        _ => {}
    }
}
