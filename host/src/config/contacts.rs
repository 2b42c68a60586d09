//! `[contacts.NAME]` and `[groups.NAME]`: the people alerts go to, and
//! rosters of them.
//!
//! A contact's methods that can deliver (an email address sent through an
//! email destination of its workspace, or a personal robot: any channel
//! plugin with its own config) become destinations of their own, named
//! `CONTACT@INDEX`, before the destinations are validated: a personal robot
//! is checked like any destination (its secrets resolved, its plugin's
//! schema), and a delivery to a person is a delivery like any other
//! (retries, rate limits, dead letters, receipts). Their problems are
//! reported at the contact's method (`contacts.li-wei.methods[0]…`). A
//! method's destination falls back to the alternate contact's first one, so
//! a permanent failure escalates to the alternate, rendered anew for them.
//! Mobile numbers and user ids are kept for mentions.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::parse::Broken;
use super::raw::{RawConfig, RawDestination};
use crate::access::DEFAULT_WORKSPACE;
use crate::problem::{Findings, KeyPath, NAME_RULE, valid_name};
use crate::render::valid_locale;

/// `[contacts.NAME]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawContact {
    /// The display name (`Li Wei`); absent: the key.
    pub display_name: Option<String>,
    /// The workspace; absent: `default`.
    pub workspace: Option<String>,
    /// `auto` (the default: the event's, else `render.default_locale`) or a
    /// BCP 47 tag (`zh-CN`, `en`).
    pub locale: Option<String>,
    /// The contact an alert goes to when a method fails for good.
    pub alternate: Option<String>,
    /// The id in the company directory (bulk imports match by it).
    pub external_id: Option<String>,
    /// How to reach the contact.
    #[serde(default)]
    pub methods: Vec<RawMethod>,
    /// At most this many alerts per window (`{ max = 20, per = "1h" }`).
    pub quota: Option<crate::quota::RawQuota>,
}

/// One way to reach a contact, as written (`type = "…"`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum RawMethod {
    /// An address, sent through `via`, an email destination of the
    /// workspace (its server and sender; the address replaces its `to`).
    Email {
        /// The mailbox.
        address: String,
        /// The email destination.
        via: String,
    },
    /// A mobile number in E.164 form with its country code (`+86…`): for
    /// mentions in group robots, and SMS or voice channels.
    Mobile {
        /// The number.
        number: String,
    },
    /// The contact's own robot (a personal DingTalk robot, a Lark or WeCom
    /// bot, a Teams webhook): a channel plugin and its destination config.
    Robot {
        /// The plugin (`dingtalk`, `lark`, `wecom`, `teams`, …).
        plugin: String,
        /// Its config, checked against the plugin's schema.
        #[serde(default)]
        config: serde_json::Value,
    },
    /// The contact's user id in a chat (a Lark `open_id`, a WeCom or
    /// DingTalk user id): for mentions.
    UserId {
        /// `lark`, `wecom` or `dingtalk`.
        channel: String,
        /// The id.
        id: String,
    },
}

/// `[groups.NAME]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGroup {
    /// The workspace; absent: `default`.
    pub workspace: Option<String>,
    /// The contacts, in order.
    pub members: Vec<String>,
}

/// A contact, validated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contact {
    /// Its workspace.
    pub workspace: String,
    /// The display name.
    pub display_name: String,
    /// Its locale; `None`: `auto`.
    pub locale: Option<String>,
    /// The alternate contact.
    pub alternate: Option<String>,
    /// The directory id.
    pub external_id: Option<String>,
    /// Its methods, in order.
    pub methods: Vec<Method>,
    /// Its alert quota.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<crate::quota::Quota>,
}

impl Contact {
    /// The destinations of its methods that deliver, in order.
    pub fn destinations(&self) -> impl Iterator<Item = &str> {
        self.methods.iter().filter_map(Method::destination)
    }
}

/// A method, validated.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Method {
    /// An email address.
    Email {
        /// The mailbox.
        address: String,
        /// The email destination it is sent through.
        via: String,
        /// Its own destination.
        destination: String,
    },
    /// A mobile number, normalised to `+<digits>`.
    Mobile {
        /// The number.
        number: String,
    },
    /// A personal robot (its config is the destination's, shown redacted
    /// there).
    Robot {
        /// The plugin.
        plugin: String,
        /// Its own destination.
        destination: String,
    },
    /// A user id in a chat.
    UserId {
        /// The chat.
        channel: String,
        /// The id.
        id: String,
    },
}

