//! Building the Lark request body: the card, post and text shapes, mentions,
//! the table component (docs/vendors/lark.md, "Message types", "Mentions",
//! "Tables"), signing, the keyword guarantee and the size budget.

use carillon_sdk::dialect::{self, Dialect};
use carillon_sdk::mention::{Notes, defuse_at};
use carillon_sdk::table::{self, Tone};
use carillon_sdk::{
    Context, DeliverError, HttpRequest, Mention, Message, Severity, Table, fit, keywords, locale,
    log, text as sdk_text,
};
use serde_json::{Map, Value, json};

use crate::{LarkConfig, MAX_PAYLOAD_BYTES, MsgType, signature};

/// The most table columns sent in a card: the older documented maximum (the
/// current doc says 50; docs/vendors/lark.md#open-questions leaves it open),
/// so cards render everywhere.
pub const MAX_CARD_COLUMNS: usize = 10;

/// The most rows a card table shows per page (`page_size` 1–10,
/// docs/vendors/lark.md#tables).
const MAX_PAGE_SIZE: usize = 10;

/// Keys whose string values are not shown as text, so do not count for the
/// keyword check ("not href", docs/vendors/lark.md#security).
const NON_TEXT_KEYS: &[&str] = &[
    "href",
    "url",
    "tag",
    "template",
    "data_type",
    "name",
    "color",
    "type",
    "user_id",
    "id",
    "image_key",
    "timestamp",
    "sign",
    "msg_type",
];

/// Someone to mention.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    All,
    Id(String),
}

/// Everything the payload needs besides the trimmed body and the row count.
struct Parts<'a> {
    ctx: &'a Context,
    config: &'a LarkConfig,
    message: &'a Message,
    locale: &'a str,
    fields: Vec<(String, String)>,
    table: Option<Table>,
    omitted_columns: usize,
    targets: Vec<Target>,
}

/// Builds the request for `message`.
pub fn request(
    ctx: &Context,
    config: &LarkConfig,
    message: &Message,
) -> Result<(HttpRequest, Notes), DeliverError> {
    let mut notes = Notes::default();
    let locale = locale::effective(config.locale.as_deref(), &message.locale);
    let (table, omitted_columns) = match (&message.table, config.msg_type) {
        (Some(t), MsgType::Interactive) if t.columns.len() > MAX_CARD_COLUMNS => {
            log::warn(&format!(
                "the table has {} columns; the card shows the first {MAX_CARD_COLUMNS}",
                t.columns.len()
            ));
            (
                Some(first_columns(t, MAX_CARD_COLUMNS)),
                t.columns.len() - MAX_CARD_COLUMNS,
            )
        }
        (t, _) => (t.clone(), 0),
    };
    let parts = Parts {
        ctx,
        config,
        message,
        locale,
        fields: message
            .fields
            .iter()
            .map(|f| (f.name.clone(), f.value.clone()))
            .collect(),
        table,
        omitted_columns,
        targets: targets(config, message, &mut notes),
    };
    let body = match config.msg_type {
        // The card's `lark_md` dialect (docs/vendors/lark.md#markdown-dialect).
        MsgType::Interactive => dialect::convert(&message.markdown, Dialect::LarkMd),
        MsgType::Post => message.text.clone(),
        MsgType::Text => defuse_at(&message.text),
    };
    let visible = |bytes: &Vec<u8>| {
        serde_json::from_slice::<Value>(bytes)
            .map(|v| visible_text(&v))
            .unwrap_or_default()
    };
    let bytes = keywords::guarantee(&config.keywords, visible, |keyword| {
        // One severity marker: a card's header colour shows the severity,
        // so it keeps only the title's own marker; posts and text put one
        // in front.
        let severity = match config.msg_type {
            MsgType::Interactive => None,
            MsgType::Post | MsgType::Text => Some(message.severity),
        };
        let title = sdk_text::marked_title(severity, keyword, &message.title);
        parts.fit(&title, &body)
    })?;
    Ok((HttpRequest::post_json_bytes(&config.webhook, bytes), notes))
}

