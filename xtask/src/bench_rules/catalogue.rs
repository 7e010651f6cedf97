//! The packs' keys as `dynalert rules list` describes them, each signal written over the raw
//! exporter series (recorded signals replaced by their recording rule's expression).

use super::*;

/// One threshold key of a pack, with its signal written over the raw exporter series.
pub(super) struct Key {
    pub(super) pack: String,
    pub(super) name: String,
    pub(super) component: String,
    pub(super) metric: String,
    pub(super) op: String,
    pub(super) dimension: Option<String>,
    /// The signal's label holding the dimension's values, when the exporter names it otherwise.
    pub(super) dimension_label: Option<String>,
    /// The normalization expression the key's signal records (one line).
    pub(super) signal: String,
    pub(super) default: f64,
    pub(super) default_critical: Option<f64>,
    pub(super) alert: String,
    /// `<alert>Critical`, if the pack has it.
    pub(super) critical_alert: Option<String>,
    pub(super) for_: String,
    pub(super) summary: String,
    pub(super) description: String,
    pub(super) unit: String,
}

impl Key {
    /// `(<signal>) <op> <threshold>`: an alert condition with its number inlined.
    pub(super) fn against(&self, signal: &str, threshold: f64) -> String {
        format!("({signal}) {} {threshold}", self.op)
    }
}

pub(super) struct Catalogue {
    pub(super) keys: Vec<Key>,
    /// Alerting rules of the chosen packs.
    pub(super) alerts: usize,
    /// Recording rules of the rendered files.
    pub(super) recording: usize,
}

impl Catalogue {
    pub(super) fn new(
        list: &Json,
        packs: &[String],
        recording: &[(String, String)],
    ) -> Result<Self> {
        let recorded: HashMap<&str, &str> = recording
            .iter()
            .map(|(name, expr)| (name.as_str(), expr.as_str()))
            .collect();
        let mut keys = Vec::new();
        let mut alerts = 0;
        for pack in list.array() {
            let name = pack.get("pack").and_then(Json::str).unwrap_or("");
            if !packs.iter().any(|p| p == name) {
                continue;
            }
            let pack_alerts: Vec<&str> = pack
                .get("alerts")
                .map(Json::array)
                .unwrap_or(&[])
                .iter()
                .filter_map(Json::str)
                .collect();
            alerts += pack_alerts.len();
            for (key_name, key) in pack.get("keys").map(Json::object).unwrap_or(&[]) {
                let text = |field: &str| -> Result<String> {
                    key.get(field)
                        .and_then(Json::str)
                        .map(str::to_owned)
                        .with_context(|| format!("key {key_name}: no {field}"))
                };
                let alert = key.get("alert").context("no alert")?;
                let alert_text = |field: &str| -> Result<String> {
                    alert
                        .get(field)
                        .and_then(Json::str)
                        .map(str::to_owned)
                        .with_context(|| format!("key {key_name}: no alert.{field}"))
                };
                let signal_name = text("signal")?;
                let signal = recorded
                    .get(signal_name.as_str())
                    .map_or_else(|| signal_name.clone(), |expr| (*expr).to_owned());
                let dimension = key.get("dimension").and_then(Json::str).map(str::to_owned);
                let dimension_label = key
                    .get("dimension_label")
                    .and_then(Json::str)
                    .map(str::to_owned);
                // A per-tenant rule's alerts carry the dimension's label, as the pack's do.
                let signal = match (&dimension, &dimension_label) {
                    (Some(d), Some(label)) => {
                        format!("label_replace({signal}, \"{d}\", \"$1\", \"{label}\", \"(.*)\")")
                    }
                    _ => signal,
                };
                let nested: Vec<String> = selector_names(&signal)
                    .into_iter()
                    .filter(|name| recorded.contains_key(name.as_str()))
                    .collect();
                ensure!(
                    nested.is_empty(),
                    "key {key_name}: its signal reads recorded series {nested:?}; \
                     the per-tenant variant inlines one level of recording rules only"
                );
                let (component, metric) = key_name
                    .split_once('_')
                    .with_context(|| format!("key {key_name} has no component"))?;
                let alert_name = alert_text("name")?;
                let critical = format!("{alert_name}Critical");
                keys.push(Key {
                    pack: name.to_owned(),
                    name: key_name.clone(),
                    component: component.to_owned(),
                    metric: metric.to_owned(),
                    op: text("op")?,
                    dimension,
                    dimension_label,
                    signal,
                    default: key.get("default").and_then(Json::number).unwrap_or(0.0),
                    default_critical: key.get("default_critical").and_then(Json::number),
                    critical_alert: pack_alerts.contains(&critical.as_str()).then_some(critical),
                    alert: alert_name,
                    for_: alert_text("for")?,
                    summary: alert_text("summary")?,
                    description: alert_text("description")?,
                    unit: text("unit")?,
                });
            }
        }
        for pack in packs {
            ensure!(
                keys.iter().any(|key| &key.pack == pack),
                "`dynalert rules list` has no keys for pack {pack}"
            );
        }
        Ok(Self {
            keys,
            alerts,
            recording: recording.len(),
        })
    }
}

