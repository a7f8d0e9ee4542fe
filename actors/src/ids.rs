//! Identifier newtypes. Parsed once at the boundary, so the engine never confuses a ticket id
//! with an agent id or an organization with a session.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh random id.
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

macro_rules! numeric_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_id!(
    /// A ticketsync organization (tenant).
    OrgId
);
uuid_id!(
    /// A ticketsync session (one per tracked ticket).
    SessionId
);
uuid_id!(
    /// An accepted webhook event.
    EventId
);
uuid_id!(
    /// A recorded outbound write (outbox entry).
    EffectId
);
numeric_id!(
    /// A Freshdesk ticket id.
    TicketId
);
impl TicketId {
    /// The largest ticket id: Freshdesk's ids are 64-bit signed integers (the API document
    /// says `int64`, minimum 1).
    pub const MAX: u64 = i64::MAX as u64;

    /// The ticket id `n`, when Freshdesk can have it (1 to [`TicketId::MAX`]).
    pub fn from_number(n: u64) -> Option<Self> {
        (1..=Self::MAX).contains(&n).then_some(Self(n))
    }
}

numeric_id!(
    /// A Freshdesk conversation id.
    ConversationId
);
numeric_id!(
    /// A Freshdesk agent id (equal to the agent's user id in conversations).
    AgentId
);
numeric_id!(
    /// A Freshdesk group id.
    GroupId
);
