//! Installing the Debian packages that the component tests run (Prometheus, Pushgateway, …).
//!
//! The package list is dynalert-testkit's `components.rs`, included here by path so that the
//! tests and the installer read one list without xtask compiling the testkit's dependencies.

#[allow(dead_code)] // xtask uses only part of the testkit's module
#[path = "../../crates/dynalert-testkit/src/components.rs"]
mod components;

use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use components::{DEBIAN_PACKAGES, DebianPackage, find_executable};

/// Installs every package that has a binary missing, with `apt-get` (needs root).
pub fn ensure_installed() -> Result<()> {
    let missing: Vec<&DebianPackage> = DEBIAN_PACKAGES
        .iter()
        .filter(|p| !is_installed(p))
        .collect();
    if missing.is_empty() {
        let names: Vec<&str> = DEBIAN_PACKAGES.iter().map(|p| p.package).collect();
        println!("==> components installed: {}", names.join(", "));
        return Ok(());
    }
    let packages: Vec<&str> = missing.iter().map(|p| p.package).collect();
    let install_line = format!(
        "apt-get install -y --no-install-recommends {}",
        packages.join(" ")
    );
    if !is_root()? {
        bail!(
            "the component tests need Debian packages that are not installed: {}.\n\
             Install them as root (`sudo apt-get update && sudo {install_line}`), or run \
             `cargo xtask test` as root, which installs them.",
            packages.join(", ")
        );
    }
    if find_executable("apt-get").is_none() {
        bail!(
            "missing packages {} and no apt-get: the suite expects Debian 12 (or install the \
             equivalents yourself and pass --skip-install)",
            packages.join(", ")
        );
    }
    println!("==> installing components: {}", packages.join(" "));
    apt_get(&["update"])?;
    let mut args = vec!["install", "-y", "--no-install-recommends"];
    args.extend(&packages);
    apt_get(&args)?;

    let still_missing: Vec<String> = missing
        .iter()
        .flat_map(|p| p.binaries.iter().map(move |b| (p.package, *b)))
        .filter(|(_, binary)| find_executable(binary).is_none())
        .map(|(package, binary)| format!("{binary} (from {package})"))
        .collect();
    if !still_missing.is_empty() {
        bail!(
            "apt-get succeeded but these are still not on PATH: {}",
            still_missing.join(", ")
        );
    }
    Ok(())
}

fn is_installed(package: &DebianPackage) -> bool {
    package
        .binaries
        .iter()
        .all(|binary| find_executable(binary).is_some())
}

fn apt_get(args: &[&str]) -> Result<()> {
    let status = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .status()
        .context("running apt-get")?;
    if !status.success() {
        bail!("`apt-get {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

fn is_root() -> Result<bool> {
    let output = Command::new("id")
        .arg("-u")
        .output()
        .context("running `id -u` to check for root")?;
    Ok(String::from_utf8_lossy(&output.stdout).trim() == "0")
}

#[cfg(test)]
mod tests {
    /// xtask compiles `components.rs` into its own test binary: a test in that file would run
    /// there and in the testkit, and one failure would count twice in the summary.
    #[test]
    fn the_included_component_list_brings_no_tests() {
        let source = include_str!("../../crates/dynalert-testkit/src/components.rs");
        assert!(
            !source.contains("#[test]"),
            "move the tests of components.rs to lib.rs"
        );
    }
}
