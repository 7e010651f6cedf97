//! How API documents map onto conf.d files: a tenant is the mapping under `tenants: <name>:`
//! of a file that holds only that tenant; the platform is a set of platform files.
//!
//! Documents are read and written by the model's codec ([`dynalert_config::codec`]): a tenant
//! document, sent as YAML or JSON or changed by a merge patch, is stored as block YAML; a
//! sent document's findings are given in the sender's own lines and columns.

use dynalert_config::codec;
use serde_json::{Map, Value};

use crate::error::{ApiError, DocumentError};

/// The file API writes create for a new tenant.
pub fn default_tenant_path(tenant: &str) -> String {
    format!("{tenant}.yaml")
}

/// Reads a whole stored file as JSON; an empty one (blank, or comments only) is `{}`.
pub fn file_value(content: &str) -> Result<Value, ApiError> {
    codec::decode(content).map_err(|e| {
        ApiError::Internal(format!(
            "a stored document does not parse although it was served: line {}: {}",
            e.pos.line, e.message
        ))
    })
}

/// The settings of tenant `name` in a stored file: `None` if the file does not define it.
pub fn tenant_settings(content: &str, name: &str) -> Result<Option<Map<String, Value>>, ApiError> {
    Ok(TenantFile::parse(content, name)?.settings)
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
    use serde_json::json;

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
    fn a_tenant_is_read_from_its_file() {
        let file = "tenants:\n  a:\n    # raised\n    x: 90\n  b: ~\n";
        assert_eq!(
            tenant_settings(file, "a").unwrap().map(Value::Object),
            Some(json!({"x": 90}))
        );
        assert_eq!(tenant_settings(file, "b").unwrap(), Some(Map::new()));
        assert_eq!(tenant_settings(file, "c").unwrap(), None);
    }
}
