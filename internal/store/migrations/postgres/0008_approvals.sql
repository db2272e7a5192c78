-- Approvals of payouts a policy holds (issue 8).

-- What a pending_approval payout waits for: a quorum of a group's
-- approvers, or the end of a hold. Written before the payout, like its
-- decision, so no foreign key.
CREATE TABLE approval_requests (
    payout_id  TEXT        PRIMARY KEY,
    kind       TEXT        NOT NULL CHECK (kind IN ('require_approval', 'hold')),
    quorum     INTEGER     NOT NULL DEFAULT 0,
    group_name TEXT        NOT NULL DEFAULT '',
    initiator  TEXT        NOT NULL,
    hold_until TIMESTAMPTZ,
    expires_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- One decision per approver and payout.
CREATE TABLE approvals (
    payout_id       TEXT        NOT NULL,
    approver_key_id TEXT        NOT NULL,
    approver_name   TEXT        NOT NULL,
    decision        TEXT        NOT NULL CHECK (decision IN ('approve', 'reject')),
    reason          TEXT        NOT NULL DEFAULT '',
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (payout_id, approver_key_id)
);

-- The sweep reads pending payouts only.
CREATE INDEX payouts_pending_approval ON payouts (created_at) WHERE status = 'pending_approval';
