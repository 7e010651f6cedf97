//! The real components the test suite runs, and the Debian package each comes from.
//!
//! This is the one list: `dynalert-testkit` uses it to name the package in "not installed"
//! messages, and `xtask` includes this very file (via `#[path]`) to decide what to
//! `apt-get install`. Keep it free of dependencies and of `crate::` paths for that reason, and
//! free of tests (they are in `lib.rs`): xtask would compile and run them again, so one
//! failing test would count twice in `cargo xtask test`'s summary.
//!
//! To add a component to the suite, add its package here; `cargo xtask test` then installs it
//! on a fresh machine.

use std::path::{Path, PathBuf};

/// A Debian package and the executables the suite needs from it.
#[derive(Debug, Clone, Copy)]
pub struct DebianPackage {
    /// Package name for `apt-get install`.
    pub package: &'static str,
    /// Executables the tests look up by name; any one missing triggers the install.
    pub binaries: &'static [&'static str],
}

/// Every Debian package the test suite needs.
///
/// PostgreSQL's server programs (`initdb`, `postgres`) live under
/// `/usr/lib/postgresql/<version>/bin`, not on PATH; [`find_executable`] searches there too.
pub const DEBIAN_PACKAGES: &[DebianPackage] = &[
    DebianPackage {
        package: "prometheus",
        binaries: &["prometheus", "promtool"],
    },
    DebianPackage {
        package: "prometheus-pushgateway",
        binaries: &["prometheus-pushgateway"],
    },
    DebianPackage {
        package: "victoria-metrics",
        binaries: &["vmalert"],
    },
    DebianPackage {
        package: "prometheus-alertmanager",
        binaries: &["prometheus-alertmanager"],
    },
    DebianPackage {
        package: "mariadb-server",
        // mariadbd lives in /usr/sbin (found through the fallback directories).
        binaries: &["mariadbd", "mariadb-install-db"],
    },
    DebianPackage {
        package: "mariadb-client",
        binaries: &["mariadb"],
    },
    DebianPackage {
        package: "prometheus-mysqld-exporter",
        binaries: &["prometheus-mysqld-exporter"],
    },
    DebianPackage {
        package: "redis-server",
        binaries: &["redis-server"],
    },
    DebianPackage {
        package: "redis-tools",
        binaries: &["redis-cli"],
    },
    DebianPackage {
        package: "prometheus-redis-exporter",
        binaries: &["prometheus-redis-exporter"],
    },
    DebianPackage {
        package: "postgresql",
        // initdb and postgres are found under /usr/lib/postgresql/<version>/bin; psql and
        // pg_isready come from postgresql-client, which postgresql depends on.
        binaries: &["initdb", "postgres", "psql", "pg_isready"],
    },
    DebianPackage {
        // Fixes the clock of a `dynalert serve` under test, so output that depends on the
        // time (schedules, expiries) can be compared byte for byte.
        package: "faketime",
        binaries: &["faketime"],
    },
];

/// Directories searched after `$PATH`: a root shell under `sudo` or a minimal CI environment
/// may have a short PATH, while Debian puts some daemons in `sbin`.
const FALLBACK_DIRS: &[&str] = &["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"];

/// Where Debian installs each PostgreSQL major version's programs, one `<version>/bin` each.
const POSTGRES_LIB_DIR: &str = "/usr/lib/postgresql";

/// The Debian package that ships `binary`, if it is one the suite knows.
pub fn package_for_binary(binary: &str) -> Option<&'static str> {
    DEBIAN_PACKAGES
        .iter()
        .find(|p| p.binaries.contains(&binary))
        .map(|p| p.package)
}

/// Looks `name` up on `$PATH`, then in the usual system directories, then in PostgreSQL's
/// version directories (highest version first).
pub fn find_executable(name: &str) -> Option<PathBuf> {
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    path_dirs
        .into_iter()
        .chain(FALLBACK_DIRS.iter().map(PathBuf::from))
        .chain(postgres_bin_dirs())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// Looks up a PostgreSQL program in `/usr/lib/postgresql/<version>/bin` first (highest
/// version first), then like [`find_executable`].
///
/// Taking server and client programs from one version directory keeps them matched, and
/// skips Debian's `/usr/bin/psql` wrapper script and any hand-made symlinks on PATH.
pub fn find_postgres_executable(name: &str) -> Option<PathBuf> {
    postgres_bin_dirs()
        .into_iter()
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
        .or_else(|| find_executable(name))
}

/// The `bin` directories of the installed PostgreSQL versions, highest version first
/// (`16` before `15` before `9.6`; names that are not versions are ignored).
pub fn postgres_bin_dirs() -> Vec<PathBuf> {
    let names: Vec<String> = std::fs::read_dir(POSTGRES_LIB_DIR)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    highest_version_first(names)
        .into_iter()
        .map(|version| Path::new(POSTGRES_LIB_DIR).join(version).join("bin"))
        .collect()
}

/// Keeps the names that are versions (`15`, `9.6`) and sorts them numerically, highest first.
pub(crate) fn highest_version_first(names: Vec<String>) -> Vec<String> {
    let mut versions: Vec<(Vec<u32>, String)> = names
        .into_iter()
        .filter_map(|name| {
            let key = name
                .split('.')
                .map(|part| part.parse().ok())
                .collect::<Option<Vec<u32>>>()?;
            Some((key, name))
        })
        .collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    versions.into_iter().map(|(_, name)| name).collect()
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
