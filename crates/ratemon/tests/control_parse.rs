//! The control-request parser on arbitrary input: it never panics, it
//! names every unknown key, and it takes back what a client wrote.

use proptest::prelude::*;
use ratemon::control::KEYS;
use ratemon::ControlRequest;
use serde_json::{json, Map, Value};

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any::<i64>().prop_map(|i| json!(i)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        if let Err(message) = ControlRequest::parse(&text) {
            prop_assert!(!message.is_empty());
        }
    }

    #[test]
    fn objects_with_any_keys_and_values(
        pairs in prop::collection::vec((prop_oneof![prop::sample::select(KEYS).prop_map(str::to_owned), "[a-z_]{1,12}"], any_json()), 0..6)
    ) {
        let map: Map<String, Value> = pairs.into_iter().collect();
        let text = Value::Object(map.clone()).to_string();
        match ControlRequest::parse(&text) {
            Ok(r) => {
                prop_assert!(map.keys().all(|k| KEYS.contains(&k.as_str())));
                for n in [r.sample_rate, r.estimation_interval, r.meter_interval, r.alarm_trigger, r.cutoff].into_iter().flatten() {
                    prop_assert!(n.is_finite());
                }
            }
            Err(message) => prop_assert!(!message.is_empty()),
        }
    }

    #[test]
    fn an_unknown_key_is_named(key in "[a-z_]{1,12}", rate in 1.0f64..1000.0) {
        prop_assume!(!KEYS.contains(&key.as_str()));
        let text = json!({"status": true, "sample_rate": rate, key.clone(): 1}).to_string();
        let message = ControlRequest::parse(&text).expect_err("an unknown key is refused");
        prop_assert!(message.contains(&format!("unknown key `{key}`")), "{}", message);
    }

    #[test]
    fn settings_a_client_writes_come_back(rate in 1.0f64..100_000.0, cutoff in 0.1f64..100.0, iface in "[a-z]{1,8}[0-9]?") {
        let text = json!({"sample_rate": rate, "cutoff": cutoff, "interface": iface, "status": true}).to_string();
        let r = ControlRequest::parse(&text).map_err(TestCaseError::fail)?;
        // serde_json parses floats to within one ulp (without its
        // float_roundtrip feature), which no setting can notice.
        let near = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() <= b.abs() * 1e-15);
        prop_assert!(near(r.sample_rate, rate));
        prop_assert!(near(r.cutoff, cutoff));
        prop_assert_eq!(r.interface, Some(iface));
        prop_assert!(r.status && !r.exit);
    }
}
