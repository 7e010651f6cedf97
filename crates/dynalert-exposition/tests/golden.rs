//! The exact `/metrics` text for the example tree, pinned at fixed instants.

use std::path::Path;

use chrono::{TimeZone, Utc};
use dynalert_config::{ModelDiff, Timeline};

fn examples() -> std::sync::Arc<dynalert_config::Model> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/conf.d");
    let model = dynalert_config::load_documents(dynalert_store::read_tree(&root).unwrap(), []);
    assert!(
        model.diagnostics.is_empty(),
        "examples must lint clean: {:?}",
        model.diagnostics
    );
    model
}

#[test]
fn example_metrics_on_a_weekday_night() {
    // Wednesday 2026-11-18 23:30 in Berlin: db-a's nightly window is active.
    let at = Utc.with_ymd_and_hms(2026, 11, 18, 22, 30, 0).unwrap();
    insta::assert_snapshot!(dynalert_exposition::render_once(&examples(), at));
}

#[test]
fn example_metrics_on_a_weekend_day() {
    // Saturday 2026-11-21 12:00 UTC: db-a's weekend window disables mysql_threads_running.
    let at = Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap();
    insta::assert_snapshot!(dynalert_exposition::render_once(&examples(), at));
}

#[test]
fn incremental_update_equals_a_fresh_render() {
    let model = examples();
    let night = Utc.with_ymd_and_hms(2026, 11, 18, 22, 30, 0).unwrap();
    let weekend = Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap();
    let mut e = dynalert_exposition::Exposition::new();
    let mut timeline = Timeline::new();
    let initial = ModelDiff::initial(&model);
    timeline.follow(&model, &initial, night);
    e.update(&model, &initial, night);
    assert!(
        timeline
            .next_due()
            .is_some_and(|d| d <= night + chrono::Duration::minutes(1))
    );
    let unchanged = e.update(&model, &ModelDiff::default(), weekend);
    assert_eq!(
        unchanged.tenants_rendered, 0,
        "nothing renders unless the diff says so"
    );
    let stats = e.update(
        &model,
        &ModelDiff::due(timeline.take_due(&model, weekend)),
        weekend,
    );
    assert!(stats.tenants_rendered > 0);
    assert_eq!(
        e.snapshot().to_text(),
        dynalert_exposition::render_once(&model, weekend)
    );
}

#[test]
fn gzip_body_is_one_member_equal_to_the_plain_body() {
    use std::io::Read;
    let at = Utc.with_ymd_and_hms(2026, 11, 18, 12, 0, 0).unwrap();
    let mut e = dynalert_exposition::Exposition::new();
    let model = examples();
    e.update(&model, &ModelDiff::initial(&model), at);
    let snap = e.snapshot();
    let tail = b"# TYPE x gauge\nx 1\n";
    let gz = snap.gzip_body(tail).concat();
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out, snap.plain_body(tail).concat());
}
