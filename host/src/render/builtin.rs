//! The built-in templates, one per event family, in English and Chinese.
//!
//! Routes name them `builtin.NAME`; a target without a template gets the
//! one for its event's family ([`family`]). A config template with the same
//! name (`[templates."builtin.task-failed".zh]`) replaces a built-in locale
//! or adds one. They are written for a phone: a one-line title with an icon,
//! a bold lead sentence, a short list of the facts present, the message.
//! A task event with a `title` but no `taskname` keeps the client's title.

use crate::event::Event;

/// The prefix of built-in template names.
pub const PREFIX: &str = "builtin.";

/// One locale of a built-in template.
pub(crate) struct Text {
    pub locale: &'static str,
    pub title: &'static str,
    pub body: &'static str,
}

/// A built-in template.
pub(crate) struct Builtin {
    /// Its name without the prefix (`task-failed`).
    pub name: &'static str,
    pub texts: &'static [Text],
}

/// The names of the built-in templates, without the prefix.
pub const NAMES: &[&str] = &[
    "task-succeeded",
    "task-failed",
    "timeout",
    "task-finished-late",
    "task-retrying",
    "resource",
    "alert",
    "quota-digest",
    "generic",
];

/// Is `name` (`builtin.task-failed`) a built-in template?
pub fn exists(name: &str) -> bool {
    name.strip_prefix(PREFIX)
        .is_some_and(|rest| NAMES.contains(&rest))
}

/// The built-in template for `event`'s family, by its type: a last segment
/// `succeeded|success|completed` → `task-succeeded`,
/// `failed|failure|error` → `task-failed`, `timeout|timed_out` →
/// `timeout`, `finished-late` → `task-finished-late`, `retrying` →
/// `task-retrying`; then `resource.*` → `resource`, `alert.*` → `alert`,
/// `quota.digest` → `quota-digest`; else `generic`. Returns the full name (`builtin.task-failed`).
pub fn family(event: &Event) -> &'static str {
    let lower = event.event_type.to_ascii_lowercase();
    let last = lower.rsplit('.').next().unwrap_or_default();
    match last {
        "succeeded" | "success" | "completed" => "builtin.task-succeeded",
        "failed" | "failure" | "error" => "builtin.task-failed",
        "timeout" | "timed_out" => "builtin.timeout",
        "finished-late" => "builtin.task-finished-late",
        "retrying" => "builtin.task-retrying",
        _ if lower.starts_with("resource.") => "builtin.resource",
        _ if lower.starts_with("alert.") => "builtin.alert",
        _ if lower == crate::quota::DIGEST => "builtin.quota-digest",
        _ => "builtin.generic",
    }
}

