//! What a plugin says, made safe to print: no escape sequences or other control
//! characters reach the terminal (a plugin could retitle it, clear the screen or
//! print a fake "all services ready"), and nothing is printed uncut.

/// Longest plugin-supplied text (an error, a not-yet reason) shown in full.
pub const MAX_SHOWN: usize = 8192;

/// `text` with control characters replaced by `?` (newlines and tabs kept when
/// `multiline`), cut to `max` bytes with a note of how much was left out.
pub fn printable(text: &str, max: usize, multiline: bool) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() && !(multiline && (c == '\n' || c == '\t')) { '?' } else { c })
        .collect();
    if out.len() > max {
        let mut cut = max;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        let dropped = out.len() - cut;
        out.truncate(cut);
        out.push_str(&format!("… ({dropped} more bytes not shown)"));
    }
    out
}

/// What stands in a secret's place wherever a secret is masked.
pub const SECRET_PLACEHOLDER: &str = "***";

/// `text` with every occurrence of each of `secrets`, in the order given, replaced by
/// [`SECRET_PLACEHOLDER`]. Empty secrets are skipped: replacing "" would put the
/// placeholder between every character. A caller with secrets that contain one
/// another passes the longest first, so that the longer is masked whole.
pub fn mask_secrets<S: AsRef<str>>(text: &str, secrets: impl IntoIterator<Item = S>) -> String {
    let mut text = text.to_string();
    for secret in secrets {
        let secret = secret.as_ref();
        // `contains` first: most text holds no secret, and `replace` always copies.
        if !secret.is_empty() && text.contains(secret) {
            text = text.replace(secret, SECRET_PLACEHOLDER);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_never_reach_the_terminal_and_long_text_is_cut() {
        assert_eq!(printable("\x1b]0;owned\x07\x1b[2Jready", 100, false), "?]0;owned??[2Jready");
        assert_eq!(printable("a\nb\r\tc", 100, true), "a\nb?\tc");
        assert_eq!(printable("a\nb", 100, false), "a?b");
        let long = printable(&"x".repeat(10_000), 10, false);
        assert_eq!(long, format!("{}… (9990 more bytes not shown)", "x".repeat(10)));
    }

    #[test]
    fn secrets_are_masked_in_order_and_empty_ones_skipped() {
        assert_eq!(mask_secrets("user=app pass=s3cret s3cret", ["s3cret", ""]), "user=app pass=*** ***");
        assert_eq!(mask_secrets("abcd", ["abcd", "bc"]), "***");
        assert_eq!(mask_secrets("abcd", ["bc", "abcd"]), "a***d");
        assert_eq!(mask_secrets("nothing here", Vec::<String>::new()), "nothing here");
    }
}

/// A byte count as people read it: `512 B`, `12.3 MiB`, `1.02 GiB`.
pub fn bytes(count: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if count < 1024 {
        return format!("{count} B");
    }
    let mut value = count as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value >= 100.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
