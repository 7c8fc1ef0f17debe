//! MongoDB-style event filters: `rust_match_event` / `EventFilter.matches`
//! (PYTHON_API.md §3.5).
//!
//! Criteria are a JSON object. Each key is a field of the event (a dotted
//! key such as `"payload.price"` walks nested objects) and each value is
//! either a plain value (Python `==`) or an object of operators, all of
//! which must hold: `$eq $ne $gt $lt $gte $lte $in $nin $exists $regex
//! $contains $startswith $endswith`. An unknown operator never matches.
//! `$and`/`$or` take a list of criteria objects. Upstream's quirks are kept:
//!
//! - a `start_from_latest` key makes any event match;
//! - a top-level `$and` list, if present, decides alone (other keys are
//!   ignored); otherwise a `$or` list decides alone;
//! - `$regex` is anchored at the start (Python `re.match`); `$regex`,
//!   `$contains`, `$startswith`, `$endswith` test Python `str()` of the value;
//! - a missing field equals `null` and fails every ordering operator;
//!   `$nin` on a missing field holds.
//!
//! Comparisons follow Python (`1 == 1.0`, `True == 1`, `"b" > "a"`).
//! Where Python raises (`"a" > 1`, a non-bool `$exists`, a bad regex),
//! [`try_match_event`] returns the error with Python's message and
//! [`match_event`] treats it as a non-match.

use serde_json::{Map, Value};

use super::pyvalue::{py_cmp, py_eq, py_str};
use super::regex_cache::cached_regex;

/// Why Python would have raised instead of answering.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatchError {
    /// An operand or sub-criteria has the wrong type (Python `TypeError`).
    #[error("'{found}' object cannot be converted to '{expected}'")]
    WrongType {
        /// Python type name of what was given.
        found: &'static str,
        /// The pyo3 type that was required (`PyDict`, `PyBool`, `PyString`).
        expected: &'static str,
    },
    /// An ordering operator on values Python cannot order (`TypeError`).
    #[error("'{op}' not supported between instances of '{left}' and '{right}'")]
    Incomparable {
        /// The Python operator (`>`, `<`, `>=`, `<=`).
        op: &'static str,
        /// Python type name of the event value.
        left: &'static str,
        /// Python type name of the operand.
        right: &'static str,
    },
    /// A `$regex` pattern that does not compile or is too large
    /// (`ValueError`).
    #[error("Invalid regex '{pattern}': {reason}")]
    InvalidRegex {
        /// The pattern as given.
        pattern: String,
        /// The compiler's explanation.
        reason: String,
    },
}

/// `rust_match_event(event, criteria)`: true when `event` satisfies
/// `criteria`. Never panics; anything Python would raise on is `false`.
pub fn match_event(event: &Value, criteria: &Value) -> bool {
    try_match_event(event, criteria).unwrap_or(false)
}

/// Like [`match_event`], but reports the cases where upstream raises, so
/// the Python binding can raise the same exception.
pub fn try_match_event(event: &Value, criteria: &Value) -> Result<bool, MatchError> {
    match_object(as_dict(event)?, as_dict(criteria)?)
}

/// Python type name of a JSON value.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

fn wrong_type(v: &Value, expected: &'static str) -> MatchError {
    MatchError::WrongType {
        found: type_name(v),
        expected,
    }
}

fn as_dict(v: &Value) -> Result<&Map<String, Value>, MatchError> {
    v.as_object().ok_or_else(|| wrong_type(v, "PyDict"))
}

fn as_str(v: &Value) -> Result<&str, MatchError> {
    v.as_str().ok_or_else(|| wrong_type(v, "PyString"))
}

