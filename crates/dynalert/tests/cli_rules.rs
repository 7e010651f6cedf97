//! `dynalert rules list|render|defaults` as a user runs them: the real binary, its output
//! compared with the pack catalogue of the `dynalert-rules` crate (never a copy of it), the
//! rendered files checked by the real `promtool`, and every usage error leaving `--out` as it
//! was. promtool comes from the Debian `prometheus` package; without it the promtool checks
//! are skipped with a visible message (they fail when `DYNALERT_REQUIRE_COMPONENTS=1`), and
//! every other assertion still runs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use dynalert_rules::pack::KeyDecl;
use dynalert_rules::{Pack, catalogue};
use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::Expr;
use promql_parser::util::{ExprVisitor, walk_expr};
use serde_json::{Value, json};

mod rules_cli;

use rules_cli::*;

// ---------------------------------------------------------------------------------------------
// 1. rules list

/// One row of the `rules list` table: the cells of its first line, and the ALERT cell of every
/// line (a key with a critical tier lists both alerts, one per line).
struct Row {
    cells: Vec<String>,
    alerts: Vec<String>,
}

fn table_rows(table: &str) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    for line in table.lines().filter(|l| l.starts_with('│')) {
        let cells: Vec<String> = line
            .trim_matches('│')
            .split('┆')
            .map(|c| c.trim().to_string())
            .collect();
        assert_eq!(
            cells.len(),
            7,
            "PACK KEY DEFAULT CRITICAL UNIT ALERT SIGNAL: {line}"
        );
        if cells[0] == "PACK" {
            continue;
        }
        if !cells[1].is_empty() {
            rows.push(Row {
                alerts: vec![cells[5].clone()],
                cells,
            });
        } else if !cells[5].is_empty() {
            rows.last_mut()
                .expect("a row first")
                .alerts
                .push(cells[5].clone());
        }
    }
    rows
}

#[test]
fn list_table_names_every_pack_key_and_alert() {
    let out = stdout_of(&["rules", "list"]);
    let rows = table_rows(&out);
    let mut seen: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for row in &rows {
        let previous = seen.insert(
            (row.cells[0].clone(), row.cells[1].clone()),
            row.alerts.clone(),
        );
        assert!(previous.is_none(), "{} listed twice", row.cells[1]);
    }
    let mut expected = BTreeMap::new();
    for pack in catalogue() {
        for (key, decl) in &pack.keys {
            let mut alerts = vec![decl.alert.name.clone()];
            alerts.extend(
                decl.default_critical
                    .map(|_| format!("{}Critical", decl.alert.name)),
            );
            expected.insert((pack.pack.clone(), key.clone()), alerts);
            let row = rows
                .iter()
                .find(|r| r.cells[1] == *key)
                .unwrap_or_else(|| panic!("key {key} of {} not in the table:\n{out}", pack.pack));
            assert_eq!(
                row.cells[2],
                format!("{} {}", decl.op, decl.default),
                "{key}"
            );
            let critical = decl.default_critical.map(|c| c.to_string());
            assert_eq!(row.cells[3], critical.as_deref().unwrap_or("-"), "{key}");
            assert_eq!(row.cells[4], decl.unit, "{key}");
        }
    }
    assert_eq!(
        seen, expected,
        "(pack, key) -> alerts of the table against the catalogue"
    );
    let packs_listed: BTreeSet<&str> = rows.iter().map(|r| r.cells[0].as_str()).collect();
    let packs: BTreeSet<&str> = catalogue().iter().map(|p| p.pack.as_str()).collect();
    assert_eq!(packs_listed, packs);

    let alerts: usize = catalogue().iter().map(|p| alert_names(p).len()).sum();
    let summary = out.lines().last().unwrap();
    assert!(
        summary.starts_with(&format!("{} packs, ", catalogue().len()))
            && summary.ends_with(&format!(", {alerts} alerts")),
        "{summary}"
    );
}

