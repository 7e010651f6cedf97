//! Crash safety of `dynalert serve` on a store: `kill -9` in the middle of a burst of API
//! writes, on SQLite and on a conf.d directory. After a restart on the same store every
//! acknowledged write is there and nothing is half-written: each tenant holds its last
//! acknowledged value or the one that was in flight after it (never less), the load status is
//! clean, `/metrics` serves those values, the audit history of every tenant is an unbroken
//! chain of its writes, and (directory) every file of the tree still parses.
//!
//! The directory store replaces the file first and appends the audit line after it, so a
//! kill between the two keeps a write without its audit entry (see [`Audit::FileFirst`]): the
//! test accepts that only for a write that was never acknowledged, and counts it.
//!
//! Each test runs two rounds of burst + kill + restart, so the second round also writes on
//! top of whatever the first crash left behind.

mod common;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::{Launch, Served};
use serde_json::{Value, json};

/// The admin token of the auth file every server of these tests reads.
const TOKEN: &str = "crash-test-admin-token";
/// Concurrent writers, each owning one tenant.
const WRITERS: usize = 8;
/// Writes every writer has had acknowledged in a burst before the server is killed: the
/// burst is a number of writes, not a length of time, so it is the same on a slow machine.
const BURST_WRITES: u64 = 20;
/// Longest a burst may take to reach [`BURST_WRITES`] (a guard against a stuck server).
const BURST_TIMEOUT: Duration = common::WAIT;
/// Burst + kill + restart cycles per test.
const ROUNDS: usize = 2;
/// The platform file of both trees: `mysql_connections` is a declared key with a default.
const DEFAULTS: &str = "defaults:\n  mysql_connections: 80\n";
/// Most entries one history request returns (the API's limit).
const HISTORY_MAX: u64 = 1000;

#[test]
fn kill_9_during_a_write_burst_on_sqlite_loses_no_acknowledged_write() {
    let tmp = tempfile::tempdir().unwrap();
    let seed = tmp.path().join("seed");
    common::write(&seed, "_defaults.yaml", DEFAULTS);
    let db = tmp.path().join("dynalert.db");
    let mut args: Vec<OsString> = vec!["--store".into(), prefixed("sqlite:", &db)];
    // Kept on every restart, as a deployment would: it only seeds an empty store.
    args.extend(["--import".into(), seed.into_os_string()]);
    crash_rounds(tmp.path(), &args, None, Audit::Atomic);
}

#[test]
fn kill_9_during_a_write_burst_on_a_directory_loses_no_acknowledged_write() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("conf.d");
    common::write(&conf, "_defaults.yaml", DEFAULTS);
    let args: Vec<OsString> = vec!["--config-dir".into(), conf.clone().into_os_string()];
    crash_rounds(tmp.path(), &args, Some(&conf), Audit::FileFirst);
}

/// How closely the audit history follows the stored documents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Audit {
    /// A document and its audit entry are written in one transaction (a database).
    Atomic,
    /// The file is replaced first and its audit line appended after it (a directory): a crash
    /// in between keeps the write without its entry. Tolerated only for a write that was
    /// never acknowledged; reported in the round summary.
    FileFirst,
}

