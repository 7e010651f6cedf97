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
