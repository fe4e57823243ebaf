//! Typed events as they travel on the wire. The producer builds these and
//! serialises them with [`Event::to_json`]; serde's adjacently tagged enum gives
//! exactly the `{"type": ..., "payload": {...}}` shape of the wire format.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The five kinds of user activity eventpulse knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    Login,
    Logout,
    PageView,
    ButtonClick,
    FormSubmit,
}

impl EventType {
    pub const ALL: [EventType; 5] = [
        Self::Login,
        Self::Logout,
        Self::PageView,
        Self::ButtonClick,
        Self::FormSubmit,
    ];

    /// The wire name, also stored in `events.event_type` and used as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Logout => "logout",
            Self::PageView => "page_view",
            Self::ButtonClick => "button_click",
            Self::FormSubmit => "form_submit",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event: envelope fields plus a typed payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub event_id: Uuid,
    /// Kept with its original offset; the consumer stores it as UTC.
    pub timestamp: DateTime<FixedOffset>,
    #[serde(flatten)]
    pub body: EventBody,
}

/// The `type` tag and its `payload`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload", rename_all = "snake_case")]
pub enum EventBody {
    Login(LoginPayload),
    Logout(LogoutPayload),
    PageView(PageViewPayload),
    ButtonClick(ButtonClickPayload),
    FormSubmit(FormSubmitPayload),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginPayload {
    pub user_id: String,
    pub ip: IpAddr,
    pub device: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogoutPayload {
    pub user_id: String,
    /// Session length in seconds.
    pub duration: u64,
    pub ip: IpAddr,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageViewPayload {
    pub user_id: String,
    pub page: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ButtonClickPayload {
    pub user_id: String,
    pub button_id: String,
    pub page: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FormSubmitPayload {
    pub user_id: String,
    pub form_id: String,
    pub fields: BTreeMap<String, String>,
}

impl EventBody {
    pub fn event_type(&self) -> EventType {
        match self {
            Self::Login(_) => EventType::Login,
            Self::Logout(_) => EventType::Logout,
            Self::PageView(_) => EventType::PageView,
            Self::ButtonClick(_) => EventType::ButtonClick,
            Self::FormSubmit(_) => EventType::FormSubmit,
        }
    }

    pub fn user_id(&self) -> &str {
        match self {
            Self::Login(p) => &p.user_id,
            Self::Logout(p) => &p.user_id,
            Self::PageView(p) => &p.user_id,
            Self::ButtonClick(p) => &p.user_id,
            Self::FormSubmit(p) => &p.user_id,
        }
    }
}

impl Event {
    pub fn event_type(&self) -> EventType {
        self.body.event_type()
    }

    /// The user id, which is also the Kafka key (so a user's events stay ordered).
    pub fn user_id(&self) -> &str {
        self.body.user_id()
    }

    /// The wire bytes. Serialising these types cannot fail (no maps with
    /// non-string keys, no floats), so this does not return a `Result`.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("events always serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_to_the_documented_shape() {
        let event = Event {
            event_id: Uuid::nil(),
            timestamp: DateTime::parse_from_rfc3339("2026-01-02T03:04:05+02:00").unwrap(),
            body: EventBody::Logout(LogoutPayload {
                user_id: "u1".into(),
                duration: 42,
                ip: "::1".parse().unwrap(),
            }),
        };
        let value: serde_json::Value = serde_json::from_slice(&event.to_json()).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "eventId": "00000000-0000-0000-0000-000000000000",
                "timestamp": "2026-01-02T03:04:05+02:00",
                "type": "logout",
                "payload": {"userId": "u1", "duration": 42, "ip": "::1"}
            })
        );
        let back: Event = serde_json::from_value(value).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn event_type_names_round_trip() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::parse("purchase"), None);
    }
}