/// Runs [`ROUNDS`] cycles of: start the server on `store_args`, burst of writes, SIGKILL,
/// restart, check everything. `conf` is the directory of a directory store.
fn crash_rounds(tmp: &Path, store_args: &[OsString], conf: Option<&Path>, audit: Audit) {
    let auth = auth_file(tmp);
    let mut args = store_args.to_vec();
    args.extend(["--auth-file".into(), auth.into_os_string()]);
    let tenants: Vec<String> = (0..WRITERS).map(|i| format!("crash-{i}")).collect();
    // The value each tenant holds: None before it exists.
    let mut current: Vec<Option<u64>> = vec![None; WRITERS];
    // Per tenant, the values of writes that were stored although never acknowledged.
    let mut unacked: Vec<BTreeSet<u64>> = vec![BTreeSet::new(); WRITERS];
    let mut starts = 0;
    let mut start = |label: &str| {
        starts += 1;
        Launch::args(&args, &tmp.join(format!("serve-{starts}-{label}.log"))).start()
    };
    let mut server = start("burst");
    for round in 1..=ROUNDS {
        let started = Instant::now();
        let outcomes = burst(server, &tenants, &current);
        let burst_took = started.elapsed();

        let restarted = Instant::now();
        server = start("restart");
        let ready_after = restarted.elapsed();
        let api = Api::new(server.port);
        let checked = verify(&api, &server, &outcomes, conf, &mut unacked, audit);
        let acked: u64 = outcomes.iter().map(|o| o.writes).sum();
        let in_flight = outcomes.iter().filter(|o| o.in_flight).count();
        let landed = outcomes
            .iter()
            .zip(&checked.values)
            .filter(|(o, v)| **v == o.acked + 1)
            .count();
        eprintln!(
            "{audit:?} round {round}: {acked} writes acknowledged in {burst_took:.2?}; \
             {in_flight}/{WRITERS} writers had a request in flight at the kill, {landed} \
             unacknowledged writes were stored; {} stored writes have no audit entry; {} \
             temporary files left behind; ready again {ready_after:.2?} after the restart",
            checked.unaudited, checked.leftover_temp
        );
        // If no request was in flight, the kill tested nothing.
        assert!(
            in_flight > 0,
            "no request was in flight when the server was killed"
        );
        current = checked.values.into_iter().map(Some).collect();
    }
}

/// What one writer saw during a burst.
#[derive(Debug)]
struct Outcome {
    tenant: String,
    /// The last value the server acknowledged (the tenant's value before the burst when none).
    acked: u64,
    /// Writes acknowledged in this burst.
    writes: u64,
    /// Whether the request that failed had been sent before the kill was ordered (it may or
    /// may not have been stored).
    in_flight: bool,
    /// A response other than success (the burst must see only 2xx, then connection errors).
    unexpected: Option<String>,
}

