//! Reloading only the paths a file watcher reported gives the same model as a full reload.

mod common;

use common::*;

fn now() -> chrono::DateTime<chrono::Utc> {
    utc(2026, 11, 18, 12, 0, 0)
}

#[test]
fn edited_added_and_removed_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "_d.yaml", "defaults:\n  a_b: 1\n");
    write(root, "t.yaml", "tenants:\n  t: {a_b: 5}\n");
    write(root, "sub/u.yaml", "tenants:\n  u: {}\n");
    let mut l = loaded(root);

    let t = write_at(root, "t.yaml", "tenants:\n  t: {a_b: 6}\n");
    let v = write_at(root, "sub/v.yaml", "tenants:\n  v: {a_b: 7}\n");
    std::fs::remove_file(root.join("sub/u.yaml")).unwrap();
    let stats = l
        .reload_paths(&[t, v, root.join("sub/u.yaml"), root.join("t.yaml.swp")])
        .unwrap();
    assert_eq!((stats.parsed, stats.removed, stats.changed), (2, 1, true));
    assert_eq!(row(&resolve(&l, "t", now()), "a_b@warning"), Some(6.0));
    assert_eq!(row(&resolve(&l, "v", now()), "a_b@warning"), Some(7.0));
    assert!(!l.model().tenants.contains_key("u"));
    let full = load_dir(root).unwrap();
    assert_eq!(l.model().hash(), full.hash());
}

#[test]
fn hidden_entries_and_directories_fall_back_to_a_full_scan() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "_d.yaml", "defaults:\n  a_b: 1\n");
    let mut l = loaded(root);
    write(root, "new/deep/t.yaml", "tenants:\n  t: {}\n");
    // The watcher may report only the new directory.
    l.reload_paths(&[root.join("new")]).unwrap();
    assert!(l.model().tenants.contains_key("t"));
    write(root, "u.yaml", "tenants:\n  u: {}\n");
    l.reload_paths(&[root.join("..data")]).unwrap();
    assert!(l.model().tenants.contains_key("u"));
    std::fs::remove_dir_all(root.join("new")).unwrap();
    l.reload_paths(&[root.join("new")]).unwrap();
    assert!(!l.model().tenants.contains_key("t"));
}

#[test]
fn other_files_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "_d.yaml", "defaults:\n  a_b: 1\n");
    let mut l = loaded(root);
    std::fs::write(root.join("README.md"), "notes").unwrap();
    let stats = l.reload_paths(&[root.join("README.md")]).unwrap();
    assert!(!stats.changed);
}

fn write_at(root: &std::path::Path, rel: &str, text: &str) -> std::path::PathBuf {
    write(root, rel, text);
    root.join(rel)
}
