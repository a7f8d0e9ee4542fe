-- Org admin tokens (docs/decisions.md, "Access"): only the SHA-256 of each token is stored;
-- authentication looks a presented token up by its hash.
CREATE TABLE org_tokens (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL,
    name text NOT NULL,
    hash bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL,
    last_used_at timestamptz NULL
);
CREATE INDEX org_tokens_org ON org_tokens (org_id, created_at);