/// Starts [`WRITERS`] writers on `server`, each creating its tenant (when `current` says it
/// does not exist yet) and then raising `mysql_connections` by one per PATCH, and kills the
/// server with SIGKILL once each has had [`BURST_WRITES`] writes acknowledged, while they are
/// busy. Returns what each writer saw.
fn burst(server: Served, tenants: &[String], current: &[Option<u64>]) -> Vec<Outcome> {
    let api = Api::new(server.port);
    let go = Arc::new(Barrier::new(WRITERS + 1));
    let killing = Arc::new(AtomicBool::new(false));
    // Writes acknowledged so far, per writer.
    let acknowledged: Arc<Vec<AtomicU64>> =
        Arc::new((0..WRITERS).map(|_| AtomicU64::new(0)).collect());
    let writers: Vec<_> = tenants
        .iter()
        .zip(current)
        .enumerate()
        .map(|(writer, (tenant, value))| {
            let (api, go, killing, acknowledged) = (
                api.clone(),
                go.clone(),
                killing.clone(),
                acknowledged.clone(),
            );
            let (tenant, value) = (tenant.clone(), *value);
            std::thread::spawn(move || {
                let acked = match value {
                    Some(v) => v,
                    None => {
                        let path = format!("/api/v1/tenants/{tenant}");
                        let (status, body) = api
                            .send(
                                reqwest::Method::PUT,
                                &path,
                                &json!({"mysql_connections": 1}),
                            )
                            .unwrap();
                        assert_eq!(status, 201, "creating {tenant}: {body}");
                        1
                    }
                };
                go.wait();
                write_loop(&api, tenant, acked, &killing, &acknowledged[writer])
            })
        })
        .collect();
    go.wait();
    let deadline = Instant::now() + BURST_TIMEOUT;
    loop {
        let counts: Vec<u64> = acknowledged
            .iter()
            .map(|count| count.load(Ordering::SeqCst))
            .collect();
        if counts.iter().all(|&n| n >= BURST_WRITES) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "acknowledged writes per writer after {BURST_TIMEOUT:?}: {counts:?}, short of \
             {BURST_WRITES} each; log:\n{}",
            server.log_tail()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    killing.store(true, Ordering::SeqCst);
    // Dropping the guard is `Child::kill()` — SIGKILL on Unix — and a wait for the exit.
    drop(server);
    let outcomes: Vec<Outcome> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    for o in &outcomes {
        assert!(o.unexpected.is_none(), "{}: {:?}", o.tenant, o.unexpected);
    }
    outcomes
}

/// PATCHes `{"mysql_connections": N}` with N = acked + 1, acked + 2, … until a request fails.
fn write_loop(
    api: &Api,
    tenant: String,
    mut acked: u64,
    killing: &AtomicBool,
    acknowledged: &AtomicU64,
) -> Outcome {
    let path = format!("/api/v1/tenants/{tenant}");
    let mut writes = 0;
    loop {
        let next = acked + 1;
        let sent_before_kill = !killing.load(Ordering::SeqCst);
        match api.send(
            reqwest::Method::PATCH,
            &path,
            &json!({ "mysql_connections": next }),
        ) {
            Ok((200, _)) => {
                acked = next;
                writes += 1;
                acknowledged.fetch_add(1, Ordering::SeqCst);
            }
            Ok((status, body)) => {
                return Outcome {
                    tenant,
                    acked,
                    writes,
                    in_flight: false,
                    unexpected: Some(format!("PATCH {next}: HTTP {status}: {body}")),
                };
            }
            Err(_) => {
                return Outcome {
                    tenant,
                    acked,
                    writes,
                    in_flight: sent_before_kill,
                    unexpected: None,
                };
            }
        }
    }
}

/// What [`verify`] found.
struct Checked {
    /// Each tenant's stored value.
    values: Vec<u64>,
    /// Stored writes without an audit entry, over every tenant's whole history.
    unaudited: usize,
    /// Temporary files the killed server left in the directory.
    leftover_temp: usize,
}

/// Everything that must hold after a restart. Records in `unacked` the writes that were
/// stored without being acknowledged.
fn verify(
    api: &Api,
    server: &Served,
    outcomes: &[Outcome],
    conf: Option<&Path>,
    unacked: &mut [BTreeSet<u64>],
    audit: Audit,
) -> Checked {
    let log = || server.log_tail();
    let config = api.get_json("/api/v1/config");
    assert_eq!(config["status"], "ok", "{config:#}\nlog:\n{}", log());
    assert_eq!(config["errors"], json!([]), "{config:#}");
    assert_eq!(config["reload_error"], Value::Null, "{config:#}");
    let (status, metrics) = api.get("/metrics").unwrap();
    assert_eq!(status, 200);

    let mut values = Vec::new();
    let mut unaudited = 0;
    let mut leftover_temp = 0;
    for (o, unacked) in outcomes.iter().zip(unacked) {
        let t = &o.tenant;
        let resource = api.get_json(&format!("/api/v1/tenants/{t}"));
        let value = number(&resource["document"]["mysql_connections"]);
        assert!(
            value == o.acked || value == o.acked + 1,
            "{t}: stored {value}, but {} was the last acknowledged write (only it or the one \
             in flight after it may be there)",
            o.acked
        );
        if value == o.acked + 1 {
            unacked.insert(value);
        }
        let line = format!(
            "user_threshold{{tenant=\"{t}\",component=\"mysql\",metric=\"connections\",severity=\"warning\"}} {value}"
        );
        assert!(
            metrics.lines().any(|l| l == line),
            "{line:?} is not served; /metrics:\n{metrics}"
        );
        unaudited += check_history(api, t, value, unacked, audit);
        values.push(value);
    }

    if let Some(conf) = conf {
        // Every file of the tree parses (a torn file would be a lint error), and nothing but
        // the server's hidden temporary files and audit log is left next to them.
        let out = Command::new(env!("CARGO_BIN_EXE_dynalert"))
            .arg("lint")
            .arg(conf)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "lint of the tree after the crash: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let (hidden, mut names): (Vec<String>, Vec<String>) = std::fs::read_dir(conf)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .partition(|n| n.starts_with('.'));
        // Temporary files of interrupted writes: hidden, so never loaded.
        leftover_temp = hidden.iter().filter(|n| n.ends_with(".tmp")).count();
        names.sort();
        let mut want: Vec<String> = outcomes
            .iter()
            .map(|o| format!("{}.yaml", o.tenant))
            .collect();
        want.push("_defaults.yaml".into());
        want.sort();
        assert_eq!(names, want, "files of the tree after the crash");
    }
    Checked {
        values,
        unaudited,
        leftover_temp,
    }
}

/// The tenant's audit history is the chain of its writes: created at 1 by the PUT, then one
/// PATCH per value, each entry's `before` the previous entry's `after`, the newest `after`
/// the stored value. With [`Audit::FileFirst`] a write may lack its entry if it is one of
/// `unacked` (stored, never acknowledged); returns how many lack one.
fn check_history(
    api: &Api,
    tenant: &str,
    value: u64,
    unacked: &BTreeSet<u64>,
    audit: Audit,
) -> usize {
    let history = api.get_json(&format!(
        "/api/v1/tenants/{tenant}/history?limit={HISTORY_MAX}"
    ));
    let entries = history["entries"].as_array().unwrap();
    assert!(!entries.is_empty(), "{tenant}: no history");
    let newest =
        || serde_json::to_string_pretty(&entries[entries.len().saturating_sub(3)..]).unwrap();
    let mut missing = Vec::new();
    let mut missing_entry = |v: u64, what: String| {
        assert!(
            audit == Audit::FileFirst && unacked.contains(&v),
            "{tenant}: {what} ({audit:?} store; unacknowledged writes stored: {unacked:?})"
        );
        missing.push(v);
    };
    for entry in entries {
        let after = number(&entry["after"]["mysql_connections"]);
        match &entry["before"] {
            Value::Null => assert_eq!(after, 1, "{tenant}: created at 1: {entry}"),
            before => assert_eq!(
                after,
                number(&before["mysql_connections"]) + 1,
                "{tenant}: each PATCH adds one: {entry}"
            ),
        }
    }
    for pair in entries.windows(2) {
        if pair[1]["before"] != pair[0]["after"] {
            let ended = number(&pair[0]["after"]["mysql_connections"]);
            let starts = number(&pair[1]["before"]["mysql_connections"]);
            let what = format!(
                "audit entry {} starts at {starts}, but the one before it ({}) ended at {ended}",
                pair[1]["id"], pair[0]["id"]
            );
            assert_eq!(starts, ended + 1, "{tenant}: {what}");
            missing_entry(starts, what);
        }
    }
    if value <= HISTORY_MAX {
        assert_eq!(
            entries[0]["before"],
            Value::Null,
            "{tenant}: starts at its creation"
        );
    }
    let last = number(&entries.last().unwrap()["after"]["mysql_connections"]);
    if last != value {
        let what = format!("the newest audit entry ends at {last}, the stored value is {value}");
        assert_eq!(
            last + 1,
            value,
            "{tenant}: {what}; newest entries:\n{}",
            newest()
        );
        missing_entry(value, what);
    }
    if value <= HISTORY_MAX {
        assert_eq!(
            entries.len() + missing.len(),
            value as usize,
            "{tenant}: one audit entry per stored write; newest entries:\n{}",
            newest()
        );
    }
    missing.len()
}

fn number(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("not a whole number: {v}"))
}

