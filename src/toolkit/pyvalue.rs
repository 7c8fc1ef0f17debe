//! Python semantics for JSON values: `==`, ordering and `str()`.
//!
//! Upstream evaluates filters and builds envelopes on Python objects, so
//! `1 == 1.0`, `True == 1`, `"b" > "a"`, `str(2.0) == "2.0"` and
//! `str(None) == "None"` all hold there. The event helpers here work on
//! `serde_json::Value` and use these functions to give the same answers.
//!
//! Two limits of the JSON model: integers beyond 64 bits and object key
//! order (`str()` of a dict lists keys in the map's order) cannot be
//! reproduced.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt::Write as _;

use serde_json::Value;

/// A number as Python sees it; `bool` is an `int`.
#[derive(Debug, Clone, Copy)]
enum Num {
    Int(i128),
    Float(f64),
}

fn as_num(v: &Value) -> Option<Num> {
    match v {
        Value::Bool(b) => Some(Num::Int(i128::from(*b))),
        Value::Number(n) => n
            .as_i64()
            .map(|i| Num::Int(i128::from(i)))
            .or_else(|| n.as_u64().map(|u| Num::Int(i128::from(u))))
            .or_else(|| n.as_f64().map(Num::Float)),
        _ => None,
    }
}

/// Exact comparison of an integer with a float, as Python does it (no
/// rounding of the integer to f64). `None` for NaN.
fn cmp_int_float(i: i128, f: f64) -> Option<Ordering> {
    // 2^127: every i128 is below it, and -2^127 is i128::MIN.
    const TWO_POW_127: f64 = 170_141_183_460_469_231_731_687_303_715_884_105_728.0;
    if f.is_nan() {
        return None;
    }
    if f >= TWO_POW_127 {
        return Some(Ordering::Less);
    }
    if f < -TWO_POW_127 {
        return Some(Ordering::Greater);
    }
    let whole = f.trunc();
    // In range and integral, so the cast is exact.
    let ord = i.cmp(&(whole as i128));
    Some(match ord {
        Ordering::Equal if f > whole => Ordering::Less,
        Ordering::Equal if f < whole => Ordering::Greater,
        other => other,
    })
}

fn cmp_num(a: Num, b: Num) -> Option<Ordering> {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => Some(x.cmp(&y)),
        (Num::Float(x), Num::Float(y)) => x.partial_cmp(&y),
        (Num::Int(x), Num::Float(y)) => cmp_int_float(x, y),
        (Num::Float(x), Num::Int(y)) => cmp_int_float(y, x).map(Ordering::reverse),
    }
}

/// Python `a == b`.
pub(crate) fn py_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| py_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| py_eq(v, w)))
        }
        _ => match (as_num(a), as_num(b)) {
            (Some(x), Some(y)) => cmp_num(x, y) == Some(Ordering::Equal),
            _ => false,
        },
    }
}

/// Python ordering of `a` and `b`; `None` where Python raises `TypeError`
/// (`None < 1`, `"a" < 1`, dicts) or the answer is unordered (NaN).
pub(crate) fn py_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (as_num(a), as_num(b)) {
        return cmp_num(x, y);
    }
    match (a, b) {
        // UTF-8 byte order is code point order, which is what Python uses.
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                if !py_eq(p, q) {
                    return py_cmp(p, q);
                }
            }
            Some(x.len().cmp(&y.len()))
        }
        _ => None,
    }
}

/// Python `str(v)`: strings as they are, everything else as Python prints
/// it (`None`, `True`, `2.0`, `1e+16`, `['a', 1]`, `{'k': None}`).
pub(crate) fn py_str(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s),
        other => {
            let mut out = String::new();
            write_repr(other, &mut out);
            Cow::Owned(out)
        }
    }
}

fn write_repr(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => {
                let _ = write!(out, "{i}");
            }
            (None, Some(u), _) => {
                let _ = write!(out, "{u}");
            }
            (None, None, Some(f)) => out.push_str(&float_repr(f)),
            (None, None, None) => out.push_str(&n.to_string()),
        },
        Value::String(s) => write_str_repr(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str_repr(k, out);
                out.push_str(": ");
                write_repr(item, out);
            }
            out.push('}');
        }
    }
}

