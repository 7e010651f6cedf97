//! The incremental rendering (shards, reused lines of unchanged tenants) always serves what a
//! fresh render of the same model serves, through edits, new and removed tenants, platform
//! changes and a change of shard layout.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use dynalert_config::{Delta, DocumentSet, Timeline, Upsert};
use dynalert_exposition::{Exposition, RenderStats, render_once};

const DEFAULTS: &str = "defaults:\n  mysql_connections: 80\n  mysql_connections_critical: 100\n  \
                        redis_memory_usage: 85\n  kafka_disk_usage: 85\n";

fn tenant_doc(name: &str, connections: u32) -> (String, String) {
    let mut body = format!("tenants:\n  {name}:\n    mysql_connections: {connections}\n");
    // Some tenants carry a schedule, so time-dependent rows take part too.
    if connections.is_multiple_of(3) {
        body.push_str(
            "    redis_memory_usage:\n      default: 70\n      timezone: UTC\n      \
             overrides:\n        - {window: \"22:00-06:00\", value: 95}\n",
        );
    }
    if connections.is_multiple_of(5) {
        body.push_str("    kafka_disk_usage: disable\n");
    }
    (format!("{name}.yaml"), body)
}

/// The text's lines grouped by family and sorted: the shard layout decides the order of
/// tenants within a family, nothing else.
fn by_family(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut families: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            current = rest.split(' ').next().unwrap_or_default().to_string();
        }
        families
            .entry(current.clone())
            .or_default()
            .push(line.to_string());
    }
    for lines in families.values_mut() {
        lines.sort();
    }
    families
}

struct Fixture {
    loader: DocumentSet,
    exposition: Exposition,
    timeline: Timeline,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            loader: DocumentSet::new(),
            exposition: Exposition::new(),
            timeline: Timeline::new(),
        }
    }

    /// Applies the documents, updates the exposition at `at`, checks it against a fresh
    /// render and returns how many tenants were rendered again.
    fn step(
        &mut self,
        upserts: Vec<(String, String)>,
        removed: Vec<String>,
        at: DateTime<Utc>,
    ) -> usize {
        self.step_stats(upserts, removed, at).tenants_rendered
    }

    /// [`Fixture::step`], returning everything the update reports.
    fn step_stats(
        &mut self,
        upserts: Vec<(String, String)>,
        removed: Vec<String>,
        at: DateTime<Utc>,
    ) -> RenderStats {
        let upserts = upserts
            .into_iter()
            .map(|(path, content)| Upsert::text(path, content))
            .collect();
        let mut diff = self.loader.apply(Delta { upserts, removed }).diff;
        let model = self.loader.model();
        self.timeline.advance(&model, &mut diff, at);
        assert!(model.diagnostics.is_empty(), "{:?}", model.diagnostics);
        let stats = self.exposition.update(&model, &diff, at);
        let served = self.exposition.snapshot().to_text();
        assert_eq!(by_family(&served), by_family(&render_once(&model, at)));
        assert_eq!(
            self.exposition.snapshot().threshold_series(),
            served
                .lines()
                .filter(|l| l.starts_with("user_threshold{"))
                .count()
        );
        stats
    }
}

fn name(i: u32) -> String {
    format!("t{i:04}")
}

#[test]
fn incremental_rendering_matches_a_fresh_render_through_every_kind_of_change() {
    let noon = Utc.with_ymd_and_hms(2026, 11, 18, 12, 0, 0).unwrap();
    let night = Utc.with_ymd_and_hms(2026, 11, 18, 23, 0, 0).unwrap();
    let mut f = Fixture::new();
    let mut docs = vec![("_defaults.yaml".to_string(), DEFAULTS.to_string())];
    docs.extend((0..300).map(|i| tenant_doc(&name(i), 50 + i % 40)));
    assert_eq!(f.step(docs, vec![], noon), 300);

    // One tenant edited: only it is resolved again, the rest of its shard is reused.
    assert_eq!(f.step(vec![tenant_doc(&name(7), 61)], vec![], noon), 1);
    // A new value for a key the tenant already set changes one family's lines: only that
    // piece of the shard is compressed again.
    let stats = f.step_stats(vec![tenant_doc(&name(1), 54)], vec![], noon);
    assert_eq!((stats.tenants_rendered, stats.shards_rebuilt), (1, 1));
    assert_eq!(stats.pieces_compressed, 1, "{stats:?}");
    // An edit that changes nothing the tenant configures (a comment): the model diff, which
    // compares canonical digests, names no tenant, so nothing is rendered again. (Before the
    // diff, the exposition compared pointers and rendered this tenant again.)
    let unchanged = tenant_doc(&name(8), 58);
    assert_eq!(
        f.step(
            vec![(unchanged.0, format!("# note\n{}", unchanged.1))],
            vec![],
            noon
        ),
        0
    );
    // A new tenant and a removed one.
    assert_eq!(f.step(vec![tenant_doc("newcomer", 77)], vec![], noon), 1);
    assert_eq!(f.step(vec![], vec![format!("{}.yaml", name(9))], noon), 0);
    // Night: the scheduled tenants (every third) are due and only they render again.
    let scheduled = f.step(vec![], vec![], night);
    assert!((90..=110).contains(&scheduled), "{scheduled}");
    // A platform change reaches every tenant.
    let defaults = DEFAULTS.replace("85", "86");
    assert_eq!(
        f.step(vec![("_defaults.yaml".into(), defaults)], vec![], night),
        300
    );
    // Growing past the shard layout's slack relays the tenants out; then edits go on.
    let more: Vec<_> = (300..1200)
        .map(|i| tenant_doc(&name(i), 50 + i % 40))
        .collect();
    f.step(more, vec![], night);
    assert_eq!(f.step(vec![tenant_doc(&name(1100), 42)], vec![], night), 1);
    // And shrinking back.
    let gone: Vec<String> = (100..1200).map(|i| format!("{}.yaml", name(i))).collect();
    f.step(vec![], gone, noon);
    assert_eq!(f.step(vec![tenant_doc(&name(3), 43)], vec![], noon), 1);
}