fn prefixed(prefix: &str, path: &Path) -> OsString {
    let mut s = OsString::from(prefix);
    s.push(path);
    s
}

/// An auth file with one admin token, its hash made by `dynalert token hash`.
fn auth_file(dir: &Path) -> PathBuf {
    let out = assert_cmd::Command::cargo_bin("dynalert")
        .unwrap()
        .args(["token", "hash"])
        .write_stdin(format!("{TOKEN}\n"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let hash = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(hash.len(), 64, "{hash:?}");
    let path = dir.join("auth.yaml");
    std::fs::write(
        &path,
        format!("tokens:\n  - name: crash-test\n    sha256: {hash}\n    role: admin\n"),
    )
    .unwrap();
    path
}

/// The management API as the admin.
#[derive(Clone)]
struct Api {
    client: reqwest::blocking::Client,
    base: String,
}

impl Api {
    fn new(port: u16) -> Api {
        let client = reqwest::blocking::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Api {
            client,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    fn get(&self, path: &str) -> reqwest::Result<(u16, String)> {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()?;
        let status = r.status().as_u16();
        Ok((status, r.text()?))
    }

    fn get_json(&self, path: &str) -> Value {
        let (status, body) = self.get(path).unwrap();
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
    ) -> reqwest::Result<(u16, String)> {
        let content_type = if method == reqwest::Method::PATCH {
            "application/merge-patch+json"
        } else {
            "application/json"
        };
        let r = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body.to_string())
            .send()?;
        let status = r.status().as_u16();
        Ok((status, r.text()?))
    }
}
