//! `wse serve`'s settings: each sets a documented option, under one name
//! for flag, variable and TOML key; precedence; the log and JWT settings.

use std::collections::{BTreeMap, BTreeSet};

use clap::Args as _;

use super::*;

/// The settings that together make the one `jwt` option (a key, and the
/// rules tokens must meet); applied together by `ServeArgs::config`.
const JWT_SETTINGS: &[&str] = &[
    "jwt_secret",
    "jwt_secret_file",
    "jwt_algorithm",
    "jwt_issuer",
    "jwt_audience",
    "jwt_cookie_name",
    "jwt_previous_secret_file",
    "jwt_key_id",
];

/// The settings that together make the one `tls` option (both files).
const TLS_SETTINGS: &[&str] = &["tls_cert", "tls_key"];

/// Options `wse serve` offers no setting for, and why.
const NOT_IN_SERVE: &[&str] = &[
    // Always on in the standalone server (`ServerConfig::standalone`).
    "recovery_enabled",
    "core_subscriptions",
    "server_ready_without_auth",
    // The queue exists for an app; `--bench-app` (hidden) turns it on.
    "event_delivery",
    // `send_event` is an app's call: there is no app to rate-limit.
    "rate_limit_capacity",
    "rate_limit_refill",
    // Kept at their defaults: tuning knobs with no operator use yet.
    "max_handshake_bytes",
    "log.max_pending_bytes",
    "log.max_record_bytes",
    "log.index_interval_bytes",
    "log.maintenance_interval",
    "log.fault_retry_min",
    "log.fault_retry_max",
    // Raised at start from `max_topic_bytes`.
    "log.max_topic_bytes",
    // For tests that simulate a reboot.
    "log.boot_id_path",
];

/// Every setting's argument, by id (the field name).
fn arguments() -> Vec<clap::Arg> {
    Settings::augment_args(clap::Command::new("serve"))
        .get_arguments()
        .cloned()
        .collect()
}

/// Each option and the settings that set it.
fn settings_by_option() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    let mut map: BTreeMap<_, BTreeSet<_>> = BTreeMap::new();
    for (setting, option) in SETTING_OPTIONS {
        map.entry(*option).or_default().insert(*setting);
    }
    map.entry("jwt").or_default().extend(JWT_SETTINGS);
    map.entry("tls").or_default().extend(TLS_SETTINGS);
    map
}

#[test]
fn every_setting_sets_an_option_and_every_option_is_offered_or_excused() {
    let ids: BTreeSet<String> = arguments().iter().map(|a| a.get_id().to_string()).collect();
    let mapped: Vec<&str> = SETTING_OPTIONS
        .iter()
        .map(|(s, _)| *s)
        .chain(JWT_SETTINGS.iter().copied())
        .chain(TLS_SETTINGS.iter().copied())
        .collect();
    let unique: BTreeSet<String> = mapped.iter().map(|s| s.to_string()).collect();
    assert_eq!(unique.len(), mapped.len(), "a setting is mapped twice");
    assert_eq!(
        ids, unique,
        "settings without a mapping, or mappings without a setting"
    );
    let offered = settings_by_option();
    for option in offered.keys() {
        assert!(
            options::find(option).is_some(),
            "{option} is not in OPTIONS"
        );
    }
    let excused: BTreeSet<&str> = NOT_IN_SERVE.iter().copied().collect();
    for o in options::OPTIONS {
        assert!(
            offered.contains_key(o.name) != excused.contains(o.name),
            "{}: offered by a setting, or listed in NOT_IN_SERVE (not both)",
            o.name
        );
    }
    assert!(excused.iter().all(|o| options::find(o).is_some()));
}

