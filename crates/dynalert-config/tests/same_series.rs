//! Two keys of one layer that would serve the same `user_threshold` series (issue 18 item 6):
//! only one row could be exported, so the second key is an error naming the first, and the
//! document is refused like any other document with an error. Keys of different layers may
//! still serve one series: the most specific wins, and the views say which key lost.

mod common;

use common::*;
use dynalert_config::validate::check_change;
use dynalert_config::{Diagnostic, FileStatus, KeyState, Model, load_documents};

fn now() -> chrono::DateTime<chrono::Utc> {
    utc(2026, 11, 18, 12, 0, 0)
}

const DEFAULTS: &str =
    "defaults:\n  redis_queue_length: 500\n  app_conn: 80\n  app_conn_critical: 95\n";

/// One tenant `t` whose two keys collide, the first one at line 3, the second at line 4.
struct Case {
    what: &'static str,
    first: &'static str,
    second: &'static str,
    series: &'static str,
}

const CASES: &[Case] = &[
    Case {
        what: "quotes",
        first: "\"redis_queue_length{queue='a'}\": 1",
        second: "'redis_queue_length{queue=\"a\"}': 2",
        series: r#"user_threshold{component="redis",metric="queue_length",severity="warning",queue="a"}"#,
    },
    Case {
        what: "spaces",
        first: "\"redis_queue_length{queue='a'}\": 1",
        second: "\"redis_queue_length{ queue = 'a' }\": 2",
        series: r#"user_threshold{component="redis",metric="queue_length",severity="warning",queue="a"}"#,
    },
    Case {
        what: "label order",
        first: "\"redis_queue_length{queue='x', db='0'}\": 1",
        second: "\"redis_queue_length{db='0', queue='x'}\": 2",
        series: r#"user_threshold{component="redis",metric="queue_length",severity="warning",db="0",queue="x"}"#,
    },
    Case {
        what: "regex and _re label",
        first: "\"redis_queue_length{queue=~'x'}\": 1",
        second: "\"redis_queue_length{queue_re='x'}\": 2",
        series: r#"user_threshold{component="redis",metric="queue_length",severity="warning",queue_re="x"}"#,
    },
    Case {
        what: "dimensional tier and critical value",
        first: "\"redis_queue_length_critical{queue='x'}\": 7",
        second: "\"redis_queue_length{queue='x'}\": \"8:critical\"",
        series: r#"user_threshold{component="redis",metric="queue_length",severity="critical",queue="x"}"#,
    },
    Case {
        what: "tier and critical value",
        first: "app_conn_critical: 7",
        second: "app_conn: \"8:critical\"",
        series: r#"user_threshold{component="app",metric="conn",severity="critical"}"#,
    },
    Case {
        what: "a schedule window with the tier's severity",
        first: "app_conn_critical: 7",
        second: "app_conn: {default: 5, overrides: [{window: \"01:00-02:00\", value: \"9:critical\"}]}",
        series: r#"user_threshold{component="app",metric="conn",severity="critical"}"#,
    },
    Case {
        what: "a disabled tier next to a critical value",
        first: "app_conn_critical: disable",
        second: "app_conn: \"8:critical\"",
        series: r#"user_threshold{component="app",metric="conn",severity="critical"}"#,
    },
];

fn tenant_doc(case: &Case) -> String {
    format!("tenants:\n  t:\n    {}\n    {}\n", case.first, case.second)
}

fn key_of(entry: &str) -> String {
    let (key, _) = entry.split_once(": ").unwrap();
    key.trim_matches(['"', '\'']).to_string()
}

fn errors(m: &Model) -> Vec<&Diagnostic> {
    m.diagnostics.iter().filter(|d| d.is_error()).collect()
}

