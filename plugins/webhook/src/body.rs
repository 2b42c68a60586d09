//! The request body: Carillon's default JSON, or a configured template.

use carillon_sdk::{Context, DeliverError, Mention, Message, table};
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;
use serde_json::{Value, json};

/// The default body: every part of the message as JSON, plus the ids.
pub fn default_json(ctx: &Context, message: &Message) -> Vec<u8> {
    // Serializing borrowed structs directly is several times cheaper than
    // building a `serde_json::Value` first, and this runs on every delivery.
    serde_json::to_vec(&Body::new(ctx, message)).unwrap_or_default()
}

/// The message as the JSON value templates see (the default body's shape).
pub fn message_json(ctx: &Context, message: &Message) -> Value {
    serde_json::to_value(Body::new(ctx, message)).unwrap_or(Value::Null)
}

// Field order is alphabetical: the documented body has always listed its
// keys sorted, and receivers may compare bytes.

#[derive(Serialize)]
struct Body<'a> {
    delivery_id: &'a str,
    event_id: &'a str,
    fields: Vec<FieldBody<'a>>,
    link: Option<LinkBody<'a>>,
    locale: &'a str,
    markdown: &'a str,
    mentions: Vec<MentionBody<'a>>,
    severity: &'a str,
    table: Option<TableBody<'a>>,
    text: &'a str,
    title: &'a str,
}

#[derive(Serialize)]
struct FieldBody<'a> {
    name: &'a str,
    value: &'a str,
}

#[derive(Serialize)]
struct LinkBody<'a> {
    label: Option<&'a str>,
    url: &'a str,
}

#[derive(Serialize)]
struct MentionBody<'a> {
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a str>,
}

#[derive(Serialize)]
struct TableBody<'a> {
    columns: Vec<ColumnBody<'a>>,
    rows: &'a [Vec<String>],
}

#[derive(Serialize)]
struct ColumnBody<'a> {
    condition: Option<String>,
    key: &'a str,
    prefix: &'a str,
    suffix: &'a str,
    title: &'a str,
}

impl<'a> Body<'a> {
    fn new(ctx: &'a Context, message: &'a Message) -> Self {
        Body {
            delivery_id: &ctx.delivery_id,
            event_id: &ctx.event_id,
            fields: message
                .fields
                .iter()
                .map(|f| FieldBody {
                    name: &f.name,
                    value: &f.value,
                })
                .collect(),
            link: message.link.as_ref().map(|l| LinkBody {
                label: l.label.as_deref(),
                url: &l.url,
            }),
            locale: &message.locale,
            markdown: &message.markdown,
            mentions: message
                .mentions
                .iter()
                .map(|m| match m {
                    Mention::All => MentionBody {
                        kind: "all",
                        value: None,
                    },
                    Mention::UserId(id) => MentionBody {
                        kind: "user_id",
                        value: Some(id),
                    },
                    Mention::Email(email) => MentionBody {
                        kind: "email",
                        value: Some(email),
                    },
                    Mention::Mobile(mobile) => MentionBody {
                        kind: "mobile",
                        value: Some(mobile),
                    },
                })
                .collect(),
            severity: message.severity.as_str(),
            table: message.table.as_ref().map(|t| TableBody {
                columns: t
                    .columns
                    .iter()
                    .map(|c| ColumnBody {
                        condition: c.condition.as_ref().map(table::describe),
                        key: &c.key,
                        prefix: &c.prefix,
                        suffix: &c.suffix,
                        title: &c.title,
                    })
                    .collect(),
                rows: &t.rows,
            }),
            text: &message.text,
            title: &message.title,
        }
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env
}

/// Checks that a template compiles.
pub fn compile_check(template: &str) -> Result<(), String> {
    environment()
        .template_from_str(template)
        .map(|_| ())
        .map_err(|e| format!("the template does not compile: {e}"))
}

/// Renders the configured template.
pub fn from_template(
    template: &str,
    ctx: &Context,
    message: &Message,
) -> Result<Vec<u8>, DeliverError> {
    let env = environment();
    let compiled = env
        .template_from_str(template)
        .map_err(|e| DeliverError::invalid_config(format!("body_template: {e}")))?;
    let data = minijinja::Value::from(minijinja::value::Serde(json!({
        "message": message_json(ctx, message),
        "event_id": ctx.event_id,
        "delivery_id": ctx.delivery_id,
    })));
    compiled
        .render(data)
        .map(String::into_bytes)
        .map_err(|e| DeliverError::rejected(format!("body_template failed to render: {e}")))
}
