//! A bad file never replaces a good one; unreadable roots fail fast.

mod common;

use common::*;
use dynalert_config::FileStatus;

fn now() -> chrono::DateTime<chrono::Utc> {
    utc(2026, 11, 18, 12, 0, 0)
}

#[test]
fn broken_tenant_file_keeps_its_last_good_content() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "_d.yaml", "defaults:\n  a_b: 1\n");
    write(dir.path(), "t.yaml", "tenants:\n  t:\n    a_b: 5\n");
    let mut l = loaded(dir.path());
    write(dir.path(), "t.yaml", "tenants:\n  t:\n    a_b: [oops\n");
    l.reload().unwrap();
    let m = l.model();
    assert_eq!(m.files["t.yaml"], FileStatus::ServingLastGood);
    assert_eq!(m.error_count(), 1);
    assert_eq!(row(&resolve(&l, "t", now()), "a_b@warning"), Some(5.0));
    // A semantic error (unknown key) falls back as a whole too.
    write(
        dir.path(),
        "t.yaml",
        "tenants:\n  t:\n    a_b: 7\n    a_c: 1\n",
    );
    l.reload().unwrap();
    assert_eq!(row(&resolve(&l, "t", now()), "a_b@warning"), Some(5.0));
    write(dir.path(), "t.yaml", "tenants:\n  t:\n    a_b: 8\n");
    l.reload().unwrap();
    assert_eq!(l.model().files["t.yaml"], FileStatus::Ok);
    assert_eq!(row(&resolve(&l, "t", now()), "a_b@warning"), Some(8.0));
    assert!(l.model().diagnostics.is_empty());
}

#[test]
fn broken_defaults_never_drop_every_tenants_defaults() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "_defaults.yaml",
        "defaults:\n  a_b: 1\n  c_d: 2\n",
    );
    write(dir.path(), "t.yaml", "tenants:\n  t: {}\n");
    let mut l = loaded(dir.path());
    write(
        dir.path(),
        "_defaults.yaml",
        "defaults:\n  a_b: one\n  c_d: 3\n",
    );
    l.reload().unwrap();
    let t = resolve(&l, "t", now());
    assert_eq!(
        rows(&t),
        vec![("a_b@warning".into(), 1.0), ("c_d@warning".into(), 2.0)]
    );
    assert_eq!(
        l.model().files["_defaults.yaml"],
        FileStatus::ServingLastGood
    );
}

#[test]
fn a_file_never_good_serves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "_d.yaml", "defaults:\n  a_b: 1\n");
    write(dir.path(), "bad.yaml", "tenants:\n  b:\n    a_b: x\n");
    let l = loaded(dir.path());
    assert_eq!(l.model().files["bad.yaml"], FileStatus::NotServed);
    assert!(l.model().tenants.is_empty());
}

#[test]
fn duplicate_tenant_keeps_the_copy_served_before() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "_d.yaml", "defaults:\n  a_b: 1\n");
    write(dir.path(), "one.yaml", "tenants:\n  t: {a_b: 5}\n");
    let mut l = loaded(dir.path());
    write(dir.path(), "two.yaml", "tenants:\n  t: {a_b: 9}\n");
    l.reload().unwrap();
    let m = l.model();
    let text: Vec<String> = m.diagnostics.iter().map(|d| d.to_string()).collect();
    assert!(
        text[0].starts_with("one.yaml:2:3: error") && text[0].contains("two.yaml"),
        "{text:?}"
    );
    assert!(
        text[1].starts_with("two.yaml:2:3: error") && text[1].contains("one.yaml"),
        "{text:?}"
    );
    assert_eq!(row(&resolve(&l, "t", now()), "a_b@warning"), Some(5.0));
    assert_eq!(m.files["two.yaml"], FileStatus::NotServed);
}

#[test]
fn every_copy_of_a_duplicated_tenant_is_still_checked() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "_d.yaml", "defaults:\n  a_b: 1\n");
    write(dir.path(), "one.yaml", "tenants:\n  t: {a_bb: 5}\n");
    write(dir.path(), "two.yaml", "tenants:\n  t: {a_b: 9, c_d: 1}\n");
    let l = loaded(dir.path());
    let text: Vec<String> = l
        .model()
        .diagnostics
        .iter()
        .map(|d| d.to_string())
        .collect();
    let typo = |file: &str, key: &str| {
        text.iter()
            .any(|d| d.starts_with(&format!("{file}:2:")) && d.contains(&format!("{key:?}")))
    };
    assert!(typo("one.yaml", "a_bb"), "{text:?}");
    assert!(typo("two.yaml", "c_d"), "{text:?}");
}

