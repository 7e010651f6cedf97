//! Document paths are checked before they reach a file system or a query: relative, `/`
//! separated, made of plain names, ending in `.yaml` or `.yml`.

/// Why a path cannot name a document.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid document path {path:?}: {reason}")]
pub struct PathError {
    pub path: String,
    pub reason: &'static str,
}

/// Longest path accepted, in bytes.
const MAX_PATH: usize = 512;

/// Accepts `teams/db/db-a.yaml`; refuses absolute paths, empty, `.` or `..` components, hidden
/// names (they are skipped by the loader, so a document there would never be served),
/// backslashes and control characters, and anything not ending in `.yaml`/`.yml`.
pub fn check_path(path: &str) -> Result<(), PathError> {
    let fail = |reason| {
        Err(PathError {
            path: path.to_string(),
            reason,
        })
    };
    if path.is_empty() || path.len() > MAX_PATH {
        return fail("must be 1 to 512 bytes");
    }
    if path.starts_with('/') {
        return fail("must be relative");
    }
    if path.chars().any(|c| c.is_control() || c == '\\') {
        return fail("must not contain control characters or backslashes");
    }
    if path
        .split('/')
        .any(|part| part.is_empty() || part.starts_with('.'))
    {
        return fail("every component must be a plain name (no empty, hidden, `.` or `..` parts)");
    }
    if !(path.ends_with(".yaml") || path.ends_with(".yml")) {
        return fail("must end in .yaml or .yml");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_relative_yaml_paths_pass() {
        for ok in ["a.yaml", "teams/db/_defaults.yml", "x-1.y_2.yaml"] {
            assert_eq!(check_path(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn escapes_and_hidden_names_are_refused() {
        for bad in [
            "",
            "/etc/passwd.yaml",
            "../x.yaml",
            "a/../../x.yaml",
            "a//b.yaml",
            ".dynalert/audit.yaml",
            "..data/a.yaml",
            "a\\b.yaml",
            "a\nb.yaml",
            "a.txt",
            "a.yaml/",
        ] {
            assert!(check_path(bad).is_err(), "{bad:?} passed");
        }
    }
}
