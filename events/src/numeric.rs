//! How long a JSON number becomes once Postgres stores it.
//!
//! Payload numbers are kept as written (serde_json's `arbitrary_precision`),
//! so nothing rounds them on the way to the `jsonb` column. Postgres then
//! holds them as `numeric`, which writes every digit out in full: `1e400` is
//! read back as a 401-digit integer. `numeric` refuses more than 131,072
//! digits before the point or 16,383 after it, and such a row would fail its
//! whole batch at insert time; far below those limits a ten-byte `1e99999`
//! would still read back as 100 kB, so a 64 KiB message could come back from
//! the API as gigabytes. [`MAX_NUMBER_DIGITS`] bounds both.

/// Most digits a payload number may have written out in full, as Postgres
/// prints it. Any `f64` needs at most 327 (`5e-324`); 1,000 leaves room for
/// wider integers and decimals while keeping a 64 KiB message's payload under
/// about 10 MiB when read back.
pub const MAX_NUMBER_DIGITS: u64 = 1000;

/// The number of digits of the JSON number `text` written out in full
/// (`1.5e-3` -> `0.0015`, 5), or `None` if its exponent does not even fit in
/// an `i64`. It may count a few leading zeros Postgres drops (`0.01e3`), never
/// fewer digits than Postgres prints, so a number this accepts Postgres takes.
pub fn written_out_digits(text: &str) -> Option<u64> {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, exponent.parse::<i64>().ok()?),
        None => (unsigned, 0),
    };
    let (integer, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let (integer, fraction) = (integer.len() as i128, fraction.len() as i128);
    let exponent = i128::from(exponent);
    // Postgres keeps the written scale: `1.50` stays `1.50`, `1.5e-3` has
    // four digits after the point and `1.5e3` none.
    let before_point = (integer + exponent).max(1);
    let after_point = (fraction - exponent).max(0);
    u64::try_from(before_point + after_point).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_digits_as_postgres_writes_them_out() {
        for (text, digits) in [
            ("0", 1),
            ("-7", 1),
            ("42", 2),
            ("1.50", 3),
            ("1.5e-3", 5),
            ("1.5E+3", 4),
            ("12.50e1", 4),
            ("1e400", 401),
            ("-1e-400", 401),
            ("123456789012345678901234567890", 30),
        ] {
            assert_eq!(written_out_digits(text), Some(digits), "{text}");
        }
    }

    #[test]
    fn an_exponent_beyond_i64_is_not_a_count() {
        assert_eq!(written_out_digits("1e99999999999999999999"), None);
        assert_eq!(
            written_out_digits("1e9223372036854775807"),
            Some(9_223_372_036_854_775_808)
        );
        assert_eq!(
            written_out_digits("1e-9223372036854775808"),
            Some(9_223_372_036_854_775_809)
        );
    }
}
