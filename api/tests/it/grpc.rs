//! gRPC ingestion with a real tonic client against the running service and
//! the real broker: what reaches the topic, and each refusal's status code
//! (the codes the HTTP routes' statuses map to).

use std::time::Duration;

use eventpulse_api::config::Layer;
use eventpulse_events::grpc::v1::event_service_client::EventServiceClient;
use eventpulse_events::grpc::v1::{Event, EventBatch, EventFields};
use eventpulse_events::grpc::{json_to_struct, v1};
use prost_types::Timestamp;
use serde_json::json;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_types::StatusExt as _;
use uuid::Uuid;

use crate::support::{delete_topics, read_topic, Api, Stack, KEY};

async fn channel(api: &Api) -> Channel {
    Channel::from_shared(api.grpc.clone())
        .expect("an endpoint URL")
        .connect()
        .await
        .expect("gRPC connects")
}

async fn client(api: &Api) -> EventServiceClient<Channel> {
    EventServiceClient::new(channel(api).await)
}

fn with_key<T>(message: T, key: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(key) = key {
        let key: MetadataValue<_> = key.parse().expect("ascii key");
        request.metadata_mut().insert("x-api-key", key);
    }
    request
}

/// A valid logout, as fields (`duration` a whole number, as JSON needs it).
fn logout_fields(id: Uuid, user: &str) -> Event {
    let now = chrono::Utc::now() - chrono::Duration::minutes(1);
    let payload = json!({"userId": user, "duration": 1800, "ip": "10.0.0.7"});
    Event {
        form: Some(v1::event::Form::Fields(EventFields {
            event_id: id.to_string(),
            r#type: "logout".into(),
            timestamp: Some(Timestamp {
                seconds: now.timestamp(),
                nanos: 0,
            }),
            payload: Some(json_to_struct(payload.as_object().expect("object"))),
        })),
    }
}

/// A valid page_view as JSON text, laid out oddly so byte-exact forwarding shows.
fn page_view_json(id: Uuid, user: &str) -> String {
    let at = (chrono::Utc::now() - chrono::Duration::minutes(5)).to_rfc3339();
    format!(
        r#"{{ "type": "page_view",  "eventId":"{id}", "timestamp": "{at}", "payload": {{"userId": "{user}", "page": "/g"}} }}"#
    )
}

