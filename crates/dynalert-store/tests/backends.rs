//! One suite, run against every backend: a conf.d directory, an SQLite file and a real
//! PostgreSQL started from the Debian package.

use std::sync::Arc;

use sqlx::Connection;

use dynalert_store::{Decision, Store, StoreSpec, UpdateError, Updated, WriteMeta};

fn meta(actor: &str, object: &str) -> WriteMeta {
    WriteMeta {
        actor: actor.to_string(),
        object: object.to_string(),
    }
}

/// Writes `content` unconditionally.
async fn put(store: &Store, path: &str, content: &str) -> Updated {
    store
        .update::<(), _>(path, &meta("test", &format!("tenant:{path}")), |_| {
            Ok(Decision::Write(content.to_string()))
        })
        .await
        .unwrap_or_else(|e| panic!("writing {path}: {e:?}"))
}

async fn writes_reads_and_audits(store: &Store) {
    let first = match put(store, "a.yaml", "tenants:\n  a: {}\n").await {
        Updated::Written(doc) => doc,
        other => panic!("{other:?}"),
    };
    let got = store.get("a.yaml").await.unwrap().unwrap();
    assert_eq!(got, first);
    assert!(matches!(
        put(store, "a.yaml", "tenants:\n  a: {}\n").await,
        Updated::Unchanged(_)
    ));
    let second = match put(store, "a.yaml", "tenants:\n  a: {x: 1}\n").await {
        Updated::Written(doc) => doc,
        other => panic!("{other:?}"),
    };
    assert_ne!(second.revision, first.revision);
    put(store, "sub/_defaults.yaml", "defaults: {}\n").await;
    let paths: Vec<String> = store
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.path)
        .collect();
    assert_eq!(paths, ["a.yaml", "sub/_defaults.yaml"]);
    let revisions = store.revisions().await.unwrap();
    assert_eq!(revisions["a.yaml"], second.revision);
    let wanted = [
        "sub/_defaults.yaml".to_string(),
        "gone.yaml".into(),
        "a.yaml".into(),
    ];
    let many = store.get_many(&wanted).await.unwrap();
    assert_eq!(many.len(), 2, "{many:?}");
    assert!(many.contains(&second));

    let history = store.history("tenant:a.yaml", "a.yaml", 100).await.unwrap();
    assert_eq!(
        history.len(),
        2,
        "the unchanged write is not audited: {history:?}"
    );
    assert_eq!(history[0].before, None);
    assert_eq!(history[0].after.as_deref(), Some("tenants:\n  a: {}\n"));
    assert_eq!(history[1].before.as_deref(), Some("tenants:\n  a: {}\n"));
    assert_eq!(history[1].actor, "test");
    assert!(history[0].id < history[1].id);
    let last = store.history("tenant:a.yaml", "a.yaml", 1).await.unwrap();
    assert_eq!(last, history[1..]);
}

async fn a_refusal_changes_nothing(store: &Store) {
    put(store, "b.yaml", "tenants:\n  b: {}\n").await;
    let before = store.get("b.yaml").await.unwrap();
    let result = store
        .update(
            "b.yaml",
            &meta("test", "tenant:b"),
            |current| -> Result<Decision, &'static str> {
                assert!(current.is_some());
                Err("stale revision")
            },
        )
        .await;
    assert!(matches!(
        result,
        Err(UpdateError::Refused("stale revision"))
    ));
    assert_eq!(store.get("b.yaml").await.unwrap(), before);
    assert_eq!(
        store.history("tenant:b", "b.yaml", 10).await.unwrap().len(),
        1
    );
}

async fn removal_and_recreation(store: &Store) {
    let Updated::Written(old) = put(store, "c.yaml", "tenants:\n  c: {}\n").await else {
        panic!()
    };
    let removed = store
        .update::<(), _>("c.yaml", &meta("test", "tenant:c"), |_| {
            Ok(Decision::Remove)
        })
        .await
        .unwrap();
    assert_eq!(removed, Updated::Removed);
    assert_eq!(store.get("c.yaml").await.unwrap(), None);
    let history = store.history("tenant:c", "c.yaml", 10).await.unwrap();
    assert_eq!(history.last().unwrap().after, None);
    let Updated::Written(new) = put(store, "c.yaml", "tenants:\n  c: {}\n").await else {
        panic!()
    };
    if !matches!(store, Store::Dir(_)) {
        // Database revisions are never reused; a directory's are content hashes.
        assert_ne!(new.revision, old.revision);
    }
}

