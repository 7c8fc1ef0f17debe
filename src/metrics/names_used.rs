//! The metric names written outside the code exist: every series the alert
//! rules (deploy/prometheus/wse-alerts.yml) and docs/OPERATIONS.md name is
//! one the server's /metrics text declares (`# TYPE`), so a renamed or
//! misspelt metric fails here instead of leaving an alert that never fires.
//! The rules' jobs are the example scrape jobs', and every alert is
//! described in OPERATIONS.

use std::collections::BTreeSet;

use super::{Health, Metrics, prometheus};
use crate::cluster::{ClusterStatus, write_prometheus};

const ALERTS: &str = include_str!("../../deploy/prometheus/wse-alerts.yml");
const SCRAPE: &str = include_str!("../../deploy/prometheus/prometheus.yml");
const OPERATIONS: &str = include_str!("../../docs/OPERATIONS.md");

/// Series the rules read that other programs export: Prometheus's own
/// `up` per target, and the blackbox exporter's `probe_success` (/ready).
const NOT_FROM_WSE: &[&str] = &["up", "probe_success"];

/// `wse_` names in OPERATIONS that are not metrics: the Python module and
/// crate names (`RUST_LOG` targets).
const NOT_METRICS: &[&str] = &["wse_server", "wse_log", "wse_replication", "wse_tools"];

/// Every metric name a server's /metrics text can hold: the registry with
/// every conditional figure shown, a topic counted, and the cluster
/// series (their `# TYPE` lines are written even without shards).
fn exported() -> BTreeSet<String> {
    let m = Metrics::default();
    m.count_topic("chat");
    let h = Health {
        recovery_enabled: true,
        presence_enabled: true,
        presence_topics: Some(1),
        presence_total_users: Some(1),
        ..Health::default()
    };
    let mut text = prometheus(&m, &h);
    write_prometheus(&mut text, &ClusterStatus::default());
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_owned)
        .collect()
}

/// PromQL words that are not series: operators, and the aggregations
/// (which may take their `by (...)` before their parentheses).
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];
/// Modifiers whose parenthesised list holds label names.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The series a PromQL expression reads: identifiers that are not
/// functions, keywords, numbers, label names (in `{}` or a `by (...)`
/// list), durations (`[5m]`) or strings.
fn series_in(expr: &str) -> Vec<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' => i = skip_past(&chars, i + 1, c),
            '{' => i = skip_past(&chars, i + 1, '}'),
            '[' => i = skip_past(&chars, i + 1, ']'),
            c if c.is_ascii_digit() || c == '.' => {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let next = chars[i..].iter().find(|c| !c.is_whitespace());
                if LABEL_LISTS.contains(&word.as_str()) {
                    if next == Some(&'(') {
                        let open = i + chars[i..].iter().position(|c| *c == '(').unwrap_or(0);
                        i = skip_past(&chars, open + 1, ')');
                    }
                } else if next != Some(&'(') && !KEYWORDS.contains(&word.as_str()) {
                    out.push(word);
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// The index after the first `end` at or after `from`.
fn skip_past(chars: &[char], from: usize, end: char) -> usize {
    chars[from.min(chars.len())..]
        .iter()
        .position(|c| *c == end)
        .map_or(chars.len(), |p| from + p + 1)
}

/// The value of each `key: value` line of a YAML file (flow values as
/// written; the rule file keeps every `expr` on one line).
fn values<'a>(yaml: &'a str, key: &str) -> Vec<&'a str> {
    let prefix = format!("{key}:");
    yaml.lines()
        .map(|l| l.trim_start().trim_start_matches("- "))
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .map(str::trim)
        .collect()
}

#[test]
fn the_parser_finds_series_and_nothing_else() {
    let expr = r#"increase(wse_a_total{job="wse",x=~"a|b"}[5m]) > 0.8 * 268435456 and on (instance) sum by (shard) (up) unless wse_b offset 5m"#;
    assert_eq!(series_in(expr), ["wse_a_total", "up", "wse_b"]);
    assert!(!exported().contains("wse_no_such_metric_total"));
}

#[test]
fn every_series_in_the_alert_rules_is_exported() {
    let exported = exported();
    let exprs = values(ALERTS, "expr");
    assert!(exprs.len() >= 10, "{exprs:?}");
    for expr in &exprs {
        assert!(
            !expr.is_empty() && !expr.starts_with(['|', '>']),
            "keep each expr on one line: {expr:?}"
        );
        let series = series_in(expr);
        assert!(!series.is_empty(), "{expr}");
        for name in series {
            assert!(
                exported.contains(&name) || NOT_FROM_WSE.contains(&name.as_str()),
                "{name} (in `{expr}`) is not in the server's /metrics"
            );
        }
    }
}

#[test]
fn every_alert_has_a_severity_a_scraped_job_and_a_description() {
    let alerts = values(ALERTS, "alert");
    assert_eq!(alerts.len(), values(ALERTS, "expr").len());
    assert_eq!(alerts.len(), values(ALERTS, "severity").len());
    let unique: BTreeSet<&str> = alerts.iter().copied().collect();
    assert_eq!(unique.len(), alerts.len(), "an alert name twice");
    let monitoring: String = OPERATIONS
        .lines()
        .skip_while(|l| *l != "## Monitoring")
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .collect::<Vec<_>>()
        .join("\n");
    for alert in &alerts {
        assert!(
            monitoring.contains(&format!("`{alert}`")),
            "{alert} is not described in OPERATIONS.md, \"Monitoring\""
        );
    }
    let jobs: BTreeSet<&str> = values(SCRAPE, "job_name").into_iter().collect();
    for expr in values(ALERTS, "expr") {
        for part in expr.split("job=\"").skip(1) {
            let job = part.split('"').next().unwrap_or_default();
            assert!(jobs.contains(job), "job {job:?} is not scraped: {jobs:?}");
        }
    }
    assert!(
        SCRAPE.lines().any(|l| l.trim() == "- wse-alerts.yml"),
        "the scrape example loads the rules"
    );
}

#[test]
fn every_metric_named_in_operations_is_exported() {
    let exported = exported();
    let names = regex::Regex::new(r"\bwse_[a-z0-9_]+").expect("a valid pattern");
    let mut checked = 0;
    for m in names.find_iter(OPERATIONS) {
        let name = m.as_str();
        if NOT_METRICS.contains(&name) {
            continue;
        }
        assert!(
            exported.contains(name),
            "OPERATIONS.md names {name}, which the server's /metrics does not have"
        );
        checked += 1;
    }
    assert!(checked > 50, "{checked}");
}
