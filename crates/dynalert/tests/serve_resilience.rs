//! The real `dynalert serve` when its inputs go wrong: durations out of bounds and an
//! in-memory SQLite store are refused at start with a reason; the auth file is reloaded like
//! the configuration (a missing or broken one keeps the last good tokens and says so); and
//! PostgreSQL going away under two replicas is ridden out: both keep serving the same
//! thresholds and stay ready, report `dynalert_store_up 0` and a growing model age, and once
//! it is back a write through one replica is served by the other.
//!
//! A reload task that panics and a stalled reload loop are proven in-process, with a scripted
//! source (`dynalert-server/src/tests.rs`).

mod common;

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Served, write};
use dynalert_testkit::Postgres;

/// How long a test waits for what it expects before it fails. A PostgreSQL outage is seen
/// when a read gives up (the connection pool retries for 10 s).
const GIVE_UP: Duration = Duration::from_secs(60);

fn line(tenant: &str, value: &str) -> String {
    format!(
        "user_threshold{{tenant=\"{tenant}\",component=\"mysql\",metric=\"connections\",severity=\"warning\"}} {value}"
    )
}

fn value(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// Runs `dynalert serve ARGS`, expecting it to refuse to start: returns its stderr. A server
/// that starts instead is killed and fails the test.
fn refused(args: &[&OsStr]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dynalert"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "serve {args:?} started instead of refusing:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "{args:?}: {:?}", out.status);
    String::from_utf8(out.stderr).unwrap()
}

fn conf_d(root: &Path) -> std::path::PathBuf {
    let conf = root.join("conf.d");
    write(
        &conf,
        "_defaults.yaml",
        "defaults:\n  mysql_connections: 80\n",
    );
    write(
        &conf,
        "a.yaml",
        "tenants:\n  a:\n    mysql_connections: 70\n",
    );
    conf
}

#[test]
fn durations_out_of_bounds_are_refused_with_the_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_d(dir.path());
    let refused = |option: &str, value: &str| {
        refused(&[
            OsStr::new("--config-dir"),
            conf.as_os_str(),
            OsStr::new(option),
            OsStr::new(value),
        ])
    };
    // Zero in every spelling (it panicked the reload task), a period that burns a core, one
    // past the bound, and numbers that once wrapped around to zero or near it.
    for given in ["0s", "0", "0ms", "1ms", "2h"] {
        let stderr = refused("--reload-interval", given);
        assert!(
            stderr.contains("--reload-interval") && stderr.contains("must be between 100ms and 1h"),
            "{given}: {stderr}"
        );
    }
    for huge in ["4611686018427387904m", "99999999999999999999s"] {
        let stderr = refused("--reload-interval", huge);
        assert!(
            stderr.contains("--reload-interval") && stderr.contains("too large"),
            "{huge}: {stderr}"
        );
    }
    let stderr = refused("--poll-interval", "0ms");
    assert!(stderr.contains("must be between 100ms and 1h"), "{stderr}");
    let stderr = refused("--debounce", "0s");
    assert!(stderr.contains("must be between 10ms and 1m"), "{stderr}");
    let stderr = refused("--reload-interval", "30");
    assert!(stderr.contains("time unit needed"), "{stderr}");
}

#[test]
fn an_in_memory_sqlite_store_is_refused_with_the_reason() {
    for store in ["sqlite::memory:", "sqlite://:memory:"] {
        // It used to start and never become ready.
        let stderr = refused(&[OsStr::new("--store"), OsStr::new(store)]);
        assert!(
            stderr.contains("in-memory SQLite database") && stderr.contains("give a file"),
            "{store}: {stderr}"
        );
    }
}

/// A token file with one admin token, written as editors and ConfigMaps do (a rename).
fn tokens(path: &Path, name: &str, token: &str) {
    let text = format!(
        "tokens:\n  - name: {name}\n    sha256: {}\n    role: admin\n",
        dynalert_server::hash_token(token)
    );
    replace(path, &text);
}

fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn api_status(port: u16, token: &str) -> u16 {
    reqwest::blocking::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/v1/tenants"))
        .bearer_auth(token)
        .send()
        .unwrap()
        .status()
        .as_u16()
}