async fn paths_are_checked(store: &Store) {
    for bad in ["../escape.yaml", "/abs.yaml", ".hidden/x.yaml", "x.txt"] {
        let result = store
            .update::<(), _>(bad, &meta("test", "x"), |_| {
                Ok(Decision::Write("a: 1\n".into()))
            })
            .await;
        assert!(
            matches!(result, Err(UpdateError::Store(_))),
            "{bad} was accepted"
        );
        assert!(store.get(bad).await.is_err());
    }
}

/// Read-modify-write under the store's lock: no increment may be lost.
async fn concurrent_updates_lose_nothing(store: Arc<Store>) {
    put(&store, "counter.yaml", "0").await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .update::<(), _>("counter.yaml", &meta(&format!("w{i}"), "counter"), |doc| {
                    let n: u32 = doc.unwrap().content.parse().unwrap();
                    Ok(Decision::Write((n + 1).to_string()))
                })
                .await
                .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        store.get("counter.yaml").await.unwrap().unwrap().content,
        "20"
    );
    assert_eq!(
        store
            .history("counter", "counter.yaml", 100)
            .await
            .unwrap()
            .len(),
        21
    );
}

/// A conditional write happens only on the revision it was based on; of writers racing on
/// one revision exactly one wins, and writers of other documents are not disturbed.
async fn conditional_writes_apply_only_on_their_revision(store: Arc<Store>) {
    let first = match put(&store, "c.yaml", "1").await {
        Updated::Written(doc) => doc,
        other => panic!("{other:?}"),
    };
    let m = meta("w", "tenant:c");
    let second = match store
        .write_if(
            "c.yaml",
            &m,
            Some(&first.revision),
            Decision::Write("2".into()),
        )
        .await
        .unwrap()
    {
        Some(Updated::Written(doc)) => doc,
        other => panic!("{other:?}"),
    };
    assert_ne!(second.revision, first.revision);
    let stale = store
        .write_if(
            "c.yaml",
            &m,
            Some(&first.revision),
            Decision::Write("3".into()),
        )
        .await
        .unwrap();
    assert_eq!(
        stale, None,
        "a write based on a replaced revision went through"
    );
    assert_eq!(store.get("c.yaml").await.unwrap().unwrap().content, "2");
    let create =
        |content: &str| store.write_if("fresh.yaml", &m, None, Decision::Write(content.into()));
    assert!(matches!(
        create("a").await.unwrap(),
        Some(Updated::Written(_))
    ));
    assert_eq!(
        create("b").await.unwrap(),
        None,
        "created over an existing document"
    );

    // Racing: 16 writers of one revision of shared.yaml, 16 creators of raced.yaml (which
    // does not exist) and 16 writers of their own documents. Queued together, they share
    // batches: a write must see the writes before it in its batch.
    let shared = match put(&store, "shared.yaml", "0").await {
        Updated::Written(doc) => doc.revision,
        other => panic!("{other:?}"),
    };
    let mut changes = store.subscribe();
    let mut tasks = Vec::new();
    for i in 0..48 {
        let (store, shared) = (store.clone(), shared.clone());
        tasks.push(tokio::spawn(async move {
            let (path, based_on) = match i % 3 {
                0 => ("shared.yaml".to_string(), Some(shared)),
                1 => ("raced.yaml".to_string(), None),
                _ => (format!("own-{i}.yaml"), None),
            };
            let m = meta(&format!("w{i}"), &format!("tenant:{path}"));
            let outcome = store
                .write_if(
                    &path,
                    &m,
                    based_on.as_deref(),
                    Decision::Write(format!("v{i}")),
                )
                .await
                .unwrap();
            (path, outcome.is_some())
        }));
    }
    let mut won = Vec::new();
    for t in tasks {
        let (path, written) = t.await.unwrap();
        if path.starts_with("own-") {
            assert!(written, "{path} was not written");
        } else {
            won.extend(written.then_some(path));
        }
    }
    won.sort();
    assert_eq!(
        won,
        ["raced.yaml", "shared.yaml"],
        "one writer of each contested document goes through"
    );
    for path in ["shared.yaml", "raced.yaml"] {
        let history = store.history("-", path, 100).await.unwrap();
        let winner = store.get(path).await.unwrap().unwrap().content;
        assert_eq!(
            history.last().unwrap().after.as_deref(),
            Some(winner.as_str()),
            "{path}"
        );
    }
    assert_eq!(
        store.history("-", "shared.yaml", 100).await.unwrap().len(),
        2
    );
    assert_eq!(
        store.history("-", "raced.yaml", 100).await.unwrap().len(),
        1
    );
    let mut announced = std::collections::BTreeSet::new();
    while announced.len() < 18 {
        let path = tokio::time::timeout(std::time::Duration::from_secs(5), changes.recv())
            .await
            .expect("every conditional write announced within 5 s")
            .unwrap();
        announced.insert(path);
    }
    assert!(announced.contains("raced.yaml") && announced.contains("own-47.yaml"));
}

