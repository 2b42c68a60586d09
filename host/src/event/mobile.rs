//! Mobile numbers in mentions, written once as the vendors that take them
//! match them.
//!
//! DingTalk (`at.atMobiles`) and WeCom (`mentioned_mobile_list`) compare a
//! mentioned number with a member's number digit for digit: `138 0013 8000`
//! or `+86-138-0013-8000` pages nobody. Their members' mainland numbers are
//! the 11 bare digits (`13800138000`, as in both vendors' samples), and
//! DingTalk writes other countries' numbers `+<cc>-<number>` (`+852-12345678`;
//! docs/vendors/dingtalk.md#mentions). So a number is stored as its digits,
//! without the `+86` of a mainland number, and as `+<cc>-<number>` with any
//! other country code. Lark's custom bots and Teams cannot mention by number
//! (their plugins say so); only these two vendors read the form.
//!
//! The country code is split off by the E.164 assignments (ITU-T E.164
//! list of assigned country codes): 1 and 7 are one digit, the two-digit
//! codes are listed below, every other code has three digits.

/// The two-digit country calling codes (every other code is one digit, 1
/// or 7, or three digits).
const TWO_DIGIT_CODES: &[u16] = &[
    20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46, 47, 48, 49, 51, 52, 53, 54, 55, 56,
    57, 58, 60, 61, 62, 63, 64, 65, 66, 81, 82, 84, 86, 90, 91, 92, 93, 94, 95, 98,
];

/// E.164: at most 15 digits, country code included.
const MAX_DIGITS: usize = 15;

/// The fewest digits a subscriber number has (short numbers are not mobiles).
const MIN_NATIONAL_DIGITS: usize = 5;

/// How long a country code at the start of `digits` is.
fn country_code_len(digits: &str) -> usize {
    let first = digits.as_bytes()[0];
    if first == b'1' || first == b'7' {
        return 1;
    }
    let two: u16 = digits[..2].parse().unwrap_or(0);
    if TWO_DIGIT_CODES.contains(&two) { 2 } else { 3 }
}

/// The number as DingTalk and WeCom match it (see the module doc), or why
/// it cannot be a phone number. Spaces, hyphens, dots and parentheses
/// between digits are dropped; a `+` may only lead.
pub(crate) fn normalize(value: &str) -> Result<String, String> {
    let shown = super::errors::quote(value);
    let trimmed = value.trim();
    let (international, rest) = match trimmed.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, trimmed),
    };
    let mut digits = String::with_capacity(rest.len());
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            '+' => return Err(format!("{shown}: a + may only start the number")),
            _ => {
                return Err(format!(
                    "{shown} is not a phone number (digits, with an optional leading +)"
                ));
            }
        }
    }
    if digits.len() > MAX_DIGITS {
        return Err(format!(
            "{shown} has {} digits; a phone number has at most {MAX_DIGITS}",
            digits.len()
        ));
    }
    if !international {
        if digits.len() < MIN_NATIONAL_DIGITS {
            return Err(format!("{shown} is too short for a mobile number"));
        }
        return Ok(digits);
    }
    if digits.starts_with('0') || digits.len() < 2 {
        return Err(format!(
            "{shown}: after + comes a country code (e.g. +86), which never starts with 0"
        ));
    }
    let cc = country_code_len(&digits).min(digits.len());
    let national = &digits[cc..];
    if national.len() < MIN_NATIONAL_DIGITS {
        return Err(format!(
            "{shown} is too short for a mobile number after its country code +{}",
            &digits[..cc]
        ));
    }
    if &digits[..cc] == "86" {
        Ok(national.to_owned())
    } else {
        Ok(format!("+{}-{national}", &digits[..cc]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_as_the_vendors_match_them() {
        for (given, stored) in [
            ("13800138000", "13800138000"),
            ("138 0013 8000", "13800138000"),
            ("138-0013-8000", "13800138000"),
            ("+86 138 0013 8000", "13800138000"),
            ("+86-138-0013-8000", "13800138000"),
            ("+8613800138000", "13800138000"),
            (" +86 (138) 0013.8000 ", "13800138000"),
            ("+852-1234 5678", "+852-12345678"),
            ("+85212345678", "+852-12345678"),
            ("+1 (415) 555-0100", "+1-4155550100"),
            ("+44 7700 900123", "+44-7700900123"),
            ("+886 912 345 678", "+886-912345678"),
        ] {
            assert_eq!(normalize(given).as_deref(), Ok(stored), "{given}");
        }
    }

    #[test]
    fn what_cannot_be_a_number_is_refused_with_the_reason() {
        for (given, reason) in [
            ("call me", "is not a phone number"),
            ("138+0013", "a + may only start"),
            ("1234", "too short"),
            (
                "+86 1234",
                "too short for a mobile number after its country code +86",
            ),
            ("+0086 13800138000", "country code"),
            ("+", "country code"),
            (
                "+85",
                "too short for a mobile number after its country code +85",
            ),
            ("1234567890123456", "at most 15"),
            ("１３８００１３８０００", "is not a phone number"),
        ] {
            let error = normalize(given).expect_err(given);
            assert!(error.contains(reason), "{given}: {error}");
        }
    }
}