#[test]
fn list_json_is_the_catalogue() {
    let out: Value =
        serde_json::from_str(&stdout_of(&["rules", "list", "--format", "json"])).unwrap();
    let listed = out.as_array().expect("an array of packs");
    assert_eq!(
        listed
            .iter()
            .map(|p| p["pack"].as_str().unwrap())
            .collect::<Vec<_>>(),
        catalogue()
            .iter()
            .map(|p| p.pack.as_str())
            .collect::<Vec<_>>()
    );
    for (json, pack) in listed.iter().zip(catalogue()) {
        let name = &pack.pack;
        assert_eq!(json["description"], pack.description.as_str(), "{name}");
        assert_eq!(json["exporter"], pack.exporter.as_str(), "{name}");
        let recording: usize = pack.groups.iter().map(|g| g.rules.len()).sum();
        assert_eq!(json["recording_rules"], recording, "{name}");
        assert_eq!(json["alerts"], json!(alert_names(pack)), "{name}");

        let keys = json["keys"].as_object().expect("keys by name");
        assert_eq!(
            keys.keys().collect::<Vec<_>>(),
            pack.keys.keys().collect::<Vec<_>>(),
            "{name}"
        );
        for (key, decl) in &pack.keys {
            let k = &keys[key];
            assert_eq!(k["default"].as_f64(), Some(decl.default), "{key}");
            assert_eq!(
                k["default_critical"].as_f64(),
                decl.default_critical,
                "{key}"
            );
            assert_eq!(k["unit"], decl.unit.as_str(), "{key}");
            assert_eq!(k["description"], decl.description.as_str(), "{key}");
            assert_eq!(k["op"], decl.op.as_str(), "{key}");
            assert_eq!(k["alert"]["name"], decl.alert.name.as_str(), "{key}");
        }
        // And nothing else: every field of every key is the declaration.
        let decls: BTreeMap<String, KeyDecl> =
            serde_json::from_value(json["keys"].clone()).unwrap();
        assert_eq!(decls, pack.keys, "{name}");
    }
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    // `dynalert rules list | head`: the reader is gone before the table is written.
    let commands: [&[&str]; 3] = [
        &["rules", "list"],
        &["rules", "list", "--format", "json"],
        &["rules", "defaults"],
    ];
    for args in commands {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_dynalert"))
            .args(args)
            .stdout(writer)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {}\n{stderr}", out.status);
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}

// ---------------------------------------------------------------------------------------------
// 2. rules render

const PACKS: &str = "mariadb,redis";

fn selected() -> Vec<&'static Pack> {
    PACKS.split(',').map(pack).collect()
}

#[test]
fn render_files_is_stable_and_passes_promtool() {
    let (dir, files) = render_twice(PACKS, "files", &[]);
    let expected = sorted(selected().into_iter().flat_map(rule_file_names).collect());
    assert_eq!(files.names(), expected);
    for pack in selected() {
        let alerts = files.yaml(&format!("{}-alert.yml", pack.pack));
        let names: Vec<&str> = rules_of(&alerts)
            .iter()
            .map(|r| r["alert"].as_str().expect("alert rules only"))
            .collect();
        assert_eq!(names, alert_names(pack), "{}", pack.pack);
    }
    promtool_check(&paths(&dir.path().join("a"), &files));
}

#[test]
fn render_configmap_is_stable_holds_the_rule_files_and_passes_promtool() {
    let extra = ["--namespace", "monitoring", "--label", "team=sre"];
    let (dir, maps) = render_twice(PACKS, "configmap", &extra);
    let plain = Files(render(PACKS, "files", &dir.path().join("files"), &[]));
    assert_eq!(
        maps.names(),
        sorted(
            selected()
                .iter()
                .map(|p| format!("prometheus-rules-{}.yaml", p.pack))
                .collect()
        )
    );
    let checked = dir.path().join("checked");
    std::fs::create_dir(&checked).unwrap();
    let mut to_check = Vec::new();
    for pack in selected() {
        let map = maps.yaml(&format!("prometheus-rules-{}.yaml", pack.pack));
        assert_eq!(map["apiVersion"], "v1");
        assert_eq!(map["kind"], "ConfigMap");
        assert_eq!(
            map["metadata"]["name"],
            format!("prometheus-rules-{}", pack.pack)
        );
        assert_eq!(map["metadata"]["namespace"], "monitoring");
        assert_eq!(map["metadata"]["labels"], json!({"team": "sre"}));
        let data = map["data"].as_object().expect("data");
        // The documented keys, `<pack>-recording.yml` and `<pack>-alert.yml`, even for a pack
        // that records nothing (mariadb and redis): its recording file has no groups.
        assert!(!has_recording_rules(pack), "{} records nothing", pack.pack);
        assert_eq!(
            data.keys().cloned().collect::<Vec<_>>(),
            rule_file_names(pack)
        );
        let recording = &data[&format!("{}-recording.yml", pack.pack)];
        let recording = yaml(recording.as_str().expect("file content as a string"));
        assert_eq!(recording, json!({"groups": []}), "{}", pack.pack);
        for (name, content) in data {
            let content = content.as_str().expect("file content as a string");
            assert_eq!(
                content,
                plain.text(name),
                "{name}: ConfigMap and plain file"
            );
            let path = checked.join(name);
            std::fs::write(&path, content).unwrap();
            to_check.push(path);
        }
    }

    // A pack with recording rules: its ConfigMap holds both files.
    let k8s = pack("kubernetes");
    assert!(has_recording_rules(k8s));
    let out = dir.path().join("kubernetes");
    let written = Files(render("kubernetes", "configmap", &out, &[]));
    let map = written.yaml("prometheus-rules-kubernetes.yaml");
    assert!(
        map["metadata"].get("namespace").is_none(),
        "no --namespace, no namespace"
    );
    assert!(
        map["metadata"].get("labels").is_none(),
        "no --label, no labels"
    );
    let data = map["data"].as_object().unwrap();
    assert_eq!(
        data.keys().cloned().collect::<Vec<_>>(),
        sorted(rule_file_names(k8s))
    );
    for (name, content) in data {
        let path = checked.join(name);
        std::fs::write(&path, content.as_str().unwrap()).unwrap();
        to_check.push(path);
    }
    promtool_check(&to_check);
}

