//! A `[[routes]]` entry as the file writes it: serde types with
//! `deny_unknown_fields`, checked into a [`Route`](super::Route) by
//! [`validate`](super::validate).

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::message::Severity;

/// One value or a list of them (`x = "a"` or `x = ["a", "b"]`).
#[derive(Debug, Clone, PartialEq)]
pub struct OneOrMany<T>(pub Vec<T>);

impl<T> Default for OneOrMany<T> {
    fn default() -> Self {
        OneOrMany(Vec::new())
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: DeserializeOwned> Visitor<'de> for V<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value or a list of values")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Vec::<T>::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(OneOrMany)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|t| OneOrMany(vec![t]))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                T::deserialize(de::value::StrDeserializer::<E>::new(v)).map(|t| OneOrMany(vec![t]))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                T::deserialize(de::value::BoolDeserializer::<E>::new(v)).map(|t| OneOrMany(vec![t]))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                T::deserialize(de::value::I64Deserializer::<E>::new(v)).map(|t| OneOrMany(vec![t]))
            }
        }
        deserializer.deserialize_any(V(PhantomData))
    }
}

/// `[[routes]]`: which events go where.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// A name for logs and the admin API.
    pub name: String,
    /// `[routes.match]`: all given criteria must hold; none given matches all.
    #[serde(rename = "match", default)]
    pub matcher: RawMatch,
    /// Where matching events go.
    #[serde(default)]
    pub destinations: Vec<String>,
    /// Contacts matching events go to (each method that delivers).
    #[serde(default)]
    pub contacts: Vec<String>,
    /// Groups of contacts matching events go to.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Contacts to @mention in the messages to this route's destinations
    /// (group robots), by their mobile numbers and user ids.
    #[serde(default)]
    pub mention: Vec<String>,
    /// The template to render with; absent: the event's own title and body.
    pub template: Option<String>,
    /// Keep evaluating later routes after this one matched.
    #[serde(rename = "continue", default)]
    pub continue_: bool,
    /// The workspace whose events it routes; absent: `default`.
    pub workspace: Option<String>,
    /// Where it is evaluated: routes go by `order` (lower first), ties in
    /// file order, then the API's routes in creation order. Absent: 0.
    pub order: Option<i64>,
    /// At most this many matched events per window reach its targets
    /// (`{ max = 20, per = "1h" }`; checked by `config`).
    pub quota: Option<crate::quota::RawQuota>,
}

/// The criteria of a route.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawMatch {
    /// Event-type globs (`task.*`); any one may match.
    pub event: OneOrMany<String>,
    /// Source globs; any one may match.
    pub source: OneOrMany<String>,
    /// Exactly these severities.
    pub severity: OneOrMany<Severity>,
    /// This severity or a more urgent one.
    pub min_severity: Option<Severity>,
    /// Conditions on labels and data fields; all must hold.
    pub conditions: Vec<RawCondition>,
}

/// `{ field = "labels.team", equals = "data" }`, `regex = "…"` or
/// `exists = true`: exactly one test per condition.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCondition {
    /// `labels.NAME` or `data.PATH` (dots separate nested fields).
    pub field: String,
    /// The field equals this value.
    pub equals: Option<serde_json::Value>,
    /// The field is a string matching this regex.
    pub regex: Option<String>,
    /// The field is present (`true`) or absent (`false`).
    pub exists: Option<bool>,
}
