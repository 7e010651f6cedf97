-- Documents are conf.d files by relative path; a document's revision is the id of the audit
-- entry that wrote it, so revisions are unique across the store's whole life (a tenant
-- deleted and created again never reuses an old revision).
CREATE TABLE documents (
    path     TEXT PRIMARY KEY,
    content  TEXT NOT NULL,
    revision BIGINT NOT NULL
);

CREATE TABLE audit (
    id     BIGSERIAL PRIMARY KEY,
    at     TEXT NOT NULL,
    actor  TEXT NOT NULL,
    object TEXT NOT NULL,
    path   TEXT NOT NULL,
    before TEXT,
    after  TEXT
);

CREATE INDEX audit_by_object ON audit (object, id);
