-- API keys created through the API (issue 5). Only the SHA-256 of a
-- secret is kept; signing_key is the HMAC key a signing client derives
-- from its secret (NULL unless the key requires signed requests). Scopes
-- are comma-separated. A rate of 0 means the server's default.

CREATE TABLE api_keys (
    id              TEXT             PRIMARY KEY,
    name            TEXT             NOT NULL,
    prefix          TEXT             NOT NULL,
    hash            BYTEA            NOT NULL UNIQUE,
    scopes          TEXT             NOT NULL,
    api_version     TEXT             NOT NULL,
    require_signing BOOLEAN          NOT NULL DEFAULT false,
    signing_key     BYTEA,
    rate_per_second DOUBLE PRECISION NOT NULL DEFAULT 0,
    rate_burst      INTEGER          NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ      NOT NULL,
    last_used_at    TIMESTAMPTZ,
    revoked_at      TIMESTAMPTZ
);

-- Request signatures seen, kept until they could no longer be accepted,
-- so a replay is refused by every instance.
CREATE TABLE api_signatures (
    key_id     TEXT        NOT NULL,
    signature  BYTEA       NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (key_id, signature)
);
CREATE INDEX api_signatures_expires_at ON api_signatures (expires_at);
