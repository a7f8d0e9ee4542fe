//! Organizations and their Freshdesk connection settings, as the engine sees them.

pub(crate) mod actor;
pub(crate) mod budget;
pub(crate) mod gate;
pub(crate) mod jobs;

pub use budget::BudgetView;
pub use gate::OrgPause;
pub use jobs::{BackfillProgress, BackfillState, ListCursor, SweepProgress};

use crate::ids::{AgentId, GroupId, OrgId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A tenant of ticketsync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Org {
    pub id: OrgId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// Where a ticket came from (contract §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Web,
    Phone,
    Other,
}

impl Channel {
    /// Map a Freshdesk ticket `source` to its channel.
    pub fn from_source(source: u8) -> Self {
        match source {
            1 | 10 => Self::Email,
            2 | 7 | 9 => Self::Web,
            3 => Self::Phone,
            _ => Self::Other,
        }
    }

    /// The lowercase name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Web => "web",
            Self::Phone => "phone",
            Self::Other => "other",
        }
    }
}

/// What the AI does on a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChannelMode {
    /// Public replies.
    Autopilot,
    /// Private draft notes with the assist footer.
    Assist,
    /// The AI does not answer on this channel.
    Off,
}

fn autopilot() -> ChannelMode {
    ChannelMode::Autopilot
}

/// Per-channel modes. An omitted `other` follows `web`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelModes {
    #[serde(default = "autopilot")]
    pub email: ChannelMode,
    #[serde(default = "autopilot")]
    pub web: ChannelMode,
    #[serde(default = "autopilot")]
    pub phone: ChannelMode,
    #[serde(default)]
    pub other: Option<ChannelMode>,
}

impl Default for ChannelModes {
    fn default() -> Self {
        Self {
            email: ChannelMode::Autopilot,
            web: ChannelMode::Autopilot,
            phone: ChannelMode::Autopilot,
            other: None,
        }
    }
}

impl ChannelModes {
    /// The mode in force on a channel.
    pub fn mode_for(&self, channel: Channel) -> ChannelMode {
        match channel {
            Channel::Email => self.email,
            Channel::Web => self.web,
            Channel::Phone => self.phone,
            Channel::Other => self.other.unwrap_or(self.web),
        }
    }
}

/// How a handed-off ticket is routed (contract §4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Routing {
    /// `responder_id: null`, reopen.
    #[default]
    Unassign,
    /// Unassign, reopen, set the marker field for Freshdesk automation.
    Automation,
    /// Assign the handoff agent, reopen, marker.
    Agent,
    /// Assign the handoff group, unassign the agent, reopen, marker.
    Group,
}

impl Routing {
    /// The lowercase name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unassign => "unassign",
            Self::Automation => "automation",
            Self::Agent => "agent",
            Self::Group => "group",
        }
    }
}

/// The org's handoff plan.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HandoffSettings {
    #[serde(default)]
    pub routing: Routing,
    #[serde(default)]
    pub agent_id: Option<AgentId>,
    #[serde(default)]
    pub group_id: Option<GroupId>,
    /// API name of the custom checkbox set on handoff (may carry a numeric suffix).
    #[serde(default)]
    pub marker_field: Option<String>,
}

/// An org's Freshdesk settings, without the API key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgSettings {
    /// The validated Freshdesk host.
    pub domain: String,
    pub auto_handle_all: bool,
    pub default_group_id: Option<GroupId>,
    pub handoff: HandoffSettings,
    pub channels: ChannelModes,
    pub assist_footer: Option<String>,
}

/// The Freshdesk agent the AI posts as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AiAgent {
    pub id: AgentId,
    pub name: String,
    pub email: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_map_to_channels_as_the_spec_lists() {
        for (source, channel) in [
            (1, Channel::Email),
            (10, Channel::Email),
            (2, Channel::Web),
            (7, Channel::Web),
            (9, Channel::Web),
            (3, Channel::Phone),
            (4, Channel::Other),
            (5, Channel::Other),
            (6, Channel::Other),
            (8, Channel::Other),
            (11, Channel::Other),
            (12, Channel::Other),
            (13, Channel::Other),
            (101, Channel::Other),
        ] {
            assert_eq!(Channel::from_source(source), channel, "source {source}");
        }
    }

    #[test]
    fn the_other_channel_follows_web_unless_set() {
        let mut modes = ChannelModes {
            web: ChannelMode::Assist,
            ..ChannelModes::default()
        };
        assert_eq!(modes.mode_for(Channel::Other), ChannelMode::Assist);
        modes.other = Some(ChannelMode::Off);
        assert_eq!(modes.mode_for(Channel::Other), ChannelMode::Off);
    }
}
