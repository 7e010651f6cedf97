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