impl Parts<'_> {
    /// The serialized payload, trimmed to the limit.
    fn fit(&self, title: &str, body: &str) -> Result<Vec<u8>, DeliverError> {
        let rows = self.table.as_ref().map_or(0, |t| t.rows.len());
        fit::fit_json(MAX_PAYLOAD_BYTES, body, rows, self.locale, |text, rows| {
            self.payload(title, text, rows)
        })
    }

    /// The whole JSON body with `body` as the text and `rows` table rows.
    fn payload(&self, title: &str, body: &str, rows: usize) -> Value {
        let mut out = Map::new();
        if let Some(secret) = &self.config.secret {
            let timestamp = (self.ctx.now_ms / 1000).to_string();
            out.insert("sign".into(), signature(&timestamp, secret).into());
            out.insert("timestamp".into(), timestamp.into());
        }
        match self.config.msg_type {
            MsgType::Interactive => {
                out.insert("msg_type".into(), "interactive".into());
                out.insert("card".into(), self.card(title, body, rows));
            }
            MsgType::Post => {
                out.insert("msg_type".into(), "post".into());
                out.insert("content".into(), self.post(title, body, rows));
            }
            MsgType::Text => {
                out.insert("msg_type".into(), "text".into());
                out.insert(
                    "content".into(),
                    json!({ "text": self.text(title, body, rows) }),
                );
            }
        }
        Value::Object(out)
    }

    fn card(&self, title: &str, body: &str, rows: usize) -> Value {
        let lark_md = |content: String| json!({ "tag": "div", "text": { "tag": "lark_md", "content": content } });
        let mut elements = Vec::new();
        if !body.trim().is_empty() {
            elements.push(lark_md(body.to_owned()));
        }
        if !self.fields.is_empty() {
            let lines: Vec<String> = self
                .fields
                .iter()
                .map(|(name, value)| {
                    format!(
                        "**{}**: {}",
                        dialect::escape(name, Dialect::LarkMd),
                        dialect::escape(value, Dialect::LarkMd)
                    )
                })
                .collect();
            elements.push(lark_md(lines.join("\n")));
        }
        if let Some(t) = &self.table {
            elements.push(card_table(t, rows));
            let mut notes = Vec::new();
            if rows < t.rows.len() {
                notes.push(self.rows_note(t.rows.len() - rows));
            }
            if self.omitted_columns > 0 {
                notes.push(if locale::is_chinese(self.locale) {
                    format!("… 另有 {} 列未显示", self.omitted_columns)
                } else {
                    format!("… {} more columns not shown", self.omitted_columns)
                });
            }
            if !notes.is_empty() {
                elements.push(lark_md(notes.join("\n")));
            }
        }
        if !self.targets.is_empty() {
            let ats: Vec<String> = self
                .targets
                .iter()
                .map(|t| match t {
                    Target::All => "<at id=all></at>".to_owned(),
                    Target::Id(id) => format!("<at id={id}></at>"),
                })
                .collect();
            elements.push(lark_md(ats.join(" ")));
        }
        if let Some(link) = &self.message.link {
            elements.push(json!({
                "tag": "action",
                "actions": [{
                    "tag": "button",
                    "text": { "tag": "plain_text", "content": locale::link_label(link, self.locale) },
                    "type": "primary",
                    "url": link.url,
                }],
            }));
        }
        json!({
            "header": {
                "title": { "tag": "plain_text", "content": title },
                "template": header_colour(self.message.severity),
            },
            "elements": elements,
        })
    }

    fn post(&self, title: &str, body: &str, rows: usize) -> Value {
        let text = |t: String| json!({ "tag": "text", "text": t });
        let mut paragraphs: Vec<Value> = Vec::new();
        if !body.trim().is_empty() {
            paragraphs.extend(body.lines().map(|line| json!([text(line.to_owned())])));
        }
        for line in self.detail_lines(rows) {
            paragraphs.push(json!([text(line)]));
        }
        if let Some(link) = &self.message.link {
            paragraphs.push(json!([{ "tag": "a", "text": locale::link_label(link, self.locale), "href": link.url }]));
        }
        if !self.targets.is_empty() {
            let ats: Vec<Value> = self
                .targets
                .iter()
                .map(|t| match t {
                    Target::All => json!({ "tag": "at", "user_id": "all" }),
                    Target::Id(id) => json!({ "tag": "at", "user_id": id }),
                })
                .collect();
            paragraphs.push(Value::Array(ats));
        }
        let language = if locale::is_chinese(self.locale) {
            "zh_cn"
        } else {
            "en_us"
        };
        json!({ "post": { language: {
            "title": title,
            "content": paragraphs,
        } } })
    }

    fn text(&self, title: &str, body: &str, rows: usize) -> String {
        let mut lines = vec![defuse_at(title)];
        if !body.trim().is_empty() {
            lines.push(body.to_owned());
        }
        lines.extend(self.detail_lines(rows).into_iter().map(|l| defuse_at(&l)));
        if let Some(link) = &self.message.link {
            lines.push(format!(
                "{}: {}",
                defuse_at(&locale::link_label(link, self.locale)),
                link.url
            ));
        }
        if !self.targets.is_empty() {
            let ats: Vec<String> = self
                .targets
                .iter()
                .map(|t| match t {
                    Target::All => r#"<at user_id="all"></at>"#.to_owned(),
                    Target::Id(id) => format!(r#"<at user_id="{id}"></at>"#),
                })
                .collect();
            lines.push(ats.join(" "));
        }
        lines.join("\n")
    }

    /// Fields and the table as plain lines, for posts and text.
    fn detail_lines(&self, rows: usize) -> Vec<String> {
        let mut lines: Vec<String> = self
            .fields
            .iter()
            .map(|(name, value)| format!("{name}: {value}"))
            .collect();
        if let Some(t) = &self.table {
            lines.push(
                t.columns
                    .iter()
                    .map(|c| c.title.as_str())
                    .collect::<Vec<_>>()
                    .join(" | "),
            );
            for row in t.rows.iter().take(rows) {
                lines.push(table::row_line(t, row, " | ", |_, shown, tone| {
                    format!("{shown}{}", table::mark(tone))
                }));
            }
            if rows < t.rows.len() {
                lines.push(self.rows_note(t.rows.len() - rows));
            }
        }
        lines
    }

    fn rows_note(&self, omitted: usize) -> String {
        table::more_rows_line(omitted, self.locale)
    }
}

