//! Plausible field values, drawn from the `fake` crate and a small site map.
//!
//! Every function takes the caller's RNG so that one seed decides the whole
//! stream. The simulated site is a shop with a blog and docs: paths, buttons
//! and forms are chosen so that dashboards built on the data look like a real
//! product (a few hot pages, a long tail of product and article slugs).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use chrono::FixedOffset;
use fake::faker::address::en::{CityName, StreetName, ZipCode};
use fake::faker::internet::en::{IPv4, IPv6, SafeEmail, UserAgent};
use fake::faker::lorem::en::{Sentence, Word};
use fake::faker::name::en::{FirstName, LastName};
use fake::faker::phone_number::en::PhoneNumber;
use fake::Fake;
use rand::seq::IndexedRandom;
use rand::Rng;

/// Origin the simulated pages live under; referrers inside the site use it.
pub const SITE: &str = "https://shop.example.com";

/// Share of users (and sessions) on IPv6.
const IPV6_SHARE: f64 = 0.2;

/// UTC offsets users live in, in seconds: the consumer must store every
/// timestamp as UTC whatever offset it was written with.
const UTC_OFFSETS: [i32; 8] = [0, 3600, 7200, -18000, -28800, 19800, 32400, 36000];

pub fn ip_address<R: Rng + ?Sized>(rng: &mut R) -> IpAddr {
    if rng.random_bool(IPV6_SHARE) {
        IpAddr::V6(IPv6().fake_with_rng::<Ipv6Addr, _>(rng))
    } else {
        IpAddr::V4(IPv4().fake_with_rng::<Ipv4Addr, _>(rng))
    }
}

/// A browser user agent string, which is what `device` carries. Borrowed
/// from `fake`'s list, so a million users do not hold a million copies.
pub fn device<R: Rng + ?Sized>(rng: &mut R) -> &'static str {
    UserAgent().fake_with_rng::<&'static str, _>(rng)
}

pub fn utc_offset<R: Rng + ?Sized>(rng: &mut R) -> FixedOffset {
    let seconds = *UTC_OFFSETS.choose(rng).expect("offsets are not empty");
    FixedOffset::east_opt(seconds).expect("offsets are within a day")
}

fn slug<R: Rng + ?Sized>(rng: &mut R) -> String {
    let words = rng.random_range(1..=3);
    (0..words)
        .map(|_| Word().fake_with_rng::<String, _>(rng))
        .collect::<Vec<_>>()
        .join("-")
}

/// A page path. Fixed pages are weighted up so that traffic has hot spots.
pub fn page_path<R: Rng + ?Sized>(rng: &mut R) -> String {
    const FIXED: [&str; 8] = [
        "/",
        "/products",
        "/cart",
        "/checkout",
        "/pricing",
        "/account",
        "/blog",
        "/contact",
    ];
    match rng.random_range(0..10) {
        0..=4 => (*FIXED.choose(rng).expect("pages are not empty")).to_string(),
        5..=6 => format!("/products/{}", slug(rng)),
        7 => format!("/blog/{}", slug(rng)),
        8 => format!("/docs/{}", slug(rng)),
        _ => format!("/search?q={}", Word().fake_with_rng::<String, _>(rng)),
    }
}

/// Where a session's first page view came from; `None` is direct traffic.
pub fn external_referrer<R: Rng + ?Sized>(rng: &mut R) -> Option<String> {
    const SOURCES: [&str; 5] = [
        "https://www.google.com/",
        "https://duckduckgo.com/",
        "https://news.ycombinator.com/",
        "https://www.reddit.com/r/programming/",
        "https://t.co/",
    ];
    match rng.random_range(0..10) {
        0..=3 => None,
        4..=8 => Some((*SOURCES.choose(rng).expect("sources are not empty")).to_string()),
        _ => Some(format!(
            "https://{}.example.org/",
            Word().fake_with_rng::<String, _>(rng)
        )),
    }
}

/// The full URL of a page on the simulated site, used as the next page's referrer.
pub fn site_url(path: &str) -> String {
    format!("{SITE}{path}")
}

pub fn button_id<R: Rng + ?Sized>(rng: &mut R) -> String {
    const BUTTONS: [&str; 10] = [
        "add-to-cart",
        "buy-now",
        "subscribe",
        "share",
        "like",
        "next",
        "previous",
        "close-modal",
        "open-menu",
        "accept-cookies",
    ];
    if rng.random_bool(0.9) {
        format!(
            "btn-{}",
            BUTTONS.choose(rng).expect("buttons are not empty")
        )
    } else {
        format!("btn-{}", Word().fake_with_rng::<String, _>(rng))
    }
}

/// A form id and the fields a user filled in, which depend on the form.
pub fn form<R: Rng + ?Sized>(rng: &mut R) -> (String, BTreeMap<String, String>) {
    const FORMS: [&str; 6] = [
        "signup",
        "contact",
        "checkout",
        "newsletter",
        "search",
        "profile",
    ];
    let form_id = *FORMS.choose(rng).expect("forms are not empty");
    let mut fields = BTreeMap::new();
    let mut put = |name: &str, value: String| {
        fields.insert(name.to_string(), value);
    };
    match form_id {
        "signup" => {
            put("email", SafeEmail().fake_with_rng(rng));
            put("first_name", FirstName().fake_with_rng(rng));
            put(
                "plan",
                ["free", "team", "enterprise"]
                    .choose(rng)
                    .unwrap()
                    .to_string(),
            );
        }
        "contact" => {
            put("email", SafeEmail().fake_with_rng(rng));
            put(
                "name",
                format!(
                    "{} {}",
                    FirstName().fake_with_rng::<String, _>(rng),
                    LastName().fake_with_rng::<String, _>(rng)
                ),
            );
            put("message", Sentence(3..12).fake_with_rng(rng));
        }
        "checkout" => {
            put("street", StreetName().fake_with_rng(rng));
            put("city", CityName().fake_with_rng(rng));
            put("zip", ZipCode().fake_with_rng(rng));
            put("card_last4", format!("{:04}", rng.random_range(0..10_000)));
        }
        "newsletter" => put("email", SafeEmail().fake_with_rng(rng)),
        "search" => put("q", Word().fake_with_rng(rng)),
        _ => {
            put("first_name", FirstName().fake_with_rng(rng));
            put("last_name", LastName().fake_with_rng(rng));
            put("phone", PhoneNumber().fake_with_rng(rng));
        }
    }
    (format!("form-{form_id}"), fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn ips_mix_v4_and_v6() {
        let mut rng = StdRng::seed_from_u64(1);
        let ips: Vec<IpAddr> = (0..1000).map(|_| ip_address(&mut rng)).collect();
        let v6 = ips.iter().filter(|ip| ip.is_ipv6()).count();
        assert!((100..300).contains(&v6), "{v6} of 1000 were IPv6");
    }

    #[test]
    fn pages_are_paths_and_forms_have_fields() {
        let mut rng = StdRng::seed_from_u64(2);
        for _ in 0..500 {
            assert!(page_path(&mut rng).starts_with('/'));
            let (form_id, fields) = form(&mut rng);
            assert!(form_id.starts_with("form-"));
            assert!(!fields.is_empty() && fields.values().all(|v| !v.is_empty()));
        }
    }
}
