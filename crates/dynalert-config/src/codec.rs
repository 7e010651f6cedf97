//! Documents as the API and the CLI exchange them: JSON values, read from conf.d YAML with the
//! model's own parser and written back by a YAML emitter, never by splicing text.
//!
//! A tenant document arrives as YAML or JSON text (JSON is YAML too). [`SentTenant`] keeps
//! its YAML tree, so the model's findings about it point at the sender's own lines and
//! columns, and its settings as JSON. What is stored is [`tenant_file`]: the settings under
//! `tenants: <name>:`, emitted as block YAML; comments of a YAML body are not kept.

use serde_json::{Map, Number, Value};

use crate::diag::Diagnostic;
use crate::yaml::{self, Node, NodeKind, Pos, SyntaxError};

/// A tenant's settings: what is under `tenants: <name>:` in its file.
pub type Settings = Map<String, Value>;

/// The label of findings about a sent document (it has no file yet).
pub const SENT_DOCUMENT: &str = "(request body)";

/// A tenant document as sent: its settings, and its YAML tree with the sender's positions.
#[derive(Clone, Debug)]
pub struct SentTenant {
    settings: Settings,
    tree: Option<Node>,
}

impl SentTenant {
    /// Reads a YAML (or JSON) body: a mapping of settings, or nothing at all (no settings).
    pub fn from_yaml(text: &str) -> Result<SentTenant, Diagnostic> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let tree = yaml::parse(text).map_err(|e| syntax_finding(&e))?;
        let settings = match &tree {
            None => Settings::new(),
            Some(node) if node.is_null() => Settings::new(),
            Some(node) => match to_json(node) {
                Value::Object(map) => map,
                _ => {
                    return Err(Diagnostic::error(
                        SENT_DOCUMENT,
                        node.pos,
                        format!(
                            "a tenant document must be a mapping of settings, found a {}",
                            node.kind_name()
                        ),
                    ));
                }
            },
        };
        Ok(SentTenant { settings, tree })
    }

    /// A JSON object already read: its positions come from reading the same text as YAML,
    /// which a JSON text is; without them (an exotic JSON text the YAML reader refuses),
    /// every finding points at the first line.
    pub fn from_json(text: &str, settings: Settings) -> SentTenant {
        let tree = yaml::parse(text)
            .ok()
            .flatten()
            .filter(|node| to_json(node) == Value::Object(settings.clone()))
            .unwrap_or_else(|| node_of(&Value::Object(settings.clone())));
        SentTenant {
            settings,
            tree: Some(tree),
        }
    }

    /// Settings given as values (a merge patch's result, a simulation's document).
    pub fn from_settings(settings: Settings) -> SentTenant {
        let tree = node_of(&Value::Object(settings.clone()));
        SentTenant {
            settings,
            tree: Some(tree),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn into_settings(self) -> Settings {
        self.settings
    }

    /// The tree of a file holding this document as tenant `name`, as the model reads it:
    /// the body's nodes keep the sender's positions.
    pub(crate) fn file_tree(&self, name: &str) -> Node {
        let first = Pos { line: 1, col: 1 };
        let body = self.tree.clone().unwrap_or(Node {
            pos: first,
            kind: NodeKind::Map(Vec::new()),
        });
        let tenants = Node {
            pos: first,
            kind: NodeKind::Map(vec![(plain(name, first), body)]),
        };
        Node {
            pos: first,
            kind: NodeKind::Map(vec![(plain("tenants", first), tenants)]),
        }
    }
}

fn syntax_finding(e: &SyntaxError) -> Diagnostic {
    Diagnostic::error(
        SENT_DOCUMENT,
        e.pos,
        format!("YAML syntax error: {}", e.message),
    )
}

/// A whole conf.d file as JSON; an empty one (blank, comments only, `null`) is `{}`.
pub fn decode(content: &str) -> Result<Value, SyntaxError> {
    Ok(match yaml::parse(content)? {
        Some(node) if !node.is_null() => to_json(&node),
        _ => Value::Object(Map::new()),
    })
}

/// The conf.d file holding `settings` as tenant `name`, as block YAML.
pub fn tenant_file(name: &str, settings: &Settings) -> String {
    let mut tenants = Map::new();
    tenants.insert(name.to_string(), Value::Object(settings.clone()));
    let mut file = Map::new();
    file.insert("tenants".to_string(), Value::Object(tenants));
    emit(&file)
}

/// A platform file's blocks as block YAML.
pub fn platform_file(blocks: &Map<String, Value>) -> String {
    emit(blocks)
}

fn emit(map: &Map<String, Value>) -> String {
    // A JSON value always serializes: every key is a string and every number finite.
    serde_saphyr::to_string(map).expect("a JSON value serializes as YAML")
}

/// A YAML node as JSON: unquoted scalars resolved by YAML 1.2's core schema (null, booleans,
/// integers, floats); `.inf` and `.nan`, which JSON cannot hold, stay strings. A repeated
/// key keeps its last value (the model reports the repetition).
fn to_json(node: &Node) -> Value {
    match &node.kind {
        NodeKind::Scalar { text, quoted: true } => Value::String(text.clone()),
        NodeKind::Scalar {
            text,
            quoted: false,
        } => plain_scalar(text),
        NodeKind::Seq(items) => Value::Array(items.iter().map(to_json).collect()),
        NodeKind::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.as_str().unwrap_or_default().to_string(), to_json(v)))
                .collect(),
        ),
    }
}

