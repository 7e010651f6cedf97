//! `dynalert show TENANT`: a tenant's effective thresholds, as a table or JSON.

use std::process::ExitCode;

use anyhow::bail;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use dynalert_config::{KeyView, ResolvedTenant};

use super::{Format, parse_at};

#[derive(clap::Args)]
pub struct Args {
    /// Tenant name.
    tenant: String,
    #[command(flatten)]
    source: super::source::Source,
    /// Resolve schedules and expiries at this instant (RFC 3339), default now.
    #[arg(long, value_parser = parse_at)]
    at: Option<chrono::DateTime<chrono::Utc>>,
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let loaded = args.source.or_dir(None)?;
    let model = &loaded.model;
    let at = args.at.unwrap_or_else(chrono::Utc::now);
    let Some(resolved) = model.resolve_tenant_at(&args.tenant, at) else {
        let names = model.tenants.keys().map(String::as_str);
        bail!(
            "tenant {:?} is not defined under {}{}",
            args.tenant,
            loaded.described,
            dynalert_config::names::suggestion(&args.tenant, names)
        );
    };
    for d in model
        .diagnostics
        .iter()
        .filter(|d| d.tenant.as_deref() == Some(&args.tenant))
    {
        eprintln!("{d}");
    }
    match args.format {
        Format::Json => {
            super::stdout::write(&format!("{}\n", serde_json::to_string_pretty(&resolved)?))?
        }
        Format::Text => super::stdout::write(&render_text(&resolved, at))?,
    }
    Ok(ExitCode::SUCCESS)
}

fn render_text(t: &ResolvedTenant, at: chrono::DateTime<chrono::Utc>) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["KEY", "VALUE", "SEVERITY", "STATE", "ORIGIN"]);
    for k in &t.keys {
        table.add_row([
            k.key.to_string(),
            value_text(k),
            k.severity.to_string(),
            k.state.as_str().to_string(),
            origin_text(k),
        ]);
    }
    let mut out = format!(
        "tenant {} at {}\n{table}\n",
        t.name,
        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let filters: Vec<String> = t
        .state_filters
        .iter()
        .map(|(f, s)| format!("{f} ({s})"))
        .collect();
    out.push_str(&format!(
        "active state filters: {}\n",
        list_or_none(&filters)
    ));
    let silent: Vec<String> = t.silent.iter().map(|s| s.to_string()).collect();
    out.push_str(&format!("silenced severities: {}\n", list_or_none(&silent)));
    out.push_str(&format!(
        "severity dedup: {}\n",
        if t.dedup { "enable" } else { "disable" }
    ));
    let meta: Vec<String> = t
        .metadata
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    out.push_str(&format!("metadata: {}\n", list_or_none(&meta)));
    for e in &t.events {
        out.push_str(&format!("event: {} {}\n", e.event, e.key));
    }
    out
}

fn value_text(k: &KeyView) -> String {
    match k.value {
        Some(v) => dynalert_exposition::text::number(v),
        None => "-".into(),
    }
}

fn origin_text(k: &KeyView) -> String {
    let mut s = k
        .origin
        .as_ref()
        .map_or("-".into(), |o| format!("{}:{}", o.file, o.line));
    if let Some(e) = k.expires {
        s.push_str(&format!(
            " (expires {})",
            e.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ));
    }
    s
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}
