//! The loader never panics, whatever bytes or YAML it is fed.

mod common;

use common::load_dir;

use proptest::prelude::*;

/// YAML-shaped text built from the format's own vocabulary, so the fuzzing reaches deep
/// into the validator rather than stopping at the YAML parser.
fn yamlish() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        Just("tenants".to_string()),
        Just("defaults".to_string()),
        Just("profiles".to_string()),
        Just("optional".to_string()),
        Just("state_filters".to_string()),
        Just("custom_alerts".to_string()),
        Just("_profile".to_string()),
        Just("_state_maintenance".to_string()),
        Just("_silent_mode".to_string()),
        Just("_metadata".to_string()),
        Just("_rules".to_string()),
        Just("overrides".to_string()),
        Just("window".to_string()),
        Just("days".to_string()),
        Just("expires".to_string()),
        Just("timezone".to_string()),
        Just("value".to_string()),
        Just("default".to_string()),
        Just("a_b".to_string()),
        Just("\"a_b{q='x'}\"".to_string()),
        Just("t-1".to_string()),
        "[a-z_]{1,8}",
    ];
    let scalar = prop_oneof![
        Just("5".to_string()),
        Just("\"5:critical\"".to_string()),
        Just("disable".to_string()),
        Just("'01:00-05:00'".to_string()),
        Just("[sat, sun]".to_string()),
        Just("Europe/Berlin".to_string()),
        Just("'2026-01-01T00:00:00Z'".to_string()),
        Just("{}".to_string()),
        Just("[]".to_string()),
        Just("~".to_string()),
        "[ -~]{0,12}",
    ];
    proptest::collection::vec((0usize..4, word, proptest::option::of(scalar)), 0..30).prop_map(
        |lines| {
            lines
                .into_iter()
                .map(|(indent, k, v)| {
                    format!(
                        "{}{}:{}\n",
                        "  ".repeat(indent),
                        k,
                        v.map(|v| format!(" {v}")).unwrap_or_default()
                    )
                })
                .collect()
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_yaml_trees_never_panic(platform in yamlish(), tenant in yamlish()) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("_defaults.yaml"), &platform).unwrap();
        std::fs::write(dir.path().join("t.yaml"), &tenant).unwrap();
        let model = load_dir(dir.path()).unwrap();
        let _ = model.resolve_at(chrono::Utc::now());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("_defaults.yaml"), &bytes).unwrap();
        std::fs::write(dir.path().join("t.yaml"), &bytes).unwrap();
        let model = load_dir(dir.path()).unwrap();
        let _ = model.resolve_at(chrono::Utc::now());
    }
}
