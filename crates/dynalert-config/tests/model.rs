//! Hierarchy, precedence, tiers, dimensions, expiry and the other tenant switches.

mod common;

use common::*;
use dynalert_config::KeyState;

const NOW: (i32, u32, u32) = (2026, 11, 18); // a Wednesday

fn now() -> chrono::DateTime<chrono::Utc> {
    utc(NOW.0, NOW.1, NOW.2, 12, 0, 0)
}

#[test]
fn tenant_beats_profile_beats_deepest_default() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "_defaults.yaml",
        "defaults:\n  mysql_connections: 80\n  mysql_slow_queries: 10\n  redis_memory_usage: 85\nprofiles:\n  big: {mysql_connections: 300, mysql_slow_queries: 20}\n",
    );
    write(
        root,
        "team/_defaults.yaml",
        "defaults:\n  redis_memory_usage: 90\n",
    );
    write(
        root,
        "team/deep/_defaults.yaml",
        "defaults:\n  redis_memory_usage: 95\n",
    );
    write(
        root,
        "team/deep/t.yaml",
        "tenants:\n  t:\n    _profile: big\n    mysql_connections: 50\n",
    );
    write(root, "team/u.yaml", "tenants:\n  u: {}\n");
    write(root, "v.yaml", "tenants:\n  v: {}\n");
    let l = loaded(root);
    assert!(
        l.model().diagnostics.is_empty(),
        "{:?}",
        l.model().diagnostics
    );
    let t = resolve(&l, "t", now());
    assert_eq!(row(&t, "mysql_connections@warning"), Some(50.0));
    assert_eq!(row(&t, "mysql_slow_queries@warning"), Some(20.0));
    assert_eq!(row(&t, "redis_memory_usage@warning"), Some(95.0));
    let states: Vec<_> = t.keys.iter().map(|k| (k.key, k.state)).collect();
    assert!(states.contains(&("mysql_connections", KeyState::Custom)));
    assert!(states.contains(&("mysql_slow_queries", KeyState::Profile)));
    assert!(states.contains(&("redis_memory_usage", KeyState::Default)));
    assert_eq!(
        row(&resolve(&l, "u", now()), "redis_memory_usage@warning"),
        Some(90.0)
    );
    assert_eq!(
        row(&resolve(&l, "v", now()), "redis_memory_usage@warning"),
        Some(85.0)
    );
    let origin = t
        .keys
        .iter()
        .find(|k| k.key == "redis_memory_usage")
        .unwrap()
        .origin
        .clone()
        .unwrap();
    assert_eq!((origin.file, origin.line), ("team/deep/_defaults.yaml", 2));
}

#[test]
fn platform_files_in_one_directory_merge_in_filename_order() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "_a.yaml", "defaults:\n  x_y: 1\n");
    write(dir.path(), "_b.yaml", "defaults:\n  x_y: 2\n");
    write(dir.path(), "t.yaml", "tenants:\n  t: {}\n");
    assert_eq!(
        row(&resolve(&loaded(dir.path()), "t", now()), "x_y@warning"),
        Some(2.0)
    );
}

#[test]
fn three_states_and_state_filter_values() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "_d.yaml",
        "defaults:\n  a_b: 1\n  c_d: 2\n  e_f: 3\n",
    );
    write(
        dir.path(),
        "t.yaml",
        "tenants:\n  t:\n    a_b: \"7\"\n    c_d: Disable\n",
    );
    let t = resolve(&loaded(dir.path()), "t", now());
    assert_eq!(
        rows(&t),
        vec![("a_b@warning".into(), 7.0), ("e_f@warning".into(), 3.0)]
    );
    assert_eq!(t.key_states, vec![("a_b", 1), ("c_d", -1), ("e_f", 0)]);
}

#[test]
fn critical_tier_rows_and_disable_inheritance() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "_d.yaml",
        "defaults:\n  mysql_connections: 80\n  mysql_connections_critical: 95\n  redis_memory: 85\n  redis_memory_critical: 95\n",
    );
    write(
        dir.path(),
        "t.yaml",
        "tenants:\n  off:\n    mysql_connections: disable\n  keep:\n    mysql_connections: disable\n    mysql_connections_critical: 99\n  sev:\n    redis_memory: \"70:critical\"\n",
    );
    let l = loaded(dir.path());
    assert!(
        l.model().diagnostics.is_empty(),
        "{:?}",
        l.model().diagnostics
    );
    let off = resolve(&l, "off", now());
    assert_eq!(
        row(&off, "mysql_connections@critical"),
        None,
        "disabling the key drops the inherited tier"
    );
    assert_eq!(row(&off, "mysql_connections@warning"), None);
    let keep = resolve(&l, "keep", now());
    assert_eq!(row(&keep, "mysql_connections@critical"), Some(99.0));
    // "70:critical" from the tenant wins over the default critical tier for the same series.
    let sev = resolve(&l, "sev", now());
    assert_eq!(row(&sev, "redis_memory@critical"), Some(70.0));
    assert_eq!(row(&sev, "redis_memory@warning"), None);
}

