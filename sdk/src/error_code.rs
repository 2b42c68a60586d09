//! Answers that carry the outcome in the body: chat vendors (DingTalk and
//! WeCom `errcode`, Lark `code`) answer HTTP 200 with an error code, so a
//! plugin reads the code ([`BodyCode::read`]) and looks it up in its table
//! of [`Rule`]s ([`lookup`]). A vendor's table lists what its documentation
//! says about each code; codes it does not list are the plugin's fallback
//! (usually rejected, quoting the vendor).

use crate::{Context, DeliverError, HttpResponse, Receipt, classify};

/// The code and message a vendor put in a JSON answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyCode {
    /// The numeric code; 0 means success for every vendor so far.
    pub code: i64,
    /// The vendor's message, empty when absent.
    pub message: String,
}

impl BodyCode {
    /// Reads the first of `code_keys` holding an integer and the first of
    /// `message_keys` holding a string. `None` when the body is not JSON or
    /// has no code.
    pub fn read(
        response: &HttpResponse,
        code_keys: &[&str],
        message_keys: &[&str],
    ) -> Option<BodyCode> {
        let body = response.body_json()?;
        let code = code_keys.iter().find_map(|key| body.get(*key)?.as_i64())?;
        let message = message_keys
            .iter()
            .find_map(|key| body.get(*key)?.as_str())
            .unwrap_or("")
            .to_owned();
        Some(BodyCode { code, message })
    }
}

/// What a vendor's code means for the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Throttled: wait this many milliseconds (unless the answer names a
    /// wait, which the plugin passes to [`Rule::error`]).
    RateLimited(u64),
    /// A passing trouble on the vendor's side: try again with backoff.
    Retryable,
    /// The vendor refused this message: retrying cannot help.
    Rejected,
    /// The destination's settings are wrong (e.g. a revoked token).
    InvalidConfig,
}

/// Why a code was given, in words an admin can act on.
#[derive(Debug, Clone, Copy)]
enum Hint {
    Fixed(&'static str),
    /// Read from the vendor's message, for codes that cover several causes.
    FromMessage(fn(&str) -> &'static str),
}

/// One row of a vendor's table: the codes it covers, what they mean and a
/// hint for the admin reading the dead letter.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    codes: &'static [i64],
    verdict: Verdict,
    hint: Hint,
}

impl Rule {
    /// `codes` mean `verdict`, for the reason `hint`.
    pub const fn new(codes: &'static [i64], verdict: Verdict, hint: &'static str) -> Rule {
        Rule {
            codes,
            verdict,
            hint: Hint::Fixed(hint),
        }
    }

    /// `codes` mean `verdict`; `explain` reads the reason from the vendor's
    /// message (e.g. which of several security checks failed).
    pub const fn explained(
        codes: &'static [i64],
        verdict: Verdict,
        explain: fn(&str) -> &'static str,
    ) -> Rule {
        Rule {
            codes,
            verdict,
            hint: Hint::FromMessage(explain),
        }
    }

