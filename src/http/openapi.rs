//! The OpenAPI 3.1 document of the HTTP API, generated from the handlers' `#[utoipa::path]`
//! annotations and the types they answer, served at `GET /api/v1/openapi.json` and rendered
//! into `docs/api.md` by [`markdown`]. The console's HTML pages are not part of it.
//!
//! What the annotations cannot say is added here from one table each: the error codes every
//! operation can answer ([`ROUTE_ERRORS`](super::routes::ROUTE_ERRORS)) and the links between operations
//! ([`LINKS`]).

use super::error::Code;
use super::routes::error_codes;
use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::OnceLock;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::OpenApi;

/// Where the document is served.
pub const PATH: &str = super::routes::OPENAPI_PATH;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ticketsync",
        description = "An AI support agent on top of Freshdesk. Every error answers `{\"error\": {\"code\", \"message\"}}`; each operation lists the codes it can answer per status. `/api/v1` and `/metrics` take `Authorization: Bearer <token>`: the operator's admin token, or an org admin token, which reaches only its own organization (another org's routes answer 404 `org_not_found`, operator-only routes 404 `not_found`)."
    ),
    paths(
        super::health::healthz,
        super::health::readyz,
        super::webhook::receive,
        super::inspect::metrics,
        serve,
        super::orgs::create,
        super::orgs::list,
        super::orgs::show,
        super::orgs::remove,
        super::freshdesk::verify,
        super::freshdesk::save,
        super::freshdesk::show,
        super::freshdesk::disconnect,
        super::selftest::start,
        super::selftest::last,
        super::sessions::list,
        super::sessions::show,
        super::sessions::by_ticket,
        super::sessions::handoff,
        super::sessions::resume,
        super::tokens::create,
        super::tokens::list,
        super::tokens::revoke,
        super::inspect::engine,
        super::inspect::ticket_inspect,
    ),
    components(schemas(super::error::ErrorBody, super::error::ErrorDetail)),
    modifiers(&BearerAuth),
    tags(
        (name = "health", description = "Liveness and readiness, no authentication."),
        (name = "webhook", description = "Freshdesk automation rules call this; the secret token in the path authenticates."),
        (name = "orgs", description = "Organizations."),
        (name = "freshdesk", description = "An organization's Freshdesk connection and its setup self-test."),
        (name = "sessions", description = "The inbox: sessions, handoff and resume."),
        (name = "tokens", description = "Org admin tokens (operator only)."),
        (name = "inspect", description = "Engine inspection and metrics."),
        (name = "meta", description = "This document."),
    )
)]
struct ApiDoc;

/// Declares `bearerAuth`, which the `/api/v1` operations and `/metrics` require.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// A link: after `from`'s `status` answer, `to` with these parameters (runtime expressions).
struct Link {
    from: &'static str,
    status: &'static str,
    to: &'static str,
    parameters: &'static [(&'static str, &'static str)],
}

const NEW_ORG: &[(&str, &str)] = &[("org_id", "$response.body#/id")];
const SAME_ORG: &[(&str, &str)] = &[("org_id", "$request.path.org_id")];
const FIRST_SESSION: &[(&str, &str)] = &[
    ("org_id", "$request.path.org_id"),
    ("session_id", "$response.body#/items/0/id"),
];
const THIS_SESSION: &[(&str, &str)] = &[
    ("org_id", "$request.path.org_id"),
    ("session_id", "$response.body#/id"),
];

