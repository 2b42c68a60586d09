//! Unit tests of the configuration: defaults, a full valid file, secrets
//! that never print, problems with their paths, checks against plugins and
//! the generated local tokens. The golden error files are in
//! `host/tests/config.rs`.
//!
//! Longer than 600 lines on purpose: the tests share the fixtures at the top
//! (`FULL`, the environment, the fake plugin catalogs), and each test reads
//! one config text top to bottom.

use std::path::Path;

use super::*;
use crate::access::Role;
use crate::message::Severity;
use crate::plugin::types::ConfigIssue;
use crate::route::SeverityMatch;

fn env(name: &str) -> Option<String> {
    match name {
        "T_ADMIN" => Some("admin-SECRET-1".into()),
        "T_CI" => Some("ci-SECRET-2".into()),
        "T_HOOK" => Some("https://hooks.example.com/in/SECRET-3".into()),
        "T_SIGN" => Some("whsec_SECRET4aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".into()),
        _ => None,
    }
}

fn parse(text: &str) -> Result<Config, Problems> {
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

const FULL: &str = r#"
[server]
listen = "0.0.0.0:9000"

[auth]
admin_token = "${env:T_ADMIN}"

[[auth.ingest]]
name = "ci"
token = "${env:T_CI}"
event_types = ["task.*"]
destinations = ["ops-bot"]

[[auth.ingest]]
name = "literal"
token = "lit-SECRET-5"

[egress]
allow_private = ["127.0.0.1/32", "10.0.0.0/8"]

[dispatch]
global_fallback = "mail"

[channels]
teams = { enabled = false }

[destinations.ops-bot]
plugin = "webhook"
fallback = "mail"
rate_limit = { requests = 20, per_secs = 60 }
allow_hosts = ["*.example.com"]
config = { url = "${env:T_HOOK}", signing_secret = "${env:T_SIGN}", headers = { Authorization = "Bearer lit-SECRET-6" } }

[destinations.mail]
plugin = "webhook"
locale = "zh-CN"
rate_limit = [{ requests = 5, per_secs = 1 }, { requests = 100, per_secs = 60 }]
config = { url = "https://mail.example.com/in?token=lit-SECRET-7" }

[[routes]]
name = "failures"
match.event = "task.failed"
match.min_severity = "warning"
match.conditions = [
  { field = "labels.team", equals = "data" },
  { field = "data.task.name", regex = "^etl-" },
  { field = "data.rows", exists = true },
]
destinations = ["ops-bot"]
template = "task-failed"
continue = true

[[routes]]
name = "the-rest"
destinations = ["mail"]
template = "builtin.generic"

[templates.task-failed.en]
title = "Task ${ taskname } failed on ${yyyy-mm-dd}"
body = """
{% if owner is defined %}Owner: ${ owner }{% endif %}
See ${ data.link | default("the log") }"""

[templates.task-failed.zh-CN]
title = "任务 ${ taskname } 失败"
body = "详见 ${ data.link }"

[render]
time_zone = "Asia/Shanghai"
default_locale = "zh"
"#;

#[test]
fn the_embedded_defaults_load_and_match_the_built_in_defaults() {
    let defaults = Config::embedded_defaults().expect("defaults.toml is valid");
    assert_eq!(defaults.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(defaults.server.data_dir, Path::new("./data"));
    assert_eq!(defaults.server.plugin_dir, Path::new("./plugins"));
    assert!(defaults.destinations.is_empty() && defaults.routes.is_empty());
    assert!(defaults.auth.tokens.is_empty());
    assert_eq!(defaults.workspaces.keys().collect::<Vec<_>>(), ["default"]);
    let empty = parse("").expect("an empty file is valid");
    let json = |c: &Config| serde_json::to_value(c).expect("serializes");
    assert_eq!(
        json(&defaults),
        json(&empty),
        "defaults.toml and the serde defaults agree"
    );
    let runtime = defaults.runtime_config();
    let stock = crate::plugin::RuntimeConfig::default();
    assert_eq!(runtime.limits.memory_bytes, stock.limits.memory_bytes);
    assert_eq!(runtime.limits.cpu_time, stock.limits.cpu_time);
    assert_eq!(runtime.limits.wall_time, stock.limits.wall_time);
    assert_eq!(runtime.max_concurrent_calls, stock.max_concurrent_calls);
    assert_eq!(
        defaults.dispatch.retry,
        crate::dispatch::retry::RetryPolicy::default()
    );
}

#[test]
fn a_full_file_validates_into_typed_values() {
    let c = parse(FULL).unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(c.server.listen.port(), 9000);
    let admin = &c.auth.tokens[c.auth.find(b"admin-SECRET-1").expect("admin token")];
    assert_eq!(
        (admin.name.as_str(), admin.role),
        ("admin", Role::InstanceAdmin)
    );
    assert_eq!(admin.workspace, None);
    let ci = &c.auth.tokens[c.auth.find(b"ci-SECRET-2").expect("ingest token")];
    assert_eq!(
        (ci.role, ci.workspace.as_deref()),
        (Role::Ingest, Some("default"))
    );
    assert!(
        ci.event_types
            .as_ref()
            .is_some_and(|g| g[0].matches("task.failed"))
    );
    assert!(c.egress.permits("10.1.2.3".parse().expect("ip")));
    let bot = &c.destinations["ops-bot"];
    assert_eq!(
        bot.config.expose()["url"],
        "https://hooks.example.com/in/SECRET-3"
    );
    assert_eq!(bot.rate_limits.as_ref().map(Vec::len), Some(1));
    assert_eq!(
        c.destinations["mail"].rate_limits.as_ref().map(Vec::len),
        Some(2)
    );
    assert!(!c.channel_enabled("teams") && c.channel_enabled("webhook"));
    assert!(c.destination_active("ops-bot"));
    let route = &c.routes[0];
    assert_eq!(route.severity, SeverityMatch::AtLeast(Severity::Warning));
    assert_eq!(route.conditions.len(), 3);
    assert!(route.continue_);
    assert_eq!(c.templates["task-failed"].locales.len(), 2);
    assert_eq!(c.routes[1].template.as_deref(), Some("builtin.generic"));
    assert_eq!(c.render.time_zone.iana_name(), Some("Asia/Shanghai"));
    assert_eq!(c.render.default_locale, "zh");
    assert_eq!(c.destinations["mail"].locale.as_deref(), Some("zh-CN"));
    assert_eq!(c.destinations["ops-bot"].locale, None);
    let json = serde_json::to_value(&c).expect("serializes");
    assert_eq!(
        json["render"],
        serde_json::json!({ "time_zone": "Asia/Shanghai", "default_locale": "zh" })
    );
    // What validation accepted compiles into a renderer.
    let renderer = crate::render::Renderer::new(&c.templates, c.render.clone())
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert!(renderer.has_template("task-failed") && renderer.has_template("builtin.generic"));
}

#[test]
fn secrets_never_appear_in_debug_display_or_json() {
    let c = parse(FULL).unwrap_or_else(|p| panic!("{p}"));
    let secrets = plugin_config::all_secrets(&c);
    // Tokens are kept only as hashes, not as secrets.
    assert!(secrets.contains("Bearer lit-SECRET-6"), "{secrets:?}");
    for token in ["admin-SECRET-1", "ci-SECRET-2", "lit-SECRET-5"] {
        assert!(!secrets.contains(token), "{secrets:?}");
    }
    let debug = format!("{c:?}");
    let pretty = format!("{c:#?}");
    let json = serde_json::to_string(&c).expect("serializes");
    for text in [&debug, &pretty, &json] {
        assert!(!text.contains("SECRET"), "a secret leaked: {text}");
    }
    assert!(
        json.contains("https://hooks.example.com/<redacted>") || json.contains("\"<redacted>\"")
    );
    assert!(json.contains("mail.example.com/<redacted>"), "{json}");
}

#[test]
fn every_problem_is_reported_with_its_path_and_line() {
    let text = r#"
[server]
listen = "localhost"

[destinations.a]
plugin = "webhook"
fallback = "b"

[destinations.b]
plugin = "webhook"
fallback = "a"

[[routes]]
name = "r"
destinations = ["a", "nope"]
template = "missing"
match.conditions = [{ field = "data.x", regex = "(" }]
"#;
    let out = problems(text);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("server.listen (line 3, column 10): \"localhost\""),
        "{out}"
    );
    assert!(
        out.contains(
            "destinations.a.fallback (line 7, column 12): fallbacks form a cycle: a → b → a"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "routes[0].destinations[1] (line 15, column 22): no destination is named \"nope\""
        ),
        "{out}"
    );
    assert!(
        out.contains("routes[0].template (line 16, column 12): no template is named \"missing\""),
        "{out}"
    );
    assert!(out.contains("routes[0].match.conditions[0].regex"), "{out}");
    assert_eq!(lines.len(), 5, "{out}");
}

#[test]
fn unknown_keys_and_bad_values_name_their_key_and_line() {
    let out = problems(
        "[server]\nlisten = \"127.0.0.1:1\"\nlisne = 1\n\n[egress]\nallow_private = [\"nope\"]\n[extra]\n",
    );
    assert!(
        out.contains("server.lisne (line 3, column 9): unknown field `lisne`"),
        "{out}"
    );
    assert!(
        out.contains("egress.allow_private[0] (line 6, column 18)"),
        "{out}"
    );
    assert!(
        out.contains("extra (line 7, column 2): unknown section `extra`"),
        "{out}"
    );
    let out = problems("[server\n");
    assert!(out.starts_with("(file) (line 1"), "{out}");
}

#[test]
fn secret_references_report_the_key() {
    let out = problems(
        "[auth]\nadmin_token = \"${env:CARILLON_UNSET_X}\"\n[[auth.ingest]]\nname = \"a\"\ntoken = \"${vault:x}\"\n",
    );
    assert!(
        out.contains(
            "auth.admin_token (line 2, column 15): environment variable CARILLON_UNSET_X is not set"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "auth.ingest[0].token (line 5, column 9): \"${vault:x}\" is not a secret reference"
        ),
        "{out}"
    );
    let out =
        problems("[destinations.d]\nplugin = \"webhook\"\nconfig = { url = \"${env:NOPE}\" }\n");
    assert!(
        out.contains(
            "destinations.d.config/url (line 3, column 18): environment variable NOPE is not set"
        ),
        "{out}"
    );
}

struct FakePlugins;

impl PluginCatalog for FakePlugins {
    fn has_plugin(&self, name: &str) -> bool {
        name == "webhook" || name == "teams"
    }
    fn plugin_names(&self) -> Vec<String> {
        vec!["teams".into(), "webhook".into()]
    }
    fn schema_issues(&self, _: &str, config: &serde_json::Value) -> Vec<ConfigIssue> {
        match config.get("url").and_then(|u| u.as_str()) {
            Some(u) if u.starts_with("https://") => Vec::new(),
            Some(u) => vec![ConfigIssue {
                path: "/url".into(),
                message: format!("{u:?} does not match \"^https://\""),
            }],
            None => vec![ConfigIssue {
                path: String::new(),
                message: "\"url\" is a required property".into(),
            }],
        }
    }
}

#[test]
fn plugin_checks_point_into_the_destination_config() {
    let text = "[channels]\nfax = { enabled = true }\n\n[destinations.a]\nplugin = \"webhook\"\nconfig = { url = \"ftp://x/SECRET\" }\n\n[destinations.b]\nplugin = \"pager\"\n\n[destinations.c]\nplugin = \"webhook\"\n";
    let c = parse(text).unwrap_or_else(|p| panic!("{p}"));
    let out = c.check_plugins(&FakePlugins).to_string();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[0].starts_with("channels.fax (line 2, column 7): no plugin is named \"fax\" (loaded plugins: teams, webhook)"), "{out}");
    assert_eq!(
        lines[1],
        "destinations.a.config/url (line 6, column 18): \"ftp://x/<redacted>\" does not match \"^https://\""
    );
    assert!(
        lines[2]
            .starts_with("destinations.b.plugin (line 9, column 10): no plugin is named \"pager\""),
        "{out}"
    );
    assert!(
        lines[3].starts_with(
            "destinations.c.config (line 11, column 1): \"url\" is a required property"
        ) || lines[3].starts_with("destinations.c.config"),
        "{out}"
    );
    assert!(
        parse(FULL)
            .expect("valid")
            .check_plugins(&FakePlugins)
            .is_empty()
    );
}

