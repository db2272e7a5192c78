-- Fees, replacements and operator requests (issue 4): a payout's priority,
-- why it waits or is stuck, an operator's fee cap, a cancel asked after
-- broadcast and whether the cancel mined; what each attempt does.

ALTER TABLE payouts ADD COLUMN priority         TEXT          NOT NULL DEFAULT 'standard';
ALTER TABLE payouts ADD COLUMN status_reason    TEXT          NOT NULL DEFAULT '';
ALTER TABLE payouts ADD COLUMN status_detail    TEXT          NOT NULL DEFAULT '';
ALTER TABLE payouts ADD COLUMN fee_cap          NUMERIC(78,0) CHECK (fee_cap > 0);
ALTER TABLE payouts ADD COLUMN cancel_requested BOOLEAN       NOT NULL DEFAULT false;
ALTER TABLE payouts ADD COLUMN cancel_mined     BOOLEAN       NOT NULL DEFAULT false;

-- The payouts in flight that carry an operator's request, read by their
-- sender every round.
CREATE INDEX payouts_requests ON payouts (chain_id, sender)
    WHERE cancel_requested OR fee_cap IS NOT NULL;

ALTER TABLE attempts ADD COLUMN kind TEXT NOT NULL DEFAULT 'transfer';
