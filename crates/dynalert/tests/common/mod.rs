//! The one way these tests run the real `dynalert serve` binary: [`Launch`] says how (its
//! arguments, working directory, a wrapper such as `faketime`, the readiness path), and
//! [`Served`] is the running process on a free loopback port, handed over once it answers
//! ready and killed with SIGKILL when dropped. Plus [`wait_until`], the one polling loop for
//! anything a test expects to happen.

#![allow(dead_code)]

use std::ffi::OsString;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use dynalert_testkit::{ChildGuard, Http, spawn_ready};

/// How long a test waits for something it expects (readiness, a change being served, an
/// exit) before it fails saying what never happened. A guard against hanging, not a
/// measurement: how fast the server is belongs to the benchmarks (`dynalert-bench`).
pub const WAIT: Duration = Duration::from_secs(30);
/// Pause between two looks at a condition being waited for.
const POLL: Duration = Duration::from_millis(25);

/// Polls `probe` until it returns `Ok`, and returns that. After [`WAIT`] fails with `what`
/// and the last `Err`, which should say what was seen instead.
pub fn wait_until<T>(what: &str, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        match probe() {
            Ok(value) => return value,
            Err(last) => assert!(
                Instant::now() < deadline,
                "{what}: never happened (gave up after {WAIT:?}); last seen:\n{last}"
            ),
        }
        std::thread::sleep(POLL);
    }
}

/// How to run `dynalert serve`. The launcher adds `--listen 127.0.0.1:<free port>`.
pub struct Launch {
    args: Vec<OsString>,
    log: PathBuf,
    cwd: Option<PathBuf>,
    wrapper: Option<(PathBuf, Vec<OsString>)>,
    ready_path: &'static str,
}

impl Launch {
    /// `dynalert serve --config-dir DIR`, logging to `LOG_DIR/dynalert.log`.
    pub fn config_dir(dir: &Path, log_dir: &Path) -> Launch {
        Launch::args(
            [OsString::from("--config-dir"), dir.into()],
            &log_dir.join("dynalert.log"),
        )
    }

    /// `dynalert serve ARGS`, logging to `log`.
    pub fn args<S: Into<OsString>>(args: impl IntoIterator<Item = S>, log: &Path) -> Launch {
        Launch {
            args: args.into_iter().map(Into::into).collect(),
            log: log.to_path_buf(),
            cwd: None,
            wrapper: None,
            ready_path: "/ready",
        }
    }

    /// Runs it in `cwd` (where relative paths and the default store `dynalert.db` resolve).
    pub fn current_dir(mut self, cwd: &Path) -> Launch {
        self.cwd = Some(cwd.to_path_buf());
        self
    }

    /// Runs it as `PROGRAM ARGS dynalert serve …` (for instance `faketime -f AT`).
    pub fn under(mut self, program: &Path, args: &[&str]) -> Launch {
        self.wrapper = Some((program.to_path_buf(), args.iter().map(Into::into).collect()));
        self
    }

    /// Ready once `path` answers 2xx, instead of `/ready` (which a tree with errors never
    /// makes 200: `/health` then).
    pub fn ready_at(mut self, path: &'static str) -> Launch {
        self.ready_path = path;
        self
    }

    /// Starts it and waits until it is ready, on a new port if another process took the
    /// first one; panics with its log if it exits first or is not ready within [`WAIT`].
    pub fn start(self) -> Served {
        let http = Http::new().unwrap();
        let command = |port: u16| {
            let dynalert = env!("CARGO_BIN_EXE_dynalert");
            let mut cmd = match &self.wrapper {
                Some((program, args)) => {
                    let mut cmd = Command::new(program);
                    cmd.args(args).arg(dynalert);
                    cmd
                }
                None => Command::new(dynalert),
            };
            cmd.arg("serve")
                .args(&self.args)
                .args(["--listen", &format!("127.0.0.1:{port}")]);
            if let Some(cwd) = &self.cwd {
                cmd.current_dir(cwd);
            }
            // A group of its own, so that a wrapper that forks (faketime does) dies with it.
            cmd.process_group(0);
            cmd
        };
        let (child, port) =
            spawn_ready("dynalert", &http, &self.log, self.ready_path, WAIT, command)
                .unwrap_or_else(|e| panic!("{e:#}"));
        Served {
            port,
            http,
            child,
            reaped: false,
        }
    }
}

/// A running `dynalert serve`; dropping it kills it (and its wrapper) with SIGKILL.
pub struct Served {
    pub port: u16,
    http: Http,
    child: ChildGuard,
    /// Whether the child's exit was collected (its process group is gone then).
    reaped: bool,
}

impl Served {
    /// `dynalert serve --config-dir DIR`, logging to `LOG_DIR/dynalert.log`, once ready.
    pub fn start(dir: &Path, log_dir: &Path) -> Served {
        Launch::config_dir(dir, log_dir).start()
    }

    /// Starts `dynalert serve ARGS` (a store and options; not `--listen`) with its log in
    /// `log_dir`, and waits until `/ready` answers 200.
    pub fn start_with(args: &[&std::ffi::OsStr], log_dir: &Path) -> Served {
        Launch::args(args.iter().copied(), &log_dir.join("dynalert.log")).start()
    }

    /// The process id of the server (of its wrapper, for a wrapper that forks).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn http(&self) -> &Http {
        &self.http
    }

    /// `GET path`: status and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        let r = self.http.get(&self.url(path), &[]).unwrap();
        (r.status, r.body)
    }

    /// `GET path`, which must answer 200 with JSON.
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "GET {path}: {body}\nlog:\n{}", self.log_tail());
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    pub fn metrics(&self) -> String {
        let (status, body) = self.get("/metrics");
        assert_eq!(status, 200, "{body}\nlog:\n{}", self.log_tail());
        body
    }

    /// Polls `/metrics` until `done` holds and returns that body.
    pub fn wait_for_metrics(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        wait_until(what, || {
            let body = self.metrics();
            if done(&body) { Ok(body) } else { Err(body) }
        })
    }

    /// Polls `/metrics` until it has the exact line `line`.
    pub fn wait_for_line(&self, line: &str) -> String {
        self.wait_for_metrics(&format!("a /metrics with {line:?}"), |body| {
            body.lines().any(|l| l == line)
        })
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = wait_until("an exit after SIGTERM", || {
            self.child
                .exit_status()
                .unwrap()
                .ok_or_else(|| self.child.log_tail())
        });
        self.reaped = true;
        status
    }

    pub fn log_tail(&self) -> String {
        self.child.log_tail()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        // The process group [`Launch::start`] made; the child itself is then reaped by its
        // guard. A group already gone is not an error worth reporting from a drop.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &group])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

pub fn write(root: &Path, rel: &str, text: &str) -> PathBuf {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    // Write then rename, as editors and git do, so the server never reads half a file.
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    path
}
