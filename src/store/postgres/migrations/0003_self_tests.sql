-- The last setup self-test report per org (src/selftest.rs). `running_since` is set while a
-- run is in progress, so that starting a run is one conditional write: a second start, on any
-- node, finds the row running and is refused until it finished or is stale.

CREATE TABLE self_tests (
    org_id uuid PRIMARY KEY,
    running_since timestamptz,
    record json NOT NULL
);