impl Method {
    /// The destination that delivers to this method, if it delivers.
    pub fn destination(&self) -> Option<&str> {
        match self {
            Method::Email { destination, .. } | Method::Robot { destination, .. } => {
                Some(destination)
            }
            Method::Mobile { .. } | Method::UserId { .. } => None,
        }
    }
}

/// A group, validated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// Its workspace.
    pub workspace: String,
    /// Its contacts.
    pub members: Vec<String>,
}

/// The name of the destination of method `index` of `contact`. `@` is not
/// allowed in names, so it never clashes with a declared destination.
pub fn method_destination(contact: &str, index: usize) -> String {
    format!("{contact}@{index}")
}

/// Where a method's destination came from, to report its problems at the
/// method.
#[derive(Debug, Clone, Default)]
pub struct Origins(BTreeMap<String, (String, usize, bool)>);

impl Origins {
    /// Is `destination` a contact's method?
    pub fn contains(&self, destination: &str) -> bool {
        self.0.contains_key(destination)
    }

    /// The key path of the method behind `path` (a path under
    /// `destinations."c@i"`), or `None` for a declared destination's;
    /// `Some(None)` when the problem is the email destination's own and
    /// is reported there already.
    pub fn rebase(&self, path: &KeyPath) -> Option<Option<KeyPath>> {
        let root = KeyPath::root().key("destinations");
        self.0.iter().find_map(|(dest, (contact, index, email))| {
            let from = root.key(dest.as_str());
            let rest = path.strip_prefix(&from)?;
            if *email {
                return Some(None);
            }
            let to = KeyPath::root()
                .key("contacts")
                .key(contact.as_str())
                .key("methods")
                .index(*index);
            Some(Some(to.join(&rest)))
        })
    }
}