/// The `events[i]` and reason code of each violation in a BadRequest.
fn violations(status: &Status) -> Vec<(String, String)> {
    let details = status.get_error_details();
    let request = details.bad_request().expect("a BadRequest in the details");
    request
        .field_violations
        .iter()
        .map(|v| {
            let reason = v.description.split(':').next().unwrap_or_default();
            (v.field.clone(), reason.to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_and_push_batch_are_acked_after_the_broker_has_the_events() {
    let stack = Stack::new(1).await;
    let api = stack.start_api(stack.layer()).await;
    let mut events = client(&api).await;

    let id = Uuid::new_v4();
    let ack = events
        .push(with_key(logout_fields(id, "alice"), Some(KEY)))
        .await
        .expect("Push accepted")
        .into_inner();
    assert_eq!(ack.event_id, id.to_string());

    let batch: Vec<(Uuid, String)> = ["bob", "carol", "bob"]
        .iter()
        .map(|user| {
            let id = Uuid::new_v4();
            (id, page_view_json(id, user))
        })
        .collect();
    let request = EventBatch {
        events: batch
            .iter()
            .map(|(_, json)| Event::json(json.clone()))
            .collect(),
    };
    let ack = events
        .push_batch(with_key(request, Some(KEY)))
        .await
        .expect("PushBatch accepted")
        .into_inner();
    let expected_ids: Vec<String> = batch.iter().map(|(id, _)| id.to_string()).collect();
    assert_eq!(ack.event_ids, expected_ids);

    let topic = read_topic(&stack.topic, 4);
    assert_eq!(topic.len(), 4, "{topic:?}");
    // The fields became the wire format's JSON, keyed by the user.
    let (key, value) = &topic[0];
    assert_eq!(key, "alice");
    let pushed: serde_json::Value = serde_json::from_slice(value).expect("JSON");
    assert_eq!(pushed["eventId"], id.to_string());
    assert_eq!(pushed["type"], "logout");
    assert_eq!(pushed["payload"]["duration"], 1800);
    // JSON events went through byte for byte, in order.
    let rest: Vec<(String, Vec<u8>)> = ["bob", "carol", "bob"]
        .iter()
        .zip(&batch)
        .map(|(user, (_, json))| ((*user).to_owned(), json.clone().into_bytes()))
        .collect();
    assert_eq!(topic[1..], rest[..]);
    let ok = api
        .metric("eventpulse_api_grpc_requests_total", "code=\"OK\"")
        .await;
    assert_eq!(ok, 2.0);
    api.stop().await;
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_event_refuses_the_whole_batch_with_each_reason() {
    let stack = Stack::new(1).await;
    let layer = Layer {
        max_body_bytes: Some(4096),
        ..stack.layer()
    };
    let api = stack.start_api(layer).await;
    let mut events = client(&api).await;

    let mut unknown_type = logout_fields(Uuid::new_v4(), "dave");
    let Some(v1::event::Form::Fields(fields)) = &mut unknown_type.form else {
        unreachable!("built as fields");
    };
    fields.r#type = "purchase".into();
    let mut no_timestamp = logout_fields(Uuid::new_v4(), "dave");
    let Some(v1::event::Form::Fields(fields)) = &mut no_timestamp.form else {
        unreachable!("built as fields");
    };
    fields.timestamp = None;
    let batch = EventBatch {
        events: vec![
            logout_fields(Uuid::new_v4(), "dave"),
            unknown_type,
            no_timestamp,
            Event::json("{not json"),
            Event { form: None },
        ],
    };
    let status = events
        .push_batch(with_key(batch, Some(KEY)))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let expected = [
        ("events[1]", "unknown_event_type"),
        ("events[2]", "missing_field"),
        ("events[3]", "malformed_json"),
        ("events[4]", "malformed_json"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(f, r)| ((*f).to_owned(), (*r).to_owned()))
        .collect();
    assert_eq!(violations(&status), expected);

    let empty = events
        .push_batch(with_key(EventBatch { events: vec![] }, Some(KEY)))
        .await
        .expect_err("an empty batch is refused");
    assert_eq!(empty.code(), Code::InvalidArgument, "{empty:?}");
    let huge = Event::json(format!(r#"{{"pad": "{}"}}"#, "x".repeat(8192)));
    let too_large = events
        .push(with_key(huge, Some(KEY)))
        .await
        .expect_err("over --max-body-bytes");
    assert_eq!(too_large.code(), Code::ResourceExhausted, "{too_large:?}");

    // Nothing of the refused requests reached the topic.
    assert!(read_topic(&stack.topic, 0).is_empty());
    let invalid = api
        .metric(
            "eventpulse_api_grpc_requests_total",
            "code=\"INVALID_ARGUMENT\"",
        )
        .await;
    assert_eq!(invalid, 2.0);
    api.stop().await;
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_need_a_known_api_key_and_health_and_reflection_answer() {
    let stack = Stack::new(1).await;
    let api = stack.start_api(stack.layer()).await;
    let mut events = client(&api).await;
    for key in [None, Some("not-the-key-0123456789")] {
        let status = events
            .push(with_key(logout_fields(Uuid::new_v4(), "erin"), key))
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::Unauthenticated, "{key:?}: {status:?}");
        assert_eq!(
            status.message(),
            "missing or invalid API key (metadata x-api-key)"
        );
    }
    assert_eq!(health(&api).await, ServingStatus::Serving);
    assert!(reflected_services(&api)
        .await
        .contains(&"eventpulse.v1.EventService".to_owned()));
    api.stop().await;

    let read_only = stack
        .start_api(Layer {
            api_keys: None,
            ..stack.layer()
        })
        .await;
    let status = client(&read_only)
        .await
        .push(with_key(logout_fields(Uuid::new_v4(), "erin"), Some(KEY)))
        .await
        .expect_err("ingestion disabled");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(health(&read_only).await, ServingStatus::NotServing);
    assert!(read_topic(&stack.topic, 0).is_empty());
    read_only.stop().await;
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_does_not_acknowledge_is_unavailable() {
    let stack = Stack::new(1).await;
    let layer = Layer {
        produce_timeout_ms: Some(2000),
        ..stack.layer()
    };
    let api = stack.start_api(layer).await;
    delete_topics(std::slice::from_ref(&stack.topic)).await;
    let status = client(&api)
        .await
        .push(with_key(logout_fields(Uuid::new_v4(), "frank"), Some(KEY)))
        .await
        .expect_err("not acknowledged");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(status.message(), "kafka is unavailable, try again later");
    let failures = api
        .metric(
            "eventpulse_api_dependency_errors_total",
            "dependency=\"kafka\"",
        )
        .await;
    assert_eq!(failures, 1.0);
    api.stop().await;
    stack.finish().await;
}

async fn health(api: &Api) -> ServingStatus {
    let mut health = HealthClient::new(channel(api).await);
    let request = HealthCheckRequest {
        service: "eventpulse.v1.EventService".into(),
    };
    let answer = tokio::time::timeout(Duration::from_secs(30), health.check(request))
        .await
        .expect("health answers")
        .expect("health check");
    ServingStatus::try_from(answer.into_inner().status).expect("a known status")
}

/// The services reflection lists, as `grpcurl list` shows them.
async fn reflected_services(api: &Api) -> Vec<String> {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let mut reflection = ServerReflectionClient::new(channel(api).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection stream")
        .into_inner();
    let answer = answers
        .message()
        .await
        .expect("reflection answer")
        .expect("one answer");
    match answer.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("not a service list: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_invalid_events_still_reach_the_client_as_invalid_argument() {
    let stack = Stack::new(1).await;
    let api = stack.start_api(stack.layer()).await;
    // Each reason names its event; 400 of them would pass 16 KiB of trailer.
    let batch = EventBatch {
        events: (0..400).map(|_| Event::json("{not json")).collect(),
    };
    let status = client(&api)
        .await
        .push_batch(with_key(batch, Some(KEY)))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let listed = violations(&status);
    assert!(!listed.is_empty() && listed.len() < 400, "{}", listed.len());
    assert_eq!(
        listed[0],
        ("events[0]".to_owned(), "malformed_json".to_owned())
    );
    assert!(
        status.message().contains("the first"),
        "{}",
        status.message()
    );
    api.stop().await;
    stack.finish().await;
}
