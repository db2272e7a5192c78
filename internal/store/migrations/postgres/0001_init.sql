-- Amounts and fees are NUMERIC(78,0) base units (2^256-1 has 78 digits);
-- addresses and hashes are lowercase 0x hex.

CREATE TABLE payouts (
    id              TEXT          PRIMARY KEY,
    status          TEXT          NOT NULL,
    chain           TEXT          NOT NULL,
    chain_id        BIGINT        NOT NULL,
    asset           TEXT          NOT NULL,
    to_address      TEXT          NOT NULL,
    amount          NUMERIC(78,0) NOT NULL CHECK (amount > 0),
    external_id     TEXT,
    metadata        TEXT          NOT NULL DEFAULT '{}',
    sender          TEXT          NOT NULL,
    tx_hash         TEXT,
    nonce           BIGINT,
    block_number    BIGINT,
    block_hash      TEXT,
    fee             NUMERIC(78,0),
    receipt_ok      BOOLEAN       NOT NULL DEFAULT false,
    failure_code    TEXT          NOT NULL DEFAULT '',
    failure_message TEXT          NOT NULL DEFAULT '',
    version         BIGINT        NOT NULL,
    created_at      TIMESTAMPTZ   NOT NULL,
    updated_at      TIMESTAMPTZ   NOT NULL
);
CREATE UNIQUE INDEX payouts_external_id ON payouts (external_id) WHERE external_id IS NOT NULL;
CREATE INDEX payouts_status ON payouts (status, id);
CREATE INDEX payouts_sender_status ON payouts (chain_id, sender, status, created_at);

-- The nonce allocation: one row per (chain, sender, nonce), written in the
-- transaction that stores the first attempt using it.
CREATE TABLE nonces (
    chain_id  BIGINT NOT NULL,
    sender    TEXT   NOT NULL,
    nonce     BIGINT NOT NULL,
    payout_id TEXT   NOT NULL REFERENCES payouts (id),
    PRIMARY KEY (chain_id, sender, nonce)
);

CREATE TABLE attempts (
    id                       BIGSERIAL     PRIMARY KEY,
    payout_id                TEXT          NOT NULL REFERENCES payouts (id),
    chain_id                 BIGINT        NOT NULL,
    sender                   TEXT          NOT NULL,
    nonce                    BIGINT        NOT NULL,
    tx_hash                  TEXT          NOT NULL UNIQUE,
    raw_tx                   BYTEA         NOT NULL,
    gas_limit                BIGINT        NOT NULL,
    max_fee_per_gas          NUMERIC(78,0) NOT NULL,
    max_priority_fee_per_gas NUMERIC(78,0) NOT NULL,
    created_at               TIMESTAMPTZ   NOT NULL
);
CREATE INDEX attempts_payout ON attempts (payout_id, id);
CREATE INDEX attempts_sender_nonce ON attempts (chain_id, sender, nonce);

-- The outbox.
CREATE TABLE events (
    seq        BIGSERIAL   PRIMARY KEY,
    id         TEXT        NOT NULL UNIQUE,
    type       TEXT        NOT NULL,
    object_id  TEXT        NOT NULL,
    object_seq BIGINT      NOT NULL,
    data       TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (object_id, object_seq)
);

CREATE TABLE idempotency (
    scope           TEXT        NOT NULL,
    key             TEXT        NOT NULL,
    fingerprint     TEXT        NOT NULL,
    response_status INTEGER     NOT NULL,
    response_body   BYTEA       NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_created_at ON idempotency (created_at);

CREATE TABLE leases (
    chain_id   BIGINT      NOT NULL,
    sender     TEXT        NOT NULL,
    owner      TEXT        NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (chain_id, sender)
);
