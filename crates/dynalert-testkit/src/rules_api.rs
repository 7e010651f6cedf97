//! Checks on a ruler's Prometheus-compatible `/api/v1/rules`, which Prometheus and vmalert
//! both serve: whether every loaded rule evaluates without error.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::Value;

use crate::http::Http;

/// Polls `<base_url>/api/v1/rules` until every group has been evaluated twice (a group is
/// seen evaluated, then its `lastEvaluation` changes), then checks that every rule has health
/// `"ok"` and an empty `lastError`, and returns how many rules there are. Fails with the
/// offending rule or, after `timeout`, with the groups as last seen.
pub fn wait_for_healthy_rules(http: &Http, base_url: &str, timeout: Duration) -> Result<usize> {
    let url = format!("{base_url}/api/v1/rules");
    let deadline = Instant::now() + timeout;
    let mut first_seen: Option<Vec<Value>> = None;
    loop {
        let body = http.get(&url, &[])?.json()?;
        let groups = body["data"]["groups"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let evaluations: Vec<Value> = groups.iter().map(|g| g["lastEvaluation"].clone()).collect();
        let all_evaluated = !groups.is_empty()
            && evaluations
                .iter()
                .all(|t| t.as_str().is_some_and(|t| !t.starts_with("0001")));
        match &first_seen {
            None if all_evaluated => first_seen = Some(evaluations),
            Some(seen) if seen.iter().zip(&evaluations).all(|(a, b)| a != b) => {
                return count_healthy(&groups, &url);
            }
            _ => {}
        }
        if Instant::now() >= deadline {
            bail!("{url}: the rule groups were not evaluated twice within {timeout:?}: {groups:?}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn count_healthy(groups: &[Value], url: &str) -> Result<usize> {
    let mut rules = 0;
    for group in groups {
        for rule in group["rules"].as_array().into_iter().flatten() {
            rules += 1;
            let error = rule["lastError"].as_str().unwrap_or("");
            if rule["health"] != "ok" || !error.is_empty() {
                bail!(
                    "{url}: group {}: rule {}: health {}, lastError {error:?}",
                    group["name"],
                    rule["name"],
                    rule["health"]
                );
            }
        }
    }
    Ok(rules)
}

/// The `prometheus_rule_evaluation_failures_total` counters (one per rule group) on a
/// Prometheus's own `/metrics`, as `(labels, value)`.
pub fn rule_evaluation_failures(http: &Http, prometheus_url: &str) -> Result<Vec<(String, f64)>> {
    let body = http.get(&format!("{prometheus_url}/metrics"), &[])?.body;
    body.lines()
        .filter_map(|l| l.strip_prefix("prometheus_rule_evaluation_failures_total"))
        .map(|rest| {
            let (labels, value) = rest.rsplit_once(' ').unwrap_or((rest, ""));
            match value.parse() {
                Ok(value) => Ok((labels.to_string(), value)),
                Err(_) => bail!("unparsable counter line: {rest}"),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unhealthy_rule_is_reported_by_name() {
        let groups = serde_json::json!([{
            "name": "g",
            "rules": [
                {"name": "A", "health": "ok", "lastError": ""},
                {"name": "B", "health": "err", "lastError": "many-to-many matching not allowed"},
            ],
        }]);
        let error = count_healthy(groups.as_array().unwrap(), "u").unwrap_err();
        assert!(error.to_string().contains("rule \"B\""), "{error}");
        assert!(error.to_string().contains("many-to-many"), "{error}");
        let ok = serde_json::json!([{"name": "g", "rules": [{"name": "A", "health": "ok"}]}]);
        assert_eq!(count_healthy(ok.as_array().unwrap(), "u").unwrap(), 1);
    }
}
