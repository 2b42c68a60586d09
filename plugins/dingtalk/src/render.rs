//! Turning a channel-neutral message into a DingTalk robot body: picks the
//! message type, maps mentions, guarantees a keyword and fits the size limit.

use carillon_sdk::{DeliverError, Mention, Message, Severity, Table, fit, log, table, text};
use serde_json::{Value, json};

use crate::{DingTalkConfig, MAX_BODY_BYTES, MsgType};

/// Who to @: DingTalk's `at` object.
#[derive(Debug, Default)]
struct At {
    mobiles: Vec<String>,
    user_ids: Vec<String>,
    all: bool,
}

impl At {
    fn is_empty(&self) -> bool {
        self.mobiles.is_empty() && self.user_ids.is_empty() && !self.all
    }

    /// The `@mobile @userid` line DingTalk needs in the text for the @ to fire.
    fn line(&self) -> String {
        self.mobiles
            .iter()
            .chain(&self.user_ids)
            .map(|who| format!("@{who}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn json(&self) -> Value {
        json!({ "atMobiles": self.mobiles, "atUserIds": self.user_ids, "isAtAll": self.all })
    }
}

fn push_unique(list: &mut Vec<String>, value: &str) {
    if !list.iter().any(|v| v == value) {
        list.push(value.to_owned());
    }
}

/// The destination's default mentions plus the message's, in order, without
/// duplicates; email mentions are dropped with a warning.
fn mentions(config: &DingTalkConfig, message: &Message) -> At {
    let mut at = At {
        all: config.at_all,
        ..At::default()
    };
    for mobile in &config.at_mobiles {
        push_unique(&mut at.mobiles, mobile);
    }
    for id in &config.at_user_ids {
        push_unique(&mut at.user_ids, id);
    }
    for mention in &message.mentions {
        match mention {
            Mention::All => at.all = true,
            Mention::Mobile(m) => push_unique(&mut at.mobiles, m),
            Mention::UserId(id) => push_unique(&mut at.user_ids, id),
            Mention::Email(_) => {
                log::warn("DingTalk robots cannot @ by email address; that mention was dropped")
            }
        }
    }
    at
}

/// A severity as an emoji, the only colour DingTalk Markdown documents.
fn badge(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "ℹ️",
        Severity::Success => "✅",
        Severity::Warning => "⚠️",
        Severity::Error => "❌",
        Severity::Critical => "🚨",
    }
}

/// One line per row, `Title: value, Title: value`, with ✓/✗ for conditions.
fn table_lines(t: &Table, markdown: bool) -> String {
    let esc = |s: &str| {
        if markdown {
            text::escape_markdown(s)
        } else {
            s.to_owned()
        }
    };
    t.rows
        .iter()
        .map(|row| {
            let cells: Vec<String> = t
                .columns
                .iter()
                .enumerate()
                .map(|(i, column)| {
                    let value = row.get(i).map_or("", String::as_str);
                    let mark = match table::tone(column, value) {
                        table::Tone::Good => " ✓",
                        table::Tone::Bad => " ✗",
                        table::Tone::Neutral => "",
                    };
                    format!(
                        "{}: {}{mark}",
                        esc(&column.title),
                        esc(&table::display(column, value))
                    )
                })
                .collect();
            let bullet = if markdown { "- " } else { "" };
            format!("{bullet}{}", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The request body, at most [`MAX_BODY_BYTES`] bytes of JSON.
pub fn body(config: &DingTalkConfig, message: &Message) -> Result<Vec<u8>, DeliverError> {
    let locale = config.locale.as_deref().unwrap_or(&message.locale);
    let mut at = mentions(config, message);
    let kind = config
        .msg_type
        .unwrap_or(if message.link.is_some() && at.is_empty() {
            MsgType::ActionCard
        } else {
            MsgType::Markdown
        });
    if kind == MsgType::ActionCard && !at.is_empty() {
        log::warn("DingTalk action cards cannot @ anyone; the mentions were dropped");
        at = At::default();
    }
    let markdown = kind != MsgType::Text;
    let zh = locale.starts_with("zh");

    let render_table = move |t: &Table| table_lines(t, markdown);
    let body_text = if markdown {
        &message.markdown
    } else {
        &message.text
    };
    let rows = message.table.as_ref().map_or(0, |t| t.rows.len());
    // The title (with `keyword` in front when given) and the visible text.
    let compose = |keyword: Option<&str>, body: &str, rows: usize| -> (String, String) {
        let prefix = keyword.map(|k| format!("{k} ")).unwrap_or_default();
        let title = format!("{prefix}{}", message.title);
        let head = if markdown {
            format!(
                "#### {} {prefix}{}",
                badge(message.severity),
                text::escape_markdown(&message.title)
            )
        } else {
            format!("{} {title}", badge(message.severity))
        };
        let fields: Vec<String> = message
            .fields
            .iter()
            .map(|f| {
                if markdown {
                    format!(
                        "- **{}**: {}",
                        text::escape_markdown(&f.name),
                        text::escape_markdown(&f.value)
                    )
                } else {
                    format!("{}: {}", f.name, f.value)
                }
            })
            .collect();
        let table_text = message
            .table
            .as_ref()
            .map(|t| fit::rows_text(t, rows, render_table, locale))
            .unwrap_or_default();
        let mut sections = vec![fields.join("\n")];
        if kind != MsgType::ActionCard
            && let Some(link) = &message.link
        {
            let label = link
                .label
                .clone()
                .unwrap_or_else(|| if zh { "查看详情" } else { "Open" }.to_owned());
            sections.push(if markdown {
                format!("[{}]({})", text::escape_markdown(&label), link.url)
            } else {
                format!("{label}: {}", link.url)
            });
        }
        sections.push(at.line());
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
                        "singleTitle": link.label.clone().unwrap_or_else(|| if zh { "查看详情" } else { "Open" }.to_owned()),
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
            object.insert("at".to_owned(), at.json());
        }
        out
    };
    let fitted = fit::fit_json(MAX_BODY_BYTES, body_text, rows, locale, |b, r| {
        build(None, b, r)
    })?;
    // The keyword must be in the visible text: when the fitted message has
    // none, the first keyword goes in front of the title and it is refitted.
    let Some(first) = config.keywords.first() else {
        return Ok(fitted);
    };
    let shown = serde_json::from_slice::<Value>(&fitted)
        .map(|v| visible_text(&v))
        .unwrap_or_default();
    if config.keywords.iter().any(|k| shown.contains(k.as_str())) {
        return Ok(fitted);
    }
    fit::fit_json(MAX_BODY_BYTES, body_text, rows, locale, |b, r| {
        build(Some(first), b, r)
    })
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