/// The card table component (docs/vendors/lark.md#tables): conditional columns are `options`
/// columns whose cells are tags coloured green (good), red (bad) or neutral.
fn card_table(t: &Table, rows: usize) -> Value {
    let columns: Vec<Value> = t
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            json!({
                "name": format!("c{i}"),
                "display_name": c.title,
                "data_type": if c.condition.is_some() { "options" } else { "text" },
            })
        })
        .collect();
    let body: Vec<Value> = t
        .rows
        .iter()
        .take(rows)
        .map(|row| {
            let mut cells = Map::new();
            for (i, column) in t.columns.iter().enumerate() {
                let value = row.get(i).map_or("", String::as_str);
                let shown = table::display(column, value);
                let cell = if column.condition.is_some() {
                    let color = match table::tone(column, value) {
                        Tone::Good => "green",
                        Tone::Bad => "red",
                        Tone::Neutral => "neutral",
                    };
                    json!([{ "text": shown, "color": color }])
                } else {
                    Value::String(shown)
                };
                cells.insert(format!("c{i}"), cell);
            }
            Value::Object(cells)
        })
        .collect();
    json!({
        "tag": "table",
        "page_size": rows.clamp(1, MAX_PAGE_SIZE),
        "columns": columns,
        "rows": body,
    })
}

fn first_columns(t: &Table, count: usize) -> Table {
    Table {
        columns: t.columns.iter().take(count).cloned().collect(),
        rows: t
            .rows
            .iter()
            .map(|r| r.iter().take(count).cloned().collect())
            .collect(),
    }
}

/// The card header template for a severity.
fn header_colour(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "blue",
        Severity::Success => "green",
        Severity::Warning => "orange",
        Severity::Error => "red",
        Severity::Critical => "carmine",
    }
}

/// The mentions of the config and the message that a Lark custom bot can
/// make, in order and without duplicates: open_ids and everyone
/// (docs/vendors/lark.md#mentions). Other user ids, emails and phone
/// numbers would notify nobody; they are left out and said in `notes`.
fn targets(config: &LarkConfig, message: &Message, notes: &mut Notes) -> Vec<Target> {
    let mut out = Vec::new();
    let mut add = |target: Target| {
        if !out.contains(&target) {
            out.push(target);
        }
    };
    for id in &config.mentions {
        if id == "all" {
            add(Target::All);
        } else if is_open_id(id) {
            add(Target::Id(id.clone()));
        }
    }
    let (mut ids, mut emails, mut mobiles) = (0, 0, 0);
    for mention in &message.mentions {
        match mention {
            Mention::All => add(Target::All),
            Mention::UserId(id) if id == "all" => add(Target::All),
            Mention::UserId(id) if is_open_id(id) => add(Target::Id(id.clone())),
            Mention::UserId(_) => ids += 1,
            Mention::Email(_) => emails += 1,
            Mention::Mobile(_) => mobiles += 1,
        }
    }
    for (count, what) in [
        (ids, "user id that is not an open_id"),
        (emails, "email address"),
        (mobiles, "phone number"),
    ] {
        if count > 0 {
            notes.push(format!(
                "not mentioned: {count} by {what} (a Lark custom bot mentions by open_id only)"
            ));
        }
    }
    out
}

/// An open_id (`ou_` then letters, digits, `_` and `-`, at most 128), the
/// only id a custom bot's mention notifies, and safe inside `<at id=…>`.
pub fn is_open_id(id: &str) -> bool {
    id.starts_with("ou_")
        && id.len() > 3
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The text a reader sees (what the keyword check scans): every string in
/// the payload except URLs, ids and structural values.
pub fn visible_text(value: &Value) -> String {
    fn walk(value: &Value, out: &mut String) {
        match value {
            Value::String(s) => {
                out.push_str(s);
                out.push('\n');
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            Value::Object(map) => {
                for (key, v) in map {
                    if !NON_TEXT_KEYS.contains(&key.as_str()) {
                        walk(v, out);
                    }
                }
            }
            _ => {}
        }
    }
    let mut out = String::new();
    walk(value, &mut out);
    out
}
