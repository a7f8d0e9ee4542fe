//! Who is asking (contract §12): the operator (the configured `server.admin_token`: every org,
//! the engine pages, metrics) or an org admin (a token the operator created for one org, which
//! reaches only that org). The JSON API presents a token as a bearer token, the console
//! presents it once at sign-in; both ask `Access::authenticate`.
//!
//! Org admin tokens are created, listed and revoked here (the JSON routes in
//! `src/http/tokens.rs` and the console's Access page call the same methods). A token is shown
//! once, at creation; the store keeps only its SHA-256, so a leaked database opens nothing.

use crate::secrets::token_matches;
use crate::store::{Store, StoreError, TokenRecord};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, SubsecRound, Utc};
use rand::RngCore;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use ticketsync_actors::OrgId;

/// What every org admin token starts with (so a leaked one is recognisable in a scan).
pub const TOKEN_PREFIX: &str = "tso_";
/// Longest token name, in characters.
pub const MAX_TOKEN_NAME_CHARS: usize = 100;
/// A token's `last_used_at` is written at most this often, so authentication does not write
/// on every request.
const LAST_USED_EVERY: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

/// The id of an org admin token (never the token itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
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

/// An org admin token as the operator sees it: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TokenView {
    pub id: TokenId,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<TokenRecord> for TokenView {
    fn from(t: TokenRecord) -> Self {
        Self {
            id: t.id,
            name: t.name,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
        }
    }
}

/// Why a token cannot be created.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The name is empty or too long (after trimming).
    #[error("name must be 1 to {MAX_TOKEN_NAME_CHARS} characters.")]
    InvalidName,
    /// No org has this id.
    #[error("No organization has this id.")]
    OrgNotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks presented tokens, and keeps the org admin tokens.
pub struct Access {
    operator_token: SecretString,
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
        if !presented.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        // Looked up by hash: the comparison that decides is the database's equality on a
        // digest, which tells a timing observer nothing about the token.
        let Some(token) = self.store.token_by_hash(&hash(presented)).await? else {
            return Ok(None);
        };
        let now = Utc::now();
        if token
            .last_used_at
            .is_none_or(|last| now - last >= LAST_USED_EVERY)
        {
            self.store
                .touch_token(token.org, token.id, now.trunc_subsecs(6))
                .await?;
        }
        Ok(Some(Principal::OrgAdmin {
            org: token.org,
            token: token.id,
        }))
    }

    /// Whether a principal authenticated earlier (a console session) still stands: an org
    /// admin token may have been revoked, or its org deleted, since.
    pub async fn still_valid(&self, principal: &Principal) -> Result<bool, StoreError> {
        match principal {
            Principal::Operator => Ok(true),
            Principal::OrgAdmin { org, token } => Ok(self
                .store
                .org_tokens(*org)
                .await?
                .iter()
                .any(|t| t.id == *token)),
        }
    }

    /// Create an org admin token named `name` (trimmed). Returns it as listed, and the token
    /// text: shown to the operator once, never stored.
    pub async fn create_token(
        &self,
        org: OrgId,
        name: &str,
    ) -> Result<(TokenView, SecretString), TokenError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_TOKEN_NAME_CHARS {
            return Err(TokenError::InvalidName);
        }
        self.store.org(org).await?.ok_or(TokenError::OrgNotFound)?;
        let mut random = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut random);
        let text = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(random));
        let record = TokenRecord {
            id: TokenId(uuid::Uuid::new_v4()),
            org,
            name: name.to_string(),
            hash: hash(&text),
            // Microseconds: what PostgreSQL keeps, so every backend lists the same time.
            created_at: Utc::now().trunc_subsecs(6),
            last_used_at: None,
        };
        self.store.insert_token(&record).await?;
        self.store.flush().await.map_err(StoreError::from)?;
        tracing::info!(org_id = %org, token_id = %record.id, "org admin token created");
        Ok((record.into(), SecretString::from(text)))
    }

    /// The org's admin tokens, oldest first.
    pub async fn tokens(&self, org: OrgId) -> Result<Vec<TokenView>, StoreError> {
        Ok(self
            .store
            .org_tokens(org)
            .await?
            .into_iter()
            .map(TokenView::from)
            .collect())
    }

    /// Revoke one of the org's tokens: it authenticates nothing from now on, and console
    /// sessions signed in with it end at their next request. Whether it existed.
    pub async fn revoke_token(&self, org: OrgId, token: TokenId) -> Result<bool, StoreError> {
        let revoked = self.store.delete_token(org, token).await?;
        if revoked {
            self.store.flush().await?;
            tracing::info!(org_id = %org, token_id = %token, "org admin token revoked");
        }
        Ok(revoked)
    }
}

