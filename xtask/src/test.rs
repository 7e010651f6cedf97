//! `cargo xtask test`: the one command that runs the whole suite, on a fresh Debian 12 machine
//! (as root, no stdin, `CI=true`) or on a developer's machine.
//!
//! Steps: install missing components → `cargo fmt --check` → clippy with `-D warnings` →
//! tests (nextest when installed, plus doc tests; else `cargo test`) with
//! `DYNALERT_REQUIRE_COMPONENTS=1`, so a component test fails instead of skipping → a closing
//! `summary: N passed, N failed, N skipped` line. Zero tests executed is a failure.

use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::thread;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::deps;
use crate::summary::{self, Counts};

#[derive(Args)]
pub struct TestArgs {
    /// Skip `cargo fmt --check` and clippy.
    #[arg(long)]
    skip_lint: bool,
    /// Do not install missing Debian packages (component tests then fail or skip; see
    /// DYNALERT_REQUIRE_COMPONENTS in the testkit).
    #[arg(long)]
    skip_install: bool,
    /// Use `cargo test` even when cargo-nextest is installed.
    #[arg(long)]
    no_nextest: bool,
    /// Test name filters, passed to the test runner.
    filters: Vec<String>,
}

pub fn run(args: &TestArgs) -> Result<()> {
    let started = Instant::now();
    let root = crate::workspace_root();
    if !args.skip_install {
        deps::ensure_installed()?;
    }
    if !args.skip_lint {
        crate::cargo_step(&root, &["fmt", "--all", "--", "--check"])
            .context("formatting differs: run `cargo fmt --all`")?;
        crate::cargo_step(
            &root,
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        )
        .context("clippy found problems")?;
    }

    let use_nextest = !args.no_nextest && nextest_available(&root);
    let mut runs = Vec::new();
    if use_nextest {
        let mut nextest = vec!["nextest", "run", "--workspace", "--no-fail-fast"];
        nextest.extend(args.filters.iter().map(String::as_str));
        runs.push(run_tests(&root, &nextest)?);
        runs.push(run_tests(
            &root,
            &with_filters(&["test", "--workspace", "--doc"], &args.filters),
        )?);
    } else {
        runs.push(run_tests(
            &root,
            &with_filters(&["test", "--workspace", "--no-fail-fast"], &args.filters),
        )?);
    }

    let mut counts = Counts::default();
    let mut failures = Vec::new();
    for run in &runs {
        counts += run.counts.unwrap_or_default();
        match (run.success, run.counts) {
            (true, _) => {}
            (false, Some(_)) => failures.push(run.command.clone()),
            (false, None) => failures.push(format!(
                "{} (no test results: it did not build or did not start)",
                run.command
            )),
        }
    }
    let runner = if use_nextest {
        "cargo nextest + doc tests"
    } else {
        "cargo test"
    };
    println!(
        "\nxtask test: {runner}, {:.1}s in all",
        started.elapsed().as_secs_f64()
    );
    println!(
        "summary: {} passed, {} failed, {} skipped",
        counts.passed, counts.failed, counts.skipped
    );
    if !failures.is_empty() {
        bail!("failed: {}", failures.join("; "));
    }
    if counts.executed() == 0 {
        bail!("no test was executed: the suite must run at least one test");
    }
    Ok(())
}

fn with_filters<'a>(base: &[&'a str], filters: &'a [String]) -> Vec<&'a str> {
    let mut args = base.to_vec();
    if !filters.is_empty() {
        args.push("--");
        args.extend(filters.iter().map(String::as_str));
    }
    args
}

fn nextest_available(root: &Path) -> bool {
    crate::cargo()
        .args(["nextest", "--version"])
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

struct TestRun {
    command: String,
    success: bool,
    counts: Option<Counts>,
}

/// Runs a test command, echoing its output live while keeping the lines for the summary.
fn run_tests(root: &Path, args: &[&str]) -> Result<TestRun> {
    let command = format!("cargo {}", args.join(" "));
    println!("==> {command}");
    let mut cmd = crate::cargo();
    cmd.args(args)
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if std::env::var_os("DYNALERT_REQUIRE_COMPONENTS").is_none() {
        cmd.env("DYNALERT_REQUIRE_COMPONENTS", "1");
    }
    if std::io::stdout().is_terminal() && std::env::var_os("CARGO_TERM_COLOR").is_none() {
        cmd.env("CARGO_TERM_COLOR", "always"); // piping would otherwise turn colours off
    }
    let mut child = cmd.spawn().with_context(|| format!("running {command}"))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (out_lines, err_lines) = thread::scope(|scope| {
        let out = scope.spawn(|| tee(stdout, std::io::stdout()));
        let err = scope.spawn(|| tee(stderr, std::io::stderr()));
        (out.join(), err.join())
    });
    let status = child
        .wait()
        .with_context(|| format!("waiting for {command}"))?;
    let mut lines = out_lines.expect("stdout reader panicked");
    lines.extend(err_lines.expect("stderr reader panicked"));
    Ok(TestRun {
        command,
        success: status.success(),
        counts: summary::parse(&lines),
    })
}

/// Copies `from` to `to` line by line and returns the lines (lossily decoded).
fn tee(from: impl Read, mut to: impl Write) -> Vec<String> {
    let mut reader = BufReader::new(from);
    let mut lines = Vec::new();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let _ = to.write_all(&buf);
                let _ = to.flush();
                lines.push(String::from_utf8_lossy(&buf).trim_end().to_owned());
            }
        }
    }
    lines
}
