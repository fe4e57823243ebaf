//! A population of users, each going through sessions, turned into [`Event`]s.
//!
//! Each user has a fixed device, a UTC offset and an IP (renewed at some
//! logins, as for mobile users). A session is: login, a landing page view,
//! then a random number of page views, button clicks and form submits on the
//! current page, then a logout whose `duration` is the time since the login
//! on the simulated clock. Which user acts next is drawn uniformly, so many
//! sessions interleave the way concurrent visitors do; since the Kafka key is
//! the user id, each session still reads in order within its partition.

use std::net::IpAddr;

use chrono::{DateTime, FixedOffset, Utc};
use eventpulse_events::{
    ButtonClickPayload, Event, EventBody, EventType, FormSubmitPayload, LoginPayload,
    LogoutPayload, PageViewPayload,
};
use rand::Rng;
use uuid::Uuid;

use crate::fake_data;

/// Actions (after the landing page) in one session.
const ACTIONS_PER_SESSION: std::ops::RangeInclusive<u32> = 2..=25;
/// Chance that a user logs in from a new IP address.
const NEW_IP_AT_LOGIN: f64 = 0.3;
/// Chance that a page view carries the device.
const PAGE_VIEW_DEVICE: f64 = 0.7;

struct User {
    id: String,
    device: &'static str,
    offset: FixedOffset,
    ip: IpAddr,
    session: Option<Session>,
}

struct Session {
    started: DateTime<Utc>,
    /// `None` until the landing page view.
    page: Option<String>,
    actions_left: u32,
}

pub struct Simulator {
    users: Vec<User>,
}

/// A v4 UUID whose random bits come from `rng`, so seeded runs repeat their ids.
pub fn event_id<R: Rng + ?Sized>(rng: &mut R) -> Uuid {
    uuid::Builder::from_random_bytes(rng.random()).into_uuid()
}

impl Simulator {
    /// `users` users named `user-000000` upwards, all logged out.
    pub fn new<R: Rng + ?Sized>(users: u64, rng: &mut R) -> Self {
        let users = (0..users)
            .map(|n| User {
                id: format!("user-{n:06}"),
                device: fake_data::device(rng),
                offset: fake_data::utc_offset(rng),
                ip: fake_data::ip_address(rng),
                session: None,
            })
            .collect();
        Self { users }
    }

    /// The next thing some user does, stamped `at`.
    pub fn next_event<R: Rng + ?Sized>(&mut self, rng: &mut R, at: DateTime<Utc>) -> Event {
        let index = rng.random_range(0..self.users.len());
        let user = &mut self.users[index];
        let body = match user.session.take() {
            None => login(user, rng, at),
            Some(session) => continue_session(user, session, rng, at),
        };
        Event {
            event_id: event_id(rng),
            timestamp: at.with_timezone(&user.offset),
            body,
        }
    }

    /// A plausible event of type `kind` for a random user that does not move
    /// any session along: the raw material for invalid records, which the
    /// consumer will never store and so must not shape the sessions it sees.
    pub fn stray_event<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        at: DateTime<Utc>,
        kind: EventType,
    ) -> Event {
        let user = &self.users[rng.random_range(0..self.users.len())];
        let user_id = user.id.clone();
        let body = match kind {
            EventType::Login => EventBody::Login(LoginPayload {
                user_id,
                ip: user.ip,
                device: user.device.to_string(),
            }),
            EventType::Logout => EventBody::Logout(LogoutPayload {
                user_id,
                duration: rng.random_range(1..3600),
                ip: user.ip,
            }),
            EventType::PageView => page_view(user_id, fake_data::page_path(rng), None, None),
            EventType::ButtonClick => button_click(user_id, fake_data::page_path(rng), rng),
            EventType::FormSubmit => form_submit(user_id, rng),
        };
        Event {
            event_id: event_id(rng),
            timestamp: at.with_timezone(&user.offset),
            body,
        }
    }
}

fn login<R: Rng + ?Sized>(user: &mut User, rng: &mut R, at: DateTime<Utc>) -> EventBody {
    if rng.random_bool(NEW_IP_AT_LOGIN) {
        user.ip = fake_data::ip_address(rng);
    }
    user.session = Some(Session {
        started: at,
        page: None,
        actions_left: rng.random_range(ACTIONS_PER_SESSION),
    });
    EventBody::Login(LoginPayload {
        user_id: user.id.clone(),
        ip: user.ip,
        device: user.device.to_string(),
    })
}