/// SHA-256 of a token's text: what the store keeps and looks tokens up by.
fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;
    use secrecy::ExposeSecret;
    use std::sync::Arc;
    use ticketsync_actors::org::Org;

    async fn access_with_org() -> (Access, OrgId, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store: Store = Arc::new(SledStore::open_with_cache(dir.path(), 1 << 20).unwrap());
        let org = Org {
            id: OrgId::new(),
            name: "Acme".into(),
            created_at: Utc::now(),
        };
        store.insert_org(&org).await.unwrap();
        let access = Access::new(SecretString::from("operator-secret".to_string()), store);
        (access, org.id, dir)
    }

    #[actix_web::test]
    async fn a_created_token_authenticates_its_org_until_it_is_revoked() {
        let (access, org, _dir) = access_with_org().await;
        let (view, text) = access.create_token(org, "  Alice  ").await.unwrap();
        let text = text.expose_secret().to_string();
        assert_eq!(view.name, "Alice");
        assert!(text.starts_with(TOKEN_PREFIX));
        assert_eq!(text.len(), TOKEN_PREFIX.len() + 43);

        let principal = access.authenticate(&text).await.unwrap().unwrap();
        assert_eq!(
            principal,
            Principal::OrgAdmin {
                org,
                token: view.id
            }
        );
        assert!(principal.may_access(org));
        assert!(!principal.may_access(OrgId::new()));
        assert!(access.still_valid(&principal).await.unwrap());

        assert!(access.revoke_token(org, view.id).await.unwrap());
        assert!(!access.revoke_token(org, view.id).await.unwrap());
        assert_eq!(access.authenticate(&text).await.unwrap(), None);
        assert!(!access.still_valid(&principal).await.unwrap());
    }

    #[actix_web::test]
    async fn the_store_keeps_the_hash_and_the_list_never_shows_the_token() {
        let (access, org, _dir) = access_with_org().await;
        let (_, text) = access.create_token(org, "ci").await.unwrap();
        let stored = access.store.org_tokens(org).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].hash, hash(text.expose_secret()));
        let listed = serde_json::to_string(&access.tokens(org).await.unwrap()).unwrap();
        assert!(!listed.contains(text.expose_secret()), "{listed}");
        assert!(!listed.contains("hash"), "{listed}");
    }

    #[actix_web::test]
    async fn last_used_is_written_on_first_use_and_then_at_most_once_a_minute() {
        let (access, org, _dir) = access_with_org().await;
        let (view, text) = access.create_token(org, "ci").await.unwrap();
        assert_eq!(view.last_used_at, None);
        access.authenticate(text.expose_secret()).await.unwrap();
        let first = access.tokens(org).await.unwrap()[0].last_used_at.unwrap();
        access.authenticate(text.expose_secret()).await.unwrap();
        assert_eq!(
            access.tokens(org).await.unwrap()[0].last_used_at,
            Some(first)
        );
    }

    #[actix_web::test]
    async fn names_must_be_one_to_a_hundred_characters_and_the_org_must_exist() {
        let (access, org, _dir) = access_with_org().await;
        for name in ["", "   ", &"x".repeat(101)] {
            assert!(matches!(
                access.create_token(org, name).await,
                Err(TokenError::InvalidName)
            ));
        }
        assert!(access.create_token(org, &"x".repeat(100)).await.is_ok());
        assert!(matches!(
            access.create_token(OrgId::new(), "ci").await,
            Err(TokenError::OrgNotFound)
        ));
        assert_eq!(access.tokens(org).await.unwrap().len(), 1);
    }

    #[actix_web::test]
    async fn the_operator_token_and_unknown_tokens() {
        let (access, _, _dir) = access_with_org().await;
        assert_eq!(
            access.authenticate("operator-secret").await.unwrap(),
            Some(Principal::Operator)
        );
        assert_eq!(access.authenticate("tso_nope").await.unwrap(), None);
        assert_eq!(access.authenticate("").await.unwrap(), None);
        assert!(access.still_valid(&Principal::Operator).await.unwrap());
    }
}