/// `(record, expr)` of every recording rule in the rendered files of `dir`, exprs on one line.
pub(super) fn recording_rules(dir: &Path) -> Result<Vec<(String, String)>> {
    let mut rules = Vec::new();
    for path in yaml_files(dir)? {
        let text = fs::read_to_string(&path).with_context(|| format!("reading {path:?}"))?;
        rules.extend(parse_recording_rules(&text));
    }
    Ok(rules)
}

pub(super) fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

/// The recording rules of a rule file as `dynalert rules render` writes it: `- record: NAME`
/// followed by `expr:` inline or as a block scalar.
pub(super) fn parse_recording_rules(text: &str) -> Vec<(String, String)> {
    let indent_of = |line: &str| line.len() - line.trim_start().len();
    let lines: Vec<&str> = text.lines().collect();
    let mut rules = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(name) = lines[i].trim_start().strip_prefix("- record:") else {
            i += 1;
            continue;
        };
        let name = unquote(name.trim());
        let fields = indent_of(lines[i]) + 2;
        let mut expr = None;
        i += 1;
        while i < lines.len() {
            let line = lines[i];
            if line.trim().is_empty() {
                i += 1;
                continue;
            }
            if indent_of(line) < fields {
                break;
            }
            i += 1;
            if indent_of(line) != fields {
                continue;
            }
            let Some(value) = line.trim_start().strip_prefix("expr:") else {
                continue;
            };
            let value = value.trim();
            if value.starts_with('|') || value.starts_with('>') {
                let mut block = Vec::new();
                while i < lines.len()
                    && (lines[i].trim().is_empty() || indent_of(lines[i]) > fields)
                {
                    block.push(lines[i].trim());
                    i += 1;
                }
                expr = Some(block.join(" ").trim().to_owned());
            } else {
                expr = Some(unquote(value));
            }
        }
        if let Some(expr) = expr {
            rules.push((name, expr));
        }
    }
    rules
}

/// A YAML scalar without its quotes.
pub(super) fn unquote(value: &str) -> String {
    if value.len() >= 2 && value.starts_with('\'') && value.ends_with('\'') {
        value[1..value.len() - 1].replace("''", "'")
    } else if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
        let mut out = String::new();
        let mut chars = value[1..value.len() - 1].chars();
        while let Some(c) = chars.next() {
            match (c, c == '\\') {
                (_, true) => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(other) => out.push(other),
                    None => {}
                },
                (c, false) => out.push(c),
            }
        }
        out
    } else {
        value.to_owned()
    }
}

/// Fails when a pack reads a raw series that the synthetic exporter does not serve: the
/// comparison would then measure rules over missing data.
pub(super) fn check_raw_series(catalogue: &Catalogue, packs: &[String]) -> Result<()> {
    let read: BTreeSet<String> = catalogue
        .keys
        .iter()
        .flat_map(|key| selector_names(&key.signal))
        .collect();
    let body = Synthetic::new(vec!["t".to_owned()], packs.to_vec()).render();
    let served: BTreeSet<&str> = body
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split(['{', ' ']).next())
        .collect();
    let missing: Vec<&String> = read
        .iter()
        .filter(|name| !served.contains(name.as_str()) && !NOT_SERVED.contains(&name.as_str()))
        .collect();
    ensure!(
        missing.is_empty(),
        "the packs read raw series the synthetic exporter does not serve: {missing:?} \
         (teach `Synthetic` about them)"
    );
    println!(
        "the packs read {} raw series, all served (left out on purpose: {})",
        read.len(),
        NOT_SERVED.join(", ")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rendered_recording_rules() {
        let text = "groups:\n- name: g\n  rules:\n  - record: a:b:max\n    expr: max by(tenant) (x)\n\
                    \x20 - record: c\n    expr: |\n      max by(tenant) (\n        y / z\n      )\n\
                    \x20   labels:\n      k: v\n- name: h\n  rules:\n  - record: 'd'\n    expr: \"e{a=\\\"b\\\"}\"\n";
        assert_eq!(
            parse_recording_rules(text),
            [
                ("a:b:max".to_owned(), "max by(tenant) (x)".to_owned()),
                ("c".to_owned(), "max by(tenant) ( y / z )".to_owned()),
                ("d".to_owned(), "e{a=\"b\"}".to_owned()),
            ]
        );
    }
}
