-- API key labels and approval quorums for policy changes (issue 8).

-- A key's labels, a JSON object of string to string, set when the key is
-- made; policy rules read them as api_key_labels.
ALTER TABLE api_keys ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';

-- A policy version is 'applied' (it was made active when stored, or when
-- its quorum approved it), 'pending' (it waits for quorum approvals),
-- 'rejected' (an approver rejected it) or 'superseded' (a newer version
-- was stored while it waited). Versions stored before are applied.
ALTER TABLE policy_versions ADD COLUMN status TEXT NOT NULL DEFAULT 'applied'
    CHECK (status IN ('applied', 'pending', 'rejected', 'superseded'));
ALTER TABLE policy_versions ADD COLUMN quorum INTEGER NOT NULL DEFAULT 0;

-- One decision per approver and pending policy version.
CREATE TABLE policy_approvals (
    version         BIGINT      NOT NULL REFERENCES policy_versions (version),
    approver_key_id TEXT        NOT NULL,
    approver_name   TEXT        NOT NULL,
    decision        TEXT        NOT NULL CHECK (decision IN ('approve', 'reject')),
    reason          TEXT        NOT NULL DEFAULT '',
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (version, approver_key_id)
);