pub(crate) const ALL: &[Builtin] = &[
    Builtin {
        name: "task-succeeded",
        texts: &[
            Text {
                locale: "en",
                title: r#"✅ {% if title is defined and taskname is not defined %}${ title }{% else %}${ taskname | default(source) } succeeded{% endif %}"#,
                body: r#"{% set name = taskname | default(source) %}
**${ name }** finished successfully.

{% if owner is defined %}
- **Owner:** ${ owner }
{% endif %}
{% if tasktype is defined %}
- **Type:** ${ tasktype }
{% endif %}
{% if rows is defined %}
- **Rows:** ${ rows }
{% elif affected_rows is defined %}
- **Rows:** ${ affected_rows }
{% endif %}
{% if duration is defined %}
- **Duration:** ${ duration }
{% endif %}
- **Finished:** ${ timestamp }
{% if message is defined %}

${ message }
{% endif %}
"#,
            },
            Text {
                locale: "zh",
                title: r#"✅ {% if title is defined and taskname is not defined %}${ title }{% else %}任务 ${ taskname | default(source) } 执行成功{% endif %}"#,
                body: r#"{% set name = taskname | default(source) %}
**${ name }** 已成功完成。

{% if owner is defined %}
- **负责人**：${ owner }
{% endif %}
{% if tasktype is defined %}
- **任务类型**：${ tasktype }
{% endif %}
{% if rows is defined %}
- **影响行数**：${ rows }
{% elif affected_rows is defined %}
- **影响行数**：${ affected_rows }
{% endif %}
{% if duration is defined %}
- **耗时**：${ duration }
{% endif %}
- **完成时间**：${ timestamp }
{% if message is defined %}

${ message }
{% endif %}
"#,
            },
        ],
    },
    Builtin {
        name: "task-failed",
        texts: &[
            Text {
                locale: "en",
                title: r#"❌ {% if title is defined and taskname is not defined %}${ title }{% else %}${ taskname | default(source) } failed{% endif %}"#,
                body: r#"{% set name = taskname | default(source) %}
**${ name }** failed.

{% if owner is defined %}
- **Owner:** ${ owner }
{% endif %}
{% if tasktype is defined %}
- **Type:** ${ tasktype }
{% endif %}
{% if duration is defined %}
- **Ran for:** ${ duration }
{% endif %}
- **Failed at:** ${ timestamp }
{% if error is defined %}

**Error:** ${ error }
{% endif %}
{% if message is defined %}

${ message }
{% endif %}
"#,
            },
            Text {
                locale: "zh",
                title: r#"❌ {% if title is defined and taskname is not defined %}${ title }{% else %}任务 ${ taskname | default(source) } 执行失败{% endif %}"#,
                body: r#"{% set name = taskname | default(source) %}
**${ name }** 执行失败。

{% if owner is defined %}
- **负责人**：${ owner }
{% endif %}
{% if tasktype is defined %}
- **任务类型**：${ tasktype }
{% endif %}
{% if duration is defined %}
- **已运行**：${ duration }
{% endif %}
- **失败时间**：${ timestamp }
{% if error is defined %}

**错误**：${ error }
{% endif %}
{% if message is defined %}

${ message }
{% endif %}
"#,
            },
        ],
    },
    Builtin {
        name: "timeout",
        texts: &[
            Text {
                locale: "en",
                title: r#"⏰ {% if title is defined and taskname is not defined %}${ title }{% else %}${ taskname | default(source) } timed out{% endif %}"#,
                body: r#"{% set name = taskname | default(source) %}
**${ name }** did not finish in time.

{% if owner is defined %}
- **Owner:** ${ owner }
{% endif %}
{% if tasktype is defined %}
- **Type:** ${ tasktype }
{% endif %}
{% if started_at is defined %}
- **Started:** ${ started_at | datetime }
{% endif %}
{% if deadline is defined %}
- **Deadline:** ${ deadline | datetime }
{% endif %}
{% if elapsed is defined %}
- **Running for:** ${ elapsed }
{% endif %}
- **Detected:** ${ timestamp }{% if late is defined and late %} (late: Carillon was down or behind at the deadline){% endif %}
{% if message is defined %}

${ message }
{% endif %}
"#,
            },
            Text {
                locale: "zh",
                title: r#"⏰ {% if title is defined and taskname is not defined %}${ title }{% else %}任务 ${ taskname | default(source) } 执行超时{% endif %}"#,
                body: r#"{% set name = taskname | default(source) %}
**${ name }** 未在规定时间内完成。

{% if owner is defined %}
- **负责人**：${ owner }
{% endif %}
{% if tasktype is defined %}
- **任务类型**：${ tasktype }
{% endif %}
{% if started_at is defined %}
- **开始时间**：${ started_at | datetime }
{% endif %}
{% if deadline is defined %}
- **截止时间**：${ deadline | datetime }
{% endif %}
{% if elapsed is defined %}
- **已运行**：${ elapsed }
{% endif %}
- **发现时间**：${ timestamp }{% if late is defined and late %}（延迟发出：截止时 Carillon 未运行或积压）{% endif %}
{% if message is defined %}

${ message }
{% endif %}
"#,
            },
        ],
    },
    Builtin {
        name: "task-finished-late",
        texts: &[
            Text {
                locale: "en",
                title: r#"🐢 ${ taskname | default(source) } finished after its timeout"#,
                body: r#"{% set name = taskname | default(source) %}
{% set outcomes = {"succeeded": "succeeded", "failed": "failed", "cancelled": "was cancelled"} %}
**${ name }** ${ outcomes[outcome] | default(outcome) if outcome is defined else "finished" } after it was reported as timed out.

{% if owner is defined %}
- **Owner:** ${ owner }
{% endif %}
{% if tasktype is defined %}
- **Type:** ${ tasktype }
{% endif %}
{% if timed_out_at is defined %}
- **Timed out:** ${ timed_out_at | datetime }
{% endif %}
{% if late_by is defined %}
- **Late by:** ${ late_by }
{% endif %}
- **Finished:** ${ timestamp }
{% if message is defined %}

${ message }
{% endif %}
"#,
            },
            Text {
                locale: "zh",
                title: r#"🐢 任务 ${ taskname | default(source) } 超时后才结束"#,
                body: r#"{% set name = taskname | default(source) %}
{% set outcomes = {"succeeded": "执行成功", "failed": "执行失败", "cancelled": "被取消"} %}
**${ name }** 在超时告警之后${ outcomes[outcome] | default(outcome) if outcome is defined else "结束" }。

{% if owner is defined %}
- **负责人**：${ owner }
{% endif %}
{% if tasktype is defined %}
- **任务类型**：${ tasktype }
{% endif %}
{% if timed_out_at is defined %}
- **超时时间**：${ timed_out_at | datetime }
{% endif %}
{% if late_by is defined %}
- **超出**：${ late_by }
{% endif %}
- **结束时间**：${ timestamp }
{% if message is defined %}

${ message }
{% endif %}
"#,
            },
        ],
    },
    Builtin {
        name: "task-retrying",
        texts: &[
            Text {
                locale: "en",
                title: r#"🔁 ${ taskname | default(title | default(source)) } retrying{% if attempt is defined %} (attempt ${ attempt }{% if max_attempts is defined %} of ${ max_attempts }{% endif %}){% endif %}"#,
                body: r#"{% set name = taskname | default(title | default(source)) %}
**${ name }** failed and will be retried.

{% if attempt is defined %}
- **Attempt:** ${ attempt }${ " of " ~ max_attempts if max_attempts is defined else "" }
{% endif %}
{% if next_attempt_at is defined %}
- **Next attempt:** ${ next_attempt_at | datetime }
{% endif %}
{% if owner is defined %}
- **Owner:** ${ owner }
{% endif %}
{% if tasktype is defined %}
- **Type:** ${ tasktype }
{% endif %}
- **Time:** ${ timestamp }
{% if message is defined %}

${ message }
{% endif %}
"#,
            },
            Text {
                locale: "zh",
                title: r#"🔁 任务 ${ taskname | default(title | default(source)) } 重试中{% if attempt is defined %}（第 ${ attempt }{% if max_attempts is defined %}/${ max_attempts }{% endif %} 次）{% endif %}"#,
                body: r#"{% set name = taskname | default(title | default(source)) %}
**${ name }** 执行失败，将会重试。

{% if attempt is defined %}
- **重试次数**：第 ${ attempt } 次${ "（共 " ~ max_attempts ~ " 次）" if max_attempts is defined else "" }
{% endif %}
{% if next_attempt_at is defined %}
- **下次重试**：${ next_attempt_at | datetime }
{% endif %}
{% if owner is defined %}
- **负责人**：${ owner }
{% endif %}
{% if tasktype is defined %}
- **任务类型**：${ tasktype }
{% endif %}
- **时间**：${ timestamp }
{% if message is defined %}

${ message }
{% endif %}
"#,
            },
        ],
    },
    Builtin {
        name: "resource",
        texts: &[
            Text {
                locale: "en",
                title: r#"{% if stale is defined and stale %}❔ ${ metric | default(title | default(type)) } stopped reporting{% elif status == "resolved" %}✅ ${ metric | default(title | default(type)) } back to normal{% else %}⚠️ ${ metric | default(title | default(type)) } above threshold{% endif %}{% if resourceid is defined %} on ${ resourceid }{% endif %}"#,
                body: r#"{% set name = metric | default(title | default(type)) %}
{% set unit = unit | default("") %}
{% if stale is defined and stale %}
**${ name }** has sent no reading{% if resourceid is defined %} on **${ resourceid }**{% endif %}{% if last_reading is defined %} since ${ last_reading | datetime }{% endif %}. Its alert is closed; no value said it recovered.
{% elif status == "resolved" %}
**${ name }** is back to normal{% if resourceid is defined %} on **${ resourceid }**{% endif %}.
{% else %}
**${ name }** crossed its threshold{% if resourceid is defined %} on **${ resourceid }**{% endif %}.
{% endif %}

{% if value is defined %}
- **Value:** ${ value }${ unit }
{% endif %}
{% if threshold is defined %}
- **Threshold:** ${ threshold }${ unit }
{% endif %}
{% if firing_for is defined %}
- **Firing for:** ${ firing_for }
{% endif %}
- **Severity:** ${ severity }
- **Time:** ${ timestamp }
{% if message is defined %}

${ message }
{% endif %}
"#,
            },
            Text {
                locale: "zh",
                title: r#"{% if stale is defined and stale %}❔ ${ metric | default(title | default(type)) } 已停止上报{% elif status == "resolved" %}✅ ${ metric | default(title | default(type)) } 已恢复正常{% else %}⚠️ ${ metric | default(title | default(type)) } 超过阈值{% endif %}{% if resourceid is defined %}（${ resourceid }）{% endif %}"#,
                body: r#"{% set name = metric | default(title | default(type)) %}
{% set unit = unit | default("") %}
{% set levels = {"info": "提示", "success": "成功", "warning": "警告", "error": "错误", "critical": "严重"} %}
{% if stale is defined and stale %}
{% if resourceid is defined %}**${ resourceid }** 上的 {% endif %}**${ name }** {% if last_reading is defined %}自 ${ last_reading | datetime } 起{% endif %}没有新的数据。告警已关闭，但没有数值表明它已恢复。
{% elif status == "resolved" %}
{% if resourceid is defined %}**${ resourceid }** 上的 {% endif %}**${ name }** 已恢复正常。
{% else %}
{% if resourceid is defined %}**${ resourceid }** 上的 {% endif %}**${ name }** 超过阈值。
{% endif %}

{% if value is defined %}
- **当前值**：${ value }${ unit }
{% endif %}
{% if threshold is defined %}
- **阈值**：${ threshold }${ unit }
{% endif %}
{% if firing_for is defined %}
- **持续时间**：${ firing_for }
{% endif %}
- **级别**：${ levels[severity] }
- **时间**：${ timestamp }
{% if message is defined %}

${ message }
{% endif %}
"#,
            },
        ],
    },
    Builtin {
        name: "alert",
        texts: &[
            Text {
                locale: "en",
                title: r#"{% if status == "resolved" %}✅ [RESOLVED]{% else %}🔥 [FIRING]{% endif %} ${ labels.alertname | default(title | default(type)) }"#,
                body: r#"{% if title is defined and title != labels.alertname | default("") %}
**${ title }**

{% endif %}
{% if message is defined %}
${ message }

{% endif %}
- **Alert:** ${ labels.alertname | default(type) }
{% if labels.instance is defined %}
- **Instance:** ${ labels.instance }
{% endif %}
- **Severity:** ${ labels.severity | default(severity) }
- **${ "Resolved" if status == "resolved" else "Since" }:** ${ timestamp }
{% for k, v in labels | items if k not in ["alertname", "instance", "severity"] %}
{% if loop.first %}- **Labels:** {% else %} {% endif %}`${ k }=${ v }`{% if loop.last %}${ "\n" }{% endif %}
{% endfor %}
"#,
            },
            Text {
                locale: "zh",
                title: r#"{% if status == "resolved" %}✅ [已恢复]{% else %}🔥 [告警中]{% endif %} ${ labels.alertname | default(title | default(type)) }"#,
                body: r#"{% set levels = {"info": "提示", "success": "成功", "warning": "警告", "error": "错误", "critical": "严重"} %}
{% if title is defined and title != labels.alertname | default("") %}
**${ title }**

{% endif %}
{% if message is defined %}
${ message }

{% endif %}
- **告警**：${ labels.alertname | default(type) }
{% if labels.instance is defined %}
- **实例**：${ labels.instance }
{% endif %}
- **级别**：${ labels.severity | default(levels[severity]) }
- **${ "恢复时间" if status == "resolved" else "开始时间" }**：${ timestamp }
{% for k, v in labels | items if k not in ["alertname", "instance", "severity"] %}
{% if loop.first %}- **标签**：{% else %} {% endif %}`${ k }=${ v }`{% if loop.last %}${ "\n" }{% endif %}
{% endfor %}
"#,
            },
        ],
    },
    Builtin {
        name: "quota-digest",
        texts: &[
            Text {
                locale: "en",
                title: r#"🔕 ${ suppressed } alert{% if suppressed != 1 %}s{% endif %} held back {% if quota_scope == "route" %}on route ${ quota_name }{% else %}for ${ display_name }{% endif %}"#,
                body: r#"The alert quota ({% if quota_scope == "route" %}route **${ quota_name }**{% else %}**${ display_name }**{% endif %}: at most ${ max } per ${ window }) held back **${ suppressed }** alert{% if suppressed != 1 %}s{% endif %} between ${ window_start | datetime } and ${ window_end | datetime }.

{% for k in kinds %}
- **${ k.type }:** ${ k.count }
{% endfor %}

Alerts are sent again from now on; the held-back ones are recorded in Carillon (`routing.suppressed` of each event).
"#,
            },
            Text {
                locale: "zh",
                title: r#"🔕 {% if quota_scope == "route" %}路由 ${ quota_name }{% else %}${ display_name }{% endif %} 有 ${ suppressed } 条告警因限额未发送"#,
                body: r#"告警限额（{% if quota_scope == "route" %}路由 **${ quota_name }**{% else %}**${ display_name }**{% endif %}：每 ${ window } 最多 ${ max } 条）在 ${ window_start | datetime } 至 ${ window_end | datetime } 期间拦下了 **${ suppressed }** 条告警。

{% for k in kinds %}
- **${ k.type }**：${ k.count }
{% endfor %}

从现在起告警恢复发送；被拦下的告警仍记录在 Carillon 中（各事件的 `routing.suppressed`）。
"#,
            },
        ],
    },
    Builtin {
        name: "generic",
        texts: &[
            Text {
                locale: "en",
                title: r#"${ {"info": "ℹ️", "success": "✅", "warning": "⚠️", "error": "❌", "critical": "🚨"}[severity] } ${ title | default(type) }"#,
                body: r#"{% if message is defined %}
${ message }

{% endif %}
- **Event:** `${ type }`
- **Source:** ${ source }
- **Severity:** ${ severity }
- **Time:** ${ timestamp }
"#,
            },
            Text {
                locale: "zh",
                title: r#"${ {"info": "ℹ️", "success": "✅", "warning": "⚠️", "error": "❌", "critical": "🚨"}[severity] } ${ title | default(type) }"#,
                body: r#"{% set levels = {"info": "提示", "success": "成功", "warning": "警告", "error": "错误", "critical": "严重"} %}
{% if message is defined %}
${ message }

{% endif %}
- **事件**：`${ type }`
- **来源**：${ source }
- **级别**：${ levels[severity] }
- **时间**：${ timestamp }
"#,
            },
        ],
    },
];
