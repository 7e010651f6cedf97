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
//! It is re-read when it changes (checked on each API request and each `/ready` and `/metrics`
//! answer, one `stat`), like the configuration: a new valid file takes effect at once; a missing
//! or broken one keeps the last good tokens, is logged once, shown in `/ready` and exported as
//! `dynalert_auth_file_last_reload_successful 0` until a valid file is back. Without an auth
//! file the API is read-only for everyone.

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
    /// The file last looked at (`None` when it was missing): a different one is read again.
    stamp: Option<Stamp>,
    /// The last good tokens.
    tokens: Arc<Tokens>,
    /// Why the file as it is now is not in effect.
    error: Option<String>,
}

/// Whether the auth file on disk is the one in effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthFileStatus {
    /// Why it is not (missing, unreadable, invalid): the last good tokens stay in effect.
    pub error: Option<String>,
}

impl Auth {
    /// No auth file: read-only API.
    pub fn none() -> Auth {
        Auth {
            path: None,
            loaded: Mutex::new(Loaded {
                stamp: None,
                tokens: Arc::default(),
                error: None,
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
                error: None,
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

    /// Whether the auth file on disk is in effect, re-read first if it changed; `None`
    /// without an auth file.
    pub fn file_status(&self) -> Option<AuthFileStatus> {
        let path = self.path.as_deref()?;
        self.refresh(path);
        let loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        Some(AuthFileStatus {
            error: loaded.error.clone(),
        })
    }

    /// The tokens, re-read first if the file changed.
    fn current_tokens(&self, path: &Path) -> Arc<Tokens> {
        self.refresh(path);
        self.loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .tokens
            .clone()
    }

    /// Re-reads the file if it is not the one last looked at. A missing or broken file keeps
    /// the last good tokens; each new problem is logged once.
    fn refresh(&self, path: &Path) {
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        let (stamp, read) = match file_stamp(path) {
            Ok(stamp) if Some(stamp) == loaded.stamp => return,
            Ok(stamp) => (Some(stamp), read_tokens(path)),
            Err(e) => {
                if loaded.stamp.is_none() && loaded.error.is_some() {
                    return; // still missing, already reported
                }
                (None, Err(format!("auth file {}: {e}", path.display())))
            }
        };
        loaded.stamp = stamp;
        match read {
            Ok((stamp, tokens)) => {
                info!(tokens = tokens.len(), "auth file reloaded");
                *loaded = Loaded {
                    stamp: Some(stamp),
                    tokens: Arc::new(tokens),
                    error: None,
                };
            }
            Err(e) => {
                if loaded.error.as_ref() != Some(&e) {
                    error!("{e}; keeping the last good tokens");
                }
                loaded.error = Some(e);
            }
        }
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

/// What tells one version of the file from another without reading it: modification time,
/// length and, on Unix, the inode (a file replaced by a rename within one clock tick of the
/// last edit, with the same length, is still seen).
type Stamp = (SystemTime, u64, u64);

fn file_stamp(path: &Path) -> std::io::Result<Stamp> {
    let meta = std::fs::metadata(path)?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Ok((meta.modified()?, meta.len(), inode))
}

fn read_tokens(path: &Path) -> Result<(Stamp, Tokens), String> {
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
    fn a_new_file_takes_effect_and_a_missing_or_broken_one_keeps_the_last_good_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, token: &str| {
            format!(
                "tokens:\n  - {{name: {name}, sha256: {}, role: viewer}}\n",
                hash_token(token)
            )
        };
        let path = write(dir.path(), &file("first", "t1"));
        let auth = Auth::load(&path).unwrap();
        assert_eq!(auth.file_status(), Some(AuthFileStatus { error: None }));

        // Replaced as editors and ConfigMaps do (a rename): the new token only.
        let replace = |text: &str| {
            let tmp = dir.path().join("auth.yaml.tmp");
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, &path).unwrap();
        };
        replace(&file("second", "t2"));
        assert!(auth.caller(&headers("Bearer t2")).is_ok(), "new token");
        assert_eq!(
            auth.caller(&headers("Bearer t1")).unwrap_err().status(),
            401
        );

        std::fs::remove_file(&path).unwrap();
        let error = auth
            .file_status()
            .unwrap()
            .error
            .expect("a missing file is reported");
        assert!(error.contains("auth.yaml"), "{error}");
        assert!(
            auth.caller(&headers("Bearer t2")).is_ok(),
            "last good tokens kept"
        );

        replace("tokens: [{name: x, sha256: 1, role: king}]\n");
        let error = auth
            .file_status()
            .unwrap()
            .error
            .expect("a broken file is reported");
        assert!(error.contains("king"), "{error}");
        assert!(
            auth.caller(&headers("Bearer t2")).is_ok(),
            "last good tokens kept"
        );

        replace(&file("third", "t3"));
        assert_eq!(auth.file_status(), Some(AuthFileStatus { error: None }));
        assert!(auth.caller(&headers("Bearer t3")).is_ok());
        assert_eq!(
            auth.caller(&headers("Bearer t2")).unwrap_err().status(),
            401
        );
        assert_eq!(Auth::none().file_status(), None);
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
