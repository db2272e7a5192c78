-- Times are unix microseconds (UTC); amounts and fees are exact decimal
-- strings of base units; addresses and hashes are lowercase 0x hex.

CREATE TABLE payouts (
    id              TEXT    PRIMARY KEY,
    status          TEXT    NOT NULL,
    chain           TEXT    NOT NULL,
    chain_id        INTEGER NOT NULL,
    asset           TEXT    NOT NULL,
    to_address      TEXT    NOT NULL,
    amount          TEXT    NOT NULL,
    external_id     TEXT,
    metadata        TEXT    NOT NULL DEFAULT '{}',
    sender          TEXT    NOT NULL,
    tx_hash         TEXT,
    nonce           INTEGER,
    block_number    INTEGER,
    block_hash      TEXT,
    fee             TEXT,
    receipt_ok      INTEGER NOT NULL DEFAULT 0,
    failure_code    TEXT    NOT NULL DEFAULT '',
    failure_message TEXT    NOT NULL DEFAULT '',
    version         INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX payouts_external_id ON payouts (external_id) WHERE external_id IS NOT NULL;
CREATE INDEX payouts_status ON payouts (status, id);
CREATE INDEX payouts_sender_status ON payouts (chain_id, sender, status, created_at);

-- The nonce allocation: one row per (chain, sender, nonce), written in the
-- transaction that stores the first attempt using it.
CREATE TABLE nonces (
    chain_id  INTEGER NOT NULL,
    sender    TEXT    NOT NULL,
    nonce     INTEGER NOT NULL,
    payout_id TEXT    NOT NULL REFERENCES payouts (id),
    PRIMARY KEY (chain_id, sender, nonce)
) WITHOUT ROWID;

CREATE TABLE attempts (
    id                       INTEGER PRIMARY KEY AUTOINCREMENT,
    payout_id                TEXT    NOT NULL REFERENCES payouts (id),
    chain_id                 INTEGER NOT NULL,
    sender                   TEXT    NOT NULL,
    nonce                    INTEGER NOT NULL,
    tx_hash                  TEXT    NOT NULL UNIQUE,
    raw_tx                   BLOB    NOT NULL,
    gas_limit                INTEGER NOT NULL,
    max_fee_per_gas          TEXT    NOT NULL,
    max_priority_fee_per_gas TEXT    NOT NULL,
    created_at               INTEGER NOT NULL
);
CREATE INDEX attempts_payout ON attempts (payout_id, id);
CREATE INDEX attempts_sender_nonce ON attempts (chain_id, sender, nonce);

-- The outbox.
CREATE TABLE events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT    NOT NULL UNIQUE,
    type       TEXT    NOT NULL,
    object_id  TEXT    NOT NULL,
    object_seq INTEGER NOT NULL,
    data       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (object_id, object_seq)
);

CREATE TABLE idempotency (
    scope           TEXT    NOT NULL,
    key             TEXT    NOT NULL,
    fingerprint     TEXT    NOT NULL,
    response_status INTEGER NOT NULL,
    response_body   BLOB    NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_created_at ON idempotency (created_at);

CREATE TABLE leases (
    chain_id   INTEGER NOT NULL,
    sender     TEXT    NOT NULL,
    owner      TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (chain_id, sender)
) WITHOUT ROWID;
