//! What a plugin may hand to the application. Outputs end up in `.env`, which shells
//! (`set -a; . .env`), dotenv libraries and Compose's `env_file` read: a plugin must
//! not be able to set any variable but the ones it declared, nor one that changes how
//! programs run (`PATH`, `LD_PRELOAD`, …).

use crate::runtime::Output;

/// Most outputs one service may produce.
pub const MAX_OUTPUTS: usize = 64;
/// Longest output value, in bytes.
pub const MAX_VALUE_BYTES: usize = 8 * 1024;

/// Names that change how programs start or load code, whoever sets them.
const DENIED_NAMES: &[&str] = &[
    "PATH", "HOME", "SHELL", "ENV", "BASH_ENV", "IFS", "PS4", "PROMPT_COMMAND", "NODE_OPTIONS", "NODE_PATH",
    "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "RUBYOPT", "RUBYLIB", "PERL5OPT", "PERL5LIB",
    "GIT_SSH_COMMAND", "EDITOR", "VISUAL", "PAGER", "TMPDIR", "DYLD_INSERT_LIBRARIES",
];
const DENIED_PREFIXES: &[&str] = &["LD_", "PYTHON", "DYLD_", "GCONV_", "NODE_", "DOCKER_", "PROVISIONER_"];

/// Why an output name is refused, if it is.
pub fn check_name(name: &str) -> Result<(), String> {
    let well_formed = name.starts_with(|c: char| c.is_ascii_uppercase())
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if !well_formed {
        return Err(format!("output name `{}`: use 1 to 64 of A-Z 0-9 _, starting with a letter", printable(name)));
    }
    if DENIED_NAMES.contains(&name) || DENIED_PREFIXES.iter().any(|p| name.starts_with(p)) {
        return Err(format!("output name `{name}` would change how programs run; choose another name"));
    }
    Ok(())
}

/// Why an output value is refused, if it is. `.env` writes values single-quoted, which
/// every reader takes literally; a control character (a newline would start another
/// variable) or a single quote cannot be written so that every reader agrees.
fn check_value(name: &str, value: &str) -> Result<(), String> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(format!("output `{name}` is {} bytes; at most {MAX_VALUE_BYTES}", value.len()));
    }
    if let Some(c) = value.chars().find(|c| c.is_control() || *c == '\'') {
        return Err(format!("output `{name}` contains {c:?}, which .env readers disagree on; encode the value (e.g. URL-encode)"));
    }
    Ok(())
}

/// The outputs a service may write, checked against what its plugin declared.
pub fn check(plugin: &str, declared: &[String], outputs: &[Output]) -> Result<(), String> {
    if outputs.len() > MAX_OUTPUTS {
        return Err(format!("plugin `{plugin}` returned {} outputs; at most {MAX_OUTPUTS}", outputs.len()));
    }
    for output in outputs {
        check_name(&output.name)?;
        if !declared.contains(&output.name) {
            return Err(format!(
                "plugin `{plugin}` returned output `{}`, which its describe() does not declare ({})",
                output.name,
                if declared.is_empty() { "it declares none".to_string() } else { declared.join(", ") }
            ));
        }
        check_value(&output.name, &output.value)?;
        if let Some(network) = &output.network_value {
            check_value(&output.name, network)?;
        }
    }
    Ok(())
}

/// `text` without control characters, for messages.
fn printable(text: &str) -> String {
    text.chars().take(64).map(|c| if c.is_control() { '?' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_declared_plain_names_with_plain_values() {
        let declared = vec!["DATABASE_URL".to_string(), "PATH".to_string(), "LD_PRELOAD".to_string()];
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("DATABASE_URL", "postgres://app:pw@db:5432/app", None),
            ("OTHER", "x", Some("does not declare")),
            ("PATH", "/attacker/bin", Some("change how programs run")),
            ("LD_PRELOAD", "/x.so", Some("change how programs run")),
            ("database_url", "x", Some("A-Z")),
            ("A#B", "x", Some("A-Z")),
            ("A\nB", "x", Some("A-Z")),
            ("DATABASE_URL", "x\nPATH=/attacker", Some("contains")),
            ("DATABASE_URL", "x\rY", Some("contains")),
            ("DATABASE_URL", "it's", Some("contains")),
            ("DATABASE_URL", "a\"b $(id) `id` \\", None),
        ];
        for (name, value, refusal) in cases {
            let result = check("p", &declared, &[Output::new(name, value, false)]);
            match (result, refusal) {
                (Ok(()), None) => {}
                (Err(e), Some(want)) => assert!(e.contains(want), "{name}={value:?}: {e}"),
                (r, want) => panic!("{name}={value:?}: {r:?}, wanted {want:?}"),
            }
        }
    }

    #[test]
    fn size_and_count_are_capped() {
        let declared = vec!["A".to_string()];
        assert!(check("p", &declared, &[Output::new("A", &"x".repeat(MAX_VALUE_BYTES + 1), false)]).unwrap_err().contains("bytes"));
        let many: Vec<Output> = (0..=MAX_OUTPUTS).map(|_| Output::new("A", "x", false)).collect();
        assert!(check("p", &declared, &many).unwrap_err().contains("at most"));
    }
}