#[test]
fn local_tokens_are_generated_once_and_reused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let first = LocalTokens::load_or_create(&data).expect("created");
    assert!(first.created);
    assert!(first.admin.expose().starts_with("adm_") && first.admin.expose().len() == 68);
    let again = LocalTokens::load_or_create(&data).expect("read");
    assert!(!again.created);
    assert_eq!(again.admin, first.admin);
    assert_eq!(again.ingest, first.ingest);
    assert_ne!(first.admin, first.ingest);
    let mut config = Config::embedded_defaults().expect("defaults");
    again.apply(&mut config);
    let admin = config.auth.find(first.admin.expose().as_bytes());
    assert_eq!(
        admin.map(|i| config.auth.tokens[i].role),
        Some(Role::InstanceAdmin)
    );
    let local = config.auth.find(first.ingest.expose().as_bytes());
    assert_eq!(
        local.map(|i| config.auth.tokens[i].name.as_str()),
        Some("local")
    );
    std::fs::write(data.join(LocalTokens::FILE), "junk = 1").expect("write");
    assert!(LocalTokens::load_or_create(&data).is_err());
}

#[test]
fn templates_that_do_not_compile_are_reported_at_their_key() {
    let text = r#"
[templates.broken.en]
title = "ok ${ taskname }"
body = """
line one
{% if x %}
never closed
"""

[templates.broken.zh]
title = "${ oops"
body = "fine"
"#;
    let out = problems(text);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with(
            "templates.broken.en.body (line 4, column 8): does not compile: syntax error: "
        ),
        "{out}"
    );
    assert!(lines[0].ends_with("(line 3 of the template)"), "{out}");
    assert!(
        lines[1].starts_with(
            "templates.broken.zh.title (line 11, column 9): does not compile: syntax error: "
        ),
        "{out}"
    );
}

