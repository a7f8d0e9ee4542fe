//! Sending arbitrary requests (through reqwest, or byte for byte over TCP) and judging any
//! answer against the service's contract: never a 5xx, never a dropped connection, and every
//! 4xx in the one error shape `{"error": {"code": "...", "message": "..."}}`.

use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How a request authenticates.
#[derive(Debug, Clone)]
pub enum Auth {
    /// No `Authorization` header.
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// Any `Authorization` header value.
    Header(String),
}

/// A request to send: everything a hostile client controls.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: Method,
    /// Path and query, appended to the service's base URL.
    pub path: String,
    pub content_type: Option<String>,
    pub auth: Auth,
    pub body: Option<Vec<u8>>,
}

impl Req {
    /// A request without a body or credentials.
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            content_type: None,
            auth: Auth::None,
            body: None,
        }
    }

    /// With `Content-Type: application/json` and this body.
    pub fn json(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.content_type = Some("application/json".into());
        self.body = Some(body.into());
        self
    }

    /// With this content type (or none) and body.
    pub fn raw(mut self, content_type: Option<&str>, body: impl Into<Vec<u8>>) -> Self {
        self.content_type = content_type.map(str::to_string);
        self.body = Some(body.into());
        self
    }

    /// With the given admin bearer token.
    pub fn bearer(mut self, token: &str) -> Self {
        self.auth = Auth::Bearer(token.to_string());
        self
    }

    /// With any authorization.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// A short description for assertion messages (bodies are clipped).
    pub fn describe(&self) -> String {
        let body = self.body.as_deref().map(clip_bytes).unwrap_or_default();
        format!(
            "{} {} (content-type {:?}, auth {:?}, body {} bytes: {body})",
            self.method,
            self.path,
            self.content_type,
            self.auth,
            self.body.as_ref().map_or(0, Vec::len)
        )
    }
}

/// An answer: status, headers and raw body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub bytes: Vec<u8>,
}

impl Answer {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }
}

/// A body's first bytes, printable, for messages.
pub fn clip_bytes(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(160)];
    let text = String::from_utf8_lossy(head).escape_debug().to_string();
    if bytes.len() > head.len() {
        format!("{text}…")
    } else {
        text
    }
}

/// Send `req` to `base`. A transport failure (a dropped or reset connection, no answer) is a
/// test failure: the service must answer every request.
pub async fn send(http: &reqwest::Client, base: &str, req: &Req) -> Answer {
    let mut builder = http.request(req.method.clone(), format!("{base}{}", req.path));
    if let Some(ct) = &req.content_type {
        builder = builder.header("content-type", ct);
    }
    match &req.auth {
        Auth::None => {}
        Auth::Bearer(token) => builder = builder.bearer_auth(token),
        Auth::Header(value) => builder = builder.header("authorization", value),
    }
    if let Some(body) = &req.body {
        builder = builder.body(body.clone());
    }
    let response = builder
        .timeout(Duration::from_secs(40))
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "no answer (dropped connection?) to {}: {e:?}",
                req.describe()
            )
        });
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response
        .bytes()
        .await
        .unwrap_or_else(|e| panic!("answer body cut off for {}: {e:?}", req.describe()))
        .to_vec();
    Answer {
        status,
        headers,
        bytes,
    }
}

/// Whether `code` is a non-empty snake_case identifier.
pub fn is_snake_case(code: &str) -> bool {
    code.starts_with(|c: char| c.is_ascii_lowercase())
        && code
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !code.ends_with('_')
        && !code.contains("__")
}

