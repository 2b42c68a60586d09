//! `[workspaces]` and the token list: what validates, and a problem naming
//! its key for each thing that does not.

use std::path::Path;

use super::*;
use crate::access::Role;

fn parse(text: &str) -> Result<Config, Problems> {
    let env = |name: &str| (name == "T_OPS").then(|| "ops-token-1".to_owned());
    let resolver = Resolver {
        env: &env,
        base_dir: Path::new("."),
    };
    Config::from_toml(text, &resolver)
}

fn problems(text: &str) -> String {
    match parse(text) {
        Ok(_) => "ok".to_owned(),
        Err(p) => p.to_string(),
    }
}

/// Asserts `text` has a problem at `path` whose message contains `part`.
#[track_caller]
fn has(text: &str, path: &str, part: &str) {
    let all = problems(text);
    assert!(
        all.lines()
            .any(|l| l.starts_with(&format!("{path} (")) && l.contains(part)
                || l.starts_with(&format!("{path}:")) && l.contains(part)),
        "expected a problem at {path} containing {part:?}; got:\n{all}"
    );
}

const TEAMS: &str = r#"
[auth]
admin_token_sha256 = "8e4f0a1b6a4c3d2e1f00112233445566778899aabbccddeeff00112233445566"

[[auth.ingest]]
name = "etl"
token = "etl-token-1"

[[auth.ingest]]
name = "pay-app"
token = "pay-token-1"
workspace = "payments"
destinations = ["pay-bot"]

[[auth.tokens]]
name = "pay-admin"
role = "workspace-admin"
workspace = "payments"
token = "pay-admin-1"

[[auth.tokens]]
name = "ops"
role = "operator"
token = "${env:T_OPS}"

[[auth.tokens]]
name = "auditor"
role = "viewer"
workspace = "payments"
token_sha256 = "2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824"

[workspaces.payments]
channels = "custom"
enabled_channels = ["webhook", "dingtalk"]

[workspaces.search]

[destinations.ops-bot]
plugin = "webhook"
config = { url = "https://hooks.example.com/ops" }

[destinations.pay-bot]
plugin = "webhook"
workspace = "payments"
fallback = "pay-mail"
config = { url = "https://hooks.example.com/pay" }

[destinations.pay-mail]
plugin = "webhook"
workspace = "payments"
config = { url = "https://hooks.example.com/pay-mail" }

[[routes]]
name = "ops"
destinations = ["ops-bot"]

[[routes]]
name = "pay"
workspace = "payments"
destinations = ["pay-bot"]
template = "pay-task"

[templates.pay-task]
workspace = "payments"
en = { title = "${taskname}", body = "failed" }
"#;

#[test]
fn workspaces_and_tokens_of_every_role_validate() {
    let c = parse(TEAMS).unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(
        c.workspaces.keys().collect::<Vec<_>>(),
        ["default", "payments", "search"]
    );
    assert_eq!(c.workspaces["search"].channels, WorkspaceChannels::Inherit);
    assert!(c.workspace_channel_enabled("payments", "dingtalk"));
    assert!(!c.workspace_channel_enabled("payments", "email"));
    assert!(c.workspace_channel_enabled("default", "email"));
    assert!(!c.workspace_channel_enabled("nowhere", "email"));
    assert_eq!(c.destinations["ops-bot"].workspace, "default");
    assert_eq!(c.destination_workspace("pay-bot"), Some("payments"));
    assert_eq!(c.routes[0].workspace, "default");
    assert_eq!(c.routes[1].workspace, "payments");
    assert_eq!(c.templates["pay-task"].workspace, "payments");
    assert_eq!(c.templates["pay-task"].locales.len(), 1);

    let roles: Vec<(&str, Role, Option<&str>)> = c
        .auth
        .tokens
        .iter()
        .map(|t| (t.name.as_str(), t.role, t.workspace.as_deref()))
        .collect();
    assert_eq!(
        roles,
        [
            ("admin", Role::InstanceAdmin, None),
            ("etl", Role::Ingest, Some("default")),
            ("pay-app", Role::Ingest, Some("payments")),
            ("pay-admin", Role::WorkspaceAdmin, Some("payments")),
            ("ops", Role::Operator, Some("default")),
            ("auditor", Role::Viewer, Some("payments")),
        ]
    );
    // Found by the token, whether the file gave it or its hash ("hello").
    assert_eq!(c.auth.find(b"ops-token-1"), Some(4));
    assert_eq!(c.auth.find(b"hello"), Some(5));
    assert_eq!(c.auth.find(b"nope"), None);
    // Neither the tokens nor their hashes are shown.
    let json = serde_json::to_string(&c).expect("serializes");
    assert!(
        !json.contains("pay-admin-1") && !json.contains("2cf24dba"),
        "{json}"
    );
    assert!(!json.to_lowercase().contains("2cf24dba"), "{json}");
}