/// Checks `[contacts]` and `[groups]`, adds the destinations of the
/// methods that deliver to `raw.destinations`, and builds contacts and
/// groups.
pub(super) fn contacts(
    raw: &mut RawConfig,
    broken: &Broken,
    f: &mut Findings,
) -> (BTreeMap<String, Contact>, BTreeMap<String, Group>, Origins) {
    let root = KeyPath::root();
    let ws_of = |w: &Option<String>| w.clone().unwrap_or_else(|| DEFAULT_WORKSPACE.to_owned());
    let mut built = BTreeMap::new();
    let mut origins = Origins::default();
    let mut synthetic = Vec::new();
    for (name, c) in &raw.contacts {
        let cp = root.key("contacts").key(name.as_str());
        if !valid_name(name) {
            f.add(&cp, format!("the contact name {NAME_RULE}"));
        }
        let workspace = ws_of(&c.workspace);
        let locale = match c.locale.as_deref() {
            None | Some("auto") => None,
            Some(l) if valid_locale(l) => Some(l.to_owned()),
            Some(l) => {
                f.add(
                    &cp.key("locale"),
                    format!(
                        "{l:?} is not a locale; use `auto` or a BCP 47 tag such as `zh-CN` or `en`"
                    ),
                );
                None
            }
        };
        if c.alternate.as_deref() == Some(name.as_str()) {
            f.add(
                &cp.key("alternate"),
                "a contact cannot be its own alternate",
            );
        } else if let Some(alt) = &c.alternate {
            match raw.contacts.get(alt) {
                None if !broken.contacts.contains(alt) => {
                    f.add(&cp.key("alternate"), format!("no contact is named {alt:?}"));
                }
                Some(other) if ws_of(&other.workspace) != workspace => f.add(
                    &cp.key("alternate"),
                    format!("{alt:?} belongs to another workspace"),
                ),
                _ => {}
            }
        }
        let mut methods = Vec::new();
        let mut seen = Vec::new();
        for (i, m) in c.methods.iter().enumerate() {
            let mp = cp.key("methods").index(i);
            let destination = method_destination(name, i);
            let method = match m {
                RawMethod::Email { address, via } => {
                    if address.parse::<lettre::Address>().is_err() {
                        f.add(
                            &mp.key("address"),
                            format!("{address:?} is not an email address"),
                        );
                    }
                    match raw.destinations.get(via) {
                        Some(d) if d.plugin == "email" && ws_of(&d.workspace) == workspace => {
                            let mut d = d.clone();
                            d.config["to"] = serde_json::json!([address]);
                            synthetic.push((destination.clone(), name.clone(), i, true, d));
                        }
                        Some(d) if d.plugin != "email" => f.add(
                            &mp.key("via"),
                            format!("{via:?} is a {} destination, not an email one", d.plugin),
                        ),
                        Some(_) => f.add(
                            &mp.key("via"),
                            format!("{via:?} belongs to another workspace"),
                        ),
                        None => f.add(&mp.key("via"), format!("no destination is named {via:?}")),
                    }
                    Method::Email {
                        address: address.clone(),
                        via: via.clone(),
                        destination,
                    }
                }
                RawMethod::Mobile { number } => Method::Mobile {
                    number: e164(number).unwrap_or_else(|why| {
                        f.add(&mp.key("number"), why);
                        number.clone()
                    }),
                },
                RawMethod::Robot { plugin, config } => {
                    let d = RawDestination {
                        plugin: plugin.clone(),
                        enabled: true,
                        fallback: None,
                        rate_limit: None,
                        concurrency: None,
                        allow_hosts: Vec::new(),
                        config: config.clone(),
                        locale: None,
                        workspace: Some(workspace.clone()),
                        retry: None,
                    };
                    synthetic.push((destination.clone(), name.clone(), i, false, d));
                    Method::Robot {
                        plugin: plugin.clone(),
                        destination,
                    }
                }
                RawMethod::UserId { channel, id } => {
                    if !matches!(channel.as_str(), "lark" | "wecom" | "dingtalk") {
                        f.add(
                            &mp.key("channel"),
                            format!("{channel:?} is not a chat with user ids; expected `lark`, `wecom` or `dingtalk`"),
                        );
                    }
                    if id.trim().is_empty() {
                        f.add(&mp.key("id"), "is empty");
                    }
                    Method::UserId {
                        channel: channel.clone(),
                        id: id.clone(),
                    }
                }
            };
            // A contact has a few methods: compared one by one, not
            // serialised to be kept in a set.
            let twin = strip_destination(&method);
            if seen.contains(&twin) {
                f.add(&mp, "the contact has this method twice");
            } else {
                seen.push(twin);
            }
            methods.push(method);
        }
        built.insert(
            name.clone(),
            Contact {
                workspace,
                display_name: c.display_name.clone().unwrap_or_else(|| name.clone()),
                locale,
                alternate: c.alternate.clone(),
                external_id: c.external_id.clone(),
                methods,
                quota: c
                    .quota
                    .as_ref()
                    .and_then(|q| super::quotas::check(q, &cp.key("quota"), f)),
            },
        );
    }
    alternate_cycles(&built, f);
    // Each method's destination: the contact's locale, and the alternate's
    // first method as its fallback (escalation).
    for (dest, contact, index, email, mut d) in synthetic {
        let c = &built[&contact];
        d.locale = c.locale.clone();
        d.workspace = Some(c.workspace.clone());
        d.fallback = c
            .alternate
            .as_ref()
            .and_then(|a| built.get(a))
            .and_then(|a| a.destinations().next().map(str::to_owned));
        origins.0.insert(dest.clone(), (contact, index, email));
        raw.destinations.insert(dest, d);
    }
    let groups = groups(raw, broken, &built, f);
    (built, groups, origins)
}

/// The method without its generated destination name, to find twins.
fn strip_destination(m: &Method) -> Method {
    let mut m = m.clone();
    if let Method::Email { destination, .. } | Method::Robot { destination, .. } = &mut m {
        destination.clear();
    }
    m
}

fn alternate_cycles(contacts: &BTreeMap<String, Contact>, f: &mut Findings) {
    for start in contacts.keys() {
        let mut seen = BTreeSet::from([start.as_str()]);
        let mut at = start.as_str();
        while let Some(next) = contacts.get(at).and_then(|c| c.alternate.as_deref()) {
            if next == start {
                f.add(
                    &KeyPath::root()
                        .key("contacts")
                        .key(start.as_str())
                        .key("alternate"),
                    format!(
                        "the alternates go round in a circle: {}",
                        seen.iter().copied().collect::<Vec<_>>().join(" → ")
                    ),
                );
                break;
            }
            if !seen.insert(next) {
                break;
            }
            at = next;
        }
    }
}

