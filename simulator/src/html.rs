//! HTML to plain text, the way Freshdesk derives `description_text` and `body_text`
//! (a basic version: tags removed, line-breaking tags turned into newlines, common entities
//! decoded, whitespace tidied); and the rewrites Freshdesk may apply to a posted body.

use crate::types::BodyRewrites;

/// Tags after which the text continues on a new line.
const LINE_BREAKING: [&str; 12] = [
    "br",
    "/p",
    "/div",
    "/li",
    "/tr",
    "/h1",
    "/h2",
    "/h3",
    "/h4",
    "/h5",
    "/h6",
    "/blockquote",
];

/// The plain text of an HTML fragment.
pub(crate) fn to_text(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        text.push_str(&rest[..start]);
        match rest[start..].find('>') {
            Some(end) => {
                let tag = rest[start + 1..start + end]
                    .trim()
                    .trim_end_matches('/')
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_ascii_lowercase();
                if LINE_BREAKING.contains(&tag.as_str()) {
                    text.push('\n');
                }
                rest = &rest[start + end + 1..];
            }
            None => {
                // An unterminated `<` is text, not a tag.
                text.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    text.push_str(rest);
    tidy(&decode_entities(&text))
}

/// Decodes named entities Freshdesk commonly emits and numeric ones.
fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let decoded = after
            .find(';')
            .filter(|&semi| semi <= 10)
            .and_then(|semi| decode_entity(&after[..semi]).map(|c| (c, semi)));
        match decoded {
            Some((c, semi)) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn decode_entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some(' '),
        _ => {
            let num = name.strip_prefix('#')?;
            let code = match num.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => num.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

/// Trims every line, collapses runs of blank lines and trims the whole text.
fn tidy(text: &str) -> String {
    let mut lines: Vec<&str> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() && lines.last().is_some_and(|l| l.is_empty()) {
            continue;
        }
        lines.push(line);
    }
    lines.join("\n").trim().to_string()
}

/// The body rewrites in force (`/_sim/body_rewrites`).
#[derive(Debug, Default)]
pub(crate) struct Rewrites {
    reencode_entities: bool,
    wrap_in_div: bool,
    signature: String,
    blank_body_text: bool,
}

impl Rewrites {
    /// Applies the fields present in `update`.
    pub fn update(&mut self, update: &BodyRewrites) {
        if let Some(v) = update.reencode_entities {
            self.reencode_entities = v;
        }
        if let Some(v) = update.wrap_in_div {
            self.wrap_in_div = v;
        }
        if let Some(v) = &update.signature {
            self.signature = v.clone();
        }
        if let Some(v) = update.blank_body_text {
            self.blank_body_text = v;
        }
    }

    /// The rewrites, every field set.
    pub fn snapshot(&self) -> BodyRewrites {
        BodyRewrites {
            reencode_entities: Some(self.reencode_entities),
            wrap_in_div: Some(self.wrap_in_div),
            signature: Some(self.signature.clone()),
            blank_body_text: Some(self.blank_body_text),
        }
    }

    /// The stored `(body, body_text)` of a body posted through the API.
    pub fn apply(&self, body: String) -> (String, String) {
        let mut body = body;
        if self.reencode_entities {
            body = reencode_entities(&body);
        }
        if !self.signature.is_empty() {
            body = format!(
                "{body}<div class=\"signature\"><br>{}</div>",
                self.signature
            );
        }
        if self.wrap_in_div {
            body = format!("<div dir=\"ltr\">{body}</div>");
        }
        let text = if self.blank_body_text {
            String::new()
        } else {
            to_text(&body)
        };
        (body, text)
    }
}

/// Entities spelled numerically, and apostrophes in text encoded (tags are left alone).
fn reencode_entities(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    let mut rest = html;
    while let Some(c) = rest.chars().next() {
        let mut replaced = false;
        if !in_tag {
            for (named, numeric) in [("&amp;", "&#38;"), ("&quot;", "&#34;"), ("'", "&#39;")] {
                if let Some(after) = rest.strip_prefix(named) {
                    out.push_str(numeric);
                    rest = after;
                    replaced = true;
                    break;
                }
            }
        }
        if replaced {
            continue;
        }
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ => {}
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{to_text, BodyRewrites, Rewrites};

    #[test]
    fn rewrites_change_the_markup_and_keep_the_text_plus_the_signature() {
        let mut rewrites = Rewrites::default();
        rewrites.update(&BodyRewrites {
            reencode_entities: Some(true),
            wrap_in_div: Some(true),
            signature: Some("-- Acme support".into()),
            blank_body_text: None,
        });
        let (body, text) = rewrites.apply("<p>Don't &amp; &quot;won't&quot;</p>".into());
        assert_eq!(
            body,
            "<div dir=\"ltr\"><p>Don&#39;t &#38; &#34;won&#39;t&#34;</p><div class=\"signature\"><br>-- Acme support</div></div>"
        );
        assert_eq!(text, "Don't & \"won't\"\n\n-- Acme support");
        rewrites.update(&BodyRewrites {
            blank_body_text: Some(true),
            ..BodyRewrites::default()
        });
        assert_eq!(rewrites.apply("<p>x</p>".into()).1, "");
    }

    #[test]
    fn tags_are_removed_and_entities_decoded() {
        assert_eq!(
            to_text("<div>Hello <b>there</b> &amp; welcome&#33;</div>"),
            "Hello there & welcome!"
        );
    }

    #[test]
    fn paragraphs_and_breaks_become_lines() {
        assert_eq!(to_text("<p>one</p><p>two<br/>three</p>"), "one\ntwo\nthree");
    }

    #[test]
    fn plain_text_and_stray_brackets_survive() {
        assert_eq!(to_text("a < b && c"), "a < b && c");
        assert_eq!(to_text("x &unknown; y"), "x &unknown; y");
    }
}
