//! Properties of untrusted-input parsing: never a panic, and exactly the
//! documented language accepted.

use observe::CorrelationId;
use observe::correlation::http::TraceParent;
use proptest::prelude::*;

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn from_str_accepts_exactly_the_alphabet_and_lengths(s in any::<String>()) {
        let ok = !s.is_empty() && s.len() <= 128 && s.chars().all(allowed);
        let parsed = s.parse::<CorrelationId>();
        prop_assert_eq!(parsed.is_ok(), ok, "{:?}", s);
        if let Ok(id) = parsed {
            prop_assert_eq!(id.to_string(), s);
        }
    }

    #[test]
    fn valid_ids_of_every_length_parse(s in "[A-Za-z0-9._:-]{1,128}") {
        prop_assert_eq!(s.parse::<CorrelationId>().map(|id| id.to_string()), Ok(s));
    }

    #[test]
    fn too_long_ids_are_refused(s in "[A-Za-z0-9._:-]{129,300}") {
        prop_assert!(s.parse::<CorrelationId>().is_err());
    }

    #[test]
    fn traceparent_parsing_never_panics(s in any::<String>()) {
        let _ = TraceParent::parse(&s);
    }

    #[test]
    fn traceparent_parsing_never_panics_near_valid(
        v in "[0-9a-f]{2}", t in "[0-9a-fA-F]{30,34}", p in "[0-9a-f]{14,18}", f in "[0-9a-f]{1,3}",
        sep in "[-_ ]",
    ) {
        let s = format!("{v}{sep}{t}-{p}-{f}");
        if let Some(tp) = TraceParent::parse(&s) {
            // Whatever parses prints back as a valid version-00 header.
            prop_assert!(TraceParent::parse(&tp.to_string()).is_some());
        }
    }

    #[test]
    fn well_formed_traceparents_round_trip(t in 1u128.., p in 1u64.., f in any::<u8>()) {
        let tp = TraceParent { trace_id: t, parent_id: p, flags: f };
        prop_assert_eq!(TraceParent::parse(&tp.to_string()), Some(tp));
    }
}
