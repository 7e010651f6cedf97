//! `dynalert store export DIR` / `dynalert store import DIR` between any two backends, and
//! `serve --import`: the repository's example tree (subdirectories, platform files at two
//! levels) goes through SQLite, PostgreSQL and a directory store and comes back
//! byte-identical, resolving to the same `/metrics` text; a tree with lint errors is refused
//! and changes nothing; `--prune` removes what the tree no longer has; imports are
//! idempotent.
//!
//! PostgreSQL is a real server ([`Postgres::start`]); without it installed the PostgreSQL
//! legs are skipped with a message (a failure under `CI`), and the chain uses a second SQLite
//! file in its place.

mod common;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, Utc};
use common::{Launch, Served};
use dynalert_testkit::Postgres;

/// The repository's example tree.
fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/conf.d")
}

/// Documents in the example tree.
const EXAMPLE_FILES: usize = 9;

/// Instants the trees are rendered at: a weekday afternoon, and a Saturday night inside
/// db-a's scheduled windows.
const INSTANTS: [&str; 2] = ["2026-03-11T14:30:00Z", "2026-03-14T00:30:00Z"];

#[test]
fn export_import_chain_through_every_backend_is_lossless() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let pg = postgres();
    let sqlite = spec("sqlite:", &t.join("chain.db"));
    let second = match &pg {
        Some(pg) => pg.create_database("chain").unwrap(),
        None => {
            eprintln!("SKIPPED: the PostgreSQL leg; a second SQLite file stands in for it");
            spec("sqlite:", &t.join("instead-of-postgres.db"))
        }
    };
    let dir_store = t.join("C");
    std::fs::create_dir(&dir_store).unwrap();
    let dir = spec("dir:", &dir_store);
    let (a, b, d) = (t.join("A"), t.join("B"), t.join("D"));

    let started = Instant::now();
    import_twice(t, &examples(), &sqlite);
    assert_eq!(export(t, &a, &sqlite), EXAMPLE_FILES);
    import_twice(t, &a, &second);
    assert_eq!(export(t, &b, &second), EXAMPLE_FILES);
    import_twice(t, &b, &dir);
    assert_eq!(export(t, &d, &dir), EXAMPLE_FILES);
    eprintln!("import → export chain took {:.2?}", started.elapsed());

    let original = files(&examples());
    assert_eq!(original.len(), EXAMPLE_FILES);
    assert!(
        original.keys().any(|p| p.matches('/').count() >= 2),
        "the example tree has nested directories: {:?}",
        original.keys()
    );
    for (name, tree) in [("A (SQLite)", &a), ("B (PostgreSQL)", &b), ("D (dir)", &d)] {
        assert_same_files(&original, &files(tree), name);
    }
    // The directory store holds the very files, next to its hidden audit log.
    let mut stored = files(&dir_store);
    stored.retain(|path, _| !path.starts_with(".dynalert/"));
    assert_same_files(&original, &stored, "C (the dir store itself)");

    let want = rendered(&examples());
    for tree in [&a, &b, &d, &dir_store] {
        assert_eq!(
            rendered(tree),
            want,
            "{} resolves differently from examples/conf.d",
            tree.display()
        );
    }
}

#[test]
fn import_of_a_tree_with_lint_errors_is_refused_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let pg = postgres();
    let broken = t.join("broken");
    copy_tree(&examples(), &broken);
    let db_a = broken.join("db-a.yaml");
    let text = std::fs::read_to_string(&db_a).unwrap();
    let line = 1 + text
        .lines()
        .position(|l| l.trim() == "mysql_connections: 350")
        .expect("db-a sets mysql_connections: 350");
    std::fs::write(
        &db_a,
        text.replace("mysql_connections: 350", "mysql_connections: seventy"),
    )
    .unwrap();
    // A new file too, which must not slip in either.
    common::write(&broken, "new.yaml", "tenants:\n  new-tenant: {}\n");

    for (name, store) in backends(t, pg.as_ref(), "refused") {
        import(t, &examples(), &store, &[]);
        let before = snapshot(t, &store, &format!("{name}-before"));

        let out = dynalert(t, &args(["store", "import"], &broken, &store, &[]));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: a broken tree was imported");
        let at = format!("{}:{line}:", db_a.display());
        assert!(
            stderr.contains(&at),
            "{name}: the refusal names {at}: {stderr}"
        );
        assert!(stderr.contains("nothing imported"), "{name}: {stderr}");
        assert_eq!(
            snapshot(t, &store, &format!("{name}-after")),
            before,
            "{name}: a refused import changed the store"
        );
        // Nothing was written: the original tree is still all there.
        assert_eq!(import(t, &examples(), &store, &[]), (0, EXAMPLE_FILES, 0));

        // --force stores it anyway (the loader serves the rest and reports the file).
        assert_eq!(import(t, &broken, &store, &["--force"]), (2, 8, 0));
        assert_same_files(
            &files(&broken),
            &snapshot(t, &store, &format!("{name}-forced")),
            name,
        );
    }
}

