//! How API documents map onto conf.d files: a tenant is the mapping under `tenants: <name>:`
//! of a file that holds only that tenant; the platform is a set of platform files.
//!
//! A tenant document sent as YAML is stored as written (comments kept), indented under its
//! name; sent as JSON, or changed by a merge patch, it is stored as block YAML. Diagnostics
//! of a sent document are given in the sender's own lines and columns.

use serde_json::{Map, Value};

use super::emit;
use super::problem::Finding;
use crate::error::{ApiError, DocumentError};

/// Lines and columns the body gains when it is indented under `tenants:` / `  <name>:`.
const BODY_LINE_OFFSET: u32 = 2;
const BODY_INDENT: u32 = 4;

/// The file API writes create for a new tenant.
pub fn default_tenant_path(tenant: &str) -> String {
    format!("{tenant}.yaml")
}

/// The conf.d file holding `body` (the tenant's mapping, YAML or JSON text) as tenant `name`.
pub fn tenant_file_from_body(name: &str, body: &str) -> String {
    let body = body.strip_prefix('\u{feff}').unwrap_or(body);
    if body.trim().is_empty() {
        return format!("tenants:\n  {name}: {{}}\n");
    }
    let mut out = format!("tenants:\n  {name}:\n");
    // Every YAML line break, a bare `\r` too: `str::lines` keeps a lone `\r` inside a line,
    // and the parser would then see an unindented line there, a sibling of `{name}`.
    for line in yaml_lines(body) {
        if !line.trim().is_empty() {
            out.push_str("    ");
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// `text` split at YAML's line breaks (`\r\n`, `\n` or a lone `\r`), without them.
fn yaml_lines(text: &str) -> impl Iterator<Item = &str> {
    let text = text.strip_suffix('\n').unwrap_or(text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    text.split('\n')
        .flat_map(|line| line.strip_suffix('\r').unwrap_or(line).split('\r'))
}

/// Refuses a composed tenant file that defines anything besides tenant `name` (a body that
/// escaped its indentation): a tenant's token may write that tenant only.
pub fn check_defines_only(content: &str, name: &str) -> Result<(), ApiError> {
    let file = file_value(content)?;
    if tenants_if_sole(&file, name).is_some_and(|t| t.contains_key(name)) {
        return Ok(());
    }
    Err(DocumentError::DefinesOthers(name.to_string()).into())
}

/// The conf.d file for tenant `name` with settings `map`, as block YAML.
pub fn tenant_file_from_map(name: &str, map: &Map<String, Value>) -> String {
    if map.is_empty() {
        return format!("tenants:\n  {name}: {{}}\n");
    }
    let mut out = format!("tenants:\n  {name}:\n");
    emit::mapping(&mut out, map, 4);
    out
}

/// A platform document sent as JSON, as block YAML; YAML is stored as sent.
pub fn platform_file_from_map(map: &Map<String, Value>) -> String {
    let mut out = String::new();
    emit::mapping(&mut out, map, 0);
    out
}

/// Moves findings about the indented body back to the lines and columns of the body itself.
pub fn body_findings(findings: Vec<Finding>, path: &str) -> Vec<Finding> {
    findings
        .into_iter()
        .map(|mut f| {
            if f.file == path && f.line > BODY_LINE_OFFSET {
                f.line -= BODY_LINE_OFFSET;
                f.column = f.column.saturating_sub(BODY_INDENT).max(1);
                f.file = "(request body)".into();
            }
            f
        })
        .collect()
}

/// Parses a whole stored file into JSON; an empty one (blank, or comments only) is `{}`.
pub fn file_value(content: &str) -> Result<Value, ApiError> {
    if content.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    match serde_saphyr::from_str::<Value>(content) {
        Ok(Value::Null) => Ok(Value::Object(Map::new())),
        Ok(value) => Ok(value),
        Err(e) => Err(ApiError::Internal(format!(
            "a stored document does not parse although it was served: {e}"
        ))),
    }
}

/// The settings of tenant `name` in a stored file: `None` if the file does not define it.
pub fn tenant_settings(content: &str, name: &str) -> Result<Option<Map<String, Value>>, ApiError> {
    let file = file_value(content)?;
    Ok(match file.get("tenants").and_then(|t| t.get(name)) {
        None => None,
        Some(Value::Null) => Some(Map::new()),
        Some(Value::Object(m)) => Some(m.clone()),
        Some(_) => Some(Map::new()),
    })
}

/// A stored file as seen by one tenant's API calls, parsed once.
pub struct TenantFile {
    /// The tenant's settings; `None` if the file does not define it.
    pub settings: Option<Map<String, Value>>,
    /// Whether the file holds this tenant and nothing else.
    sole: bool,
}

impl TenantFile {
    pub fn parse(content: &str, name: &str) -> Result<TenantFile, ApiError> {
        let file = file_value(content)?;
        let settings = match file.get("tenants").and_then(|t| t.get(name)) {
            None => None,
            Some(Value::Object(m)) => Some(m.clone()),
            Some(_) => Some(Map::new()),
        };
        let sole = file.as_object().is_some_and(|blocks| {
            blocks.keys().all(|k| k == "tenants")
                && !blocks
                    .get("tenants")
                    .and_then(Value::as_object)
                    .is_some_and(|t| t.keys().any(|k| k != name))
        });
        Ok(TenantFile { settings, sole })
    }

    /// A file that holds only this tenant, with these settings (what PATCH writes).
    pub fn sole(settings: Map<String, Value>) -> TenantFile {
        TenantFile {
            settings: Some(settings),
            sole: true,
        }
    }

    /// `409` unless the file holds only this tenant (see [`check_sole_tenant`]).
    pub fn check_sole(&self, path: &str, name: &str) -> Result<(), ApiError> {
        if self.sole {
            Ok(())
        } else {
            Err(shared_file(path, name))
        }
    }
}

/// Refuses to edit a file through one tenant's API when it also holds something else: an
/// edit would have to rewrite the other tenants too.
pub fn check_sole_tenant(content: &str, path: &str, name: &str) -> Result<(), ApiError> {
    match tenants_if_sole(&file_value(content)?, name) {
        Some(_) => Ok(()),
        None => Err(shared_file(path, name)),
    }
}

/// The `tenants` block of a file that holds nothing but tenant `name` (an empty mapping when
/// it has none), else `None`.
fn tenants_if_sole<'a>(file: &'a Value, name: &str) -> Option<&'a Map<String, Value>> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    let blocks = file.as_object()?;
    if !blocks.keys().all(|k| k == "tenants") {
        return None;
    }
    // `tenants:` with no mapping under it holds no tenant.
    let tenants = blocks
        .get("tenants")
        .and_then(Value::as_object)
        .unwrap_or_else(|| EMPTY.get_or_init(Map::new));
    tenants.keys().all(|k| k == name).then_some(tenants)
}

fn shared_file(path: &str, name: &str) -> ApiError {
    DocumentError::SharedFile {
        path: path.to_string(),
        tenant: name.to_string(),
    }
    .into()
}

/// RFC 7396 JSON merge patch: `null` removes a member, objects merge, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(map) = target else { return };
    for (key, value) in patch {
        if value.is_null() {
            map.remove(key);
        } else {
            merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// The members whose value differs between two versions of a document.
pub fn changed_fields(before: &Map<String, Value>, after: &Map<String, Value>) -> Vec<FieldChange> {
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|k| FieldChange {
            field: k.clone(),
            before: before.get(k).cloned(),
            after: after.get(k).cloned(),
        })
        .collect()
}

/// One top-level key that a write changed.
#[derive(Debug, serde::Serialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldChange {
    /// A top-level key of the document: one of the tenant's settings, or one block of a
    /// platform file.
    pub field: String,
    /// Its value before; `null` when it was not set.
    #[schema(required = true)]
    pub before: Option<Value>,
    /// Its value after; `null` when it was removed.
    #[schema(required = true)]
    pub after: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use serde_json::json;

    #[test]
    fn a_yaml_body_keeps_its_comments_and_a_json_body_parses_alike() {
        let yaml = "# raised for the migration\nmysql_connections: 90\n";
        let file = tenant_file_from_body("db-a", yaml);
        assert_eq!(
            file,
            "tenants:\n  db-a:\n    # raised for the migration\n    mysql_connections: 90\n"
        );
        let json_body = "{\"mysql_connections\": 90,\n \"_metadata\": {\"owner\": \"x\"}}";
        let settings = tenant_settings(&tenant_file_from_body("db-a", json_body), "db-a")
            .unwrap()
            .unwrap();
        assert_eq!(
            Value::Object(settings),
            json!({"mysql_connections": 90, "_metadata": {"owner": "x"}})
        );
        assert_eq!(
            tenant_settings(&tenant_file_from_body("db-a", "  \n"), "db-a").unwrap(),
            Some(Map::new())
        );
    }

    #[test]
    fn every_line_break_of_a_body_is_indented() {
        let escape = "mysql_connections: 1\r  db-b:\r    mysql_connections: 2\r\n";
        let file = tenant_file_from_body("db-a", escape);
        assert_eq!(
            file,
            "tenants:\n  db-a:\n    mysql_connections: 1\n      db-b:\n        mysql_connections: 2\n"
        );
        assert!(check_defines_only(&file, "db-a").is_err());
        let crlf = tenant_file_from_body("db-a", "a: 1\r\n\r\nb: 2\r\n");
        assert_eq!(crlf, "tenants:\n  db-a:\n    a: 1\n\n    b: 2\n");
        assert!(check_defines_only(&crlf, "db-a").is_ok());
    }

    #[test]
    fn a_file_with_another_tenant_or_block_is_refused() {
        for other in [
            "tenants:\n  db-a: {}\n  db-b: {}\n",
            "tenants:\n  db-a: {}\ndefaults: {x: 1}\n",
            "tenants:\n  db-b: {}\n",
        ] {
            let problem = check_defines_only(other, "db-a").unwrap_err();
            assert_eq!(
                problem.status(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "{other}"
            );
        }
    }

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut doc = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": 4});
        merge_patch(
            &mut doc,
            &json!({"a": null, "b": {"c": null, "x": 9}, "f": "disable"}),
        );
        assert_eq!(doc, json!({"b": {"d": 3, "x": 9}, "e": 4, "f": "disable"}));
    }

    #[test]
    fn files_holding_other_tenants_or_blocks_are_not_edited() {
        assert!(check_sole_tenant("tenants:\n  a: {x: 1}\n", "a.yaml", "a").is_ok());
        assert!(check_sole_tenant("tenants:\n  b: {}\n", "a.yaml", "a").is_err());
        assert!(check_sole_tenant("tenants:\n  a: {}\n  b: {}\n", "t.yaml", "a").is_err());
        let e = check_sole_tenant("defaults: {}\ntenants:\n  a: {}\n", "t.yaml", "a").unwrap_err();
        assert_eq!(e.status(), 409);
    }

    #[test]
    fn body_lines_are_reported_as_sent() {
        let f = Finding {
            level: dynalert_config::Level::Error,
            field: Some("k".into()),
            tenant: Some("a".into()),
            file: "a.yaml".into(),
            line: 4,
            column: 5,
            message: "m".into(),
        };
        let moved = body_findings(vec![f], "a.yaml");
        assert_eq!((moved[0].line, moved[0].column), (2, 1));
    }
}
