//! Property tests of learned key codes: every key, sampled or not, keeps its bytes' order through
//! the code and the model; model files whose key code is damaged load as an error or as a model
//! that still keeps the order, never a panic; truncated ones always fail.

mod common;

use std::sync::Arc;

use dlht_core::format::{deserialize, serialize};
use dlht_core::keyed_training::train_with_key_code;
use dlht_core::{KeyCode, RmiConfig};
use proptest::prelude::*;

/// Keys like real ones: a few shared prefixes (`user:`, a host, a date) then a short tail, over a
/// small alphabet so that keys share long runs and differ in one byte, with some raw bytes.
fn keys() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let prefix = prop::sample::select(vec![
        b"".to_vec(),
        b"user:000".to_vec(),
        b"https://a.example.org/items/".to_vec(),
        b"https://ab.example.org/items/".to_vec(),
        b"tenant-3fa/orders/2026-12-06T10:".to_vec(),
    ]);
    let tail = prop::collection::vec(
        prop_oneof![4 => prop::sample::select(b"019:/az.\0".to_vec()), 1 => any::<u8>()],
        0..12,
    );
    prop::collection::vec(
        (prefix, tail).prop_map(|(mut key, tail)| {
            key.extend(tail);
            key
        }),
        1..400,
    )
}

fn assert_ordered(encode: impl Fn(&[u8]) -> f64, keys: &[Vec<u8>]) -> Result<(), TestCaseError> {
    let mut sorted = keys.to_vec();
    sorted.sort();
    for pair in sorted.windows(2) {
        let (a, b) = (encode(&pair[0]), encode(&pair[1]));
        prop_assert!(a.is_finite() && a >= 0.0);
        prop_assert!(a <= b, "{:?} -> {a} but {:?} -> {b}", pair[0], pair[1]);
    }
    Ok(())
}

proptest! {
    #![proptest_config(common::proptest_config(256))]

    #[test]
    fn codes_keep_the_order_of_sampled_and_unsampled_keys(
        sample in keys(),
        others in keys(),
        min_keys in 1usize..20,
    ) {
        let mut sorted: Vec<&[u8]> = sample.iter().map(Vec::as_slice).collect();
        sorted.sort();
        let code = KeyCode::learn(&sorted, min_keys).unwrap();
        let all: Vec<Vec<u8>> = sample.iter().chain(&others).cloned().collect();
        assert_ordered(|key| code.encode(key), &all)?;
        prop_assert_eq!(KeyCode::from_bytes(&code.to_bytes()).unwrap(), code);
    }

    #[test]
    fn models_with_a_code_keep_the_order_of_positions(sample in keys(), others in keys()) {
        let byte_keys: Vec<&[u8]> = sample.iter().map(Vec::as_slice).collect();
        let rmi = train_with_key_code(RmiConfig::default(), &[], &byte_keys).unwrap();
        let all: Vec<Vec<u8>> = sample.iter().chain(&others).cloned().collect();
        assert_ordered(|key| rmi.predict(rmi.encode_bytes(key)) as f64, &all)?;
        let copy = deserialize(&serialize(&rmi)).unwrap();
        prop_assert_eq!(copy, rmi);
    }

    #[test]
    fn damaged_codes_in_model_files_fail_or_still_keep_the_order(
        sample in keys(),
        others in keys(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let byte_keys: Vec<&[u8]> = sample.iter().map(Vec::as_slice).collect();
        let rmi = train_with_key_code(RmiConfig::default(), &[], &byte_keys).unwrap();
        let bytes = serialize(&rmi);
        let code_len = rmi.key_code().map_or(0, |code| code.to_bytes().len());
        let code_at = bytes.len() - 4 - code_len - 4;
        // Damage inside the code section (its length field included), checksum resealed.
        let mut damaged = bytes.clone();
        for (at, value) in &flips {
            damaged[code_at + at.index(code_len + 4)] ^= value | 1;
        }
        let end = damaged.len() - 4;
        let crc = crc32fast::hash(&damaged[..end]);
        damaged[end..].copy_from_slice(&crc.to_le_bytes());
        match deserialize(&damaged) {
            Err(err) => prop_assert_eq!(err.code(), "ERR_DLHT_CORRUPT_MODEL"),
            Ok(model) => assert_ordered(|key| model.predict(model.encode_bytes(key)) as f64, &others)?,
        }
        // A code cut short, in a file or alone, is always an error.
        let code = rmi.key_code().map(Arc::as_ref).unwrap().to_bytes();
        let short = &code[..cut.index(code.len())];
        prop_assert_eq!(KeyCode::from_bytes(short).unwrap_err().code(), "ERR_DLHT_CORRUPT_MODEL");
        let mut truncated = bytes[..code_at + 4 + short.len()].to_vec();
        truncated.extend_from_slice(&[0; 4]);
        let end = truncated.len() - 4;
        let crc = crc32fast::hash(&truncated[..end]);
        truncated[end..].copy_from_slice(&crc.to_le_bytes());
        prop_assert!(deserialize(&truncated).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200), others in keys()) {
        if let Ok(code) = KeyCode::from_bytes(&bytes) {
            assert_ordered(|key| code.encode(key), &others)?;
        }
    }
}
