//! Exact decimal values for `Sum`, `Max` and `Min`.
//!
//! Upstream parses these with `strtoll` and so truncates a reported `1.25` to `1` (a ratio
//! or a latency in fractional milliseconds, as `@tars/monitor` sends them, loses everything
//! after the point). We keep the decimal value exactly: a [`Decimal`] is an integer mantissa
//! and a count of decimal places, so `1.25 + 2.5` is `3.75` with no binary rounding. An
//! integer value parses, merges and renders byte for byte as upstream's (`strtoll`
//! saturating at the `long long` range, trailing text ignored).

use std::cmp::Ordering;

/// Most decimal places kept; further digits are dropped (truncated, as `strtoll` truncates).
pub const MAX_SCALE: u32 = 18;

/// `10^n` for `n <= MAX_SCALE`.
fn pow10(n: u32) -> i128 {
    10i128.pow(n)
}

/// A decimal number `mantissa / 10^scale`, bounded to the `long long` range: its integer part
/// lies in `i64::MIN..=i64::MAX`, and sums saturate there as upstream's integers do. With at
/// most [`MAX_SCALE`] places the mantissa stays below `2^63 · 10^18 < i128::MAX / 18`, so
/// aligning and adding two values never overflows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decimal {
    mantissa: i128,
    scale: u32,
}

impl Decimal {
    /// An integer.
    pub fn from_int(v: i64) -> Decimal {
        Decimal { mantissa: i128::from(v), scale: 0 }
    }

    /// The value saturated to the `long long` range at `scale` places.
    fn clamped(mantissa: i128, scale: u32) -> Decimal {
        let p = pow10(scale);
        let mantissa = mantissa.clamp(i128::from(i64::MIN) * p, i128::from(i64::MAX) * p);
        Decimal { mantissa, scale }.normalized()
    }

    /// Trailing zero places removed, so equal values compare and render alike.
    fn normalized(mut self) -> Decimal {
        while self.scale > 0 && self.mantissa % 10 == 0 {
            self.mantissa /= 10;
            self.scale -= 1;
        }
        self
    }

    /// Both mantissas at the larger scale.
    fn aligned(self, other: Decimal) -> (i128, i128, u32) {
        let scale = self.scale.max(other.scale);
        (self.mantissa * pow10(scale - self.scale), other.mantissa * pow10(scale - other.scale), scale)
    }

    /// The sum, saturating at the `long long` range.
    pub fn saturating_add(self, other: Decimal) -> Decimal {
        let (a, b, scale) = self.aligned(other);
        Decimal::clamped(a + b, scale)
    }

    /// Parses like upstream's `strto<long long>` (leading C whitespace, an optional sign,
    /// digits; `0x` for hexadecimal; the rest ignored; saturating), extended with an optional
    /// fraction (`.` and digits, at most [`MAX_SCALE`] kept) and, after digits, an exponent
    /// (`e`/`E`, optional sign, digits), the forms a JavaScript or C client prints. `None` when
    /// there is no digit at all.
    pub fn parse(s: &str) -> Option<Decimal> {
        if let Some(hex) = s.strip_prefix("0x") {
            let mut v: i64 = 0;
            for d in hex.chars().map_while(|c| c.to_digit(16)) {
                v = v.saturating_mul(16).saturating_add(i64::from(d));
            }
            return Some(Decimal::from_int(v));
        }
        let s = s.trim_start_matches([' ', '\t', '\n', '\u{b}', '\u{c}', '\r']).as_bytes();
        let (negative, mut rest) = match s.first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        // Digits accumulate into `mantissa` while it can still matter (below `limit`, times
        // 10 stays far inside i128); an integer part beyond it saturates anyway, and
        // `overflow` remembers it.
        let limit = i128::from(i64::MAX) * pow10(MAX_SCALE);
        let (mut mantissa, mut scale, mut any, mut overflow) = (0i128, 0u32, false, false);
        while let Some((&b, tail)) = rest.split_first().filter(|(b, _)| b.is_ascii_digit()) {
            any = true;
            if mantissa < limit {
                mantissa = mantissa * 10 + i128::from(b - b'0');
            } else {
                overflow = true;
            }
            rest = tail;
        }
        if let Some((b'.', tail)) = rest.split_first() {
            rest = tail;
            while let Some((&b, tail)) = rest.split_first().filter(|(b, _)| b.is_ascii_digit()) {
                any = true;
                if scale < MAX_SCALE && mantissa < limit {
                    mantissa = mantissa * 10 + i128::from(b - b'0');
                    scale += 1;
                }
                rest = tail;
            }
        }
        if !any {
            return None;
        }
        if overflow {
            return Some(Decimal::from_int(if negative { i64::MIN } else { i64::MAX }));
        }
        if let Some(exp) = exponent(rest) {
            // Shift the point: a positive exponent first uses up places, then multiplies (and
            // saturates); a negative one adds places, dropping digits beyond MAX_SCALE.
            if exp >= 0 {
                let mut e = exp.unsigned_abs();
                while e > 0 && scale > 0 {
                    scale -= 1;
                    e -= 1;
                }
                for _ in 0..e.min(40) {
                    mantissa = mantissa.saturating_mul(10).min(limit);
                }
            } else {
                for _ in 0..exp.unsigned_abs().min(40) {
                    if scale < MAX_SCALE {
                        scale += 1;
                    } else {
                        mantissa /= 10;
                    }
                }
            }
        }
        Some(Decimal::clamped(if negative { -mantissa } else { mantissa }, scale))
    }

