//! A real Redis server (Debian `redis-server`) on 127.0.0.1, in memory only.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

use crate::child::ChildGuard;
use crate::probed::{run, spawn_probed};

const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How many items one `RPUSH` carries in [`Redis::rpush`] (keeps the command line short).
const RPUSH_BATCH: usize = 1000;

/// A running `redis-server` without persistence, killed on drop.
pub struct Redis {
    // Field order matters: the process must be killed before its directory is removed.
    child: ChildGuard,
    port: u16,
    cli: PathBuf,
    _dir: TempDir,
}

impl Redis {
    /// Starts Redis and waits until it answers `PING`. `Ok(None)` when Redis is not
    /// installed and components are not required (see [`crate::require_binary`]).
    pub fn start() -> Result<Option<Redis>> {
        let (Some(server), Some(cli)) = (
            crate::require_binary("redis-server"),
            crate::require_binary("redis-cli"),
        ) else {
            return Ok(None);
        };
        let dir = tempfile::Builder::new()
            .prefix("dynalert-redis-")
            .tempdir()
            .context("creating a temporary directory for Redis")?;
        let (child, port) = spawn_probed(
            "redis-server",
            &dir.path().join("redis.log"),
            READY_TIMEOUT,
            "Address already in use",
            |port| {
                let mut command = Command::new(&server);
                command
                    .args(["--port", &port.to_string()])
                    .args(["--bind", "127.0.0.1"])
                    .args(["--save", ""])
                    .args(["--appendonly", "no"])
                    .arg("--dir")
                    .arg(dir.path());
                command
            },
            |port| {
                cli_command(&cli, port)
                    .arg("PING")
                    .stdin(std::process::Stdio::null())
                    .output()
                    .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "PONG")
            },
        )?;
        Ok(Some(Redis {
            child,
            port,
            cli,
            _dir: dir,
        }))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`, the form redis_exporter's `--redis.addr` takes.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn log_path(&self) -> &Path {
        self.child.log_path()
    }

    /// Runs one command with `redis-cli` and returns its raw reply text. A Redis error reply
    /// (`ERR …`) is an error here.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        let mut command = cli_command(&self.cli, self.port);
        command.args(args);
        let output = run(command, "redis-cli")?;
        let reply = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        if reply.starts_with("ERR") || reply.starts_with("WRONGTYPE") {
            bail!("redis-cli {args:?} answered {reply}");
        }
        Ok(reply)
    }

    /// Appends `count` items (`item-0`, `item-1`, …) to list `key`; returns its new length.
    pub fn rpush(&self, key: &str, count: usize) -> Result<u64> {
        let mut length = self.llen(key)?;
        let items: Vec<String> = (0..count).map(|i| format!("item-{i}")).collect();
        for batch in items.chunks(RPUSH_BATCH) {
            let mut args = vec!["RPUSH", key];
            args.extend(batch.iter().map(String::as_str));
            let reply = self.cli(&args)?;
            length = reply
                .parse()
                .with_context(|| format!("RPUSH answered {reply:?}, not a length"))?;
        }
        Ok(length)
    }

    /// The length of list `key` (0 when it does not exist).
    pub fn llen(&self, key: &str) -> Result<u64> {
        let reply = self.cli(&["LLEN", key])?;
        reply
            .parse()
            .with_context(|| format!("LLEN answered {reply:?}, not a length"))
    }
}

/// `redis-cli` talking to 127.0.0.1:<port>, with raw (undecorated) replies.
fn cli_command(cli: &Path, port: u16) -> Command {
    let mut command = Command::new(cli);
    command
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .arg("--raw");
    command
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RedisExporter;

    #[test]
    fn a_pushed_list_is_exported_as_a_key_size() {
        let Some(redis) = Redis::start().unwrap() else {
            return;
        };
        assert_eq!(redis.llen("q").unwrap(), 0);
        assert_eq!(redis.rpush("q", 2500).unwrap(), 2500);
        assert_eq!(redis.llen("q").unwrap(), 2500);
        let Some(exporter) = RedisExporter::start(&redis.url(), &["db0=q"]).unwrap() else {
            return;
        };
        let metrics = exporter.metrics().unwrap();
        assert!(
            metrics
                .lines()
                .any(|l| l == r#"redis_key_size{db="db0",key="q"} 2500"#),
            "{metrics}"
        );
    }
}