/// The links between operations, so that a stateful client (or a fuzzer) can go from a new
/// org to its connection, sessions and tokens.
const LINKS: &[Link] = &[
    link("create_org", "201", "show_org", NEW_ORG),
    link("create_org", "201", "verify_freshdesk", NEW_ORG),
    link("create_org", "201", "save_freshdesk", NEW_ORG),
    link("create_org", "201", "show_freshdesk", NEW_ORG),
    link("create_org", "201", "list_sessions", NEW_ORG),
    link("create_org", "201", "create_token", NEW_ORG),
    link("create_org", "201", "list_tokens", NEW_ORG),
    link("create_org", "201", "delete_org", NEW_ORG),
    link(
        "list_orgs",
        "200",
        "show_org",
        &[("org_id", "$response.body#/items/0/id")],
    ),
    link("save_freshdesk", "200", "show_freshdesk", SAME_ORG),
    link("save_freshdesk", "200", "start_self_test", SAME_ORG),
    link("save_freshdesk", "200", "list_sessions", SAME_ORG),
    link("save_freshdesk", "200", "disconnect_freshdesk", SAME_ORG),
    link("start_self_test", "202", "last_self_test", SAME_ORG),
    link("list_sessions", "200", "show_session", FIRST_SESSION),
    link("list_sessions", "200", "handoff_session", FIRST_SESSION),
    link("list_sessions", "200", "resume_session", FIRST_SESSION),
    link("show_session", "200", "handoff_session", THIS_SESSION),
    link("show_session", "200", "resume_session", THIS_SESSION),
    link(
        "show_session",
        "200",
        "session_of_ticket",
        &[
            ("org_id", "$request.path.org_id"),
            ("ticket_id", "$response.body#/ticket_id"),
        ],
    ),
    link(
        "create_token",
        "201",
        "revoke_token",
        &[
            ("org_id", "$request.path.org_id"),
            ("token_id", "$response.body#/id"),
        ],
    ),
];

const fn link(
    from: &'static str,
    status: &'static str,
    to: &'static str,
    parameters: &'static [(&'static str, &'static str)],
) -> Link {
    Link {
        from,
        status,
        to,
        parameters,
    }
}

/// The document as served: the annotations, the error responses of [`ROUTE_ERRORS`](super::routes::ROUTE_ERRORS), the
/// [`LINKS`], and a relative server (no host, no org, no token in it).
pub fn document() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the document serialises");
    doc["servers"] = json!([{"url": "/"}]);
    let operations = operations_mut(&mut doc);
    for (method, path, op) in operations {
        let bearer = op.get("security").is_some();
        let codes = error_codes(&method, &path, bearer)
            .unwrap_or_else(|| panic!("ROUTE_ERRORS has no row for {method} {path}"));
        add_errors(op, &codes);
        optional_body_is_absent_not_null(op);
    }
    // The webhook body is read by hand (`WebhookHint`), not through a derived type.
    doc["paths"]["/webhooks/freshdesk/{token}"]["post"]["requestBody"]["content"]
        ["application/json"]["schema"] = super::webhook::body_schema();
    add_links(&mut doc);
    answers_send_every_field(&mut doc);
    doc
}

/// utoipa marks an `Option` field not required; in what the service answers it is always
/// there (as `null` when unset: no answered type skips a field). So every property of a
/// schema that no request body reaches is required. A request body's may be left out.
fn answers_send_every_field(doc: &mut Value) {
    fn refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(r) = map.get("$ref").and_then(Value::as_str) {
                    out.push(r.rsplit('/').next().unwrap_or(r).to_string());
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut pending = Vec::new();
    for (_, _, op) in operations_mut(doc) {
        if let Some(body) = op.get("requestBody") {
            refs(body, &mut pending);
        }
    }
    let mut in_requests = std::collections::BTreeSet::new();
    while let Some(name) = pending.pop() {
        if in_requests.insert(name.clone()) {
            refs(&doc["components"]["schemas"][&name], &mut pending);
        }
    }
    for (name, schema) in doc["components"]["schemas"]
        .as_object_mut()
        .into_iter()
        .flatten()
    {
        if in_requests.contains(name) {
            continue;
        }
        if let Some(properties) = schema["properties"].as_object() {
            let all: Vec<Value> = properties.keys().map(|k| json!(k)).collect();
            schema["required"] = Value::Array(all);
        }
    }
}

/// The characters `str::trim` removes (Unicode `White_Space`), as a regex class body.
pub const WHITESPACE: &str = r"\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// A string that is 1 to `max` characters once trimmed (`max` >= 2), as a pattern: what
/// `trim()` then a `chars().count()` check accepts, and nothing else.
pub fn trimmed_length_pattern(max: usize) -> String {
    format!(
        "^[{WHITESPACE}]*[^{WHITESPACE}](?:[\\s\\S]{{0,{}}}[^{WHITESPACE}])?[{WHITESPACE}]*$",
        max - 2
    )
}

/// The schema of a name field that is trimmed and then must be 1 to `max` characters.
pub fn trimmed_name(max: usize) -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(format!(
            "1 to {max} characters once leading and trailing whitespace is trimmed."
        )))
        .pattern(Some(trimmed_length_pattern(max)))
        .build()
}

