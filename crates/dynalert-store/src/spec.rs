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
#[error("invalid store {given:?}: {reason}")]
pub struct SpecError {
    pub given: String,
    pub reason: &'static str,
}

const EXPECTED: &str =
    "expected dir:PATH, sqlite:PATH (or sqlite://PATH) or postgres://USER@HOST:PORT/DB";

/// Why an in-memory SQLite database cannot be a store.
const IN_MEMORY: &str = "an in-memory SQLite database is private to one connection, so the \
    server's readers would see an empty database without tables (it would never become ready), \
    and every write would be lost at exit; give a file, e.g. sqlite:dynalert.db";

/// Whether SQLite opens `path` in memory (the store opens files with URI names allowed).
fn in_memory(path: &str) -> bool {
    path == ":memory:"
        || path.starts_with("file::memory:")
        || (path.starts_with("file:") && path.contains("mode=memory"))
}

impl StoreSpec {
    /// The embedded default: `dynalert.db` in the working directory.
    pub fn default_sqlite() -> Self {
        StoreSpec::Sqlite(PathBuf::from("dynalert.db"))
    }

    pub fn parse(text: &str) -> Result<Self, SpecError> {
        let refuse = |reason| {
            Err(SpecError {
                given: text.to_string(),
                reason,
            })
        };
        let nonempty = |rest: &str, make: fn(String) -> StoreSpec| {
            if rest.is_empty() {
                refuse(EXPECTED)
            } else {
                Ok(make(rest.to_string()))
            }
        };
        let sqlite = |rest: &str| {
            if in_memory(rest) {
                refuse(IN_MEMORY)
            } else {
                nonempty(rest, |p| StoreSpec::Sqlite(p.into()))
            }
        };
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(StoreSpec::Postgres(text.to_string()));
        }
        if let Some(rest) = text.strip_prefix("sqlite://") {
            return sqlite(rest);
        }
        if let Some(rest) = text.strip_prefix("sqlite:") {
            return sqlite(rest);
        }
        if let Some(rest) = text.strip_prefix("dir:") {
            return nonempty(rest, |p| StoreSpec::Dir(p.into()));
        }
        refuse(EXPECTED)
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
    fn in_memory_sqlite_is_refused_with_the_reason() {
        for given in [
            "sqlite::memory:",
            "sqlite://:memory:",
            "sqlite:file::memory:?cache=shared",
            "sqlite:file:x.db?mode=memory",
        ] {
            let e = StoreSpec::parse(given).unwrap_err();
            assert_eq!(e.reason, IN_MEMORY, "{given}");
            assert!(e.to_string().contains("in-memory"), "{e}");
        }
        // A file whose name merely mentions memory is a file.
        assert_eq!(
            StoreSpec::parse("sqlite:memory.db"),
            Ok(StoreSpec::Sqlite("memory.db".into()))
        );
    }

    #[test]
    fn passwords_are_not_displayed() {
        let spec = StoreSpec::parse("postgres://me:hunter2@db:5432/x").unwrap();
        assert_eq!(spec.to_string(), "postgres://me:***@db:5432/x");
    }
}
