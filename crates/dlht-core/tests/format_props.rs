//! Fuzzing the model file reader with proptest: random bytes, and valid files with bytes changed,
//! cut, inserted or their header fields set to anything, then sealed with a correct CRC so the
//! parser itself is reached. Each gives a model or an error, never a panic or a huge allocation,
//! and a model read that way predicts without panicking. `DLHT_FUZZ_CASES` sets the cases.

mod common;

use dlht_core::{format, ModelType, Rmi, RmiConfig};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("DLHT_FUZZ_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(256)
}

/// A valid file of a small trained (or untrained) model.
fn valid_file(cubic: bool, trained: bool) -> Vec<u8> {
    let config = RmiConfig {
        branching_factor: 8,
        model_type: if cubic {
            ModelType::Cubic
        } else {
            ModelType::Linear
        },
        stage1_model_type: ModelType::Linear,
        hash_space_size: 1 << 62,
    };
    let rmi = if trained {
        Rmi::train(config, &common::lognormal(500, 7)).unwrap()
    } else {
        Rmi::untrained(config).unwrap()
    };
    format::serialize(&rmi)
}

/// `bytes` with its trailing CRC32 recomputed, so that the reader goes past the checksum.
fn sealed(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.len() >= 4 {
        let end = bytes.len() - 4;
        let crc = crc32fast::hash(&bytes[..end]).to_le_bytes();
        bytes[end..].copy_from_slice(&crc);
    }
    bytes
}

#[derive(Debug, Clone)]
enum Mutation {
    Set(usize, u8),
    Cut(usize),
    Insert(usize, u8),
    /// Overwrites 8 bytes with a special f64 (NaN, infinities, huge, negative zero...).
    Double(usize, f64),
    /// Overwrites 4 bytes with a u32 (branching factors, cell counts, leaf starts).
    Word(usize, u32),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Set(at, byte)),
        any::<usize>().prop_map(Mutation::Cut),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert(at, byte)),
        (
            any::<usize>(),
            prop_oneof![
                Just(f64::NAN),
                Just(f64::INFINITY),
                Just(f64::NEG_INFINITY),
                Just(f64::MAX),
                Just(-0.0),
                any::<f64>()
            ]
        )
            .prop_map(|(at, x)| Mutation::Double(at, x)),
        (
            any::<usize>(),
            prop_oneof![Just(0u32), Just(u32::MAX), Just(1 << 24), any::<u32>()]
        )
            .prop_map(|(at, x)| Mutation::Word(at, x)),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for mutation in mutations {
        let len = bytes.len().max(1);
        match *mutation {
            Mutation::Set(at, byte) if !bytes.is_empty() => bytes[at % len] = byte,
            Mutation::Cut(at) => bytes.truncate(at % len),
            Mutation::Insert(at, byte) => bytes.insert(at % len.min(bytes.len() + 1), byte),
            Mutation::Double(at, x) if bytes.len() >= 8 => {
                let at = at % (bytes.len() - 7);
                bytes[at..at + 8].copy_from_slice(&x.to_le_bytes());
            }
            Mutation::Word(at, x) if bytes.len() >= 4 => {
                let at = at % (bytes.len() - 3);
                bytes[at..at + 4].copy_from_slice(&x.to_le_bytes());
            }
            _ => {}
        }
    }
    bytes
}

/// Uses a model as a peer would; none of it may panic.
fn use_model(rmi: &Rmi) {
    for key in [f64::MIN, -1.0, 0.0, 1.0, 3.5, 1e300, f64::MAX] {
        let _ = rmi.predict(key);
        let _ = rmi.predict_with_error(key);
        let _ = rmi.predict_range(key, key + 1.0);
    }
    let _ = format::serialize(rmi);
}

proptest! {
    #![proptest_config(common::proptest_config(cases()))]

    #[test]
    fn random_bytes_are_a_model_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(rmi) = format::deserialize(&bytes) {
            use_model(&rmi);
        }
        if let Ok(rmi) = format::deserialize(&sealed(bytes)) {
            use_model(&rmi);
        }
    }

    #[test]
    fn mutated_sealed_files_are_a_model_or_an_error(
        cubic in any::<bool>(),
        trained in any::<bool>(),
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let bytes = sealed(apply(valid_file(cubic, trained), &mutations));
        if let Ok(rmi) = format::deserialize(&bytes) {
            use_model(&rmi);
        }
    }

    #[test]
    fn a_valid_file_round_trips(cubic in any::<bool>(), trained in any::<bool>()) {
        let bytes = valid_file(cubic, trained);
        let rmi = format::deserialize(&bytes).unwrap();
        prop_assert_eq!(format::serialize(&rmi), bytes);
    }
}