/// A regex of the decimal numbers 1 to `max` (leading zeros allowed): shorter numbers, or as
/// many digits as `max` and below it at the first digit that differs, or `max` itself.
pub fn decimal_up_to(max: u64) -> String {
    let digits = max.to_string();
    let mut alternatives = Vec::new();
    if digits.len() > 1 {
        alternatives.push(format!("[1-9][0-9]{{0,{}}}", digits.len() - 2));
    }
    for (i, d) in digits.bytes().enumerate() {
        let d = d - b'0';
        let lowest = if i == 0 { 1 } else { 0 };
        if d > lowest {
            alternatives.push(format!(
                "{}[{lowest}-{}][0-9]{{{}}}",
                &digits[..i],
                d - 1,
                digits.len() - i - 1
            ));
        }
    }
    alternatives.push(digits);
    format!("0*(?:{})", alternatives.join("|"))
}

/// `(method, path, operation)` of every operation of `doc`.
fn operations_mut(doc: &mut Value) -> Vec<(String, String, &mut Map<String, Value>)> {
    let mut found = Vec::new();
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            if let Some(item) = item.as_object_mut() {
                for (method, op) in item.iter_mut() {
                    if let Some(op) = op.as_object_mut() {
                        found.push((method.clone(), path.clone(), op));
                    }
                }
            }
        }
    }
    found
}

/// utoipa renders an optional body (`Option<T>`) as `oneOf: [null, T]`; the service means
/// that the body may be absent (`required: false`), not that it may be JSON `null`.
fn optional_body_is_absent_not_null(op: &mut Map<String, Value>) {
    let Some(body) = op.get_mut("requestBody") else {
        return;
    };
    for content in body["content"].as_object_mut().into_iter().flatten() {
        let schema = &mut content.1["schema"];
        let Some(variants) = schema["oneOf"].as_array() else {
            continue;
        };
        if let [null, inner] = variants.as_slice() {
            if null == &json!({"type": "null"}) {
                *schema = inner.clone();
            }
        }
    }
}

/// One response per error status, listing its codes in the description and as an `enum` on
/// `error.code`.
fn add_errors(op: &mut Map<String, Value>, codes: &[Code]) {
    let mut by_status: BTreeMap<u16, Vec<&'static str>> = BTreeMap::new();
    for code in codes {
        let names = by_status.entry(code.status().as_u16()).or_default();
        if !names.contains(&code.name()) {
            names.push(code.name());
        }
    }
    let responses = op
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("responses is an object");
    for (status, names) in by_status {
        let listed: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
        responses.insert(
            status.to_string(),
            json!({
                "description": format!("Error: {}.", listed.join(", ")),
                "content": {"application/json": {"schema": {
                    "allOf": [
                        {"$ref": "#/components/schemas/ErrorBody"},
                        {"type": "object", "properties": {"error": {
                            "type": "object",
                            "properties": {"code": {"type": "string", "enum": names}}
                        }}}
                    ]
                }}}
            }),
        );
    }
}

fn add_links(doc: &mut Value) {
    let operations = operations_mut(doc);
    let mut by_id: BTreeMap<String, &mut Map<String, Value>> = operations
        .into_iter()
        .filter_map(|(_, _, op)| Some((op.get("operationId")?.as_str()?.to_string(), op)))
        .collect();
    let ids: Vec<String> = by_id.keys().cloned().collect();
    for link in LINKS {
        assert!(
            ids.iter().any(|id| id == link.to),
            "link to unknown {}",
            link.to
        );
        let op = by_id
            .get_mut(link.from)
            .unwrap_or_else(|| panic!("link from unknown {}", link.from));
        let response = op["responses"]
            .get_mut(link.status)
            .unwrap_or_else(|| panic!("{} has no {} response", link.from, link.status));
        let parameters: Map<String, Value> = link
            .parameters
            .iter()
            .map(|(name, expr)| (name.to_string(), json!(expr)))
            .collect();
        response["links"][link.to] = json!({"operationId": link.to, "parameters": parameters});
    }
}

/// The served document, rendered once.
fn served() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| serde_json::to_string(&document()).expect("the document serialises"))
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", operation_id = "openapi",
    description = "The OpenAPI 3.1 document of this API. Public: it holds no secrets.",
    responses((status = 200, description = "The document.", body = Object)))]
