//! `[render]`: how templates see time and language, as the file writes it
//! and validated.

use serde::Deserialize;

use super::valid_locale;
use crate::problem::{Findings, KeyPath};

/// How templates see time and language; from `[render]`.
#[derive(Debug, Clone)]
pub struct RenderSettings {
    /// The zone of `date`, `time`, `timestamp` and the time expressions.
    pub time_zone: jiff::tz::TimeZone,
    /// The locale used when neither the destination nor the event names
    /// one a template has.
    pub default_locale: String,
}

impl Default for RenderSettings {
    fn default() -> Self {
        RenderSettings {
            time_zone: jiff::tz::TimeZone::UTC,
            default_locale: "en".to_owned(),
        }
    }
}

/// `[render]`: how templates see time and language.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRender {
    /// The IANA time zone of `${date}`, `${timestamp}` and the time
    /// expressions (`Asia/Shanghai`, `UTC`).
    pub time_zone: String,
    /// The locale used when neither the destination nor the event names one
    /// the template has.
    pub default_locale: String,
}

impl Default for RawRender {
    fn default() -> Self {
        RawRender {
            time_zone: "UTC".into(),
            default_locale: "en".into(),
        }
    }
}

impl RawRender {
    /// Checks the time zone and the default locale; every problem goes to
    /// `findings` at `render.…` (an unknown zone falls back to UTC there).
    pub fn validate(&self, findings: &mut Findings) -> RenderSettings {
        let p = KeyPath::root().key("render");
        let time_zone = match jiff::tz::TimeZone::get(&self.time_zone) {
            Ok(zone) => zone,
            Err(_) => {
                findings.add(
                    &p.key("time_zone"),
                    format!(
                        "{:?} is not an IANA time zone such as \"UTC\" or \"Asia/Shanghai\"",
                        self.time_zone
                    ),
                );
                jiff::tz::TimeZone::UTC
            }
        };
        if self.default_locale == "default" || !valid_locale(&self.default_locale) {
            findings.add(
                &p.key("default_locale"),
                format!(
                    "{:?} is not a locale such as `en`, `zh` or `zh-CN`",
                    self.default_locale
                ),
            );
        }
        RenderSettings {
            time_zone,
            default_locale: self.default_locale.clone(),
        }
    }
}
