//! Secret material: the key that encrypts Freshdesk API keys at rest, the signer of webhook
//! tokens, and the admin token. Nothing here implements cryptography itself: encryption is
//! XChaCha20-Poly1305 (`chacha20poly1305`), signing is HMAC-SHA256 (`hmac`), comparisons are
//! constant-time (`subtle`, `hmac::verify_slice`).

use base64::engine::general_purpose::STANDARD;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use std::io::Write;
use std::path::Path;
use subtle::ConstantTimeEq;
use ticketsync_actors::OrgId;

/// Why secret material could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the encryption key must be base64 of exactly 32 bytes")]
    BadKey,
    #[error("a stored secret could not be decrypted (wrong encryption key or corrupt data)")]
    Decrypt,
}

/// Encrypts and decrypts API keys. The org id is bound as associated data, so a ciphertext
/// copied to another org does not decrypt.
pub struct KeyVault {
    cipher: XChaCha20Poly1305,
}

const NONCE_LEN: usize = 24;

impl KeyVault {
    /// Use `configured` (base64 of 32 bytes) when set, else `<dir>/secret.key`, generated with
    /// mode 0600 on first use.
    pub fn load(configured: &SecretString, dir: &Path) -> Result<Self, SecretError> {
        let key = if configured.expose_secret().is_empty() {
            read_or_create_file(&dir.join("secret.key"), || {
                let mut key = [0u8; 32];
                rand::thread_rng().fill_bytes(&mut key);
                STANDARD.encode(key)
            })?
        } else {
            configured.expose_secret().to_string()
        };
        let bytes = STANDARD
            .decode(key.trim())
            .map_err(|_| SecretError::BadKey)?;
        if bytes.len() != 32 {
            return Err(SecretError::BadKey);
        }
        let cipher = XChaCha20Poly1305::new_from_slice(&bytes).map_err(|_| SecretError::BadKey)?;
        Ok(Self { cipher })
    }

    /// `nonce || ciphertext` of `plaintext`, bound to `org`.
    pub fn encrypt(&self, org: OrgId, plaintext: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: org.0.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 encryption of an in-memory buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        out
    }

    /// Reverse of `encrypt`.
    pub fn decrypt(&self, org: OrgId, sealed: &[u8]) -> Result<SecretString, SecretError> {
        if sealed.len() < NONCE_LEN {
            return Err(SecretError::Decrypt);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: org.0.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Decrypt)?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| SecretError::Decrypt)
    }
}

type HmacSha256 = Hmac<Sha256>;

/// Signs and checks webhook tokens: `base64url(org uuid || HMAC-SHA256(secret, org uuid))`.
/// The token depends only on the org and the server secret, so it survives key rotation and
/// reconnects.
pub struct WebhookTokens {
    secret: [u8; 32],
}

const TOKEN_DOMAIN: &[u8] = b"ticketsync webhook token v1:";

impl WebhookTokens {
    /// Build from the stored server secret.
    pub fn new(secret: [u8; 32]) -> Self {
        Self { secret }
    }

