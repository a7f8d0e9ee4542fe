//! Wake-ups from other nodes: a dedicated connection `LISTEN`s on `ticketsync_wake`, where
//! every webhook's transaction sends `<org uuid>:<ticket id>` and every connection save or
//! disconnect sends `<org uuid>`. For orgs whose work runs here it wakes the ticket, or
//! mirrors the org's changed connection; on every node an org's notification makes the
//! webhook route read the org's connection again (`ConnectedOrgs`). Every ticket wake-up also tells the setup self-test
//! (whichever node it runs on) that a webhook for that ticket arrived. Notifications are hints: one lost (the connection
//! was down) costs latency only, since after every (re)connect the listener re-mirrors the
//! orgs that run here, and the periodic look (`poll`) finds tickets with work.

use super::work::EngineWork;
use crate::connected_orgs::ConnectedOrgs;
use crate::selftest::{Seen, SelfTests};
use crate::store::postgres::WAKE_CHANNEL;
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use ticketsync_actors::ports::Ownership;
use ticketsync_actors::{OrgId, TicketId};
use tokio_postgres::{AsyncMessage, NoTls};

/// Longest wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What a notification says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The ticket has new queued work.
    Ticket(OrgId, TicketId),
    /// The org's stored connection changed.
    Org(OrgId),
}

impl Wake {
    /// Parse a payload; None for anything else.
    pub fn parse(payload: &str) -> Option<Self> {
        match payload.split_once(':') {
            Some((org, ticket)) => Some(Self::Ticket(
                org.parse().ok()?,
                TicketId(ticket.parse().ok()?),
            )),
            None => Some(Self::Org(payload.parse().ok()?)),
        }
    }

    /// The payload that says this.
    pub fn payload(&self) -> String {
        match self {
            Self::Ticket(org, ticket) => format!("{org}:{ticket}"),
            Self::Org(org) => org.to_string(),
        }
    }
}

/// Listen forever (until the task is dropped), reconnecting after failures.
pub async fn listen(
    url: String,
    work: Arc<EngineWork>,
    ownership: Arc<dyn Ownership>,
    self_tests: SelfTests,
    connected_orgs: Arc<ConnectedOrgs>,
) {
    let mut failures = 0u32;
    loop {
        let listened = listen_once(
            &url,
            &work,
            ownership.as_ref(),
            &self_tests,
            &connected_orgs,
        )
        .await;
        // Changes made elsewhere go unheard until the next LISTEN.
        connected_orgs.listening(false);
        match listened {
            Ok(()) => failures = 0,
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, failures, "wake-up listener disconnected; reconnecting");
            }
        }
        let backoff = Duration::from_millis(100 << failures.min(6)).min(MAX_BACKOFF);
        tokio::time::sleep(backoff).await;
    }
}

/// One connection's life: LISTEN, catch up, then handle notifications until it ends.
async fn listen_once(
    url: &str,
    work: &EngineWork,
    ownership: &dyn Ownership,
    self_tests: &SelfTests,
    connected_orgs: &ConnectedOrgs,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = tokio_postgres::connect(url, NoTls).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(n.payload().to_string()).is_err() {
                        return Ok(());
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    client
        .batch_execute(&format!("LISTEN {WAKE_CHANNEL}"))
        .await?;
    connected_orgs.listening(true);
    tracing::info!("listening for wake-ups");
    // Notifications sent while we were not listening are lost: look again at what runs here.
    if let Err(e) = work.sync_orgs(|org| ownership.runs(org)).await {
        tracing::warn!(error = %e, "cannot re-mirror the orgs after (re)connecting");
    }
    if let Err(e) = work.engine.recover().await {
        tracing::warn!(error = %e, "cannot look for work after (re)connecting");
    }
    while let Some(payload) = rx.recv().await {
        let wake = Wake::parse(&payload);
        match wake {
            Some(Wake::Ticket(org, ticket)) => self_tests.observe(org, ticket, Seen::Wake),
            // Every node's webhook route reads the org's connection again.
            Some(Wake::Org(org)) => connected_orgs.forget(org),
            None => {}
        }
        match wake {
            Some(Wake::Ticket(org, ticket)) if ownership.runs(org) => work.engine.wake(org, ticket),
            Some(Wake::Org(org)) if ownership.runs(org) => {
                if let Err(e) = work.sync_orgs(|o| o == org).await {
                    tracing::warn!(org_id = %org, error = %e, "cannot mirror the org's changed connection");
                }
            }
            Some(_) => {}
            None => tracing::warn!(payload, "unknown wake-up payload"),
        }
    }
    drop(client);
    match driver.await {
        Ok(result) => result,
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_name_a_ticket_or_an_org_and_anything_else_is_refused() {
        let org = OrgId::new();
        for wake in [Wake::Ticket(org, TicketId(42)), Wake::Org(org)] {
            assert_eq!(Wake::parse(&wake.payload()), Some(wake));
        }
        assert_eq!(Wake::parse(&format!("{org}:x")), None);
        assert_eq!(Wake::parse("not-a-uuid"), None);
    }
}
