-- A pending policy version that waited longer than the approvals' expiry
-- is expired (issue 8): it keeps status 'rejected' (the status check of
-- 0009 stays as it is) and records when in expired_at; the store reads
-- such a version as 'expired'.
ALTER TABLE policy_versions ADD COLUMN expired_at TIMESTAMPTZ;
