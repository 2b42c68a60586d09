//! Carillon's own envelope (`application/json`): one event object, or an
//! array of them (a batch). The published JSON Schema
//! (`event.schema.json`, served by [`schema`]) checks the shape; the
//! conversion to [`Event`] adds what a schema cannot say (timestamps,
//! URLs, conditions, duplicate column keys).

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::LazyLock;

use jsonschema::Validator;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::errors::{self, FieldError, ParseError};
use super::{Event, Format, MAX_BATCH, Parsed, checks};
use crate::message::{Column, Condition, Field, Link, Mention, Severity, Table};

/// The published schema, parsed once. A broken embedded file (caught by
/// the tests) degrades to the `false` schema, which accepts nothing.
static SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    serde_json::from_str(include_str!("event.schema.json")).unwrap_or(Value::Bool(false))
});

/// The compiled schema, built once on first use.
static VALIDATOR: LazyLock<Result<Validator, String>> =
    LazyLock::new(|| jsonschema::draft202012::new(&SCHEMA).map_err(|error| error.to_string()));

/// The JSON Schema (Draft 2020-12) of one native event, as published for
/// app developers: the API serves it, and the parser validates against it.
pub fn schema() -> &'static Value {
    &SCHEMA
}

/// Parses a native body: one event or a batch.
pub(crate) fn parse(body: &[u8], now: jiff::Timestamp) -> Result<Parsed, ParseError> {
    let value = errors::parse_json(body)?;
    match &value {
        Value::Object(object) => {
            let order = if has_fields_object(object) {
                serde_json::from_slice::<FieldsOrder>(strip_bom(body))
                    .ok()
                    .and_then(|order| order.0)
            } else {
                None
            };
            match event(&value, "", now, order.as_deref()) {
                Ok(event) => Ok(Parsed {
                    format: Format::Native,
                    batch: false,
                    items: vec![Ok(event)],
                }),
                Err(errors) => Err(ParseError::Invalid(errors)),
            }
        }
        Value::Array(items) => {
            if items.len() > MAX_BATCH {
                return Err(ParseError::Invalid(vec![FieldError::new(
                    "",
                    format!(
                        "a batch holds at most {MAX_BATCH} events; this one has {}",
                        items.len()
                    ),
                )]));
            }
            let orders = if items
                .iter()
                .any(|item| item.as_object().is_some_and(has_fields_object))
            {
                serde_json::from_slice::<Vec<FieldsOrder>>(strip_bom(body)).unwrap_or_default()
            } else {
                Vec::new()
            };
            let items = items
                .iter()
                .enumerate()
                .map(|(index, item)| {
                    let order = orders.get(index).and_then(|order| order.0.as_deref());
                    event(item, &format!("/{index}"), now, order)
                })
                .collect();
            Ok(Parsed {
                format: Format::Native,
                batch: true,
                items,
            })
        }
        other => Err(ParseError::Invalid(vec![FieldError::new(
            "",
            format!(
                "expected an event object or an array of events (a batch), got {}",
                errors::value_type(other)
            ),
        )])),
    }
}

fn strip_bom(body: &[u8]) -> &[u8] {
    body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body)
}

fn has_fields_object(object: &Map<String, Value>) -> bool {
    object.get("fields").is_some_and(Value::is_object)
}

/// Validates and converts one event; `prefix` locates it in the body.
fn event(
    value: &Value,
    prefix: &str,
    now: jiff::Timestamp,
    fields_order: Option<&[String]>,
) -> Result<Event, Vec<FieldError>> {
    let Some(object) = value.as_object() else {
        return Err(vec![FieldError::new(
            prefix,
            format!(
                "expected an event object, got {}",
                errors::value_type(value)
            ),
        )]);
    };
    let mut found = match &*VALIDATOR {
        Ok(validator) => errors::validate(validator, &SCHEMA, value, prefix),
        Err(error) => vec![FieldError::new(
            prefix,
            format!("internal error: the event schema does not compile: {error}"),
        )],
    };
    let mut cx = Cx {
        prefix,
        errors: Vec::new(),
    };
    let event = convert(object, now, fields_order, &mut cx);
    // The conversion reads defensively and re-checks a few things the
    // schema also checks; one message per place is enough.
    for error in cx.errors {
        if !found.iter().any(|known| known.path == error.path) {
            found.push(error);
        }
    }
    if found.is_empty() {
        Ok(event)
    } else {
        found.sort_by(|a, b| a.path.cmp(&b.path));
        Err(found)
    }
}

/// Collects the conversion's own errors, located under the item's prefix.
struct Cx<'a> {
    prefix: &'a str,
    errors: Vec<FieldError>,
}

