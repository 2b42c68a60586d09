//! Template compilation and rendering. The input is the title template,
//! a NUL, the body template, and optionally a NUL and a native event (JSON)
//! to render; without one (or when it does not parse) a fixed event with
//! data, labels, a table and a message is used.
//!
//! Invariants: `check_syntax` accepts both texts exactly when `Renderer::new`
//! compiles the template; every compile error names the template, locale
//! and part, with a line inside the text; a render error names the
//! template and says why; a rendered title is one trimmed line.
#![no_main]

use std::collections::BTreeMap;

use carillon::event::{Event, parse_native};
use carillon::render::{Part, Renderer, Template, TemplateText, check_syntax};
use carillon_fuzz::now;
use libfuzzer_sys::fuzz_target;

const EVENT: &str = r#"{"type":"task.failed","source":"etl","severity":"error",
 "title":"Nightly load failed","message":"**3** rows\n\n- a\n- b",
 "data":{"rows":3,"job":{"name":"load","tags":["x","y"]},"ratio":0.5},
 "labels":{"team":"data"},
 "table":{"columns":[{"key":"k","title":"K"}],"rows":[["1"]]},
 "locale":"zh-CN"}"#;

fn event(json: Option<&[u8]>) -> Event {
    let parsed = |bytes: &[u8]| {
        parse_native(bytes, now())
            .ok()
            .and_then(|p| p.items.into_iter().next())
            .and_then(Result::ok)
    };
    json.and_then(parsed)
        .or_else(|| parsed(EVENT.as_bytes()))
        .expect("the fixed event parses")
}

fn lines(text: &str) -> usize {
    text.split('\n').count()
}

fuzz_target!(|input: &[u8]| {
    let Ok(input) = std::str::from_utf8(input) else {
        return;
    };
    let mut parts = input.splitn(3, '\0');
    let title = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default();
    let event = event(parts.next().map(str::as_bytes));

    let mut locales = BTreeMap::new();
    locales.insert(
        "en".to_owned(),
        TemplateText {
            title: title.to_owned(),
            body: body.to_owned(),
        },
    );
    let mut templates = BTreeMap::new();
    templates.insert("t".to_owned(), Template { workspace: "default".to_owned(), locales });
    let syntax_ok = check_syntax(title).is_ok() && check_syntax(body).is_ok();
    let renderer = match Renderer::new(&templates, Default::default()) {
        Ok(renderer) => renderer,
        Err(errors) => {
            assert!(
                !syntax_ok,
                "check_syntax accepts what Renderer::new refuses: {errors:?}"
            );
            assert!(!errors.is_empty());
            for e in &errors {
                assert_eq!((e.template.as_str(), e.locale.as_str()), ("t", "en"));
                assert!(!e.reason.is_empty());
                let source = match e.part {
                    Part::Title => title,
                    Part::Body => body,
                };
                if let Some(line) = e.line {
                    assert!(
                        (1..=lines(source)).contains(&line),
                        "error line {line} outside the {} text of {} lines",
                        e.part,
                        lines(source)
                    );
                }
            }
            return;
        }
    };
    assert!(
        syntax_ok,
        "Renderer::new compiles what check_syntax refuses"
    );
    for locale in [None, Some("en"), Some("zh")] {
        match renderer.render(&event, Some("t"), locale) {
            Ok(message) => {
                assert!(!message.title.contains('\n'), "a title with a line break");
                assert_eq!(message.title.trim(), message.title, "an untrimmed title");
            }
            Err(e) => {
                assert_eq!(e.template, "t");
                assert!(!e.reason.is_empty());
            }
        }
    }
});
