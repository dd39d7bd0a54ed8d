//! The limits a derived config schema states (`#[schemars(range(…))]`,
//! `#[schemars(length(…))]`), checked against the config as written: what
//! [`parse_config_checked`] adds to serde's own checks.
//!
//! Checked: `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum` on numbers,
//! `minLength` / `maxLength` on strings (in characters), `minItems` / `maxItems` on
//! arrays, through `properties`, `additionalProperties` (maps), `items`, `$ref` into
//! `$defs`, `allOf`, and an `anyOf` / `oneOf` with one branch besides `null` (an
//! `Option`). Other keywords (`pattern`, `multipleOf`, …) are not checked here.

use serde_json::{Map, Number, Value};

use crate::ConfigProblem;

/// [`crate::parse_config`], then the limits `T`'s derived schema states: a value outside a
/// `#[schemars(range(min = 16, max = 4096))]` or a `#[schemars(length(min = 1))]` is a
/// problem too (`memory_mb: must be from 16 to 4096 (it is 8)`), each with its key as
/// written in provisioner.toml, all of them reported together with serde's. So the
/// range `plugins inspect` shows is the range `validate` enforces, with no check
/// written by hand. The keywords it reads are in this module's doc.
pub fn parse_config_checked<T: serde::de::DeserializeOwned + crate::JsonSchema>(config: &str) -> Result<T, Vec<ConfigProblem>> {
    let parsed = crate::parse_config::<T>(config);
    // Not JSON at all: parse_config has said so.
    let Ok(value) = serde_json::from_str::<serde_json::Value>(config) else { return parsed };
    let schema = serde_json::to_value(schemars::schema_for!(T)).unwrap_or_default();
    let outside = problems(&schema, &value);
    match parsed {
        Ok(config) => crate::no_problems(config, outside),
        Err(mut refused) => {
            // A key serde already refused is reported once.
            let extra: Vec<ConfigProblem> = outside.into_iter().filter(|o| !refused.iter().any(|p| p.key == o.key)).collect();
            refused.extend(extra);
            Err(refused)
        }
    }
}

/// How deep `$ref`s and nesting are followed: a recursive type ends here.
const MAX_DEPTH: usize = 32;

/// Every value of `config` outside a limit of `schema`, each with its key path.
pub(crate) fn problems(schema: &Value, config: &Value) -> Vec<ConfigProblem> {
    let mut found = Vec::new();
    check(schema, schema, config, &mut Vec::new(), &mut found, 0);
    found
}

fn check(root: &Value, schema: &Value, value: &Value, path: &mut Vec<String>, found: &mut Vec<ConfigProblem>, depth: usize) {
    if depth > MAX_DEPTH || value.is_null() {
        return;
    }
    let Some(schema) = resolve(root, schema) else { return };
    for sub in schema.get("allOf").and_then(Value::as_array).into_iter().flatten() {
        check(root, sub, value, path, found, depth + 1);
    }
    for key in ["anyOf", "oneOf"] {
        let branches: Vec<&Value> = schema.get(key).and_then(Value::as_array).into_iter().flatten().filter(|b| !is_null_schema(root, b)).collect();
        // One branch besides null is an `Option`; with more, which one applies is
        // serde's business, not a limit's.
        if let [only] = branches.as_slice() {
            check(root, only, value, path, found, depth + 1);
        }
    }
    let mut problem = |message: String| found.push(ConfigProblem::new(path.join("."), message));
    match value {
        Value::Number(n) => {
            if let Some(message) = number_problem(schema, n) {
                problem(message);
            }
        }
        Value::String(s) => {
            if let Some(message) = count_problem(schema, "minLength", "maxLength", s.chars().count(), "characters long", "it has") {
                problem(message);
            }
        }
        Value::Array(items) => {
            if let Some(message) = count_problem(schema, "minItems", "maxItems", items.len(), "item(s)", "it has") {
                problem(message);
            }
            if let Some(item_schema) = schema.get("items").filter(|s| s.is_object()) {
                for (index, item) in items.iter().enumerate() {
                    path.push(index.to_string());
                    check(root, item_schema, item, path, found, depth + 1);
                    path.pop();
                }
            }
        }
        Value::Object(map) => object(root, schema, map, path, found, depth),
        Value::Bool(_) | Value::Null => {}
    }
}

fn object(root: &Value, schema: &Map<String, Value>, map: &Map<String, Value>, path: &mut Vec<String>, found: &mut Vec<ConfigProblem>, depth: usize) {
    let properties = schema.get("properties").and_then(Value::as_object);
    let others = schema.get("additionalProperties").filter(|s| s.is_object());
    for (key, item) in map {
        let Some(item_schema) = properties.and_then(|p| p.get(key)).or(others) else { continue };
        path.push(key.clone());
        check(root, item_schema, item, path, found, depth + 1);
        path.pop();
    }
}