#[test]
fn tier_cannot_carry_another_severity() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "_d.yaml", "defaults:\n  a_b: 1\n");
    write(
        dir.path(),
        "t.yaml",
        "tenants:\n  t:\n    a_b_critical: \"5:warning\"\n",
    );
    let m = loaded(dir.path()).model();
    assert!(
        m.diagnostics[0].message.contains("critical tier"),
        "{:?}",
        m.diagnostics
    );
}

#[test]
fn dimensions_match_per_label_and_disable_shadows_with_inf() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "_d.yaml",
        "defaults:\n  redis_queue_length: 100\n",
    );
    write(
        dir.path(),
        "t.yaml",
        "tenants:\n  t:\n    \"redis_queue_length{queue='email'}\": 1000\n    \"redis_queue_length{queue=~'batch-.*'}\": \"5000:critical\"\n    \"redis_queue_length{queue='noise'}\": disable\n",
    );
    let t = resolve(&loaded(dir.path()), "t", now());
    assert_eq!(
        row(&t, "redis_queue_length@warning{queue=email}"),
        Some(1000.0)
    );
    assert_eq!(
        row(&t, "redis_queue_length@critical{queue_re=batch-.*}"),
        Some(5000.0)
    );
    assert_eq!(
        row(&t, "redis_queue_length@warning{queue=noise}"),
        Some(f64::INFINITY)
    );
    assert_eq!(row(&t, "redis_queue_length@warning"), Some(100.0));

    // The regex row is served, with a warning: no shipped pack reads `queue_re`.
    let m = loaded(dir.path()).model();
    let warnings: Vec<String> = m.diagnostics.iter().map(|d| d.to_string()).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let warning = &m.diagnostics[0];
    assert!(!warning.is_error(), "{warning}");
    assert_eq!((warning.file.as_str(), warning.line), ("t.yaml", 4));
    assert_eq!(
        warning.key.as_deref(),
        Some("redis_queue_length{queue=~'batch-.*'}")
    );
    assert!(
        warning.message.contains("queue_re=\"batch-.*\"")
            && warning.message.contains("exact values only"),
        "{warning}"
    );
}

#[test]
fn dimensions_need_a_known_base_key_and_are_tenant_only() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "_d.yaml",
        "defaults:\n  a_b: 1\n  \"a_b{x='1'}\": 2\n",
    );
    write(
        dir.path(),
        "t.yaml",
        "tenants:\n  t:\n    \"zz_q{x='1'}\": 5\n",
    );
    let m = loaded(dir.path()).model();
    let text: Vec<String> = m.diagnostics.iter().map(|d| d.to_string()).collect();
    assert!(
        text.iter()
            .any(|d| d.contains("_d.yaml:3:3") && d.contains("tenant-only")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|d| d.contains("t.yaml:3:5") && d.contains("unknown base key")),
        "{text:?}"
    );
}

#[test]
fn expired_values_fall_back_and_raise_events() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "_d.yaml",
        "defaults:\n  mysql_replication_lag: 30\n",
    );
    write(
        dir.path(),
        "t.yaml",
        "tenants:\n  t:\n    mysql_replication_lag: {value: 600, expires: '2026-11-18T12:00:00Z', reason: migration}\n    _state_maintenance: {state: enable, expires: '2026-11-18T12:00:00Z'}\n    _silent_mode: {mode: all, expires: '2026-11-18T12:00:00Z'}\n",
    );
    let l = loaded(dir.path());
    let before = resolve(&l, "t", utc(2026, 11, 18, 11, 59, 59));
    assert_eq!(row(&before, "mysql_replication_lag@warning"), Some(600.0));
    assert_eq!(before.state_filters.len(), 1);
    assert_eq!(before.silent.len(), 2);
    assert!(before.events.is_empty());
    assert_eq!(before.valid_until, Some(utc(2026, 11, 18, 12, 0, 0)));
    let after = resolve(&l, "t", utc(2026, 11, 18, 12, 0, 0));
    assert_eq!(row(&after, "mysql_replication_lag@warning"), Some(30.0));
    assert_eq!(after.keys[0].state, KeyState::Expired);
    assert!(after.state_filters.is_empty());
    assert!(after.silent.is_empty());
    let events: Vec<_> = after
        .events
        .iter()
        .map(|e| (e.key.as_ref(), e.event))
        .collect();
    assert_eq!(
        events,
        vec![
            ("mysql_replication_lag", "threshold_expired"),
            ("_state_maintenance", "maintenance_expired"),
            ("_silent_mode", "silence_expired")
        ]
    );
}