#[test]
fn prune_removes_only_documents_missing_from_the_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let pg = postgres();
    let smaller = t.join("smaller");
    copy_tree(&examples(), &smaller);
    for gone in ["cache-x.yaml", "team-payments/eu/payments-eu.yaml"] {
        std::fs::remove_file(smaller.join(gone)).unwrap();
    }
    let kept = EXAMPLE_FILES - 2;

    for (name, store) in backends(t, pg.as_ref(), "prune") {
        import(t, &examples(), &store, &[]);
        assert_eq!(
            import(t, &smaller, &store, &[]),
            (0, kept, 0),
            "{name}: without --prune"
        );
        assert_same_files(
            &files(&examples()),
            &snapshot(t, &store, &format!("{name}-kept")),
            name,
        );
        assert_eq!(
            import(t, &smaller, &store, &["--prune"]),
            (0, kept, 2),
            "{name}: with --prune"
        );
        assert_same_files(
            &files(&smaller),
            &snapshot(t, &store, &format!("{name}-pruned")),
            name,
        );
        assert_eq!(
            import(t, &smaller, &store, &["--prune"]),
            (0, kept, 0),
            "{name}: a second --prune"
        );
    }
}

/// `serve` with no store argument keeps its documents in `dynalert.db` in the working
/// directory, seeds it from `--import` on the first start, and serves what `serve` on the
/// directory serves.
#[test]
fn serve_without_a_store_seeds_dynalert_db_and_serves_what_the_directory_serves() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let from_dir = Served::start(&examples(), t);
    let workdir = t.join("work");
    std::fs::create_dir(&workdir).unwrap();
    let db = workdir.join("dynalert.db");
    let serve_args = [OsString::from("--import"), examples().into_os_string()];
    let from_db = Launch::args(serve_args, &t.join("sqlite.log"))
        .current_dir(&workdir)
        .start();
    assert!(db.is_file(), "the default store is {}", db.display());

    // Both render at "now": fetch again if a scheduled window turned between the two.
    let mut attempts = 0;
    let (dir_lines, db_lines) = loop {
        attempts += 1;
        let dir_lines = served_lines(&from_dir.metrics());
        let db_lines = served_lines(&from_db.metrics());
        if dir_lines == db_lines || attempts == 3 {
            break (dir_lines, db_lines);
        }
    };
    let thresholds = |lines: &[String]| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l.starts_with("user_threshold{"))
            .cloned()
            .collect()
    };
    assert!(
        thresholds(&dir_lines).len() > 50,
        "the example tree serves thresholds: {dir_lines:#?}"
    );
    assert_eq!(
        thresholds(&db_lines),
        thresholds(&dir_lines),
        "user_threshold lines"
    );
    assert_eq!(db_lines, dir_lines, "every non-self-metrics line");
    // And the import really went into the database.
    assert_eq!(
        export_files(t, &spec("sqlite:", &db), "served"),
        files(&examples())
    );

    // A later start does not import again over what the database holds: seeded on the
    // first start only, even when --import names another tree.
    drop(from_db);
    let other = t.join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("lone.yaml"), "tenants:\n  lone: {}\n").unwrap();
    let again = [OsString::from("--import"), other.into_os_string()];
    let restarted = Launch::args(again, &t.join("sqlite-again.log"))
        .current_dir(&workdir)
        .start();
    assert_eq!(
        thresholds(&served_lines(&restarted.metrics())),
        thresholds(&dir_lines),
        "after a restart"
    );
    assert_eq!(
        export_files(t, &spec("sqlite:", &db), "served-again"),
        files(&examples())
    );
}

/// The `/metrics` lines that are not the server's own `dynalert_*` / `process_*` series.
fn served_lines(body: &str) -> Vec<String> {
    body.lines()
        .filter(|l| {
            let name = l
                .strip_prefix("# HELP ")
                .or_else(|| l.strip_prefix("# TYPE "))
                .unwrap_or(l);
            !(name.starts_with("dynalert_") || name.starts_with("process_"))
        })
        .map(str::to_owned)
        .collect()
}

/// A PostgreSQL server, or `None` (with a `SKIPPED` message) when it is not installed.
fn postgres() -> Option<Postgres> {
    let pg = Postgres::start().unwrap();
    if pg.is_none() {
        eprintln!("SKIPPED: PostgreSQL is not installed; its legs of this test do not run");
    }
    pg
}

/// (name, --store) of a fresh SQLite file, a fresh directory store and, when there is one, a
/// fresh PostgreSQL database.
fn backends(t: &Path, pg: Option<&Postgres>, label: &str) -> Vec<(&'static str, String)> {
    let dir = t.join(format!("{label}-dir-store"));
    std::fs::create_dir(&dir).unwrap();
    let mut all = vec![
        ("sqlite", spec("sqlite:", &t.join(format!("{label}.db")))),
        ("dir", spec("dir:", &dir)),
    ];
    if let Some(pg) = pg {
        all.push(("postgres", pg.create_database(label).unwrap()));
    }
    all
}