#[test]
fn flag_variable_and_toml_key_are_the_setting_name() {
    for arg in arguments() {
        let id = arg.get_id().to_string();
        assert_eq!(arg.get_long(), Some(id.replace('_', "-").as_str()), "{id}");
        let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
        assert_eq!(env, Some(format!("WSE_{}", id.to_uppercase())), "{id}");
    }
    // TOML keys are serde's field names: one per setting, no others.
    assert!(toml::from_str::<Settings>("max_connections = 7").is_ok());
    assert!(toml::from_str::<Settings>("max-connections = 7").is_err());
}

#[test]
fn the_docs_name_the_flags_of_every_option() {
    let rows = options::doc_rows(include_str!("../../../docs/OPERATIONS.md"));
    let offered = settings_by_option();
    assert_eq!(rows.len(), options::OPTIONS.len());
    for row in rows {
        let flags: BTreeSet<String> = offered
            .get(row.name.as_str())
            .into_iter()
            .flatten()
            .map(|s| format!("--{}", s.replace('_', "-")))
            .collect();
        let documented: BTreeSet<String> = row.flags.iter().cloned().collect();
        assert_eq!(documented, flags, "{}: the `wse serve` column", row.name);
    }
}

#[test]
fn help_shows_the_defaults_of_the_options_table() {
    let mut cmd = with_defaults_in_help(Settings::augment_args(clap::Command::new("serve")));
    let help = cmd.render_help().to_string();
    assert!(
        help.contains("Registered connections at most [default: 100,000]"),
        "{help}"
    );
    assert!(help.contains("[default: wse-data]"), "{help}");
    assert!(help.contains("[default: access_token]"), "{help}");
    let defaults = help.matches("[default: ").count();
    assert_eq!(defaults, SETTING_OPTIONS.len() + 2, "{help}");
}

/// Arguments with these settings as flags and no config file.
fn with(settings: Settings) -> ServeArgs {
    ServeArgs {
        settings,
        ..Default::default()
    }
}

#[test]
fn flags_override_the_file_and_the_file_overrides_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wse.toml");
    std::fs::write(
        &path,
        "port = 6000\nhost = \"0.0.0.0\"\ndurability = \"always\"\n",
    )
    .unwrap();
    let c = ServeArgs {
        config: Some(path.clone()),
        settings: Settings {
            port: Some(7000),
            ..Default::default()
        },
        ..Default::default()
    }
    .config()
    .unwrap();
    assert_eq!((c.host.as_str(), c.port), ("0.0.0.0", 7000));
    assert_eq!(c.log.durability, Durability::Always);
    assert!(c.recovery_enabled && c.core_subscriptions && c.server_ready_without_auth);
    assert!(c.log.retention.max_bytes.is_some() && c.log.retention.max_age.is_some());
    std::fs::write(&path, "retention_bytes = 0\nretention_seconds = 0\n").unwrap();
    let unlimited = ServeArgs {
        config: Some(path.clone()),
        ..Default::default()
    }
    .config()
    .unwrap();
    assert_eq!(unlimited.log.retention.max_bytes, None);
    assert_eq!(unlimited.log.retention.max_age, None);
    std::fs::write(&path, "prot = 1\n").unwrap();
    let err = ServeArgs {
        config: Some(path),
        ..Default::default()
    }
    .config()
    .unwrap_err();
    assert!(err.to_string().contains("prot"), "{err}");
    let short = with(Settings {
        jwt_secret: Some("too short".into()),
        ..Default::default()
    })
    .config()
    .unwrap_err();
    assert!(short.to_string().contains("32"), "{short}");
}

