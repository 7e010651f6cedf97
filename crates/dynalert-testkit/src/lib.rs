//! Test-only helpers for dynalert's integration tests: free loopback ports, finding the real
//! components (Prometheus, Pushgateway, vmalert, …) installed from Debian packages, and running
//! them as child processes on 127.0.0.1 with temporary directories, stopped when the handle
//! drops; and a static `/metrics` endpoint for exporters the machine cannot run.
//!
//! A component that is not installed makes the test print `SKIPPED: …` and return early on a
//! developer machine, and panic when `DYNALERT_REQUIRE_COMPONENTS` or `CI` is set
//! (`cargo xtask test` sets the former and installs the packages first):
//!
//! ```no_run
//! use dynalert_testkit::{Prometheus, ScrapeTarget};
//!
//! let Some(prom) = Prometheus::start(&[ScrapeTarget::new("dynalert", 9000)], None).unwrap() else {
//!     return; // skipped: prometheus is not installed
//! };
//! let samples = prom.query_samples("vector(1)").unwrap();
//! assert_eq!(samples[0].value, 1.0);
//! ```

mod alertmanager;
mod child;
pub mod components;
mod exporters;
mod http;
mod mariadb;
mod postgres;
mod probed;
mod prometheus;
mod pushgateway;
mod redis;
mod rules_api;
mod static_exporter;
mod vmalert;

use std::net::TcpListener;
use std::path::PathBuf;

pub use alertmanager::{Alertmanager, WebhookReceiver};
pub use child::{ChildGuard, spawn_ready};
pub use exporters::{MysqldExporter, RedisExporter};
pub use http::{Http, HttpResponse};
pub use mariadb::{ClientConnections, MariaDb};
pub use postgres::Postgres;
pub use prometheus::{Prometheus, PrometheusBuilder, Sample, ScrapeTarget};
pub use pushgateway::Pushgateway;
pub use redis::Redis;
pub use rules_api::{rule_evaluation_failures, wait_for_healthy_rules};
pub use static_exporter::StaticExporter;
pub use vmalert::Vmalert;

/// Environment variable that turns a missing component from a skip into a test failure.
pub const REQUIRE_COMPONENTS_ENV: &str = "DYNALERT_REQUIRE_COMPONENTS";

/// A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it).
///
/// Another process may take it before you bind it; the server starters in this crate retry
/// on a new port when that happens.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("binding 127.0.0.1:0 to find a free port")
}

/// Whether a missing component must fail the test rather than skip it: true when
/// `DYNALERT_REQUIRE_COMPONENTS` or `CI` is set to anything but empty, `0` or `false`.
pub fn components_required() -> bool {
    [REQUIRE_COMPONENTS_ENV, "CI"].iter().any(|var| {
        std::env::var(var)
            .map(|value| {
                !matches!(
                    value.trim().to_ascii_lowercase().as_str(),
                    "" | "0" | "false"
                )
            })
            .unwrap_or(false)
    })
}

/// The path of executable `name`, looked up on `$PATH` (then `/usr/bin`, `/usr/sbin`, …).
///
/// When it is missing: panics if [`components_required`], otherwise prints a visible
/// `SKIPPED: <name> not installed (apt-get install <package>)` to stderr and returns `None`,
/// so the calling test can return early.
pub fn require_binary(name: &str) -> Option<PathBuf> {
    if let Some(path) = components::find_executable(name) {
        return Some(path);
    }
    let install = match components::package_for_binary(name) {
        Some(package) => format!("apt-get install {package}"),
        None => {
            format!("no Debian package for `{name}` is listed in dynalert-testkit's components.rs")
        }
    };
    if components_required() {
        panic!(
            "\n\n*** COMPONENT MISSING: `{name}` is not installed, and {REQUIRE_COMPONENTS_ENV} or CI \
             says component tests must run, not skip.\n*** Install it: {install}\n*** \
             (`cargo xtask test` installs every component the suite needs.)\n"
        );
    }
    eprintln!("SKIPPED: {name} not installed ({install})");
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_bindable_on_loopback() {
        let port = free_port();
        assert_ne!(port, 0);
        TcpListener::bind(("127.0.0.1", port)).expect("the port was free");
    }

    #[test]
    fn a_missing_binary_skips_or_fails_loudly() {
        let name = "dynalert-no-such-binary";
        if components_required() {
            let panic = std::panic::catch_unwind(|| require_binary(name)).unwrap_err();
            let message = panic
                .downcast_ref::<String>()
                .expect("a formatted panic message");
            assert!(message.contains("COMPONENT MISSING"), "{message}");
            assert!(message.contains(name), "{message}");
        } else {
            assert_eq!(require_binary(name), None);
        }
    }

    #[test]
    fn postgres_versions_sort_numerically_highest_first() {
        let names = ["9.6", "15", "extension", "16", "10"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            components::highest_version_first(names),
            ["16", "15", "10", "9.6"]
        );
    }

    #[test]
    fn known_binaries_name_their_debian_package() {
        assert_eq!(
            components::package_for_binary("promtool"),
            Some("prometheus")
        );
        assert_eq!(
            components::package_for_binary("prometheus-pushgateway"),
            Some("prometheus-pushgateway")
        );
        assert_eq!(
            components::package_for_binary("dynalert-no-such-binary"),
            None
        );
    }
}
