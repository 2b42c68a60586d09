//! `[workspaces]`: the workspaces (tenants) and their channel settings, and
//! the references to them: every destination, route, template and token
//! names a declared workspace (or none: `default`), and what a workspace's
//! objects name belongs to the same workspace.

use std::collections::{BTreeMap, BTreeSet};

use super::parse::Broken;
use super::raw::{RawConfig, RawWorkspace};
use super::{Workspace, WorkspaceChannels};
use crate::access::DEFAULT_WORKSPACE;
use crate::problem::{Findings, KeyPath, NAME_RULE, valid_name};
use crate::render::builtin;

/// Checks `[workspaces]` and builds them, `default` always among them.
pub(super) fn workspaces(
    raw: &BTreeMap<String, RawWorkspace>,
    f: &mut Findings,
) -> BTreeMap<String, Workspace> {
    let p = KeyPath::root().key("workspaces");
    let mut out = BTreeMap::new();
    for (name, w) in raw {
        let wp = p.key(name.as_str());
        if !valid_name(name) {
            f.add(&wp, format!("the workspace name {NAME_RULE}"));
        }
        let channels = match (w.channels.as_deref(), &w.enabled_channels) {
            (None | Some("inherit"), None) => WorkspaceChannels::Inherit,
            (None | Some("inherit"), Some(_)) => {
                f.add(
                    &wp.key("enabled_channels"),
                    "applies only with `channels = \"custom\"`; an `inherit` workspace \
                     uses the instance's channel types",
                );
                WorkspaceChannels::Inherit
            }
            (Some("custom"), list) => {
                let mut enabled = BTreeSet::new();
                for (i, c) in list.iter().flatten().enumerate() {
                    if !valid_name(c) {
                        f.add(
                            &wp.key("enabled_channels").index(i),
                            format!("a channel type (plugin name) {NAME_RULE}"),
                        );
                    } else if !enabled.insert(c.clone()) {
                        f.add(
                            &wp.key("enabled_channels").index(i),
                            format!("{c:?} is listed twice"),
                        );
                    }
                }
                WorkspaceChannels::Custom(enabled)
            }
            (Some(other), _) => {
                f.add(
                    &wp.key("channels"),
                    format!("{other:?} is not a channel setting; expected `inherit` or `custom`"),
                );
                WorkspaceChannels::Inherit
            }
        };
        out.insert(name.clone(), Workspace { channels });
    }
    out.entry(DEFAULT_WORKSPACE.to_owned()).or_default();
    out
}

/// Checks what every object says of workspaces: the workspace exists, and
/// the destinations and templates it names are its own workspace's.
pub(super) fn references(
    raw: &RawConfig,
    broken: &Broken,
    built: &BTreeMap<String, Workspace>,
    f: &mut Findings,
) {
    let root = KeyPath::root();
    // A workspace section that did not parse may declare any name.
    let unknown_ok = broken.sections.contains("workspaces");
    let ws_of = |given: &Option<String>| given.clone().unwrap_or_else(|| DEFAULT_WORKSPACE.into());
    let exists = |f: &mut Findings, at: KeyPath, given: &Option<String>| {
        if let Some(name) = given
            && !unknown_ok
            && name != DEFAULT_WORKSPACE
            && !raw.workspaces.contains_key(name)
        {
            f.add(
                &at,
                format!("no workspace is named {name:?}; declare it as [workspaces.{name}]"),
            );
        }
    };
    // Names to their workspace, for what exists; a broken entry's is unknown.
    let destination_ws: BTreeMap<&str, String> = raw
        .destinations
        .iter()
        .map(|(n, d)| (n.as_str(), ws_of(&d.workspace)))
        .collect();
    let template_ws: BTreeMap<&str, String> = raw
        .templates
        .iter()
        .map(|(n, t)| (n.as_str(), ws_of(&t.workspace)))
        .collect();
    let same = |f: &mut Findings,
                at: KeyPath,
                what: &str,
                name: &str,
                owner: Option<&String>,
                ws: &str| {
        if let Some(owner) = owner
            && owner != ws
        {
            f.add(
                &at,
                format!(
                    "{what} {name:?} belongs to workspace {owner:?}, not to {ws:?}; \
                     a workspace's objects name only its own"
                ),
            );
        }
    };

    for (name, c) in &raw.contacts {
        exists(
            f,
            root.key("contacts").key(name.as_str()).key("workspace"),
            &c.workspace,
        );
    }
    for (name, s) in &raw.sources {
        exists(
            f,
            root.key("sources").key(name.as_str()).key("workspace"),
            &s.workspace,
        );
    }
    for (name, g) in &raw.groups {
        exists(
            f,
            root.key("groups").key(name.as_str()).key("workspace"),
            &g.workspace,
        );
    }
    for (name, d) in &raw.destinations {
        let dp = root.key("destinations").key(name.as_str());
        // A contact's method says it at the contact (above).
        if !name.contains('@') {
            exists(f, dp.key("workspace"), &d.workspace);
        }
        let ws = ws_of(&d.workspace);
        if let Some(fallback) = &d.fallback {
            same(
                f,
                dp.key("fallback"),
                "destination",
                fallback,
                destination_ws.get(fallback.as_str()),
                &ws,
            );
        }
        if let Some(Workspace {
            channels: WorkspaceChannels::Custom(enabled),
        }) = built.get(&ws)
            && !d.plugin.trim().is_empty()
            && !enabled.contains(&d.plugin)
        {
            f.add(
                &dp.key("plugin"),
                format!(
                    "the channel type {:?} is not enabled in workspace {ws:?}; add it to \
                     workspaces.{ws}.enabled_channels",
                    d.plugin
                ),
            );
        }
    }
    for (name, t) in &raw.templates {
        exists(
            f,
            root.key("templates").key(name.as_str()).key("workspace"),
            &t.workspace,
        );
    }
    for (i, r) in &raw.routes {
        let rp = root.key("routes").index(*i);
        exists(f, rp.key("workspace"), &r.workspace);
        let ws = ws_of(&r.workspace);
        for (j, d) in r.destinations.iter().enumerate() {
            same(
                f,
                rp.key("destinations").index(j),
                "destination",
                d,
                destination_ws.get(d.as_str()),
                &ws,
            );
        }
        if let Some(t) = &r.template
            && !t.starts_with(builtin::PREFIX)
        {
            same(
                f,
                rp.key("template"),
                "template",
                t,
                template_ws.get(t.as_str()),
                &ws,
            );
        }
    }
    for (i, t) in raw.auth.ingest.iter().enumerate() {
        let tp = root.key("auth").key("ingest").index(i);
        exists(f, tp.key("workspace"), &t.workspace);
        let ws = ws_of(&t.workspace);
        for (j, d) in t.destinations.iter().flatten().enumerate() {
            same(
                f,
                tp.key("destinations").index(j),
                "destination",
                d,
                destination_ws.get(d.as_str()),
                &ws,
            );
        }
    }
    for (i, t) in raw.auth.tokens.iter().enumerate() {
        let tp = root.key("auth").key("tokens").index(i);
        exists(f, tp.key("workspace"), &t.workspace);
        let ws = ws_of(&t.workspace);
        for (j, d) in t.destinations.iter().flatten().enumerate() {
            same(
                f,
                tp.key("destinations").index(j),
                "destination",
                d,
                destination_ws.get(d.as_str()),
                &ws,
            );
        }
    }
}
