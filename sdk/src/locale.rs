//! The plugin's own words (notes, button labels) follow a locale: the
//! destination's `locale` setting when it has one, else the message's.
//!
//! Plugins speak English and Chinese; any tag starting with `zh` picks
//! Chinese. A configured tag is checked for the shape of a BCP 47 language
//! tag only, so `zh-Hant-TW` and `en` pass while `zh_CN` and `zh CN` are
//! refused before a message is ever sent.

use crate::{ConfigIssue, Link};

/// Whether `tag` has the shape of a BCP 47 language tag: at least two
/// characters, ASCII letters and digits in non-empty subtags joined by `-`.
pub fn is_language_tag(tag: &str) -> bool {
    tag.len() >= 2
        && tag
            .split('-')
            .all(|subtag| !subtag.is_empty() && subtag.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The issue for a configured locale at `pointer` that is not a language tag.
pub fn check(pointer: &str, tag: Option<&str>) -> Option<ConfigIssue> {
    tag.filter(|t| !is_language_tag(t)).map(|_| {
        ConfigIssue::new(
            pointer,
            "expected a BCP 47 language tag such as en or zh-CN",
        )
    })
}

/// The locale for the plugin's own words: the configured one, else the message's.
pub fn effective<'a>(configured: Option<&'a str>, message_locale: &'a str) -> &'a str {
    configured.unwrap_or(message_locale)
}

/// Whether the plugin's own words should be Chinese.
pub fn is_chinese(locale: &str) -> bool {
    locale.starts_with("zh")
}

/// The label of a link button: the link's own label unless it is blank, else
/// "Open" (查看详情 in Chinese).
pub fn link_label(link: &Link, locale: &str) -> String {
    match &link.label {
        Some(label) if !label.trim().is_empty() => label.clone(),
        _ if is_chinese(locale) => "查看详情".to_owned(),
        _ => "Open".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_tags_are_checked_for_shape() {
        for ok in ["en", "zh-CN", "zh-Hant-TW", "es-419", "de-CH-1996"] {
            assert!(is_language_tag(ok), "{ok}");
        }
        for bad in ["", "z", "zh_CN", "zh CN", "zh--CN", "-zh", "zh-", "zh-CN!"] {
            assert!(!is_language_tag(bad), "{bad}");
        }
        assert!(check("/locale", None).is_none());
        assert!(check("/locale", Some("en")).is_none());
        let issue = check("/locale", Some("en_US")).map(|i| i.path);
        assert_eq!(issue.as_deref(), Some("/locale"));
    }

    #[test]
    fn labels_fall_back_per_language() {
        let link = |label: Option<&str>| Link {
            url: "https://x".into(),
            label: label.map(str::to_owned),
        };
        assert_eq!(link_label(&link(Some("Run")), "zh-CN"), "Run");
        assert_eq!(link_label(&link(Some(" ")), "en"), "Open");
        assert_eq!(link_label(&link(None), "zh-TW"), "查看详情");
        assert_eq!(effective(Some("zh"), "en"), "zh");
        assert_eq!(effective(None, "en"), "en");
    }
}
