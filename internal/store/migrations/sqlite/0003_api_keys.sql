-- API keys created through the API (issue 5). Only the SHA-256 of a
-- secret is kept; signing_key is the HMAC key a signing client derives
-- from its secret (NULL unless the key requires signed requests). Scopes
-- are comma-separated. A rate of 0 means the server's default.

CREATE TABLE api_keys (
    id              TEXT    PRIMARY KEY,
    name            TEXT    NOT NULL,
    prefix          TEXT    NOT NULL,
    hash            BLOB    NOT NULL UNIQUE,
    scopes          TEXT    NOT NULL,
    api_version     TEXT    NOT NULL,
    require_signing INTEGER NOT NULL DEFAULT 0,
    signing_key     BLOB,
    rate_per_second REAL    NOT NULL DEFAULT 0,
    rate_burst      INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER,
    revoked_at      INTEGER
) WITHOUT ROWID;

-- Request signatures seen, kept until they could no longer be accepted,
-- so a replay is refused by every instance.
CREATE TABLE api_signatures (
    key_id     TEXT    NOT NULL,
    signature  BLOB    NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (key_id, signature)
) WITHOUT ROWID;
CREATE INDEX api_signatures_expires_at ON api_signatures (expires_at);
