//! HTML to plain text, the way Freshdesk derives `description_text` and `body_text`
//! (a basic version: tags removed, line-breaking tags turned into newlines, common entities
//! decoded, whitespace tidied).

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

#[cfg(test)]
mod tests {
    use super::to_text;

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
