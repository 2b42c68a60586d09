//! Run a plugin natively in `cargo test`, with HTTP and SMTP answered by a
//! script instead of the gateway.
//!
//! The [`Harness`] calls the same code paths as the exported component
//! (config parsing, `render`, `deliver`, `classify`); only the host imports
//! are replaced. Each test thread has its own script and records, so tests
//! can run in parallel.

use std::cell::RefCell;
use std::marker::PhantomData;

use crate::{
    Channel, ConfigIssue, Context, DeliverError, Destination, HttpError, HttpRequest, HttpResponse,
    Level, Mail, Manifest, Message, Outgoing, Receipt, Severity, SmtpError, SmtpReply,
};

type HttpResponder = Box<dyn FnMut(&HttpRequest) -> Result<HttpResponse, HttpError>>;
type SmtpResponder = Box<dyn FnMut(&Mail) -> Result<SmtpReply, SmtpError>>;

struct Script {
    http: HttpResponder,
    smtp: SmtpResponder,
    requests: Vec<HttpRequest>,
    mails: Vec<Mail>,
    logs: Vec<(Level, String)>,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            http: Box::new(|_| Err(HttpError::Connect("no HTTP responder scripted".into()))),
            smtp: Box::new(|_| Err(SmtpError::Connect("no SMTP responder scripted".into()))),
            requests: Vec::new(),
            mails: Vec::new(),
            logs: Vec::new(),
        }
    }
}

thread_local! {
    static SCRIPT: RefCell<Script> = RefCell::new(Script::default());
}

pub(crate) fn dispatch_http(request: &HttpRequest) -> Result<HttpResponse, HttpError> {
    SCRIPT.with(|s| {
        let mut s = s.borrow_mut();
        s.requests.push(request.clone());
        (s.http)(request)
    })
}

pub(crate) fn dispatch_smtp(mail: &Mail) -> Result<SmtpReply, SmtpError> {
    SCRIPT.with(|s| {
        let mut s = s.borrow_mut();
        s.mails.push(mail.clone());
        (s.smtp)(mail)
    })
}

pub(crate) fn record_log(level: Level, message: &str) {
    SCRIPT.with(|s| s.borrow_mut().logs.push((level, message.to_owned())));
}

/// Runs plugin `C` against scripted channel answers.
pub struct Harness<C: Channel> {
    context: Context,
    destination: String,
    _channel: PhantomData<C>,
}

impl<C: Channel> Default for Harness<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: Channel> Harness<C> {
    /// A harness with a fresh script for this thread: no responders (every
    /// request fails to connect), attempt 1 at 2023-11-14T22:13:20Z.
    pub fn new() -> Self {
        SCRIPT.with(|s| *s.borrow_mut() = Script::default());
        Harness {
            context: Context {
                delivery_id: "dlv_test".into(),
                event_id: "evt_test".into(),
                attempt: 1,
                now_ms: 1_700_000_000_000,
            },
            destination: "test".into(),
            _channel: PhantomData,
        }
    }

    /// Answers HTTP requests with `responder`.
    pub fn respond(
        self,
        responder: impl FnMut(&HttpRequest) -> Result<HttpResponse, HttpError> + 'static,
    ) -> Self {
        SCRIPT.with(|s| s.borrow_mut().http = Box::new(responder));
        self
    }

    /// Answers mails with `responder`.
    pub fn respond_mail(
        self,
        responder: impl FnMut(&Mail) -> Result<SmtpReply, SmtpError> + 'static,
    ) -> Self {
        SCRIPT.with(|s| s.borrow_mut().smtp = Box::new(responder));
        self
    }

    /// Sets the context passed to `render` and `deliver`.
    pub fn with_context(mut self, context: Context) -> Self {
        self.context = context;
        self
    }

    /// Sets the attempt's clock, in milliseconds since the Unix epoch.
    pub fn at(mut self, now_ms: u64) -> Self {
        self.context.now_ms = now_ms;
        self
    }