#[test]
fn forbidden_block_in_tenant_file_is_reported_and_the_rest_loads() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "_d.yaml", "defaults:\n  a_b: 1\n");
    write(
        dir.path(),
        "t.yaml",
        "defaults:\n  a_b: 100\ntenants:\n  t: {a_b: 5}\n",
    );
    let l = loaded(dir.path());
    let m = l.model();
    assert_eq!(
        m.diagnostics[0].to_string(),
        "t.yaml:1:1: error: block \"defaults\" is only allowed in platform files (names starting with \"_\"); it was ignored"
    );
    assert_eq!(row(&resolve(&l, "t", now()), "a_b@warning"), Some(5.0));
}

#[test]
fn removing_and_renaming_files() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "_d.yaml", "defaults:\n  a_b: 1\n");
    write(dir.path(), "t.yaml", "tenants:\n  t: {}\n");
    let mut l = loaded(dir.path());
    std::fs::rename(dir.path().join("t.yaml"), dir.path().join("t2.yaml")).unwrap();
    assert!(l.reload().unwrap().changed);
    assert_eq!(l.model().tenants["t"].doc.file, "t2.yaml");
    std::fs::remove_file(dir.path().join("t2.yaml")).unwrap();
    l.reload().unwrap();
    assert!(l.model().tenants.is_empty());
}

#[test]
fn only_changed_files_are_parsed_again() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "_d.yaml", "defaults:\n  a_b: 1\n");
    for i in 0..20 {
        write(
            dir.path(),
            &format!("t{i}.yaml"),
            &format!("tenants:\n  t{i}: {{}}\n"),
        );
    }
    let mut l = loaded(dir.path());
    assert_eq!(l.reload().unwrap().parsed, 0);
    write(dir.path(), "t3.yaml", "tenants:\n  t3: {a_b: 2}\n");
    let stats = l.reload().unwrap();
    assert_eq!((stats.parsed, stats.changed), (1, true));
}

#[test]
fn hidden_entries_are_skipped_and_symlinks_followed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "..2026_01_01/_d.yaml", "defaults:\n  a_b: 1\n");
    write(root, "..2026_01_01/t.yaml", "tenants:\n  t: {}\n");
    std::os::unix::fs::symlink("..2026_01_01", root.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/_d.yaml", root.join("_d.yaml")).unwrap();
    std::os::unix::fs::symlink("..data/t.yaml", root.join("t.yaml")).unwrap();
    let mut l = loaded(root);
    assert_eq!(l.model().files.len(), 2);
    write(root, "..2026_01_02/_d.yaml", "defaults:\n  a_b: 2\n");
    write(root, "..2026_01_02/t.yaml", "tenants:\n  t: {}\n");
    std::os::unix::fs::symlink("..2026_01_02", root.join("..data_tmp")).unwrap();
    std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    l.reload().unwrap();
    assert_eq!(row(&resolve(&l, "t", now()), "a_b@warning"), Some(2.0));
}

#[test]
fn unreadable_root_fails_fast() {
    let err = Loader::new("/nonexistent/conf.d").reload().unwrap_err();
    assert!(err.to_string().contains("/nonexistent/conf.d"), "{err}");
}

#[test]
fn same_length_rewrite_within_one_timestamp_tick_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "_d.yaml", "defaults:\n  a_b: 1\n");
    write(dir.path(), "t.yaml", "tenants:\n  t: {a_b: 5}\n");
    let mut l = loaded(dir.path());
    let path = dir.path().join("t.yaml");
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::fs::write(&path, "tenants:\n  t: {a_b: 6}\n").unwrap();
    // Same inode, same length, same mtime: only the content differs.
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    l.reload().unwrap();
    assert_eq!(row(&resolve(&l, "t", now()), "a_b@warning"), Some(6.0));
}

// Issue 18 item 7: one broken platform file never changes what other files serve.

const DEFAULTS: &str = "defaults:\n  app_conn: 80\n  app_conn_critical: 95\n  app_mem: 85\n";
const PROFILES: &str = "profiles:\n  high-traffic: {app_conn: 300, app_conn_critical: 400}\n";

