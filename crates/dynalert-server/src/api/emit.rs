//! Writes a JSON value as block-style YAML, the way a person would write a conf.d file: what
//! the API stores for documents sent as JSON or changed by a merge patch, so that
//! `dynalert store export` gives readable files.

use std::fmt::Write as _;

use serde_json::{Map, Value};

/// A mapping as YAML lines at `indent` spaces (`{}` for an empty one, on the caller's line).
pub fn mapping(out: &mut String, map: &Map<String, Value>, indent: usize) {
    for (key, value) in map {
        let _ = write!(out, "{:indent$}{}:", "", scalar_text(key));
        entry_value(out, value, indent);
    }
}

/// What follows `key:` or `- `: a scalar on the same line, or a nested block below.
fn entry_value(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            mapping(out, m, indent + 2);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            sequence(out, items, indent + 2);
        }
        _ => {
            out.push(' ');
            inline(out, value);
            out.push('\n');
        }
    }
}

fn sequence(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        let _ = write!(out, "{:indent$}-", "");
        match item {
            // The first entry shares the dash's line; the others align with it.
            Value::Object(m) if !m.is_empty() => {
                let mut nested = String::new();
                mapping(&mut nested, m, indent + 2);
                out.push(' ');
                out.push_str(&nested[indent + 2..]);
            }
            _ => entry_value(out, item, indent),
        }
    }
}

/// Scalars and empty collections.
fn inline(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => out.push_str(&scalar_text(s)),
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
    }
}

/// A string plain when YAML reads it back as the same string, double-quoted (JSON escaping
/// is valid YAML) otherwise.
fn scalar_text(s: &str) -> String {
    if is_plain_safe(s) {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}

fn is_plain_safe(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "null", "true", "false", "yes", "no", "on", "off", "y", "n", "~",
    ];
    let first_ok = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    first_ok
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        && !WORDS.iter().any(|w| w.eq_ignore_ascii_case(s))
        && s.parse::<f64>().is_err()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn emit(value: &Value) -> String {
        let mut out = String::new();
        mapping(&mut out, value.as_object().unwrap(), 0);
        out
    }

    fn round_trip(value: Value) {
        let text = emit(&value);
        let back: Value = serde_saphyr::from_str(&text)
            .unwrap_or_else(|e| panic!("emitted YAML does not parse: {e}\n{text}"));
        assert_eq!(back, value, "\n{text}");
    }

    #[test]
    fn conf_d_shapes_survive_a_round_trip() {
        round_trip(json!({
            "mysql_connections": 70,
            "redis_memory_usage": "disable",
            "mysql_slow_queries": "5:critical",
            "redis_queue_length{queue='email'}": 1000,
            "ratio": 0.25,
            "mysql_threads_running": {
                "default": 40,
                "timezone": "Europe/Berlin",
                "overrides": [
                    {"window": "01:00-05:00", "value": 200},
                    {"window": "09:00-18:00", "days": ["sat", "sun"], "value": "disable"}
                ]
            },
            "_profile": "high-traffic",
            "_state_maintenance": {"state": "enable", "expires": "2026-12-01T00:00:00Z", "reason": "INC-42: \"db\" move"},
            "_metadata": {"owner": "team-db", "runbook_url": "https://x/y?z=1#a", "tier": "gold"},
            "empty": {},
            "none": [],
            "flags": [true, null, "on", "123", "1e3", " padded ", "multi\nline", "tab\there"]
        }));
    }

    #[test]
    fn layout_is_what_a_person_writes() {
        let text =
            emit(&json!({"a": 1, "b": {"c": "x y", "d": [{"w": "01:00-05:00", "v": 2}, 3]}}));
        assert_eq!(
            text,
            "a: 1\nb:\n  c: \"x y\"\n  d:\n    - v: 2\n      w: \"01:00-05:00\"\n    - 3\n"
        );
    }
}