    /// The plugin's manifest, after checking that it is well formed.
    pub fn manifest(&self) -> Manifest {
        let manifest = C::manifest();
        let problems = manifest_problems(&manifest);
        assert!(problems.is_empty(), "malformed manifest: {problems:?}");
        manifest
    }

    /// Validates a destination config as the gateway would call `validate`.
    pub fn validate(&self, config: &serde_json::Value) -> Result<(), Vec<ConfigIssue>> {
        crate::__private::validate::<C>(config.to_string())
    }

    /// The JSON pointers of every issue `validate` finds in `config`, in
    /// order; panics when the config is valid.
    pub fn issue_paths(&self, config: &serde_json::Value) -> Vec<String> {
        match self.validate(config) {
            Ok(()) => panic!("expected issues, the config is valid: {config}"),
            Err(issues) => issues.into_iter().map(|issue| issue.path).collect(),
        }
    }

    /// Renders a message for a destination with this config.
    pub fn render(
        &self,
        config: &serde_json::Value,
        message: &Message,
    ) -> Result<Outgoing, DeliverError> {
        crate::__private::render::<C>(
            self.context.clone(),
            self.destination(config),
            message.clone(),
        )
    }

    /// Delivers a message for a destination with this config.
    pub fn deliver(
        &self,
        config: &serde_json::Value,
        message: &Message,
    ) -> Result<Receipt, DeliverError> {
        crate::__private::deliver::<C>(
            self.context.clone(),
            self.destination(config),
            message.clone(),
        )
    }

    /// The outcome of delivering [`sample_message`] when the channel answers
    /// `response`: how a plugin's `classify` reads that answer.
    pub fn outcome(
        &self,
        config: &serde_json::Value,
        response: HttpResponse,
    ) -> Result<Receipt, DeliverError> {
        SCRIPT.with(|s| s.borrow_mut().http = Box::new(move |_| Ok(response.clone())));
        self.deliver(config, &sample_message())
    }

    /// Every HTTP request sent so far on this thread.
    pub fn requests(&self) -> Vec<HttpRequest> {
        SCRIPT.with(|s| s.borrow().requests.clone())
    }

    /// Every mail sent so far on this thread.
    pub fn mails(&self) -> Vec<Mail> {
        SCRIPT.with(|s| s.borrow().mails.clone())
    }

    /// Every log line recorded so far on this thread.
    pub fn logs(&self) -> Vec<(Level, String)> {
        SCRIPT.with(|s| s.borrow().logs.clone())
    }

    /// The warnings logged so far on this thread.
    pub fn warnings(&self) -> Vec<String> {
        self.logs()
            .into_iter()
            .filter(|(level, _)| *level == Level::Warn)
            .map(|(_, line)| line)
            .collect()
    }

    fn destination(&self, config: &serde_json::Value) -> Destination {
        Destination {
            name: self.destination.clone(),
            config: config.to_string(),
        }
    }
}

/// What the gateway would refuse in a manifest: a bad name, a version that is
/// not `x.y.z`, a schema that is not a JSON object, pointers that do not start
/// with `/`.
pub fn manifest_problems(manifest: &Manifest) -> Vec<String> {
    let mut problems = Vec::new();
    let name_ok = !manifest.name.is_empty()
        && manifest
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !name_ok {
        problems.push(format!(
            "name {:?} must be lowercase letters, digits and -",
            manifest.name
        ));
    }
    let parts: Vec<&str> = manifest
        .version
        .split(['-', '+'])
        .next()
        .unwrap_or("")
        .split('.')
        .collect();
    if parts.len() != 3 || parts.iter().any(|p| p.parse::<u64>().is_err()) {
        problems.push(format!(
            "version {:?} is not semantic (x.y.z)",
            manifest.version
        ));
    }
    match serde_json::from_str::<serde_json::Value>(&manifest.config_schema) {
        Ok(serde_json::Value::Object(_)) => {}
        _ => problems.push("config-schema is not a JSON object".into()),
    }
    for pointer in manifest
        .secret_fields
        .iter()
        .chain(&manifest.endpoint_fields)
    {
        if !pointer.starts_with('/') {
            problems.push(format!("{pointer:?} is not a JSON pointer"));
        }
    }
    if manifest.max_payload_bytes == 0 {
        problems.push("max-payload-bytes is 0".into());
    }
    problems
}

