//! Turning a channel-neutral message into a DingTalk robot body: picks the
//! message type, maps mentions, guarantees a keyword and fits the size limit.

use carillon_sdk::dialect::{self, Dialect};
use carillon_sdk::mention::{Audience, Notes};
use carillon_sdk::{DeliverError, Message, Table, fit, keywords, locale, table, text};
use serde_json::{Value, json};

use crate::{DingTalkConfig, MAX_BODY_BYTES, MsgType};

/// Who to @: the destination's defaults plus the message's, without the
/// email addresses DingTalk cannot @ (said in `notes`).
fn audience(config: &DingTalkConfig, message: &Message, notes: &mut Notes) -> Audience {
    let mut at = Audience::standing(config.at_all, &config.at_user_ids, &config.at_mobiles)
        .with(&message.mentions);
    if !at.emails.is_empty() {
        notes.push(format!(
            "not mentioned: {} by email address (DingTalk robots @ by mobile or user id)",
            at.emails.len()
        ));
        at.emails.clear();
    }
    at
}

/// The `@mobile @userid` line DingTalk needs in the text for the @ to fire.
fn at_line(at: &Audience) -> String {
    at.mobiles
        .iter()
        .chain(&at.user_ids)
        .map(|who| format!("@{who}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// DingTalk's `at` object.
fn at_json(at: &Audience) -> Value {
    json!({ "atMobiles": at.mobiles, "atUserIds": at.user_ids, "isAtAll": at.all })
}

/// The request body, at most [`MAX_BODY_BYTES`] bytes of JSON.
pub fn body(config: &DingTalkConfig, message: &Message) -> Result<(Vec<u8>, Notes), DeliverError> {
    let locale = locale::effective(config.locale.as_deref(), &message.locale);
    let mut notes = Notes::default();
    let at = audience(config, message, &mut notes);
    // Action cards cannot @ anyone (docs/vendors/dingtalk.md#mentions): a
    // message that mentions someone goes as Markdown, with the link inline.
    let kind = match config.msg_type {
        Some(MsgType::ActionCard) if !at.is_empty() => {
            notes.push("sent as markdown: DingTalk action cards cannot @ anyone");
            MsgType::Markdown
        }
        Some(kind) => kind,
        None if message.link.is_some() && at.is_empty() => MsgType::ActionCard,
        None => MsgType::Markdown,
    };
    let markdown = kind != MsgType::Text;

    // One line per row, `Title: value, Title: value` with ✓/✗: DingTalk's
    // documented Markdown has no tables.
    let render_table = move |t: &Table| {
        let bullet = if markdown { "- " } else { "" };
        table::labelled_rows(t, markdown, bullet, |_, shown, tone| {
            format!("{shown}{}", table::mark(tone))
        })
    };
    // DingTalk's Markdown subset (docs/vendors/dingtalk.md#markdown-dialect).
    let converted;
    let body_text = if markdown {
        converted = dialect::convert(&message.markdown, Dialect::DingTalk);
        &converted
    } else {
        &message.text
    };
    let rows = message.table.as_ref().map_or(0, |t| t.rows.len());
    // The title (with `keyword` in front when given) and the visible text.
    let compose = |keyword: Option<&str>, body: &str, rows: usize| -> (String, String) {
        // One severity marker, in front of the heading (and of the title
        // the conversation list shows).
        let title = text::marked_title(None, keyword, &message.title);
        let marked = text::marked_title(Some(message.severity), keyword, &message.title);
        let head = if markdown {
            format!("#### {}", dialect::escape(&marked, Dialect::DingTalk))
        } else {
            marked
        };
        let fields = if markdown {
            dialect::fields(&message.fields, "- ", Dialect::DingTalk)
        } else {
            text::plain_fields(&message.fields)
        };
        let table_text = message
            .table
            .as_ref()
            .map(|t| fit::rows_text(t, rows, render_table, locale))
            .unwrap_or_default();
        let mut sections = vec![fields.join("\n")];
        if kind != MsgType::ActionCard
            && let Some(link) = &message.link
        {
            let label = locale::link_label(link, locale);
            let shown = if markdown {
                Dialect::DingTalk
            } else {
                Dialect::Plain
            };
            sections.push(dialect::link(&label, &link.url, shown));
        }
        sections.push(at_line(&at));
        let tail = fit::join_sections(&sections.iter().map(String::as_str).collect::<Vec<_>>());
        (
            title,
            fit::join_sections(&[&head, body, &table_text, &tail]),
        )
    };
    let build = |keyword: Option<&str>, body: &str, rows: usize| -> Value {
        let (title, content) = compose(keyword, body, rows);
        let mut out = match kind {
            MsgType::Text => json!({ "msgtype": "text", "text": { "content": content } }),
            MsgType::Markdown => json!({
                "msgtype": "markdown",
                "markdown": { "title": title, "text": content },
            }),
            MsgType::ActionCard => match &message.link {
                Some(link) => json!({
                    "msgtype": "actionCard",
                    "actionCard": {
                        "title": title,
                        "text": content,
                        "btnOrientation": "0",
                        "singleTitle": locale::link_label(link, locale),
                        "singleURL": link.url,
                    },
                }),
                // An action card needs a button; without a link, a plain card.
                None => json!({
                    "msgtype": "markdown",
                    "markdown": { "title": title, "text": content },
                }),
            },
        };
        if !at.is_empty()
            && let Some(object) = out.as_object_mut()
        {
            object.insert("at".to_owned(), at_json(&at));
        }
        out
    };
    // The keyword must be in the visible text: when the fitted message has
    // none, the first keyword goes in front of the title and it is refitted.
    let visible = |bytes: &Vec<u8>| {
        serde_json::from_slice::<Value>(bytes)
            .map(|v| visible_text(&v))
            .unwrap_or_default()
    };
    keywords::guarantee(&config.keywords, visible, |keyword| {
        fit::fit_json(MAX_BODY_BYTES, body_text, rows, locale, |b, r| {
            build(keyword, b, r)
        })
    })
    .map(|bytes| (bytes, notes))
}

/// The text DingTalk shows: the message text or content (the keyword check
/// reads these, not the conversation-list `title`).
fn visible_text(body: &Value) -> String {
    ["markdown", "actionCard"]
        .iter()
        .filter_map(|k| body[*k]["text"].as_str())
        .chain(body["text"]["content"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}