#[test]
fn routes_may_name_built_in_templates() {
    let base = "[destinations.d]\nplugin = \"webhook\"\n\n[[routes]]\nname = \"r\"\ndestinations = [\"d\"]\n";
    let c = parse(&format!("{base}template = \"builtin.task-failed\"\n"))
        .unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(c.routes[0].template.as_deref(), Some("builtin.task-failed"));
    let out = problems(&format!("{base}template = \"builtin.nope\"\n"));
    assert_eq!(
        out,
        "routes[0].template (line 7, column 12): no template is named \"builtin.nope\" (built-in templates: builtin.task-succeeded, builtin.task-failed, builtin.timeout, builtin.task-finished-late, builtin.task-retrying, builtin.resource, builtin.alert, builtin.quota-digest, builtin.generic)"
    );
    assert!(
        problems(&format!("{base}template = \"task-failed\"\n")).contains("no template is named")
    );
}

#[test]
fn built_in_templates_are_overridden_by_name_and_only_those_exist() {
    let ok = "[templates.\"builtin.task-failed\".zh]\ntitle = \"失败：${ taskname }\"\nbody = \"${ message }\"\n";
    let c = parse(ok).unwrap_or_else(|p| panic!("{p}"));
    assert!(c.templates.contains_key("builtin.task-failed"));
    let out = problems("[templates.\"builtin.nope\".en]\ntitle = \"t\"\nbody = \"b\"\n");
    assert!(
        out.starts_with("templates.\"builtin.nope\" (line 1, column 12): no built-in template is named \"builtin.nope\""),
        "{out}"
    );
}

