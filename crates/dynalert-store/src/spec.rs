//! The `--store` argument: which backend, and where.

use std::fmt;
use std::path::PathBuf;

/// Which store to open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreSpec {
    /// A conf.d directory (`dir:PATH`).
    Dir(PathBuf),
    /// An SQLite database file (`sqlite:PATH` or `sqlite://PATH`), created when missing.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (`postgres://…` or `postgresql://…`).
    Postgres(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid store {given:?}: expected dir:PATH, sqlite:PATH (or sqlite://PATH) or postgres://USER@HOST:PORT/DB"
)]
pub struct SpecError {
    pub given: String,
}

impl StoreSpec {
    /// The embedded default: `dynalert.db` in the working directory.
    pub fn default_sqlite() -> Self {
        StoreSpec::Sqlite(PathBuf::from("dynalert.db"))
    }

    pub fn parse(text: &str) -> Result<Self, SpecError> {
        let nonempty = |rest: &str, make: fn(String) -> StoreSpec| {
            if rest.is_empty() {
                Err(SpecError {
                    given: text.to_string(),
                })
            } else {
                Ok(make(rest.to_string()))
            }
        };
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(StoreSpec::Postgres(text.to_string()));
        }
        if let Some(rest) = text.strip_prefix("sqlite://") {
            return nonempty(rest, |p| StoreSpec::Sqlite(p.into()));
        }
        if let Some(rest) = text.strip_prefix("sqlite:") {
            return nonempty(rest, |p| StoreSpec::Sqlite(p.into()));
        }
        if let Some(rest) = text.strip_prefix("dir:") {
            return nonempty(rest, |p| StoreSpec::Dir(p.into()));
        }
        Err(SpecError {
            given: text.to_string(),
        })
    }
}

impl std::str::FromStr for StoreSpec {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StoreSpec::parse(s)
    }
}

impl fmt::Display for StoreSpec {
    /// Without the password of a PostgreSQL URL, so it can be logged.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreSpec::Dir(p) => write!(f, "dir:{}", p.display()),
            StoreSpec::Sqlite(p) => write!(f, "sqlite:{}", p.display()),
            StoreSpec::Postgres(url) => f.write_str(&redact_password(url)),
        }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub(crate) fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_parses() {
        assert_eq!(
            StoreSpec::parse("dir:conf.d"),
            Ok(StoreSpec::Dir("conf.d".into()))
        );
        assert_eq!(
            StoreSpec::parse("sqlite:a.db"),
            Ok(StoreSpec::Sqlite("a.db".into()))
        );
        assert_eq!(
            StoreSpec::parse("sqlite:///var/lib/a.db"),
            Ok(StoreSpec::Sqlite("/var/lib/a.db".into()))
        );
        assert_eq!(
            StoreSpec::parse("postgresql://u@h/db"),
            Ok(StoreSpec::Postgres("postgresql://u@h/db".into()))
        );
        assert!(StoreSpec::parse("mysql://x").is_err());
        assert!(StoreSpec::parse("sqlite:").is_err());
    }

    #[test]
    fn passwords_are_not_displayed() {
        let spec = StoreSpec::parse("postgres://me:hunter2@db:5432/x").unwrap();
        assert_eq!(spec.to_string(), "postgres://me:***@db:5432/x");
    }
}
