//! Every fenced block of docs/byo-prometheus.md, run. Each block is preceded by a
//! `<!-- test: <kind> [key=value …] -->` comment naming what runs it here, and a block without
//! one fails [`every_block_of_the_byo_guide_names_its_test`]:
//!
//! - `shell`: executed (`dynalert` is this build; `> file` redirects; `*` globs expand);
//! - `prometheus-config run` / `prometheus-config kubernetes`: merged into one prometheus.yml,
//!   checked by `promtool check config` and loaded by a real Prometheus (the Kubernetes job
//!   with its discovered target written out statically, Debian's Prometheus having no
//!   Kubernetes discovery);
//! - `vmalert`: the command line run for real against that Prometheus (datasource and remote
//!   write), every rule healthy in vmalert's own `/api/v1/rules`;
//! - `promql`: answered by that Prometheus, scraping a real `dynalert serve` and two stand-in
//!   MariaDB exporters, with the result the marker states (`tenants=` exactly these tenants,
//!   `includes=` at least these);
//! - `thanos-rule` / `thanos-ruler-resource`: Debian has no Thanos package, so Thanos itself
//!   is NOT run. The command line's flags are checked against Thanos Ruler's, its
//!   `--rule-file` glob against what `dynalert rules render` wrote (and those files with
//!   `promtool check rules`); the `ThanosRuler` resource is parsed and its selector and
//!   namespace checked against the rendered `PrometheusRule` objects, whose rules pass
//!   `promtool` too.
//!
//! After the queries, every rule the Prometheus loaded has health "ok" and no `lastError`, and
//! its `prometheus_rule_evaluation_failures_total` counters are all 0.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::Served;
use dynalert_testkit::{
    ChildGuard, Http, StaticExporter, free_port, require_binary, rule_evaluation_failures,
    wait_for_healthy_rules,
};
use serde_json::Value;

const DOC: &str = include_str!("../../../docs/byo-prometheus.md");
const MARKER_PREFIX: &str = "<!-- test: ";
/// Marker kinds this file knows how to run.
const KINDS: &[&str] = &[
    "shell",
    "prometheus-config",
    "vmalert",
    "promql",
    "thanos-rule",
    "thanos-ruler-resource",
];
/// Flags of `thanos rule` (Thanos 0.2x) the guide may use; a typo or an invented flag fails.
const THANOS_RULE_FLAGS: &[&str] = &[
    "rule-file",
    "query",
    "query.config-file",
    "alertmanagers.url",
    "alertmanagers.config-file",
    "data-dir",
    "eval-interval",
    "label",
    "http-address",
    "grpc-address",
    "objstore.config-file",
];
/// The tenants of the test's conf.d (the defaults come from the guide's own snippet): db-a's
/// exporter reports more connections than its threshold, db-b's fewer.
const TENANTS: &str = "\
tenants:
  db-a:
    mysql_connections: 350
    _metadata:
      owner: team-orders
  db-b:
    mysql_connections: 60
";
const WAIT: Duration = Duration::from_secs(60);

/// One fenced block and the marker before it.
struct Snippet {
    /// 1-based line of the opening fence, for messages.
    line: usize,
    kind: String,
    /// The marker's words after the kind: bare words and `key=value` pairs.
    args: Vec<String>,
    code: String,
}

impl Snippet {
    fn arg(&self, key: &str) -> Option<&str> {
        self.args
            .iter()
            .find_map(|a| a.strip_prefix(key)?.strip_prefix('='))
    }
}

/// Every fenced block of the guide, with its marker; `Err` lists the opening fences that have
/// none.
fn snippets() -> Result<Vec<Snippet>, Vec<usize>> {
    let lines: Vec<&str> = DOC.lines().collect();
    let (mut out, mut unmarked) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < lines.len() {
        if !lines[i].starts_with("```") {
            i += 1;
            continue;
        }
        let marker = i
            .checked_sub(1)
            .and_then(|p| lines[p].strip_prefix(MARKER_PREFIX))
            .and_then(|m| m.strip_suffix(" -->"));
        let end = (i + 1..lines.len())
            .find(|&j| lines[j].starts_with("```"))
            .unwrap_or_else(|| panic!("the block at line {} is never closed", i + 1));
        match marker {
            Some(marker) => {
                let mut words = marker.split_whitespace().map(str::to_string);
                out.push(Snippet {
                    line: i + 1,
                    kind: words.next().expect("a marker names its kind"),
                    args: words.collect(),
                    code: lines[i + 1..end].join("\n") + "\n",
                });
            }
            None => unmarked.push(i + 1),
        }
        i = end + 1;
    }
    if unmarked.is_empty() {
        Ok(out)
    } else {
        Err(unmarked)
    }
}