/// A representative message: title, Markdown body, one field, a link.
pub fn sample_message() -> Message {
    Message {
        title: "Nightly ETL succeeded".into(),
        markdown: "Task **orders_daily** finished in 42 s.".into(),
        text: "Task orders_daily finished in 42 s.".into(),
        table: None,
        link: Some(crate::Link {
            url: "https://etl.example.com/tasks/42".into(),
            label: Some("Open task".into()),
        }),
        mentions: Vec::new(),
        severity: Severity::Success,
        locale: "en".into(),
        fields: vec![crate::Field {
            name: "owner".into(),
            value: "alice".into(),
        }],
    }
}

/// The representative messages every plugin's golden tests render, by name:
/// `plain`, `long`, `table`, `mentions`, `cjk`, `markdown-special`.
pub fn samples() -> Vec<(&'static str, Message)> {
    use crate::{Column, Comparison, Condition, Mention, Table};

    let plain = sample_message();

    let mut long = sample_message();
    long.title = "Backfill finished with warnings".into();
    long.severity = Severity::Warning;
    long.markdown = (1..=600)
        .map(|i| format!("- partition `p{i:04}` loaded, 1,024 rows, 0 rejected\n"))
        .collect();
    long.text = crate::text::markdown_to_text(&long.markdown);

    let mut table = sample_message();
    table.title = "Data quality scores".into();
    table.severity = Severity::Error;
    table.markdown = "Two of three checks are below the **60%** threshold.".into();
    table.text = "Two of three checks are below the 60% threshold.".into();
    table.table = Some(Table {
        columns: vec![
            Column {
                key: "check".into(),
                title: "Check".into(),
                prefix: String::new(),
                suffix: String::new(),
                condition: None,
            },
            Column {
                key: "score".into(),
                title: "Score".into(),
                prefix: String::new(),
                suffix: "%".into(),
                condition: Some(Condition {
                    op: Comparison::Ge,
                    operand: "60".into(),
                }),
            },
            Column {
                key: "cost".into(),
                title: "Cost".into(),
                prefix: "$".into(),
                suffix: String::new(),
                condition: None,
            },
        ],
        rows: vec![
            vec!["completeness".into(), "92.5".into(), "1.20".into()],
            vec!["freshness".into(), "41".into(), "0.35".into()],
            vec!["uniqueness".into(), "58".into(), "0.80".into()],
        ],
    });

    let mut mentions = sample_message();
    mentions.title = "Disk almost full on db-7".into();
    mentions.severity = Severity::Critical;
    mentions.markdown = "Disk usage on **db-7** reached 97%.".into();
    mentions.text = "Disk usage on db-7 reached 97%.".into();
    mentions.mentions = vec![
        Mention::All,
        Mention::UserId("u_1001".into()),
        Mention::Email("oncall@example.com".into()),
        Mention::Mobile("13800000000".into()),
    ];

    let mut cjk = sample_message();
    cjk.title = "数据同步任务失败".into();
    cjk.severity = Severity::Error;
    cjk.locale = "zh-CN".into();
    cjk.markdown = "任务 **订单日报** 在 02:00 运行失败：连接数据库超时。请检查网络。".into();
    cjk.text = "任务 订单日报 在 02:00 运行失败：连接数据库超时。请检查网络。".into();
    cjk.fields = vec![crate::Field {
        name: "负责人".into(),
        value: "张三".into(),
    }];
    cjk.link = Some(crate::Link {
        url: "https://etl.example.com/tasks/42?lang=zh".into(),
        label: Some("查看详情".into()),
    });

    let mut special = sample_message();
    special.title = "Price <b>alert</b> & *stars* _underscores_ [brackets]".into();
    special.markdown =
        "Literal \\*not bold\\*, a pipe | and a `code | span`, <script>x</script> & \"quotes\"."
            .into();
    special.text =
        "Literal *not bold*, a pipe | and a code | span, <script>x</script> & \"quotes\".".into();

    let mut dialect = sample_message();
    dialect.title = "Nightly load 夜间加载 finished with errors".into();
    dialect.severity = Severity::Warning;
    dialect.markdown = DIALECT_SAMPLE.into();
    dialect.text = crate::text::markdown_to_text(DIALECT_SAMPLE);

    vec![
        ("plain", plain),
        ("long", long),
        ("table", table),
        ("mentions", mentions),
        ("cjk", cjk),
        ("markdown-special", special),
        ("dialect", dialect),
    ]
}