#[test]
fn render_settings_and_destination_locales_are_checked() {
    let out = problems(
        "[render]\ntime_zone = \"Mars/Olympus\"\ndefault_locale = \"default\"\n\n[destinations.d]\nplugin = \"webhook\"\nlocale = \"english!\"\n",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "render.time_zone (line 2, column 13): \"Mars/Olympus\" is not an IANA time zone such as \"UTC\" or \"Asia/Shanghai\"",
            "render.default_locale (line 3, column 18): \"default\" is not a locale such as `en`, `zh` or `zh-CN`",
            "destinations.d.locale (line 7, column 10): \"english!\" is not a locale such as `en`, `zh` or `zh-CN`",
        ],
        "{out}"
    );
    let out = problems("[render]\nzone = \"UTC\"\n");
    assert!(
        out.contains("render.zone (line 2, column 8): unknown field `zone`"),
        "{out}"
    );
    let c = parse("[render]\ntime_zone = \"America/New_York\"\n").unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(c.render.time_zone.iana_name(), Some("America/New_York"));
    assert_eq!(c.render.default_locale, "en");
}

#[test]
fn channels_can_be_pinned_to_a_sha256_and_plugins_watched() {
    let sha = "AB".repeat(32);
    let c = parse(&format!(
        "[server]\nwatch_plugins = false\nplugin_rescan_secs = 5\n\n[channels.echo]\nsha256 = \"{sha}\"\n"
    ))
    .unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(c.plugin_pin("echo"), Some("ab".repeat(32).as_str()));
    assert!(c.channel_enabled("echo"), "`enabled` defaults to true");
    assert!(!c.server.watch_plugins);
    assert_eq!(c.server.plugin_rescan, std::time::Duration::from_secs(5));

    let out = problems("[server]\nplugin_rescan_secs = 0\n\n[channels.echo]\nsha256 = \"abc\"\n");
    assert!(
        out.contains("server.plugin_rescan_secs (line 2, column 22): must be greater than 0"),
        "{out}"
    );
    assert!(
        out.contains("channels.echo.sha256 (line 5, column 10): must be a SHA-256 in hex"),
        "{out}"
    );
}