/// The next step of an open session; puts the session back unless it ends.
fn continue_session<R: Rng + ?Sized>(
    user: &mut User,
    mut session: Session,
    rng: &mut R,
    at: DateTime<Utc>,
) -> EventBody {
    let user_id = user.id.clone();
    let Some(current) = session.page.clone() else {
        let landing = fake_data::page_path(rng);
        session.page = Some(landing.clone());
        let device = rng
            .random_bool(PAGE_VIEW_DEVICE)
            .then(|| user.device.to_string());
        user.session = Some(session);
        return page_view(user_id, landing, fake_data::external_referrer(rng), device);
    };
    if session.actions_left == 0 {
        let duration = (at - session.started).num_seconds().max(0) as u64;
        return EventBody::Logout(LogoutPayload {
            user_id,
            duration,
            ip: user.ip,
        });
    }
    session.actions_left -= 1;
    let body = match rng.random_range(0..100) {
        0..=54 => {
            let next = fake_data::page_path(rng);
            session.page = Some(next.clone());
            let device = rng
                .random_bool(PAGE_VIEW_DEVICE)
                .then(|| user.device.to_string());
            page_view(user_id, next, Some(fake_data::site_url(&current)), device)
        }
        55..=84 => button_click(user_id, current, rng),
        _ => form_submit(user_id, rng),
    };
    user.session = Some(session);
    body
}

fn page_view(
    user_id: String,
    page: String,
    referrer: Option<String>,
    device: Option<String>,
) -> EventBody {
    EventBody::PageView(PageViewPayload {
        user_id,
        page,
        referrer,
        device,
    })
}

fn button_click<R: Rng + ?Sized>(user_id: String, page: String, rng: &mut R) -> EventBody {
    EventBody::ButtonClick(ButtonClickPayload {
        user_id,
        button_id: fake_data::button_id(rng),
        page,
    })
}

fn form_submit<R: Rng + ?Sized>(user_id: String, rng: &mut R) -> EventBody {
    let (form_id, fields) = fake_data::form(rng);
    EventBody::FormSubmit(FormSubmitPayload {
        user_id,
        form_id,
        fields,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use chrono::TimeDelta;
    use eventpulse_events::{validate, Limits};
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    fn simulate(users: u64, events: usize, seed: u64) -> Vec<Event> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut sim = Simulator::new(users, &mut rng);
        let start: DateTime<Utc> = "2026-02-01T00:00:00Z".parse().unwrap();
        (0..events)
            .map(|i| sim.next_event(&mut rng, start + TimeDelta::milliseconds(i as i64 * 7)))
            .collect()
    }

    #[test]
    fn generated_events_always_pass_validation() {
        let events = simulate(50, 20_000, 3);
        for event in &events {
            let now = event.timestamp.with_timezone(&Utc);
            let checked = validate(&event.to_json(), &Limits::default(), now);
            assert!(
                checked.is_ok(),
                "{checked:?} for {}",
                String::from_utf8_lossy(&event.to_json())
            );
        }
        for kind in EventType::ALL {
            assert!(
                events.iter().any(|e| e.event_type() == kind),
                "no {kind} in 20000 events"
            );
        }
    }

    #[test]
    fn sessions_start_with_login_and_logout_duration_matches() {
        let events = simulate(20, 20_000, 4);
        let mut login_at: HashMap<&str, DateTime<FixedOffset>> = HashMap::new();
        let mut logouts = 0;
        for event in &events {
            let user = event.user_id();
            match &event.body {
                EventBody::Login(_) => {
                    assert!(
                        login_at.insert(user, event.timestamp).is_none(),
                        "{user} logged in twice"
                    );
                }
                EventBody::Logout(logout) => {
                    let started = login_at.remove(user).expect("logout without login");
                    let elapsed = (event.timestamp - started).num_seconds() as u64;
                    assert_eq!(logout.duration, elapsed);
                    logouts += 1;
                }
                _ => assert!(login_at.contains_key(user), "{user} acted while logged out"),
            }
        }
        assert!(logouts > 100, "only {logouts} sessions ended");
    }

    #[test]
    fn stray_events_leave_sessions_alone() {
        let mut rng = StdRng::seed_from_u64(5);
        let sim = Simulator::new(3, &mut rng);
        let at = Utc::now();
        for kind in EventType::ALL {
            let event = sim.stray_event(&mut rng, at, kind);
            assert_eq!(event.event_type(), kind);
            assert!(validate(&event.to_json(), &Limits::default(), at).is_ok());
        }
        assert!(sim.users.iter().all(|u| u.session.is_none()));
    }
}
