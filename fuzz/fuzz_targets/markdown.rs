//! The host's Markdown → text (`render/text.rs`), reached as the gateway
//! reaches it: an event's message rendered by a `${message}` body template.
//! Invariants: rendering succeeds; the Markdown and the text derived from
//! it stay within the size bound of the message (issue 28 item 1: nesting
//! and repeated references must not multiply the input).
#![no_main]

use std::collections::BTreeMap;
use std::sync::LazyLock;

use carillon::event::Event;
use carillon::render::{Renderer, Template, TemplateText};
use carillon_fuzz::{assert_bounded, now};
use libfuzzer_sys::fuzz_target;

static RENDERER: LazyLock<Renderer> = LazyLock::new(|| {
    let mut locales = BTreeMap::new();
    locales.insert(
        "en".to_owned(),
        TemplateText {
            title: "${title}".to_owned(),
            body: "${message}".to_owned(),
        },
    );
    let mut templates = BTreeMap::new();
    templates.insert("md".to_owned(), Template { workspace: "default".to_owned(), locales });
    Renderer::new(&templates, Default::default()).expect("the template compiles")
});

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let mut event = Event::new("fuzz.markdown", "fuzz", now());
    event.title = Some(text.to_owned());
    event.message = Some(text.to_owned());
    let message = RENDERER
        .render(&event, Some("md"), None)
        .unwrap_or_else(|e| panic!("a message fails a `${{message}}` template: {e}"));
    assert!(!message.title.contains('\n'), "a title with a line break");
    assert_bounded("markdown", message.markdown.len(), text.len());
    assert_bounded("text", message.text.len(), text.len());
});
