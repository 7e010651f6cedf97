//! A real Prometheus (Debian `prometheus`) scrapes `dynalert serve` and the thresholds are
//! queryable with the expected values, before and after an edit.

mod common;

use std::time::Duration;

use common::{Served, write};
use dynalert_testkit::{Prometheus, ScrapeTarget};

#[test]
fn prometheus_scrapes_thresholds_per_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf.d");
    write(
        &conf,
        "_defaults.yaml",
        "defaults:\n  mysql_connections: 80\n  mysql_connections_critical: 95\n",
    );
    write(
        &conf,
        "db-a.yaml",
        "tenants:\n  db-a:\n    mysql_connections: 70\n    _metadata: {owner: team-a}\n",
    );
    write(
        &conf,
        "db-b.yaml",
        "tenants:\n  db-b:\n    mysql_connections: disable\n",
    );
    let served = Served::start(&conf, dir.path());
    let Some(prom) =
        Prometheus::start(&[ScrapeTarget::new("dynalert", served.port)], None).unwrap()
    else {
        return;
    };
    let query = r#"user_threshold{tenant="db-a",component="mysql",metric="connections",severity="warning"}"#;
    let samples = prom
        .wait_for(
            query,
            |s| s.len() == 1 && s[0].value == 70.0,
            Duration::from_secs(30),
        )
        .unwrap();
    assert_eq!(samples[0].label("job"), Some("dynalert"));
    // db-b disabled the key: no row at all, so no rule can fire for it.
    assert!(
        prom.query_samples(r#"user_threshold{tenant="db-b",component="mysql"}"#)
            .unwrap()
            .is_empty()
    );
    let meta = prom
        .query_samples(r#"tenant_metadata_info{tenant="db-a"}"#)
        .unwrap();
    assert_eq!(meta[0].label("owner"), Some("team-a"));
    let state = prom
        .query_samples(
            r#"user_threshold_state_filter{tenant="db-b",metric_key="mysql_connections"}"#,
        )
        .unwrap();
    assert_eq!(state[0].value, -1.0);

    write(
        &conf,
        "db-a.yaml",
        "tenants:\n  db-a:\n    mysql_connections: 65\n",
    );
    prom.wait_for(
        query,
        |s| s.len() == 1 && s[0].value == 65.0,
        Duration::from_secs(30),
    )
    .unwrap();
    // The exporter's own health is scraped too.
    let ok = prom
        .query_samples("dynalert_config_last_reload_successful")
        .unwrap();
    assert_eq!(ok[0].value, 1.0);
}
