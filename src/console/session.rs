//! Console sign-in: the session cookie, CSRF tokens, the `ConsoleUser` extractor and the
//! sign-in / sign-out pages.
//!
//! A session is a signed cookie, not a stored row: `base64url(json {principal, expires_at,
//! nonce}) "." base64url(HMAC-SHA256(key, that))`. The key is derived from the store's webhook
//! token secret, so every node sharing a database accepts every node's cookies. Because the
//! cookie outlives nothing on its own, each request asks `Access::still_valid` again: a revoked
//! org token or a deleted org ends its sessions at once.
//!
//! CSRF: every form carries `csrf = HMAC(key, "csrf:" + nonce)`, the nonce being the session's
//! (or, before sign-in, the one in the short-lived sign-in cookie: a double submit).

use super::layout::Layout;
use super::{render, PageError};
use crate::access::Principal;
use crate::http::state::AppState;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::http::{header, Method, StatusCode};
use actix_web::{get, post, web, FromRequest, HttpRequest, HttpResponse};
use askama::Template;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::Utc;
use futures::future::LocalBoxFuture;
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "ticketsync_session";
/// The cookie that carries the sign-in form's CSRF nonce before a session exists.
const SIGN_IN_COOKIE: &str = "ticketsync_sign_in";
/// Where a signed-in admin lands when the sign-in link named no page.
const HOME: &str = "/orgs";

type HmacSha256 = Hmac<Sha256>;

/// What a session cookie says, once its signature is checked.
#[derive(Serialize, Deserialize)]
struct Session {
    principal: Principal,
    /// Unix seconds; the session is over from then on.
    expires_at: i64,
    /// Random per session: the CSRF token is derived from it.
    nonce: String,
}

/// Issues and checks session cookies and CSRF tokens.
pub struct Sessions {
    key: [u8; 32],
    ttl_secs: i64,
    secure: bool,
}

impl Sessions {
    /// Keys derived from the store's token secret (shared by every node) and the operator
    /// token, so that a rotated operator token ends every session opened before (a leaked one
    /// must not live on in a cookie); `secure` cookies when the service is reached over https.
    pub fn new(
        token_secret: &[u8; 32],
        operator_token: &SecretString,
        ttl_minutes: u64,
        public_url: &str,
    ) -> Self {
        let mut mac = mac_with(token_secret);
        mac.update(b"ticketsync console session key v2");
        mac.update(operator_token.expose_secret().as_bytes());
        Self {
            key: mac.finalize().into_bytes().into(),
            ttl_secs: i64::try_from(ttl_minutes.saturating_mul(60)).unwrap_or(i64::MAX),
            secure: public_url.starts_with("https://"),
        }
    }

    fn sign(&self, label: &str, data: &str) -> String {
        let mut mac = mac_with(&self.key);
        mac.update(label.as_bytes());
        mac.update(data.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// The CSRF token that forms of the session (or sign-in) with this nonce carry.
    fn csrf_token(&self, nonce: &str) -> String {
        self.sign("csrf:", nonce)
    }

    /// A new session for `principal`, as a cookie to set.
    fn issue(&self, principal: Principal) -> Cookie<'static> {
        let session = Session {
            principal,
            expires_at: Utc::now().timestamp().saturating_add(self.ttl_secs),
            nonce: random_nonce(),
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&session).expect("serialises"));
        let value = format!("{payload}.{}", self.sign("session:", &payload));
        self.cookie(SESSION_COOKIE, value, "/")
    }

    /// The session a cookie value stands for, when it is signed by us and not expired.
    fn open(&self, value: &str) -> Option<Session> {
        let (payload, tag) = value.split_once('.')?;
        if !equal(tag, &self.sign("session:", payload)) {
            return None;
        }
        let session: Session =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        (session.expires_at > Utc::now().timestamp()).then_some(session)
    }

    /// An HttpOnly, SameSite=Strict cookie (Secure over https). No Max-Age: the browser drops
    /// it when it closes, and the server refuses it once the signed expiry has passed.
    fn cookie(&self, name: &'static str, value: String, path: &'static str) -> Cookie<'static> {
        Cookie::build(name, value)
            .path(path)
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(self.secure)
            .finish()
    }

    /// A cookie that removes `name`.
    fn removal(&self, name: &'static str, path: &'static str) -> Cookie<'static> {
        let mut cookie = self.cookie(name, String::new(), path);
        cookie.make_removal();
        cookie
    }
}

