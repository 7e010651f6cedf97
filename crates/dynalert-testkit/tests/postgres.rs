//! Starts a real PostgreSQL server and talks to it with psql. Skips (with a visible message)
//! when PostgreSQL is not installed, unless DYNALERT_REQUIRE_COMPONENTS or CI is set.

use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use dynalert_testkit::{ChildGuard, Postgres, components};

#[test]
fn postgres_runs_sql_in_isolated_databases() {
    let started = Instant::now();
    let Some(pg) = Postgres::start().unwrap() else {
        return;
    };
    eprintln!("PostgreSQL started in {:?}", started.elapsed());

    assert_eq!(
        pg.url(),
        format!("postgres://dynalert@127.0.0.1:{}/dynalert", pg.port())
    );
    assert_eq!(pg.psql("select 1").unwrap(), "1");
    assert_eq!(pg.psql("select current_database()").unwrap(), "dynalert");

    let first = pg.create_database("tenant_a").unwrap();
    let second = pg.create_database("tenant-b").unwrap();
    assert_eq!(
        first,
        format!("postgres://dynalert@127.0.0.1:{}/tenant_a", pg.port())
    );
    assert!(second.ends_with("/tenant-b"), "{second}");

    pg.psql_in(
        "tenant_a",
        "create table items (id int primary key, name text); \
         insert into items values (1, 'one'), (2, 'two')",
    )
    .unwrap();
    assert_eq!(
        pg.psql_in("tenant_a", "select id, name from items order by id")
            .unwrap(),
        "1|one\n2|two"
    );
    // The other database does not see the table.
    assert_eq!(
        pg.psql_in("tenant-b", "select to_regclass('items') is null")
            .unwrap(),
        "t"
    );

    let error = pg.psql("select * from no_such_table").unwrap_err();
    assert!(format!("{error:#}").contains("no_such_table"), "{error:#}");
    assert!(pg.create_database("bad name; drop").is_err());
}

#[test]
fn postgres_is_gone_after_drop() {
    let Some(pg) = Postgres::start().unwrap() else {
        return;
    };
    let port = pg.port();
    let pid = pg.pid();
    let data_dir = pg.data_dir();
    // The process we hold is the postmaster itself (no runuser/su wrapper when root), so
    // signalling it stops the server.
    let postmaster_pid = std::fs::read_to_string(data_dir.join("postmaster.pid")).unwrap();
    assert_eq!(
        postmaster_pid.lines().next(),
        Some(pid.to_string().as_str())
    );
    // A session busy in a query must not hold the shutdown up, nor outlive it.
    let log_dir = tempfile::tempdir().unwrap();
    let _busy_client = sleeping_client(&pg, &log_dir.path().join("psql.log"));
    let waiting = "select count(*) from pg_stat_activity where query like 'select pg_sleep%'";
    let deadline = Instant::now() + Duration::from_secs(30);
    while pg.psql(waiting).unwrap() != "1" {
        assert!(
            Instant::now() < deadline,
            "the sleeping session never showed up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let backends = child_pids(pid);
    assert!(
        backends.len() > 1,
        "background processes and the session's backend: {backends:?}"
    );

    let stopping = Instant::now();
    drop(pg);
    eprintln!("PostgreSQL stopped in {:?}", stopping.elapsed());

    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still open"
    );
    assert!(!proc_alive(pid), "postmaster {pid} still running");
    for backend in backends {
        assert!(!proc_alive(backend), "backend {backend} still running");
    }
    assert!(!data_dir.exists(), "{} not removed", data_dir.display());
}

/// An outage its clients must ride out: the server goes away (port closed, queries fail) and
/// comes back on the same port with the data it had.
#[test]
fn postgres_stops_and_restarts_on_its_data_and_port() {
    let Some(mut pg) = Postgres::start().unwrap() else {
        return;
    };
    pg.psql("create table kept (v int); insert into kept values (42)")
        .unwrap();
    let (port, url) = (pg.port(), pg.url());
    pg.stop().unwrap();
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still open"
    );
    assert!(pg.psql("select 1").is_err());
    pg.stop().unwrap(); // stopping a stopped server is nothing

    pg.restart().unwrap();
    assert_eq!((pg.port(), pg.url()), (port, url));
    assert_eq!(pg.psql("select v from kept").unwrap(), "42");
    assert!(
        pg.restart().is_err(),
        "a running server is not started twice"
    );
}

#[test]
fn postgresql_is_a_known_component() {
    assert_eq!(components::package_for_binary("initdb"), Some("postgresql"));
    assert_eq!(components::package_for_binary("psql"), Some("postgresql"));
    // What `cargo xtask test` checks before installing: the server binaries are found off
    // PATH, so a machine with PostgreSQL does not reinstall it.
    if !components::postgres_bin_dirs().is_empty() {
        assert!(components::find_executable("initdb").is_some());
        assert!(components::find_executable("postgres").is_some());
    }
}

/// A `psql` client (its own process, like an application's connection) that runs a query for
/// ten minutes; killed when the guard drops.
fn sleeping_client(pg: &Postgres, log: &Path) -> ChildGuard {
    let psql = components::find_postgres_executable("psql").unwrap();
    let mut command = Command::new(psql);
    command
        .args(["-X", "-h", "127.0.0.1", "-p", &pg.port().to_string()])
        .args([
            "-U",
            "dynalert",
            "-d",
            "dynalert",
            "-c",
            "select pg_sleep(600)",
        ]);
    ChildGuard::spawn("psql", command, log).unwrap()
}

/// Whether process `pid` exists and is not a zombie waiting to be reaped.
fn proc_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// The processes whose parent is `pid` (the server's checkpointer, walwriter, …).
fn child_pids(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|candidate| parent_pid(*candidate) == Some(pid))
        .collect()
}

fn parent_pid(pid: u32) -> Option<u32> {
    let stat =
        std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat")).ok()?;
    // Fields after the `(comm)`: state, ppid, …
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}