impl Cx<'_> {
    fn error(&mut self, path: &str, message: impl Into<String>) {
        self.errors
            .push(FieldError::new(format!("{}{path}", self.prefix), message));
    }
}

fn text(object: &Map<String, Value>, name: &str) -> Option<String> {
    object.get(name).and_then(Value::as_str).map(str::to_owned)
}

/// Builds the event from a (validated) object. It never trusts the
/// shape: anything of the wrong type is skipped (the schema reported it).
fn convert(
    object: &Map<String, Value>,
    now: jiff::Timestamp,
    fields_order: Option<&[String]>,
    cx: &mut Cx<'_>,
) -> Event {
    let time = match object.get("time").and_then(Value::as_str) {
        Some(value) => checks::timestamp(value).unwrap_or_else(|message| {
            cx.error("/time", message);
            now
        }),
        None => now,
    };
    let locale = text(object, "locale").and_then(|value| {
        checks::locale(&value)
            .map_err(|message| cx.error("/locale", message))
            .ok()
    });
    Event {
        event_type: text(object, "type").unwrap_or_default(),
        source: text(object, "source").unwrap_or_default(),
        id: text(object, "id"),
        subject: text(object, "subject"),
        idempotency_key: text(object, "idempotency_key"),
        time,
        severity: object
            .get("severity")
            .and_then(Value::as_str)
            .and_then(checks::severity)
            .unwrap_or(Severity::Info),
        title: text(object, "title"),
        message: text(object, "message"),
        data: object
            .get("data")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        labels: object
            .get("labels")
            .and_then(Value::as_object)
            .map(string_map)
            .unwrap_or_default(),
        table: object
            .get("table")
            .and_then(|table| convert_table(table, cx)),
        mentions: object
            .get("mentions")
            .and_then(Value::as_array)
            .map(|mentions| {
                mentions
                    .iter()
                    .enumerate()
                    .filter_map(|(i, m)| mention(i, m, cx))
                    .collect()
            })
            .unwrap_or_default(),
        link: object.get("link").and_then(|link| convert_link(link, cx)),
        fields: object
            .get("fields")
            .map(|fields| convert_fields(fields, fields_order))
            .unwrap_or_default(),
        locale,
        destinations: object
            .get("destinations")
            .and_then(Value::as_array)
            .map(|names| {
                names
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            }),
    }
}

/// The string values of an object (others are skipped).
pub(crate) fn string_map(object: &Map<String, Value>) -> BTreeMap<String, String> {
    object
        .iter()
        .filter_map(|(key, value)| value.as_str().map(|text| (key.clone(), text.to_owned())))
        .collect()
}

fn convert_table(value: &Value, cx: &mut Cx<'_>) -> Option<Table> {
    let object = value.as_object()?;
    let raw_columns = object.get("columns").and_then(Value::as_array)?;
    let mut columns = Vec::with_capacity(raw_columns.len());
    let mut keys = HashSet::new();
    for (index, raw) in raw_columns.iter().enumerate() {
        let Some(column) = raw.as_object() else {
            continue;
        };
        let Some(key) = text(column, "key") else {
            continue;
        };
        if !keys.insert(key.clone()) {
            cx.error(
                &format!("/table/columns/{index}/key"),
                format!(
                    "{} is already the key of another column; keys must be unique",
                    errors::quote(&key)
                ),
            );
        }
        let condition = match column.get("condition") {
            Some(Value::String(condition)) => checks::condition(condition)
                .map_err(|message| cx.error(&format!("/table/columns/{index}/condition"), message))
                .ok(),
            Some(Value::Object(condition)) => {
                let op = condition
                    .get("op")
                    .and_then(Value::as_str)
                    .and_then(checks::comparison);
                let operand = condition.get("operand").and_then(|operand| match operand {
                    Value::String(text) => Some(text.clone()),
                    Value::Number(number) => Some(number.to_string()),
                    _ => None,
                });
                op.zip(operand)
                    .map(|(op, operand)| Condition { op, operand })
            }
            _ => None,
        };
        columns.push(Column {
            title: text(column, "title").unwrap_or_default(),
            prefix: text(column, "prefix").unwrap_or_default(),
            suffix: text(column, "suffix").unwrap_or_default(),
            key,
            condition,
        });
    }
    let mut rows = Vec::new();
    let raw_rows = object.get("rows").and_then(Value::as_array);
    for (index, raw) in raw_rows.into_iter().flatten().enumerate() {
        match raw {
            Value::Array(cells) => {
                if cells.len() > columns.len() {
                    cx.error(
                        &format!("/table/rows/{index}"),
                        format!(
                            "has {} cells but the table has {} columns",
                            cells.len(),
                            columns.len()
                        ),
                    );
                    continue;
                }
                let mut row: Vec<String> = cells
                    .iter()
                    .map(|cell| checks::display(cell).unwrap_or_default())
                    .collect();
                row.resize(columns.len(), String::new());
                rows.push(row);
            }
            Value::Object(cells) => rows.push(
                columns
                    .iter()
                    .map(|column| {
                        cells
                            .get(&column.key)
                            .and_then(checks::display)
                            .unwrap_or_default()
                    })
                    .collect(),
            ),
            _ => {}
        }
    }
    Some(Table { columns, rows })
}

