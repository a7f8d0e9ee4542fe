//! Setup self-test reports on PostgreSQL (`crate::store::SelfTestStore`). Not fenced: any node
//! runs a self-test an admin started there.

use super::PgStore;
use crate::selftest::{SelfTestReport, SelfTestState};
use crate::store::{SelfTestStore, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ticketsync_actors::OrgId;
use tokio_postgres::types::Json;

/// The `running_since` column of a report: its start while it runs.
fn running_since(report: &SelfTestReport) -> Option<DateTime<Utc>> {
    (report.state == SelfTestState::Running).then_some(report.started_at)
}

#[async_trait]
impl SelfTestStore for PgStore {
    async fn begin_self_test(
        &self,
        org: OrgId,
        report: &SelfTestReport,
        stale_before: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let report = report.clone();
        let stored = self
            .run(move |pool| async move {
                let written = pool
                    .get()
                    .await?
                    .execute(
                        "INSERT INTO self_tests (org_id, running_since, record) VALUES ($1, $2, $3) \
                         ON CONFLICT (org_id) DO UPDATE SET running_since = EXCLUDED.running_since, \
                         record = EXCLUDED.record \
                         WHERE self_tests.running_since IS NULL OR self_tests.running_since < $4",
                        &[&org.0, &running_since(&report), &Json(&report), &stale_before],
                    )
                    .await?;
                Ok(written == 1)
            })
            .await?;
        Ok(stored)
    }

    async fn put_self_test(&self, org: OrgId, report: &SelfTestReport) -> StoreResult<()> {
        let report = report.clone();
        self.run(move |pool| async move {
            pool.get()
                .await?
                .execute(
                    "UPDATE self_tests SET running_since = $2, record = $3 WHERE org_id = $1",
                    &[&org.0, &running_since(&report), &Json(&report)],
                )
                .await?;
            Ok(())
        })
        .await?;
        Ok(())
    }

    async fn self_test(&self, org: OrgId) -> StoreResult<Option<SelfTestReport>> {
        let report = self
            .run(move |pool| async move {
                let row = pool
                    .get()
                    .await?
                    .query_opt("SELECT record FROM self_tests WHERE org_id = $1", &[&org.0])
                    .await?;
                Ok(row.map(|r| r.get::<_, Json<SelfTestReport>>(0).0))
            })
            .await?;
        Ok(report)
    }
}