pub(super) async fn serve() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(served())
}

/// Register `GET /api/v1/openapi.json`, public (register it before the admin scope, which
/// would otherwise claim the path).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/v1/openapi.json").route(web::get().to(serve)));
}

/// `docs/api.md`: the document as a readable reference (`ticketsync openapi --markdown`).
pub fn markdown(doc: &Value) -> String {
    let mut out = String::new();
    out.push_str("# ticketsync HTTP API reference\n\n");
    out.push_str(
        "<!-- Generated from the OpenAPI document by `cargo run -- openapi --markdown > docs/api.md`; \
         do not edit by hand (a test compares). -->\n\n",
    );
    out.push_str(&format!(
        "OpenAPI {} document: `GET {PATH}` (public), or `ticketsync openapi`.\n\n",
        doc["openapi"].as_str().unwrap_or("")
    ));
    out.push_str(doc["info"]["description"].as_str().unwrap_or(""));
    out.push_str("\n\n## Operations\n");
    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            operations.push((method.as_str(), path.as_str(), op));
        }
    }
    for tag in doc["tags"].as_array().into_iter().flatten() {
        let tag_name = tag["name"].as_str().unwrap_or("");
        out.push_str(&format!(
            "\n### {tag_name}\n\n{}\n",
            tag["description"].as_str().unwrap_or("")
        ));
        for (method, path, op) in &operations {
            if op["tags"][0].as_str() != Some(tag_name) {
                continue;
            }
            operation_markdown(&mut out, method, path, op);
        }
    }
    out.push_str("\n## Schemas\n");
    for (name, schema) in doc["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
    {
        out.push_str(&format!("\n### {name}\n\n"));
        if let Some(description) = schema["description"].as_str() {
            out.push_str(&format!("{}\n\n", one_line(description)));
        }
        match schema["properties"].as_object() {
            Some(properties) => {
                let required = schema["required"].as_array();
                out.push_str("| Field | Type | Required | Description |\n|---|---|---|---|\n");
                for (field, property) in properties {
                    let is_required =
                        required.is_some_and(|r| r.iter().any(|n| n.as_str() == Some(field)));
                    out.push_str(&format!(
                        "| `{field}` | {} | {} | {} |\n",
                        type_of(property),
                        if is_required { "yes" } else { "no" },
                        one_line(property["description"].as_str().unwrap_or(""))
                    ));
                }
            }
            None => out.push_str(&format!("Type: {}.\n", type_of(schema))),
        }
    }
    out
}

fn operation_markdown(out: &mut String, method: &str, path: &str, op: &Value) {
    out.push_str(&format!("\n#### `{} {path}`\n\n", method.to_uppercase()));
    let text = [&op["summary"], &op["description"]]
        .iter()
        .filter_map(|v| v.as_str())
        .map(one_line)
        .collect::<Vec<_>>()
        .join(" ");
    if !text.is_empty() {
        out.push_str(&format!("{text}\n\n"));
    }
    let auth = if op.get("security").is_some() {
        "bearer token (`Authorization: Bearer <token>`)"
    } else if path.starts_with("/webhooks/") {
        "the secret token in the path"
    } else {
        "none"
    };
    out.push_str(&format!(
        "- Operation id: `{}`\n- Auth: {auth}\n",
        op["operationId"].as_str().unwrap_or("")
    ));
    if let Some(parameters) = op["parameters"].as_array() {
        out.push_str("- Parameters:\n");
        for p in parameters {
            out.push_str(&format!(
                "  - `{}` ({}, {}{}): {}\n",
                p["name"].as_str().unwrap_or(""),
                p["in"].as_str().unwrap_or(""),
                type_of(&p["schema"]),
                if p["required"].as_bool() == Some(true) {
                    ", required"
                } else {
                    ""
                },
                one_line(p["description"].as_str().unwrap_or(""))
            ));
        }
    }
    if let Some(body) = op.get("requestBody") {
        for (media, content) in body["content"].as_object().into_iter().flatten() {
            out.push_str(&format!(
                "- Body ({media}{}): {}{}\n",
                if body["required"].as_bool() == Some(true) {
                    ""
                } else {
                    ", optional"
                },
                type_of(&content["schema"]),
                body["description"]
                    .as_str()
                    .map(|d| format!(". {}", one_line(d)))
                    .unwrap_or_default()
            ));
        }
    }
    out.push_str("- Responses:\n");
    for (status, response) in op["responses"].as_object().into_iter().flatten() {
        let body = response["content"]
            .as_object()
            .and_then(|c| c.iter().next())
            .map(|(media, content)| {
                if content["schema"].get("allOf").is_some() {
                    " (`ErrorBody`)".to_string()
                } else {
                    format!(" ({media}: {})", type_of(&content["schema"]))
                }
            })
            .unwrap_or_default();
        out.push_str(&format!(
            "  - {status}{body}: {}\n",
            one_line(response["description"].as_str().unwrap_or(""))
        ));
        for (name, link) in response["links"].as_object().into_iter().flatten() {
            let parameters: Vec<String> = link["parameters"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(p, e)| format!("`{p}` = `{}`", e.as_str().unwrap_or("")))
                .collect();
            out.push_str(&format!(
                "    - link to `{name}`: {}\n",
                parameters.join(", ")
            ));
        }
    }
}

