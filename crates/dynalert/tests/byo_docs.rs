//! Every snippet of docs/byo-prometheus.md, run: configurations through `promtool check
//! config` or a real Prometheus, commands executed, vmalert's command line in `-dryRun`, and
//! the verification queries answered by a Prometheus scraping a real `dynalert serve`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::Served;
use dynalert_testkit::{ChildGuard, Http, free_port, require_binary};

const DOC: &str = include_str!("../../../docs/byo-prometheus.md");

/// `(tag, code)` for every fenced block preceded by `<!-- test: tag -->`.
fn snippets() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = DOC.lines();
    while let Some(line) = lines.next() {
        let Some(tag) = line
            .strip_prefix("<!-- test: ")
            .and_then(|l| l.strip_suffix(" -->"))
        else {
            continue;
        };
        let fence = lines.next().expect("a code block follows the test marker");
        assert!(
            fence.starts_with("```"),
            "marker {tag:?} not followed by a code block"
        );
        let code: Vec<&str> = lines
            .by_ref()
            .take_while(|l| !l.starts_with("```"))
            .collect();
        out.push((tag.to_string(), code.join("\n") + "\n"));
    }
    out
}

struct Env {
    dynalert: u16,
    exporter: u16,
    rules: PathBuf,
}

impl Env {
    fn substitute(&self, text: &str) -> String {
        text.replace("localhost:8080", &format!("127.0.0.1:{}", self.dynalert))
            .replace("localhost:9104", &format!("127.0.0.1:{}", self.exporter))
            .replace("/etc/prometheus/rules", &self.rules.display().to_string())
    }
}