/// Text replacements from the guide's placeholders to the test's ports and directories; ports
/// are added once the servers they name run.
struct Env {
    rules: PathBuf,
    conf_d: PathBuf,
    replacements: Vec<(&'static str, String)>,
}

impl Env {
    fn new(root: &Path) -> Env {
        let (rules, conf_d) = (root.join("rules"), root.join("conf.d"));
        std::fs::create_dir_all(&rules).unwrap();
        std::fs::create_dir_all(&conf_d).unwrap();
        let replacements = vec![
            ("/etc/prometheus/rules", rules.display().to_string()),
            ("/etc/dynalert/conf.d", conf_d.display().to_string()),
        ];
        Env {
            rules,
            conf_d,
            replacements,
        }
    }

    fn port(&mut self, placeholder: &'static str, port: u16) {
        self.replacements
            .push((placeholder, format!("127.0.0.1:{port}")));
    }

    fn substitute(&self, text: &str) -> String {
        self.replacements
            .iter()
            .fold(text.to_string(), |t, (from, to)| t.replace(from, to))
    }
}

/// `dir/prefix*suffix` expanded to the matching files (sorted); other words unchanged.
fn expand_glob(word: &str) -> Vec<String> {
    if !word.contains('*') {
        return vec![word.to_string()];
    }
    let path = Path::new(word);
    let pattern = path.file_name().unwrap().to_str().unwrap();
    let (prefix, suffix) = pattern.split_once('*').expect("one * per glob");
    let mut matches: Vec<String> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.len() >= prefix.len() + suffix.len()
                && name.starts_with(prefix)
                && name.ends_with(suffix)
        })
        .map(|p| p.display().to_string())
        .collect();
    matches.sort();
    assert!(!matches.is_empty(), "{word} matches no file");
    matches
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
    let args: Vec<String> = words.flat_map(expand_glob).collect();
    let out = Command::new(&program).args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "{command}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some(file) = redirect {
        std::fs::write(file, out.stdout).unwrap();
    }
}

/// The `--out` directories of the documented `dynalert rules render` commands.
fn render_out_dirs(snippets: &[Snippet], env: &Env) -> Vec<PathBuf> {
    snippets
        .iter()
        .filter(|s| s.kind == "shell")
        .flat_map(|s| s.code.lines())
        .filter(|l| l.trim_start().starts_with("dynalert rules render"))
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "--out")?;
            Some(PathBuf::from(env.substitute(words[at + 1])))
        })
        .collect()
}

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// Merges documented configuration fragments into one prometheus.yml.
fn merge_config(fragments: &[String]) -> String {
    let mut merged = serde_json::Map::new();
    for fragment in fragments {
        for (key, v) in yaml(fragment).as_object().unwrap() {
            let slot = merged
                .entry(key.clone())
                .or_insert_with(|| Value::Array(Vec::new()));
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
    serde_saphyr::to_string(&Value::Object(config)).unwrap()
}

/// Debian's Prometheus is built without Kubernetes service discovery, so the Kubernetes
/// snippet runs with the discovered target written out as a static target carrying the same
/// `__meta_kubernetes_*` labels: its relabelling then runs for real. The job gets a `-k8s`
/// suffix to sit beside the static variant.
fn kubernetes_as_static(code: &str, exporter: u16) -> String {
    let mut value = yaml(code);
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
                "targets": [format!("127.0.0.1:{exporter}")],
                "labels": {
                    "__meta_kubernetes_namespace": "db-a",
                    "__meta_kubernetes_service_annotation_prometheus_io_scrape": "true",
                },
            }]),
        );
    }
    serde_saphyr::to_string(&value).unwrap()
}

