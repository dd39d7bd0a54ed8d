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
    collect(&schema, "", &mut rows);
    rows
}

fn collect(schema: &Value, prefix: &str, rows: &mut Vec<Row>) {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else { return };
    let required: Vec<&str> = schema.get("required").and_then(Value::as_array).map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    for (name, property) in properties {
        let key = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
        rows.push(Row {
            key: key.clone(),
            kind: kind(property),
            default: property.get("default").map(|d| match d {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
            required: required.contains(&name.as_str()),
            description: property.get("description").and_then(Value::as_str).unwrap_or_default().to_string(),
        });
        if property.get("properties").is_some() {
            collect(property, &key, rows);
        }
    }
}

fn kind(property: &Value) -> String {
    if let Some(options) = property.get("enum").and_then(Value::as_array) {
        let options: Vec<String> = options.iter().map(|o| o.as_str().map_or_else(|| o.to_string(), str::to_string)).collect();
        return format!("one of {}", options.join(", "));
    }
    let base = match property.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(types)) => types.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" or "),
        _ => "any".to_string(),
    };
    let base = if base == "array" {
        format!("array of {}", property.get("items").map(kind).unwrap_or_else(|| "any".into()))
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
}
