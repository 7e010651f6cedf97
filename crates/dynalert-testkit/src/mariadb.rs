//! A real MariaDB server (Debian `mariadb-server`) on 127.0.0.1 with a throw-away datadir, and
//! real client connections to load it with.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

use crate::child::ChildGuard;
use crate::probed::{run, running_as_root, spawn_probed};

/// Starting MariaDB on a busy 2-core CI machine takes a few seconds; be generous.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The account mysqld_exporter logs in with (`'exporter'@'127.0.0.1'`), with the grants its
/// documentation asks for.
pub const EXPORTER_USER: &str = "exporter";
const EXPORTER_PASSWORD: &str = "exporter-pw";
/// The account [`MariaDb::open_idle_connections`] uses (`'app'@'127.0.0.1'`, no privileges).
pub const APP_USER: &str = "app";
const APP_PASSWORD: &str = "app-pw";

/// A running `mariadbd` with its datadir in a temporary directory, killed on drop.
///
/// It listens on `127.0.0.1:<port>` (TCP, name resolution off) and on a Unix socket in its
/// directory, where `root` logs in without a password for administration
/// ([`MariaDb::execute`]). `max_connections` is 500.
pub struct MariaDb {
    // Field order matters: the process must be killed before its directory is removed.
    child: ChildGuard,
    port: u16,
    client: PathBuf,
    dir: TempDir,
}

impl MariaDb {
    /// Initialises a datadir (`mariadb-install-db`), starts `mariadbd` and waits until the
    /// exporter account can log in over TCP. `Ok(None)` when MariaDB is not installed and
    /// components are not required (see [`crate::require_binary`]).
    pub fn start() -> Result<Option<MariaDb>> {
        let (Some(server), Some(install_db), Some(client)) = (
            crate::require_binary("mariadbd"),
            crate::require_binary("mariadb-install-db"),
            crate::require_binary("mariadb"),
        ) else {
            return Ok(None);
        };
        let dir = tempfile::Builder::new()
            .prefix("dynalert-mariadb-")
            .tempdir()
            .context("creating a temporary directory for MariaDB")?;
        let datadir = dir.path().join("data");
        // mariadbd refuses to run as root unless told to; as another user it runs as itself.
        let user_arg = running_as_root().then_some("--user=root");

        let mut install = Command::new(&install_db);
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", datadir.display()))
            // root@localhost gets an empty password instead of unix_socket authentication,
            // so the test process can administer the server whatever user it runs as.
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db")
            .args(user_arg);
        run(install, "mariadb-install-db")?;

        // Accounts are created at start-up, before the server accepts connections, so a
        // successful exporter login below means they all exist.
        let init_file = dir.path().join("init.sql");
        std::fs::write(
            &init_file,
            format!(
                "CREATE USER IF NOT EXISTS '{EXPORTER_USER}'@'127.0.0.1' IDENTIFIED BY '{EXPORTER_PASSWORD}';\n\
                 GRANT PROCESS, REPLICATION CLIENT, SELECT ON *.* TO '{EXPORTER_USER}'@'127.0.0.1';\n\
                 CREATE USER IF NOT EXISTS '{APP_USER}'@'127.0.0.1' IDENTIFIED BY '{APP_PASSWORD}';\n"
            ),
        )
        .with_context(|| format!("writing {}", init_file.display()))?;

        let socket = dir.path().join("mysqld.sock");
        let pid_file = dir.path().join("mysqld.pid");
        let (child, port) = spawn_probed(
            "mariadbd",
            &dir.path().join("mariadbd.log"),
            READY_TIMEOUT,
            "Address already in use",
            |port| {
                let mut command = Command::new(&server);
                command
                    .arg("--no-defaults")
                    .args(user_arg)
                    .arg(format!("--datadir={}", datadir.display()))
                    .arg(format!("--socket={}", socket.display()))
                    .arg(format!("--pid-file={}", pid_file.display()))
                    .arg(format!("--init-file={}", init_file.display()))
                    .arg(format!("--port={port}"))
                    .arg("--bind-address=127.0.0.1")
                    .arg("--skip-name-resolve")
                    .arg("--max-connections=500")
                    .arg("--innodb-buffer-pool-size=32M")
                    .arg("--skip-log-bin");
                command
            },
            |port| {
                let mut probe = tcp_client(&client, port, EXPORTER_USER, EXPORTER_PASSWORD);
                probe.args(["--connect-timeout=2", "-e", "SELECT 1"]);
                probe
                    .stdin(std::process::Stdio::null())
                    .output()
                    .is_ok_and(|output| output.status.success())
            },
        )?;
        Ok(Some(MariaDb {
            child,
            port,
            client,
            dir,
        }))
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The Unix socket `root` can log in on.
    pub fn socket_path(&self) -> PathBuf {
        self.dir.path().join("mysqld.sock")
    }

    pub fn log_path(&self) -> &Path {
        self.child.log_path()
    }

    /// mysqld_exporter's `DATA_SOURCE_NAME` for the exporter account:
    /// `exporter:<pw>@(127.0.0.1:<port>)/`.
    pub fn exporter_dsn(&self) -> String {
        format!(
            "{EXPORTER_USER}:{EXPORTER_PASSWORD}@(127.0.0.1:{})/",
            self.port
        )
    }

    /// Runs `sql` as root over the Unix socket and returns the output in batch form (tab
    /// separated, no column names).
    pub fn execute(&self, sql: &str) -> Result<String> {
        let mut command = Command::new(&self.client);
        command
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.socket_path().display()))
            .args(["-uroot", "--batch", "--skip-column-names", "-e", sql]);
        let output = run(command, "the mariadb client")?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// A global status variable as a number, e.g. `Threads_connected`.
    pub fn global_status(&self, name: &str) -> Result<f64> {
        let text = self.execute(&format!("SHOW GLOBAL STATUS LIKE '{name}'"))?;
        let value = text
            .split('\t')
            .nth(1)
            .with_context(|| format!("no status variable {name:?}: {text:?}"))?;
        value
            .trim()
            .parse()
            .with_context(|| format!("status {name} = {value:?} is not a number"))
    }

