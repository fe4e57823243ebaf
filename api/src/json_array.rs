//! Splits a JSON array into the exact bytes of each element, so that a batch
//! is validated, and produced to Kafka, as the client wrote each event:
//! re-serialising parsed values would reorder keys and could change numbers.
//! (`serde_json`'s `RawValue` does this too, but enabling its feature would
//! rebuild every crate in the workspace that uses `serde_json`.)
//!
//! The body is first parsed in full by `serde_json` (without building
//! values), so the scan below only ever sees well-formed JSON: it tracks
//! strings, escapes and nesting depth to find where each element ends.

use serde::de::IgnoredAny;

/// Why a body is not a JSON array.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAnArray {
    #[error("the body is not valid JSON: {0}")]
    Malformed(String),
    #[error("the body must be a JSON array of events")]
    WrongShape,
}

/// The byte slices of the elements of the JSON array `body`, in order.
pub fn split(body: &[u8]) -> Result<Vec<&[u8]>, NotAnArray> {
    serde_json::from_slice::<IgnoredAny>(body).map_err(|e| NotAnArray::Malformed(e.to_string()))?;
    let mut at = skip_whitespace(body, 0);
    if body.get(at) != Some(&b'[') {
        return Err(NotAnArray::WrongShape);
    }
    at = skip_whitespace(body, at + 1);
    let mut elements = Vec::new();
    if body.get(at) == Some(&b']') {
        return Ok(elements);
    }
    loop {
        let end = value_end(body, at).ok_or(NotAnArray::WrongShape)?;
        elements.push(&body[at..end]);
        at = skip_whitespace(body, end);
        match body.get(at) {
            Some(b',') => at = skip_whitespace(body, at + 1),
            Some(b']') => return Ok(elements),
            _ => return Err(NotAnArray::WrongShape),
        }
    }
}

fn skip_whitespace(body: &[u8], mut at: usize) -> usize {
    while body
        .get(at)
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        at += 1;
    }
    at
}

/// Where the (well-formed) value starting at `start` ends, exclusive.
fn value_end(body: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut at = start;
    loop {
        let byte = *body.get(at)?;
        if in_string {
            match byte {
                b'\\' => at += 1,
                b'"' => {
                    in_string = false;
                    if depth == 0 {
                        return Some(at + 1);
                    }
                }
                _ => {}
            }
        } else {
            match byte {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' if depth == 0 => return Some(at),
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(at + 1);
                    }
                }
                b',' | b' ' | b'\t' | b'\n' | b'\r' if depth == 0 => return Some(at),
                _ => {}
            }
        }
        at += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    #[test]
    fn splits_into_the_original_bytes() {
        let body = br#" [ {"b": 1, "a": "x,]}\"y"} , [1, [2]] ,"s", 1.50e3 , null,true ] "#;
        let parts: Vec<&str> = split(body)
            .expect("an array")
            .into_iter()
            .map(|p| std::str::from_utf8(p).expect("utf8"))
            .collect();
        assert_eq!(
            parts,
            [
                r#"{"b": 1, "a": "x,]}\"y"}"#,
                "[1, [2]]",
                r#""s""#,
                "1.50e3",
                "null",
                "true"
            ]
        );
    }

    #[test]
    fn empty_arrays_have_no_elements() {
        assert_eq!(split(b"[]").expect("ok"), Vec::<&[u8]>::new());
        assert_eq!(split(b" [ \n ] ").expect("ok"), Vec::<&[u8]>::new());
    }

    #[test]
    fn refuses_what_is_not_an_array() {
        assert_eq!(split(br#"{"a": 1}"#), Err(NotAnArray::WrongShape));
        assert!(matches!(split(b"[1, 2"), Err(NotAnArray::Malformed(_))));
        assert!(matches!(split(b"[1] [2]"), Err(NotAnArray::Malformed(_))));
        assert!(matches!(split(b""), Err(NotAnArray::Malformed(_))));
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "[ -~\u{e9}\u{1F600}\"\\\\]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("[a-z\",\\]]{0,6}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn every_element_round_trips(elements in prop::collection::vec(json_value(), 0..8), pretty in any::<bool>()) {
            let render = |v: &Value| if pretty {
                serde_json::to_string_pretty(v).expect("serialises")
            } else {
                serde_json::to_string(v).expect("serialises")
            };
            let body = format!("[{}]", elements.iter().map(render).collect::<Vec<_>>().join(" ,\n "));
            let parts = split(body.as_bytes()).expect("an array");
            prop_assert_eq!(parts.len(), elements.len());
            for (part, element) in parts.iter().zip(&elements) {
                prop_assert_eq!(&serde_json::from_slice::<Value>(part).expect("element parses"), element);
                prop_assert_eq!(std::str::from_utf8(part).expect("utf8"), render(element));
            }
        }
    }
}
