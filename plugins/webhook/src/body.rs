//! The request body: Carillon's default JSON, or a configured template.

use carillon_sdk::{Context, DeliverError, Mention, Message, table};
use minijinja::{Environment, UndefinedBehavior};
use serde_json::{Value, json};

/// The default body: every part of the message as JSON, plus the ids.
pub fn default_json(ctx: &Context, message: &Message) -> Vec<u8> {
    message_json(ctx, message).to_string().into_bytes()
}

/// The message as the JSON value both the default body and templates see.
pub fn message_json(ctx: &Context, message: &Message) -> Value {
    let mentions: Vec<Value> = message
        .mentions
        .iter()
        .map(|m| match m {
            Mention::All => json!({ "kind": "all" }),
            Mention::UserId(id) => json!({ "kind": "user_id", "value": id }),
            Mention::Email(email) => json!({ "kind": "email", "value": email }),
            Mention::Mobile(mobile) => json!({ "kind": "mobile", "value": mobile }),
        })
        .collect();
    let table = message.table.as_ref().map(|t| {
        let columns: Vec<Value> = t
            .columns
            .iter()
            .map(|c| {
                json!({
                    "key": c.key,
                    "title": c.title,
                    "prefix": c.prefix,
                    "suffix": c.suffix,
                    "condition": c.condition.as_ref().map(table::describe),
                })
            })
            .collect();
        json!({ "columns": columns, "rows": t.rows })
    });
    json!({
        "event_id": ctx.event_id,
        "delivery_id": ctx.delivery_id,
        "title": message.title,
        "markdown": message.markdown,
        "text": message.text,
        "severity": message.severity.as_str(),
        "locale": message.locale,
        "link": message.link.as_ref().map(|l| json!({ "url": l.url, "label": l.label })),
        "mentions": mentions,
        "fields": message.fields.iter().map(|f| json!({ "name": f.name, "value": f.value })).collect::<Vec<_>>(),
        "table": table,
    })
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
