//! Who is asking (contract §12): the operator (the configured `server.admin_token`: every org,
//! the engine pages, metrics) or an org admin (a token the operator created for one org, which
//! reaches only that org). The JSON API presents a token as a bearer token, the console
//! presents it once at sign-in; both ask `Access::authenticate`.

use crate::secrets::token_matches;
use crate::store::{Store, StoreError};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use ticketsync_actors::OrgId;

/// The id of an org admin token (never the token itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenId(pub uuid::Uuid);

impl std::fmt::Display for TokenId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Principal {
    /// The configured admin token: every org and the engine.
    Operator,
    /// An org admin token: this org only.
    OrgAdmin { org: OrgId, token: TokenId },
}

impl Principal {
    /// Whether this caller may see and change `org`. Anything else answers 404, so a caller
    /// never learns that another org exists.
    pub fn may_access(&self, org: OrgId) -> bool {
        match self {
            Self::Operator => true,
            Self::OrgAdmin { org: own, .. } => *own == org,
        }
    }

    /// Whether this caller is the operator.
    pub fn is_operator(&self) -> bool {
        matches!(self, Self::Operator)
    }
}

/// Checks presented tokens.
pub struct Access {
    operator_token: SecretString,
    #[allow(dead_code)] // org admin tokens are read from here (issue 11, access helper)
    store: Store,
}

impl Access {
    /// Check tokens against the operator token and the stored org admin tokens.
    pub fn new(operator_token: SecretString, store: Store) -> Self {
        Self {
            operator_token,
            store,
        }
    }

    /// The caller a presented token stands for, or None when it stands for no one.
    pub async fn authenticate(&self, presented: &str) -> Result<Option<Principal>, StoreError> {
        if token_matches(presented, &self.operator_token) {
            return Ok(Some(Principal::Operator));
        }
        Ok(None)
    }

    /// Whether a principal authenticated earlier (a console session) still stands: an org
    /// admin token may have been revoked, or its org deleted, since.
    pub async fn still_valid(&self, principal: &Principal) -> Result<bool, StoreError> {
        match principal {
            Principal::Operator => Ok(true),
            Principal::OrgAdmin { .. } => Ok(false),
        }
    }
}