    /// The delivery error for `answer`: `said` (the vendor's words) with the
    /// hint in parentheses. `wait_ms` overrides a rate limit's wait when the
    /// answer named one.
    pub fn error(&self, answer: &BodyCode, said: &str, wait_ms: Option<u64>) -> DeliverError {
        let hint = match self.hint {
            Hint::Fixed(hint) => hint,
            Hint::FromMessage(explain) => explain(&answer.message),
        };
        let reason = format!("{said} ({hint})");
        match self.verdict {
            Verdict::RateLimited(default) => {
                DeliverError::rate_limited(wait_ms.unwrap_or(default), reason)
            }
            Verdict::Retryable => DeliverError::retryable(reason),
            Verdict::Rejected => DeliverError::rejected(reason),
            Verdict::InvalidConfig => DeliverError::invalid_config(reason),
        }
    }
}

/// The row of `rules` covering `code`.
pub fn lookup(rules: &[Rule], code: i64) -> Option<&Rule> {
    rules.iter().find(|rule| rule.codes.contains(&code))
}

/// The error for a 2xx answer that has no code where the vendor puts one:
/// probably not the vendor (a proxy, a wrong URL), so whether it was
/// delivered is unknown and the delivery is not repeated blindly.
pub fn not_an_answer(response: &HttpResponse, what: &str) -> DeliverError {
    DeliverError::rejected(format!(
        "{} (not {what}; delivery unknown)",
        classify::summary(response)
    ))
}

/// Classifies the answer of a robot that reports `{"errcode", "errmsg"}` in
/// HTTP 200 bodies (DingTalk, WeCom): other statuses by
/// [`classify::by_status`]; errcode 0 delivered; a code in `rules` as its
/// row says; any other code rejected, quoting the vendor. `robot` names the
/// vendor's robot in the error for a body without an errcode.
pub fn by_errcode(
    ctx: &Context,
    response: &HttpResponse,
    robot: &str,
    rules: &[Rule],
) -> Result<Receipt, DeliverError> {
    if !response.is_success() {
        return classify::by_status(ctx, response);
    }
    let Some(answer) = BodyCode::read(response, &["errcode"], &["errmsg"]) else {
        return Err(not_an_answer(
            response,
            &format!("a {robot} answer: no JSON errcode"),
        ));
    };
    let said = format!("errcode {}: {}", answer.code, answer.message);
    match (answer.code, lookup(rules, answer.code)) {
        (0, _) => Ok(classify::delivered(response)),
        (_, Some(rule)) => Err(rule.error(&answer, &said, None)),
        (_, None) => Err(DeliverError::rejected(said)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn which(message: &str) -> &'static str {
        if message.contains("ip") {
            "not allowlisted"
        } else {
            "refused"
        }
    }

    const RULES: &[Rule] = &[
        Rule::new(&[45009], Verdict::RateLimited(60_000), "too many"),
        Rule::new(&[93000, 93001], Verdict::InvalidConfig, "bad key"),
        Rule::explained(&[310000], Verdict::Rejected, which),
    ];

    fn ctx() -> Context {
        Context {
            delivery_id: "d".into(),
            event_id: "e".into(),
            attempt: 1,
            now_ms: 0,
        }
    }

    fn errcode(code: i64, message: &str) -> HttpResponse {
        HttpResponse::json(200, &json!({ "errcode": code, "errmsg": message }))
    }

    #[test]
    fn codes_and_messages_are_read_from_the_first_key_present() {
        let r = HttpResponse::json(200, &json!({ "StatusCode": 7, "msg": "m" }));
        assert_eq!(
            BodyCode::read(&r, &["code", "StatusCode"], &["msg"]),
            Some(BodyCode {
                code: 7,
                message: "m".into()
            })
        );
        let r = HttpResponse::json(200, &json!({ "errcode": 0 }));
        let read = BodyCode::read(&r, &["errcode"], &["errmsg"]);
        assert_eq!(read.map(|c| c.message), Some(String::new()));
        assert_eq!(
            BodyCode::read(&HttpResponse::text(200, "ok"), &["errcode"], &[]),
            None
        );
    }

    #[test]
    fn errcodes_are_classified_by_the_table() {
        let outcome = |r: HttpResponse| by_errcode(&ctx(), &r, "test robot", RULES);
        assert!(outcome(errcode(0, "ok")).is_ok());
        assert!(matches!(
            outcome(errcode(93001, "x")),
            Err(DeliverError::InvalidConfig(r)) if r == "errcode 93001: x (bad key)"
        ));
        assert!(matches!(
            outcome(errcode(45009, "freq")),
            Err(DeliverError::RateLimited(l)) if l.after_ms == 60_000
        ));
        assert!(matches!(
            outcome(errcode(310000, "ip not in whitelist")),
            Err(DeliverError::Rejected(r)) if r.ends_with("(not allowlisted)")
        ));
        assert!(matches!(
            outcome(errcode(7, "odd")),
            Err(DeliverError::Rejected(r)) if r == "errcode 7: odd"
        ));
        assert!(matches!(
            outcome(HttpResponse::text(200, "hi")),
            Err(DeliverError::Rejected(r)) if r == "200 hi (not a test robot answer: no JSON errcode; delivery unknown)"
        ));
        assert!(matches!(
            outcome(HttpResponse::text(503, "")),
            Err(DeliverError::Retryable(_))
        ));
        assert!(lookup(RULES, 1).is_none());
        let answer = BodyCode {
            code: 45009,
            message: String::new(),
        };
        assert!(matches!(
            lookup(RULES, 45009).unwrap().error(&answer, "s", Some(5)),
            DeliverError::RateLimited(l) if l.after_ms == 5
        ));
    }
}