fn plain_scalar(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    core_number(text).unwrap_or_else(|| Value::String(text.to_string()))
}

/// A number in YAML 1.2's core schema: `[-+]?[0-9]+`, `0o…`, `0x…`, or a decimal float.
fn core_number(text: &str) -> Option<Value> {
    if let Some(octal) = text.strip_prefix("0o") {
        return u64::from_str_radix(octal, 8).ok().map(Value::from);
    }
    if let Some(hex) = text.strip_prefix("0x") {
        return u64::from_str_radix(hex, 16).ok().map(Value::from);
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = text.parse::<i64>() {
            return Some(Value::from(n));
        }
        if let Ok(n) = text.trim_start_matches('+').parse::<u64>() {
            return Some(Value::from(n));
        }
    }
    is_core_float(digits)
        .then(|| text.parse::<f64>().ok())
        .flatten()
        .and_then(Number::from_f64)
        .map(Value::Number)
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, the sign already taken off.
fn is_core_float(text: &str) -> bool {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok =
        all_digits(whole) && all_digits(fraction) && (!whole.is_empty() || !fraction.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && all_digits(e)
    });
    mantissa_ok && exponent_ok
}

/// A JSON value as a YAML tree, every node at the first line (values have no positions).
fn node_of(value: &Value) -> Node {
    let first = Pos { line: 1, col: 1 };
    let kind = match value {
        Value::Null => NodeKind::Scalar {
            text: "null".into(),
            quoted: false,
        },
        Value::Bool(b) => NodeKind::Scalar {
            text: b.to_string(),
            quoted: false,
        },
        Value::Number(n) => NodeKind::Scalar {
            text: n.to_string(),
            quoted: false,
        },
        Value::String(s) => NodeKind::Scalar {
            text: s.clone(),
            quoted: true,
        },
        Value::Array(items) => NodeKind::Seq(items.iter().map(node_of).collect()),
        Value::Object(map) => NodeKind::Map(
            map.iter()
                .map(|(k, v)| (plain(k, first), node_of(v)))
                .collect(),
        ),
    };
    Node { pos: first, kind }
}

