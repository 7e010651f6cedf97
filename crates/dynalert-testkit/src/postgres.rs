//! A real PostgreSQL server (Debian `postgresql`) on 127.0.0.1 with a throw-away data
//! directory.
//!
//! PostgreSQL refuses to run as root, and CI runs as root: then `initdb` and `postgres` run as
//! the `postgres` user the Debian package creates (through `setpriv`, which execs, so the
//! child we hold is the server itself), in a temporary directory handed to that user.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

use crate::child::ChildGuard;
use crate::components;
use crate::probed::{run, running_as_root, spawn_probed};

/// The server accepts connections ~0.1 s after it starts here; a busy 2-core CI machine can
/// take far longer, and the timeout only matters when something is wrong.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the immediate shutdown on drop may take before the server is killed (the
/// postmaster itself SIGKILLs children still running after 5 s).
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The superuser `initdb` creates; every connection uses it (authentication is `trust`).
const SUPERUSER: &str = "dynalert";

/// The database [`Postgres::url`] points at, created at start.
const DATABASE: &str = "dynalert";

/// The account the server runs as when the tests run as root (created by Debian's package).
const SERVER_ACCOUNT: &str = "postgres";

/// A running `postgres` server with its data directory in a temporary directory, shut down
/// (immediately: the data is thrown away) on drop.
///
/// It listens on `127.0.0.1:<port>` and on a Unix socket in its directory, trusts every
/// connection, and keeps PostgreSQL's durability defaults (`fsync` on), so killing it
/// mid-write behaves like a real crash. `max_connections` is 200. [`Postgres::stop`] and
/// [`Postgres::restart`] take it down and bring it back on the same data and port (an outage
/// its clients must ride out).
pub struct Postgres {
    // Field order matters: the process must be stopped before its directory is removed.
    child: ChildGuard,
    port: u16,
    psql: PathBuf,
    server: PathBuf,
    pg_isready: PathBuf,
    run_as: RunAs,
    /// Starts so far, numbering the log files of restarts.
    starts: u32,
    dir: TempDir,
}

impl Postgres {
    /// Initialises a data directory (`initdb`), starts `postgres`, waits until it accepts
    /// connections and creates the `dynalert` database. `Ok(None)` when PostgreSQL is not
    /// installed and components are not required (see [`crate::require_binary`]).
    pub fn start() -> Result<Option<Postgres>> {
        let (Some(initdb), Some(server), Some(psql), Some(pg_isready)) = (
            require_postgres_binary("initdb"),
            require_postgres_binary("postgres"),
            require_postgres_binary("psql"),
            require_postgres_binary("pg_isready"),
        ) else {
            return Ok(None);
        };
        let dir = tempfile::Builder::new()
            .prefix("dynalert-postgres-")
            .tempdir()
            .context("creating a temporary directory for PostgreSQL")?;
        let run_as = RunAs::for_this_process()?;
        run_as.hand_over(dir.path())?;
        let datadir = dir.path().join("data");

        let mut init = run_as.command(&initdb, dir.path());
        init.arg("-D")
            .arg(&datadir)
            .args(["-U", SUPERUSER, "--auth=trust"])
            // C collation needs no generated locales, so a minimal machine works too.
            .args(["--encoding=UTF8", "--locale=C"])
            // Only skips initdb's own final fsync; the server keeps fsync on.
            .arg("--no-sync");
        run(init, "initdb").context(run_as.describe())?;

        let (child, port) = spawn_probed(
            "postgres",
            &dir.path().join("postgres.log"),
            READY_TIMEOUT,
            "Address already in use",
            |port| server_command(&run_as, &server, dir.path(), port),
            |port| accepts_connections(&pg_isready, port),
        )?;
        let postgres = Postgres {
            child,
            port,
            psql,
            server,
            pg_isready,
            run_as,
            starts: 1,
            dir,
        };
        postgres.create_database(DATABASE)?;
        Ok(Some(postgres))
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://dynalert@127.0.0.1:<port>/dynalert`.
    pub fn url(&self) -> String {
        self.database_url(DATABASE)
    }

    /// `postgres://dynalert@127.0.0.1:<port>/<database>`.
    pub fn database_url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates database `name` and returns its URL, so tests sharing one server can each
    /// have their own. `name` is limited to ASCII letters, digits, `_` and `-` (it goes into
    /// SQL and the URL unquoted by the caller).
    pub fn create_database(&self, name: &str) -> Result<String> {
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            bail!("database name {name:?} must be ASCII letters, digits, `_` or `-`");
        }
        // Connect to `postgres`, never `template1`: CREATE DATABASE copies template1 and
        // fails while anyone is connected to it.
        self.psql_in("postgres", &format!("CREATE DATABASE \"{name}\""))?;
        Ok(self.database_url(name))
    }

