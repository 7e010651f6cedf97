//! Fault suite (issue 18): hostile files in the conf.d tree, against the real binary. A FIFO,
//! `/dev/zero` behind a symlink, an oversized file, symlinks out of the tree holding a secret,
//! an unreadable subdirectory and a file name that is not UTF-8 are each reported by name,
//! never read or quoted, the rest of the tree keeps being served and reloaded, and the process
//! still stops on SIGTERM. Every wait polls for a positive signal (a line on `/metrics`, a
//! diagnostic in `/ready`); the timeouts only bound how long a failing run takes.
#![cfg(unix)]

mod common;

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

use common::{Launch, Served, wait_until, write};

/// In the secret files outside the tree: a tenant name and a block name, so a leak would
/// show as a served tenant, a file's content in the API or a quoted line in a diagnostic.
const SECRET: &str = "secret-marker-5f1c";

const DEFAULTS: &str = "defaults:\n  mysql_connections: 80\n";

fn line(tenant: &str, value: &str) -> String {
    format!(
        "user_threshold{{tenant=\"{tenant}\",component=\"mysql\",metric=\"connections\",severity=\"warning\"}} {value}"
    )
}

fn tenant(name: &str, value: u32) -> String {
    format!("tenants:\n  {name}:\n    mysql_connections: {value}\n")
}

/// A tree with `_defaults.yaml` and `a.yaml` (tenant `a` at 70), world-readable so an
/// unprivileged server can read it too.
fn tree() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let conf = dir.path().join("conf.d");
    write(&conf, "_defaults.yaml", DEFAULTS);
    write(&conf, "a.yaml", &tenant("a", 70));
    (dir, conf)
}

fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo").arg(path).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo {}", path.display());
}

/// Waits until `/ready` (through `get`) lists `diagnostic`, and returns the body.
fn wait_for_diagnostic(get: impl Fn(&str) -> (u16, String), diagnostic: &str) -> String {
    wait_until(&format!("/ready listing {diagnostic:?}"), || {
        let (code, body) = get("/ready");
        match body.contains(diagnostic) {
            true if code == 200 => Ok(body),
            true => Err(format!("HTTP {code} (the rest should stay served)\n{body}")),
            false => Err(body),
        }
    })
}

/// `dynalert serve` started through a wrapper (`setpriv`, `prlimit`) and with extra
/// arguments, by the one launcher.
fn wrapped(wrapper: &[&str], conf: &Path, log_dir: &Path, extra: &[&str]) -> Served {
    let mut args = vec![OsString::from("--config-dir"), conf.into()];
    args.extend(extra.iter().map(OsString::from));
    let launch = Launch::args(args, &log_dir.join("dynalert.log"));
    match wrapper.split_first() {
        Some((program, rest)) => launch.under(Path::new(program), rest),
        None => launch,
    }
    .start()
}

/// Peak resident memory of a process so far (`VmHWM`), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .expect("VmHWM in /proc/PID/status");
    hwm.trim().trim_end_matches("kB").trim().parse().unwrap()
}

#[test]
fn a_fifo_stalls_neither_the_reload_loop_nor_the_shutdown() {
    let (dir, conf) = tree();
    let mut served = Served::start(&conf, dir.path());
    served.wait_for_line(&line("a", "70"));

    // Nobody ever writes to it: a blocking open would hang the reload worker for good.
    mkfifo(&conf.join("x.yaml"));
    wait_for_diagnostic(
        |p| served.get(p),
        "x.yaml:1:1: error: not a regular file (a FIFO)",
    );
    write(&conf, "a.yaml", &tenant("a", 75));
    served.wait_for_line(&line("a", "75"));

    // A FIFO swapped in for a good file: reported, and the last good content stays served.
    std::fs::remove_file(conf.join("a.yaml")).unwrap();
    mkfifo(&conf.join("a.yaml"));
    wait_for_diagnostic(|p| served.get(p), "a.yaml:1:1: error: not a regular file");
    assert!(served.metrics().lines().any(|l| l == line("a", "75")));
    write(&conf, "b.yaml", &tenant("b", 60));
    served.wait_for_line(&line("b", "60"));

    let status = served.terminate();
    assert!(
        status.success(),
        "exit {status:?}; log:\n{}",
        served.log_tail()
    );
}