#[test]
fn unrouted_retention_may_not_be_shorter_than_the_idempotency_window() {
    let out =
        problems("[outbox]\nidempotency_window_secs = 7200\nunrouted_retention_secs = 3600\n");
    assert!(
        out.contains(
            "outbox.unrouted_retention_secs (line 3, column 27): is 3600 but must be at least \
             outbox.idempotency_window_secs (7200)"
        ),
        "{out}"
    );
    let c =
        parse("[outbox]\nmax_unrouted = 5\nmin_free_mib = 0\n").unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(c.outbox.max_unrouted, 5);
    assert_eq!(c.outbox.min_free_bytes, 0);
    assert_eq!(
        c.outbox.unrouted_retention,
        std::time::Duration::from_secs(86_400)
    );
}

#[test]
fn delivered_retention_may_not_be_shorter_than_the_idempotency_window() {
    let out =
        problems("[outbox]\nidempotency_window_secs = 7200\ndelivered_retention_secs = 3600\n");
    assert!(
        out.contains(
            "outbox.delivered_retention_secs (line 3, column 28): is 3600 but must be at least \
             outbox.idempotency_window_secs (7200)"
        ),
        "{out}"
    );
    let c = parse("[outbox]\nidempotency_window_secs = 3600\ndelivered_retention_secs = 3600\n")
        .unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(
        c.outbox.delivered_retention,
        std::time::Duration::from_secs(3600)
    );
}

/// A webhook plugin as strict as the real one: an `https://` URL and no
/// field besides `url` and `signing_secret`.
struct StrictWebhook;

impl PluginCatalog for StrictWebhook {
    fn has_plugin(&self, name: &str) -> bool {
        name == "webhook"
    }
    fn plugin_names(&self) -> Vec<String> {
        vec!["webhook".into()]
    }
    fn schema_issues(&self, name: &str, config: &serde_json::Value) -> Vec<ConfigIssue> {
        let mut issues = FakePlugins.schema_issues(name, config);
        for key in config.as_object().into_iter().flat_map(|m| m.keys()) {
            if key != "url" && key != "signing_secret" {
                issues.push(ConfigIssue {
                    path: String::new(),
                    message: format!(
                        "Additional properties are not allowed ({key:?} was unexpected)"
                    ),
                });
            }
        }
        issues
    }
}

