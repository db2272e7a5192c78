-- Policies, their decisions, and deny/allow lists (issue 8).

-- Every version of the policy document is kept; at most one is active.
CREATE TABLE policy_versions (
    version    INTEGER PRIMARY KEY,
    document   TEXT    NOT NULL,
    sha256     TEXT    NOT NULL,
    active     INTEGER NOT NULL DEFAULT 0,
    created_by TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX policy_versions_active ON policy_versions (active) WHERE active = 1;

-- A payout's decision, kept apart from the payouts table and read where
-- the payout is rendered. No foreign key: the decision is written before
-- the payout it allows.
CREATE TABLE policy_decisions (
    payout_id      TEXT    PRIMARY KEY,
    policy_version INTEGER NOT NULL,
    rule           TEXT    NOT NULL,
    action         TEXT    NOT NULL,
    code           TEXT    NOT NULL,
    reason         TEXT    NOT NULL,
    api_key_id     TEXT    NOT NULL,
    facts          TEXT    NOT NULL,
    decided_at     INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE lists (
    name       TEXT    PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (kind IN ('deny', 'allow')),
    sanctions  INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Addresses are lowercase 0x hex, as on payouts.
CREATE TABLE list_entries (
    list_name TEXT    NOT NULL REFERENCES lists (name),
    address   TEXT    NOT NULL,
    note      TEXT    NOT NULL DEFAULT '',
    added_at  INTEGER NOT NULL,
    PRIMARY KEY (list_name, address)
) WITHOUT ROWID;
CREATE INDEX list_entries_address ON list_entries (address);

-- Facts: a destination's first completed payout (partial, so that a
-- destination never paid costs one index probe), and the payouts of the
-- velocity windows.
CREATE INDEX payouts_to_completed ON payouts (to_address, created_at) WHERE status = 'completed';
CREATE INDEX payouts_created ON payouts (created_at);
