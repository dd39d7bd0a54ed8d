//! A plugin's config schema (JSON Schema, as `describe` gives it) as rows a person reads:
//! `plugins inspect` prints them as a table, `plugins docs` as Markdown for a README.

use serde_json::Value;

/// One key of the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Dotted for nested tables: `limits.memory_mb`.
    pub key: String,
    /// `string`, `integer 16–4096`, `array of string`, `one of a, b`…
    pub kind: String,
    pub default: Option<String>,
    pub required: bool,
    pub description: String,
}

/// The rows of `schema`, by key; an empty list when it is not JSON or has no
/// properties.
pub fn rows(schema: &str) -> Vec<Row> {
    let Ok(schema) = serde_json::from_str::<Value>(schema) else { return Vec::new() };
    let mut rows = Vec::new();
    collect(&schema, &schema, "", &mut rows);
    rows
}

/// `property` as its rows need it: a `$ref` to the schema's `$defs` (what schemars
/// emits for a nested struct) followed, and an optional value's `anyOf: [X, null]`
/// taken as X; the property's own keys (description, default) win over the target's.
fn resolve(property: &Value, root: &Value) -> Value {
    let mut target = None;
    if let Some(reference) = property.get("$ref").and_then(Value::as_str) {
        let pointer = reference.strip_prefix('#').unwrap_or(reference);
        target = root.pointer(pointer).map(|t| resolve(t, root));
    } else if let Some(options) = property.get("anyOf").or_else(|| property.get("oneOf")).and_then(Value::as_array) {
        let not_null: Vec<&Value> = options.iter().filter(|o| o.get("type").and_then(Value::as_str) != Some("null")).collect();
        if let [only] = not_null[..] {
            target = Some(resolve(only, root));
        }
    }
    match (target, property.as_object()) {
        (Some(Value::Object(mut merged)), Some(own)) => {
            for (key, value) in own {
                if !matches!(key.as_str(), "$ref" | "anyOf" | "oneOf") {
                    merged.insert(key.clone(), value.clone());
                }
            }
            Value::Object(merged)
        }
        _ => property.clone(),
    }
}

fn collect(schema: &Value, root: &Value, prefix: &str, rows: &mut Vec<Row>) {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else { return };
    let required: Vec<&str> = schema.get("required").and_then(Value::as_array).map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    for (name, property) in properties {
        let property = &resolve(property, root);
        let key = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
        rows.push(Row {
            key: key.clone(),
            kind: kind(property, root),
            default: property.get("default").filter(|d| !d.is_null()).map(|d| match d {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
            required: required.contains(&name.as_str()),
            description: property.get("description").and_then(Value::as_str).unwrap_or_default().to_string(),
        });
        if property.get("properties").is_some() {
            collect(property, root, &key, rows);
        }
    }
}

fn kind(property: &Value, root: &Value) -> String {
    if let Some(options) = property.get("enum").and_then(Value::as_array) {
        let options: Vec<String> = options.iter().map(|o| o.as_str().map_or_else(|| o.to_string(), str::to_string)).collect();
        return format!("one of {}", options.join(", "));
    }
    let base = match property.get("type") {
        Some(Value::String(t)) => t.clone(),
        // `null` is how a derived schema says optional; the row says it by having no
        // `required`.
        Some(Value::Array(types)) => types.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect::<Vec<_>>().join(" or "),
        _ => "any".to_string(),
    };
    let base = if base == "array" {
        format!("array of {}", property.get("items").map(|items| kind(&resolve(items, root), root)).unwrap_or_else(|| "any".into()))
    } else {
        base
    };
    match (property.get("minimum").and_then(Value::as_i64), property.get("maximum").and_then(Value::as_i64)) {
        (Some(min), Some(max)) => format!("{base} {min}–{max}"),
        (Some(min), None) => format!("{base} ≥ {min}"),
        (None, Some(max)) => format!("{base} ≤ {max}"),
        (None, None) => base,
    }
}

/// `rows` as a Markdown table.
pub fn markdown_table(rows: &[Row]) -> String {
    let mut out = String::from("| key | type | default | description |\n|---|---|---|---|\n");
    for row in rows {
        let default = match (&row.default, row.required) {
            (Some(d), _) => format!("`{d}`"),
            (None, true) => "required".to_string(),
            (None, false) => "–".to_string(),
        };
        out.push_str(&format!("| `{}` | {} | {default} | {} |\n", row.key, row.kind, row.description.replace('|', "\\|")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_types_defaults_and_nesting() {
        let schema = r#"{"type":"object","required":["do"],"properties":{
            "do":{"type":"string","description":"what to do"},
            "memory_mb":{"type":"integer","minimum":16,"maximum":4096,"default":64},
            "buckets":{"type":"array","items":{"type":"string"},"default":["app"]},
            "mode":{"enum":["a","b"]},
            "tls":{"type":"object","properties":{"port":{"type":"integer"}}}}}"#;
        let rows = rows(schema);
        let keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["buckets", "do", "memory_mb", "mode", "tls", "tls.port"]);
        assert!(rows[1].required && rows[1].description == "what to do");
        assert_eq!((rows[2].kind.as_str(), rows[2].default.as_deref()), ("integer 16–4096", Some("64")));
        assert_eq!((rows[0].kind.as_str(), rows[0].default.as_deref()), ("array of string", Some(r#"["app"]"#)));
        assert_eq!(rows[3].kind, "one of a, b");
        let table = markdown_table(&rows);
        assert!(table.contains("| `do` | string | required | what to do |"), "{table}");
        assert!(super::rows("not json").is_empty());
    }

    /// What schemars 1 derives from a serde struct: `type: [T, "null"]` for an
    /// `Option`, `format`, nested structs behind `$ref` into `$defs`, an optional
    /// nested struct as `anyOf: [{$ref}, {type: null}]`.
    #[test]
    fn derived_schemas_read_the_same() {
        let schema = r##"{"$schema":"https://json-schema.org/draft/2020-12/schema","title":"Config","type":"object","additionalProperties":false,
            "properties":{
            "memory_mb":{"default":64,"description":"Item memory, in MiB.","format":"uint32","maximum":4096,"minimum":16,"type":"integer"},
            "image":{"description":"Image to run.","type":["string","null"]},
            "tls":{"description":"TLS settings.","$ref":"#/$defs/Tls"},
            "limits":{"anyOf":[{"$ref":"#/$defs/Limits"},{"type":"null"}],"default":null},
            "users":{"type":"array","items":{"$ref":"#/$defs/Mode"}}},
            "required":["tls"],
            "$defs":{"Tls":{"type":"object","properties":{"port":{"type":"integer","format":"uint16","minimum":0,"maximum":65535}},"required":["port"]},
                     "Limits":{"type":"object","properties":{"pids":{"type":["integer","null"]}}},
                     "Mode":{"type":"string","enum":["ro","rw"]}}}"##;
        let rows = rows(schema);
        let table = markdown_table(&rows);
        assert!(table.contains("| `memory_mb` | integer 16–4096 | `64` | Item memory, in MiB. |"), "{table}");
        assert!(table.contains("| `image` | string | – | Image to run. |"), "{table}");
        assert!(table.contains("| `tls` | object | required | TLS settings. |"), "{table}");
        assert!(table.contains("| `tls.port` | integer 0–65535 | required |"), "{table}");
        assert!(table.contains("| `limits.pids` | integer | – |"), "{table}");
        assert!(table.contains("| `users` | array of one of ro, rw | – |"), "{table}");
    }
}