#[test]
fn a_file_without_workspace_keys_has_only_default() {
    let c = parse("[[routes]]\nname = \"r\"\ndestinations = [\"d\"]\n[destinations.d]\nplugin = \"webhook\"\n")
        .unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(c.workspaces.len(), 1);
    assert_eq!(c.workspaces["default"].channels, WorkspaceChannels::Inherit);
    assert_eq!(c.routes[0].workspace, "default");
}

#[test]
fn every_unknown_workspace_is_a_problem_at_its_key() {
    let text = TEAMS.replace("workspace = \"payments\"", "workspace = \"paymnets\"");
    for path in [
        "auth.ingest[1].workspace",
        "auth.tokens[0].workspace",
        "auth.tokens[2].workspace",
        "destinations.pay-bot.workspace",
        "destinations.pay-mail.workspace",
        "routes[1].workspace",
        "templates.pay-task.workspace",
    ] {
        has(
            &text,
            path,
            "no workspace is named \"paymnets\"; declare it as [workspaces.paymnets]",
        );
    }
}

#[test]
fn a_workspace_names_only_its_own_objects() {
    let cross = TEAMS
        .replace(
            "destinations = [\"pay-bot\"]\ntemplate",
            "destinations = [\"ops-bot\"]\ntemplate",
        )
        .replace("fallback = \"pay-mail\"", "fallback = \"ops-bot\"")
        .replace(
            "destinations = [\"pay-bot\"]\n\n[[auth.tokens]]",
            "destinations = [\"ops-bot\"]\n\n[[auth.tokens]]",
        );
    has(
        &cross,
        "routes[1].destinations[0]",
        "destination \"ops-bot\" belongs to workspace \"default\", not to \"payments\"",
    );
    has(
        &cross,
        "destinations.pay-bot.fallback",
        "belongs to workspace \"default\"",
    );
    has(
        &cross,
        "auth.ingest[1].destinations[0]",
        "belongs to workspace \"default\"",
    );
    let template = TEAMS.replace(
        "name = \"ops\"\ndestinations = [\"ops-bot\"]",
        "name = \"ops\"\ndestinations = [\"ops-bot\"]\ntemplate = \"pay-task\"",
    );
    has(
        &template,
        "routes[0].template",
        "template \"pay-task\" belongs to workspace \"payments\", not to \"default\"",
    );
}

#[test]
fn channel_settings_are_checked() {
    let disabled = TEAMS.replace(
        "enabled_channels = [\"webhook\", \"dingtalk\"]",
        "enabled_channels = [\"dingtalk\"]",
    );
    has(
        &disabled,
        "destinations.pay-bot.plugin",
        "the channel type \"webhook\" is not enabled in workspace \"payments\"",
    );
    has(
        &disabled,
        "destinations.pay-mail.plugin",
        "add it to workspaces.payments.enabled_channels",
    );
    let bad = TEAMS.replace("channels = \"custom\"", "channels = \"some\"");
    has(
        &bad,
        "workspaces.payments.channels",
        "expected `inherit` or `custom`",
    );
    let stray = TEAMS.replace("channels = \"custom\"", "channels = \"inherit\"");
    has(
        &stray,
        "workspaces.payments.enabled_channels",
        "applies only with `channels = \"custom\"`",
    );
    let twice = TEAMS.replace("[\"webhook\", \"dingtalk\"]", "[\"webhook\", \"webhook\"]");
    has(
        &twice,
        "workspaces.payments.enabled_channels[1]",
        "listed twice",
    );
    let name = TEAMS.replace("[workspaces.search]", "[workspaces.\"se arch\"]");
    has(
        &name,
        "workspaces.\"se arch\"",
        "the workspace name must be non-empty",
    );
    let unknown = TEAMS.replace(
        "[workspaces.search]",
        "[workspaces.search]\nchanels = \"custom\"",
    );
    has(&unknown, "workspaces.search.chanels", "unknown field");
}