#[test]
fn lint_reports_the_second_key_naming_the_first() {
    for case in CASES {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "_d.yaml", DEFAULTS);
        write(dir.path(), "t.yaml", &tenant_doc(case));
        let m = load_dir(dir.path()).unwrap();
        let found = errors(&m);
        assert_eq!(found.len(), 1, "{}: {:?}", case.what, m.diagnostics);
        let second = key_of(case.second);
        let expected = format!(
            "t.yaml:4:5: error: tenant \"t\", key {second:?}: serves the same series as key {:?} (line 3, column 5): {}; keep only one of the two",
            key_of(case.first),
            case.series
        );
        assert_eq!(found[0].to_string(), expected, "{}", case.what);
        assert_eq!(found[0].key.as_deref(), Some(second.as_str()));
        // Refused as a whole, like any document with an error.
        assert_eq!(m.files["t.yaml"], FileStatus::NotServed, "{}", case.what);
        assert!(m.tenants.is_empty());
    }
}

#[test]
fn three_spellings_of_one_key_give_two_errors() {
    let m = load_documents(
        [
            ("_d.yaml".to_string(), DEFAULTS.to_string()),
            (
                "t.yaml".to_string(),
                "tenants:\n  t:\n    \"redis_queue_length{queue='a'}\": 1\n    'redis_queue_length{queue=\"a\"}': 2\n    \"redis_queue_length{ queue = 'a' }\": 3\n".to_string(),
            ),
        ],
        [],
    );
    let lines: Vec<(u32, String)> = errors(&m)
        .iter()
        .map(|d| (d.line, d.message.clone()))
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    // Both name the first spelling.
    assert!(
        lines.iter().all(|(_, m)| m.contains("(line 3, column 5)")),
        "{lines:?}"
    );
    assert_eq!((lines[0].0, lines[1].0), (4, 5));
}

#[test]
fn the_document_set_keeps_the_last_good_version() {
    for case in CASES {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "_d.yaml", DEFAULTS);
        write(
            dir.path(),
            "t.yaml",
            &format!("tenants:\n  t:\n    {}\n", case.first),
        );
        let mut l = loaded(dir.path());
        let before = rows(&resolve(&l, "t", now()));
        write(dir.path(), "t.yaml", &tenant_doc(case));
        l.reload().unwrap();
        let m = l.model();
        assert_eq!(
            m.files["t.yaml"],
            FileStatus::ServingLastGood,
            "{}",
            case.what
        );
        assert_eq!(errors(&m).len(), 1, "{}: {:?}", case.what, m.diagnostics);
        assert_eq!(rows(&resolve(&l, "t", now())), before, "{}", case.what);
    }
}

#[test]
fn an_api_write_with_such_keys_is_refused() {
    for case in CASES {
        let m = load_documents([("_d.yaml".to_string(), DEFAULTS.to_string())], []);
        let found = check_change(&m, "t.yaml", Some(&tenant_doc(case)));
        let errors: Vec<&Diagnostic> = found.iter().filter(|d| d.is_error()).collect();
        assert_eq!(errors.len(), 1, "{}: {found:?}", case.what);
        assert_eq!((errors[0].line, errors[0].col), (4, 5), "{}", case.what);
        assert!(errors[0].message.contains(case.series), "{}", case.what);
    }
}

#[test]
fn one_platform_block_may_not_hold_both_either() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "_d.yaml",
        "defaults:\n  app_conn: \"8:critical\"\n  app_conn_critical: 7\nprofiles:\n  big:\n    app_conn_critical: 70\n    app_conn: \"80:critical\"\n",
    );
    write(dir.path(), "t.yaml", "tenants:\n  t: {}\n");
    let m = load_dir(dir.path()).unwrap();
    let text: Vec<String> = errors(&m).iter().map(|d| d.to_string()).collect();
    let series = r#"user_threshold{component="app",metric="conn",severity="critical"}"#;
    assert_eq!(
        text,
        vec![
            format!(
                "_d.yaml:3:3: error: defaults: key \"app_conn_critical\" serves the same series as key \"app_conn\" (line 2, column 3): {series}; keep only one of the two"
            ),
            format!(
                "_d.yaml:7:5: error: profile \"big\": key \"app_conn\" serves the same series as key \"app_conn_critical\" (line 6, column 5): {series}; keep only one of the two"
            ),
        ]
    );
    assert_eq!(m.files["_d.yaml"], FileStatus::NotServed);
    // Through the API too.
    let m = load_documents(
        [(
            "_d.yaml".to_string(),
            "defaults:\n  app_conn: 1\n".to_string(),
        )],
        [],
    );
    let found = check_change(
        &m,
        "_d.yaml",
        Some("defaults:\n  app_conn: \"8:critical\"\n  app_conn_critical: 7\n"),
    );
    assert!(
        found.iter().any(|d| d.is_error() && d.line == 3),
        "{found:?}"
    );
}