    /// Runs `sql` with `psql -c` in the `dynalert` database; see [`Postgres::psql_in`].
    pub fn psql(&self, sql: &str) -> Result<String> {
        self.psql_in(DATABASE, sql)
    }

    /// Runs `sql` with `psql -c` in `database` and returns the output unaligned, without
    /// headers (columns separated by `|`, one row a line), trimmed. Several statements run
    /// in one transaction and only the last one's rows are printed. An SQL error is an error.
    pub fn psql_in(&self, database: &str, sql: &str) -> Result<String> {
        let mut command = Command::new(&self.psql);
        command
            // -X: no ~/.psqlrc; -A -t: bare values; -q: no command tags.
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", SUPERUSER, "-d", database, "-c", sql]);
        let output = run(command, "psql")?;
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// The server's (postmaster's) process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The data directory (`PGDATA`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log_path(&self) -> &Path {
        self.child.log_path()
    }

    /// Shuts the server down (a fast shutdown: clients are disconnected, the data is
    /// checkpointed) and waits until it has exited and its port is closed. The data directory
    /// stays, for [`Postgres::restart`].
    pub fn stop(&mut self) -> Result<()> {
        if self.child.exit_status()?.is_some() {
            return Ok(());
        }
        signal(self.child.id(), "INT");
        let deadline = Instant::now() + READY_TIMEOUT;
        while self.child.exit_status()?.is_none() {
            if Instant::now() >= deadline {
                bail!(
                    "postgres did not stop within {READY_TIMEOUT:?}; log {}:\n{}",
                    self.log_path().display(),
                    self.child.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Starts the server again on the same data directory and port (after [`Postgres::stop`])
    /// and waits until it accepts connections. Fails if another process took the port
    /// meanwhile. Each start logs to its own file.
    pub fn restart(&mut self) -> Result<()> {
        if self.child.exit_status()?.is_none() {
            bail!("postgres is still running: stop it first");
        }
        self.starts += 1;
        let log = self
            .dir
            .path()
            .join(format!("postgres.{}.log", self.starts));
        let command = server_command(&self.run_as, &self.server, self.dir.path(), self.port);
        self.child = ChildGuard::spawn("postgres", command, &log)?;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.exit_status()? {
                bail!(
                    "postgres exited ({status}) before it was ready again on port {}; log {}:\n{}",
                    self.port,
                    log.display(),
                    self.child.log_tail()
                );
            }
            if accepts_connections(&self.pg_isready, self.port) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "postgres was not ready again on port {} after {READY_TIMEOUT:?}; log {}:\n{}",
                    self.port,
                    log.display(),
                    self.child.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The command that runs the server on `dir`'s data directory and `port`.
fn server_command(run_as: &RunAs, server: &Path, dir: &Path, port: u16) -> Command {
    let mut command = run_as.command(server, dir);
    command
        .arg("-D")
        .arg(dir.join("data"))
        // The socket goes in our directory: Debian's default, /var/run/postgresql, may not
        // exist or belong to another server.
        .arg("-k")
        .arg(dir)
        .args(["-c", "listen_addresses=127.0.0.1"])
        .args(["-p", &port.to_string()])
        .args(["-c", "max_connections=200"]);
    command
}

/// Sends `SIG<name>` to `pid`. No signal API in std and no libc dependency: the shell's
/// `kill` builtin is always there. Errors are ignored: the caller watches the process.
fn signal(pid: u32, name: &str) {
    let _ = Command::new("sh")
        .args([
            "-c",
            &format!("kill -{name} \"$1\""),
            "sh",
            &pid.to_string(),
        ])
        .status();
}

impl Drop for Postgres {
    /// An immediate shutdown (SIGQUIT): the postmaster stops its backends, removes its shared
    /// memory and exits within milliseconds. Not a fast shutdown (SIGINT): its checkpoint
    /// fsyncs every file the test wrote (2.5-6 s after three CREATE DATABASEs) for a data
    /// directory deleted right after. Not [`ChildGuard`]'s SIGKILL alone either: that leaves
    /// the backends running for a while and the System V shared memory segment behind, piling
    /// up over test runs. If the shutdown hangs, the guard's SIGKILL follows.
    fn drop(&mut self) {
        if !matches!(self.child.exit_status(), Ok(None)) {
            return; // already gone (and reaped): its pid may belong to someone else now
        }
        signal(self.child.id(), "QUIT");
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            match self.child.exit_status() {
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Ok(Some(_)) | Err(_) => break,
            }
        }
    }
}

/// Like [`crate::require_binary`], but looks in PostgreSQL's version directories first so
/// that all programs come from the newest installed version.
fn require_postgres_binary(name: &str) -> Option<PathBuf> {
    components::find_postgres_executable(name).or_else(|| crate::require_binary(name))
}

/// Whether the server on `port` accepts connections: the TCP port is open and `pg_isready`
/// says so (it answers "rejecting connections" while the server is still recovering).
fn accepts_connections(pg_isready: &Path, port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
        return false;
    }
    Command::new(pg_isready)
        .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
        // An existing role and database, so the probe logs no authentication errors.
        .args(["-U", SUPERUSER, "-d", "postgres", "-t", "2"])
        .stdin(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Which account runs `initdb` and `postgres`.
enum RunAs {
    /// This process's own account (not root).
    Myself,
    /// We are root: the `postgres` account, switched to with `setpriv` (util-linux).
    ServerAccount { setpriv: PathBuf },
}

impl RunAs {
    fn for_this_process() -> Result<Self> {
        if !running_as_root() {
            return Ok(RunAs::Myself);
        }
        let setpriv = components::find_executable("setpriv").context(
            "the tests run as root, which PostgreSQL refuses, and `setpriv` (util-linux) is \
             missing to run it as the `postgres` user",
        )?;
        Ok(RunAs::ServerAccount { setpriv })
    }

    /// Gives `dir` to the account the server runs as, so it can create its data directory
    /// and socket there (the directory is 0700, so ownership also makes it traversable).
    fn hand_over(&self, dir: &Path) -> Result<()> {
        if let RunAs::ServerAccount { .. } = self {
            let mut chown = Command::new("chown");
            chown
                .arg("-R")
                .arg(format!("{SERVER_ACCOUNT}:{SERVER_ACCOUNT}"))
                .arg(dir);
            run(chown, "chown").context(self.describe())?;
        }
        Ok(())
    }

    /// A command running `program` as this account, in `cwd` (a directory it can enter:
    /// initdb complains when it cannot read its working directory).
    fn command(&self, program: &Path, cwd: &Path) -> Command {
        let mut command = match self {
            RunAs::Myself => Command::new(program),
            RunAs::ServerAccount { setpriv } => {
                // setpriv execs `program`, so the process we spawn (and signal on drop) is
                // the server itself, not a wrapper waiting for it like runuser or su.
                let mut command = Command::new(setpriv);
                command
                    .arg(format!("--reuid={SERVER_ACCOUNT}"))
                    .arg(format!("--regid={SERVER_ACCOUNT}"))
                    .arg("--init-groups")
                    .arg("--")
                    .arg(program);
                command
            }
        };
        command.current_dir(cwd);
        command
    }

    fn describe(&self) -> String {
        match self {
            RunAs::Myself => "running PostgreSQL as the current user".to_owned(),
            RunAs::ServerAccount { .. } => format!(
                "running PostgreSQL as the `{SERVER_ACCOUNT}` user, because the tests run as \
                 root (the account comes with Debian's postgresql package)"
            ),
        }
    }
}