/// One mention; a mobile number is written as the vendors match it
/// (`mobile::normalize`) or refused at `/mentions/<i>/mobile`.
fn mention(index: usize, value: &Value, cx: &mut Cx<'_>) -> Option<Mention> {
    match value {
        Value::String(text) if text == "all" => Some(Mention::All),
        Value::Object(object) if object.len() == 1 => {
            let (kind, value) = object.iter().next()?;
            let value = value.as_str()?.to_owned();
            match kind.as_str() {
                "user_id" => Some(Mention::UserId(value)),
                "email" => Some(Mention::Email(value)),
                "mobile" => match super::mobile::normalize(&value) {
                    Ok(number) => Some(Mention::Mobile(number)),
                    Err(message) => {
                        cx.error(&format!("/mentions/{index}/mobile"), message);
                        None
                    }
                },
                _ => None,
            }
        }
        _ => None,
    }
}

fn convert_link(value: &Value, cx: &mut Cx<'_>) -> Option<Link> {
    let object = value.as_object()?;
    let url = text(object, "url")?;
    if let Err(message) = checks::http_url(&url) {
        cx.error("/link/url", message);
        return None;
    }
    Some(Link {
        url,
        label: text(object, "label"),
    })
}

fn convert_fields(value: &Value, order: Option<&[String]>) -> Vec<Field> {
    match value {
        Value::Array(items) => items
            .iter()
            .filter_map(|item| {
                let item = item.as_object()?;
                Some(Field {
                    name: text(item, "name")?,
                    value: item.get("value").and_then(scalar)?,
                })
            })
            .collect(),
        Value::Object(object) => {
            // The order as written, from the second pass; `Map` sorts.
            let mut names: Vec<&String> = Vec::with_capacity(object.len());
            let mut seen = HashSet::new();
            for name in order.unwrap_or_default() {
                if let Some((key, _)) = object.get_key_value(name)
                    && seen.insert(key)
                {
                    names.push(key);
                }
            }
            names.extend(object.keys().filter(|key| !seen.contains(key)));
            names
                .into_iter()
                .filter_map(|name| {
                    Some(Field {
                        name: name.clone(),
                        value: object.get(name).and_then(scalar)?,
                    })
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

/// A field value as text (no null: a field without a value is pointless).
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        other => checks::display(other),
    }
}

/// The key order of an event's `fields` object, read by a second pass over
/// the body (only when some event has object-form fields) that skips every
/// other value: `serde_json::Map` (without the `preserve_order` feature)
/// sorts keys, and fields are shown in the order the client wrote them.
/// Anything that is not an object has no order.
#[derive(Default)]
struct FieldsOrder(Option<Vec<String>>);

impl<'de> Deserialize<'de> for FieldsOrder {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(EventProbe)
    }
}

/// The keys of an object, in order.
struct KeyOrder(Option<Vec<String>>);

impl<'de> Deserialize<'de> for KeyOrder {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(KeyProbe)
    }
}

/// Visits one event, keeping only the order of `fields`.
struct EventProbe;
/// Visits a `fields` value, keeping only its keys.
struct KeyProbe;

/// Visitor methods for values a probe ignores.
macro_rules! ignore_others {
    ($out:expr) => {
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($out)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($out)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok($out)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($out)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok($out)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok($out)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok($out)
        }
    };
}

impl<'de> Visitor<'de> for EventProbe {
    type Value = FieldsOrder;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FieldsOrder, A::Error> {
        let mut order = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "fields" {
                order = map.next_value::<KeyOrder>()?.0;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(FieldsOrder(order))
    }

    ignore_others!(FieldsOrder(None));
}

impl<'de> Visitor<'de> for KeyProbe {
    type Value = KeyOrder;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyOrder, A::Error> {
        let mut keys = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            map.next_value::<IgnoredAny>()?;
            keys.push(key);
        }
        Ok(KeyOrder(Some(keys)))
    }

    ignore_others!(KeyOrder(None));
}