#[test]
fn render_prometheusrule_is_stable_labelled_and_holds_the_plain_groups() {
    let extra = ["--label", "team=sre", "--label", "prometheus=main"];
    let (dir, objects) = render_twice(PACKS, "prometheusrule", &extra);
    let plain = Files(render(PACKS, "files", &dir.path().join("files"), &[]));
    assert_eq!(
        objects.names(),
        sorted(
            selected()
                .iter()
                .map(|p| format!("{}-prometheusrule.yaml", p.pack))
                .collect()
        )
    );
    let mut to_check = Vec::new();
    for pack in selected() {
        let object = objects.yaml(&format!("{}-prometheusrule.yaml", pack.pack));
        assert_eq!(object["apiVersion"], "monitoring.coreos.com/v1");
        assert_eq!(object["kind"], "PrometheusRule");
        assert_eq!(
            object["metadata"]["name"],
            format!("dynalert-{}", pack.pack)
        );
        assert_eq!(
            object["metadata"]["labels"],
            json!({"team": "sre", "prometheus": "main"})
        );
        assert!(object["metadata"].get("namespace").is_none());
        let groups: Vec<Value> = rule_file_names(pack)
            .iter()
            .flat_map(|f| plain.yaml(f)["groups"].as_array().unwrap().clone())
            .collect();
        assert!(!groups.is_empty());
        assert_eq!(
            object["spec"]["groups"],
            Value::Array(groups),
            "{}",
            pack.pack
        );
        // The spec as a rule file (JSON is YAML) for promtool.
        let path = dir.path().join(format!("{}-spec.yml", pack.pack));
        std::fs::write(
            &path,
            json!({"groups": object["spec"]["groups"]}).to_string(),
        )
        .unwrap();
        to_check.push(path);
    }
    promtool_check(&to_check);
}

// ---------------------------------------------------------------------------------------------
// 3. --exporter-job

/// Every `job` matcher of every selector in an expression.
fn job_matchers(expr: &str) -> Vec<Matcher> {
    struct Jobs(Vec<Matcher>);
    impl ExprVisitor for Jobs {
        type Error = String;
        fn pre_visit(&mut self, expr: &Expr) -> Result<bool, String> {
            let vs = match expr {
                Expr::VectorSelector(vs) => vs,
                Expr::MatrixSelector(ms) => &ms.vs,
                _ => return Ok(true),
            };
            let all = vs
                .matchers
                .matchers
                .iter()
                .chain(vs.matchers.or_matchers.iter().flatten());
            self.0.extend(all.filter(|m| m.name == "job").cloned());
            Ok(true)
        }
    }
    let parsed = promql_parser::parser::parse(expr).unwrap_or_else(|e| panic!("{e}\n{expr}"));
    let mut jobs = Jobs(Vec::new());
    walk_expr(&mut jobs, &parsed).unwrap();
    jobs.0
}