    /// Opens `count` client connections that stay connected and idle (each a `mariadb`
    /// client process running `SELECT SLEEP(3600)` as the `app` account), and waits until
    /// the server lists them all. They close when the returned guard drops.
    pub fn open_idle_connections(&self, count: usize) -> Result<ClientConnections> {
        let log_dir = tempfile::Builder::new()
            .prefix("dynalert-mariadb-clients-")
            .tempdir()
            .context("creating a temporary directory for client logs")?;
        let mut clients = Vec::with_capacity(count);
        for index in 0..count {
            let mut command = tcp_client(&self.client, self.port, APP_USER, APP_PASSWORD);
            command.args(["-e", "SELECT SLEEP(3600)"]);
            clients.push(ChildGuard::spawn(
                &format!("mariadb client {index}"),
                command,
                &log_dir.path().join(format!("client-{index}.log")),
            )?);
        }
        let connections = ClientConnections {
            clients,
            _log_dir: log_dir,
        };
        let query = format!(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = '{APP_USER}'"
        );
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let connected: usize = self.execute(&query)?.trim().parse().unwrap_or(0);
            if connected >= count {
                return Ok(connections);
            }
            if Instant::now() >= deadline {
                let first = &connections.clients[0];
                bail!(
                    "only {connected} of {count} client connections are open after \
                     {READY_TIMEOUT:?}; first client's log:\n{}",
                    first.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Idle client connections from [`MariaDb::open_idle_connections`]; closed on drop.
pub struct ClientConnections {
    clients: Vec<ChildGuard>,
    _log_dir: TempDir,
}

impl ClientConnections {
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }
}

/// A `mariadb` client command logging in over TCP on 127.0.0.1 (not the socket).
fn tcp_client(client: &Path, port: u16, user: &str, password: &str) -> Command {
    let mut command = Command::new(client);
    command
        .arg("--no-defaults")
        .arg("--protocol=TCP")
        .arg("--host=127.0.0.1")
        .arg(format!("--port={port}"))
        .arg(format!("--user={user}"))
        .arg(format!("--password={password}"));
    command
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MysqldExporter;

    #[test]
    fn idle_connections_show_in_the_exporters_threads_connected() {
        let Some(mariadb) = MariaDb::start().unwrap() else {
            return;
        };
        let Some(exporter) = MysqldExporter::start(&mariadb.exporter_dsn()).unwrap() else {
            return;
        };
        let connections = mariadb.open_idle_connections(5).unwrap();
        assert_eq!(connections.len(), 5);
        assert!(mariadb.global_status("Threads_connected").unwrap() >= 6.0);
        let metrics = exporter.metrics().unwrap();
        let connected: f64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix("mysql_global_status_threads_connected "))
            .unwrap_or_else(|| panic!("no threads_connected in:\n{metrics}"))
            .parse()
            .unwrap();
        assert!(connected >= 6.0, "{connected}");
    }
}