/// Polls `/ready` and `/metrics` until `done(ready code, ready body, metrics)`.
fn wait_until(served: &Served, what: &str, done: impl Fn(u16, &str, &str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let (code, ready) = served.get("/ready");
        let metrics = served.metrics();
        if done(code, &ready, &metrics) {
            return metrics;
        }
        assert!(
            start.elapsed() < GIVE_UP,
            "{what}: not seen within {GIVE_UP:?}; /ready {code}: {ready}\n{metrics}\nlog:\n{}",
            served.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_auth_file_is_reloaded_and_a_missing_or_broken_one_keeps_the_last_good_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_d(dir.path());
    let auth = dir.path().join("auth.yaml");
    tokens(&auth, "first", "first-token");
    let served = Served::start_with(
        &[
            OsStr::new("--config-dir"),
            conf.as_os_str(),
            OsStr::new("--auth-file"),
            auth.as_os_str(),
        ],
        dir.path(),
    );
    let port = served.port;
    assert_eq!(api_status(port, "first-token"), 200);
    let auth_ok = "dynalert_auth_file_last_reload_successful";
    assert_eq!(value(&served.metrics(), auth_ok), Some(1.0));

    // A new valid file takes effect: its token only.
    tokens(&auth, "second", "second-token");
    assert_eq!(api_status(port, "second-token"), 200);
    assert_eq!(api_status(port, "first-token"), 401);

    // Deleted: the last good tokens stay, and it says so everywhere.
    std::fs::remove_file(&auth).unwrap();
    let metrics = wait_until(&served, "auth file missing", |code, ready, m| {
        code == 200
            && ready.contains("auth.yaml")
            && ready.contains("keeping the last good tokens")
            && value(m, auth_ok) == Some(0.0)
    });
    assert!(metrics.contains(&line("a", "70")));
    assert_eq!(api_status(port, "second-token"), 200, "last good tokens");
    assert!(
        served.log_tail().contains("keeping the last good tokens"),
        "{}",
        served.log_tail()
    );

    // Broken: the same, with the reason.
    replace(&auth, "tokens:\n  - {name: x, sha256: abc, role: admin}\n");
    wait_until(&served, "auth file broken", |code, ready, m| {
        code == 200 && ready.contains("64 hex digits") && value(m, auth_ok) == Some(0.0)
    });
    assert_eq!(api_status(port, "second-token"), 200, "last good tokens");
    assert!(served.log_tail().contains("64 hex digits"));

    // Valid again: in effect, and /ready is clean.
    tokens(&auth, "third", "third-token");
    wait_until(&served, "auth file back", |code, ready, m| {
        (code, ready) == (200, "ready\n") && value(m, auth_ok) == Some(1.0)
    });
    assert_eq!(api_status(port, "third-token"), 200);
    assert_eq!(api_status(port, "second-token"), 401);
}

#[test]
fn postgres_down_under_two_replicas_keeps_both_serving_and_ready() {
    let Some(mut pg) = Postgres::start().unwrap() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_d(dir.path());
    let auth = dir.path().join("auth.yaml");
    tokens(&auth, "ops", "pg-admin");
    let url = pg.url();
    let replica = |name: &str, extra: &[&OsStr]| {
        let logs = dir.path().join(name);
        std::fs::create_dir(&logs).unwrap();
        let mut args = vec![
            OsStr::new("--store"),
            OsStr::new(&url),
            OsStr::new("--auth-file"),
            auth.as_os_str(),
        ];
        args.extend(extra);
        Served::start_with(&args, &logs)
    };
    // The first replica seeds the database; the second finds it seeded.
    let a = replica("a", &[OsStr::new("--import"), conf.as_os_str()]);
    let b = replica("b", &[]);
    for served in [&a, &b] {
        served.wait_for_line(&line("a", "70"));
    }

    pg.stop().unwrap();
    for served in [&a, &b] {
        let metrics = wait_until(served, "store down", |_, _, m| {
            value(m, "dynalert_store_up") == Some(0.0)
        });
        let age = value(&metrics, "dynalert_model_age_seconds").unwrap();
        let metrics = wait_until(served, "model age growing", |_, _, m| {
            value(m, "dynalert_model_age_seconds").is_some_and(|now| now > age + 1.0)
        });
        let (code, ready) = served.get("/ready");
        assert_eq!(code, 200, "an unreachable store is no stall: {ready}");
        assert!(
            ready.contains("serving the last good configuration"),
            "{ready}"
        );
        assert!(metrics.contains(&line("a", "70")), "the same thresholds");
        assert_eq!(value(&metrics, "dynalert_reload_stalled"), Some(0.0));
        assert_eq!(value(&metrics, "dynalert_store_up"), Some(0.0));
    }

    pg.restart().unwrap();
    for served in [&a, &b] {
        wait_until(served, "store back", |code, ready, m| {
            (code, ready) == (200, "ready\n") && value(m, "dynalert_store_up") == Some(1.0)
        });
    }
    let patched = reqwest::blocking::Client::new()
        .patch(format!("http://127.0.0.1:{}/api/v1/tenants/a", a.port))
        .bearer_auth("pg-admin")
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"mysql_connections": 75}"#)
        .send()
        .unwrap();
    let status = patched.status();
    assert_eq!(status, 200, "{}", patched.text().unwrap());
    b.wait_for_line(&line("a", "75"));
    a.wait_for_line(&line("a", "75"));
}
