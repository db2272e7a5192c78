-- Wallet rotations (issue 7): a hot wallet retired in favour of another.
-- A wallet is rotated away at most once: the unique index refuses a second
-- rotation from it.
CREATE TABLE wallet_rotations (
    id          TEXT    PRIMARY KEY,
    chain       TEXT    NOT NULL,
    chain_id    INTEGER NOT NULL,
    from_wallet TEXT    NOT NULL, -- checksummed hex
    to_wallet   TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    sweeps      TEXT    NOT NULL DEFAULT '[]', -- the sweep payouts' ids, JSON
    note        TEXT    NOT NULL DEFAULT '',
    created_by  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE UNIQUE INDEX wallet_rotations_from ON wallet_rotations (chain_id, from_wallet);