async fn import_upserts_and_prunes(store: &Store) {
    put(store, "old.yaml", "tenants:\n  old: {}\n").await;
    put(store, "same.yaml", "tenants:\n  same: {}\n").await;
    let docs = vec![
        (
            "same.yaml".to_string(),
            "tenants:\n  same: {}\n".to_string(),
        ),
        ("new/n.yaml".to_string(), "tenants:\n  n: {}\n".to_string()),
    ];
    let stats = store.import(&docs, false, "importer").await.unwrap();
    assert_eq!((stats.written, stats.unchanged, stats.removed), (1, 1, 0));
    assert!(store.get("old.yaml").await.unwrap().is_some());
    let stats = store.import(&docs, true, "importer").await.unwrap();
    assert!(stats.removed >= 1, "{stats:?}");
    let paths: Vec<String> = store
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.path)
        .collect();
    assert_eq!(paths, ["new/n.yaml", "same.yaml"]);
    let history = store
        .history("document:new/n.yaml", "new/n.yaml", 10)
        .await
        .unwrap();
    assert_eq!(history[0].actor, "importer");
    assert!(
        store
            .import(&[("../x.yaml".into(), String::new())], false, "i")
            .await
            .is_err()
    );
}

async fn writes_are_announced(store: &Store) {
    let mut changes = store.subscribe();
    put(store, "announced.yaml", "tenants:\n  announced: {}\n").await;
    let path = tokio::time::timeout(std::time::Duration::from_secs(5), changes.recv())
        .await
        .expect("a notification within 5 s")
        .unwrap();
    assert_eq!(path, "announced.yaml");
}

