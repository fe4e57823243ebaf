//! Whatever the typed wire structs can express, validation accepts, and the
//! validated event carries the same id, type, user and instant.

use std::collections::BTreeMap;
use std::net::IpAddr;

use chrono::{DateTime, Duration, FixedOffset, Utc};
use eventpulse_events::*;
use proptest::prelude::*;
use uuid::Uuid;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9/ _.é-]{0,40}"
}

fn body() -> impl Strategy<Value = EventBody> {
    let user = "[a-z0-9-]{1,128}";
    let ip = any::<IpAddr>();
    prop_oneof![
        (user, ip.clone(), text()).prop_map(|(user_id, ip, device)| EventBody::Login(
            LoginPayload {
                user_id,
                ip,
                device
            }
        )),
        (user, any::<u64>(), ip).prop_map(|(user_id, duration, ip)| EventBody::Logout(
            LogoutPayload {
                user_id,
                duration,
                ip
            }
        )),
        (
            user,
            text(),
            proptest::option::of(text()),
            proptest::option::of(text())
        )
            .prop_map(|(user_id, page, referrer, device)| EventBody::PageView(
                PageViewPayload {
                    user_id,
                    page,
                    referrer,
                    device
                }
            )),
        (user, text(), text()).prop_map(|(user_id, button_id, page)| EventBody::ButtonClick(
            ButtonClickPayload {
                user_id,
                button_id,
                page
            }
        )),
        (
            user,
            text(),
            proptest::collection::btree_map(text(), text(), 0..10)
        )
            .prop_map(
                |(user_id, form_id, fields): (String, String, BTreeMap<String, String>)| {
                    EventBody::FormSubmit(FormSubmitPayload {
                        user_id,
                        form_id,
                        fields,
                    })
                }
            ),
    ]
}

proptest! {
    #[test]
    fn typed_events_always_validate(
        id in any::<u128>(),
        age_secs in 0i64..86_400 * 300,
        offset_hours in -12i32..=12,
        body in body(),
    ) {
        let offset = FixedOffset::east_opt(offset_hours * 3600).unwrap();
        let at = (now() - Duration::seconds(age_secs)).with_timezone(&offset);
        let event = Event { event_id: Uuid::from_u128(id), timestamp: at, body };
        let valid = validate(&event.to_json(), &Limits::default(), now())
            .unwrap_or_else(|r| panic!("rejected {event:?}: {r}"));
        prop_assert_eq!(valid.event_id, event.event_id);
        prop_assert_eq!(valid.event_type, event.event_type());
        prop_assert_eq!(valid.user_id.as_str(), event.user_id());
        prop_assert_eq!(valid.occurred_at, at.with_timezone(&Utc));
    }
}
