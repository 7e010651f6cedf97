//! What the server's integration tests share: [`Server`], the one way they run `dynalert serve`
//! in-process; reading `/metrics` samples; and the small conf.d most of them serve.
// Each test binary compiles this module and uses only part of it.
#![allow(dead_code, unused_imports)]

mod exposition;
mod server;

pub use exposition::{Sample, samples, series, threshold};
pub use server::{NO_RESCAN, Reply, Server, WAIT};

pub const DEFAULTS: &str = "defaults:\n  mysql_connections: 80\n  redis_memory_usage: 85\n";

pub fn tenant(name: &str, connections: u32) -> String {
    format!("tenants:\n  {name}:\n    mysql_connections: {connections}\n")
}

/// A conf.d with `_defaults.yaml` and tenant `db-a` (mysql_connections 70) in `a.yaml`.
pub fn conf_d() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("_defaults.yaml"), DEFAULTS).unwrap();
    std::fs::write(dir.path().join("a.yaml"), tenant("db-a", 70)).unwrap();
    dir
}