#[test]
fn log_settings_reach_the_log_and_bad_ones_are_refused() {
    let c = with(Settings {
        retention_records: Some(500),
        segment_bytes: Some(1 << 20),
        segment_seconds: Some(60),
        tail_records: Some(64),
        tail_memory_budget: Some(1 << 20),
        tail_idle_seconds: Some(5),
        max_open_files: Some(64),
        ..Default::default()
    })
    .config()
    .unwrap();
    let log = &c.log;
    assert_eq!(log.retention.max_records, Some(500));
    assert_eq!(log.segment_max_bytes, 1 << 20);
    assert_eq!(log.segment_max_age, Duration::from_secs(60));
    assert_eq!(log.tail.records_per_topic, 64);
    assert_eq!(log.tail.memory_budget, 1 << 20);
    assert_eq!(log.tail.idle_ttl, Duration::from_secs(5));
    assert_eq!(log.max_open_files, 64);
    for (bad, words) in [
        (
            Settings {
                segment_bytes: Some(10),
                ..Default::default()
            },
            "segment_max_bytes",
        ),
        (
            Settings {
                segment_seconds: Some(0),
                ..Default::default()
            },
            "segment_max_age",
        ),
        (
            Settings {
                max_open_files: Some(1),
                ..Default::default()
            },
            "max_open_files",
        ),
    ] {
        let err = with(bad).config().unwrap_err();
        assert!(err.to_string().contains(words), "{err}");
    }
}

#[test]
fn rotation_accepts_the_previous_key_and_the_current_one_with_its_kid() {
    let dir = tempfile::tempdir().unwrap();
    let old = "o".repeat(32);
    let new = "n".repeat(32);
    let previous = dir.path().join("previous.key");
    std::fs::write(&previous, &old).unwrap();
    let c = with(Settings {
        jwt_secret: Some(new.clone()),
        jwt_previous_secret_file: Some(previous),
        jwt_key_id: Some("k2".into()),
        ..Default::default()
    })
    .config()
    .unwrap();
    let jwt = c.jwt.expect("auth is on");
    let claims = serde_json::json!({"sub": "alice", "exp": 4_000_000_000u64});
    let token = |key: &str, kid: Option<&str>| {
        let t = wse::auth::encode(&claims, key.as_bytes(), "HS256", kid).unwrap();
        format!("Bearer {t}")
    };
    assert!(
        jwt.authenticate(None, Some(&token(&new, Some("k2"))))
            .is_ok()
    );
    assert!(jwt.authenticate(None, Some(&token(&old, None))).is_ok());
    assert!(jwt.authenticate(None, Some(&token(&new, None))).is_err());
    assert!(
        jwt.authenticate(None, Some(&token(&"x".repeat(32), Some("k2"))))
            .is_err()
    );
    let missing = with(Settings {
        jwt_secret: Some(new),
        jwt_previous_secret_file: Some(dir.path().join("absent")),
        ..Default::default()
    })
    .config()
    .unwrap_err();
    assert!(missing.to_string().contains("absent"), "{missing}");
}

#[test]
fn every_bool_setting_is_a_switch_and_takes_a_value_too() {
    use clap::{CommandFactory, FromArgMatches, Parser};
    let bools: Vec<String> = arguments()
        .iter()
        .filter(|a| {
            let values: BTreeSet<String> = a
                .get_possible_values()
                .iter()
                .map(|v| v.get_name().to_owned())
                .collect();
            values == BTreeSet::from(["true".to_owned(), "false".to_owned()])
        })
        .map(|a| a.get_id().to_string())
        .collect();
    assert!(bools.contains(&"client_publish".to_owned()), "{bools:?}");
    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        settings: Settings,
    }
    for id in &bools {
        let flag = format!("--{}", id.replace('_', "-"));
        for (args, want) in [
            (vec![flag.clone()], "true"),
            (vec![flag.clone(), "false".into()], "false"),
            (vec![format!("{flag}=true")], "true"),
        ] {
            let argv = std::iter::once("serve".to_owned()).chain(args.clone());
            let matches = Serve::command()
                .try_get_matches_from(argv)
                .unwrap_or_else(|e| panic!("{args:?}: {e}"));
            let parsed = Serve::from_arg_matches(&matches).unwrap();
            let got = format!("{:?}", parsed.settings).contains(&format!("{id}: Some({want})"));
            assert!(got, "{args:?} should set {id} to {want}");
        }
    }
}
