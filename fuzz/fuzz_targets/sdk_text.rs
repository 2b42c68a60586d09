//! The SDK's text helpers, which every channel plugin runs on the message.
//! Input: two bytes of budget, then the text.
//!
//! Invariants: `markdown_to_text` stays within the size bound (issue 28
//! item 1, in the SDK's converter), and so does `dialect::convert` in every
//! vendor dialect; the email plugin's Markdown → HTML stays within its
//! budget (`markdown_budget`: the SDK's, at least the HTML part's size)
//! plus its closing note, and leaves no block element open;
//! `escape_markdown` at most doubles;
//! `fit_bytes` and `fit_lines` return at most the budget, `fit_bytes` a
//! prefix of the text (plus its note) and the count of bytes it cut.
#![no_main]

use carillon_fuzz::assert_bounded;
use carillon_sdk::dialect::{Dialect, convert};
use carillon_sdk::fit::fit_lines;
use carillon_plugin_email::{markdown_budget, markdown_to_html};
use carillon_sdk::text::{TRUNCATED, escape_markdown, fit_bytes, markdown_to_text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((budget, text)) = input.split_first_chunk::<2>() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let budget = usize::from(u16::from_be_bytes(*budget));

    assert_bounded(
        "sdk markdown_to_text",
        markdown_to_text(text).len(),
        text.len(),
    );
    for dialect in [
        Dialect::DingTalk,
        Dialect::LarkMd,
        Dialect::LarkMarkdown,
        Dialect::WeComMarkdown,
        Dialect::WeComMarkdownV2,
        Dialect::TeamsText,
    ] {
        assert_bounded("sdk dialect::convert", convert(text, dialect).len(), text.len());
    }
    assert!(escape_markdown(text).len() <= 2 * text.len());
    let html = markdown_to_html(text);
    assert!(
        html.len() <= markdown_budget(text.len()) + TRUNCATED.len() + 64,
        "email markdown_to_html: {} bytes out of {} bytes in",
        html.len(),
        text.len()
    );
    for tag in ["blockquote", "ul", "ol", "li", "table", "pre"] {
        let opened = html.matches(&format!("<{tag} ")).count() + html.matches(&format!("<{tag}>")).count();
        assert_eq!(opened, html.matches(&format!("</{tag}>")).count(), "<{tag}> left open");
    }

    let fitted = fit_bytes(text, budget);
    assert!(fitted.text.len() <= budget || !fitted.was_cut() && text.len() <= budget);
    if fitted.was_cut() {
        let kept = text.len() - fitted.cut_bytes;
        assert!(
            fitted.text.starts_with(&text[..kept]) || fitted.cut_bytes == text.len(),
            "fit_bytes kept something that is not the text's prefix"
        );
    } else {
        assert_eq!(fitted.text, text);
    }
    for locale in ["en", "zh-CN"] {
        let fitted = fit_lines(text, budget, locale);
        assert!(
            fitted.len() <= budget.max(text.len().min(budget)),
            "fit_lines over budget"
        );
        if text.len() <= budget {
            assert_eq!(fitted, text);
        }
    }
});