fn platform_tree() -> (tempfile::TempDir, Loader) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "_defaults.yaml", DEFAULTS);
    write(dir.path(), "_profiles.yaml", PROFILES);
    write(
        dir.path(),
        "db-a.yaml",
        "tenants:\n  db-a:\n    _profile: high-traffic\n",
    );
    write(
        dir.path(),
        "db-b.yaml",
        "tenants:\n  db-b:\n    app_conn: 50\n",
    );
    let l = loaded(dir.path());
    assert!(
        l.model().diagnostics.is_empty(),
        "{:?}",
        l.model().diagnostics
    );
    (dir, l)
}

fn error_files(l: &Loader) -> Vec<String> {
    let m = l.model();
    let mut files: Vec<String> = m
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.file.clone())
        .collect();
    files.dedup();
    files
}

#[test]
fn a_broken_platform_file_gives_no_other_file_an_error_and_blocks_no_edit() {
    let (dir, mut l) = platform_tree();
    write(
        dir.path(),
        "_defaults.yaml",
        "defaults:\n  app_conn: [oops\n",
    );
    l.reload().unwrap();
    assert_eq!(error_files(&l), vec!["_defaults.yaml"]);
    // Valid edits elsewhere are served while _defaults.yaml is still broken.
    write(
        dir.path(),
        "db-b.yaml",
        "tenants:\n  db-b:\n    app_conn: 60\n",
    );
    write(
        dir.path(),
        "_profiles.yaml",
        "profiles:\n  high-traffic: {app_conn: 300, app_conn_critical: 450}\n",
    );
    l.reload().unwrap();
    assert_eq!(error_files(&l), vec!["_defaults.yaml"]);
    let m = l.model();
    assert_eq!(m.files["_defaults.yaml"], FileStatus::ServingLastGood);
    assert_eq!(m.files["_profiles.yaml"], FileStatus::Ok);
    assert_eq!(m.files["db-b.yaml"], FileStatus::Ok);
    assert_eq!(
        row(&resolve(&l, "db-b", now()), "app_conn@warning"),
        Some(60.0)
    );
    assert_eq!(
        row(&resolve(&l, "db-a", now()), "app_conn@critical"),
        Some(450.0)
    );
    // The broken file's last good defaults still apply.
    assert_eq!(
        row(&resolve(&l, "db-b", now()), "app_mem@warning"),
        Some(85.0)
    );
}

#[test]
fn an_invalid_platform_edit_falls_back_while_a_valid_one_is_served() {
    let (dir, mut l) = platform_tree();
    write(
        dir.path(),
        "_profiles.yaml",
        "profiles:\n  high-traffic: {app_conn: 300, app_conn_critical: 400, app_cpu: 1}\n",
    );
    write(
        dir.path(),
        "_defaults.yaml",
        "defaults:\n  app_conn: 80\n  app_conn_critical: 95\n  app_mem: 90\n",
    );
    l.reload().unwrap();
    assert_eq!(error_files(&l), vec!["_profiles.yaml"]);
    let m = l.model();
    assert_eq!(m.files["_profiles.yaml"], FileStatus::ServingLastGood);
    assert_eq!(m.files["_defaults.yaml"], FileStatus::Ok);
    assert_eq!(
        row(&resolve(&l, "db-b", now()), "app_mem@warning"),
        Some(90.0)
    );
}