/// Python `repr(s)` for a string: single quotes unless the text has a
/// single quote and no double quote; control characters escaped.
fn write_str_repr(s: &str, out: &mut String) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c < ' ' || ('\u{7f}'..'\u{a0}').contains(&c) => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// Python `repr(f)` for a float: shortest round-trip digits, fixed notation
/// for exponents -4..16, otherwise `d.ddde±XX`.
fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if f == 0.0 {
        return format!("{sign}0.0");
    }
    // `{:e}` gives the shortest round-trip digits, e.g. "1.5e-5".
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if (-4..16).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                format!("{sign}{digits}{}.0", "0".repeat(int_len - digits.len()))
            } else {
                format!("{sign}{}.{}", &digits[..int_len], &digits[int_len..])
            }
        } else {
            format!("{sign}0.{}{digits}", "0".repeat((-exp - 1) as usize))
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let exp_sign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{first}{dot}e{exp_sign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equality_follows_python() {
        assert!(py_eq(&json!(1), &json!(1.0)));
        assert!(py_eq(&json!(true), &json!(1)));
        assert!(py_eq(&json!(false), &json!(0.0)));
        assert!(!py_eq(&json!(1), &json!("1")));
        assert!(!py_eq(&json!(null), &json!(0)));
        assert!(py_eq(&json!([1, {"a": 2.0}]), &json!([1.0, {"a": 2}])));
        assert!(!py_eq(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(py_eq(&json!(u64::MAX), &json!(u64::MAX)));
        assert!(!py_eq(
            &json!(9_007_199_254_740_993_i64),
            &json!(9_007_199_254_740_992.0)
        ));
    }

    #[test]
    fn ordering_follows_python() {
        assert_eq!(py_cmp(&json!(2), &json!(1.5)), Some(Ordering::Greater));
        assert_eq!(py_cmp(&json!(1.5), &json!(2)), Some(Ordering::Less));
        assert_eq!(py_cmp(&json!(true), &json!(0)), Some(Ordering::Greater));
        assert_eq!(py_cmp(&json!(-1), &json!(-0.5)), Some(Ordering::Less));
        assert_eq!(py_cmp(&json!("b"), &json!("abc")), Some(Ordering::Greater));
        assert_eq!(py_cmp(&json!([1, 2]), &json!([1, 3])), Some(Ordering::Less));
        assert_eq!(py_cmp(&json!([1, 2]), &json!([1])), Some(Ordering::Greater));
        assert_eq!(py_cmp(&json!([1, "a"]), &json!([1, 2])), None);
        assert_eq!(py_cmp(&json!(null), &json!(null)), None);
        assert_eq!(py_cmp(&json!("1"), &json!(1)), None);
        assert_eq!(py_cmp(&json!({}), &json!({})), None);
        assert_eq!(
            py_cmp(&json!(u64::MAX), &json!(1e300)),
            Some(Ordering::Less)
        );
        assert_eq!(
            py_cmp(&json!(i64::MIN), &json!(-1e300)),
            Some(Ordering::Greater)
        );
    }

    #[test]
    fn str_follows_python() {
        let cases = [
            (json!("text"), "text"),
            (json!(null), "None"),
            (json!(true), "True"),
            (json!(false), "False"),
            (json!(-42), "-42"),
            (json!(u64::MAX), "18446744073709551615"),
            (json!(2.0), "2.0"),
            (json!(-0.0), "-0.0"),
            (json!(0.1), "0.1"),
            (json!(123.456), "123.456"),
            (json!(1e16), "1e+16"),
            (json!(1.5e16), "1.5e+16"),
            (json!(9_999_999_999_999_998.0), "9999999999999998.0"),
            (json!(0.0001), "0.0001"),
            (json!(0.00001), "1e-05"),
            (json!(1.2345e-7), "1.2345e-07"),
            (json!(1e300), "1e+300"),
            (json!(["a", 1, null, 2.5]), "['a', 1, None, 2.5]"),
            (json!({"k": [true]}), "{'k': [True]}"),
            (
                json!(["it's", "say \"hi\"", "both '\""]),
                r#"["it's", 'say "hi"', 'both \'"']"#,
            ),
            (json!(["a\nb\\c\u{1}"]), r"['a\nb\\c\x01']"),
        ];
        for (value, expected) in cases {
            assert_eq!(py_str(&value), expected, "{value}");
        }
    }
}