fn mac_with(key: &[u8]) -> HmacSha256 {
    <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

fn random_nonce() -> String {
    let mut bytes = [0u8; 18];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Constant-time comparison of two tokens.
fn equal(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A signed-in admin, and the CSRF token its forms carry. Extracting it refuses the request
/// when there is no valid session: a GET is sent to the sign-in page (and back afterwards),
/// anything else answers 403 and changes nothing.
pub struct ConsoleUser {
    /// Who signed in.
    pub principal: Principal,
    /// The value of every form's hidden `csrf` field.
    pub csrf: String,
}

impl ConsoleUser {
    /// Refuse a form whose `csrf` field is not this session's (403, nothing changed).
    pub fn check_csrf(&self, presented: &str) -> Result<(), PageError> {
        if equal(presented, &self.csrf) {
            Ok(())
        } else {
            Err(PageError::CsrfRejected)
        }
    }
}

impl FromRequest for ConsoleUser {
    type Error = PageError;
    type Future = LocalBoxFuture<'static, Result<Self, PageError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let cookie = req.cookie(SESSION_COOKIE).map(|c| c.value().to_string());
        let htmx = req.headers().contains_key("hx-request");
        let reading = req.method() == Method::GET || req.method() == Method::HEAD;
        // A page, or any htmx request (htmx swaps no 4xx answer, so a 403 page would leave
        // its button doing nothing), goes through sign-in; a plain form post gets a 403 page.
        let refusal = if reading || htmx {
            // After sign-in an htmx request's admin goes back to the page it came from
            // (`HX-Current-URL`), not to the bare fragment or form target.
            let page = req
                .headers()
                .get("hx-current-url")
                .and_then(|v| v.to_str().ok())
                .filter(|_| htmx)
                .and_then(|url| url.split_once("://"))
                .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_string()));
            PageError::SignIn {
                next: page.unwrap_or_else(|| match req.uri().path_and_query() {
                    Some(p) if reading => p.as_str().to_string(),
                    _ => String::new(),
                }),
                htmx,
            }
        } else {
            PageError::SessionEnded
        };
        Box::pin(async move {
            let state = state.ok_or(PageError::Internal)?;
            let session = cookie
                .and_then(|value| state.console.open(&value))
                .ok_or(refusal.clone())?;
            let valid = state
                .access
                .still_valid(&session.principal)
                .await
                .map_err(PageError::store)?;
            if !valid {
                return Err(refusal);
            }
            Ok(ConsoleUser {
                principal: session.principal,
                csrf: state.console.csrf_token(&session.nonce),
            })
        })
    }
}

/// A page after sign-in, when it is one of ours (never another site: no open redirect).
fn local_target(next: &str) -> &str {
    // Browsers drop tabs and line breaks from a Location (`/\t/x` becomes `//x`, another
    // site), so a target with any control character or whitespace is refused outright.
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(|c| c.is_control() || c.is_whitespace());
    if local && !next.starts_with("/sign-in") {
        next
    } else {
        HOME
    }
}

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignInPage {
    layout: Layout,
    csrf: String,
    next: String,
    error: Option<&'static str>,
}

#[derive(Deserialize)]
struct SignInQuery {
    #[serde(default)]
    next: String,
}

#[get("/sign-in")]
async fn sign_in_page(
    state: web::Data<AppState>,
    query: web::Query<SignInQuery>,
) -> Result<HttpResponse, PageError> {
    let nonce = random_nonce();
    let page = SignInPage {
        layout: Layout::signed_out("Sign in"),
        csrf: state.console.csrf_token(&nonce),
        next: local_target(&query.next).to_string(),
        error: None,
    };
    let mut res = render(StatusCode::OK, &page)?;
    res.add_cookie(&state.console.cookie(SIGN_IN_COOKIE, nonce, "/sign-in"))
        .map_err(|_| PageError::Internal)?;
    Ok(res)
}

#[derive(Deserialize)]
struct SignInForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

