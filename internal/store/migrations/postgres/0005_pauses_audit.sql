-- Emergency pauses and the hash-chained audit log (issue 8).

-- A pause is active while resumed_at is NULL; senders read the active ones
-- before every signing round through the partial index.
CREATE TABLE pauses (
    id         TEXT        PRIMARY KEY,
    scope      TEXT        NOT NULL,
    chain      TEXT        NOT NULL DEFAULT '',
    asset      TEXT        NOT NULL DEFAULT '',
    wallet     TEXT        NOT NULL DEFAULT '', -- checksummed hex, '' when none
    reason     TEXT        NOT NULL,
    created_by TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    resumed_by TEXT        NOT NULL DEFAULT '',
    resumed_at TIMESTAMPTZ
);
CREATE INDEX pauses_active ON pauses (id) WHERE resumed_at IS NULL;

-- Append-only: hash = SHA-256(prev_hash || canonical entry), hex. details
-- is TEXT, not JSONB, so the exact bytes that were hashed are kept.
-- Appends are serialised by a transaction-scoped advisory lock.
CREATE TABLE audit_log (
    seq       BIGINT      PRIMARY KEY,
    at        TIMESTAMPTZ NOT NULL,
    actor     TEXT        NOT NULL,
    action    TEXT        NOT NULL,
    object    TEXT        NOT NULL,
    details   TEXT        NOT NULL,
    prev_hash TEXT        NOT NULL,
    hash      TEXT        NOT NULL
);
