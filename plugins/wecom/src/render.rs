//! Turning a channel-neutral message into a WeCom robot body: picks the
//! message type, maps mentions, colours conditional cells and fits the
//! content into WeCom's byte limits.

use carillon_sdk::dialect::{self, Dialect};
use carillon_sdk::mention::{Audience, Notes};
use carillon_sdk::{DeliverError, Message, Table, fit, locale, table, text};
use serde_json::{Value, json};

use crate::{MARKDOWN_MAX_BYTES, MAX_BODY_BYTES, MsgType, TEXT_MAX_BYTES, WeComConfig};

/// The body flavour actually sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Markdown,
    MarkdownV2,
    Text,
}

/// The destination's default mentions plus the message's, and the body
/// type that can carry them: `markdown` cannot mention everyone or by
/// mobile and `markdown_v2` cannot mention anyone, so such a message is
/// sent as `text`, whose mention lists page people (docs/vendors/wecom.md#mentions).
/// What changed, and the email addresses no robot can mention, go in `notes`.
fn audience(config: &WeComConfig, message: &Message, notes: &mut Notes) -> (Audience, Kind) {
    let mut who = Audience::standing(config.at_all, &config.at_user_ids, &config.at_mobiles)
        .with(&message.mentions);
    if !who.emails.is_empty() {
        notes.push(format!(
            "not mentioned: {} by email address (WeCom robots mention by user id or mobile)",
            who.emails.len()
        ));
        who.emails.clear();
    }
    let wanted = match config.msg_type {
        Some(MsgType::Text) => Kind::Text,
        _ if config.markdown_v2_tables && message.table.is_some() => Kind::MarkdownV2,
        _ => Kind::Markdown,
    };
    let kind = match wanted {
        Kind::Markdown if who.all || !who.mobiles.is_empty() => {
            notes.push("sent as text: WeCom markdown cannot mention everyone or by mobile");
            Kind::Text
        }
        Kind::MarkdownV2 if !who.is_empty() => {
            notes.push("sent as text: WeCom markdown_v2 cannot mention anyone");
            Kind::Text
        }
        kind => kind,
    };
    (who, kind)
}

/// One line per row, `Title: value, Title: value`; conditional cells are
/// coloured in Markdown and marked ✓/✗ in text.
fn table_lines(t: &Table, markdown: bool) -> String {
    let shown_in = if markdown {
        Dialect::WeComMarkdown
    } else {
        Dialect::Plain
    };
    table::labelled_rows_in(t, shown_in, "", |column, shown, tone| {
        match (markdown, column.condition.is_some(), tone) {
            (true, _, table::Tone::Good) => format!("<font color=\"info\">{shown}</font>"),
            (true, _, table::Tone::Bad) => format!("<font color=\"warning\">{shown}</font>"),
            (true, true, table::Tone::Neutral) => {
                format!("<font color=\"comment\">{shown}</font>")
            }
            (false, _, tone) => format!("{shown}{}", table::mark(tone)),
            _ => shown.to_owned(),
        }
    })
}

/// A pipe table for `markdown_v2`, with ✓/✗ marks (v2 has no colours).
fn pipe_table(t: &Table) -> String {
    table::markdown_table_with(t, |_, shown, tone| format!("{shown}{}", table::mark(tone)))
}

/// The request body: content within WeCom's limit for its type, JSON within
/// [`MAX_BODY_BYTES`].
pub fn body(config: &WeComConfig, message: &Message) -> Result<(Vec<u8>, Notes), DeliverError> {
    let locale = locale::effective(config.locale.as_deref(), &message.locale);
    let mut notes = Notes::default();
    let (who, kind) = audience(config, message, &mut notes);
    let markdown = kind != Kind::Text;
    // Each body type's own dialect (docs/vendors/wecom.md#markdown-dialect).
    let shown_in = match kind {
        Kind::Markdown => Dialect::WeComMarkdown,
        Kind::MarkdownV2 => Dialect::WeComMarkdownV2,
        Kind::Text => Dialect::Plain,
    };

    // One severity marker, in front of the heading.
    let title = text::marked_title(Some(message.severity), None, &message.title);
    let head = if markdown {
        format!("### {}", dialect::escape(&title, shown_in))
    } else {
        title
    };
    let bullet = if kind == Kind::MarkdownV2 { "- " } else { "" };
    let fields = dialect::fields(&message.fields, bullet, shown_in);
    let mut tail = vec![fields.join("\n")];
    if let Some(link) = &message.link {
        let label = locale::link_label(link, locale);
        tail.push(dialect::link(&label, &link.url, shown_in));
    }
    if kind == Kind::Markdown {
        let line: Vec<String> = who.user_ids.iter().map(|id| format!("<@{id}>")).collect();
        tail.push(line.join(" "));
    }
    tail.retain(|s| !s.is_empty());

    let render_table = move |t: &Table| match kind {
        Kind::MarkdownV2 => pipe_table(t),
        _ => table_lines(t, markdown),
    };
    let tail = tail.join("\n\n");
    let converted;
    let body_text = if markdown {
        converted = dialect::convert(&message.markdown, shown_in);
        &converted
    } else {
        &message.text
    };
    let rows = message.table.as_ref().map_or(0, |t| t.rows.len());
    let limit = if kind == Kind::Text {
        TEXT_MAX_BYTES
    } else {
        MARKDOWN_MAX_BYTES
    };
    let build = |body: &str, rows: usize| -> Value {
        let table_text = message
            .table
            .as_ref()
            .map(|t| fit::rows_text(t, rows, render_table, locale))
            .unwrap_or_default();
        let content = fit::join_sections(&[&head, body, &table_text, &tail]);
        match kind {
            Kind::Markdown => json!({ "msgtype": "markdown", "markdown": { "content": content } }),
            Kind::MarkdownV2 => {
                json!({ "msgtype": "markdown_v2", "markdown_v2": { "content": content } })
            }
            Kind::Text => {
                let mut listed = who.user_ids.clone();
                if who.all {
                    listed.push("@all".to_owned());
                }
                let mut text = json!({ "content": content });
                if let Some(object) = text.as_object_mut() {
                    if !listed.is_empty() {
                        object.insert("mentioned_list".to_owned(), json!(listed));
                    }
                    if !who.mobiles.is_empty() {
                        object.insert("mentioned_mobile_list".to_owned(), json!(who.mobiles));
                    }
                }
                json!({ "msgtype": "text", "text": text })
            }
        }
    };
    // Two limits: the content (measured as WeCom does, in UTF-8 bytes of the
    // string) and the whole serialized body.
    let encode = |body: &str, rows: usize| {
        let value = build(body, rows);
        let content_bytes = content_of(&value).map_or(usize::MAX, str::len);
        serde_json::to_vec(&value)
            .ok()
            .map(|bytes| (bytes, content_bytes))
    };
    let fits = |candidate: &Option<(Vec<u8>, usize)>| {
        candidate
            .as_ref()
            .is_some_and(|(bytes, content)| *content <= limit && bytes.len() <= MAX_BODY_BYTES)
    };
    fit::fit_payload(body_text, rows, locale, encode, fits)
        .flatten()
        .map(|(bytes, _)| (bytes, notes))
        .ok_or_else(|| {
            DeliverError::rejected(format!(
                "the message does not fit in {limit} bytes of content even without its body and table"
            ))
        })
}

/// The `content` string of a WeCom body of any type.
fn content_of(body: &Value) -> Option<&str> {
    let kind = body["msgtype"].as_str()?;
    body[kind]["content"].as_str()
}
