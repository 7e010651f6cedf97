//! `show` and `/effective` (the resolved keys) and `/metrics` (the rendered rows) tell the same
//! story (issue 18 item 6): every key shown with a value is one served series, and every
//! served series is one key shown with its value and severity. Keys of one layer that would
//! share a series are refused; across layers the most specific wins and the other key is
//! shown as overridden, without a value.

use chrono::{TimeZone, Utc};
use dynalert_config::{KeyState, Model, load_documents};
use dynalert_exposition::render_once;
use dynalert_exposition::text::number;

fn model(docs: &[(&str, &str)]) -> std::sync::Arc<Model> {
    load_documents(docs.iter().map(|(p, c)| (p.to_string(), c.to_string())), [])
}

/// (value, severity) of every `user_threshold` line of `tenant`, sorted.
fn served(text: &str, tenant: &str) -> Vec<(String, String)> {
    let prefix = format!("user_threshold{{tenant=\"{tenant}\",");
    let mut out: Vec<(String, String)> = text
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .map(|l| {
            let severity = l.split("severity=\"").nth(1).unwrap().split('"').next();
            let value = l.rsplit(' ').next().unwrap();
            (value.to_string(), severity.unwrap().to_string())
        })
        .collect();
    out.sort();
    out
}

/// (value, severity) of every key the views show with a value, sorted.
fn shown(m: &Model, tenant: &str) -> Vec<(String, String)> {
    let at = Utc.with_ymd_and_hms(2026, 11, 18, 12, 0, 0).unwrap();
    let t = m.resolve_tenant_at(tenant, at).unwrap();
    let mut out: Vec<(String, String)> = t
        .keys
        .iter()
        .filter_map(|k| Some((number(k.value?), k.severity.to_string())))
        .collect();
    out.sort();
    out
}

fn assert_agree(m: &Model, tenants: &[&str]) {
    let at = Utc.with_ymd_and_hms(2026, 11, 18, 12, 0, 0).unwrap();
    let text = render_once(m, at);
    for tenant in tenants {
        assert_eq!(served(&text, tenant), shown(m, tenant), "{tenant}\n{text}");
    }
}

#[test]
fn overrides_across_layers_show_what_is_served() {
    let m = model(&[
        (
            "_a.yaml",
            "defaults:\n  app_conn: 80\n  app_conn_critical: 95\n  app_q: 1\nprofiles:\n  big: {app_conn_critical: 400}\n",
        ),
        (
            "_b.yaml",
            "defaults:\n  app_q: \"9:critical\"\n  app_q_critical: 7\n",
        ),
        (
            "t.yaml",
            "tenants:\n  t:\n    app_conn: \"70:critical\"\n  p:\n    _profile: big\n    app_conn: \"300:critical\"\n  d:\n    \"app_q{q='a'}\": 3\n    \"app_q_critical{q='a'}\": disable\n",
        ),
    ]);
    // _b.yaml holds both keys of one series in one block: refused, its last good copy (none)
    // is served, so app_q stays at 1 from _a.yaml.
    assert!(
        m.diagnostics
            .iter()
            .any(|d| d.file == "_b.yaml" && d.message.contains("same series")),
        "{:?}",
        m.diagnostics
    );
    assert_agree(&m, &["t", "p", "d"]);
    let at = Utc.with_ymd_and_hms(2026, 11, 18, 12, 0, 0).unwrap();
    let t = m.resolve_tenant_at("t", at).unwrap();
    let tier = t
        .keys
        .iter()
        .find(|k| k.key == "app_conn_critical")
        .unwrap();
    assert_eq!(tier.state, KeyState::Overridden);
}

#[test]
fn a_tenant_with_two_keys_for_one_series_is_not_served_at_all() {
    let m = model(&[
        ("_a.yaml", "defaults:\n  app_conn: 80\n"),
        (
            "t.yaml",
            "tenants:\n  t:\n    \"app_conn{q='a'}\": 1\n    \"app_conn{ q = \\\"a\\\" }\": 2\n  u:\n    app_conn: 5\n",
        ),
    ]);
    assert!(!m.tenants.contains_key("t"));
    let text = render_once(&m, Utc.with_ymd_and_hms(2026, 11, 18, 12, 0, 0).unwrap());
    assert!(!text.contains("tenant=\"t\""), "{text}");
}

#[test]
fn the_example_tree_agrees() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/conf.d");
    let m = load_documents(dynalert_store::read_tree(&root).unwrap(), []);
    let names: Vec<&str> = m.tenants.keys().map(String::as_str).collect();
    assert_agree(&m, &names);
}
