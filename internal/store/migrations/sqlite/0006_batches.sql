-- Batch payouts (issue 6): the batch, each payout's row in it, and the
-- batch transactions that pay many payouts at once. A carried payout
-- (carrier_id set) follows the payout whose attempts carry the
-- transaction; its fee is its share of that transaction's fee by its
-- marginal gas (gas_weight).

CREATE TABLE batches (
    id           TEXT    PRIMARY KEY,
    status       TEXT    NOT NULL,
    policy       TEXT    NOT NULL,
    source       TEXT    NOT NULL,
    rows_total   INTEGER NOT NULL,
    rows_invalid INTEGER NOT NULL,
    errors       TEXT    NOT NULL DEFAULT '[]',
    version      INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX batches_created ON batches (created_at, id);

ALTER TABLE payouts ADD COLUMN batch_id     TEXT;
ALTER TABLE payouts ADD COLUMN batch_row    INTEGER;
ALTER TABLE payouts ADD COLUMN carrier_id   TEXT;
ALTER TABLE payouts ADD COLUMN chunk_pos    INTEGER NOT NULL DEFAULT 0;
ALTER TABLE payouts ADD COLUMN gas_weight   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE payouts ADD COLUMN chunk_amount TEXT;
ALTER TABLE payouts ADD COLUMN log_index    INTEGER;

CREATE INDEX payouts_batch ON payouts (batch_id, batch_row) WHERE batch_id IS NOT NULL;
CREATE INDEX payouts_carrier ON payouts (carrier_id, chunk_pos) WHERE carrier_id IS NOT NULL;