#[test]
fn schedules_resolve_in_their_timezone() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "_d.yaml",
        "defaults:\n  mysql_threads_running: 40\n",
    );
    write(
        dir.path(),
        "t.yaml",
        "tenants:\n  t:\n    mysql_threads_running:\n      default: 50\n      timezone: Asia/Taipei\n      overrides:\n        - {window: '22:00-02:00', value: 200}\n",
    );
    let l = loaded(dir.path());
    // 22:00 Taipei = 14:00 UTC.
    assert_eq!(
        row(
            &resolve(&l, "t", utc(2026, 11, 18, 13, 59, 59)),
            "mysql_threads_running@warning"
        ),
        Some(50.0)
    );
    assert_eq!(
        row(
            &resolve(&l, "t", utc(2026, 11, 18, 14, 0, 0)),
            "mysql_threads_running@warning"
        ),
        Some(200.0)
    );
    assert_eq!(
        row(
            &resolve(&l, "t", utc(2026, 11, 18, 17, 59, 0)),
            "mysql_threads_running@warning"
        ),
        Some(200.0)
    );
    assert_eq!(
        row(
            &resolve(&l, "t", utc(2026, 11, 18, 18, 0, 0)),
            "mysql_threads_running@warning"
        ),
        Some(50.0)
    );
    let t = resolve(&l, "t", utc(2026, 11, 18, 14, 0, 30));
    assert_eq!(t.valid_until, Some(utc(2026, 11, 18, 14, 1, 0)));
    assert_eq!(t.keys[0].state, KeyState::Scheduled);
}

#[test]
fn state_filters_silent_dedup_metadata() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "_d.yaml",
        "defaults:\n  a_b: 1\nstate_filters:\n  container_crashloop: {reasons: [CrashLoopBackOff], severity: critical}\n",
    );
    write(
        dir.path(),
        "t.yaml",
        "tenants:\n  t:\n    _state_maintenance: enable\n    _state_container_crashloop: disable\n    _silent_mode: warning\n    _severity_dedup: disable\n    _metadata: {owner: team-a, slack: '#a'}\n  u: {}\n",
    );
    let l = loaded(dir.path());
    let t = resolve(&l, "t", now());
    assert_eq!(
        t.state_filters,
        vec![("maintenance", dynalert_config::Severity::Info)]
    );
    assert_eq!(t.silent, vec![dynalert_config::Severity::Warning]);
    assert!(!t.dedup);
    assert_eq!(t.metadata[0], ("owner", "team-a"));
    assert_eq!(t.metadata[3], ("slack", "#a"));
    let u = resolve(&l, "u", now());
    assert_eq!(
        u.state_filters,
        vec![("container_crashloop", dynalert_config::Severity::Critical)]
    );
    assert!(u.dedup);
    assert_eq!(
        u.metadata,
        vec![("owner", ""), ("runbook_url", ""), ("tier", "")]
    );
}

#[test]
fn unknown_keys_profiles_and_filters_suggest() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "_d.yaml",
        "defaults:\n  mysql_connections: 1\nprofiles:\n  high-traffic: {mysql_connections: 2}\n",
    );
    write(
        dir.path(),
        "t.yaml",
        "tenants:\n  t:\n    mysql_conections: 5\n    _profile: high-trafic\n    _state_maintenence: enable\n",
    );
    let m = loaded(dir.path()).model();
    let text: Vec<String> = m.diagnostics.iter().map(|d| d.to_string()).collect();
    assert!(
        text[0].contains("did you mean \"mysql_connections\""),
        "{text:?}"
    );
    assert!(
        text[1].contains("did you mean \"high-traffic\""),
        "{text:?}"
    );
    assert!(text[2].contains("did you mean \"maintenance\""), "{text:?}");
}

#[test]
fn canonical_hash_ignores_formatting_but_not_values() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "_d.yaml", "defaults:\n  a_b: 1\n");
    write(dir.path(), "t.yaml", "tenants:\n  t:\n    a_b: 5\n");
    let mut l = loaded(dir.path());
    let h1 = l.model().hash().to_string();
    write(
        dir.path(),
        "t.yaml",
        "# a comment\ntenants:\n  t: {a_b: \"5\"}\n",
    );
    l.reload().unwrap();
    assert_eq!(l.model().hash(), h1);
    write(dir.path(), "t.yaml", "tenants:\n  t: {a_b: 6}\n");
    l.reload().unwrap();
    assert_ne!(l.model().hash(), h1);
}

/// Replicas built by different toolchains must export the same hash for the same tree: the
/// hash is pinned to canonical bytes (see `digest.rs`), not to `std::hash` output.
#[test]
fn canonical_hash_is_pinned() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "_d.yaml",
        "defaults:\n  a_b: 1\n  a_b_critical: 2\nprofiles:\n  big: {a_b: 10}\n",
    );
    write(
        dir.path(),
        "t.yaml",
        "tenants:\n  t:\n    _profile: big\n    a_b: {default: 5, timezone: Asia/Taipei, overrides: [{window: '09:00-12:30', days: [mon], value: 60}]}\n    _metadata: {owner: x}\n  u: {a_b: disable}\n",
    );
    let l = loaded(dir.path());
    assert!(
        l.model().diagnostics.is_empty(),
        "{:?}",
        l.model().diagnostics
    );
    assert_eq!(
        l.model().hash(),
        "12a7fd79db35b88d27ebe6a943bdae9ffc4cda63d818d56d0b94bf50f696278d"
    );
}
