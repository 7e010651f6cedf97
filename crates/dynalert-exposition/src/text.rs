//! Prometheus text format (0.0.4) lines for one resolved tenant, family by family.

use std::fmt::Write as _;

use dynalert_config::ResolvedTenant;

/// The threshold families in the order they are exposed, with their HELP text.
pub const FAMILIES: [(&str, &str); 7] = [
    (
        "user_threshold",
        "Threshold a tenant's live metric is compared with, per component, metric, severity and dimension.",
    ),
    (
        "user_threshold_state_filter",
        "Where a tenant's key comes from: 1 custom, 0 default, -1 disabled.",
    ),
    (
        "user_state_filter",
        "1 while a state filter (e.g. maintenance) is active for the tenant.",
    ),
    (
        "user_silent_mode",
        "1 while the tenant silences alerts of this severity.",
    ),
    (
        "user_severity_dedup",
        "The tenant's severity dedup mode (enable or disable).",
    ),
    (
        "tenant_metadata_info",
        "Tenant metadata for enriching alerts; 1 for every tenant.",
    ),
    (
        "dynalert_config_event",
        "1 while an expired entry remains in the configuration files.",
    ),
];

/// `# HELP` and `# TYPE` lines of family `index`.
pub fn family_header(index: usize) -> String {
    let (name, help) = FAMILIES[index];
    format!("# HELP {name} {help}\n# TYPE {name} gauge\n")
}

/// Appends the tenant's lines of every family to `out[family]`.
pub fn render_tenant(t: &ResolvedTenant, out: &mut [String; 7]) {
    let tenant = escape(t.name);
    // The two big families are built with push_str: formatting machinery costs more than
    // the text itself at 150,000 rows.
    for row in &t.rows {
        let line = &mut out[0];
        line.push_str("user_threshold{tenant=\"");
        line.push_str(&tenant);
        line.push_str("\",component=\"");
        line.push_str(&escape(row.component));
        line.push_str("\",metric=\"");
        line.push_str(&escape(row.metric));
        line.push_str("\",severity=\"");
        line.push_str(row.severity.as_str());
        line.push('"');
        for (label, value) in &row.dims {
            line.push(',');
            line.push_str(label);
            line.push_str("=\"");
            line.push_str(&escape(value));
            line.push('"');
        }
        line.push_str("} ");
        push_number(line, row.value);
        line.push('\n');
    }
    for (key, state) in &t.key_states {
        let line = &mut out[1];
        line.push_str("user_threshold_state_filter{tenant=\"");
        line.push_str(&tenant);
        line.push_str("\",metric_key=\"");
        line.push_str(key);
        line.push_str(match state {
            1 => "\"} 1\n",
            0 => "\"} 0\n",
            _ => "\"} -1\n",
        });
    }
    for (filter, severity) in &t.state_filters {
        let _ = writeln!(
            out[2],
            "user_state_filter{{tenant=\"{tenant}\",filter=\"{filter}\",severity=\"{severity}\"}} 1"
        );
    }
    for severity in &t.silent {
        let _ = writeln!(
            out[3],
            "user_silent_mode{{tenant=\"{tenant}\",target_severity=\"{severity}\"}} 1"
        );
    }
    let mode = if t.dedup { "enable" } else { "disable" };
    let _ = writeln!(
        out[4],
        "user_severity_dedup{{tenant=\"{tenant}\",mode=\"{mode}\"}} 1"
    );
    let _ = write!(out[5], "tenant_metadata_info{{tenant=\"{tenant}\"");
    for (label, value) in &t.metadata {
        let _ = write!(out[5], ",{label}=\"{}\"", escape(value));
    }
    out[5].push_str("} 1\n");
    for e in &t.events {
        let _ = writeln!(
            out[6],
            "dynalert_config_event{{tenant=\"{tenant}\",key=\"{}\",event=\"{}\"}} 1",
            escape(&e.key),
            e.event
        );
    }
}

/// Escapes a label value: backslash, double quote and newline.
pub fn escape(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return value.into();
    }
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
        .into()
}

/// Prometheus float syntax: `80`, `0.5`, `+Inf`.
pub fn number(v: f64) -> String {
    let mut s = String::new();
    push_number(&mut s, v);
    s
}

/// Appends `v` in Prometheus float syntax; whole numbers (most thresholds) take the
/// integer path, which is several times faster than float formatting.
pub fn push_number(out: &mut String, v: f64) {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53: every integer below is exact
    if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else if v.fract() == 0.0 && v.abs() < EXACT {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_label_values() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("x\ny"), "x\\ny");
        assert_eq!(number(80.0), "80");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(f64::INFINITY), "+Inf");
    }
}