#[test]
fn dev_zero_behind_a_symlink_is_never_read() {
    let (dir, conf) = tree();
    symlink("/dev/zero", conf.join("zero.yaml")).unwrap();
    // An in-tree device node, where the container lets us make one: refused on its type.
    let node = conf.join("..dev/zero");
    std::fs::create_dir_all(node.parent().unwrap()).unwrap();
    let has_node = Command::new("mknod")
        .arg(&node)
        .args(["c", "1", "5"])
        .status()
        .is_ok_and(|s| s.success());
    if has_node {
        symlink("..dev/zero", conf.join("device.yaml")).unwrap();
    } else {
        eprintln!("mknod not permitted here: the in-tree device case is not checked");
    }
    // Also the serve flag: a small file over a small limit.
    write(&conf, "big.yaml", &"#".repeat(64 * 1024 + 1));
    // Without the guard the server reads /dev/zero until memory runs out; the address-space
    // limit makes such a run fail fast instead of starving the machine.
    let limited: &[&str] = &["prlimit", "--as=1073741824", "--"];
    let wrapper = if dynalert_testkit::components::find_executable("prlimit").is_some() {
        limited
    } else {
        eprintln!("prlimit not found: running without an address-space limit");
        &[]
    };
    let served = wrapped(wrapper, &conf, dir.path(), &["--max-file-size", "64KiB"]);
    wait_for_diagnostic(
        |p| served.get(p),
        "zero.yaml:1:1: error: symlink leads outside the config directory; not read",
    );
    if has_node {
        wait_for_diagnostic(
            |p| served.get(p),
            "device.yaml:1:1: error: not a regular file (a character device)",
        );
    }
    wait_for_diagnostic(
        |p| served.get(p),
        "big.yaml:1:1: error: file is 65537 bytes, over the 65536-byte limit (--max-file-size); not read",
    );
    served.wait_for_line(&line("a", "70"));
    // Reloads with the hostile files present stay cheap as well.
    write(&conf, "a.yaml", &tenant("a", 71));
    served.wait_for_line(&line("a", "71"));
    let peak = peak_rss_kib(served.pid());
    eprintln!("peak RSS with /dev/zero present: {peak} KiB");
    assert!(peak < 256 * 1024, "peak RSS {peak} KiB");
}

#[test]
fn a_file_over_the_size_limit_is_refused_and_its_last_good_content_stays() {
    let (dir, conf) = tree();
    write(&conf, "g.yaml", &tenant("g", 70));
    let served = Served::start(&conf, dir.path());
    served.wait_for_line(&line("g", "70"));

    // Valid YAML (the padding is a comment) one byte over the default 4 MiB.
    let head = tenant("g", 71);
    let padding = "#".repeat((4 << 20) + 1 - head.len() - 1);
    write(&conf, "g.yaml", &format!("{head}{padding}\n"));
    wait_for_diagnostic(
        |p| served.get(p),
        "g.yaml:1:1: error: file is 4194305 bytes, over the 4194304-byte limit (--max-file-size); not read",
    );
    assert!(served.metrics().lines().any(|l| l == line("g", "70")));
    let (_, config) = served.get("/api/v1/config");
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["files"]["g.yaml"], "serving_last_good");
}

#[test]
fn symlinks_out_of_the_tree_are_never_read_or_quoted() {
    let (dir, conf) = tree();
    let secret = dir.path().join("secret");
    write(
        &secret,
        "broken.yaml",
        &format!("{SECRET}-block: hunter2\ntenants:\n  {SECRET}: {{}}\n"),
    );
    write(
        &secret,
        "valid.yaml",
        &format!("tenants:\n  {SECRET}: {{}}\n"),
    );
    write(
        &secret,
        "_platform.yaml",
        &format!("optional: [{}]\n", SECRET.replace('-', "_")),
    );
    symlink(secret.join("broken.yaml"), conf.join("leak.yaml")).unwrap();
    symlink("../secret/valid.yaml", conf.join("leak-valid.yaml")).unwrap();
    symlink("../secret/_platform.yaml", conf.join("_leak.yaml")).unwrap();
    symlink("../secret", conf.join("team")).unwrap();
    // The policy keeps the Kubernetes ConfigMap layout working: symlinks inside the tree.
    write(&conf, "..2026_01_01/b.yaml", &tenant("b", 60));
    symlink("..2026_01_01", conf.join("..data")).unwrap();
    symlink("..data/b.yaml", conf.join("b.yaml")).unwrap();

    let served = Served::start(&conf, dir.path());
    served.wait_for_line(&line("b", "60"));
    served.wait_for_line(&line("a", "70"));
    for refused in ["leak.yaml", "leak-valid.yaml", "_leak.yaml"] {
        wait_for_diagnostic(
            |p| served.get(p),
            &format!("{refused}:1:1: error: symlink leads outside the config directory"),
        );
    }
    wait_for_diagnostic(
        |p| served.get(p),
        "team/:1:1: error: symlink to a directory outside the config directory; not followed",
    );
    // What an unauthenticated reader can fetch.
    for path in [
        "/ready",
        "/metrics",
        "/api/v1/config",
        "/api/v1/platform",
        "/api/v1/tenants",
    ] {
        let (code, body) = served.get(path);
        let folded = body.to_lowercase().replace('_', "-");
        assert!(
            !folded.contains(SECRET) && !body.contains("hunter2"),
            "{path} (HTTP {code}) shows the secret:\n{body}"
        );
    }
}

