use super::*;

fn parse(args: &[&str]) -> Result<Settings, ConfigError> {
    let mut argv = vec!["eventpulse-consumer"];
    argv.extend_from_slice(args);
    Settings::load(&Cli::try_parse_from(argv).expect("flags parse"))
}

#[test]
fn defaults_point_at_the_local_stack() {
    let settings = Settings::from_layer(Layer::default()).unwrap();
    assert_eq!(settings.brokers, "127.0.0.1:9092");
    assert_eq!(settings.topic, "events");
    assert_eq!(settings.dlq_topic, "events.dlq");
    assert_eq!(settings.batch_size, 5000);
}

#[test]
fn flags_win_over_the_file() {
    let dir = std::env::temp_dir().join(uuid::Uuid::new_v4().to_string());
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("consumer.toml");
    std::fs::write(&file, "batch_size = 10\ntopic = \"from-file\"\n").unwrap();
    let settings = parse(&["--config", file.to_str().unwrap(), "--batch-size", "20"]).unwrap();
    assert_eq!(settings.batch_size, 20);
    assert_eq!(settings.topic, "from-file");
}

#[test]
fn unknown_file_keys_are_named() {
    let file = std::env::temp_dir().join(format!("{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&file, "batch_sise = 10\n").unwrap();
    let err = parse(&["--config", file.to_str().unwrap()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("batch_sise"), "{err}");
}

#[test]
fn out_of_range_values_name_flag_and_variable() {
    let err = parse(&["--batch-size", "0"]).unwrap_err().to_string();
    assert_eq!(
        err,
        "invalid setting --batch-size (EVENTPULSE_BATCH_SIZE): must be between 1 and 10000, got 0"
    );
}

#[test]
fn bad_urls_are_rejected_without_echoing_them() {
    let err = parse(&["--database-url", "mysql://u:hunter2@h/db"])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--database-url") && !err.contains("hunter2"),
        "{err}"
    );
}

#[test]
fn kafka_properties_need_key_and_value() {
    let settings = parse(&["-X", "fetch.min.bytes=1", "-X", "debug=broker,topic"]).unwrap();
    assert_eq!(
        settings.kafka_properties[1],
        ("debug".to_owned(), "broker,topic".to_owned())
    );
    assert!(parse(&["-X", "novalue"]).is_err());
}

#[test]
fn retention_is_off_by_default_and_caps_the_event_age() {
    let settings = Settings::from_layer(Layer::default()).unwrap();
    assert_eq!(settings.retention_days, None);
    assert_eq!(settings.partition_days, 1);
    assert_eq!(settings.limits.max_age, chrono::Duration::days(365));
    let settings = parse(&["--retention-days", "30", "--partition-days", "7"]).unwrap();
    assert_eq!(settings.retention_days, Some(30));
    assert_eq!(settings.partition_days, 7);
    assert_eq!(settings.limits.max_age, chrono::Duration::days(30));
    let err = parse(&["--partition-days", "0"]).unwrap_err().to_string();
    assert!(
        err.contains("--partition-days") && err.contains("EVENTPULSE_PARTITION_DAYS"),
        "{err}"
    );
}

#[test]
fn rows_go_in_by_copy_unless_unnest_is_asked_for() {
    use crate::event_rows::WriteMethod;
    let settings = Settings::from_layer(Layer::default()).unwrap();
    assert_eq!(settings.write_method, WriteMethod::Copy);
    let settings = parse(&["--write-method", "unnest"]).unwrap();
    assert_eq!(settings.write_method, WriteMethod::Unnest);
    let refused = Cli::try_parse_from(["eventpulse-consumer", "--write-method", "insert"]);
    assert!(refused.unwrap_err().to_string().contains("copy, unnest"));
}

#[test]
fn one_flush_lane_unless_asked() {
    let settings = Settings::from_layer(Layer::default()).unwrap();
    assert_eq!(settings.flush_lanes, 1);
    assert_eq!(parse(&["--flush-lanes", "3"]).unwrap().flush_lanes, 3);
    let err = parse(&["--flush-lanes", "0"]).unwrap_err().to_string();
    assert!(err.contains("--flush-lanes"), "{err}");
}