/// Every scenario, each on a fresh store made by `open`.
async fn suite<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Store>,
{
    writes_reads_and_audits(&open().await).await;
    a_refusal_changes_nothing(&open().await).await;
    removal_and_recreation(&open().await).await;
    paths_are_checked(&open().await).await;
    concurrent_updates_lose_nothing(Arc::new(open().await)).await;
    conditional_writes_apply_only_on_their_revision(Arc::new(open().await)).await;
    import_upserts_and_prunes(&open().await).await;
    writes_are_announced(&open().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dir_store() {
    let dirs = std::sync::Mutex::new(Vec::new());
    suite(|| {
        let dir = tempfile::tempdir().unwrap();
        let spec = StoreSpec::Dir(dir.path().to_path_buf());
        dirs.lock().unwrap().push(dir);
        async move { Store::open(&spec).await.unwrap() }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let n = std::sync::atomic::AtomicUsize::new(0);
    suite(|| {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let spec = StoreSpec::Sqlite(dir.path().join(format!("store-{i}.db")));
        async move { Store::open(&spec).await.unwrap() }
    })
    .await;
}

/// Commits only append to the WAL (the writer never checkpoints); the checkpointer copies them
/// into the database file on its own, without anyone reading or closing the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_writes_reach_the_database_file_without_a_writer_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dynalert.db");
    let store = Store::open(&StoreSpec::Sqlite(db.clone())).await.unwrap();
    let size = || std::fs::metadata(&db).unwrap().len();
    let before = size();
    let padding = "# padding\n".repeat(400);
    for i in 0..50 {
        put(
            &store,
            &format!("t{i}.yaml"),
            &format!("{padding}tenants:\n  t{i}: {{}}\n"),
        )
        .await;
    }
    let written = 50 * padding.len() as u64;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while size() < before + written && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        size() >= before + written,
        "the database file stayed at {} bytes (from {before}) while {written} bytes were committed",
        size()
    );
}

/// Conditional writes that arrive together share a transaction; one of them failing in the
/// database (here a trigger refuses its audit entry) must fail that write alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_a_failing_conditional_write_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dynalert.db");
    let store = Arc::new(Store::open(&StoreSpec::Sqlite(db.clone())).await.unwrap());
    let mut other = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query(
        "CREATE TRIGGER refuse_bad BEFORE INSERT ON audit WHEN NEW.path = 'bad.yaml' \
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
    )
    .execute(&mut other)
    .await
    .unwrap();
    for round in 0..5 {
        let mut tasks = Vec::new();
        for i in 0..24 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let path = if i == 12 {
                    "bad.yaml".to_string()
                } else {
                    format!("r{round}-{i}.yaml")
                };
                let m = meta("w", &format!("tenant:{path}"));
                let outcome = store
                    .write_if(&path, &m, None, Decision::Write("x".into()))
                    .await;
                (path, outcome)
            }));
        }
        for t in tasks {
            match t.await.unwrap() {
                (path, outcome) if path == "bad.yaml" => {
                    assert!(outcome.is_err(), "the refused write succeeded: {outcome:?}")
                }
                (path, outcome) => assert!(
                    matches!(outcome, Ok(Some(Updated::Written(_)))),
                    "{path}: {outcome:?}"
                ),
            }
        }
    }
    assert_eq!(store.list().await.unwrap().len(), 5 * 23);
    assert!(store.get("bad.yaml").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_store_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let spec = StoreSpec::Sqlite(dir.path().join("dynalert.db"));
    {
        let store = Store::open(&spec).await.unwrap();
        put(&store, "a.yaml", "tenants:\n  a: {}\n").await;
    }
    let store = Store::open(&spec).await.unwrap();
    assert_eq!(store.list().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_store() {
    let Some(pg) = dynalert_testkit::Postgres::start().unwrap() else {
        return;
    };
    let n = std::sync::atomic::AtomicUsize::new(0);
    suite(|| {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let url = pg.create_database(&format!("store_{i}")).unwrap();
        async move { Store::open(&StoreSpec::Postgres(url)).await.unwrap() }
    })
    .await;
}

/// A write on one connection is announced to a store opened separately on the same database,
/// as it is between two `dynalert serve` replicas.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_writes_reach_other_replicas() {
    let Some(pg) = dynalert_testkit::Postgres::start().unwrap() else {
        return;
    };
    let url = pg.create_database("replicas").unwrap();
    let one = Store::open(&StoreSpec::Postgres(url.clone()))
        .await
        .unwrap();
    let two = Store::open(&StoreSpec::Postgres(url)).await.unwrap();
    let mut heard = two.subscribe();
    put(&one, "x.yaml", "tenants:\n  x: {}\n").await;
    let path = tokio::time::timeout(std::time::Duration::from_secs(5), heard.recv())
        .await
        .expect("the other replica hears of the write within 5 s")
        .unwrap();
    assert_eq!(path, "x.yaml");
    assert_eq!(
        two.get("x.yaml").await.unwrap().unwrap().content,
        "tenants:\n  x: {}\n"
    );
}