fn check_all(text: &str, plugins: &dyn PluginCatalog) -> Vec<String> {
    let resolver = Resolver {
        env: &env,
        base_dir: Path::new("."),
    };
    let mut checked = Checked::text(text, &resolver);
    checked.check_plugins(plugins);
    checked.problems().iter().map(ToString::to_string).collect()
}

#[test]
fn every_phase_reports_in_one_run() {
    // An unknown key in [server], a route naming a missing destination, and
    // a destination whose webhook URL and extra field the plugin refuses:
    // one run reports all four.
    let text = "[server]\nlisten = \"127.0.0.1:8080\"\ncolour = \"blue\"\n\n[destinations.ops]\nplugin = \"webhook\"\nconfig = { url = \"ftp://hooks.example.com/in\", colour = \"red\" }\n\n[[routes]]\nname = \"all\"\ndestinations = [\"ops\", \"missing\"]\n";
    let out = check_all(text, &StrictWebhook);
    assert_eq!(out.len(), 4, "{out:#?}");
    assert!(
        out[0].starts_with("server.colour (line 3, column 10): unknown field `colour`"),
        "{out:#?}"
    );
    assert_eq!(
        out[1],
        "destinations.ops.config (line 7, column 10): Additional properties are not allowed (\"colour\" was unexpected)"
    );
    assert_eq!(
        out[2],
        "destinations.ops.config/url (line 7, column 18): \"ftp://hooks.example.com/<redacted>\" does not match \"^https://\""
    );
    assert_eq!(
        out[3],
        "routes[0].destinations[1] (line 11, column 24): no destination is named \"missing\""
    );
    // The same file through `from_toml` still refuses it.
    assert!(parse(text).is_err());
}

#[test]
fn the_rest_of_a_section_is_read_around_its_bad_keys() {
    // Two unknown keys and a bad type in one table: all three reported, and
    // the good values are still read (plugin_dir decides which plugins the
    // later checks see).
    let text =
        "[server]\nplugin_dir = \"/opt/p\"\nlisne = 1\nbody_limit_bytes = \"big\"\ncolour = 2\n";
    let resolver = Resolver {
        env: &env,
        base_dir: Path::new("."),
    };
    let checked = Checked::text(text, &resolver);
    let out = checked.problems().to_string();
    assert!(out.contains("server.lisne (line 3"), "{out}");
    assert!(out.contains("server.body_limit_bytes (line 4"), "{out}");
    assert!(out.contains("server.colour (line 5"), "{out}");
    assert_eq!(checked.problems().len(), 3, "{out}");
    let config = checked.config().expect("built for the later checks");
    assert_eq!(config.server.plugin_dir, Path::new("/opt/p"));
}

#[test]
fn checks_an_earlier_problem_makes_impossible_are_named() {
    // A destination without `plugin` cannot be read at all; a secret that
    // does not resolve leaves a config the plugin cannot judge; a route
    // without `name` cannot be read.
    let text = "[destinations.a]\nconfig = { url = \"https://a.example.com\" }\n\n[destinations.b]\nplugin = \"webhook\"\nconfig = { url = \"${env:NOPE}\" }\n\n[[routes]]\nname = \"r\"\ndestinations = [\"a\", \"b\"]\n\n[[routes]]\ndestinations = [\"a\"]\n";
    let out = check_all(text, &StrictWebhook);
    let text_out = out.join("\n");
    assert!(
        out[0].starts_with("destinations.a (line 1") && out[0].contains("missing field `plugin`"),
        "{text_out}"
    );
    assert!(
        out.iter().any(|l| l.starts_with(
            "destinations.b.config/url (line 6, column 18): environment variable NOPE is not set"
        )),
        "{text_out}"
    );
    assert!(
        out.iter()
            .any(|l| l.starts_with("routes[1] (line 1") && l.contains("missing field `name`")),
        "{text_out}"
    );
    // Nothing claims `a` is missing: it is there, only broken.
    assert!(!text_out.contains("no destination is named"), "{text_out}");
    // The notes come last, one per skipped check.
    let notes: Vec<&String> = out.iter().filter(|l| l.contains("skipped")).collect();
    assert_eq!(notes.len(), 3, "{text_out}");
    assert!(
        out.contains(&"destinations.a: skipped the checks of this destination's values, fallback and plugin config: the entry did not parse".to_owned()),
        "{text_out}"
    );
    assert!(
        out.contains(&"destinations.b: skipped the check against its plugin: a secret in its config did not resolve".to_owned()),
        "{text_out}"
    );
    assert!(
        out.contains(&"routes[1]: skipped the checks of this route's match, destinations and template: the entry did not parse".to_owned()),
        "{text_out}"
    );
    assert!(
        out.iter().rev().take(3).all(|l| l.contains("skipped")),
        "{text_out}"
    );

    let out = check_all("[server\n", &StrictWebhook);
    assert_eq!(
        out.last().map(String::as_str),
        Some("(file): skipped every other check: they need a file that is valid TOML")
    );
}