#[test]
fn an_unreadable_subdirectory_is_reported_as_itself_and_the_rest_served() {
    let (dir, conf) = tree();
    write(&conf, "locked/l.yaml", &tenant("l", 50));
    write(&conf, "team/c.yaml", &tenant("c", 40));
    // Sibling directories: notify's recursive watch stops at the unreadable one, so in
    // directory order some of these come after it and are watched only one by one.
    let siblings: Vec<String> = (0..8).map(|i| format!("sib{i}")).collect();
    for (i, sib) in siblings.iter().enumerate() {
        write(&conf, &format!("{sib}/t.yaml"), &tenant(sib, i as u32));
    }
    let dirs = ["", "locked", "team"]
        .into_iter()
        .chain(siblings.iter().map(String::as_str));
    for sub in dirs {
        std::fs::set_permissions(conf.join(sub), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(conf.join("locked"), std::fs::Permissions::from_mode(0o000)).unwrap();
    // Root reads a chmod 000 directory anyway: run the server as nobody then.
    let as_nobody: &[&str] = &[
        "setpriv",
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        "--",
    ];
    let wrapper: &[&str] = if is_root() { as_nobody } else { &[] };
    if !wrapper.is_empty() && !runs_as_nobody(wrapper) {
        eprintln!(
            "SKIPPED an_unreadable_subdirectory…: running as root and `setpriv --reuid=nobody` cannot run the binary here"
        );
        return;
    }
    let served = wrapped(wrapper, &conf, dir.path(), &[]);
    wait_for_diagnostic(
        |p| served.get(p),
        "locked/:1:1: error: cannot read directory: Permission denied",
    );
    served.wait_for_line(&line("a", "70"));
    served.wait_for_line(&line("c", "40"));
    // Edits anywhere else are still seen (file events, not the 30 s re-scan).
    for (i, sib) in siblings.iter().enumerate() {
        write(
            &conf,
            &format!("{sib}/t.yaml"),
            &tenant(sib, 100 + i as u32),
        );
    }
    for (i, sib) in siblings.iter().enumerate() {
        served.wait_for_line(&line(sib, &(100 + i).to_string()));
    }

    // A directory that turns unreadable: reported as itself, its tenants stay served, and
    // the rest still reloads.
    std::fs::set_permissions(conf.join("team"), std::fs::Permissions::from_mode(0o000)).unwrap();
    wait_for_diagnostic(
        |p| served.get(p),
        "team/:1:1: error: cannot read directory: Permission denied",
    );
    write(&conf, "a.yaml", &tenant("a", 72));
    served.wait_for_line(&line("a", "72"));
    served.wait_for_line(&line("c", "40"));

    // Readable again: watched and read again.
    std::fs::set_permissions(conf.join("team"), std::fs::Permissions::from_mode(0o755)).unwrap();
    write(&conf, "team/c.yaml", &tenant("c", 41));
    served.wait_for_line(&line("c", "41"));
    std::fs::set_permissions(conf.join("locked"), std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// Whether `wrapper` can run the binary (it and the tree must be readable by that user).
fn runs_as_nobody(wrapper: &[&str]) -> bool {
    Command::new(wrapper[0])
        .args(&wrapper[1..])
        .arg(env!("CARGO_BIN_EXE_dynalert"))
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn a_name_that_is_not_utf8_is_reported_alike_by_serve_and_lint() {
    let (dir, conf) = tree();
    let served = Served::start(&conf, dir.path());
    served.wait_for_line(&line("a", "70"));
    let name = std::ffi::OsStr::from_bytes(b"b\xff.yaml");
    std::fs::write(conf.join(name), tenant("b", 60)).unwrap();
    let expected = "b\u{FFFD}.yaml:1:1: error: name is not valid UTF-8; not read (rename it)";
    wait_for_diagnostic(|p| served.get(p), expected);
    write(&conf, "c.yaml", &tenant("c", 30));
    served.wait_for_line(&line("c", "30"));

    let lint = Command::new(env!("CARGO_BIN_EXE_dynalert"))
        .arg("lint")
        .arg(&conf)
        .output()
        .unwrap();
    let stdout = String::from_utf8(lint.stdout).unwrap();
    let shown = format!("{}/{expected}\n", conf.display());
    assert_eq!(stdout, shown, "lint reports what serve reports");
    assert_eq!(lint.status.code(), Some(1));
    let summary = String::from_utf8_lossy(&lint.stderr);
    assert!(summary.contains("2 tenant(s) served"), "{summary}");
}

#[test]
fn lint_applies_its_size_limit() {
    let (_dir, conf) = tree();
    write(
        &conf,
        "big.yaml",
        &format!("{}#{}\n", tenant("b", 1), "x".repeat(2048)),
    );
    let lint = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_dynalert"))
            .arg("lint")
            .args(extra)
            .arg(&conf)
            .output()
            .unwrap()
    };
    let size = std::fs::metadata(conf.join("big.yaml")).unwrap().len();
    let small = lint(&["--max-file-size", "1KiB"]);
    let stdout = String::from_utf8_lossy(&small.stdout);
    let expected = format!("big.yaml:1:1: error: file is {size} bytes, over the 1024-byte limit");
    assert!(stdout.contains(&expected), "{stdout}");
    assert_eq!(small.status.code(), Some(1));
    let default = lint(&[]);
    assert!(default.status.success(), "{default:?}");
}
