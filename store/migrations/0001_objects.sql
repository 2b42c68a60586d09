-- Configuration objects created through the runtime API, and the audit log
-- of every write. STRICT: a value of the wrong type is refused, not stored.

-- One row per object. The name is unique per kind across workspaces: the
-- configuration namespace is global. `body` is the JSON object the API
-- received; `version` starts at 1 and grows by 1 per update (the ETag);
-- `seq` is the creation order, kept on update.
CREATE TABLE objects (
    kind          TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    workspace     TEXT    NOT NULL,
    body          TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    seq           INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (kind, name)
) STRICT;

CREATE INDEX objects_workspace_kind ON objects (workspace, kind);
-- Listing in the order the API promises (kind, then creation order).
CREATE INDEX objects_kind_seq ON objects (kind, seq);

-- One row, changed in the same transaction as `objects`: the next `seq`
-- (never reused, even after a delete) and the number of objects (the
-- `max_objects` check without a count; recounted at open).
CREATE TABLE counters (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    next_seq INTEGER NOT NULL,
    objects  INTEGER NOT NULL
) STRICT;

INSERT INTO counters (id, next_seq, objects) VALUES (1, 1, 0);

-- One row per write, appended in the write's transaction. `before` and
-- `after` are the object's bodies as the caller gave them (secrets already
-- redacted). AUTOINCREMENT: ids are never reused, so paging by id is stable
-- across pruning.
CREATE TABLE audit (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms     INTEGER NOT NULL,
    actor     TEXT    NOT NULL,
    role      TEXT    NOT NULL,
    workspace TEXT    NOT NULL,
    action    TEXT    NOT NULL CHECK (action IN ('create', 'update', 'delete')),
    kind      TEXT    NOT NULL,
    name      TEXT    NOT NULL,
    before    TEXT,
    after     TEXT
) STRICT;

CREATE INDEX audit_workspace_id ON audit (workspace, id);
-- One object's history.
CREATE INDEX audit_object_id ON audit (kind, name, id);
