//! Runs the real `dynalert serve` binary on a loopback port for integration tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use dynalert_testkit::{ChildGuard, Http, free_port};

pub struct Served {
    pub port: u16,
    pub http: Http,
    child: ChildGuard,
}

impl Served {
    /// Starts `dynalert serve` on `dir` and waits until `/ready` answers 200.
    pub fn start(dir: &Path, log_dir: &Path) -> Served {
        Served::start_with(&["--config-dir".as_ref(), dir.as_os_str()], log_dir)
    }

    /// Starts `dynalert serve ARGS` (a store and options; not `--listen`) with its log in
    /// `log_dir`, and waits until `/ready` answers 200.
    pub fn start_with(args: &[&std::ffi::OsStr], log_dir: &Path) -> Served {
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dynalert"));
        cmd.arg("serve")
            .args(args)
            .args(["--listen", &format!("127.0.0.1:{port}")]);
        let mut child = ChildGuard::spawn("dynalert", cmd, &log_dir.join("dynalert.log")).unwrap();
        let http = Http::new().unwrap();
        let url = format!("http://127.0.0.1:{port}/ready");
        child
            .wait_ready(&http, &url, Duration::from_secs(20))
            .unwrap();
        Served { port, http, child }
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(&format!("http://127.0.0.1:{}{path}", self.port), &[])
            .unwrap();
        (r.status, r.body)
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.exit_status().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < timeout,
                "no exit {timeout:?} after SIGTERM:\n{}",
                self.child.log_tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_tail(&self) -> String {
        self.child.log_tail()
    }

    pub fn metrics(&self) -> String {
        self.get("/metrics").1
    }

    /// Polls `/metrics` until `line` is there; returns how long that took.
    pub fn wait_for_line(&self, line: &str, timeout: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let body = self.metrics();
            if body.lines().any(|l| l == line) {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < timeout,
                "{line:?} did not appear within {timeout:?}; last body:\n{body}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
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
