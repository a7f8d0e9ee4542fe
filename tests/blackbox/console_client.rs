//! A browser stand-in for the console tests: a cookie jar, no redirect following (the tests
//! check each 303), form posts, and small readers for what the pages show.

use reqwest::StatusCode;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "ticketsync_session";

/// One console visitor: its own cookies.
pub struct Console {
    base: String,
    http: reqwest::Client,
    cookies: Mutex<BTreeMap<String, String>>,
}

/// A page as the visitor got it.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    /// The `Location` header of a redirect.
    pub location: Option<String>,
    pub content_type: String,
    /// Every `Set-Cookie` header, as sent.
    pub set_cookies: Vec<String>,
    pub body: String,
}

impl Page {
    /// The value of the first `<input … name="NAME" … value="…">` (as written in the HTML).
    pub fn input_value(&self, name: &str) -> Option<String> {
        let needle = format!("name=\"{name}\"");
        let at = self.body.find(&needle)?;
        let tag_start = self.body[..at].rfind('<')?;
        let tag_end = at + self.body[at..].find('>')?;
        let tag = &self.body[tag_start..tag_end];
        let value = tag.split("value=\"").nth(1)?;
        Some(value[..value.find('"')?].to_string())
    }

    /// The session's CSRF token, from the page's forms.
    #[track_caller]
    pub fn csrf(&self) -> String {
        self.input_value("csrf")
            .unwrap_or_else(|| panic!("no csrf field in: {}", self.body))
    }

    /// The text inside the element with `data-testid="ID"` (up to its closing tag).
    pub fn testid(&self, id: &str) -> Option<String> {
        let needle = format!("data-testid=\"{id}\"");
        let at = self.body.find(&needle)?;
        let open_end = at + self.body[at..].find('>')? + 1;
        let close = open_end + self.body[open_end..].find("</")?;
        Some(decode(self.body[open_end..close].trim()))
    }

    /// Assert an HTML page with this status.
    #[track_caller]
    pub fn assert_html(&self, status: u16) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(self.content_type, "text/html; charset=utf-8");
    }

    /// Assert a 303 to `location`.
    #[track_caller]
    pub fn assert_see_other(&self, location: &str) {
        assert_eq!(self.status, StatusCode::SEE_OTHER, "body: {}", self.body);
        assert_eq!(self.location.as_deref(), Some(location));
    }
}

/// HTML text as typed: the few entities askama writes, decoded.
pub fn decode(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

impl Console {
    /// A visitor without cookies.
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_string(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .pool_idle_timeout(std::time::Duration::from_secs(1))
                .build()
                .unwrap(),
            cookies: Mutex::new(BTreeMap::new()),
        }
    }

    /// A visitor signed in with `token`.
    pub async fn signed_in(base: &str, token: &str) -> Self {
        let console = Self::new(base);
        console.sign_in(token, "").await.assert_see_other("/orgs");
        console
    }

    /// Open the sign-in page, then send it with `token` (and `next`).
    pub async fn sign_in(&self, token: &str, next: &str) -> Page {
        let page = self.get("/sign-in").await;
        page.assert_html(200);
        self.post(
            "/sign-in",
            &[("csrf", &page.csrf()), ("token", token), ("next", next)],
        )
        .await
    }

    /// The value of one of the visitor's cookies.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.lock().unwrap().get(name).cloned()
    }

    /// Forget every cookie (a new browser).
    pub fn forget_cookies(&self) {
        self.cookies.lock().unwrap().clear();
    }

    /// Set a cookie as if the server had.
    pub fn set_cookie(&self, name: &str, value: &str) {
        self.cookies
            .lock()
            .unwrap()
            .insert(name.to_string(), value.to_string());
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Page {
        self.send(self.http.get(self.url(path))).await
    }

    /// `GET path` as htmx sends it (`HX-Request: true`).
    pub async fn get_htmx(&self, path: &str) -> Page {
        self.send(self.http.get(self.url(path)).header("hx-request", "true"))
            .await
    }

    /// `POST path` with a form body.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send(self.http.post(self.url(path)).form(form)).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn send(&self, mut req: reqwest::RequestBuilder) -> Page {
        let cookie_header = self
            .cookies
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        if !cookie_header.is_empty() {
            req = req.header("cookie", cookie_header);
        }
        let res = req.send().await.expect("request sent");
        let header = |name: &str| {
            res.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let location = header("location");
        let content_type = header("content-type").unwrap_or_default();
        let set_cookies: Vec<String> = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect();
        {
            let mut jar = self.cookies.lock().unwrap();
            for set in &set_cookies {
                let pair = set.split(';').next().unwrap_or_default();
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                let removed = set.contains("Max-Age=0") || set.contains("max-age=0");
                if removed || value.is_empty() {
                    jar.remove(name);
                } else {
                    jar.insert(name.to_string(), value.to_string());
                }
            }
        }
        Page {
            status: res.status(),
            location,
            content_type,
            set_cookies,
            body: res.text().await.unwrap_or_default(),
        }
    }
}
