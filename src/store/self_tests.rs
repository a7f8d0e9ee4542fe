//! Setup self-test reports (`crate::selftest`): the last report per org, one record, and the
//! start of a run as one conditional write so that two nodes cannot start two runs of one org.

use super::{decode, encode, SledStore, StoreResult};
use crate::selftest::{SelfTestReport, SelfTestState};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ticketsync_actors::OrgId;

/// The org's last self-test report.
#[async_trait]
pub trait SelfTestStore {
    /// Store `report` (a run that starts) as the org's report, unless the stored one is still
    /// running and started at or after `stale_before`. Returns whether it was stored.
    async fn begin_self_test(
        &self,
        org: OrgId,
        report: &SelfTestReport,
        stale_before: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Replace the org's report (a run's progress or result). Only a report that exists is
    /// replaced: once the org was erased, a run still finishing stores nothing.
    async fn put_self_test(&self, org: OrgId, report: &SelfTestReport) -> StoreResult<()>;
    /// The org's last report.
    async fn self_test(&self, org: OrgId) -> StoreResult<Option<SelfTestReport>>;
}

/// Whether a stored report keeps a new run from starting.
pub(crate) fn blocks_new_run(stored: &SelfTestReport, stale_before: DateTime<Utc>) -> bool {
    stored.state == SelfTestState::Running && stored.started_at >= stale_before
}

#[async_trait]
impl SelfTestStore for SledStore {
    async fn begin_self_test(
        &self,
        org: OrgId,
        report: &SelfTestReport,
        stale_before: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let key = org.0.as_bytes();
        let fresh = encode(report);
        loop {
            let current = self.self_tests.get(key)?;
            if let Some(bytes) = &current {
                if blocks_new_run(&decode(bytes)?, stale_before) {
                    return Ok(false);
                }
            }
            match self
                .self_tests
                .compare_and_swap(key, current, Some(fresh.clone()))?
            {
                Ok(()) => return Ok(true),
                // Another start wrote in between: look again.
                Err(_) => continue,
            }
        }
    }

    async fn put_self_test(&self, org: OrgId, report: &SelfTestReport) -> StoreResult<()> {
        let fresh = encode(report);
        self.self_tests
            .fetch_and_update(org.0.as_bytes(), |old| old.map(|_| fresh.clone()))?;
        Ok(())
    }

    async fn self_test(&self, org: OrgId) -> StoreResult<Option<SelfTestReport>> {
        self.self_tests
            .get(org.0.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }
}

/// The store's half of "one run per org": `first` and `second` may be two handles on one
/// database (two nodes). Shared by both backends' tests.
#[cfg(test)]
pub(crate) async fn check_one_run_at_a_time(first: &dyn SelfTestStore, second: &dyn SelfTestStore) {
    let running = |started_at: DateTime<Utc>| SelfTestReport {
        id: uuid::Uuid::new_v4(),
        state: SelfTestState::Running,
        started_at,
        finished_at: None,
        ticket_id: None,
        steps: Vec::new(),
    };
    let org = OrgId::new();
    let now = Utc::now();
    let stale_before = now - chrono::Duration::minutes(5);
    assert_eq!(second.self_test(org).await.unwrap(), None);
    let run = running(now);
    assert!(first
        .begin_self_test(org, &run, stale_before)
        .await
        .unwrap());
    assert!(!second
        .begin_self_test(org, &running(now), stale_before)
        .await
        .unwrap());
    assert_eq!(second.self_test(org).await.unwrap(), Some(run));

    let stale = running(now - chrono::Duration::minutes(10));
    first.put_self_test(org, &stale).await.unwrap();
    assert!(second
        .begin_self_test(org, &running(now), stale_before)
        .await
        .unwrap());

    let mut done = running(now);
    done.state = SelfTestState::Failed;
    second.put_self_test(org, &done).await.unwrap();
    let next = running(now);
    assert!(first
        .begin_self_test(org, &next, stale_before)
        .await
        .unwrap());
    assert_eq!(second.self_test(org).await.unwrap(), Some(next));
    let unknown = OrgId::new();
    first.put_self_test(unknown, &running(now)).await.unwrap();
    assert_eq!(
        first.self_test(unknown).await.unwrap(),
        None,
        "a report is only replaced, never created, by a run's progress"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_rt::test]
    async fn a_running_report_blocks_a_second_start_until_it_is_stale_or_finished() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open_with_cache(dir.path(), 1 << 20).unwrap();
        check_one_run_at_a_time(&store, &store).await;
    }
}
