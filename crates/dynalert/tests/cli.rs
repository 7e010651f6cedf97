//! The CLI as a user runs it: exit codes, diagnostics format, golden output.

use assert_cmd::Command;

fn dynalert() -> Command {
    let mut cmd = Command::cargo_bin("dynalert").unwrap();
    // Paths in output are relative to where the user runs the command: the workspace root.
    cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    cmd
}

fn stdout_of(cmd: &mut Command, code: i32) -> String {
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn lint_clean_examples_exit_zero() {
    let out = stdout_of(dynalert().args(["lint", "examples/conf.d"]), 0);
    assert_eq!(out, "");
}

#[test]
fn lint_reports_every_problem_with_position() {
    let out = stdout_of(dynalert().args(["lint", "examples/broken-conf.d"]), 1);
    insta::assert_snapshot!(out);
}

#[test]
fn lint_json_carries_file_line_column_tenant_and_key() {
    let out = stdout_of(
        dynalert().args(["lint", "examples/broken-conf.d", "--format", "json"]),
        1,
    );
    let diags: serde_json::Value = serde_json::from_str(&out).unwrap();
    let typo = diags
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["key"] == "mysql_conections")
        .expect("the typo is reported");
    assert_eq!(typo["file"], "examples/broken-conf.d/values.yaml");
    assert_eq!(typo["level"], "error");
    assert!(typo["line"].as_u64().unwrap() > 0 && typo["col"].as_u64().unwrap() > 0);
    assert!(
        typo["message"]
            .as_str()
            .unwrap()
            .contains("did you mean \"mysql_connections\"")
    );
}

#[test]
fn lint_usage_errors_exit_two() {
    let out = dynalert().args(["lint", "no/such/dir"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no/such/dir"));
    let out = dynalert().args(["lint"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn show_table_at_an_instant() {
    let out = stdout_of(
        dynalert().args([
            "show",
            "db-a",
            "--config-dir",
            "examples/conf.d",
            "--at",
            "2026-11-18T22:30:00Z",
        ]),
        0,
    );
    insta::assert_snapshot!(out);
}

#[test]
fn show_json_and_schedule_states() {
    let out = stdout_of(
        dynalert().args([
            "show",
            "db-a",
            "--config-dir",
            "examples/conf.d",
            "--at",
            "2026-11-21T12:00:00Z",
            "--format",
            "json",
        ]),
        0,
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let threads = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == "mysql_threads_running")
        .unwrap();
    assert_eq!(threads["state"], "scheduled");
    assert_eq!(
        threads["value"],
        serde_json::Value::Null,
        "the weekend window disables it"
    );
}

#[test]
fn show_unknown_tenant_suggests() {
    let out = dynalert()
        .args(["show", "db-x", "--config-dir", "examples/conf.d"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean \"db-a\""));
}

#[test]
fn output_into_a_closed_pipe_keeps_the_exit_code_and_does_not_panic() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    // `dynalert lint conf.d | head`: the reader is gone before anything is written.
    let show = ["show", "db-a", "--config-dir", "examples/conf.d"];
    let show_json = [&show[..], &["--format", "json"]].concat();
    let commands: [(&[&str], i32); 5] = [
        (&["lint", "examples/broken-conf.d"], 1),
        (&["lint", "examples/broken-conf.d", "--format", "json"], 1),
        (&show, 0),
        (&show_json, 0),
        (&["token", "hash"], 0),
    ];
    for (args, code) in commands {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut child = Command::new(env!("CARGO_BIN_EXE_dynalert"))
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(writer)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // `token hash` reads its token here; the others never read and see it closed.
        let _ = child.stdin.take().unwrap().write_all(b"a-token\n");
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("error:"), "{args:?}: {stderr}");
    }
}

/// One convention for every subcommand that reads thresholds: `--config-dir DIR` or
/// `--store URL` (lint keeps the positional directory as a shorthand).
#[test]
fn lint_and_show_read_config_dir_or_store() {
    let positional = stdout_of(dynalert().args(["lint", "examples/broken-conf.d"]), 1);
    let flag = stdout_of(
        dynalert().args(["lint", "--config-dir", "examples/broken-conf.d"]),
        1,
    );
    assert_eq!(positional, flag);

    let db = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", db.path().join("t.db").display());
    stdout_of(
        dynalert().args(["store", "import", "examples/conf.d", "--store", &store]),
        0,
    );
    assert_eq!(
        stdout_of(dynalert().args(["lint", "--store", &store]), 0),
        ""
    );
    let at = ["--at", "2026-12-07T03:00:00Z", "--format", "json"];
    let from_dir = stdout_of(
        dynalert()
            .args(["show", "db-a", "--config-dir", "examples/conf.d"])
            .args(at),
        0,
    );
    let from_store = stdout_of(
        dynalert()
            .args(["show", "db-a", "--store", &store])
            .args(at),
        0,
    );
    assert_eq!(from_dir, from_store);

    let twice = dynalert()
        .args(["lint", "examples/conf.d", "--config-dir", "examples/conf.d"])
        .output()
        .unwrap();
    assert_ne!(twice.status.code(), Some(0));
    let neither = dynalert().args(["lint"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&neither.stderr).contains("--config-dir DIR or --store URL"),
        "{}",
        String::from_utf8_lossy(&neither.stderr)
    );
}
