//! Mentions: gathering who a message mentions, checking the identifiers
//! vendors accept, and keeping message text from mentioning anyone by itself.

use crate::Mention;

/// Everyone a message mentions: a destination's standing mentions first,
/// then the message's, in order and without duplicates. Each plugin keeps
/// what its channel can express and warns about the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audience {
    /// Mention everyone.
    pub all: bool,
    /// Vendor user ids.
    pub user_ids: Vec<String>,
    /// Mobile numbers.
    pub mobiles: Vec<String>,
    /// Email addresses.
    pub emails: Vec<String>,
}

impl Audience {
    /// A destination's standing mentions.
    pub fn standing(all: bool, user_ids: &[String], mobiles: &[String]) -> Self {
        let mut audience = Audience {
            all,
            ..Audience::default()
        };
        for id in user_ids {
            push_unique(&mut audience.user_ids, id);
        }
        for mobile in mobiles {
            push_unique(&mut audience.mobiles, mobile);
        }
        audience
    }

    /// Adds a message's mentions.
    pub fn with(mut self, mentions: &[Mention]) -> Self {
        for mention in mentions {
            match mention {
                Mention::All => self.all = true,
                Mention::UserId(id) => push_unique(&mut self.user_ids, id),
                Mention::Mobile(mobile) => push_unique(&mut self.mobiles, mobile),
                Mention::Email(email) => push_unique(&mut self.emails, email),
            }
        }
        self
    }

    /// Whether nobody is mentioned.
    pub fn is_empty(&self) -> bool {
        !self.all && self.user_ids.is_empty() && self.mobiles.is_empty() && self.emails.is_empty()
    }
}

fn push_unique(list: &mut Vec<String>, value: &str) {
    if !list.iter().any(|v| v == value) {
        list.push(value.to_owned());
    }
}

/// What a channel could not do with a message's mentions as asked (a
/// mention it dropped, a format it switched to): each note is logged and,
/// through [`Notes::apply`], said in the delivery's receipt, so a lost
/// mention is visible in the API and not only in a log line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Notes(Vec<String>);

impl Notes {
    /// Records (and logs as a warning) one note.
    pub fn push(&mut self, note: impl Into<String>) {
        let note = note.into();
        crate::log::warn(&note);
        if !self.0.contains(&note) {
            self.0.push(note);
        }
    }

    /// Whether nothing was noted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The notes, in order.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// The receipt with the notes appended to its detail.
    pub fn apply(&self, mut receipt: crate::Receipt) -> crate::Receipt {
        if !self.0.is_empty() {
            receipt.detail = format!("{}; {}", receipt.detail, self.0.join("; "));
        }
        receipt
    }

    /// Sends `request` and classifies the answer with `classify`; a
    /// delivered message's receipt carries the notes.
    pub fn send(
        &self,
        request: &crate::HttpRequest,
        classify: impl FnOnce(&crate::HttpResponse) -> Result<crate::Receipt, crate::DeliverError>,
    ) -> Result<crate::Receipt, crate::DeliverError> {
        let response = crate::http::send(request).map_err(crate::classify::transport_error)?;
        classify(&response).map(|receipt| self.apply(receipt))
    }
}

/// A mobile number as Chinese chat vendors take it: digits, or
/// `+<country code>-<number>` for international numbers.
pub fn is_mobile(mobile: &str) -> bool {
    let digits = mobile.strip_prefix('+').unwrap_or(mobile);
    digits.starts_with(|c: char| c.is_ascii_digit())
        && digits.chars().all(|c| c.is_ascii_digit() || c == '-')
}

/// Breaks every `<at` in user text with a zero-width space, so message
/// content cannot mention people by itself (e.g. `<at id=all></at>` in Lark,
/// `<at>name</at>` in Teams); the text still reads the same.
pub fn defuse_at(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        if rest.len() >= 2 && rest.as_bytes()[..2].eq_ignore_ascii_case(b"at") {
            out.push('\u{200B}');
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audiences_keep_order_without_duplicates() {
        let standing = Audience::standing(false, &["u1".into()], &["138".into()]);
        let audience = standing.with(&[
            Mention::UserId("u2".into()),
            Mention::UserId("u1".into()),
            Mention::Mobile("138".into()),
            Mention::Email("a@x".into()),
            Mention::All,
        ]);
        assert!(audience.all);
        assert_eq!(audience.user_ids, ["u1", "u2"]);
        assert_eq!(audience.mobiles, ["138"]);
        assert_eq!(audience.emails, ["a@x"]);
        assert!(Audience::default().is_empty());
    }

    #[test]
    fn mobiles_are_digits_with_an_optional_country_code() {
        for ok in ["13800000000", "+852-12345678", "0"] {
            assert!(is_mobile(ok), "{ok}");
        }
        for bad in ["", "+", "phone", "-1", "+-1", "138 0000"] {
            assert!(!is_mobile(bad), "{bad}");
        }
    }

    #[test]
    fn at_tags_are_broken_in_any_case() {
        assert_eq!(defuse_at("<at id=all></at>"), "<\u{200B}at id=all></at>");
        assert_eq!(defuse_at("<AT>x"), "<\u{200B}AT>x");
        assert_eq!(defuse_at("a < b <a href> <"), "a < b <a href> <");
        assert_eq!(defuse_at("中<at"), "中<\u{200B}at");
    }
}
