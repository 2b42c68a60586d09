//! Security keywords: chat robots (DingTalk, Lark) can be set to accept only
//! messages whose visible text contains one of a few words. A notification
//! whose text happens to contain none would be refused, so the plugin makes
//! sure one is shown: when the rendered payload contains none, the first
//! keyword goes visibly in front of the title and the payload is built again.

use crate::ConfigIssue;

/// The issues of a configured keyword list at `pointer`: more than `max`
/// keywords, or a blank one.
pub fn check(pointer: &str, keywords: &[String], max: usize) -> Vec<ConfigIssue> {
    let mut issues = Vec::new();
    if keywords.len() > max {
        issues.push(ConfigIssue::new(
            pointer,
            format!("a robot has at most {max} keywords"),
        ));
    }
    for (i, keyword) in keywords.iter().enumerate() {
        if keyword.trim().is_empty() {
            issues.push(ConfigIssue::new(
                &format!("{pointer}/{i}"),
                "a keyword cannot be empty",
            ));
        }
    }
    issues
}

/// Whether `text` contains any of `keywords`.
pub fn any_in(text: &str, keywords: &[String]) -> bool {
    keywords.iter().any(|k| text.contains(k.as_str()))
}

/// Builds a payload that shows one of `keywords`. `build(None)` is the
/// payload as it would be; `visible(payload)` the text the vendor checks; when
/// that contains no keyword, `build(Some(first))` is returned, whose title
/// should start with `first`. Without keywords, `build(None)` is returned.
pub fn guarantee<T, E>(
    keywords: &[String],
    visible: impl Fn(&T) -> String,
    mut build: impl FnMut(Option<&str>) -> Result<T, E>,
) -> Result<T, E> {
    let plain = build(None)?;
    match keywords.first() {
        Some(first) if !any_in(&visible(&plain), keywords) => build(Some(first)),
        _ => Ok(plain),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|w| (*w).to_owned()).collect()
    }

    fn title(keyword: Option<&str>) -> Result<String, ()> {
        Ok(match keyword {
            Some(k) => format!("{k} Disk full"),
            None => "Disk full".to_owned(),
        })
    }

    #[test]
    fn a_keyword_is_added_only_when_none_shows() {
        let shown = |t: &String| t.clone();
        assert_eq!(guarantee(&[], shown, title), Ok("Disk full".into()));
        assert_eq!(
            guarantee(&words(&["Disk", "告警"]), shown, title),
            Ok("Disk full".into())
        );
        assert_eq!(
            guarantee(&words(&["告警", "alert"]), shown, title),
            Ok("告警 Disk full".into())
        );
    }

    #[test]
    fn keyword_lists_are_checked() {
        let issues = check("/keywords", &words(&["a", " ", "c"]), 2);
        let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(paths, ["/keywords", "/keywords/1"]);
        assert!(check("/keywords", &words(&["a"]), 10).is_empty());
    }
}