/// A Markdown body with every construct the vendors' dialects differ on:
/// headings, nested and ordered lists, code spans and blocks, links,
/// emphasis, a quote, a pipe table, CJK, emoji and characters to escape.
pub const DIALECT_SAMPLE: &str = "# Nightly load 夜间加载

## Steps 步骤

1. Extract from **orders** 订单
2. Load with *retries* and __care__
   - nested `p0001` partition
   - ~~skipped~~ step

> Quoted: disk at 97% 🚀

```sql
SELECT * FROM orders WHERE id > 10;
```

See [the run](https://etl.example.com/runs/42?x=(1)) or <https://etl.example.com/>.

| Host | State |
| --- | --- |
| db-1 | **FIRING** 🔥 |
| 数据库-2 | OK ✅ |

---

Literal \\*stars\\*, a_b_c, 1\\. not a list, \\# not a heading, <at id=all></at> & <@everyone> `a|b`.
";

/// The sample of [`samples`] called `name`.
pub fn sample(name: &str) -> Message {
    samples()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, message)| message)
        .unwrap_or_else(|| panic!("no sample message called {name:?}"))
}

/// The HTTP request of an HTTP channel's output.
pub fn expect_http(outgoing: Outgoing) -> HttpRequest {
    match outgoing {
        Outgoing::Http(request) => request,
        Outgoing::Mail(_) => panic!("expected an HTTP request, the plugin rendered a mail"),
    }
}

/// A request's body as JSON.
pub fn json_body(request: &HttpRequest) -> serde_json::Value {
    serde_json::from_slice(&request.body)
        .unwrap_or_else(|e| panic!("the request body is not JSON: {e}"))
}

/// A chat robot's `{"errcode", "errmsg"}` answer, in an HTTP 200.
pub fn errcode_answer(errcode: i64, errmsg: &str) -> HttpResponse {
    HttpResponse::json(
        200,
        &serde_json::json!({ "errcode": errcode, "errmsg": errmsg }),
    )
}

/// Asserts that `outcome` is a rejection whose reason contains every one of
/// `needles` (the vendor's code and message, the hint for the admin).
pub fn assert_rejected_with(outcome: Result<Receipt, DeliverError>, needles: &[&str]) {
    match outcome {
        Err(DeliverError::Rejected(reason)) => {
            for needle in needles {
                assert!(reason.contains(needle), "{needle:?} not in {reason:?}");
            }
        }
        other => panic!("expected a rejection mentioning {needles:?}, got {other:?}"),
    }
}

/// Asserts an invalid-config outcome whose reason contains every needle.
pub fn assert_invalid_config_with(outcome: Result<Receipt, DeliverError>, needles: &[&str]) {
    match outcome {
        Err(DeliverError::InvalidConfig(reason)) => {
            for needle in needles {
                assert!(reason.contains(needle), "{needle:?} not in {reason:?}");
            }
        }
        other => panic!("expected invalid-config mentioning {needles:?}, got {other:?}"),
    }
}

