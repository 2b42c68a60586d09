//! Building the Teams request body: the Workflows envelope with an Adaptive
//! Card 1.4 or a connector MessageCard, within the size budget (vendor
//! facts: docs/vendors/teams.md, "Workflows (Adaptive Card)", "Mentions",
//! "Tables" and "Connector (MessageCard)").

use carillon_sdk::dialect::{self, Dialect};
use carillon_sdk::mention::{Notes, defuse_at};
use carillon_sdk::table::{self, Tone};
use carillon_sdk::{DeliverError, HttpRequest, Mention, Message, Severity, Table, fit, locale};
use serde_json::{Map, Value, json};

use crate::{Format, MAX_PAYLOAD_BYTES, TeamsConfig, format_of};

/// The Adaptive Card version sent: the highest Workflows accepts
/// (docs/vendors/teams.md#workflows-adaptive-card).
pub const CARD_VERSION: &str = "1.4";

/// Someone mentioned in an Adaptive Card.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    id: String,
    name: String,
}

/// Everything the payload needs besides the trimmed body and the row count.
struct Parts<'a> {
    message: &'a Message,
    locale: &'a str,
    format: Format,
    title: String,
    targets: Vec<Target>,
}

/// Builds the request for `message`.
pub fn request(
    config: &TeamsConfig,
    message: &Message,
) -> Result<(HttpRequest, Notes), DeliverError> {
    let format = format_of(config);
    let mut notes = Notes::default();
    let locale = locale::effective(config.locale.as_deref(), &message.locale);
    let parts = Parts {
        message,
        locale,
        format,
        title: defuse_at(&message.title),
        targets: targets(config, message, format, &mut notes),
    };
    // TextBlock Markdown: no headings, code or tables
    // (docs/vendors/teams.md#markdown-dialect).
    let body = defuse_at(&dialect::convert(&message.markdown, Dialect::TeamsText));
    let rows = message.table.as_ref().map_or(0, |t| t.rows.len());
    let bytes = fit::fit_json(MAX_PAYLOAD_BYTES, &body, rows, locale, |text, rows| {
        parts.payload(text, rows)
    })?;
    Ok((HttpRequest::post_json_bytes(&config.webhook, bytes), notes))
}

impl Parts<'_> {
    fn payload(&self, body: &str, rows: usize) -> Value {
        match self.format {
            Format::Workflow => json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": null,
                    "content": self.adaptive_card(body, rows),
                }],
            }),
            Format::Connector => self.message_card(body, rows),
        }
    }

    fn adaptive_card(&self, body: &str, rows: usize) -> Value {
        let mut items = vec![json!({
            "type": "TextBlock",
            "text": self.title,
            "weight": "Bolder",
            "size": "Large",
            "color": text_colour(self.message.severity),
            "wrap": true,
        })];
        if !body.trim().is_empty() {
            items.push(json!({ "type": "TextBlock", "text": body, "wrap": true }));
        }
        if !self.message.fields.is_empty() {
            let facts: Vec<Value> = self
                .message
                .fields
                .iter()
                .map(|f| json!({ "title": defuse_at(&f.name), "value": defuse_at(&f.value) }))
                .collect();
            items.push(json!({ "type": "FactSet", "facts": facts }));
        }
        if let Some(t) = &self.message.table {
            items.extend(column_set_grid(t, rows));
            if rows < t.rows.len() {
                items.push(json!({
                    "type": "TextBlock",
                    "text": self.rows_note(t.rows.len() - rows),
                    "isSubtle": true,
                    "wrap": true,
                }));
            }
        }
        let mut msteams = Map::new();
        msteams.insert("width".into(), "Full".into());
        if !self.targets.is_empty() {
            let ats: Vec<String> = self
                .targets
                .iter()
                .map(|t| format!("<at>{}</at>", t.name))
                .collect();
            items.push(json!({ "type": "TextBlock", "text": ats.join(" "), "wrap": true }));
            let entities: Vec<Value> = self
                .targets
                .iter()
                .map(|t| {
                    json!({
                        "type": "mention",
                        "text": format!("<at>{}</at>", t.name),
                        "mentioned": { "id": t.id, "name": t.name },
                    })
                })
                .collect();
            msteams.insert("entities".into(), Value::Array(entities));
        }
        let mut card = json!({
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": CARD_VERSION,
            "body": items,
            "msteams": msteams,
        });
        if let Some(link) = &self.message.link {
            card["actions"] = json!([{
                "type": "Action.OpenUrl",
                "title": locale::link_label(link, self.locale),
                "url": link.url,
            }]);
        }
        card
    }

    fn message_card(&self, body: &str, rows: usize) -> Value {
        let summary = if self.title.trim().is_empty() {
            "Carillon notification".to_owned()
        } else {
            self.title.clone()
        };
        let mut card = json!({
            "@type": "MessageCard",
            "@context": "http://schema.org/extensions",
            "themeColor": theme_colour(self.message.severity),
            "summary": summary,
            "title": self.title,
        });
        if !body.trim().is_empty() {
            card["text"] = body.into();
        }
        let mut sections = Vec::new();
        if !self.message.fields.is_empty() {
            let facts: Vec<Value> = self
                .message
                .fields
                .iter()
                .map(|f| json!({ "name": f.name, "value": f.value }))
                .collect();
            sections.push(json!({ "facts": facts }));
        }
        if let Some(t) = &self.message.table {
            let mut lines = vec![format!(
                "**{}**",
                t.columns
                    .iter()
                    .map(|c| c.title.as_str())
                    .collect::<Vec<_>>()
                    .join(" · ")
            )];
            lines.extend(t.rows.iter().take(rows).map(|row| {
                table::row_line(t, row, " · ", |_, shown, tone| {
                    format!("{shown}{}", table::mark(tone))
                })
            }));
            if rows < t.rows.len() {
                lines.push(self.rows_note(t.rows.len() - rows));
            }
            sections.push(json!({ "text": lines.join("\n\n") }));
        }
        if !sections.is_empty() {
            card["sections"] = Value::Array(sections);
        }
        if let Some(link) = &self.message.link {
            card["potentialAction"] = json!([{
                "@type": "OpenUri",
                "name": locale::link_label(link, self.locale),
                "targets": [{ "os": "default", "uri": link.url }],
            }]);
        }
        card
    }

    fn rows_note(&self, omitted: usize) -> String {
        table::more_rows_line(omitted, self.locale)
    }
}

