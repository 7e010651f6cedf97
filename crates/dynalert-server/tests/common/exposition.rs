//! Reading the samples of a `/metrics` body (the Prometheus text format).

use std::collections::BTreeMap;

/// One sample of the text format: name, labels, value.
pub type Sample = (String, BTreeMap<String, String>, f64);

/// Parses the samples of a text-format body (label values in tests hold no `"` or `,`).
pub fn samples(body: &str) -> Vec<Sample> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let value = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v
                    .parse()
                    .unwrap_or_else(|_| panic!("bad value in {line:?}")),
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv
                        .split_once("=\"")
                        .unwrap_or_else(|| panic!("bad labels in {line:?}"));
                    (k.to_string(), v.trim_end_matches('"').to_string())
                })
                .collect();
            (name.to_string(), labels, value)
        })
        .collect()
}

/// The value of `user_threshold` for a tenant's key (no dimensions) at `severity`.
pub fn threshold(body: &str, tenant: &str, key: &str, severity: &str) -> Option<f64> {
    let (component, metric) = key.split_once('_').unwrap();
    samples(body).into_iter().find_map(|(name, labels, value)| {
        let wanted = [
            ("tenant", tenant),
            ("component", component),
            ("metric", metric),
            ("severity", severity),
        ];
        (name == "user_threshold"
            && labels.len() == wanted.len()
            && wanted
                .iter()
                .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v)))
        .then_some(value)
    })
}

/// The value of a series with exactly these labels.
pub fn series(body: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples(body).into_iter().find_map(|(n, l, value)| {
        (n == name
            && l.len() == labels.len()
            && labels
                .iter()
                .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v)))
        .then_some(value)
    })
}
