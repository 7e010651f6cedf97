//! Who is calling: bearer tokens from `--auth-file`, each with a role.
//!
//! The file lists tokens by SHA-256 hash, never in clear:
//!
//! ```yaml
//! tokens:
//!   - name: platform-team          # recorded as the actor of every write
//!     sha256: 9f86d081884c7d65…    # `printf %s "$TOKEN" | sha256sum`
//!     role: admin                  # admin | viewer | tenant:<name>
//! ```
//!
//! It is re-read when it changes (checked on each request, one `stat`); a broken edit keeps
//! the previous tokens and is logged. Without an auth file the API is read-only for everyone.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use axum::http::{HeaderMap, header};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tracing::{error, info};

use crate::error::{ApiError, AuthError};

/// What a caller may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Everything.
    Admin,
    /// Read everything, write nothing.
    Viewer,
    /// Read and write this one tenant; never platform blocks.
    Tenant(String),
}

/// A role of the auth file that is not one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RoleError {
    #[error("role {role:?}: {name:?} is not a valid tenant name")]
    TenantName { role: String, name: String },
    #[error("role {0:?}: expected admin, viewer or tenant:<name>")]
    Unknown(String),
}

impl std::str::FromStr for Role {
    type Err = RoleError;

    fn from_str(text: &str) -> Result<Role, RoleError> {
        match text {
            "admin" => Ok(Role::Admin),
            "viewer" => Ok(Role::Viewer),
            _ => match text.strip_prefix("tenant:") {
                Some(name) if dynalert_config::names::is_valid_tenant(name) => {
                    Ok(Role::Tenant(name.to_string()))
                }
                Some(name) => Err(RoleError::TenantName {
                    role: text.to_string(),
                    name: name.to_string(),
                }),
                None => Err(RoleError::Unknown(text.to_string())),
            },
        }
    }
}

/// The caller of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// No auth file: anyone may read, nobody may write.
    Anonymous,
    Token {
        name: String,
        role: Role,
    },
}

impl Caller {
    /// The actor recorded in the audit history.
    pub fn actor(&self) -> String {
        match self {
            Caller::Anonymous => "anonymous".into(),
            Caller::Token { name, .. } => name.clone(),
        }
    }

    fn role(&self) -> Option<&Role> {
        match self {
            Caller::Anonymous => None,
            Caller::Token { role, .. } => Some(role),
        }
    }

    /// Reading one tenant: everyone but another tenant.
    pub fn may_read_tenant(&self, tenant: &str) -> Result<(), ApiError> {
        match self.role() {
            Some(Role::Tenant(own)) if own != tenant => Err(other_tenant(tenant)),
            _ => Ok(()),
        }
    }

    /// Writing one tenant: an admin, or that tenant's own token.
    pub fn may_write_tenant(&self, tenant: &str) -> Result<(), ApiError> {
        match self.role() {
            None => Err(read_only()),
            Some(Role::Admin) => Ok(()),
            Some(Role::Tenant(own)) if own == tenant => Ok(()),
            Some(Role::Tenant(_)) => Err(other_tenant(tenant)),
            Some(Role::Viewer) => Err(AuthError::ViewerCannotWrite.into()),
        }
    }

    /// Reading what is not one tenant's (the platform, the load status, everyone's view).
    pub fn may_read_all(&self) -> Result<(), ApiError> {
        match self.role() {
            Some(Role::Tenant(own)) => Err(AuthError::TenantOnly(own.clone()).into()),
            _ => Ok(()),
        }
    }

    /// Writing the platform configuration: admins only.
    pub fn may_write_platform(&self) -> Result<(), ApiError> {
        match self.role() {
            None => Err(read_only()),
            Some(Role::Admin) => Ok(()),
            Some(_) => Err(AuthError::NotAdmin.into()),
        }
    }

    /// The one tenant this caller is confined to, if any.
    pub fn own_tenant(&self) -> Option<&str> {
        match self.role() {
            Some(Role::Tenant(own)) => Some(own),
            _ => None,
        }
    }
}

fn read_only() -> ApiError {
    AuthError::ReadOnly.into()
}

fn other_tenant(tenant: &str) -> ApiError {
    AuthError::OtherTenant(tenant.to_string()).into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    tokens: Vec<TokenEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    name: String,
    sha256: String,
    role: String,
}

/// Token hash (lowercase hex) → caller.
type Tokens = HashMap<String, Caller>;

/// The auth file and the tokens last read from it.
pub struct Auth {
    path: Option<PathBuf>,
    loaded: Mutex<Loaded>,
}

struct Loaded {
    stamp: Option<(SystemTime, u64)>,
    tokens: Arc<Tokens>,
}

impl Auth {
    /// No auth file: read-only API.
    pub fn none() -> Auth {
        Auth {
            path: None,
            loaded: Mutex::new(Loaded {
                stamp: None,
                tokens: Arc::default(),
            }),
        }
    }

    /// Reads the auth file; a missing or invalid file is an error at start.
    pub fn load(path: &Path) -> Result<Auth, String> {
        let (stamp, tokens) = read_tokens(path)?;
        info!(file = %path.display(), tokens = tokens.len(), "API authentication enabled");
        Ok(Auth {
            path: Some(path.to_path_buf()),
            loaded: Mutex::new(Loaded {
                stamp: Some(stamp),
                tokens: Arc::new(tokens),
            }),
        })
    }

    /// The caller of a request: `Anonymous` without an auth file, else the token's holder;
    /// `401` for a missing, malformed or unknown token.
    pub fn caller(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let Some(path) = &self.path else {
            return Ok(Caller::Anonymous);
        };
        let token = bearer_token(headers).map_err(ApiError::from)?;
        let tokens = self.current_tokens(path);
        tokens
            .get(&hash_token(token))
            .cloned()
            .ok_or_else(|| AuthError::UnknownToken.into())
    }

