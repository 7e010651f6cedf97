//! Reading a request: names in the path, the body and its format, preconditions.

use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use bytes::Bytes;
use dynalert_store::Document;

use crate::error::{ApiError, PreconditionError, RequestError};

/// The `{tenant}` segment of the URL; a segment that does not decode (not UTF-8) is a
/// problem document like every other error, not the router's plain text.
pub struct TenantPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for TenantPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(name) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| RequestError::Path(e.body_text()))?;
        Ok(TenantPath(name))
    }
}

/// A tenant name from the URL, checked before it reaches a file path, a query or a label.
pub fn tenant_name(name: &str) -> Result<&str, ApiError> {
    if dynalert_config::names::is_valid_tenant(name) {
        Ok(name)
    } else {
        Err(RequestError::TenantName(name.to_string()).into())
    }
}

/// How a sent document is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
}

impl Format {
    /// From `Content-Type` of a whole document: JSON or YAML; a missing type is read as
    /// JSON. Anything else (a merge patch included: it is not a document) is `415`.
    pub fn of(headers: &HeaderMap) -> Result<Format, ApiError> {
        match media_type(headers).as_deref() {
            Some("application/merge-patch+json") => {
                Err(unsupported("application/merge-patch+json"))
            }
            _ => Self::of_any(headers),
        }
    }

    /// Like [`Format::of`], also taking `application/merge-patch+json` as JSON (PATCH).
    pub fn of_any(headers: &HeaderMap) -> Result<Format, ApiError> {
        let Some(media) = media_type(headers) else {
            return Ok(Format::Json);
        };
        match media.as_str() {
            "application/json" | "application/merge-patch+json" => Ok(Format::Json),
            "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml" => {
                Ok(Format::Yaml)
            }
            other => Err(unsupported(other)),
        }
    }
}

/// The media type of `Content-Type`, lowercase, without parameters.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?;
    let media = value.to_str().unwrap_or("").split(';').next().unwrap_or("");
    Some(media.trim().to_ascii_lowercase())
}

fn unsupported(media: &str) -> ApiError {
    RequestError::UnsupportedMedia(media.to_string()).into()
}

/// The body as UTF-8 text; `413` over [`super::MAX_BODY`].
pub fn body_text(body: Result<Bytes, BytesRejection>) -> Result<String, ApiError> {
    let bytes = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            RequestError::TooLarge {
                limit: super::MAX_BODY,
            }
        } else {
            RequestError::Body(rejection.to_string())
        }
    })?;
    String::from_utf8(bytes.to_vec()).map_err(|e| {
        RequestError::NotUtf8 {
            valid_up_to: e.utf8_error().valid_up_to(),
        }
        .into()
    })
}

/// A JSON body that must be an object.
pub fn json_object(text: &str) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(other) => Err(RequestError::NotObject(json_kind(&other)).into()),
        Err(e) => Err(RequestError::NotJson(e).into()),
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// `If-Match` as sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IfMatch {
    Absent,
    /// `*`: whatever the current revision is, as long as there is one.
    Any,
    Revisions(Vec<String>),
}

impl IfMatch {
    pub fn of(headers: &HeaderMap) -> Result<IfMatch, ApiError> {
        let values: Vec<&HeaderValue> = headers.get_all(header::IF_MATCH).iter().collect();
        if values.is_empty() {
            return Ok(IfMatch::Absent);
        }
        let mut revisions = Vec::new();
        for value in values {
            let text = value.to_str().map_err(|_| RequestError::IfMatchNotAscii)?;
            for tag in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                if tag == "*" {
                    return Ok(IfMatch::Any);
                }
                // If-Match compares strongly (RFC 9110 §13.1.1): a weak tag never matches.
                let weak = tag.starts_with("W/");
                let tag = tag.strip_prefix("W/").unwrap_or(tag);
                let inner = tag
                    .strip_prefix('"')
                    .and_then(|t| t.strip_suffix('"'))
                    .ok_or_else(|| RequestError::IfMatchUnquoted(tag.to_string()))?;
                if !weak {
                    revisions.push(inner.to_string());
                }
            }
        }
        Ok(IfMatch::Revisions(revisions))
    }

    /// Whether a write may replace `current`. Replacing an existing document needs
    /// `If-Match` (`428` without, so nobody overwrites blindly); a stale one is `412`; an
    /// `If-Match` for a document that does not exist is `412` too.
    pub fn allows(&self, current: Option<&Document>, what: &str) -> Result<(), ApiError> {
        match (self, current) {
            (IfMatch::Absent, None) => Ok(()),
            (IfMatch::Absent, Some(doc)) => Err(PreconditionError::Required {
                what: what.to_string(),
                revision: doc.revision.clone(),
            }
            .into()),
            (_, None) => Err(PreconditionError::Missing {
                what: what.to_string(),
            }
            .into()),
            (IfMatch::Any, Some(_)) => Ok(()),
            (IfMatch::Revisions(tags), Some(doc)) => {
                if tags.contains(&doc.revision) {
                    Ok(())
                } else {
                    Err(PreconditionError::Stale {
                        current: doc.revision.clone(),
                    }
                    .into())
                }
            }
        }
    }

    /// Like [`IfMatch::allows`], for writes that may go without (PATCH: atomic anyway).
    pub fn allows_optional(&self, current: Option<&Document>, what: &str) -> Result<(), ApiError> {
        match self {
            IfMatch::Absent => Ok(()),
            _ => self.allows(current, what),
        }
    }
}

/// The `ETag` header value of a revision.
pub fn etag(revision: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{revision}\"")).unwrap_or(HeaderValue::from_static("\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(revision: &str) -> Document {
        Document {
            path: "a.yaml".into(),
            content: String::new(),
            revision: revision.into(),
        }
    }

    fn if_match(value: &str) -> IfMatch {
        let mut h = HeaderMap::new();
        h.insert(header::IF_MATCH, HeaderValue::from_str(value).unwrap());
        IfMatch::of(&h).unwrap()
    }

    #[test]
    fn preconditions() {
        let none = IfMatch::Absent;
        assert!(none.allows(None, "tenant a").is_ok());
        assert_eq!(
            none.allows(Some(&doc("7")), "tenant a")
                .unwrap_err()
                .status(),
            428
        );
        assert!(if_match("\"7\"").allows(Some(&doc("7")), "t").is_ok());
        assert!(
            if_match("\"3\", \"7\"")
                .allows(Some(&doc("7")), "t")
                .is_ok()
        );
        let weak = if_match("W/\"7\"").allows(Some(&doc("7")), "t");
        assert_eq!(weak.unwrap_err().status(), 412, "weak tags never match");
        assert_eq!(
            if_match("\"6\"")
                .allows(Some(&doc("7")), "t")
                .unwrap_err()
                .status(),
            412
        );
        assert_eq!(
            if_match("\"6\"").allows(None, "t").unwrap_err().status(),
            412
        );
        assert!(if_match("*").allows(Some(&doc("7")), "t").is_ok());
        assert!(none.allows_optional(Some(&doc("7")), "t").is_ok());
        let mut h = HeaderMap::new();
        h.insert(header::IF_MATCH, HeaderValue::from_static("7"));
        assert_eq!(IfMatch::of(&h).unwrap_err().status(), 400);
    }
}
