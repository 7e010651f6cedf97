//! The real components the test suite runs, and the Debian package each comes from.
//!
//! This is the one list: `dynalert-testkit` uses it to name the package in "not installed"
//! messages, and `xtask` includes this very file (via `#[path]`) to decide what to
//! `apt-get install`. Keep it free of dependencies and of `crate::` paths for that reason.
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
/// Later additions: postgresql (whose server binary lives under
/// `/usr/lib/postgresql/<ver>/bin`, not on PATH).
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
];

/// Directories searched after `$PATH`: a root shell under `sudo` or a minimal CI environment
/// may have a short PATH, while Debian puts some daemons in `sbin`.
const FALLBACK_DIRS: &[&str] = &["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"];

/// The Debian package that ships `binary`, if it is one the suite knows.
pub fn package_for_binary(binary: &str) -> Option<&'static str> {
    DEBIAN_PACKAGES
        .iter()
        .find(|p| p.binaries.contains(&binary))
        .map(|p| p.package)
}

/// Looks `name` up on `$PATH`, then in the usual system directories.
pub fn find_executable(name: &str) -> Option<PathBuf> {
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    path_dirs
        .into_iter()
        .chain(FALLBACK_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
