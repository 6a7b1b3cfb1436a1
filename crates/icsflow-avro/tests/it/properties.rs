//! Garbage in never panics: random bytes and mutated valid records give
//! either an event or a typed rejection.

use icsflow_avro::{encode_single_object, DecodeError};
use icsflow_core::one_event_of_each_type;
use proptest::prelude::*;

use crate::{decoder, policy};

fn valid_records() -> Vec<Vec<u8>> {
    let decoder = decoder();
    one_event_of_each_type()
        .iter()
        .map(|event| encode_single_object(decoder.catalogue(), event))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let outcome = decoder().decode(&bytes, &policy());
        prop_assert!(matches!(outcome, Ok(_) | Err(DecodeError::Rejected(_))));
    }

    /// Random bytes behind a valid header reach the datum decoder of each
    /// feed rather than stopping at the fingerprint.
    #[test]
    fn random_datums_behind_valid_headers_never_panic(
        feed in 0_usize..3,
        datum in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let records = valid_records();
        let header = &records[[0, 9, 14][feed]][..10];
        let bytes = [header, &datum].concat();
        let outcome = decoder().decode(&bytes, &policy());
        prop_assert!(matches!(outcome, Ok(_) | Err(DecodeError::Rejected(_))));
    }

    #[test]
    fn mutated_valid_records_never_panic(
        record in 0_usize..19,
        mutations in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = valid_records()[record].clone();
        for (position, byte) in mutations {
            let index = position.index(bytes.len());
            bytes[index] = byte;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        let decoder = decoder();
        match decoder.decode(&bytes, &policy()) {
            // A mutation that still yields a valid event must re-encode to a
            // record that decodes to the same event.
            Ok(event) => {
                let again = encode_single_object(decoder.catalogue(), &event);
                prop_assert_eq!(decoder.decode(&again, &policy()), Ok(event));
            }
            Err(DecodeError::Rejected(_)) => {}
            Err(other) => prop_assert!(false, "unexpected {:?}", other),
        }
    }
}
