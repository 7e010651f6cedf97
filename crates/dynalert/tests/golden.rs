//! What users see, pinned byte for byte on the two example trees: `/metrics` and
//! `/api/v1/config` of a running `dynalert serve`, `lint` (text and JSON), `show` (every
//! tenant, table and JSON) and `rules render` (every format). Restructuring the pipeline must
//! leave every one of these unchanged; a deliberate change of output updates the snapshot in
//! the same commit (`cargo insta review`).
//!
//! The server runs under `faketime`, so schedules and expiries resolve at the same instant on
//! every run; the CLI commands take that instant as `--at`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use dynalert_testkit::{ChildGuard, Http, free_port, require_binary};

/// A Monday, 11:00 in Taipei: inside the example's business-hours window.
const AT: &str = "2026-12-07T03:00:00Z";
const FAKETIME_AT: &str = "@2026-12-07 03:00:00";
const TREES: [&str; 2] = ["examples/conf.d", "examples/broken-conf.d"];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs the binary from the workspace root (so paths in its output are the README's),
/// returning what a user sees: exit code, stdout and stderr.
fn run(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_dynalert"))
        .args(args)
        .current_dir(workspace_root())
        .output()
        .unwrap();
    format!(
        "exit: {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn snapshot_name(tree: &str, what: &str) -> String {
    format!("{}__{what}", tree.trim_start_matches("examples/"))
}

#[test]
fn lint_text_and_json() {
    for tree in TREES {
        insta::assert_snapshot!(snapshot_name(tree, "lint_text"), run(&["lint", tree]));
        insta::assert_snapshot!(
            snapshot_name(tree, "lint_json"),
            run(&["lint", tree, "--format", "json"])
        );
    }
}

#[test]
fn show_every_tenant() {
    for tree in TREES {
        let mut out = String::new();
        for tenant in tenants_of(tree) {
            for format in ["text", "json"] {
                out += &format!("=== show {tenant} --format {format}\n");
                out += &run(&[
                    "show",
                    &tenant,
                    "--config-dir",
                    tree,
                    "--at",
                    AT,
                    "--format",
                    format,
                ]);
            }
        }
        insta::assert_snapshot!(snapshot_name(tree, "show"), out);
    }
}

/// The tenants `show --format json` can be asked about: those `lint`'s model serves, read from
/// the tree's files by a pattern simple enough for the examples (two-space tenant entries
/// under `tenants:`).
fn tenants_of(tree: &str) -> Vec<String> {
    let mut names = std::collections::BTreeSet::new();
    for entry in walk(&workspace_root().join(tree)) {
        let text = std::fs::read_to_string(entry).unwrap_or_default();
        let mut in_tenants = false;
        for line in text.lines() {
            if !line.starts_with(' ') && !line.is_empty() && !line.starts_with('#') {
                in_tenants = line.trim_end() == "tenants:";
            } else if in_tenants
                && let Some(name) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(':'))
                && !name.starts_with([' ', '#'])
            {
                names.insert(name.trim_matches(['"', '\'']).to_string());
            }
        }
    }
    names.into_iter().collect()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

#[test]
fn rules_render_every_format() {
    for format in ["files", "configmap", "prometheusrule"] {
        let out = tempfile::tempdir().unwrap();
        let status = run(&[
            "rules",
            "render",
            "--format",
            format,
            "--out",
            out.path().to_str().unwrap(),
        ]);
        let mut text = status.replace(out.path().to_str().unwrap(), "OUT");
        for file in walk(out.path()) {
            let rel = file.strip_prefix(out.path()).unwrap().display().to_string();
            text += &format!("=== {rel}\n{}", std::fs::read_to_string(&file).unwrap());
        }
        insta::assert_snapshot!(format!("rules_render_{format}"), text);
    }
}

#[test]
fn served_metrics_and_config() {
    let Some(faketime) = require_binary("faketime") else {
        return;
    };
    for tree in TREES {
        let logs = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut cmd = Command::new(&faketime);
        cmd.args(["-f", FAKETIME_AT, env!("CARGO_BIN_EXE_dynalert")])
            .args(["serve", "--config-dir", tree])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .current_dir(workspace_root());
        let mut child = ChildGuard::spawn("dynalert", cmd, &logs.path().join("serve.log")).unwrap();
        let http = Http::new().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        child
            .wait_ready(&http, &format!("{base}/health"), Duration::from_secs(20))
            .unwrap();
        let config = wait_loaded(&http, &base);
        let metrics = http.get(&format!("{base}/metrics"), &[]).unwrap().body;
        insta::assert_snapshot!(snapshot_name(tree, "metrics"), stable_metrics(&metrics));
        insta::assert_snapshot!(snapshot_name(tree, "api_config"), stable_config(config));
        let at = http
            .get(&format!("{base}/api/v1/config"), &[("at", AT)])
            .unwrap();
        insta::assert_snapshot!(
            snapshot_name(tree, "api_config_at"),
            stable_config(at.json().unwrap())
        );
    }
}

/// `/api/v1/config` once the first load is done (a broken tree never makes `/ready` 200).
fn wait_loaded(http: &Http, base: &str) -> serde_json::Value {
    let start = std::time::Instant::now();
    loop {
        let r = http.get(&format!("{base}/api/v1/config"), &[]).unwrap();
        // 200 from the start, saying `loading` until the first load is done.
        if r.status == 200 {
            let config: serde_json::Value = r.json().unwrap();
            if config["status"] != "loading" {
                return config;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(20), "never loaded");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The exposition without the figures that differ from run to run even at a fixed clock: the
/// process's own resource use and the durations of its work.
fn stable_metrics(body: &str) -> String {
    const VOLATILE: [&str; 4] = ["process_", "dynalert_build_info", "_seconds", "_bytes"];
    body.lines()
        .filter(|line| {
            let name = line
                .trim_start_matches("# HELP ")
                .trim_start_matches("# TYPE ")
                .split(['{', ' '])
                .next()
                .unwrap_or("");
            !VOLATILE
                .iter()
                .any(|v| name.starts_with(v) || name.contains(v))
        })
        .map(|line| format!("{line}\n"))
        .collect()
}

/// `/api/v1/config` with wall-clock instants blanked (the clock is fixed, but it runs on from
/// there: a load and a request take a few milliseconds of it). An explicit `?at=` stays.
fn stable_config(mut config: serde_json::Value) -> String {
    blank_instants(&mut config);
    serde_json::to_string_pretty(&config).unwrap() + "\n"
}

fn blank_instants(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                let instant = key == "at" || (key.ends_with("_at") && !key.starts_with("next"));
                if instant && v.is_string() && v != AT {
                    *v = "<instant>".into();
                } else {
                    blank_instants(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(blank_instants),
        _ => {}
    }
}