    /// Decimal text: the integer as upstream prints it, or the integer part, `.` and the
    /// places without trailing zeros.
    pub fn render(&self) -> String {
        let v = self.normalized();
        if v.scale == 0 {
            return v.mantissa.to_string();
        }
        let p = pow10(v.scale);
        let (int, frac) = (v.mantissa.abs() / p, v.mantissa.abs() % p);
        let sign = if v.mantissa < 0 { "-" } else { "" };
        format!("{sign}{int}.{frac:0width$}", width = v.scale as usize)
    }
}

/// The exponent after a mantissa: `e`/`E`, an optional sign and at least one digit
/// (saturating at ±10 000, far beyond what moves a bounded value).
fn exponent(s: &[u8]) -> Option<i32> {
    let (first, rest) = s.split_first()?;
    if !matches!(first, b'e' | b'E') {
        return None;
    }
    let (negative, digits) = match rest.first() {
        Some(b'-') => (true, &rest[1..]),
        Some(b'+') => (false, &rest[1..]),
        _ => (false, rest),
    };
    let mut e: i32 = 0;
    let mut any = false;
    for b in digits.iter().take_while(|b| b.is_ascii_digit()) {
        any = true;
        e = (e * 10 + i32::from(b - b'0')).min(10_000);
    }
    any.then_some(if negative { -e } else { e })
}

impl Ord for Decimal {
    fn cmp(&self, other: &Decimal) -> Ordering {
        let (a, b, _) = self.aligned(*other);
        a.cmp(&b)
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Decimal) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> String {
        Decimal::parse(s).map(|v| v.render()).unwrap_or_else(|| "none".into())
    }

    #[test]
    fn integers_are_upstreams() {
        for (input, want) in [
            ("42", "42"),
            ("  -7", "-7"),
            ("+8", "8"),
            ("3abc", "3"),
            ("0x1A", "26"),
            ("0x", "0"),
            ("-0x10", "0"),
            ("99999999999999999999", "9223372036854775807"),
            ("-99999999999999999999", "-9223372036854775808"),
            ("-9223372036854775808", "-9223372036854775808"),
            ("", "none"),
            ("abc", "none"),
            ("-", "none"),
            (" + 1", "none"),
        ] {
            assert_eq!(d(input), want, "{input:?}");
        }
    }

    #[test]
    fn fractions_are_kept() {
        for (input, want) in [
            ("1.25", "1.25"),
            ("-0.5", "-0.5"),
            ("2.50", "2.5"),
            ("3.000", "3"),
            ("7.", "7"),
            (".5", "0.5"),
            ("1.5e2", "150"),
            ("1e-7", "0.0000001"),
            ("2.5E+1", "25"),
            ("1e", "1"),
            ("0.1234567890123456789", "0.123456789012345678"),
            ("1e-30", "0"),
            ("9.5e30", "9223372036854775807"),
            ("-9223372036854775808.5", "-9223372036854775808"),
        ] {
            assert_eq!(d(input), want, "{input:?}");
        }
    }

    #[test]
    fn sums_and_order_are_exact() {
        let v = |s| Decimal::parse(s).expect(s);
        assert_eq!(v("1.25").saturating_add(v("2.5")).render(), "3.75");
        assert_eq!(v("0.1").saturating_add(v("0.2")).render(), "0.3");
        assert_eq!(v("9223372036854775807").saturating_add(v("0.5")).render(), "9223372036854775807");
        assert_eq!(v("-9223372036854775808").saturating_add(v("-1")).render(), "-9223372036854775808");
        assert!(v("1.25") > v("1.2"));
        assert!(v("-0.5") < v("0"));
        assert_eq!(v("2.50").cmp(&v("2.5")), Ordering::Equal);
    }
}
