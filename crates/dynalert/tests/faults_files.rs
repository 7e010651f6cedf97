//! Fault suite (issue 18): hostile files in the conf.d tree, against the real binary. A FIFO,
//! `/dev/zero` behind a symlink, an oversized file, symlinks out of the tree holding a secret,
//! an unreadable subdirectory and a file name that is not UTF-8 are each reported by name,
//! never read or quoted, the rest of the tree keeps being served and reloaded, and the process
//! still stops on SIGTERM. Every wait polls for a positive signal (a line on `/metrics`, a
//! diagnostic in `/ready`); the timeouts only bound how long a failing run takes.
#![cfg(unix)]

mod common;

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Served, write};
use dynalert_testkit::{ChildGuard, Http, free_port};

/// How long a failing run waits before it reports what it last saw.
const GIVE_UP: Duration = Duration::from_secs(15);

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

/// Polls `probe` until it returns `Ok`; panics with its last `Err` after [`GIVE_UP`].
fn wait_until<T>(what: &str, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    loop {
        match probe() {
            Ok(value) => return value,
            Err(last) if start.elapsed() > GIVE_UP => {
                panic!("{what}: not seen within {GIVE_UP:?}; last:\n{last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(25)),
        }
    }
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

/// `dynalert serve` started through a wrapper (`setpriv`, `prlimit`) or with extra
/// arguments: what `common::Served` does, for the cases that change how the process runs.
struct Wrapped {
    child: ChildGuard,
    http: Http,
    port: u16,
}

impl Wrapped {
    fn start(wrapper: &[&str], conf: &Path, log_dir: &Path, extra: &[&str]) -> Wrapped {
        let port = free_port();
        let binary = env!("CARGO_BIN_EXE_dynalert");
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(binary);
                cmd
            }
            None => Command::new(binary),
        };
        cmd.args(["serve", "--config-dir"])
            .arg(conf)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(extra);
        let mut child = ChildGuard::spawn("dynalert", cmd, &log_dir.join("dynalert.log")).unwrap();
        let http = Http::new().unwrap();
        let url = format!("http://127.0.0.1:{port}/ready");
        child.wait_ready(&http, &url, GIVE_UP).unwrap();
        Wrapped { child, http, port }
    }

    fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(&format!("http://127.0.0.1:{}{path}", self.port), &[])
            .unwrap();
        (r.status, r.body)
    }

    fn wait_for_line(&self, line: &str) {
        wait_until(&format!("/metrics line {line:?}"), || {
            let body = self.get("/metrics").1;
            match body.lines().any(|l| l == line) {
                true => Ok(()),
                false => Err(body),
            }
        });
    }

    /// Peak resident memory of the process so far (`VmHWM`), in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let hwm = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .expect("VmHWM in /proc/PID/status");
        hwm.trim().trim_end_matches("kB").trim().parse().unwrap()
    }
}

#[test]
fn a_fifo_stalls_neither_the_reload_loop_nor_the_shutdown() {
    let (dir, conf) = tree();
    let mut served = Served::start(&conf, dir.path());
    served.wait_for_line(&line("a", "70"), GIVE_UP);

    // Nobody ever writes to it: a blocking open would hang the reload worker for good.
    mkfifo(&conf.join("x.yaml"));
    wait_for_diagnostic(
        |p| served.get(p),
        "x.yaml:1:1: error: not a regular file (a FIFO)",
    );
    write(&conf, "a.yaml", &tenant("a", 75));
    served.wait_for_line(&line("a", "75"), GIVE_UP);

    // A FIFO swapped in for a good file: reported, and the last good content stays served.
    std::fs::remove_file(conf.join("a.yaml")).unwrap();
    mkfifo(&conf.join("a.yaml"));
    wait_for_diagnostic(|p| served.get(p), "a.yaml:1:1: error: not a regular file");
    assert!(served.metrics().lines().any(|l| l == line("a", "75")));
    write(&conf, "b.yaml", &tenant("b", 60));
    served.wait_for_line(&line("b", "60"), GIVE_UP);

    let status = served.terminate(GIVE_UP);
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
    let served = Wrapped::start(wrapper, &conf, dir.path(), &["--max-file-size", "64KiB"]);
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
    let peak = served.peak_rss_kib();
    eprintln!("peak RSS with /dev/zero present: {peak} KiB");
    assert!(peak < 256 * 1024, "peak RSS {peak} KiB");
}

#[test]
fn a_file_over_the_size_limit_is_refused_and_its_last_good_content_stays() {
    let (dir, conf) = tree();
    write(&conf, "g.yaml", &tenant("g", 70));
    let served = Served::start(&conf, dir.path());
    served.wait_for_line(&line("g", "70"), GIVE_UP);

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
    served.wait_for_line(&line("b", "60"), GIVE_UP);
    served.wait_for_line(&line("a", "70"), GIVE_UP);
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
    let served = Wrapped::start(wrapper, &conf, dir.path(), &[]);
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
    served.wait_for_line(&line("a", "70"), GIVE_UP);
    let name = std::ffi::OsStr::from_bytes(b"b\xff.yaml");
    std::fs::write(conf.join(name), tenant("b", 60)).unwrap();
    let expected = "b\u{FFFD}.yaml:1:1: error: name is not valid UTF-8; not read (rename it)";
    wait_for_diagnostic(|p| served.get(p), expected);
    write(&conf, "c.yaml", &tenant("c", 30));
    served.wait_for_line(&line("c", "30"), GIVE_UP);

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