fn groups(
    raw: &RawConfig,
    broken: &Broken,
    contacts: &BTreeMap<String, Contact>,
    f: &mut Findings,
) -> BTreeMap<String, Group> {
    let mut out = BTreeMap::new();
    for (name, g) in &raw.groups {
        let gp = KeyPath::root().key("groups").key(name.as_str());
        if !valid_name(name) {
            f.add(&gp, format!("the group name {NAME_RULE}"));
        }
        let workspace = g
            .workspace
            .clone()
            .unwrap_or_else(|| DEFAULT_WORKSPACE.to_owned());
        if g.members.is_empty() {
            f.add(&gp.key("members"), "lists no contact");
        }
        let mut seen = BTreeSet::new();
        for (i, m) in g.members.iter().enumerate() {
            let at = gp.key("members").index(i);
            match contacts.get(m) {
                None if !broken.contacts.contains(m) => {
                    f.add(&at, format!("no contact is named {m:?}"));
                }
                Some(c) if c.workspace != workspace => {
                    f.add(&at, format!("{m:?} belongs to another workspace"));
                }
                _ => {}
            }
            if !seen.insert(m) {
                f.add(&at, format!("{m:?} is listed twice"));
            }
        }
        out.insert(
            name.clone(),
            Group {
                workspace,
                members: g.members.clone(),
            },
        );
    }
    out
}

/// Checks what routes say of people: each contact and group exists in the
/// route's workspace, and each contact reached has a method that delivers.
pub(super) fn route_references(
    raw: &RawConfig,
    broken: &Broken,
    contacts: &BTreeMap<String, Contact>,
    groups: &BTreeMap<String, Group>,
    f: &mut Findings,
) {
    for (i, r) in &raw.routes {
        let rp = KeyPath::root().key("routes").index(*i);
        let ws = r
            .workspace
            .clone()
            .unwrap_or_else(|| DEFAULT_WORKSPACE.to_owned());
        let reachable = |f: &mut Findings, at: KeyPath, name: &str| {
            match contacts.get(name) {
            None if broken.contacts.contains(name) => {}
            None => f.add(&at, format!("no contact is named {name:?}")),
            Some(c) if c.workspace != ws => f.add(&at, format!("no contact is named {name:?}")),
            Some(c) if c.destinations().next().is_none() => f.add(
                &at,
                format!("contact {name:?} has no method that delivers (an email or a robot); mobile numbers and user ids serve mentions only"),
            ),
            Some(_) => {}
        }
        };
        for (j, c) in r.contacts.iter().enumerate() {
            reachable(f, rp.key("contacts").index(j), c);
        }
        for (j, c) in r.mention.iter().enumerate() {
            let at = rp.key("mention").index(j);
            match contacts.get(c) {
                None if broken.contacts.contains(c) => {}
                Some(x) if x.workspace == ws => {
                    let mentionable = x
                        .methods
                        .iter()
                        .any(|m| matches!(m, Method::Mobile { .. } | Method::UserId { .. }));
                    if !mentionable {
                        f.add(
                            &at,
                            format!("contact {c:?} has no mobile number or user id to mention"),
                        );
                    }
                }
                _ => f.add(&at, format!("no contact is named {c:?}")),
            }
        }
        for (j, g) in r.groups.iter().enumerate() {
            let at = rp.key("groups").index(j);
            match groups.get(g) {
                Some(group) if group.workspace == ws => {
                    for m in &group.members {
                        reachable(f, at.clone(), m);
                    }
                }
                None if broken.groups.contains(g) => {}
                _ => f.add(&at, format!("no group is named {g:?}")),
            }
        }
    }
}

/// The destinations a route reaches through people: each contact's (and
/// each group member's) methods that deliver, in order, each once.
pub fn people_destinations(
    route_contacts: &[String],
    route_groups: &[String],
    contacts: &BTreeMap<String, Contact>,
    groups: &BTreeMap<String, Group>,
) -> Vec<String> {
    let members = route_groups
        .iter()
        .filter_map(|g| groups.get(g))
        .flat_map(|g| g.members.iter());
    let mut out: Vec<String> = Vec::new();
    for name in route_contacts.iter().chain(members) {
        for d in contacts
            .get(name)
            .into_iter()
            .flat_map(Contact::destinations)
        {
            if !out.iter().any(|o| o == d) {
                out.push(d.to_owned());
            }
        }
    }
    out
}

