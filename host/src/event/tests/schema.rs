//! The published event schema (`event.schema.json`) against the parser.

use super::*;

#[test]
fn schema_is_valid_draft_2020_12_and_compiles() {
    let schema = schema();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    jsonschema::meta::validate(schema).unwrap();
    jsonschema::meta::validate(crate::event::alertmanager::schema()).unwrap();
    assert!(envelope_validator().is_ok());
}

pub(super) fn envelope_validator() -> Result<jsonschema::Validator, String> {
    jsonschema::draft202012::new(schema()).map_err(|error| error.to_string())
}

/// Every property of the published schema has a title or a `$ref` to a
/// definition with one, and a description, so app developers can read it.
#[test]
fn schema_documents_every_property() {
    fn walk(node: &Value, path: &str, root: &Value, missing: &mut Vec<String>) {
        let Some(object) = node.as_object() else {
            return;
        };
        if let Some(Value::Object(properties)) = object.get("properties") {
            for (name, property) in properties {
                let resolved = match property.get("$ref").and_then(Value::as_str) {
                    Some(reference) => root
                        .pointer(reference.trim_start_matches('#'))
                        .unwrap_or(property),
                    None => property,
                };
                for keyword in ["title", "description"] {
                    if resolved.get(keyword).is_none() && property.get(keyword).is_none() {
                        missing.push(format!("{path}/properties/{name}: {keyword}"));
                    }
                }
            }
        }
        for (key, child) in object {
            match child {
                Value::Object(_) => walk(child, &format!("{path}/{key}"), root, missing),
                Value::Array(items) => {
                    for (index, item) in items.iter().enumerate() {
                        walk(item, &format!("{path}/{key}/{index}"), root, missing);
                    }
                }
                _ => {}
            }
        }
    }
    let mut missing = Vec::new();
    walk(schema(), "", schema(), &mut missing);
    assert!(missing.is_empty(), "undocumented: {missing:#?}");
    assert!(schema()["title"].is_string() && schema()["description"].is_string());
}

/// Every `pattern` has a readable message instead of the regex.
#[test]
fn schema_patterns_have_messages() {
    fn patterns(node: &Value, out: &mut Vec<String>) {
        match node {
            Value::Object(object) => {
                if let Some(Value::String(pattern)) = object.get("pattern") {
                    out.push(pattern.clone());
                }
                object.values().for_each(|child| patterns(child, out));
            }
            Value::Array(items) => items.iter().for_each(|child| patterns(child, out)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    patterns(schema(), &mut found);
    patterns(crate::event::alertmanager::schema(), &mut found);
    assert!(found.len() >= 5);
    for pattern in found {
        assert!(errors::has_pattern_message(&pattern), "{pattern}");
    }
}

/// The fixture is what the schema describes, and what the parser reads.
#[test]
fn schema_accepts_the_full_fixture() {
    let validator = envelope_validator().unwrap();
    assert!(validator.is_valid(&fixture_json("native-full.json")));
    assert!(!validator.is_valid(&json!({"type": "t"})));
}

#[test]
fn schema_and_parser_agree_on_patterns() {
    let validator = envelope_validator().unwrap();
    for condition in [
        ">= 60", "<1", " != ok ", "==x y", "<=  -3.5", ">", "=> 1", "= 1", "60", "", ">=   ",
        "<>5", "<==5", "!==5", "!= !x", ">= 6\n0", "> =", "\t<\t7\t",
    ] {
        let event = json!({"type": "t", "source": "s", "table": {
            "columns": [{"key": "k", "title": "K", "condition": condition}]
        }});
        assert_eq!(
            validator.is_valid(&event),
            checks::condition(condition).is_ok(),
            "{condition:?}"
        );
    }
    for locale in [
        "en",
        "zh-CN",
        "zh_CN",
        "pt-BR",
        "de-CH-1996",
        "e",
        "en-",
        "1en",
        "en US",
        "x-private",
    ] {
        let event = json!({"type": "t", "source": "s", "locale": locale});
        assert_eq!(
            validator.is_valid(&event),
            checks::locale(locale).is_ok(),
            "{locale:?}"
        );
    }
    for event_type in [
        "a.b",
        "a b",
        "a\tb",
        "a\u{85}b",
        "a\u{a0}b",
        "a\u{2028}b",
        "ü.ö",
        "a\u{7f}",
    ] {
        let event = json!({"type": event_type, "source": "s"});
        assert_eq!(
            validator.is_valid(&event),
            checks::event_type(event_type).is_ok(),
            "{event_type:?}"
        );
    }
}