fn match_object(
    event: &Map<String, Value>,
    criteria: &Map<String, Value>,
) -> Result<bool, MatchError> {
    if criteria.contains_key("start_from_latest") {
        return Ok(true);
    }
    if let Some(Value::Array(all)) = criteria.get("$and") {
        for sub in all {
            if !match_object(event, as_dict(sub)?)? {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    if let Some(Value::Array(any)) = criteria.get("$or") {
        for sub in any {
            if match_object(event, as_dict(sub)?)? {
                return Ok(true);
            }
        }
        return Ok(false);
    }
    for (key, expected) in criteria {
        if key == "$and" || key == "$or" {
            continue;
        }
        if !match_value(lookup(event, key), expected)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The event's value for a key; a key with dots walks nested objects.
fn lookup<'a>(event: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    if !key.contains('.') {
        return event.get(key);
    }
    let mut parts = key.split('.');
    let first = event.get(parts.next()?)?;
    parts.try_fold(first, |current, part| current.as_object()?.get(part))
}

fn match_value(value: Option<&Value>, expected: &Value) -> Result<bool, MatchError> {
    match expected {
        Value::Object(ops) => match_operators(value, ops),
        _ => Ok(value.map_or(expected.is_null(), |v| py_eq(v, expected))),
    }
}

fn match_operators(value: Option<&Value>, ops: &Map<String, Value>) -> Result<bool, MatchError> {
    for (op, operand) in ops {
        let holds = match op.as_str() {
            "$eq" => value.map_or(operand.is_null(), |v| py_eq(v, operand)),
            "$ne" => value.map_or(!operand.is_null(), |v| !py_eq(v, operand)),
            "$gt" => ordered(value, operand, ">", |o| o.is_gt())?,
            "$lt" => ordered(value, operand, "<", |o| o.is_lt())?,
            "$gte" => ordered(value, operand, ">=", |o| o.is_ge())?,
            "$lte" => ordered(value, operand, "<=", |o| o.is_le())?,
            "$in" => match (operand, value) {
                (Value::Array(list), Some(v)) => list.iter().any(|item| py_eq(v, item)),
                _ => false,
            },
            "$nin" => match (operand, value) {
                (Value::Array(list), Some(v)) => !list.iter().any(|item| py_eq(v, item)),
                _ => true,
            },
            "$exists" => {
                let should_exist = operand
                    .as_bool()
                    .ok_or_else(|| wrong_type(operand, "PyBool"))?;
                value.is_some() == should_exist
            }
            "$regex" => {
                let pattern = as_str(operand)?;
                let re = cached_regex(pattern).map_err(|reason| MatchError::InvalidRegex {
                    pattern: pattern.to_owned(),
                    reason,
                })?;
                value.is_some_and(|v| re.is_match(&py_str(v)))
            }
            "$contains" => {
                let needle = as_str(operand)?;
                value.is_some_and(|v| py_str(v).contains(needle))
            }
            "$startswith" => {
                let prefix = as_str(operand)?;
                value.is_some_and(|v| py_str(v).starts_with(prefix))
            }
            "$endswith" => {
                let suffix = as_str(operand)?;
                value.is_some_and(|v| py_str(v).ends_with(suffix))
            }
            _ => false,
        };
        if !holds {
            return Ok(false);
        }
    }
    Ok(true)
}

/// An ordering operator: false for a missing field, an error where Python
/// cannot compare.
fn ordered(
    value: Option<&Value>,
    operand: &Value,
    op: &'static str,
    accept: fn(std::cmp::Ordering) -> bool,
) -> Result<bool, MatchError> {
    let Some(v) = value else {
        return Ok(false);
    };
    py_cmp(v, operand)
        .map(accept)
        .ok_or_else(|| MatchError::Incomparable {
            op,
            left: type_name(v),
            right: type_name(operand),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> Value {
        json!({
            "type": "order_update",
            "symbol": "AAPL",
            "price": 150.5,
            "qty": 10,
            "active": true,
            "note": null,
            "tags": ["a", "b"],
            "payload": {"user": {"id": 7, "name": "Ann"}, "level": 3},
        })
    }

    fn m(criteria: &Value) -> bool {
        match_event(&event(), criteria)
    }

    #[test]
    fn plain_values_are_python_equality() {
        assert!(m(&json!({})));
        assert!(m(&json!({"symbol": "AAPL", "qty": 10.0})));
        assert!(m(&json!({"active": 1})));
        assert!(!m(&json!({"symbol": "MSFT"})));
        assert!(m(&json!({"note": null})));
        assert!(m(&json!({"missing": null})), "missing equals None");
        assert!(!m(&json!({"missing": 0})));
        assert!(m(&json!({"tags": ["a", "b"]})));
    }

    #[test]
    fn dotted_paths_walk_objects() {
        assert!(m(&json!({"payload.user.id": 7})));
        assert!(m(&json!({"payload.user.name": {"$startswith": "A"}})));
        assert!(!m(&json!({"payload.user.id": 8})));
        assert!(m(&json!({"payload.user.missing": {"$exists": false}})));
        assert!(m(&json!({"symbol.x": {"$exists": false}})), "not an object");
        assert!(
            m(&json!({"tags.0": {"$exists": false}})),
            "no list indexing"
        );
    }

    #[test]
    fn comparison_operators() {
        assert!(m(&json!({"price": {"$gt": 150, "$lt": 151}})));
        assert!(m(&json!({"qty": {"$gte": 10, "$lte": 10.0}})));
        assert!(!m(&json!({"qty": {"$gt": 10}})));
        assert!(m(&json!({"symbol": {"$gt": "AAA"}})));
        assert!(!m(&json!({"missing": {"$lt": 5}})));
        assert!(m(&json!({"qty": {"$eq": 10, "$ne": 11}})));
        assert!(m(&json!({"missing": {"$eq": null}})));
        assert!(!m(&json!({"missing": {"$ne": null}})));
        assert!(m(&json!({"tags": {"$gt": ["a"]}})));
    }

    #[test]
    fn membership_and_existence() {
        assert!(m(&json!({"symbol": {"$in": ["MSFT", "AAPL"]}})));
        assert!(m(&json!({"qty": {"$in": [10.0]}})));
        assert!(
            !m(&json!({"symbol": {"$in": "AAPL"}})),
            "non-list $in never holds"
        );
        assert!(m(&json!({"symbol": {"$nin": ["MSFT"]}})));
        assert!(m(&json!({"missing": {"$nin": ["x"]}})));
        assert!(
            m(&json!({"symbol": {"$nin": "AAPL"}})),
            "non-list $nin always holds"
        );
        assert!(m(&json!({"note": {"$exists": true}})), "null is present");
        assert!(!m(&json!({"missing": {"$exists": true}})));
    }

    #[test]
    fn string_operators_use_python_str() {
        assert!(m(&json!({"type": {"$regex": "order_"}})));
        assert!(
            !m(&json!({"type": {"$regex": "update"}})),
            "anchored like re.match"
        );
        assert!(m(&json!({"type": {"$regex": ".*update$"}})));
        assert!(m(&json!({"price": {"$regex": "150\\.5"}})));
        assert!(m(&json!({"active": {"$contains": "ru"}})), "str(True)");
        assert!(m(&json!({"tags": {"$contains": "'a'"}})), "str(list)");
        assert!(m(
            &json!({"type": {"$startswith": "order", "$endswith": "update"}})
        ));
        assert!(!m(&json!({"missing": {"$contains": ""}})));
    }

    #[test]
    fn logical_operators() {
        assert!(m(
            &json!({"$and": [{"symbol": "AAPL"}, {"qty": {"$gt": 5}}]})
        ));
        assert!(!m(
            &json!({"$and": [{"symbol": "AAPL"}, {"qty": {"$gt": 50}}]})
        ));
        assert!(m(&json!({"$or": [{"symbol": "MSFT"}, {"qty": 10}]})));
        assert!(!m(&json!({"$or": []})));
        assert!(m(&json!({"$and": []})));
        // Upstream: a top-level $and list decides alone.
        assert!(m(&json!({"$and": [{"qty": 10}], "symbol": "MSFT"})));
        // A non-list $and is skipped like any operator key.
        assert!(m(&json!({"$and": {"qty": 11}, "symbol": "AAPL"})));
        // Nested inside $or.
        assert!(m(
            &json!({"$or": [{"$and": [{"qty": 10}, {"active": true}]}]})
        ));
    }

    #[test]
    fn special_keys_and_unknown_operators() {
        assert!(m(&json!({"start_from_latest": true, "symbol": "nope"})));
        assert!(!m(&json!({"symbol": {"$like": "AAPL"}})));
        assert!(
            !m(&json!({"payload": {"level": 3}})),
            "an object is read as operators"
        );
        assert!(m(&json!({"symbol": {}})), "no operators: holds");
    }

    #[test]
    fn python_errors_are_reported_and_never_match() {
        let ev = event();
        let cases = [
            (
                json!({"symbol": {"$gt": 5}}),
                "'>' not supported between instances of 'str' and 'int'",
            ),
            (
                json!({"note": {"$lte": 1}}),
                "'<=' not supported between instances of 'NoneType' and 'int'",
            ),
            (
                json!({"qty": {"$exists": 1}}),
                "'int' object cannot be converted to 'PyBool'",
            ),
            (
                json!({"qty": {"$regex": 1}}),
                "'int' object cannot be converted to 'PyString'",
            ),
            (
                json!({"$and": [1]}),
                "'int' object cannot be converted to 'PyDict'",
            ),
        ];
        for (criteria, message) in cases {
            let err = try_match_event(&ev, &criteria).unwrap_err();
            assert_eq!(err.to_string(), message);
            assert!(!match_event(&ev, &criteria));
        }
        let err = try_match_event(&ev, &json!({"type": {"$regex": "(bad"}})).unwrap_err();
        assert!(matches!(err, MatchError::InvalidRegex { .. }));
        assert!(err.to_string().starts_with("Invalid regex '(bad': "));
        assert!(!match_event(&ev, &json!({"type": {"$regex": "(bad"}})));
        assert!(!match_event(&json!(1), &json!({})));
        assert!(!match_event(&ev, &json!([])));
    }

    #[test]
    fn operand_type_errors_come_before_the_missing_check() {
        // Upstream extracts the operand first, so a bad operand raises even
        // for a missing field.
        assert!(try_match_event(&event(), &json!({"missing": {"$contains": 5}})).is_err());
        assert_eq!(
            try_match_event(&event(), &json!({"missing": {"$gt": "x"}})),
            Ok(false)
        );
    }

    fn arb_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            prop_oneof![
                Just("$gt"),
                Just("$regex"),
                Just("$in"),
                Just("$and"),
                Just("a.b"),
                Just("(")
            ]
            .prop_map(Value::from),
            "[a-c(*$.]{0,4}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("a".to_owned()),
                        Just("$and".to_owned()),
                        Just("$or".to_owned()),
                        Just("$gt".to_owned()),
                        Just("$in".to_owned()),
                        Just("$regex".to_owned()),
                        Just("$exists".to_owned()),
                        Just("a.b".to_owned()),
                        Just("b".to_owned())
                    ],
                    inner,
                    0..4,
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn prop_arbitrary_filters_never_panic(event in arb_json(), criteria in arb_json()) {
            let _ = try_match_event(&event, &criteria);
        }
    }
}