/// `number` as E.164: `+`, a country code and the subscriber number, 8 to
/// 15 digits in all; spaces, dashes, dots and brackets are dropped.
fn e164(number: &str) -> Result<String, String> {
    let digits: String = number
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let Some(rest) = digits.strip_prefix('+') else {
        return Err(format!(
            "{number:?} has no country code; write it in E.164 form, e.g. \"+86 138 0013 8000\""
        ));
    };
    if !rest.chars().all(|c| c.is_ascii_digit())
        || !(8..=15).contains(&rest.len())
        || rest.starts_with('0')
    {
        return Err(format!(
            "{number:?} is not an E.164 number (`+`, a country code, 8 to 15 digits in all)"
        ));
    }
    Ok(digits)
}

#[cfg(test)]
mod tests {
    use super::e164;

    #[test]
    fn mobiles_need_their_country_code() {
        assert_eq!(e164("+86 138-0013-8000").unwrap(), "+8613800138000");
        assert_eq!(e164("+1 (415) 555-0100").unwrap(), "+14155550100");
        assert!(e164("13800138000").unwrap_err().contains("no country code"));
        assert!(e164("+0123456789").is_err());
        assert!(e164("+86 138 abc").is_err());
        assert!(e164("+1234").is_err());
    }
}

#[cfg(test)]
mod config_tests {
    use crate::config::{Checked, Method, Resolver};

    fn check(text: &str) -> Checked {
        let env = |_: &str| None;
        let resolver = Resolver {
            env: &env,
            base_dir: std::path::Path::new("."),
        };
        Checked::text(text, &resolver)
    }

    const BASE: &str = r#"
[destinations.mail]
plugin = "email"
config = { server = "smtp://127.0.0.1:2525", from = "alerts@example.com", to = ["ops@example.com"] }

[contacts.li-wei]
display_name = "Li Wei"
locale = "zh-CN"
alternate = "zhang-san"
methods = [
  { type = "robot", plugin = "dingtalk", config = { webhook = "https://oapi.dingtalk.com/robot/send?access_token=a", secret = "SECx" } },
  { type = "mobile", number = "+86 138 0013 8000" },
  { type = "email", address = "li.wei@example.com", via = "mail" },
]

[contacts.zhang-san]
methods = [{ type = "email", address = "zhang.san@example.com", via = "mail" }]

[groups.oncall]
members = ["li-wei", "zhang-san"]

[[routes]]
name = "critical"
match = { min_severity = "critical" }
groups = ["oncall"]
"#;

    #[test]
    fn contacts_methods_become_destinations_with_locale_and_escalation() {
        let checked = check(BASE);
        assert!(checked.problems().is_empty(), "{}", checked.problems());
        let config = checked.into_config().expect("valid");
        let li = &config.contacts["li-wei"];
        assert_eq!(li.locale.as_deref(), Some("zh-CN"));
        assert!(matches!(&li.methods[1], Method::Mobile { number } if number == "+8613800138000"));
        let robot = &config.destinations["li-wei@0"];
        assert_eq!(robot.plugin, "dingtalk");
        assert_eq!(robot.locale.as_deref(), Some("zh-CN"));
        assert_eq!(robot.contact.as_deref(), Some("li-wei"));
        // A permanent failure escalates to the alternate's first method.
        assert_eq!(robot.fallback.as_deref(), Some("zhang-san@0"));
        let mail = &config.destinations["li-wei@2"];
        assert_eq!(
            mail.config.expose()["to"],
            serde_json::json!(["li.wei@example.com"])
        );
        assert_eq!(mail.config.expose()["from"], "alerts@example.com");
        assert_eq!(config.destinations["zhang-san@0"].fallback, None);
        assert_eq!(
            config.routes[0].people,
            ["li-wei@0", "li-wei@2", "zhang-san@0"]
        );
    }