#[test]
fn token_entries_are_checked() {
    let role = TEAMS.replace("role = \"operator\"", "role = \"admin\"");
    has(
        &role,
        "auth.tokens[1].role",
        "unknown role \"admin\", expected one of `instance-admin`",
    );
    let scoped_admin = TEAMS.replace(
        "role = \"operator\"",
        "role = \"instance-admin\"\nworkspace = \"default\"",
    );
    has(
        &scoped_admin,
        "auth.tokens[1].workspace",
        "acts in every workspace",
    );
    let both = TEAMS.replace(
        "token = \"pay-admin-1\"",
        "token = \"pay-admin-1\"\ntoken_sha256 = \"00\"",
    );
    has(
        &both,
        "auth.tokens[0].token_sha256",
        "either `token` or `token_sha256`, not both",
    );
    let neither = TEAMS.replace("token = \"pay-admin-1\"\n", "");
    has(
        &neither,
        "auth.tokens[0]",
        "needs `token` (the token) or `token_sha256`",
    );
    let hex = TEAMS.replace("token_sha256 = \"2CF24D", "token_sha256 = \"XCF24D");
    has(
        &hex,
        "auth.tokens[2].token_sha256",
        "is not a SHA-256 in hex",
    );
    let admin_hex = TEAMS.replace("admin_token_sha256 = \"8e4f", "admin_token_sha256 = \"8e4");
    has(
        &admin_hex,
        "auth.admin_token_sha256",
        "is not a SHA-256 in hex",
    );
    let same = TEAMS.replace("token = \"pay-admin-1\"", "token = \"etl-token-1\"");
    has(
        &same,
        "auth.tokens[0].token",
        "is the same token as auth.ingest[0].token",
    );
    let same_hash = TEAMS.replace("token = \"pay-admin-1\"", "token = \"hello\"");
    has(
        &same_hash,
        "auth.tokens[2].token_sha256",
        "is the same token as auth.tokens[0].token",
    );
    let name = TEAMS.replace("name = \"ops\"\nrole", "name = \"etl\"\nrole");
    has(
        &name,
        "auth.tokens[1].name",
        "\"etl\" is already the name of auth.ingest[0]",
    );
    let limits = TEAMS.replace(
        "role = \"operator\"",
        "role = \"operator\"\nevent_types = [\"x\"]\ndestinations = [\"ops-bot\"]",
    );
    has(
        &limits,
        "auth.tokens[1].event_types",
        "only an `ingest` token is limited by `event_types`",
    );
    has(
        &limits,
        "auth.tokens[1].destinations",
        "only an `ingest` token is limited by `destinations`",
    );
    let missing = TEAMS.replace(
        "role = \"operator\"",
        "role = \"ingest\"\ndestinations = [\"nope\"]",
    );
    has(
        &missing,
        "auth.tokens[1].destinations[0]",
        "no destination is named \"nope\"",
    );
}

#[test]
fn a_builtin_override_belongs_to_default() {
    let text = format!(
        "{TEAMS}\n[templates.\"builtin.generic\"]\nworkspace = \"payments\"\nen = {{ title = \"t\", body = \"b\" }}\n"
    );
    has(
        &text,
        "templates.\"builtin.generic\".workspace",
        "belongs to `default`",
    );
}
