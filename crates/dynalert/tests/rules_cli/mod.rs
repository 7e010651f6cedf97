//! What the `dynalert rules` CLI tests share: running the binary, reading what it rendered,
//! the pack catalogue as the tests expect it, and promtool.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dynalert_rules::{Pack, catalogue};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Running the binary

pub fn dynalert(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dynalert"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs a command that must succeed; returns its stdout.
pub fn stdout_of(args: &[&str]) -> String {
    let out = dynalert(args);
    assert!(
        out.status.success(),
        "dynalert {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail (exit 2: usage and I/O errors, nothing on stdout); returns stderr.
pub fn error_of(args: &[&str]) -> String {
    let out = dynalert(args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(2),
        "dynalert {args:?} should fail with exit 2; stderr: {stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "dynalert {args:?} printed {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

/// `rules render --packs PACKS --format FORMAT --out OUT EXTRA…`; asserts it prints the path
/// of every file it wrote, and only those.
pub fn render(packs: &str, format: &str, out: &Path, extra: &[&str]) -> BTreeMap<String, Vec<u8>> {
    let out_arg = out.to_str().unwrap();
    let mut args = vec![
        "rules", "render", "--packs", packs, "--format", format, "--out", out_arg,
    ];
    args.extend(extra);
    let printed: BTreeSet<String> = stdout_of(&args).lines().map(String::from).collect();
    let written = dir_contents(out);
    let expected: BTreeSet<String> = written
        .keys()
        .map(|name| out.join(name).display().to_string())
        .collect();
    assert_eq!(printed, expected, "render prints the files it wrote");
    written
}

/// Renders the same thing in two processes into two directories and asserts both hold the
/// same file names with the same bytes; returns the first.
pub fn render_twice(packs: &str, format: &str, extra: &[&str]) -> (tempfile::TempDir, Files) {
    let dir = tempfile::tempdir().unwrap();
    let first = render(packs, format, &dir.path().join("a"), extra);
    let second = render(packs, format, &dir.path().join("b"), extra);
    assert!(!first.is_empty(), "{format}: nothing rendered");
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        second.keys().collect::<Vec<_>>(),
        "{format}: the two runs wrote different file names"
    );
    for (name, bytes) in &first {
        assert!(
            *bytes == second[name],
            "{format}: {name} differs between two runs"
        );
    }
    (dir, Files(first))
}

pub struct Files(pub BTreeMap<String, Vec<u8>>);

impl Files {
    pub fn names(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
    pub fn text(&self, name: &str) -> &str {
        let bytes = self
            .0
            .get(name)
            .unwrap_or_else(|| panic!("{name} not rendered; have {:?}", self.names()));
        std::str::from_utf8(bytes).unwrap()
    }
    pub fn yaml(&self, name: &str) -> Value {
        yaml(self.text(name))
    }
}

/// The regular files of a directory (no subdirectories expected), by name.
pub fn dir_contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            assert!(e.file_type().unwrap().is_file(), "{:?}", e.path());
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// Everything under a directory, directories included, to compare before and after a failure.
pub fn tree(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut found = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            let rel = path.strip_prefix(dir).unwrap().to_path_buf();
            if path.is_dir() {
                found.insert(rel, None);
                pending.push(path);
            } else {
                found.insert(rel, Some(std::fs::read(&path).unwrap()));
            }
        }
    }
    found
}

pub fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

// ---------------------------------------------------------------------------------------------
// What the catalogue says the output must hold

pub fn pack(name: &str) -> &'static Pack {
    catalogue()
        .iter()
        .find(|p| p.pack == name)
        .unwrap_or_else(|| panic!("no pack {name} in the catalogue"))
}

/// The alerts a pack raises: per key, its warning alert and, with a critical default, the
/// `…Critical` one.
pub fn alert_names(pack: &Pack) -> Vec<String> {
    pack.keys
        .values()
        .flat_map(|decl| {
            let critical = decl
                .default_critical
                .map(|_| format!("{}Critical", decl.alert.name));
            std::iter::once(decl.alert.name.clone()).chain(critical)
        })
        .collect()
}

pub fn has_recording_rules(pack: &Pack) -> bool {
    pack.groups.iter().any(|g| !g.rules.is_empty())
}

/// The plain rule files of a pack, sorted: `<pack>-alert.yml` and `<pack>-recording.yml`,
/// always (a pack that records nothing gets a recording file with no groups).
pub fn rule_file_names(pack: &Pack) -> Vec<String> {
    vec![
        format!("{}-alert.yml", pack.pack),
        format!("{}-recording.yml", pack.pack),
    ]
}

pub fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

/// The rules of a parsed rule file (`{groups: [{rules: […]}]}`).
pub fn rules_of(file: &Value) -> Vec<&Value> {
    file["groups"]
        .as_array()
        .expect("a groups list")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("a rules list"))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// promtool

/// `promtool check rules` on every file; `None` when promtool is missing and not required.
pub fn promtool_check(files: &[PathBuf]) -> Option<()> {
    let promtool = dynalert_testkit::require_binary("promtool")?;
    assert!(!files.is_empty());
    let out = Command::new(&promtool)
        .args(["check", "rules"])
        .args(files)
        .output()
        .unwrap();
    let output =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "promtool check rules {files:?}:\n{output}"
    );
    assert_eq!(
        output.matches("SUCCESS").count(),
        files.len(),
        "promtool checked every file:\n{output}"
    );
    Some(())
}

pub fn paths(dir: &Path, files: &Files) -> Vec<PathBuf> {
    files.0.keys().map(|n| dir.join(n)).collect()
}
