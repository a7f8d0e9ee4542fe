-- The whole state of a ticketsync deployment (docs/decisions.md, "PostgreSQL client").
-- Records are the same JSON the sled backend stores, as type json, not jsonb: jsonb refuses
-- the U+0000 that Freshdesk text and admin input may hold, and SQL never looks inside a
-- record. Columns beside them exist only to be indexed (session list, pending effects,
-- session lookup).

CREATE TABLE meta (
    key text PRIMARY KEY,
    value bytea NOT NULL
);

CREATE TABLE orgs (
    id uuid PRIMARY KEY,
    created_at timestamptz NOT NULL,
    record json NOT NULL
);

CREATE TABLE connections (
    org_id uuid PRIMARY KEY,
    record json NOT NULL
);

-- The webhook inbox: events wait here until the ticket's actor consumed them.
CREATE TABLE inbox (
    seq bigserial PRIMARY KEY,
    org_id uuid NOT NULL,
    ticket_id bigint NOT NULL,
    event json NOT NULL
);
CREATE INDEX inbox_ticket ON inbox (org_id, ticket_id, seq);

CREATE TABLE tickets (
    org_id uuid NOT NULL,
    ticket_id bigint NOT NULL,
    record json NOT NULL,
    pending boolean NOT NULL,
    session_id uuid NULL,
    session_updated_micros bigint NULL,
    summary json NULL,
    PRIMARY KEY (org_id, ticket_id)
);
CREATE UNIQUE INDEX tickets_session ON tickets (session_id) WHERE session_id IS NOT NULL;
CREATE INDEX tickets_session_list ON tickets (org_id, session_updated_micros DESC, ticket_id)
    WHERE session_updated_micros IS NOT NULL;
CREATE INDEX tickets_pending ON tickets (org_id, ticket_id) WHERE pending;

CREATE TABLE org_webhooks (
    org_id uuid PRIMARY KEY,
    last_webhook_at timestamptz NOT NULL
);

CREATE TABLE jobs (
    org_id uuid NOT NULL,
    job text NOT NULL,
    state json NOT NULL,
    PRIMARY KEY (org_id, job)
);

CREATE TABLE nodes (
    node_id text PRIMARY KEY,
    address text NOT NULL,
    started_at timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    leaving boolean NOT NULL DEFAULT false
);

-- One row per shard (inserted at first start); the owner proves `token` in every engine write.
CREATE TABLE shard_leases (
    shard int PRIMARY KEY,
    owner text NULL,
    token bigint NOT NULL DEFAULT 0,
    expires_at timestamptz NULL
);
