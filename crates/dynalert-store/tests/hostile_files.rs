//! What a conf.d tree may hold besides YAML files, and what the walk makes of it: a FIFO, a
//! symlink to `/dev/zero` or out of the tree, an oversized file, a name that is not UTF-8. Each
//! is reported by name (never read, never quoted) and the rest of the tree is read. The
//! directory store reads through the same guard.
#![cfg(unix)]

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::Path;

use dynalert_store::{Refusal, Store, StoreError, StoreSpec, TreeDelta, TreeReader, list_files};

const SECRET: &str = "SECRET-MARKER-7f3a";

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo").arg(path).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo {}", path.display());
}

/// path → content, or `Err(message)`, of what a read handed over.
fn contents(delta: &TreeDelta) -> BTreeMap<String, Result<String, String>> {
    delta
        .reads
        .iter()
        .map(|r| {
            let content = r.content.clone().map_err(|e| e.message);
            (r.path.clone(), content)
        })
        .collect()
}

fn error_of(delta: &TreeDelta, path: &str) -> String {
    match contents(delta).remove(path) {
        Some(Err(message)) => message,
        other => panic!("{path}: expected an error, got {other:?}"),
    }
}

/// A tree whose `conf.d` holds the Kubernetes ConfigMap layout, and a secret beside it.
fn configmap_tree() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("conf.d");
    write(&root, "..2026_01_01/_defaults.yaml", "defaults: {}\n");
    write(&root, "..2026_01_01/a.yaml", "tenants:\n  a: {}\n");
    symlink("..2026_01_01", root.join("..data")).unwrap();
    symlink("..data/_defaults.yaml", root.join("_defaults.yaml")).unwrap();
    symlink("..data/a.yaml", root.join("a.yaml")).unwrap();
    write(dir.path(), "outside/secret.yaml", &format!("{SECRET}: 1\n"));
    (dir, root)
}

#[test]
fn symlinks_are_followed_only_inside_the_tree() {
    let (dir, root) = configmap_tree();
    symlink(
        dir.path().join("outside/secret.yaml"),
        root.join("leak.yaml"),
    )
    .unwrap();
    symlink("../outside", root.join("team")).unwrap();
    symlink("/dev/zero", root.join("zero.yaml")).unwrap();
    write(&root, "..real/b.yaml", "tenants:\n  b: {}\n");
    symlink("..real", root.join("alias")).unwrap();

    let delta = TreeReader::new(&root).read_all().unwrap();
    let found = contents(&delta);
    assert_eq!(
        found["a.yaml"],
        Ok("tenants:\n  a: {}\n".into()),
        "ConfigMap"
    );
    assert_eq!(found["alias/b.yaml"], Ok("tenants:\n  b: {}\n".into()));
    for refused in ["leak.yaml", "zero.yaml"] {
        assert!(
            error_of(&delta, refused).contains("outside the config directory"),
            "{refused}: {found:?}"
        );
    }
    assert!(error_of(&delta, "team/").contains("outside the config directory"));
    assert!(!found.contains_key("team/secret.yaml"));
    assert!(!format!("{delta:?}").contains(SECRET), "{delta:?}");

    let listing = list_files(&root).unwrap();
    assert!(listing.files.contains_key("a.yaml"));
    assert!(matches!(listing.refused["leak.yaml"], Refusal::OutsideTree));
    assert!(matches!(listing.refused["team/"], Refusal::OutsideTree));
}

#[test]
fn a_fifo_is_reported_without_blocking_and_the_rest_is_read() {
    let (_dir, root) = configmap_tree();
    mkfifo(&root.join("x.yaml"));
    symlink("x.yaml", root.join("via-link.yaml")).unwrap();
    // Nobody ever writes to the FIFO: a blocking open would hang here.
    let mut reader = TreeReader::new(&root);
    let delta = reader.read_all().unwrap();
    assert!(error_of(&delta, "x.yaml").contains("not a regular file (a FIFO)"));
    assert!(error_of(&delta, "via-link.yaml").contains("a FIFO"));
    assert!(contents(&delta)["a.yaml"].is_ok());

    // A watcher event naming the FIFO falls back to the walk, which reports it again.
    let delta = reader.read_paths(&[root.join("x.yaml")]).unwrap();
    assert!(error_of(&delta, "x.yaml").contains("a FIFO"));
    assert!(delta.removed.is_empty());
}