#[test]
fn different_series_stay_allowed() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "_d.yaml", DEFAULTS);
    write(
        dir.path(),
        "t.yaml",
        "tenants:\n  t:\n    app_conn: disable\n    app_conn_critical: 250\n    \"redis_queue_length{queue='a'}\": 1\n    \"redis_queue_length{queue='b'}\": 1\n    \"redis_queue_length{queue=~'a'}\": 1\n    \"redis_queue_length_critical{queue='a'}\": 1\n",
    );
    let m = load_dir(dir.path()).unwrap();
    assert!(
        m.diagnostics.iter().all(|d| !d.is_error()),
        "{:?}",
        m.diagnostics
    );
    assert_eq!(m.files["t.yaml"], FileStatus::Ok);
}

/// What the views show with a value is exactly what is served: one row per key with a value,
/// and every row from one key.
fn assert_views_agree(m: &Model, tenant: &str) {
    let t = m.resolve_tenant_at(tenant, now()).unwrap();
    let shown = t.keys.iter().filter(|k| k.value.is_some()).count();
    assert_eq!(shown, t.rows.len(), "{tenant}: {:#?}", t.keys);
}

#[test]
fn a_deeper_layer_overrides_and_the_view_says_so() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "_d.yaml",
        "defaults:\n  app_conn: 80\n  app_conn_critical: 95\nprofiles:\n  big: {app_conn_critical: 400}\n",
    );
    write(
        dir.path(),
        "t.yaml",
        "tenants:\n  t:\n    app_conn: \"70:critical\"\n  p:\n    _profile: big\n    app_conn: \"300:critical\"\n",
    );
    let l = loaded(dir.path());
    let m = l.model();
    assert!(m.diagnostics.is_empty(), "{:?}", m.diagnostics);
    for (tenant, value) in [("t", 70.0), ("p", 300.0)] {
        let r = resolve(&l, tenant, now());
        assert_eq!(rows(&r), vec![("app_conn@critical".to_string(), value)]);
        let tier = r
            .keys
            .iter()
            .find(|k| k.key == "app_conn_critical")
            .unwrap();
        assert_eq!((tier.state, tier.value), (KeyState::Overridden, None));
        assert_views_agree(&m, tenant);
    }
}

#[test]
fn among_platform_files_the_deeper_or_later_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "_a.yaml",
        "defaults:\n  app_conn: \"8:critical\"\n",
    );
    write(dir.path(), "_b.yaml", "defaults:\n  app_conn_critical: 7\n");
    write(dir.path(), "t.yaml", "tenants:\n  t: {}\n");
    write(
        dir.path(),
        "team/_c.yaml",
        "defaults:\n  app_conn: \"6:critical\"\n",
    );
    write(dir.path(), "team/u.yaml", "tenants:\n  u: {}\n");
    let l = loaded(dir.path());
    let m = l.model();
    assert!(m.diagnostics.is_empty(), "{:?}", m.diagnostics);
    let t = resolve(&l, "t", now());
    assert_eq!(rows(&t), vec![("app_conn@critical".to_string(), 7.0)]);
    let shown: Vec<_> = t.keys.iter().map(|k| (k.key, k.state, k.value)).collect();
    assert_eq!(
        shown,
        vec![
            ("app_conn", KeyState::Overridden, None),
            ("app_conn_critical", KeyState::Default, Some(7.0)),
        ]
    );
    let u = resolve(&l, "u", now());
    assert_eq!(rows(&u), vec![("app_conn@critical".to_string(), 6.0)]);
    for tenant in ["t", "u"] {
        assert_views_agree(&m, tenant);
    }
}
