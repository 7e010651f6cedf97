//! PromQL: the vector selectors of an expression, found and restricted by a small lexer.

use super::*;

/// Keywords whose parentheses hold label names, not expressions.
pub(super) const LABEL_LIST_KEYWORDS: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
/// Other identifiers that are never metric names: operators, and the aggregation operators
/// (which may be followed by `by(…)` before their parentheses).
pub(super) const KEYWORDS: [&str; 19] = [
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];

/// The metric names of the vector selectors of `expr`.
pub(super) fn selector_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    rewrite_selectors(expr, |name| {
        names.push(name.to_owned());
        None
    });
    names
}

/// `expr` with `matchers` (e.g. `tenant="t1"`) added to every vector selector.
pub(super) fn restrict(expr: &str, matchers: &str) -> String {
    rewrite_selectors(expr, |_| Some(matchers.to_owned()))
}

/// Copies `expr`, calling `matchers` with the metric name of every vector selector and adding
/// the matchers it returns to that selector. A small lexer, enough for the packs' expressions:
/// strings, ranges and label lists (`by(…)`, `on(…)`, …) are copied as they are, an identifier
/// followed by `(` is a function, and any other identifier that is not a keyword is a metric.
pub(super) fn rewrite_selectors(
    expr: &str,
    mut matchers: impl FnMut(&str) -> Option<String>,
) -> String {
    let chars: Vec<char> = expr.chars().collect();
    let scan = |from: usize, keep: &dyn Fn(char) -> bool| {
        chars[from..]
            .iter()
            .position(|&c| !keep(c))
            .map_or(chars.len(), |p| from + p)
    };
    let mut out = String::with_capacity(expr.len() + 64);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if matches!(c, '"' | '\'' | '`') {
            let end = string_end(&chars, i);
            out.extend(&chars[i..end]);
            i = end;
        } else if c == '[' {
            let end = chars[i..]
                .iter()
                .position(|&c| c == ']')
                .map_or(chars.len(), |p| i + p + 1);
            out.extend(&chars[i..end]);
            i = end;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            // Numbers and durations (`5m`, `1e3`, `0x1f`).
            let end = scan(i, &|c| c.is_ascii_alphanumeric() || c == '.' || c == '_');
            out.extend(&chars[i..end]);
            i = end;
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let end = scan(i, &|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
            let word: String = chars[i..end].iter().collect();
            let lower = word.to_ascii_lowercase();
            let next = scan(end, &char::is_whitespace);
            out.push_str(&word);
            i = end;
            let keyword =
                LABEL_LIST_KEYWORDS.contains(&lower.as_str()) || KEYWORDS.contains(&lower.as_str());
            if chars.get(next) == Some(&'(') {
                if LABEL_LIST_KEYWORDS.contains(&lower.as_str()) {
                    let close = chars[next..]
                        .iter()
                        .position(|&c| c == ')')
                        .map_or(chars.len(), |p| next + p + 1);
                    out.extend(&chars[i..close]);
                    i = close;
                }
            } else if !keyword {
                let added = matchers(&word);
                if chars.get(next) == Some(&'{') {
                    let close = selector_end(&chars, next);
                    out.extend(&chars[i..=next]);
                    if let Some(added) = added {
                        out.push_str(&added);
                        if chars[next + 1..close - 1]
                            .iter()
                            .any(|c| !c.is_whitespace())
                        {
                            out.push_str(", ");
                        }
                    }
                    out.extend(&chars[next + 1..close]);
                    i = close;
                } else if let Some(added) = added {
                    let _ = write!(out, "{{{added}}}");
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The index after the string literal that starts at `start`.
pub(super) fn string_end(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut j = start + 1;
    while j < chars.len() {
        if chars[j] == '\\' && quote != '`' {
            j += 2;
            continue;
        }
        if chars[j] == quote {
            return j + 1;
        }
        j += 1;
    }
    chars.len()
}

/// The index after the `}` closing the label matchers that open at `open`.
pub(super) fn selector_end(chars: &[char], open: usize) -> usize {
    let mut j = open + 1;
    while j < chars.len() {
        match chars[j] {
            '"' | '\'' | '`' => j = string_end(chars, j),
            '}' => return j + 1,
            _ => j += 1,
        }
    }
    chars.len()
}

/// A PromQL string literal (double quotes).
pub(super) fn promql_string(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A regular expression matching exactly one of `values`, as a PromQL string.
pub(super) fn promql_alternatives(values: &[&str]) -> String {
    let escaped: Vec<String> = values
        .iter()
        .map(|value| {
            value
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                        c.to_string()
                    } else {
                        format!("\\{c}")
                    }
                })
                .collect()
        })
        .collect();
    promql_string(&escaped.join("|"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restricts_every_selector_and_nothing_else() {
        let t = "tenant=\"t1\"";
        assert_eq!(
            restrict("100 * (1 - avg by(tenant) (redis_up))", t),
            "100 * (1 - avg by(tenant) (redis_up{tenant=\"t1\"}))"
        );
        assert_eq!(
            restrict(
                "60 * sum by(tenant) (rate(mysql_x_total[5m])) or on (tenant) y offset 5m",
                t
            ),
            "60 * sum by(tenant) (rate(mysql_x_total{tenant=\"t1\"}[5m])) or on (tenant) \
             y{tenant=\"t1\"} offset 5m"
        );
        assert_eq!(
            restrict("max by(tenant) (m{conn_type=\"current\"}) > bool 1e-3", t),
            "max by(tenant) (m{tenant=\"t1\", conn_type=\"current\"}) > bool 1e-3"
        );
        assert_eq!(
            restrict(
                "max by(tenant, queue) (label_replace(redis_key_size, \"queue\", \"$1\", \"key\", \"(.*)\"))",
                t
            ),
            "max by(tenant, queue) (label_replace(redis_key_size{tenant=\"t1\"}, \"queue\", \"$1\", \
             \"key\", \"(.*)\"))"
        );
        assert_eq!(
            restrict("sum(a{}) by (tenant) + on(tenant) group_left(owner) b", t),
            "sum(a{tenant=\"t1\"}) by (tenant) + on(tenant) group_left(owner) b{tenant=\"t1\"}"
        );
        assert_eq!(
            selector_names(
                "sum by(tenant) (x == bool 0) + on(tenant) sum by(tenant) (y_z:w == bool 0)"
            ),
            ["x", "y_z:w"]
        );
    }
}
