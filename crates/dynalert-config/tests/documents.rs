//! Documents applied the way the reload loop applies API writes ([`DocumentSet::apply`]):
//! one that comes parsed by the write's check is served as that parse, not parsed again.

use std::sync::Arc;

use dynalert_config::validate::check_write;
use dynalert_config::{Body, Delta, DocumentSet, Upsert};

const DEFAULTS: &str = "defaults:\n  mysql_connections: 80\n";

#[test]
fn a_document_checked_before_its_write_is_not_parsed_again() {
    let mut loader = DocumentSet::new();
    loader.apply(Delta {
        upserts: vec![Upsert::text("_defaults.yaml", DEFAULTS)],
        removed: vec![],
    });
    let text = "tenants:\n  a:\n    mysql_connections: 5\n";
    let (found, parsed) = check_write(&loader.model(), "a.yaml", text);
    assert!(found.is_empty(), "{found:?}");
    let upsert = |path: &str, parsed: &Arc<_>| Upsert {
        path: path.into(),
        body: Body::Text(text.into()),
        parsed: Some(Arc::clone(parsed)),
    };
    loader.apply(Delta {
        upserts: vec![upsert("a.yaml", &parsed)],
        removed: vec![],
    });
    let model = loader.model();
    assert!(Arc::ptr_eq(&model.sources["a.yaml"], &parsed));
    assert_eq!(model.tenants["a"].doc.thresholds.len(), 1);

    // A parse made for another path is not taken for this one (the tenant moves files).
    loader.apply(Delta {
        upserts: vec![upsert("b.yaml", &parsed)],
        removed: vec!["a.yaml".into()],
    });
    let served = &loader.model().sources["b.yaml"];
    assert!(!Arc::ptr_eq(served, &parsed));
    assert_eq!(served.path, "b.yaml");
}

#[test]
fn an_unreadable_document_keeps_its_last_good_version_and_reports_the_current_reason() {
    let mut loader = DocumentSet::new();
    loader.apply(Delta {
        upserts: vec![
            Upsert::text("_defaults.yaml", DEFAULTS),
            Upsert::text("a.yaml", "tenants:\n  a:\n    mysql_connections: 5\n"),
        ],
        removed: vec![],
    });
    let unreadable = |message: &str| Delta {
        upserts: vec![Upsert {
            path: "a.yaml".into(),
            body: Body::Unreadable {
                line: 1,
                message: message.into(),
            },
            parsed: None,
        }],
        removed: vec![],
    };
    for reason in ["not a regular file (a FIFO)", "file is 5000000 bytes"] {
        let applied = loader.apply(unreadable(reason));
        assert!(applied.stats.changed, "{reason}: a new reason is a change");
        let model = loader.model();
        assert_eq!(model.tenants["a"].doc.thresholds.len(), 1, "last good kept");
        let messages: Vec<&str> = model
            .diagnostics
            .iter()
            .map(|d| d.message.as_str())
            .collect();
        assert_eq!(messages, [reason]);
    }
    // The same reason again is no change: a re-scan of a still-refused file renders nothing.
    let again = loader.apply(unreadable("file is 5000000 bytes"));
    assert!(!again.stats.changed);
}