/// The table as ColumnSets (renders at card version 1.4, unlike `Table`):
/// a bold header row, then one ColumnSet per row; cells of conditional
/// columns are coloured `good` or `attention`.
fn column_set_grid(t: &Table, rows: usize) -> Vec<Value> {
    let cell = |text: String, weight: Option<&str>, color: Option<&str>| {
        let mut block = json!({ "type": "TextBlock", "text": text, "wrap": true });
        if let Some(w) = weight {
            block["weight"] = w.into();
        }
        if let Some(c) = color {
            block["color"] = c.into();
        }
        json!({ "type": "Column", "width": "stretch", "items": [block] })
    };
    let mut out = vec![json!({
        "type": "ColumnSet",
        "separator": true,
        "columns": t.columns.iter().map(|c| cell(c.title.clone(), Some("Bolder"), None)).collect::<Vec<_>>(),
    })];
    for row in t.rows.iter().take(rows) {
        let columns: Vec<Value> = t
            .columns
            .iter()
            .enumerate()
            .map(|(i, column)| {
                let value = row.get(i).map_or("", String::as_str);
                let color = match table::tone(column, value) {
                    Tone::Good => Some("good"),
                    Tone::Bad => Some("attention"),
                    Tone::Neutral => None,
                };
                cell(table::display(column, value), None, color)
            })
            .collect();
        out.push(json!({ "type": "ColumnSet", "spacing": "Small", "columns": columns }));
    }
    out
}

/// The title TextBlock colour for a severity.
fn text_colour(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "accent",
        Severity::Success => "good",
        Severity::Warning => "warning",
        Severity::Error | Severity::Critical => "attention",
    }
}

/// The MessageCard `themeColor` for a severity.
fn theme_colour(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "0078D7",
        Severity::Success => "2EB886",
        Severity::Warning => "DAA038",
        Severity::Error => "A30200",
        Severity::Critical => "8C1A1A",
    }
}

/// The mentions Teams can express, without duplicates: by UPN or Entra
/// object id, in Workflows cards only (docs/vendors/teams.md#mentions).
/// The others are left out and said in `notes`.
fn targets(
    config: &TeamsConfig,
    message: &Message,
    format: Format,
    notes: &mut Notes,
) -> Vec<Target> {
    let mut out: Vec<Target> = Vec::new();
    if format == Format::Connector {
        let count = config.mentions.len() + message.mentions.len();
        if count > 0 {
            notes.push(format!(
                "not mentioned: {count} (a connector MessageCard cannot mention anyone; use a Workflows URL)"
            ));
        }
        return out;
    }
    let (mut bad_ids, mut all, mut mobiles) = (0, false, 0);
    let mut add = |id: &str, name: Option<&str>| {
        let name = name.unwrap_or(id);
        if !valid_mention_id(id) || name.contains(['<', '>']) {
            bad_ids += 1;
            return;
        }
        if !out.iter().any(|t| t.id == id) {
            out.push(Target {
                id: id.to_owned(),
                name: name.to_owned(),
            });
        }
    };
    for mention in &config.mentions {
        add(&mention.id, mention.name.as_deref());
    }
    for mention in &message.mentions {
        match mention {
            Mention::UserId(id) | Mention::Email(id) => add(id, None),
            Mention::All => all = true,
            Mention::Mobile(_) => mobiles += 1,
        }
    }
    if all {
        notes.push("not mentioned: everyone (Teams webhooks cannot mention all)");
    }
    if mobiles > 0 {
        notes.push(format!(
            "not mentioned: {mobiles} by phone number (Teams mentions need a UPN or Entra object id)"
        ));
    }
    if bad_ids > 0 {
        notes.push(format!(
            "not mentioned: {bad_ids} whose id is not a UPN or Entra object id"
        ));
    }
    out
}

/// An id usable in `msteams.entities`: no whitespace, quotes or angle
/// brackets, at most 256 bytes.
pub fn valid_mention_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 256
        && !id
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '<' | '>' | '"'))
}