/// A schema as a short type, linking named schemas.
fn type_of(schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return format!("[{name}](#{})", name.to_lowercase());
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(items) = schema[key].as_array() {
            let joiner = if key == "allOf" { " and " } else { " or " };
            return items.iter().map(type_of).collect::<Vec<_>>().join(joiner);
        }
    }
    if let Some(values) = schema["enum"].as_array() {
        let listed: Vec<String> = values
            .iter()
            .map(|v| match v {
                Value::String(s) => format!("`{s}`"),
                other => format!("`{other}`"),
            })
            .collect();
        return format!("one of {}", listed.join(", "));
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if types.is_empty() {
        return "any".to_string();
    }
    types
        .iter()
        .map(|t| match *t {
            "array" => format!("array of {}", type_of(&schema["items"])),
            t => match schema["format"].as_str() {
                Some(format) => format!("{t} ({format})"),
                None => t.to_string(),
            },
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

/// Text on one line, safe in a table cell.
fn one_line(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::routes::ROUTE_ERRORS;
    use std::path::{Path, PathBuf};

    /// The `.rs` files under `dir`, except the console's (HTML pages, not the API).
    fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.ends_with("src/console") {
                continue;
            }
            if path.is_dir() {
                sources(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }

    /// The string literal at the start of `text` (after its opening quote).
    fn literal(text: &str) -> Option<&str> {
        text.split('"').next()
    }

    /// Every `(method, path, file)` the source registers with actix outside the console: the
    /// route attribute macros on handlers, resources with their method routes, routes given a
    /// path directly, and scopes whose default service is a handler of their own (not
    /// `route_not_found`), registered as `("*", "<scope>/")`: every path under the scope.
    fn registered_routes() -> Vec<(String, String, String)> {
        let methods = ["get", "post", "put", "delete", "patch", "head"];
        let resource = format!("web::{}(\"", "resource");
        let route_call = format!(".{}(\"", "route");
        let scope = format!("web::{}(\"", "scope");
        let default_service = format!(".{}(web::to(", "default_service");
        let mut files = Vec::new();
        sources(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        let mut routes = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let at = file.display().to_string();
            for method in methods {
                let attribute = format!("#[{method}(\"");
                for (i, _) in text.match_indices(&attribute) {
                    let path = literal(&text[i + attribute.len()..]).unwrap();
                    routes.push((method.to_string(), path.to_string(), at.clone()));
                }
            }
            for (i, _) in text.match_indices(&resource) {
                let path = literal(&text[i + resource.len()..]).unwrap();
                let rest = &text[i + resource.len()..];
                let end = rest[path.len()..]
                    .find(&resource)
                    .map_or(rest.len(), |e| e + path.len());
                let mut any = false;
                for method in methods {
                    if rest[..end].contains(&format!(".route(web::{method}()")) {
                        routes.push((method.to_string(), path.to_string(), at.clone()));
                        any = true;
                    }
                }
                assert!(any, "{at}: a resource {path} with no route this test reads");
            }
            for (i, _) in text.match_indices(&scope) {
                let rest = &text[i + scope.len()..];
                let path = literal(rest).unwrap();
                let statement = &rest[..rest.find(';').unwrap_or(rest.len())];
                if let Some(at_default) = statement.find(&default_service) {
                    let handler = &statement[at_default + default_service.len()..];
                    let handler = &handler[..handler.find(')').unwrap_or(handler.len())];
                    if !handler.ends_with("route_not_found") {
                        routes.push(("*".to_string(), format!("{path}/"), at.clone()));
                    }
                }
            }
            for (i, _) in text.match_indices(&route_call) {
                let rest = &text[i + route_call.len()..];
                let path = literal(rest).unwrap();
                let method = methods
                    .into_iter()
                    .find(|m| rest.contains(&format!("web::{m}()")))
                    .unwrap_or_else(|| panic!("{at}: route {path} with no method this test reads"));
                routes.push((method.to_string(), path.to_string(), at.clone()));
            }
        }
        routes
    }

    fn documented() -> Vec<(String, String)> {
        let doc = document();
        let mut ops = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                ops.push((method.clone(), path.clone()));
            }
        }
        ops
    }

    #[test]
    fn every_route_the_source_registers_is_documented_and_nothing_else() {
        let routes = registered_routes();
        let documented = documented();
        // Handlers inside the `/api/v1` scope register their path without the prefix.
        let is_documented = |method: &str, path: &str| {
            documented.iter().any(|(m, p)| {
                if method == "*" {
                    return p.starts_with(path);
                }
                m == method && (p == path || p.strip_prefix("/api/v1") == Some(path))
            })
        };
        for (method, path, file) in &routes {
            assert!(
                is_documented(method, path),
                "{method} {path} (registered in {file}) is missing from the OpenAPI document: \
                 annotate the handler with #[utoipa::path] and list it in http::openapi::ApiDoc"
            );
        }
        for (method, path) in &documented {
            assert!(
                routes
                    .iter()
                    .any(|(m, p, _)| (m == "*" && path.starts_with(p.as_str()))
                        || (m == method && (p == path || path.strip_prefix("/api/v1") == Some(p)))),
                "the document lists {method} {path}, which no code registers"
            );
        }
        assert!(routes.len() >= 25, "{routes:?}");
    }

    #[test]
    fn the_error_table_has_one_row_per_documented_operation() {
        let documented = documented();
        for row in ROUTE_ERRORS {
            assert!(
                documented
                    .iter()
                    .any(|(m, p)| m == row.method && p == row.path),
                "ROUTE_ERRORS lists {} {}, which the document does not",
                row.method,
                row.path
            );
        }
        assert_eq!(ROUTE_ERRORS.len(), documented.len());
    }

    #[test]
    fn the_document_holds_no_secret_and_declares_the_bearer_scheme() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["servers"], json!([{"url": "/"}]));
        assert_eq!(
            doc["components"]["securitySchemes"]["bearerAuth"],
            json!({"type": "http", "scheme": "bearer"})
        );
        for (method, path) in documented() {
            let op = &doc["paths"][&path][&method];
            let bearer = op.get("security").is_some();
            assert_eq!(
                bearer,
                path.starts_with("/api/v1/") && path != PATH || path == "/metrics",
                "{method} {path}"
            );
        }
        // No token and no webhook URL but the template (the document is static: no org's
        // domain or token can reach it).
        let text = doc.to_string();
        assert!(!text.contains("tso_"));
        assert_eq!(
            text.matches("/webhooks/freshdesk/").count(),
            text.matches("/webhooks/freshdesk/{token}").count()
        );
    }

    #[test]
    fn answered_fields_are_required_and_request_fields_keep_their_defaults() {
        let doc = document();
        let required = |schema: &str| doc["components"]["schemas"][schema]["required"].clone();
        // Always sent, as null when unset.
        for (schema, field) in [
            ("Session", "handoff"),
            ("SessionPage", "next_cursor"),
            ("ConnectionView", "last_webhook_at"),
            ("TokenView", "last_used_at"),
        ] {
            assert!(
                required(schema)
                    .as_array()
                    .is_some_and(|r| r.contains(&json!(field))),
                "{schema}.{field}"
            );
        }
        // Read with defaults: may be left out.
        assert_eq!(required("SaveRequest"), json!(["domain"]));
        assert_eq!(required("HandoffSettings"), Value::Null);
    }

    #[test]
    fn docs_api_md_is_what_the_document_generates() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/api.md");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == markdown(&document()),
            "docs/api.md is not what the OpenAPI document generates; regenerate it with \
             `cargo run -- openapi --markdown > docs/api.md`"
        );
    }
}