/// Renders the platform pack and asserts every rule selects exactly `job="<job>"`.
fn assert_platform_job(extra: &[&str], job: &str) {
    let (dir, files) = render_twice("platform", "files", extra);
    assert_eq!(files.names(), rule_file_names(pack("platform")));
    let text = files.text("platform-alert.yml");
    assert!(
        !text.contains("__EXPORTER_JOB__"),
        "placeholder left:\n{text}"
    );
    let file = yaml(text);
    let rules = rules_of(&file);
    assert_eq!(rules.len(), alert_names(pack("platform")).len());
    for rule in rules {
        let jobs = job_matchers(rule["expr"].as_str().unwrap());
        assert!(!jobs.is_empty(), "{} selects no job", rule["alert"]);
        for m in jobs {
            assert_eq!(
                (m.op, m.value.as_str()),
                (MatchOp::Equal, job),
                "{}",
                rule["alert"]
            );
        }
    }
    promtool_check(&paths(&dir.path().join("a"), &files));
}

#[test]
fn exporter_job_is_the_job_every_platform_rule_selects() {
    assert_platform_job(&["--exporter-job", "my-dynalert"], "my-dynalert");
    // The default job name is nowhere, not even in a form the parser would not see.
    let dir = tempfile::tempdir().unwrap();
    let args = ["--exporter-job", "my-dynalert"];
    for format in ["files", "configmap", "prometheusrule"] {
        let out = render("platform", format, &dir.path().join(format), &args);
        for (name, bytes) in out {
            let text = String::from_utf8(bytes).unwrap();
            if name == "platform-recording.yml" {
                continue; // the platform pack records nothing: no selector at all
            }
            assert!(text.contains(r#"job="my-dynalert""#), "{format} {name}");
            assert!(
                !text.contains(r#"job="dynalert""#),
                "{format} {name}:\n{text}"
            );
            assert!(!text.contains("__EXPORTER_JOB__"), "{format} {name}");
        }
    }
}

#[test]
fn without_exporter_job_the_platform_rules_select_the_default_job() {
    assert_platform_job(&[], "dynalert");
}

// ---------------------------------------------------------------------------------------------
// 4. rules defaults

/// The `key: default` (and `key_critical: …`) entries a pack's keys must produce.
fn expected_defaults(pack: &Pack) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (key, decl) in &pack.keys {
        out.insert(key.clone(), decl.default);
        if let Some(critical) = decl.default_critical {
            out.insert(format!("{key}_critical"), critical);
        }
    }
    out
}

fn numbers(section: &Value) -> BTreeMap<String, f64> {
    section
        .as_object()
        .unwrap_or_else(|| panic!("a mapping, not {section}"))
        .iter()
        .map(|(k, v)| (k.clone(), v.as_f64().unwrap_or_else(|| panic!("{k}: {v}"))))
        .collect()
}

/// Writes a file and returns the 1-based line holding `needle`.
fn write_file(path: &Path, text: &str, needle: &str) -> usize {
    std::fs::write(path, text).unwrap();
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn defaults_hold_every_key_and_lint_accepts_them() {
    let text = stdout_of(&["rules", "defaults", "--packs", "platform,redis"]);
    let doc = yaml(&text);
    let (platform, redis) = (pack("platform"), pack("redis"));
    assert!(redis.pseudo_tenant.is_none());
    let tenant = platform
        .pseudo_tenant
        .as_deref()
        .expect("platform is a pseudo-tenant pack");
    assert_eq!(numbers(&doc["defaults"]), expected_defaults(redis));
    // The platform pack's keys belong to its pseudo-tenant, not to every tenant.
    assert_eq!(
        doc["tenants"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        vec![tenant]
    );
    assert_eq!(
        numbers(&doc["tenants"][tenant]),
        expected_defaults(platform)
    );

    let conf = tempfile::tempdir().unwrap();
    std::fs::write(conf.path().join("_defaults.yaml"), &text).unwrap();
    // mysql_connections is declared by the mariadb pack only: no platform file lists it.
    assert!(pack("mariadb").keys.contains_key("mysql_connections"));
    assert!(!text.contains("mysql_connections"));
    std::fs::write(
        conf.path().join("db-a.yaml"),
        "tenants:\n  db-a:\n    mysql_connections: 120\n    redis_memory_usage: 70\n",
    )
    .unwrap();
    let dir = conf.path().to_str().unwrap();
    assert_eq!(stdout_of(&["lint", dir]), "", "a clean tree prints nothing");

    // An unknown key fails, naming the file, the line and the key.
    let typo = "redis_conected_clients";
    assert!(!dynalert_rules::declared_keys().iter().any(|k| k == typo));
    let file = conf.path().join("db-b.yaml");
    let line = write_file(
        &file,
        &format!("tenants:\n  db-b:\n    redis_memory_usage: 70\n    {typo}: 5\n"),
        typo,
    );
    let out = dynalert(&["lint", dir]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let prefix = format!("{}:{line}:", file.display());
    let diagnostic = stdout
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no diagnostic at {prefix}:\n{stdout}"));
    assert!(diagnostic.contains("error"), "{diagnostic}");
    assert!(
        diagnostic.contains(&format!("unknown key \"{typo}\"")),
        "{diagnostic}"
    );
    assert_eq!(
        stdout.lines().count(),
        1,
        "only the typo is reported:\n{stdout}"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. errors

/// Runs a render that must fail as a usage error, into a missing directory and into one that
/// holds a file already: the first is not created, the second is left as it was.
fn assert_render_fails(args: &[&str], message: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let existing = dir.path().join("existing");
    std::fs::create_dir(&existing).unwrap();
    std::fs::write(existing.join("keep.yml"), "groups: []\n").unwrap();
    let before = tree(&existing);
    let mut stderr = String::new();
    for out in [&missing, &existing] {
        let mut full = vec!["rules", "render", "--out", out.to_str().unwrap()];
        full.extend(args);
        stderr = error_of(&full);
        for m in message {
            assert!(stderr.contains(m), "{args:?}: {m:?} not in {stderr}");
        }
    }
    assert!(!missing.exists(), "{args:?} created --out");
    assert_eq!(tree(&existing), before, "{args:?} changed --out");
    stderr
}

#[test]
fn an_unknown_pack_is_named_with_the_known_ones_and_nothing_is_written() {
    let known: Vec<&str> = catalogue().iter().map(|p| p.pack.as_str()).collect();
    let mut message = vec!["\"nope\""];
    message.extend(&known);
    assert_render_fails(&["--packs", "nope"], &message);
    // Even when the other packs of the list exist.
    assert_render_fails(
        &["--packs", "mariadb,nope", "--format", "configmap"],
        &message,
    );
    let stderr = error_of(&["rules", "defaults", "--packs", "nope"]);
    for m in &message {
        assert!(stderr.contains(m), "{m:?} not in {stderr}");
    }
}

#[test]
fn a_malformed_label_is_a_usage_error_and_nothing_is_written() {
    let cm = ["--packs", "redis", "--format", "configmap"];
    let with = |label: &'static str| [&cm[..], &["--label", label]].concat();
    assert_render_fails(&with("team"), &["\"team\"", "key=value"]);
    assert_render_fails(&with("=sre"), &["\"=sre\"", "empty label name"]);
    // Plain files carry no labels: asking for one is an error, not silently dropped.
    assert_render_fails(&["--packs", "redis", "--label", "team=sre"], &["--label"]);
}

#[test]
fn an_exporter_job_that_cannot_be_rendered_is_refused() {
    // A quote would end the PromQL string (every platform rule unparsable); an empty name
    // selects no target, so DynalertAbsent would fire forever.
    let stderr = assert_render_fails(
        &["--packs", "platform", "--exporter-job", "a\"b"],
        &["a\\\"b"],
    );
    assert!(stderr.contains("--exporter-job"), "{stderr}");
    assert_render_fails(&["--packs", "platform", "--exporter-job", ""], &["empty"]);
    // A ServiceMonitor's job name (with slashes) is fine.
    let job = "serviceMonitor/monitoring/dynalert/0";
    assert_platform_job(&["--exporter-job", job], job);
}

#[test]
fn a_render_that_cannot_write_every_file_writes_none() {
    // Something in the way of the second pack's file, in two places: the target itself, and
    // where the renderer stages it (the failure then comes after the first pack was staged).
    for obstacle in ["redis-alert.yml", ".redis-alert.yml.tmp"] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir_all(out.join(obstacle)).unwrap();
        std::fs::write(out.join("mariadb-alert.yml"), "old\n").unwrap();
        let before = tree(&out);
        let args = [
            "rules",
            "render",
            "--packs",
            PACKS,
            "--out",
            out.to_str().unwrap(),
        ];
        let stderr = error_of(&args);
        assert!(stderr.contains("redis-alert.yml"), "{obstacle}: {stderr}");
        assert_eq!(
            tree(&out),
            before,
            "{obstacle}: a failed render changed --out"
        );
    }
}