#[test]
fn a_file_over_the_limit_is_refused_and_one_at_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "at.yaml", &"#".repeat(64));
    write(root, "over.yaml", &"#".repeat(65));
    let mut reader = TreeReader::new(root).with_max_file_size(64);
    let delta = reader.read_all().unwrap();
    assert_eq!(contents(&delta)["at.yaml"], Ok("#".repeat(64)));
    assert_eq!(
        error_of(&delta, "over.yaml"),
        "file is 65 bytes, over the 64-byte limit (--max-file-size); not read"
    );

    // Made small again, it is read on the next scan (a refused file is always looked at).
    write(root, "over.yaml", "tenants: {}\n");
    let delta = reader.read_all().unwrap();
    assert_eq!(contents(&delta)["over.yaml"], Ok("tenants: {}\n".into()));
}

#[test]
fn a_good_file_replaced_by_a_fifo_is_reported_not_removed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "a.yaml", "tenants:\n  a: {}\n");
    let mut reader = TreeReader::new(root);
    assert!(contents(&reader.read_all().unwrap())["a.yaml"].is_ok());
    std::fs::remove_file(root.join("a.yaml")).unwrap();
    mkfifo(&root.join("a.yaml"));
    for delta in [
        reader.read_paths(&[root.join("a.yaml")]).unwrap(),
        reader.read_all().unwrap(),
    ] {
        assert!(error_of(&delta, "a.yaml").contains("a FIFO"));
        assert!(delta.removed.is_empty(), "{:?}", delta.removed);
    }
}

#[test]
fn a_directory_that_turns_unusable_keeps_what_was_read_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("conf.d");
    write(&root, "..v1/c.yaml", "tenants:\n  c: {}\n");
    write(&root, "a.yaml", "tenants:\n  a: {}\n");
    symlink("..v1", root.join("team")).unwrap();
    let mut reader = TreeReader::new(&root);
    assert!(contents(&reader.read_all().unwrap())["team/c.yaml"].is_ok());

    // Re-pointed out of the tree: reported as the directory, and team/c.yaml is not removed
    // (the document set keeps serving it).
    write(dir.path(), "elsewhere/c.yaml", &format!("{SECRET}: 1\n"));
    std::fs::remove_file(root.join("team")).unwrap();
    symlink(dir.path().join("elsewhere"), root.join("team")).unwrap();
    let delta = reader.read_all().unwrap();
    assert_eq!(
        error_of(&delta, "team/"),
        "symlink to a directory outside the config directory; not followed; the files read from it before stay served"
    );
    assert!(delta.removed.is_empty(), "{:?}", delta.removed);
    assert!(!format!("{delta:?}").contains(SECRET));

    // Back inside: the directory's entry goes, its file is there again.
    std::fs::remove_file(root.join("team")).unwrap();
    symlink("..v1", root.join("team")).unwrap();
    let delta = reader.read_all().unwrap();
    assert_eq!(delta.removed, ["team/"]);
}

#[test]
fn a_name_that_is_not_utf8_is_reported_lossily() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "a.yaml", "tenants:\n  a: {}\n");
    let name = std::ffi::OsStr::from_bytes(b"b\xff.yaml");
    std::fs::write(root.join(name), "tenants:\n  b: {}\n").unwrap();
    let delta = TreeReader::new(root).read_all().unwrap();
    assert_eq!(
        error_of(&delta, "b\u{FFFD}.yaml"),
        "name is not valid UTF-8; not read (rename it)"
    );
    assert!(contents(&delta)["a.yaml"].is_ok());
}

#[tokio::test]
async fn the_directory_store_reads_through_the_same_guard() {
    let (dir, root) = configmap_tree();
    mkfifo(&root.join("x.yaml"));
    symlink(
        dir.path().join("outside/secret.yaml"),
        root.join("leak.yaml"),
    )
    .unwrap();
    std::fs::write(root.join("bad.yaml"), b"tenants:\n\xff\n").unwrap();
    // Opening lists (and reconciles) every document: the FIFO must not hang it, and one bad
    // file must not fail it.
    let store = Store::open(&StoreSpec::Dir(root.clone())).await.unwrap();
    let listed: Vec<String> = store
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.path)
        .collect();
    assert_eq!(listed, ["_defaults.yaml", "a.yaml"]);
    for path in ["x.yaml", "leak.yaml"] {
        let refused = store.get(path).await.unwrap_err();
        assert!(matches!(refused, StoreError::Corrupt(_)), "{refused:?}");
        assert!(refused.to_string().contains(path), "{refused}");
        assert!(!refused.to_string().contains(SECRET));
    }
    assert!(store.get("a.yaml").await.unwrap().is_some());

    // --import and `store import` read trees the same way: a refused file is an error naming it.
    let error = dynalert_store::read_tree(&root).unwrap_err();
    assert!(error.to_string().contains("leak.yaml"), "{error}");
}