/// Assert the exact error shape and return the code.
#[track_caller]
pub fn assert_error_shape(context: &str, answer: &Answer) -> String {
    let content_type = answer
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        content_type.starts_with("application/json"),
        "{context}: error answer {} with content-type {content_type:?}: {}",
        answer.status,
        clip_bytes(&answer.bytes)
    );
    let body: Value = serde_json::from_slice(&answer.bytes).unwrap_or_else(|e| {
        panic!(
            "{context}: error answer {} is not JSON ({e}): {}",
            answer.status,
            clip_bytes(&answer.bytes)
        )
    });
    let top = body.as_object().unwrap_or_else(|| {
        panic!(
            "{context}: error body is not an object: {body} (status {})",
            answer.status
        )
    });
    assert_eq!(
        top.keys().collect::<Vec<_>>(),
        vec!["error"],
        "{context}: error body has exactly `error`: {body}"
    );
    let error = top["error"]
        .as_object()
        .unwrap_or_else(|| panic!("{context}: `error` is not an object: {body}"));
    let mut keys: Vec<&String> = error.keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        vec!["code", "message"],
        "{context}: `error` has exactly code and message: {body}"
    );
    let code = error["code"].as_str().unwrap_or("");
    assert!(
        is_snake_case(code),
        "{context}: code is non-empty snake_case: {body}"
    );
    let message = error["message"].as_str().unwrap_or("");
    assert!(
        !message.trim().is_empty(),
        "{context}: message is a non-empty string: {body}"
    );
    code.to_string()
}

/// Never a 5xx; a 4xx is in the error shape. Returns the error code of a 4xx.
#[track_caller]
pub fn assert_clean(context: &str, answer: &Answer) -> Option<String> {
    assert!(
        answer.status < 500,
        "{context}: server error {}: {}",
        answer.status,
        clip_bytes(&answer.bytes)
    );
    (400..500)
        .contains(&answer.status)
        .then(|| assert_error_shape(context, answer))
}

/// A refusal with this status and code, in the error shape.
#[track_caller]
pub fn assert_refused(context: &str, answer: &Answer, status: u16, code: &str) {
    assert_eq!(
        answer.status,
        status,
        "{context}: expected {status} {code}, got body {}",
        clip_bytes(&answer.bytes)
    );
    assert_eq!(assert_error_shape(context, answer), code, "{context}");
}

/// A refusal: some 4xx in the error shape; returns the code.
#[track_caller]
pub fn assert_4xx(context: &str, answer: &Answer) -> String {
    assert!(
        (400..500).contains(&answer.status),
        "{context}: expected a 4xx refusal, got {}: {}",
        answer.status,
        clip_bytes(&answer.bytes)
    );
    assert_error_shape(context, answer)
}

/// Send raw bytes over a fresh TCP connection and read the answer until the server closes it.
/// Returns the answer, or why no complete answer came back.
pub fn raw_exchange(addr: SocketAddr, request: &[u8]) -> Result<Answer, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    // The server may answer (413) and stop reading before the whole body is sent: a failed
    // write is fine as long as the answer arrives.
    let write_error = stream.write_all(request).err();
    let _ = stream.flush();
    let mut received = Vec::new();
    let read_error = stream.read_to_end(&mut received).err();
    parse_response(&received).ok_or_else(|| {
        format!(
            "no complete answer (write error {write_error:?}, read error {read_error:?}, \
             {} bytes received: {})",
            received.len(),
            clip_bytes(&received)
        )
    })
}

/// Parse an HTTP/1.1 response with a `content-length` or chunked body.
fn parse_response(raw: &[u8]) -> Option<Answer> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let mut length = None;
    let mut chunked = false;
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let name = name.trim().to_ascii_lowercase();
        headers.append(
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).ok()?,
            value.trim().parse().ok()?,
        );
        if name == "content-length" {
            length = value.trim().parse::<usize>().ok();
        } else if name == "transfer-encoding" && value.to_ascii_lowercase().contains("chunked") {
            chunked = true;
        }
    }
    let rest = &raw[end + 4..];
    if chunked {
        let mut body = Vec::new();
        let mut at = 0;
        loop {
            let line_end = rest[at..].windows(2).position(|w| w == b"\r\n")? + at;
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[at..line_end]).ok()?, 16).ok()?;
            at = line_end + 2;
            if size == 0 {
                return Some(Answer {
                    status,
                    headers,
                    bytes: body,
                });
            }
            body.extend_from_slice(rest.get(at..at + size)?);
            at += size + 2;
        }
    }
    let length = length.unwrap_or(rest.len());
    Some(Answer {
        status,
        headers,
        bytes: rest.get(..length)?.to_vec(),
    })
}