    fn mac(&self, org: OrgId) -> HmacSha256 {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.secret)
            .expect("HMAC accepts keys of any length");
        mac.update(TOKEN_DOMAIN);
        mac.update(org.0.as_bytes());
        mac
    }

    /// The org's token.
    pub fn sign(&self, org: OrgId) -> String {
        let mut bytes = org.0.as_bytes().to_vec();
        bytes.extend_from_slice(&self.mac(org).finalize().into_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The org a token belongs to, when its signature is valid (checked in constant time).
    pub fn verify(&self, token: &str) -> Option<OrgId> {
        if token.len() > 128 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        if bytes.len() != 16 + 32 {
            return None;
        }
        let (org, tag) = bytes.split_at(16);
        let org = OrgId(uuid::Uuid::from_slice(org).ok()?);
        self.mac(org).verify_slice(tag).ok()?;
        Some(org)
    }
}

/// The admin bearer token: the configured one, else `<dir>/admin_token` (generated with mode
/// 0600 on first start). Returns the token and whether it was generated just now, so the
/// caller prints it once.
pub fn load_admin_token(
    configured: &SecretString,
    dir: &Path,
) -> Result<(SecretString, bool), SecretError> {
    if !configured.expose_secret().is_empty() {
        return Ok((configured.clone(), false));
    }
    let path = dir.join("admin_token");
    let existed = path.exists();
    let token = read_or_create_file(&path, generate_admin_token)?;
    Ok((SecretString::from(token.trim().to_string()), !existed))
}

/// A fresh admin token (`tsa_` and 24 random bytes, base64url).
pub fn generate_admin_token() -> String {
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("tsa_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// This node's id among the nodes sharing a PostgreSQL database: `configured`, else
/// `<dir>/node_id`, generated on first start (so a restarted node keeps its id and retakes
/// its own leases at once).
pub fn load_node_id(configured: &str, dir: &Path) -> Result<String, SecretError> {
    if !configured.is_empty() {
        return Ok(configured.to_string());
    }
    let id = read_or_create_file(&dir.join("node_id"), || {
        let mut bytes = [0u8; 6];
        rand::thread_rng().fill_bytes(&mut bytes);
        format!("node-{}", bytes.map(|b| format!("{b:02x}")).concat())
    })?;
    Ok(id.trim().to_string())
}

/// Constant-time equality of a presented token with the expected one.
pub fn token_matches(presented: &str, expected: &SecretString) -> bool {
    let expected = expected.expose_secret().as_bytes();
    !expected.is_empty() && bool::from(presented.as_bytes().ct_eq(expected))
}

/// Read a secret file, or create it (mode 0600) with `make()` when absent.
fn read_or_create_file(path: &Path, make: impl FnOnce() -> String) -> Result<String, SecretError> {
    let io = |source| SecretError::Io {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => return Ok(text),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        Err(_) => {}
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let value = make();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io)?;
    file.write_all(value.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encrypted_key_decrypts_only_for_its_org() {
        let dir = tempfile::tempdir().unwrap();
        let vault = KeyVault::load(&SecretString::from(String::new()), dir.path()).unwrap();
        let org = OrgId::new();
        let sealed = vault.encrypt(org, "fd-api-key-123");
        assert!(!sealed.windows(14).any(|w| w == b"fd-api-key-123"));
        assert_eq!(
            vault.decrypt(org, &sealed).unwrap().expose_secret(),
            "fd-api-key-123"
        );
        assert!(vault.decrypt(OrgId::new(), &sealed).is_err());
    }

    #[test]
    fn the_generated_key_file_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let empty = SecretString::from(String::new());
        let org = OrgId::new();
        let sealed = KeyVault::load(&empty, dir.path())
            .unwrap()
            .encrypt(org, "k");
        let again = KeyVault::load(&empty, dir.path()).unwrap();
        assert_eq!(again.decrypt(org, &sealed).unwrap().expose_secret(), "k");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("secret.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_configured_key_must_be_32_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let short = SecretString::from(STANDARD.encode([1u8; 16]));
        assert!(matches!(
            KeyVault::load(&short, dir.path()),
            Err(SecretError::BadKey)
        ));
    }

    #[test]
    fn webhook_tokens_verify_and_reject_forgeries() {
        let tokens = WebhookTokens::new([7u8; 32]);
        let org = OrgId::new();
        let token = tokens.sign(org);
        assert_eq!(tokens.verify(&token), Some(org));
        assert_eq!(tokens.sign(org), token, "stable for the same org");
        assert_eq!(tokens.verify(&token[..token.len() - 1]), None);
        assert_eq!(WebhookTokens::new([8u8; 32]).verify(&token), None);
        let mut forged = URL_SAFE_NO_PAD.decode(&token).unwrap();
        forged[0] ^= 1;
        assert_eq!(tokens.verify(&URL_SAFE_NO_PAD.encode(forged)), None);
        assert_eq!(tokens.verify(""), None);
        assert_eq!(tokens.verify("not base64 !!"), None);
    }

    #[test]
    fn admin_token_is_generated_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let empty = SecretString::from(String::new());
        let (first, generated) = load_admin_token(&empty, dir.path()).unwrap();
        assert!(generated);
        let (second, generated_again) = load_admin_token(&empty, dir.path()).unwrap();
        assert!(!generated_again);
        assert_eq!(first.expose_secret(), second.expose_secret());
        assert!(token_matches(first.expose_secret(), &second));
        assert!(!token_matches("wrong", &second));
    }
}
