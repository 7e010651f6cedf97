//! The conf.d of a round (tenant files with custom values, disabled keys, critical tiers,
//! per-queue rows, metadata and maintenance), and what `dynalert serve` serves from it.

use super::*;

/// What the generated tenant files set.
#[derive(Default)]
pub(super) struct Conf {
    pub(super) custom: usize,
    pub(super) disabled: usize,
    pub(super) critical: usize,
    pub(super) dimension_rows: usize,
    pub(super) metadata: usize,
    pub(super) maintenance: usize,
}

/// `_defaults.yaml` and one file per tenant: about a quarter of the keys with a custom value,
/// 4 % disabled, a tenth of the critical tiers raised, per-queue rows on 30 % of the tenants,
/// metadata on a third and maintenance on 2 %.
pub(super) fn write_conf(
    dir: &Path,
    defaults: &str,
    catalogue: &Catalogue,
    tenants: &[String],
) -> Result<Conf> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::write(dir.join("_defaults.yaml"), defaults)?;
    let mut conf = Conf::default();
    for (index, tenant) in tenants.iter().enumerate() {
        let mut rng =
            SplitMix64(0x00D1_7A1E ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut body = String::new();
        for key in &catalogue.keys {
            if let Some(dimension) = key.dimension.as_deref().and_then(dimension)
                && rng.below(10) < 3
            {
                let _ = writeln!(
                    body,
                    "    \"{}{{{}='{}'}}\": {}",
                    key.name,
                    dimension.label,
                    dimension.values[0],
                    number(key.default * 0.4)
                );
                conf.dimension_rows += 1;
                if rng.below(3) == 0 {
                    let _ = writeln!(
                        body,
                        "    \"{}{{{}='{}'}}\": {}",
                        key.name,
                        dimension.label,
                        dimension.values[1],
                        number(key.default * 4.0)
                    );
                    conf.dimension_rows += 1;
                }
            }
            let roll = rng.below(100);
            let factor = [0.5, 0.75, 1.5, 2.0][rng.below(4) as usize];
            let mut warning = key.default;
            if roll < 4 {
                let _ = writeln!(body, "    {}: disable", key.name);
                conf.disabled += 1;
                continue;
            } else if roll < 30 && key.default > 0.0 {
                warning = key.default * factor;
                let _ = writeln!(body, "    {}: {}", key.name, number(warning));
                conf.custom += 1;
            }
            if let Some(critical) = key.default_critical
                && key.default > 0.0
                && rng.below(10) == 0
            {
                let raised = critical.max(warning) * 1.25;
                let _ = writeln!(body, "    {}_critical: {}", key.name, number(raised));
                conf.critical += 1;
            }
        }
        if rng.below(3) == 0 {
            let tier = ["gold", "silver", "bronze"][rng.below(3) as usize];
            let _ = writeln!(
                body,
                "    _metadata: {{owner: team-{}, runbook_url: \"https://runbooks.example.com/{tenant}\", tier: {tier}}}",
                rng.below(20)
            );
            conf.metadata += 1;
        }
        if index % 50 == 6 {
            body.push_str("    _state_maintenance: enable\n");
            conf.maintenance += 1;
        }
        let text = if body.is_empty() {
            format!("tenants:\n  {tenant}: {{}}\n")
        } else {
            format!("tenants:\n  {tenant}:\n{body}")
        };
        fs::write(dir.join(format!("{tenant}.yaml")), text)?;
    }
    Ok(conf)
}

pub(super) fn dimension(label: &str) -> Option<&'static Dimension> {
    DIMENSIONS.iter().find(|d| d.label == label)
}

/// A threshold with at most two decimals.
pub(super) fn number(value: f64) -> String {
    let rounded = (value * 100.0).round() / 100.0;
    format!("{rounded}")
}

/// SplitMix64: deterministic, well mixed, no dependency.
pub(super) struct SplitMix64(u64);

impl SplitMix64 {
    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

pub(super) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

// ---------------------------------------------------------------------------------------------
// What dynalert serves

/// One `user_threshold` row.
pub(super) struct Row {
    pub(super) tenant: String,
    pub(super) component: String,
    pub(super) metric: String,
    pub(super) severity: String,
    /// Dimension labels.
    pub(super) labels: Vec<(String, String)>,
    pub(super) value: f64,
}

pub(super) struct Served {
    pub(super) rows: Vec<Row>,
    /// Non-empty `owner`, `runbook_url` and `tier` of `tenant_metadata_info`, per tenant.
    pub(super) metadata: HashMap<String, Vec<(String, String)>>,
    pub(super) maintenance: BTreeSet<String>,
    pub(super) tenants: BTreeSet<String>,
    pub(super) series: usize,
}

impl Served {
    pub(super) fn parse(body: &str) -> Self {
        let mut served = Served {
            rows: Vec::new(),
            metadata: HashMap::new(),
            maintenance: BTreeSet::new(),
            tenants: BTreeSet::new(),
            series: count_series(body),
        };
        for line in body.lines() {
            let Some((name, mut labels, value)) = parse_sample(line) else {
                continue;
            };
            let mut take = |label: &str| {
                labels
                    .iter()
                    .position(|(l, _)| l == label)
                    .map(|p| labels.remove(p).1)
                    .unwrap_or_default()
            };
            match name {
                "user_threshold" => {
                    let row = Row {
                        tenant: take("tenant"),
                        component: take("component"),
                        metric: take("metric"),
                        severity: take("severity"),
                        labels,
                        value,
                    };
                    served.tenants.insert(row.tenant.clone());
                    served.rows.push(row);
                }
                "tenant_metadata_info" => {
                    let tenant = take("tenant");
                    let fields: Vec<(String, String)> = ["owner", "runbook_url", "tier"]
                        .into_iter()
                        .map(|label| (label.to_owned(), take(label)))
                        .filter(|(_, value)| !value.is_empty())
                        .collect();
                    served.metadata.insert(tenant, fields);
                }
                "user_state_filter" if value == 1.0 && take("filter") == "maintenance" => {
                    served.maintenance.insert(take("tenant"));
                }
                _ => {}
            }
        }
        served
    }
}

/// Label pairs, in the order of the exposition.
pub(super) type Labels = Vec<(String, String)>;

/// `name{labels} value` of a text exposition line.
pub(super) fn parse_sample(line: &str) -> Option<(&str, Labels, f64)> {
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    let mut labels = Vec::new();
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        loop {
            while chars.next_if(|(_, c)| *c == ',' || *c == ' ').is_some() {}
            match chars.peek() {
                Some((at, '}')) => {
                    rest = &inner[at + 1..];
                    break;
                }
                None => return None,
                _ => {}
            }
            let mut label = String::new();
            for (_, c) in chars.by_ref() {
                if c == '=' {
                    break;
                }
                label.push(c);
            }
            if chars.next()?.1 != '"' {
                return None;
            }
            let mut value = String::new();
            loop {
                match chars.next()?.1 {
                    '"' => break,
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    c => value.push(c),
                }
            }
            labels.push((label.trim().to_owned(), value));
        }
    }
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some((name, labels, value))
}
