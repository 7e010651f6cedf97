//! Starting servers that do not speak HTTP (MariaDB, Redis): readiness is a command-line probe.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::child::ChildGuard;

/// Starts a server on a fresh free port and runs `probe(port)` every 100 ms until it returns
/// `true`. Fails with the log tail if the process exits first or `timeout` passes.
///
/// Like the HTTP starters, a start that dies because another process took the port between
/// [`crate::free_port`] and the bind is retried on a new port (`bind_error` is the text the
/// server logs then).
pub(crate) fn spawn_probed(
    name: &str,
    log_path: &Path,
    timeout: Duration,
    bind_error: &str,
    command_for_port: impl Fn(u16) -> Command,
    probe: impl Fn(u16) -> bool,
) -> Result<(ChildGuard, u16)> {
    const ATTEMPTS: usize = 3;
    for attempt in 1..=ATTEMPTS {
        let port = crate::free_port();
        let mut guard = ChildGuard::spawn(name, command_for_port(port), log_path)?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = guard.exit_status()? {
                if attempt < ATTEMPTS && guard.log_tail().contains(bind_error) {
                    break; // retry on another port
                }
                bail!(
                    "{name} exited ({status}) before it was ready on port {port}; log {}:\n{}",
                    log_path.display(),
                    guard.log_tail()
                );
            }
            if probe(port) {
                return Ok((guard, port));
            }
            if Instant::now() >= deadline {
                bail!(
                    "{name} was not ready on port {port} after {timeout:?}; log {}:\n{}",
                    log_path.display(),
                    guard.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    bail!("{name} could not bind a free port in {ATTEMPTS} attempts")
}

/// Runs `command` to completion, failing with its stderr (and stdout) if it does not succeed.
pub(crate) fn run(mut command: Command, what: &str) -> Result<Output> {
    let output = command
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("running {what}: {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{what} failed ({}): {command:?}\nstderr: {}\nstdout: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim(),
            String::from_utf8_lossy(&output.stdout).trim()
        );
    }
    Ok(output)
}

/// Whether this process runs as root (uid 0), judged by the owner of `/proc/self`.
pub(crate) fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}