/// The schema itself, or what its `$ref` (`#/$defs/NAME`, `#/definitions/NAME`) points at.
fn resolve<'v>(root: &'v Value, schema: &'v Value) -> Option<&'v Map<String, Value>> {
    let mut at = schema;
    for _ in 0..MAX_DEPTH {
        match at.get("$ref").and_then(Value::as_str) {
            Some(reference) => at = root.pointer(reference.strip_prefix('#')?)?,
            None => return at.as_object(),
        }
    }
    None
}

fn is_null_schema(root: &Value, schema: &Value) -> bool {
    resolve(root, schema).and_then(|s| s.get("type")).is_some_and(|t| t == "null")
}

fn number_problem(schema: &Map<String, Value>, n: &Number) -> Option<String> {
    let value = n.as_f64()?;
    let bound = |key: &str| schema.get(key).and_then(|b| Some((b.as_f64()?, b.to_string())));
    let (min, max) = (bound("minimum"), bound("maximum"));
    let inclusive_broken = min.as_ref().is_some_and(|(m, _)| value < *m) || max.as_ref().is_some_and(|(m, _)| value > *m);
    if inclusive_broken {
        let range = match (min, max) {
            (Some((_, min)), Some((_, max))) => format!("from {min} to {max}"),
            (Some((_, min)), None) => format!("at least {min}"),
            (None, Some((_, max))) => format!("at most {max}"),
            (None, None) => return None,
        };
        return Some(format!("must be {range} (it is {n})"));
    }
    if let Some((_, text)) = bound("exclusiveMinimum").filter(|(m, _)| value <= *m) {
        return Some(format!("must be more than {text} (it is {n})"));
    }
    if let Some((_, text)) = bound("exclusiveMaximum").filter(|(m, _)| value >= *m) {
        return Some(format!("must be less than {text} (it is {n})"));
    }
    None
}

/// A length or item count outside `min_key` / `max_key`.
fn count_problem(schema: &Map<String, Value>, min_key: &str, max_key: &str, count: usize, unit: &str, has: &str) -> Option<String> {
    let bound = |key: &str| schema.get(key).and_then(Value::as_u64);
    let (min, max) = (bound(min_key), bound(max_key));
    let count_u64 = count as u64;
    let broken = min.is_some_and(|m| count_u64 < m) || max.is_some_and(|m| count_u64 > m);
    if !broken {
        return None;
    }
    let range = match (min, max) {
        (Some(min), Some(max)) if min == max => format!("exactly {min}"),
        (Some(min), Some(max)) => format!("from {min} to {max}"),
        (Some(min), None) => format!("at least {min}"),
        (None, Some(max)) => format!("at most {max}"),
        (None, None) => return None,
    };
    let verb = if unit == "item(s)" { "must have" } else { "must be" };
    Some(format!("{verb} {range} {unit} ({has} {count})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn limits_through_refs_options_maps_and_lists() {
        let schema = json!({
            "type": "object",
            "properties": {
                "port": { "type": "integer", "minimum": 1, "maximum": 65535 },
                "ratio": { "type": ["number", "null"], "exclusiveMinimum": 0 },
                "name": { "type": "string", "minLength": 1, "maxLength": 5 },
                "users": { "type": "array", "minItems": 1, "items": { "$ref": "#/$defs/User" } },
                "limits": { "type": "object", "additionalProperties": { "type": "integer", "maximum": 10 } },
                "inner": { "anyOf": [{ "$ref": "#/$defs/User" }, { "type": "null" }] }
            },
            "$defs": { "User": { "type": "object", "properties": { "name": { "type": "string", "minLength": 2 } } } }
        });
        let config = json!({
            "port": 0, "ratio": 0, "name": "toolong", "users": [{ "name": "ok" }, { "name": "x" }],
            "limits": { "a": 3, "b": 11 }, "inner": { "name": "y" }
        });
        let found: Vec<(String, String)> = problems(&schema, &config).into_iter().map(|p| (p.key, p.message)).collect();
        assert_eq!(
            found,
            [
                ("inner.name".to_string(), "must be at least 2 characters long (it has 1)".to_string()),
                ("limits.b".into(), "must be at most 10 (it is 11)".into()),
                ("name".into(), "must be from 1 to 5 characters long (it has 7)".into()),
                ("port".into(), "must be from 1 to 65535 (it is 0)".into()),
                ("ratio".into(), "must be more than 0 (it is 0)".into()),
                ("users.1.name".into(), "must be at least 2 characters long (it has 1)".into()),
            ]
        );
        let fine = json!({ "port": 80, "ratio": null, "name": "a", "users": [{ "name": "ab" }], "inner": null });
        assert!(problems(&schema, &fine).is_empty());
        let empty = problems(&schema, &json!({ "users": [] }));
        assert_eq!((empty[0].key.as_str(), empty[0].message.as_str()), ("users", "must have at least 1 item(s) (it has 0)"));
    }
}
