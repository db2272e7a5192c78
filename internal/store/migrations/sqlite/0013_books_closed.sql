-- Reconciliation with the chain (invariant 6): the block up to which each
-- hot wallet's books were last reconciled, so that the engine goes on from
-- there after a restart or on another instance.
CREATE TABLE books_closed (
    chain_id   INTEGER NOT NULL,
    wallet     TEXT    NOT NULL, -- lowercase 0x hex
    block      INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (chain_id, wallet)
) WITHOUT ROWID;