/// Runs a documented shell line (one command, optionally `> file`).
fn run_shell(line: &str, env: &Env) {
    let line = env.substitute(line.trim());
    let (command, redirect) = match line.split_once(" > ") {
        Some((c, f)) => (c.to_string(), Some(PathBuf::from(f.trim()))),
        None => (line.clone(), None),
    };
    let mut words = command.split_whitespace();
    let program = match words.next().unwrap() {
        "dynalert" => PathBuf::from(env!("CARGO_BIN_EXE_dynalert")),
        other => PathBuf::from(other),
    };
    let out = Command::new(&program).args(words).output().unwrap();
    assert!(
        out.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some(file) = redirect {
        std::fs::write(file, out.stdout).unwrap();
    }
}

/// Merges documented configuration fragments into one prometheus.yml.
fn merge_config(fragments: &[String]) -> String {
    let mut merged = serde_json::Map::new();
    for fragment in fragments {
        let value: serde_json::Value = serde_saphyr::from_str(fragment).unwrap();
        for (key, v) in value.as_object().unwrap() {
            let slot = merged
                .entry(key.clone())
                .or_insert_with(|| serde_json::Value::Array(Vec::new()));
            slot.as_array_mut()
                .unwrap()
                .extend(v.as_array().unwrap().iter().cloned());
        }
    }
    let mut config = serde_json::Map::new();
    config.insert(
        "global".into(),
        serde_json::json!({"scrape_interval": "1s", "evaluation_interval": "1s"}),
    );
    config.extend(merged);
    serde_saphyr::to_string(&serde_json::Value::Object(config)).unwrap()
}

/// Debian's Prometheus is built without Kubernetes service discovery, so the Kubernetes
/// snippet runs with the discovered target written out as a static target carrying the same
/// `__meta_kubernetes_*` labels: its relabelling then runs for real. The job gets a `-k8s`
/// suffix to sit beside the static variant.
fn kubernetes_as_static(code: &str, env: &Env) -> String {
    let mut value: serde_json::Value = serde_saphyr::from_str(code).unwrap();
    for job in value["scrape_configs"].as_array_mut().unwrap() {
        let job = job.as_object_mut().unwrap();
        assert!(
            job.remove("kubernetes_sd_configs").is_some(),
            "the snippet uses Kubernetes discovery"
        );
        let name = format!("{}-k8s", job["job_name"].as_str().unwrap());
        job.insert("job_name".into(), name.into());
        job.insert(
            "static_configs".into(),
            serde_json::json!([{
                "targets": [format!("127.0.0.1:{}", env.exporter)],
                "labels": {
                    "__meta_kubernetes_namespace": "db-a",
                    "__meta_kubernetes_service_annotation_prometheus_io_scrape": "true",
                },
            }]),
        );
    }
    serde_saphyr::to_string(&value).unwrap()
}

fn promtool_check_config(yaml: &str, dir: &Path) {
    let path = dir.join("check.yml");
    std::fs::write(&path, yaml).unwrap();
    let out = Command::new("promtool")
        .args(["check", "config", "--syntax-only"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{yaml}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_snippet_of_the_byo_guide_works() {
    let (Some(_), Some(prometheus), Some(_)) = (
        require_binary("promtool"),
        require_binary("prometheus"),
        require_binary("vmalert"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let examples = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/conf.d"
    ));
    let logs = [dir.path().join("dynalert"), dir.path().join("exporter")];
    logs.iter()
        .for_each(|l| std::fs::create_dir_all(l).unwrap());
    let dynalert = Served::start(examples, &logs[0]);
    // Any /metrics endpoint stands in for a database exporter here.
    let exporter = Served::start(examples, &logs[1]);
    let env = Env {
        dynalert: dynalert.port,
        exporter: exporter.port,
        rules: dir.path().join("rules"),
    };
    std::fs::create_dir_all(&env.rules).unwrap();

    let snippets = snippets();
    assert!(snippets.len() >= 10, "the guide's snippets were not found");
    let mut run_config = Vec::new();
    let mut queries = Vec::new();
    for (tag, code) in &snippets {
        match tag.as_str() {
            "shell" => code
                .lines()
                .filter(|l| !l.trim().is_empty())
                .for_each(|l| run_shell(l, &env)),
            "prometheus-config kubernetes" => run_config.push(kubernetes_as_static(code, &env)),
            "prometheus-config run" => run_config.push(env.substitute(code)),
            "vmalert" => {
                let line = env.substitute(code.trim()) + " -dryRun";
                let mut words = line.split_whitespace();
                let out = Command::new(words.next().unwrap())
                    .args(words)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{line}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            "promql" => queries.push(code.trim().to_string()),
            other => panic!("unknown snippet tag {other:?}"),
        }
    }
    // The rendered rule files pass promtool too.
    let rule_files: Vec<PathBuf> = std::fs::read_dir(&env.rules)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    assert!(!rule_files.is_empty());
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .args(&rule_files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // A real Prometheus with the documented configuration answers the documented queries.
    let config = merge_config(&run_config);
    promtool_check_config(&config, dir.path());
    std::fs::write(dir.path().join("prometheus.yml"), &config).unwrap();
    let port = free_port();
    let mut cmd = Command::new(prometheus);
    cmd.arg(format!(
        "--config.file={}",
        dir.path().join("prometheus.yml").display()
    ))
    .arg(format!(
        "--storage.tsdb.path={}",
        dir.path().join("data").display()
    ))
    .arg(format!("--web.listen-address=127.0.0.1:{port}"));
    let mut child =
        ChildGuard::spawn("prometheus", cmd, &dir.path().join("prometheus.log")).unwrap();
    let http = Http::new().unwrap();
    child
        .wait_ready(
            &http,
            &format!("http://127.0.0.1:{port}/-/ready"),
            Duration::from_secs(30),
        )
        .unwrap();
    // The documented queries, and the Kubernetes relabelling turning the namespace into the
    // tenant; each is polled until the scrapes have run.
    queries.push(r#"up{job="tenant-db-exporters-k8s", tenant="db-a"}"#.to_string());
    for query in queries {
        let start = Instant::now();
        loop {
            let r = http
                .get(
                    &format!("http://127.0.0.1:{port}/api/v1/query"),
                    &[("query", &query)],
                )
                .unwrap();
            let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            if body["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
            {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{query} returned nothing: {}",
                r.body
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    let rules = http
        .get(&format!("http://127.0.0.1:{port}/api/v1/rules"), &[])
        .unwrap();
    let rules: serde_json::Value = serde_json::from_str(&rules.body).unwrap();
    assert!(
        !rules["data"]["groups"].as_array().unwrap().is_empty(),
        "the rendered rules are loaded"
    );
}