#[test]
fn quotas_on_contacts_and_routes_are_read_and_each_bad_key_is_named() {
    let base = "[destinations.hook]\nplugin = \"webhook\"\nconfig = { url = \"https://example.com/h\" }\n\
                [contacts.a]\nquota = { max = 20, per = \"1h\" }\n\
                methods = [{ type = \"robot\", plugin = \"webhook\", config = { url = \"https://example.com/a\" } }]\n\
                [[routes]]\nname = \"r\"\ndestinations = [\"hook\"]\ncontacts = [\"a\"]\nquota = { max = 2, per = \"30m\" }\n";
    let config = parse(base).unwrap_or_else(|p| panic!("{p}"));
    let quota = config.contacts["a"].quota.expect("the contact's quota");
    assert_eq!((quota.max, quota.per.as_secs()), (20, 3600));
    let quota = config.routes[0].quota.expect("the route's quota");
    assert_eq!((quota.max, quota.per.as_secs()), (2, 1800));
    let bad = base
        .replace("max = 20", "max = 0")
        .replace("per = \"30m\"", "per = \"5s\"");
    let found = problems(&bad);
    assert!(found.contains("contacts.a.quota.max"), "{found}");
    assert!(found.contains("routes[0].quota.per"), "{found}");
    let unknown = problems(&base.replace("max = 2,", "most = 2,"));
    assert!(unknown.contains("routes[0].quota"), "{unknown}");
}

#[test]
fn sources_are_read_with_their_secrets_and_each_bad_key_is_named() {
    let good = "[sources.shop]\nurl = \"sqlite:shop.db\"\n\
                [sources.wh]\nurl = \"postgres://u:s3cret@db.example.com/wh\"\ndev_url = \"postgres://u:s3cret@dev.example.com/wh\"\nmax_connections = 2\n";
    let config = parse(good).unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(config.sources["shop"].driver, carillon_push::Driver::Sqlite);
    assert_eq!(config.sources["wh"].max_connections, 2);
    assert_eq!(config.sources["wh"].workspace, "default");
    let shown = serde_json::to_string(&config.sources).unwrap();
    assert!(
        !shown.contains("s3cret") && !shown.contains("db.example.com"),
        "{shown}"
    );
    let bad = "[sources.a]\nurl = \"oracle://scott:tiger@h/x\"\n\
               [sources.b]\nurl = \"postgres://h/x\"\ndev_url = \"mysql://h/x\"\nmax_connections = 0\n\
               [sources.c]\nurl = \"${env:NOT_SET_ANYWHERE}\"\nworkspace = \"nope\"\n\
               [sources.d]\nurl = \"postgres://u@h:notaport/x\"\n\
               [sources.e]\nurl = \"sqlite:x.db\"\npassword = \"x\"\n";
    let found = problems(bad);
    for key in [
        "sources.a.url",
        "sources.b.dev_url",
        "sources.b.max_connections",
        "sources.c.url",
        "sources.c.workspace",
        "sources.d.url",
        "sources.e",
    ] {
        assert!(found.contains(key), "{key}: {found}");
    }
    assert!(!found.contains("tiger"), "{found}");
}