#[test]
fn a_tenant_broken_by_a_platform_change_keeps_the_values_it_had() {
    let (dir, mut l) = platform_tree();
    let before = rows(&resolve(&l, "db-a", now()));
    assert!(before.contains(&("app_conn@critical".to_string(), 400.0)));
    // The profile goes away, and the defaults change: a valid platform change.
    write(dir.path(), "_profiles.yaml", "profiles: {}\n");
    write(
        dir.path(),
        "_defaults.yaml",
        "defaults:\n  app_conn: 70\n  app_conn_critical: 95\n  app_mem: 85\n",
    );
    l.reload().unwrap();
    let m = l.model();
    // db-a still serves 400 and 300, not the defaults' 95 and 70.
    assert_eq!(rows(&resolve(&l, "db-a", now())), before);
    assert_eq!(m.files["db-a.yaml"], FileStatus::ServingLastGood);
    assert_eq!(m.files["_profiles.yaml"], FileStatus::Ok);
    assert_eq!(m.files["_defaults.yaml"], FileStatus::Ok);
    // The valid platform change is served to everyone else.
    assert_eq!(
        row(&resolve(&l, "db-b", now()), "app_conn@warning"),
        Some(50.0)
    );
    assert_eq!(
        row(&resolve(&l, "db-b", now()), "app_conn@critical"),
        Some(95.0)
    );
    let text: Vec<String> = m.diagnostics.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        text,
        vec![
            "db-a.yaml:2:3: error: tenant \"db-a\": keeps the values it had before the changes to _defaults.yaml, _profiles.yaml: against the platform as it is now it has the errors reported for this file; fix them or the platform".to_string(),
            "db-a.yaml:3:15: error: tenant \"db-a\", key \"_profile\": unknown profile \"high-traffic\"".to_string(),
        ]
    );
    // Later reloads keep the hold, and still name the change.
    write(
        dir.path(),
        "db-b.yaml",
        "tenants:\n  db-b:\n    app_conn: 55\n",
    );
    l.reload().unwrap();
    assert_eq!(rows(&resolve(&l, "db-a", now())), before);
    assert!(l.model().diagnostics[0].message.contains("_profiles.yaml"));
    // Fixing the tenant serves it against the new platform.
    write(
        dir.path(),
        "db-a.yaml",
        "tenants:\n  db-a:\n    app_conn: 310\n",
    );
    l.reload().unwrap();
    let m = l.model();
    assert!(m.diagnostics.is_empty(), "{:?}", m.diagnostics);
    assert_eq!(
        rows(&resolve(&l, "db-a", now())),
        vec![
            ("app_conn@critical".to_string(), 95.0),
            ("app_conn@warning".to_string(), 310.0),
            ("app_mem@warning".to_string(), 85.0),
        ]
    );
}

#[test]
fn restoring_the_platform_releases_the_hold() {
    let (dir, mut l) = platform_tree();
    write(dir.path(), "_profiles.yaml", "profiles: {}\n");
    l.reload().unwrap();
    assert_eq!(l.model().files["db-a.yaml"], FileStatus::ServingLastGood);
    write(
        dir.path(),
        "_profiles.yaml",
        "profiles:\n  high-traffic: {app_conn: 300, app_conn_critical: 420}\n",
    );
    l.reload().unwrap();
    let m = l.model();
    assert!(m.diagnostics.is_empty(), "{:?}", m.diagnostics);
    assert_eq!(m.files["db-a.yaml"], FileStatus::Ok);
    assert_eq!(
        row(&resolve(&l, "db-a", now()), "app_conn@critical"),
        Some(420.0)
    );
}

#[test]
fn a_tenant_in_a_platform_file_is_held_too() {
    let (dir, mut l) = platform_tree();
    write(
        dir.path(),
        "_canary.yaml",
        "tenants:\n  canary:\n    _profile: high-traffic\n",
    );
    l.reload().unwrap();
    let before = rows(&resolve(&l, "canary", now()));
    write(dir.path(), "_profiles.yaml", "profiles: {}\n");
    l.reload().unwrap();
    assert_eq!(rows(&resolve(&l, "canary", now())), before);
    assert!(
        l.model()
            .diagnostics
            .iter()
            .any(|d| d.file == "_canary.yaml" && d.message.contains("_profiles.yaml")),
        "{:?}",
        l.model().diagnostics
    );
}

#[test]
fn a_platform_change_lists_the_tenants_whose_values_it_changed() {
    let (dir, mut l) = platform_tree();
    write(
        dir.path(),
        "db-c.yaml",
        "tenants:\n  db-c:\n    app_mem: 10\n",
    );
    l.reload().unwrap();
    assert!(l.model().platform_changes.is_empty());
    // db-c sets app_mem itself: the new default changes nothing for it.
    write(
        dir.path(),
        "_defaults.yaml",
        "defaults:\n  app_conn: 80\n  app_conn_critical: 95\n  app_mem: 90\n",
    );
    l.reload().unwrap();
    assert_eq!(
        l.model().platform_changes,
        [(
            "_defaults.yaml".to_string(),
            vec!["db-a".to_string(), "db-b".to_string()]
        )]
        .into()
    );
    // A profile change reaches only the tenants using that profile.
    write(
        dir.path(),
        "_profiles.yaml",
        "profiles:\n  high-traffic: {app_conn: 300, app_conn_critical: 410}\n  quiet: {app_conn: 5}\n",
    );
    l.reload().unwrap();
    assert_eq!(
        l.model().platform_changes,
        [("_profiles.yaml".to_string(), vec!["db-a".to_string()])].into()
    );
    // A tenant edit is not a platform change.
    write(
        dir.path(),
        "db-b.yaml",
        "tenants:\n  db-b:\n    app_conn: 51\n",
    );
    l.reload().unwrap();
    assert!(l.model().platform_changes.is_empty());
}
