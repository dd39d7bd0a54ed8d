//! `${service.OUTPUT}` references in service configs: one parser for both uses.
//!
//! - [`check`], before anything starts (`run` and `plan`): every reference is well
//!   formed, names a service in the referring service's `depends_on`, and an output
//!   that service's plugin declares. Without it a typo surfaced only in `provision`,
//!   after the services before it had created containers.
//! - [`resolve_references`], at run time: substitutes the values the dependencies
//!   produced.

use std::collections::HashMap;

use serde_json::Value;

use crate::config::{clip, join_key, ConfigError, Project, Service};
use crate::discovery::Catalog;
use crate::runtime::Output;

/// One `${service.OUTPUT}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reference<'a> {
    pub service: &'a str,
    pub output: &'a str,
}

impl std::fmt::Display for Reference<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "${{{}.{}}}", clip(self.service), clip(self.output))
    }
}

/// A string of a config, split into literal text and references.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    Reference(Reference<'a>),
}

/// A string whose references cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    #[error("unclosed `${{` in `{}`", clip(text))]
    Unclosed { text: String },
    #[error("`${{{}}}`: write `${{service.OUTPUT}}`", clip(reference))]
    Malformed { reference: String },
}

/// Split `text` at its references. `${` opens a reference, the next `}` closes it,
/// and the first `.` inside separates the service from the output.
pub fn parse(text: &str) -> Result<Vec<Piece<'_>>, SyntaxError> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        if start > 0 {
            pieces.push(Piece::Text(&rest[..start]));
        }
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| SyntaxError::Unclosed { text: text.to_string() })?;
        let inner = &after[..end];
        match inner.split_once('.') {
            Some((service, output)) if !service.trim().is_empty() && !output.trim().is_empty() => {
                pieces.push(Piece::Reference(Reference { service, output }))
            }
            _ => return Err(SyntaxError::Malformed { reference: inner.to_string() }),
        }
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    Ok(pieces)
}

/// Every string in `config` with its path inside it (`env.DATABASE_URL`,
/// `command[0]`), the same paths as [`Service::config_lines`].
fn strings<'v>(value: &'v Value, path: String, out: &mut Vec<(String, &'v str)>) {
    match value {
        Value::String(text) => out.push((path, text)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                strings(item, format!("{path}[{i}]"), out);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                strings(item, join_key(&path, key), out);
            }
        }
        _ => {}
    }
}

/// Check every reference in every service's config against the file and the
/// plugins' declared outputs. Returns every problem, each naming file, line and key.
///
/// A plugin that declares no outputs is taken at its word only for syntax and
/// `depends_on`: any output name is accepted, since it may produce names it did
/// not list.
pub fn check(project: &Project, catalog: &Catalog) -> Vec<ConfigError> {
    let mut problems = Vec::new();
    for service in project.services.values() {
        let mut found = Vec::new();
        strings(&service.config, String::new(), &mut found);
        for (path, text) in found {
            let problem = |message: String| ConfigError {
                file: project.file.clone(),
                line: Some(service.config_line(&path)),
                key: format!("{}.config.{path}", join_key("services", &service.name)),
                message,
            };
            match parse(text) {
                Err(e) => problems.push(problem(e.to_string())),
                Ok(pieces) => {
                    for piece in pieces {
                        if let Piece::Reference(reference) = piece {
                            if let Some(message) = check_reference(project, catalog, service, reference) {
                                problems.push(problem(message));
                            }
                        }
                    }
                }
            }
        }
    }
    problems
}

/// What is wrong with one well-formed reference, if anything.
fn check_reference(project: &Project, catalog: &Catalog, service: &Service, reference: Reference<'_>) -> Option<String> {
    let Some(target) = project.services.get(reference.service) else {
        return Some(format!(
            "`{reference}` refers to `{}`, which is not a service here (services: {})",
            clip(reference.service),
            project.services.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    };
    if !service.depends_on.iter().any(|d| d == reference.service) {
        // Its outputs exist only once it has run, which depends_on guarantees.
        return Some(format!(
            "`{reference}` refers to `{}`, which is not in depends_on; add it: depends_on = [{}]",
            reference.service,
            service.depends_on.iter().map(String::as_str).chain([reference.service]).map(|d| format!("\"{d}\"")).collect::<Vec<_>>().join(", ")
        ));
    }
    // An unknown plugin is reported by `Project::check_plugins`.
    let declared = &catalog.plugins.get(&target.plugin)?.plugin.info.outputs;
    if declared.is_empty() || declared.iter().any(|o| o == reference.output) {
        return None;
    }
    // `.env` may prefix a name with its service (`DB_DATABASE_URL`); references
    // never do.
    let hint = declared
        .iter()
        .find(|o| reference.output.ends_with(o.as_str()))
        .map(|o| format!("; write `${{{}.{o}}}`", reference.service))
        .unwrap_or_default();
    Some(format!(
        "`{reference}`: service `{}` (plugin `{}`) has no output `{}` (it has: {}){hint}",
        reference.service,
        target.plugin,
        clip(reference.output),
        declared.join(", ")
    ))
}

/// Replace `${service.NAME}` in every string of `config` with that output of a
/// service this one depends on. `inputs` holds the outputs of its dependencies.
pub fn resolve_references(config: &Value, inputs: &HashMap<String, Vec<Output>>) -> Result<Value, String> {
    Ok(match config {
        Value::String(text) => {
            let mut out = String::with_capacity(text.len());
            for piece in parse(text).map_err(|e| e.to_string())? {
                match piece {
                    Piece::Text(literal) => out.push_str(literal),
                    Piece::Reference(reference) => {
                        let outputs = inputs.get(reference.service).ok_or_else(|| {
                            format!("`{reference}` refers to `{}`, which is not in depends_on", reference.service)
                        })?;
                        let output = outputs.iter().find(|o| o.name == reference.output).ok_or_else(|| {
                            format!("`{reference}`: service `{}` has no output `{}`", reference.service, clip(reference.output))
                        })?;
                        // Configs feed containers on the project network, which reach a
                        // service by its name, not through the host's published port.
                        out.push_str(output.network_value.as_deref().unwrap_or(&output.value));
                    }
                }
            }
            Value::String(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| resolve_references(v, inputs)).collect::<Result<_, _>>()?),
        Value::Object(map) => Value::Object(
            map.iter().map(|(k, v)| Ok((k.clone(), resolve_references(v, inputs)?))).collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing_splits_text_and_references() {
        let db = |output| Piece::Reference(Reference { service: "db", output });
        assert_eq!(parse("plain").unwrap(), vec![Piece::Text("plain")]);
        assert_eq!(parse("").unwrap(), vec![]);
        assert_eq!(parse("${db.URL}").unwrap(), vec![db("URL")]);
        assert_eq!(parse("a${db.URL}b${db.X}").unwrap(), vec![Piece::Text("a"), db("URL"), Piece::Text("b"), db("X")]);
        for (bad, says) in [("${db", "unclosed"), ("x ${db.URL", "unclosed"), ("${db}", "service.OUTPUT"), ("${.URL}", "service.OUTPUT"), ("${db.}", "service.OUTPUT"), ("${}", "service.OUTPUT")] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
        // A huge value is not echoed whole.
        let huge = format!("${{{}", "x".repeat(1 << 20));
        assert!(parse(&huge).unwrap_err().to_string().len() < 300);
    }
}
