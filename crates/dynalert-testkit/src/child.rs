//! [`ChildGuard`]: a process under test that logs to a file and dies with its guard.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::http::Http;

/// How many lines of a process's log an error message quotes.
const LOG_TAIL_LINES: usize = 40;

/// A spawned process whose stdout and stderr go to a log file, killed and reaped on drop.
///
/// Do not keep one in a `static`: statics are never dropped, so the process would outlive the
/// test run.
pub struct ChildGuard {
    name: String,
    child: Child,
    log_path: PathBuf,
}

impl ChildGuard {
    /// Spawns `command` with stdin closed and stdout + stderr written to `log_path`
    /// (created or truncated). `name` is used in messages.
    pub fn spawn(name: &str, mut command: Command, log_path: &Path) -> Result<Self> {
        let log = File::create(log_path)
            .with_context(|| format!("creating log file {}", log_path.display()))?;
        let log_err = log.try_clone().context("duplicating the log file handle")?;
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .with_context(|| format!("spawning {name}: {command:?}"))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log_path: log_path.to_owned(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The operating system's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last lines the process wrote, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }

    /// `Some(status)` once the process has exited, without blocking.
    pub fn exit_status(&mut self) -> Result<Option<ExitStatus>> {
        self.child
            .try_wait()
            .with_context(|| format!("checking whether {} is alive", self.name))
    }

    /// Polls `url` until it answers 2xx. Fails with the log tail if the process exits first
    /// or `timeout` passes.
    pub fn wait_ready(&mut self, http: &Http, url: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exit_status()? {
                bail!(
                    "{} exited ({status}) before it was ready on {url}; log {}:\n{}",
                    self.name,
                    self.log_path.display(),
                    self.log_tail()
                );
            }
            let last_answer = match http.get(url, &[]) {
                Ok(response) if response.is_success() => return Ok(()),
                Ok(response) => format!("HTTP {}: {}", response.status, response.body),
                Err(error) => format!("{error:#}"),
            };
            if Instant::now() >= deadline {
                bail!(
                    "{} was not ready on {url} after {timeout:?} (last answer: {last_answer}); log {}:\n{}",
                    self.name,
                    self.log_path.display(),
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        // Errors are ignored: the process may already have exited, and a drop cannot report.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a server on a fresh free port and waits until `ready_path` answers 2xx, logging
/// to `log_path`; returns it and its port. `command_for_port` builds the command for a port.
///
/// [`crate::free_port`] can race with another process grabbing the same port between our
/// probe and the server's bind, so a start that dies with "address already in use" (in any
/// letter case: Go and Rust spell it differently) is retried on a new port a few times.
pub fn spawn_ready(
    name: &str,
    http: &Http,
    log_path: &Path,
    ready_path: &str,
    timeout: Duration,
    command_for_port: impl Fn(u16) -> Command,
) -> Result<(ChildGuard, u16)> {
    const ATTEMPTS: usize = 3;
    for attempt in 1..=ATTEMPTS {
        let port = crate::free_port();
        let mut guard = ChildGuard::spawn(name, command_for_port(port), log_path)?;
        match guard.wait_ready(
            http,
            &format!("http://127.0.0.1:{port}{ready_path}"),
            timeout,
        ) {
            Ok(()) => return Ok((guard, port)),
            Err(error)
                if attempt < ATTEMPTS
                    && guard.exit_status()?.is_some()
                    && guard
                        .log_tail()
                        .to_ascii_lowercase()
                        .contains("address already in use") =>
            {
                drop(error);
            }
            Err(error) => return Err(error),
        }
    }
    unreachable!("the last attempt returns")
}