/// A request as golden files show it: method and URL, headers, the body size,
/// then the body (pretty JSON when it parses as JSON, else the text). Mails
/// show the envelope and the message.
pub fn pretty_outgoing(outgoing: &Outgoing) -> String {
    pretty_outgoing_with(outgoing, &[])
}

/// Like [`pretty_outgoing`], with extra `# note` lines after the body size
/// (e.g. a channel's own content size).
pub fn pretty_outgoing_with(outgoing: &Outgoing, notes: &[String]) -> String {
    let (mut out, body) = match outgoing {
        Outgoing::Http(request) => {
            let mut out = format!("{} {}\n", request.method, request.url);
            for (name, value) in &request.headers {
                out.push_str(&format!("{name}: {value}\n"));
            }
            if let Some(ms) = request.timeout_ms {
                out.push_str(&format!("# timeout: {ms} ms\n"));
            }
            (out, &request.body)
        }
        Outgoing::Mail(mail) => {
            let out = format!(
                "SMTP {}:{}\nMAIL FROM: {}\nRCPT TO: {}\n",
                mail.server.host,
                mail.server.port,
                mail.envelope_from,
                mail.envelope_to.join(", ")
            );
            (out, &mail.message)
        }
    };
    out.push_str(&format!("# body: {} bytes\n", body.len()));
    for note in notes {
        out.push_str(&format!("# {note}\n"));
    }
    out.push('\n');
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(json) => out.push_str(
            &serde_json::to_string_pretty(&json).unwrap_or_else(|e| format!("<unprintable: {e}>")),
        ),
        Err(_) => out.push_str(&String::from_utf8_lossy(body)),
    }
    out.push('\n');
    out
}

/// The golden file `tests/golden/<case>.txt` of the crate in `manifest_dir`
/// (pass `env!("CARGO_MANIFEST_DIR")`).
pub fn golden_path(manifest_dir: &str, case: &str) -> std::path::PathBuf {
    std::path::Path::new(manifest_dir)
        .join("tests/golden")
        .join(format!("{case}.txt"))
}

/// Renders every one of [`samples`] for every named config of plugin `C`
/// and compares each result, written by `show` (usually
/// [`pretty_outgoing`]), with the golden file `<config>-<sample>` of the
/// crate in `manifest_dir` ([`golden_path`]). Each HTTP body must be UTF-8
/// and at most `max_body` bytes.
pub fn check_golden_requests<C: Channel>(
    manifest_dir: &str,
    configs: &[(&str, serde_json::Value)],
    max_body: usize,
    show: impl Fn(&Outgoing) -> String,
) {
    for (config_name, config) in configs {
        for (sample_name, message) in samples() {
            let case = format!("{config_name}-{sample_name}");
            let outgoing = Harness::<C>::new()
                .render(config, &message)
                .unwrap_or_else(|e| panic!("{case}: {e:?}"));
            if let Outgoing::Http(request) = &outgoing {
                assert!(request.body.len() <= max_body, "{case}: body too large");
                assert!(std::str::from_utf8(&request.body).is_ok(), "{case}");
            }
            check_golden(&golden_path(manifest_dir, &case), &show(&outgoing));
        }
    }
}

/// Compares `actual` with the golden file at `path`, or rewrites the file
/// when the environment variable `UPDATE_EXPECT=1` is set.
pub fn check_golden(path: &std::path::Path, actual: &str) {
    if std::env::var_os("UPDATE_EXPECT").is_some_and(|v| v == "1") {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("cannot create the golden directory");
        }
        std::fs::write(path, actual).expect("cannot write the golden file");
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "cannot read golden file {} ({e}); run with UPDATE_EXPECT=1 to create it",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "golden file {} differs (UPDATE_EXPECT=1 rewrites it)\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}