    /// The tokens, re-read first if the file changed. A failed re-read keeps the old ones.
    fn current_tokens(&self, path: &Path) -> Arc<Tokens> {
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        let stamp = file_stamp(path).ok();
        if stamp.is_some() && stamp != loaded.stamp {
            match read_tokens(path) {
                Ok((stamp, tokens)) => {
                    info!(tokens = tokens.len(), "auth file reloaded");
                    *loaded = Loaded {
                        stamp: Some(stamp),
                        tokens: Arc::new(tokens),
                    };
                }
                Err(e) => {
                    error!("{e}; keeping the previous tokens");
                    loaded.stamp = stamp;
                }
            }
        }
        loaded.tokens.clone()
    }
}

fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(AuthError::MissingToken)?;
    let text = value.to_str().map_err(|_| AuthError::NotAscii)?;
    match text.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(AuthError::NotBearer),
    }
}

/// Lowercase hex SHA-256 of a token, as the auth file stores it.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn file_stamp(path: &Path) -> std::io::Result<(SystemTime, u64)> {
    let meta = std::fs::metadata(path)?;
    Ok((meta.modified()?, meta.len()))
}

fn read_tokens(path: &Path) -> Result<((SystemTime, u64), Tokens), String> {
    let context = |e: String| format!("auth file {}: {e}", path.display());
    let stamp = file_stamp(path).map_err(|e| context(e.to_string()))?;
    let text = std::fs::read_to_string(path).map_err(|e| context(e.to_string()))?;
    let file: TokenFile = serde_saphyr::from_str(&text).map_err(|e| context(e.to_string()))?;
    let mut tokens = Tokens::new();
    for (i, entry) in file.tokens.into_iter().enumerate() {
        let at = |e: String| context(format!("tokens[{i}] ({}): {e}", entry.name));
        let role: Role = entry
            .role
            .parse()
            .map_err(|e: RoleError| at(e.to_string()))?;
        let hash = entry.sha256.trim().to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(at(
                "sha256 must be 64 hex digits (the token's SHA-256)".into()
            ));
        }
        if entry.name.trim().is_empty() {
            return Err(at("name must not be empty".into()));
        }
        let caller = Caller::Token {
            name: entry.name.clone(),
            role,
        };
        if tokens.insert(hash, caller).is_some() {
            return Err(at("the same token hash is listed twice".into()));
        }
    }
    Ok((stamp, tokens))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(auth).unwrap());
        h
    }

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("auth.yaml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn tokens_resolve_to_their_role_and_unknown_ones_are_401() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "tokens:\n  - {{name: ops, sha256: {}, role: admin}}\n  - {{name: a, sha256: {}, role: 'tenant:db-a'}}\n",
            hash_token("s3cret"),
            hash_token("a-token")
        );
        let auth = Auth::load(&write(dir.path(), &text)).unwrap();
        assert_eq!(
            auth.caller(&headers("Bearer s3cret")).unwrap(),
            Caller::Token {
                name: "ops".into(),
                role: Role::Admin
            }
        );
        assert_eq!(
            auth.caller(&headers("bearer a-token"))
                .unwrap()
                .own_tenant(),
            Some("db-a")
        );
        for bad in ["Bearer nope", "Basic s3cret", "Bearer "] {
            assert_eq!(
                auth.caller(&headers(bad)).unwrap_err().status(),
                401,
                "{bad}"
            );
        }
        assert_eq!(auth.caller(&HeaderMap::new()).unwrap_err().status(), 401);
    }

    #[test]
    fn a_bad_file_is_refused_at_start_and_kept_out_on_reload() {
        let dir = tempfile::tempdir().unwrap();
        let bad = write(
            dir.path(),
            "tokens:\n  - {name: x, sha256: abc, role: admin}\n",
        );
        let e = Auth::load(&bad).err().unwrap();
        assert!(e.contains("64 hex digits"), "{e}");
        let good = format!(
            "tokens:\n  - {{name: x, sha256: {}, role: viewer}}\n",
            hash_token("t")
        );
        let path = write(dir.path(), &good);
        let auth = Auth::load(&path).unwrap();
        std::fs::write(
            &path,
            "tokens: [{name: x, sha256: 1, role: king}]\n# longer now\n",
        )
        .unwrap();
        assert!(auth.caller(&headers("Bearer t")).is_ok(), "old tokens kept");
    }

    #[test]
    fn without_a_file_everyone_reads_and_nobody_writes() {
        let caller = Auth::none().caller(&HeaderMap::new()).unwrap();
        assert_eq!(caller, Caller::Anonymous);
        assert!(caller.may_read_tenant("a").is_ok());
        assert_eq!(caller.may_write_tenant("a").unwrap_err().status(), 403);
        assert_eq!(caller.may_write_platform().unwrap_err().status(), 403);
    }

    #[test]
    fn a_tenant_token_is_confined_to_its_tenant() {
        let caller = Caller::Token {
            name: "a".into(),
            role: Role::Tenant("a".into()),
        };
        assert!(caller.may_read_tenant("a").is_ok());
        assert!(caller.may_write_tenant("a").is_ok());
        assert_eq!(caller.may_read_tenant("b").unwrap_err().status(), 403);
        assert_eq!(caller.may_write_tenant("b").unwrap_err().status(), 403);
        assert_eq!(caller.may_write_platform().unwrap_err().status(), 403);
        assert_eq!(caller.may_read_all().unwrap_err().status(), 403);
    }
}