/// A mapping key: keys are names, never typed values.
fn plain(text: &str, pos: Pos) -> Node {
    Node {
        pos,
        kind: NodeKind::Scalar {
            text: text.to_string(),
            quoted: true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn settings(value: Value) -> Settings {
        match value {
            Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    fn read_back(name: &str, file: &str) -> Value {
        decode(file).unwrap()["tenants"][name].clone()
    }

    #[test]
    fn conf_d_shapes_survive_a_round_trip() {
        let document = json!({
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
            "_state_maintenance": {"state": "enable", "expires": "2026-12-01T00:00:00Z", "reason": "INC-42: \"db\" move"},
            "_metadata": {"owner": "team-db", "runbook_url": "https://x/y?z=1#a"},
            "empty": {},
            "none": [],
            "flags": [true, null, "on", "123", "1e3", "+1", ".5", "0x1F", ".inf", " padded ",
                      "multi\nline", "tab\there", "lone\rreturn", "", "~", "- x", "#c"]
        });
        let file = tenant_file("db-a", &settings(document.clone()));
        assert_eq!(read_back("db-a", &file), document, "\n{file}");
    }

    #[test]
    fn the_stored_file_is_block_yaml_under_the_tenant() {
        let file = tenant_file("db-a", &settings(json!({"a": 1, "b": {"c": "x y"}})));
        assert_eq!(file, "tenants:\n  db-a:\n    a: 1\n    b:\n      c: x y\n");
        assert_eq!(
            tenant_file("db-a", &Settings::new()),
            "tenants:\n  db-a: {}\n"
        );
    }

    #[test]
    fn plain_scalars_resolve_by_the_core_schema() {
        let read = |text: &str| decode(&format!("v: {text}\n")).unwrap()["v"].clone();
        assert_eq!(read("70"), json!(70));
        assert_eq!(read("-3"), json!(-3));
        assert_eq!(read("0.25"), json!(0.25));
        assert_eq!(read("1e3"), json!(1000.0));
        assert_eq!(read("0x10"), json!(16));
        assert_eq!(read("True"), json!(true));
        assert_eq!(read("~"), Value::Null);
        assert_eq!(read("'70'"), json!("70"));
        assert_eq!(read(".inf"), json!(".inf"));
        assert_eq!(read("5:critical"), json!("5:critical"));
        assert_eq!(read("on"), json!("on"));
        assert_eq!(read("1_000"), json!("1_000"));
    }

    #[test]
    fn a_sent_yaml_document_keeps_its_positions_and_settings() {
        let sent = SentTenant::from_yaml("# raised\nmysql_connections: 90\n").unwrap();
        assert_eq!(sent.settings(), &settings(json!({"mysql_connections": 90})));
        let tree = sent.file_tree("db-a");
        let NodeKind::Map(blocks) = &tree.kind else {
            panic!()
        };
        let NodeKind::Map(tenants) = &blocks[0].1.kind else {
            panic!()
        };
        let NodeKind::Map(keys) = &tenants[0].1.kind else {
            panic!()
        };
        assert_eq!(keys[0].0.pos, Pos { line: 2, col: 1 });
    }

    #[test]
    fn a_sent_document_that_is_not_a_mapping_is_refused_where_it_is() {
        let finding = SentTenant::from_yaml("\n- a\n- b\n").unwrap_err();
        assert_eq!((finding.file.as_str(), finding.line), (SENT_DOCUMENT, 2));
        assert!(finding.message.contains("found a list"), "{finding:?}");
        let syntax = SentTenant::from_yaml("a: [1, 2\n").unwrap_err();
        assert!(
            syntax.message.starts_with("YAML syntax error"),
            "{syntax:?}"
        );
        assert!(SentTenant::from_yaml("  \n").unwrap().settings().is_empty());
    }

    /// A line break of any kind inside a value stays inside it: no body can escape its tenant.
    #[test]
    fn no_value_escapes_its_tenant() {
        let hostile = "1\r  db-b:\r    mysql_connections: 2\n";
        let file = tenant_file("db-a", &settings(json!({"k": hostile, hostile: 1})));
        let read = decode(&file).unwrap();
        assert_eq!(read["tenants"].as_object().unwrap().len(), 1, "{file}");
        assert_eq!(read["tenants"]["db-a"]["k"], json!(hostile));
    }

    fn json_leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            (-1e15f64..1e15).prop_map(|f| json!(f)),
            ".*".prop_map(Value::String),
        ]
    }

    fn json_value() -> impl Strategy<Value = Value> {
        json_leaf().prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(".*", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_json_document_reads_back_as_written(
            map in prop::collection::btree_map(".*", json_value(), 0..6)
        ) {
            let document: Settings = map.into_iter().collect();
            let file = tenant_file("t", &document);
            prop_assert_eq!(read_back("t", &file), Value::Object(document), "{}", file);
        }
    }
}
