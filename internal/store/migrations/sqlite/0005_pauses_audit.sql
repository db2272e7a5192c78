-- Emergency pauses and the hash-chained audit log (issue 8).

-- A pause is active while resumed_at is NULL; senders read the active ones
-- before every signing round through the partial index.
CREATE TABLE pauses (
    id         TEXT    PRIMARY KEY,
    scope      TEXT    NOT NULL,
    chain      TEXT    NOT NULL DEFAULT '',
    asset      TEXT    NOT NULL DEFAULT '',
    wallet     TEXT    NOT NULL DEFAULT '', -- checksummed hex, '' when none
    reason     TEXT    NOT NULL,
    created_by TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    resumed_by TEXT    NOT NULL DEFAULT '',
    resumed_at INTEGER
) WITHOUT ROWID;
CREATE INDEX pauses_active ON pauses (id) WHERE resumed_at IS NULL;

-- Append-only: hash = SHA-256(prev_hash || canonical entry), hex. details
-- is kept as the exact bytes that were hashed.
CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    actor     TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    object    TEXT    NOT NULL,
    details   TEXT    NOT NULL,
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL
);