fn promtool(args: &[&str], files: &[PathBuf]) {
    let out = Command::new("promtool")
        .args(args)
        .args(files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool {args:?} {files:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `thanos rule` command line: known flags only, a query endpoint, and `--rule-file` globs
/// that load everything a documented render wrote into their directory, which passes promtool.
fn check_thanos_rule(snippet: &Snippet, env: &Env, rendered: &[PathBuf]) {
    let line = env.substitute(snippet.code.trim());
    let mut words = line.split_whitespace();
    assert_eq!(
        (words.next(), words.next()),
        (Some("thanos"), Some("rule")),
        "{line}"
    );
    let mut rule_globs = Vec::new();
    let mut has_query = false;
    for word in words {
        let (flag, value) = word
            .strip_prefix("--")
            .and_then(|w| w.split_once('='))
            .unwrap_or_else(|| panic!("{word:?} is not --flag=value"));
        assert!(
            THANOS_RULE_FLAGS.contains(&flag),
            "--{flag} is not a thanos rule flag"
        );
        match flag {
            "rule-file" => rule_globs.push(value.to_string()),
            "query" | "query.config-file" => has_query = true,
            _ => {}
        }
    }
    assert!(has_query, "Thanos Ruler needs a query endpoint: {line}");
    assert!(!rule_globs.is_empty(), "{line}");
    for glob in rule_globs {
        let dir = Path::new(&glob).parent().unwrap();
        assert!(
            rendered.iter().any(|d| d == dir),
            "--rule-file={glob} is not a directory the guide renders into ({rendered:?})"
        );
        let files: Vec<PathBuf> = expand_glob(&glob).into_iter().map(PathBuf::from).collect();
        let mut written: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        written.sort();
        assert_eq!(
            files, written,
            "--rule-file={glob} loads every rendered file"
        );
        promtool(&["check", "rules"], &files);
    }
}

/// The `ThanosRuler` resource selects every rendered `PrometheusRule` object (same namespace,
/// labels matching its `ruleSelector`), whose rule groups pass promtool.
fn check_thanos_ruler_resource(snippet: &Snippet, env: &Env, rendered: &[PathBuf]) {
    let resource = yaml(&snippet.code);
    assert_eq!(resource["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(resource["kind"], "ThanosRuler");
    let spec = &resource["spec"];
    assert!(
        spec["queryEndpoints"]
            .as_array()
            .is_some_and(|e| !e.is_empty()),
        "a ThanosRuler needs queryEndpoints"
    );
    assert!(
        spec.get("ruleNamespaceSelector").is_none(),
        "this check assumes the ruler's own namespace only"
    );
    let namespace = resource["metadata"]["namespace"].as_str().unwrap();
    let selector = spec["ruleSelector"]["matchLabels"].as_object().unwrap();
    let mut objects = 0;
    for dir in rendered {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if !path.is_file() {
                continue;
            }
            let object = yaml(&std::fs::read_to_string(&path).unwrap());
            if object["kind"] != "PrometheusRule" {
                continue;
            }
            objects += 1;
            assert_eq!(object["metadata"]["namespace"], namespace, "{path:?}");
            for (label, value) in selector {
                assert_eq!(
                    &object["metadata"]["labels"][label], value,
                    "{path:?} is not selected by the ThanosRuler's ruleSelector"
                );
            }
            // Outside every rendered directory, so no glob of the guide picks it up.
            let groups = env.rules.parent().unwrap().join(format!(
                "thanos-ruler-{}.rules",
                path.file_stem().unwrap().to_str().unwrap()
            ));
            let spec = serde_saphyr::to_string(&object["spec"]).unwrap();
            std::fs::write(&groups, spec).unwrap();
            promtool(&["check", "rules"], &[groups]);
        }
    }
    assert!(
        objects > 0,
        "no rendered PrometheusRule object in {rendered:?}"
    );
}

/// The tenants of an instant query's result, polled until the marker's expectation holds.
fn check_query(http: &Http, prometheus: &str, snippet: &Snippet) {
    let query = snippet.code.trim();
    let exact = snippet.arg("tenants").map(tenant_set);
    let includes = snippet.arg("includes").map(tenant_set);
    let start = Instant::now();
    loop {
        let r = http
            .get(&format!("{prometheus}/api/v1/query"), &[("query", query)])
            .unwrap();
        let body = r.json().unwrap();
        assert_eq!(body["status"], "success", "{query}: {}", r.body);
        let result = body["data"]["result"].as_array().unwrap();
        let tenants: BTreeSet<String> = result
            .iter()
            .filter_map(|s| s["metric"]["tenant"].as_str().map(str::to_string))
            .collect();
        let ok = !result.is_empty()
            && exact.as_ref().is_none_or(|e| *e == tenants)
            && includes.as_ref().is_none_or(|i| i.is_subset(&tenants));
        if ok {
            return;
        }
        assert!(
            start.elapsed() < WAIT,
            "line {}: {query} never returned {:?}: {}",
            snippet.line,
            snippet.args,
            r.body
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn tenant_set(list: &str) -> BTreeSet<String> {
    list.split(',').map(str::to_string).collect()
}

/// Number of rules in the rule files Prometheus was pointed at.
fn rules_in(globs: &[String]) -> usize {
    globs
        .iter()
        .flat_map(|g| expand_glob(g))
        .map(|file| {
            yaml(&std::fs::read_to_string(file).unwrap())["groups"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| g["rules"].as_array().unwrap().len())
                .sum::<usize>()
        })
        .sum()
}

/// A stand-in for mysqld_exporter on a tenant's MariaDB (real metric names, fixed values).
fn mariadb_exposition(connections: u32) -> String {
    format!(
        "# TYPE mysql_up gauge\nmysql_up 1\n\
         # TYPE mysql_global_status_threads_connected gauge\n\
         mysql_global_status_threads_connected {connections}\n\
         # TYPE mysql_global_status_threads_running gauge\n\
         mysql_global_status_threads_running 4\n\
         # TYPE mysql_global_variables_max_connections gauge\n\
         mysql_global_variables_max_connections 1000\n"
    )
}

#[test]
fn every_block_of_the_byo_guide_names_its_test() {
    let snippets = snippets().unwrap_or_else(|lines| {
        panic!(
            "docs/byo-prometheus.md: the code blocks at lines {lines:?} have no \
             `<!-- test: <kind> -->` marker on the line before, so nothing runs them"
        )
    });
    assert!(snippets.len() >= 15, "the guide's snippets were not found");
    for s in &snippets {
        assert!(
            KINDS.contains(&s.kind.as_str()),
            "line {}: unknown test kind {:?}",
            s.line,
            s.kind
        );
    }
    for kind in KINDS {
        assert!(
            snippets.iter().any(|s| s.kind == *kind),
            "no snippet of kind {kind}"
        );
    }
}

#[test]
fn every_snippet_of_the_byo_guide_works() {
    let (Some(_), Some(prometheus), Some(vmalert)) = (
        require_binary("promtool"),
        require_binary("prometheus"),
        require_binary("vmalert"),
    ) else {
        return;
    };
    let snippets = snippets().expect("every block has a marker (see the test above)");
    let dir = tempfile::tempdir().unwrap();
    let mut env = Env::new(dir.path());

    // Commands first: they render the rules and generate the conf.d's defaults.
    for s in snippets.iter().filter(|s| s.kind == "shell") {
        s.code
            .lines()
            .filter(|l| !l.trim().is_empty())
            .for_each(|l| run_shell(l, &env));
    }
    let rendered = render_out_dirs(&snippets, &env);

    // The servers the snippets name, all on loopback.
    common::write(&env.conf_d, "tenants.yaml", TENANTS);
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let dynalert = Served::start(&env.conf_d, &logs);
    let db_a = StaticExporter::start(mariadb_exposition(400)).unwrap();
    let db_b = StaticExporter::start(mariadb_exposition(20)).unwrap();
    let prom_port = free_port();
    env.port("localhost:8080", dynalert.port);
    env.port("localhost:9104", db_a.port());
    env.port("localhost:9105", db_b.port());
    env.port("localhost:8428", prom_port);
    env.port("localhost:9093", free_port()); // vmalert's notifier: nobody listens

    let mut run_config = Vec::new();
    let mut rule_globs = Vec::new();
    let mut vmalert_line = None;
    for s in &snippets {
        match (s.kind.as_str(), s.args.first().map(String::as_str)) {
            ("shell" | "promql", _) => {}
            ("prometheus-config", Some("kubernetes")) => {
                run_config.push(kubernetes_as_static(&s.code, db_a.port()))
            }
            ("prometheus-config", Some("run")) => {
                let code = env.substitute(&s.code);
                if let Some(files) = yaml(&code)["rule_files"].as_array() {
                    rule_globs.extend(files.iter().map(|f| f.as_str().unwrap().to_string()));
                }
                run_config.push(code);
            }
            ("vmalert", _) => vmalert_line = Some(env.substitute(s.code.trim())),
            ("thanos-rule", _) => check_thanos_rule(s, &env, &rendered),
            ("thanos-ruler-resource", _) => check_thanos_ruler_resource(s, &env, &rendered),
            (kind, _) => panic!("line {}: unknown snippet kind {kind:?}", s.line),
        }
    }

    // A real Prometheus with the documented configuration.
    let config = merge_config(&run_config);
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, &config).unwrap();
    promtool(
        &["check", "config", "--syntax-only"],
        std::slice::from_ref(&config_path),
    );
    let mut cmd = Command::new(prometheus);
    cmd.arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        // vmalert's -remoteWrite.url points here.
        .arg("--web.enable-remote-write-receiver");
    let mut child = ChildGuard::spawn("prometheus", cmd, &logs.join("prometheus.log")).unwrap();
    let http = Http::new().unwrap();
    let prom_url = format!("http://127.0.0.1:{prom_port}");
    child
        .wait_ready(&http, &format!("{prom_url}/-/ready"), WAIT)
        .unwrap();

    // The documented vmalert command line, on loopback and evaluating every second.
    let vmalert_port = free_port();
    let line = vmalert_line.expect("the guide has a vmalert snippet");
    let mut words = line.split_whitespace();
    assert_eq!(words.next(), Some("vmalert"));
    let mut cmd = Command::new(vmalert);
    cmd.args(words)
        .arg(format!("-httpListenAddr=127.0.0.1:{vmalert_port}"))
        .arg("-evaluationInterval=1s");
    let mut vmalert = ChildGuard::spawn("vmalert", cmd, &logs.join("vmalert.log")).unwrap();
    let vmalert_url = format!("http://127.0.0.1:{vmalert_port}");
    vmalert
        .wait_ready(&http, &format!("{vmalert_url}/health"), WAIT)
        .unwrap();

    // The documented queries, and the Kubernetes relabelling turning the namespace into the
    // tenant; each is polled until the scrapes and evaluations have run.
    let kubernetes = Snippet {
        line: 0,
        kind: "promql".into(),
        args: vec!["tenants=db-a".into()],
        code: r#"up{job="tenant-db-exporters-k8s"} == 1"#.into(),
    };
    let queries = snippets.iter().filter(|s| s.kind == "promql");
    for s in queries.chain([&kubernetes]) {
        check_query(&http, &prom_url, s);
    }

    // Every rule the documented rule_files name is loaded and healthy, in both rulers.
    let loaded = wait_for_healthy_rules(&http, &prom_url, WAIT).unwrap();
    assert_eq!(
        loaded,
        rules_in(&rule_globs),
        "every rendered rule is loaded"
    );
    let failures = rule_evaluation_failures(&http, &prom_url).unwrap();
    assert!(!failures.is_empty(), "no rule group reported its failures");
    assert!(failures.iter().all(|(_, n)| *n == 0.0), "{failures:#?}");
    let in_vmalert = wait_for_healthy_rules(&http, &vmalert_url, WAIT)
        .unwrap_or_else(|e| panic!("vmalert: {e:#}\n{}", vmalert.log_tail()));
    assert_eq!(in_vmalert, loaded, "vmalert loads the same rules");
    drop(dynalert);
}
