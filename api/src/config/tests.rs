//! Layering, defaults, ranges, and secrets that never print.

use super::*;

fn key(text: &str) -> Secret {
    text.parse().expect("any string is a secret")
}

#[test]
fn defaults_suit_the_local_stack() {
    let settings = Settings::from_layer(Layer::default()).expect("defaults are valid");
    assert_eq!(settings.api_addr.to_string(), "127.0.0.1:8080");
    assert_eq!(settings.grpc_addr.to_string(), "127.0.0.1:50051");
    assert_eq!(settings.topic, "events");
    assert!(settings.api_keys.is_empty());
    assert_eq!(settings.max_batch_events, 500);
    assert_eq!(settings.limits, Limits::default());
}

#[test]
fn upper_layers_win_field_by_field() {
    let file = Layer {
        topic: Some("from-file".into()),
        max_batch_events: Some(7),
        ..Layer::default()
    };
    let flags = Layer {
        topic: Some("from-flags".into()),
        ..Layer::default()
    };
    let settings = Settings::from_layer(flags.over(file)).expect("valid");
    assert_eq!(settings.topic, "from-flags");
    assert_eq!(settings.max_batch_events, 7);
}

#[test]
fn errors_name_the_flag_and_the_variable() {
    let layer = Layer {
        max_batch_events: Some(0),
        ..Layer::default()
    };
    let message = Settings::from_layer(layer).unwrap_err().to_string();
    assert!(message.contains("--max-batch-events (EVENTPULSE_MAX_BATCH_EVENTS)"));
}

#[test]
fn short_keys_are_refused_without_echoing_them() {
    let layer = Layer {
        api_keys: Some(vec![key("0123456789abcdef"), key("tiny-secret")]),
        ..Layer::default()
    };
    let message = Settings::from_layer(layer).unwrap_err().to_string();
    assert!(message.contains("key #2"), "{message}");
    assert!(!message.contains("tiny-secret"), "{message}");
}

#[test]
fn keys_never_show_in_debug_output() {
    let layer = Layer {
        api_keys: Some(vec![key("super-secret-key-value")]),
        ..Layer::default()
    };
    let settings = Settings::from_layer(layer.clone()).expect("valid");
    for text in [format!("{layer:?}"), format!("{settings:?}")] {
        assert!(!text.contains("super-secret"), "{text}");
    }
}

#[test]
fn file_layer_reads_toml() {
    let layer: Layer =
        toml::from_str("topic = \"t\"\napi_keys = [\"0123456789abcdef\"]\n").expect("toml");
    assert_eq!(layer.topic.as_deref(), Some("t"));
    assert_eq!(layer.api_keys.map(|k| k.len()), Some(1));
}

#[test]
fn an_empty_key_list_means_no_key() {
    let settings = Settings::from_layer(Layer {
        api_keys: Some(vec![key(""), key("  ")]),
        ..Layer::default()
    })
    .expect("empty entries are no keys");
    assert!(settings.api_keys.is_empty());
}

#[test]
fn stats_come_from_the_rollups_unless_raw_is_asked_for() {
    let settings = Settings::from_layer(Layer::default()).expect("defaults are valid");
    assert_eq!(settings.stats_source, StatsSource::Rollups);
    // Only the flag is taken from the command line: other EVENTPULSE_*
    // variables of the test's environment must not matter here.
    let cli = Cli::try_parse_from(["eventpulse-api", "--stats-source", "raw"]).expect("parses");
    let settings = Settings::from_layer(Layer {
        stats_source: cli.layer.stats_source,
        ..Layer::default()
    })
    .expect("valid");
    assert_eq!(settings.stats_source, StatsSource::Raw);
    let layer: Layer = toml::from_str("stats_source = \"rollups\"\n").expect("toml");
    assert_eq!(layer.stats_source, Some(StatsSource::Rollups));
    let wrong = Cli::try_parse_from(["eventpulse-api", "--stats-source", "cache"]).unwrap_err();
    assert!(wrong.to_string().contains("rollups"), "{wrong}");
}