    #[test]
    fn a_method_given_twice_is_reported_at_every_repeat() {
        let text = "[contacts.wu]\nmethods = [\
                    { type = \"mobile\", number = \"+86 138 0013 8000\" }, \
                    { type = \"robot\", plugin = \"webhook\", config = { url = \"https://h.example/a\" } }, \
                    { type = \"mobile\", number = \"+86-138-0013-8000\" }, \
                    { type = \"robot\", plugin = \"webhook\", config = { url = \"https://h.example/a\" } }, \
                    { type = \"robot\", plugin = \"webhook\", config = { url = \"https://h.example/b\" } }]\n";
        let problems = check(text).problems();
        let twice: Vec<&str> = problems
            .iter()
            .filter(|p| p.message.contains("this method twice"))
            .map(|p| p.path.as_str())
            .collect();
        // A robot is known by its plugin (its config is its destination's),
        // so a second robot of the same plugin is a twin too.
        assert_eq!(
            twice,
            [
                "contacts.wu.methods[2]",
                "contacts.wu.methods[3]",
                "contacts.wu.methods[4]"
            ],
            "{problems}"
        );
    }

    #[test]
    fn every_problem_of_contacts_and_groups_is_reported_at_its_key() {
        let text = BASE
            .replace("+86 138 0013 8000", "13800138000")
            .replace("via = \"mail\" }]", "via = \"nomail\" }]")
            .replace("alternate = \"zhang-san\"", "alternate = \"li-wei\"")
            .replace(
                "members = [\"li-wei\", \"zhang-san\"]",
                "members = [\"li-wei\", \"ghost\"]",
            )
            + "\n[contacts.mute]\nmethods = [{ type = \"user-id\", channel = \"lark\", id = \"ou_1\" }]\n\
               \n[[routes]]\nname = \"to-mute\"\ncontacts = [\"mute\", \"nobody\"]\n";
        let problems = check(&text).problems();
        let at = |path: &str| {
            problems
                .iter()
                .find(|p| p.path == path)
                .unwrap_or_else(|| panic!("no problem at {path}:\n{problems}"))
        };
        assert!(
            at("contacts.li-wei.methods[1].number")
                .message
                .contains("country code")
        );
        assert!(at("contacts.li-wei.methods[1].number").line.is_some());
        assert!(
            at("contacts.zhang-san.methods[0].via")
                .message
                .contains("nomail")
        );
        assert!(
            at("contacts.li-wei.alternate")
                .message
                .contains("its own alternate")
        );
        assert!(at("groups.oncall.members[1]").message.contains("ghost"));
        assert!(
            at("routes[1].contacts[0]")
                .message
                .contains("no method that delivers")
        );
        assert!(at("routes[1].contacts[1]").message.contains("nobody"));
    }

    #[test]
    fn alternates_in_a_circle_and_a_robot_problem_at_its_method() {
        let text = r#"
[contacts.a]
alternate = "b"
methods = [{ type = "robot", plugin = "webhook", config = { url = "${env:NOPE}" } }]
[contacts.b]
alternate = "a"
methods = [{ type = "robot", plugin = "webhook", config = { url = "https://hooks.example.com/b" } }]
"#;
        let problems = check(text).problems();
        assert!(
            problems
                .iter()
                .any(|p| p.path == "contacts.a.alternate" && p.message.contains("circle")),
            "{problems}"
        );
        // The robot's unresolved secret is reported at the method, not at a
        // generated destination name.
        assert!(
            problems
                .iter()
                .any(|p| p.path.starts_with("contacts.a.methods[0].config")),
            "{problems}"
        );
        assert!(!problems.iter().any(|p| p.path.contains('@')), "{problems}");
    }
}

/// The mentions that page `contact` in a message to a `plugin` robot: its
/// mobile numbers (as DingTalk and WeCom match them) and its user ids in
/// that chat. Lark and Teams robots cannot mention by number; their
/// plugins report a mention they cannot carry.
pub fn mentions_for(contact: &Contact, plugin: &str) -> Vec<crate::message::Mention> {
    use crate::message::Mention;
    contact
        .methods
        .iter()
        .filter_map(|m| match m {
            Method::Mobile { number } => crate::event::mention_mobile(number)
                .ok()
                .map(Mention::Mobile),
            Method::UserId { channel, id } if channel == plugin => {
                Some(Mention::UserId(id.clone()))
            }
            _ => None,
        })
        .collect()
}