fn spec(prefix: &str, path: &Path) -> String {
    format!("{prefix}{}", path.display())
}

/// `dynalert ARGS` in `cwd` (so a default `dynalert.db` could never land in the repository),
/// with no store from the environment.
fn dynalert(cwd: &Path, args: &[OsString]) -> std::process::Output {
    assert_cmd::Command::cargo_bin("dynalert")
        .unwrap()
        .current_dir(cwd)
        .env_remove("DYNALERT_STORE")
        .args(args)
        .output()
        .unwrap()
}

fn args<const N: usize>(
    command: [&str; N],
    dir: &Path,
    store: &str,
    extra: &[&str],
) -> Vec<OsString> {
    let mut all: Vec<OsString> = command.iter().map(OsString::from).collect();
    all.push(dir.into());
    all.extend(["--store".into(), store.into()]);
    all.extend(extra.iter().map(OsString::from));
    all
}

/// Imports `dir` into `store`; returns (written, unchanged, removed) as it reports them.
fn import(cwd: &Path, dir: &Path, store: &str, extra: &[&str]) -> (usize, usize, usize) {
    let out = dynalert(cwd, &args(["store", "import"], dir, store, extra));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "import {} into {store}: {stderr}",
        dir.display()
    );
    let summary = stderr
        .lines()
        .find(|l| l.starts_with("imported "))
        .unwrap_or_else(|| panic!("no summary: {stderr}"));
    let counts: Vec<usize> = summary
        .rsplit_once(": ")
        .unwrap()
        .1
        .split(", ")
        .map(|part| part.split(' ').next().unwrap().parse().unwrap())
        .collect();
    (counts[0], counts[1], counts[2])
}

/// Imports a whole tree into an empty store, then again: the second writes nothing.
fn import_twice(cwd: &Path, dir: &Path, store: &str) {
    assert_eq!(
        import(cwd, dir, store, &[]),
        (EXAMPLE_FILES, 0, 0),
        "first import into {store}"
    );
    assert_eq!(
        import(cwd, dir, store, &[]),
        (0, EXAMPLE_FILES, 0),
        "the same import into {store} again"
    );
}

/// Exports `store` to `dir`; returns how many documents it reports.
fn export(cwd: &Path, dir: &Path, store: &str) -> usize {
    let out = dynalert(cwd, &args(["store", "export"], dir, store, &[]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "export {store}: {stderr}");
    let count = stderr
        .lines()
        .find_map(|l| l.strip_prefix("exported "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok());
    count.unwrap_or_else(|| panic!("no summary: {stderr}"))
}

/// Every file of a fresh export of `store`.
fn export_files(cwd: &Path, store: &str, label: &str) -> BTreeMap<String, Vec<u8>> {
    let dir = cwd.join(format!("export-{label}"));
    export(cwd, &dir, store);
    files(&dir)
}

/// What the store holds, as exported files.
fn snapshot(cwd: &Path, store: &str, label: &str) -> BTreeMap<String, Vec<u8>> {
    export_files(cwd, store, label)
}

/// Every file under `root` (hidden ones included), by relative path with `/`.
fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap();
                let rel = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn assert_same_files(
    want: &BTreeMap<String, Vec<u8>>,
    got: &BTreeMap<String, Vec<u8>>,
    what: &str,
) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}: file set"
    );
    for (path, bytes) in want {
        assert!(
            got[path] == *bytes,
            "{what}: {path} differs:\n--- want\n{}\n--- got\n{}",
            String::from_utf8_lossy(bytes),
            String::from_utf8_lossy(&got[path])
        );
    }
}

fn copy_tree(from: &Path, to: &Path) {
    for (rel, bytes) in files(from) {
        let path = to.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

/// The tree loaded as `lint`/`serve` load it and rendered as `/metrics` at each of
/// [`INSTANTS`]; the tree must load without findings.
fn rendered(dir: &Path) -> String {
    let documents =
        dynalert_config::DocumentSet::new().with_known_keys(dynalert_rules::declared_keys());
    let model =
        dynalert_server::load_dir(dir, dynalert_store::DEFAULT_MAX_FILE_SIZE, documents).unwrap();
    assert!(
        model.diagnostics.is_empty(),
        "{}: {:#?}",
        dir.display(),
        model.diagnostics
    );
    assert_eq!(model.files.len(), EXAMPLE_FILES, "{}", dir.display());
    INSTANTS
        .iter()
        .map(|at| {
            let at: DateTime<Utc> = at.parse().unwrap();
            let text = dynalert_exposition::render_once(&model, at);
            assert!(text.contains("user_threshold{"), "{text}");
            format!("# at {at}\n{text}")
        })
        .collect()
}
