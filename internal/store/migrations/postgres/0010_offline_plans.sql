-- Offline signing (issue 7): a hot wallet's planned, unsigned transactions
-- exported for signing on a machine with no network. items holds the plan's
-- transactions as JSON (unsigned, digest, and signed once submitted). At
-- most one plan per wallet is active (requested, open, signed or
-- void_requested): the partial unique index makes a second one fail.
CREATE TABLE offline_plans (
    id           TEXT    PRIMARY KEY,
    chain        TEXT    NOT NULL,
    chain_id     BIGINT  NOT NULL,
    wallet       TEXT    NOT NULL, -- checksummed hex
    status       TEXT    NOT NULL,
    max_payouts  BIGINT  NOT NULL,
    items        TEXT    NOT NULL DEFAULT '[]',
    note         TEXT    NOT NULL DEFAULT '',
    requested_by TEXT    NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX offline_plans_active ON offline_plans (chain_id, wallet)
    WHERE status IN ('requested', 'open', 'signed', 'void_requested');
