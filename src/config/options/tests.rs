//! The options table against `ServerConfig` and the docs.

use std::collections::BTreeSet;

use wse_log::{LogConfig, Retention, TailConfig};

use super::super::ClusterConfig;
use super::*;

/// The field names of a struct, from a pattern without `..`: a field
/// added to the struct fails to compile here until it is listed.
macro_rules! fields {
    ($ty:ident { $($field:ident),* $(,)? }) => {{
        let $ty { $($field: _),* } = $ty::default();
        [$(stringify!($field)),*]
    }};
}

/// Every leaf of `ServerConfig`, named as `OPTIONS` names them.
fn config_leaves() -> BTreeSet<String> {
    let server = fields!(ServerConfig {
        host,
        port,
        max_connections,
        max_pending_handshakes,
        max_pending_handshakes_per_ip,
        handshake_timeout,
        max_handshake_bytes,
        jwt,
        max_message_size,
        tls,
        tls_reload_interval,
        http_listen,
        admin_token,
        http_public_metrics,
        http_max_body,
        http_rate_limit,
        http_rate_burst,
        permessage_deflate,
        deflate_min_size,
        ping_interval,
        idle_timeout,
        rate_limit_capacity,
        rate_limit_refill,
        inbound_rate_capacity,
        inbound_rate_refill,
        inbound_bytes_capacity,
        inbound_bytes_refill,
        max_message_depth,
        max_message_elements,
        max_outbound_bytes,
        slow_consumer,
        write_coalesce,
        close_grace,
        max_inbound_queue,
        max_inbound_queue_bytes,
        event_delivery,
        queue_memory_budget,
        max_subscriptions_per_connection,
        max_patterns_per_connection,
        max_topic_bytes,
        recovery_enabled,
        recovery_max_messages,
        data_dir,
        log,
        fanout_frames_per_topic,
        presence_enabled,
        presence_max_data_size,
        presence_max_members,
        presence_tick,
        core_subscriptions,
        client_publish,
        server_ready_without_auth,
        encryption,
        e2e_hello_wait,
        e2e_rekey_interval,
        close_on_token_expiry,
        signature_key,
        worker_threads,
        cluster,
    });
    let log = fields!(LogConfig {
        durability,
        segment_max_bytes,
        segment_max_age,
        index_interval_bytes,
        retention,
        maintenance_interval,
        tail,
        max_topic_bytes,
        max_record_bytes,
        max_open_files,
        max_pending_bytes,
        fault_retry_min,
        fault_retry_max,
        boot_id_path,
    });
    let retention = fields!(Retention {
        max_bytes,
        max_age,
        max_records
    });
    let tail = fields!(TailConfig {
        records_per_topic,
        memory_budget,
        idle_ttl
    });
    let cluster = fields!(ClusterConfig {
        node_id,
        listen,
        peers,
        insecure,
        shards,
        heartbeat,
        election_timeout,
        publish_timeout,
        dedup_window,
        node_timeout,
        join,
        snapshot_every,
        snapshot_keep,
    });
    let nested = |prefix: &str, names: &[&str]| -> Vec<String> {
        names.iter().map(|n| format!("{prefix}{n}")).collect()
    };
    let mut all: BTreeSet<String> = server.iter().map(|s| s.to_string()).collect();
    all.remove("log");
    all.extend(nested("log.", &log));
    all.remove("log.retention");
    all.remove("log.tail");
    all.extend(nested("log.retention.", &retention));
    all.extend(nested("log.tail.", &tail));
    all.remove("cluster");
    all.extend(nested("cluster.", &cluster));
    all
}

#[test]
fn every_config_field_has_exactly_one_entry() {
    let names: Vec<&str> = OPTIONS.iter().map(|o| o.name).collect();
    let unique: BTreeSet<String> = names.iter().map(|s| s.to_string()).collect();
    assert_eq!(unique.len(), names.len(), "an option is listed twice");
    assert_eq!(unique, config_leaves());
}

#[test]
fn the_docs_list_every_option_with_its_default() {
    let rows = doc_rows(include_str!("../../../docs/OPERATIONS.md"));
    let documented: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    let expected: Vec<&str> = OPTIONS.iter().map(|o| o.name).collect();
    let mut sorted = documented.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), documented.len(), "a row is listed twice");
    assert_eq!(
        sorted.into_iter().collect::<BTreeSet<_>>(),
        expected.into_iter().collect::<BTreeSet<_>>()
    );
    let standalone = ServerConfig::standalone();
    for row in &rows {
        let option = find(&row.name).expect("checked above");
        assert_eq!(row.base_default(), option.default_text(), "{}", row.name);
        let serve = (option.show)(&standalone);
        let expected_serve = (serve != option.default_text()).then_some(serve.as_str());
        assert_eq!(
            row.default_for("`wse serve`"),
            expected_serve,
            "{}: the `wse serve` default",
            row.name
        );
    }
}

#[test]
fn values_read_the_configuration_they_are_given() {
    let mut c = ServerConfig::default();
    c.log.retention.max_bytes = None;
    c.max_outbound_bytes = 3 << 20;
    c.presence_tick = Duration::from_millis(1500);
    let v: std::collections::HashMap<_, _> = values(&c).collect();
    assert_eq!(v["log.retention.max_bytes"], "unlimited");
    assert_eq!(v["max_outbound_bytes"], "3 MiB");
    assert_eq!(v["presence_tick"], "1,500 ms");
    assert_eq!(v["max_inbound_queue"], "131,072");
    assert_eq!(v["log.retention.max_age"], "7 d");
}

#[test]
fn doc_rows_read_the_cells_of_option_tables_only() {
    let md = "| setting | default |\n|---|---|\n| `x` | 1 |\n\n\
              | option | default | `wse serve` | Python | meaning |\n|---|---|---|---|---|\n\
              | `port` | 5007; `wse serve`: 1 | `--port` | `port`, `p2` | the port |\n\
              | `jwt` | off | — | — | auth |\ntext\n| `y` | 2 |\n";
    let rows = doc_rows(md);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].name, "port");
    assert_eq!(rows[0].base_default(), "5007");
    assert_eq!(rows[0].default_for("`wse serve`"), Some("1"));
    assert_eq!(rows[0].default_for("Python"), None);
    assert_eq!(rows[0].flags, ["--port"]);
    assert_eq!(rows[0].keywords, ["port", "p2"]);
    assert!(rows[1].flags.is_empty() && rows[1].keywords.is_empty());
}