#[post("/sign-in")]
async fn sign_in(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<SignInForm>,
) -> Result<HttpResponse, PageError> {
    let nonce = req
        .cookie(SIGN_IN_COOKIE)
        .map(|c| c.value().to_string())
        .ok_or(PageError::CsrfRejected)?;
    if !equal(&form.csrf, &state.console.csrf_token(&nonce)) {
        return Err(PageError::CsrfRejected);
    }
    let principal = state
        .access
        .authenticate(form.token.trim())
        .await
        .map_err(PageError::store)?;
    let Some(principal) = principal else {
        let page = SignInPage {
            layout: Layout::signed_out("Sign in"),
            csrf: form.csrf.clone(),
            next: local_target(&form.next).to_string(),
            error: Some(
                "This token is not valid. Paste the operator token or an organization admin token.",
            ),
        };
        return render(StatusCode::UNAUTHORIZED, &page);
    };
    tracing::info!(operator = principal.is_operator(), "console sign-in");
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, local_target(&form.next)))
        .cookie(state.console.issue(principal))
        .cookie(state.console.removal(SIGN_IN_COOKIE, "/sign-in"))
        .finish())
}

/// A form that carries nothing but its CSRF token.
#[derive(Deserialize)]
pub struct CsrfForm {
    /// The session's CSRF token.
    #[serde(default)]
    pub csrf: String,
}

#[post("/sign-out")]
async fn sign_out(
    state: web::Data<AppState>,
    user: ConsoleUser,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    user.check_csrf(&form.csrf)?;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/sign-in"))
        .cookie(state.console.removal(SESSION_COOKIE, "/"))
        .finish())
}

/// `GET /`: the organizations when signed in, else the sign-in page.
#[get("/")]
async fn root(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let signed_in = match req
        .cookie(SESSION_COOKIE)
        .and_then(|c| state.console.open(c.value()))
    {
        Some(session) => state
            .access
            .still_valid(&session.principal)
            .await
            .unwrap_or(false),
        None => false,
    };
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, if signed_in { HOME } else { "/sign-in" }))
        .finish()
}

/// Register the sign-in routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(root)
        .service(sign_in_page)
        .service(sign_in)
        .service(sign_out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operator() -> SecretString {
        SecretString::from("operator-token")
    }

    fn sessions(ttl_minutes: u64) -> Sessions {
        Sessions::new(&[7; 32], &operator(), ttl_minutes, "http://127.0.0.1:8080")
    }

    #[test]
    fn a_session_opens_only_with_its_own_signature_and_before_it_expires() {
        let s = sessions(5);
        let cookie = s.issue(Principal::Operator);
        let session = s.open(cookie.value()).expect("valid");
        assert_eq!(session.principal, Principal::Operator);

        let (payload, _) = cookie.value().split_once('.').unwrap();
        assert!(s.open(&format!("{payload}.AAAA")).is_none());
        assert!(sessions(5).open(cookie.value()).is_some(), "same secret");
        let other = Sessions::new(&[8; 32], &operator(), 5, "");
        assert!(other.open(cookie.value()).is_none(), "another secret");

        let expired = sessions(0);
        assert!(expired
            .open(expired.issue(Principal::Operator).value())
            .is_none());
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_over_https() {
        let plain = sessions(5).issue(Principal::Operator);
        assert_eq!(plain.http_only(), Some(true));
        assert_eq!(plain.same_site(), Some(SameSite::Strict));
        assert_ne!(plain.secure(), Some(true));
        let https = Sessions::new(&[7; 32], &operator(), 5, "https://support.example.com");
        assert_eq!(https.issue(Principal::Operator).secure(), Some(true));
    }

    #[test]
    fn only_local_pages_are_targets_after_sign_in() {
        assert_eq!(
            local_target("/orgs/1/inbox?state=x"),
            "/orgs/1/inbox?state=x"
        );
        for elsewhere in [
            "https://evil.example",
            "//evil.example",
            "/\\evil",
            // Browsers drop tabs and line breaks from a Location, leaving `//evil.example`.
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\n",
            "",
            "/sign-in",
        ] {
            assert_eq!(local_target(elsewhere), HOME, "{elsewhere}");
        }
    }
}
