//! Names that end up in label values, file paths and URLs, and how keys map to labels.

/// Tenant names: safe as a label value, a file name and a URL segment.
/// `^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$`
pub fn is_valid_tenant(name: &str) -> bool {
    let b = name.as_bytes();
    let edge = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let inner = |c: u8| edge(c) || matches!(c, b'.' | b'_' | b'-');
    match b.len() {
        0 => false,
        1 => edge(b[0]),
        n if n <= 63 => edge(b[0]) && edge(b[n - 1]) && b[1..n - 1].iter().all(|&c| inner(c)),
        _ => false,
    }
}

/// Threshold keys: `^[a-z][a-z0-9_]*$`.
pub fn is_valid_key(key: &str) -> bool {
    let b = key.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
}

/// Prometheus label names: `^[a-zA-Z_][a-zA-Z0-9_]*$`, and not reserved (`__` prefix).
pub fn is_valid_label_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_')
        && !name.starts_with("__")
}

/// Splits a key at its first `_` into (component, metric):
/// `mysql_connections` → (`mysql`, `connections`). A key without `_` has an empty metric.
pub fn split_key(key: &str) -> (&str, &str) {
    key.split_once('_').unwrap_or((key, ""))
}

/// The closest candidate by edit distance, if it is close enough to be a plausible typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, c)| *d <= 2.max(word.len().min(c.len()) / 4))
        .min()
        .map(|(_, c)| c)
}

/// Formats a suggestion suffix for a message: ` (did you mean "x"?)` or nothing.
pub fn suggestion<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    did_you_mean(word, candidates)
        .map(|c| format!(" (did you mean {c:?}?)"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_names() {
        for ok in ["a", "db-a", "db.a_1", "0", &"a".repeat(63)] {
            assert!(is_valid_tenant(ok), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "DB",
            "a b",
            "a/b",
            "..",
            &"a".repeat(64),
            "é",
        ] {
            assert!(!is_valid_tenant(bad), "{bad}");
        }
    }

    #[test]
    fn keys_and_split() {
        assert!(is_valid_key("mysql_connections"));
        assert!(!is_valid_key("Mysql"));
        assert!(!is_valid_key("1abc"));
        assert!(!is_valid_key("a-b"));
        assert_eq!(split_key("mysql_connections"), ("mysql", "connections"));
        assert_eq!(
            split_key("container_cpu_throttle"),
            ("container", "cpu_throttle")
        );
        assert_eq!(split_key("uptime"), ("uptime", ""));
    }

    #[test]
    fn suggests_close_keys_only() {
        let keys = ["mysql_connections", "redis_memory_usage"];
        assert_eq!(
            did_you_mean("mysql_conections", keys),
            Some("mysql_connections")
        );
        assert_eq!(did_you_mean("kafka_lag", keys), None);
    }
}
