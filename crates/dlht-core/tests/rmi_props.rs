//! Property tests of the RMI's guarantees over many key distributions and shapes: the error bound
//! holds for every trained key, positions are monotone everywhere, ranges cover, files round-trip;
//! and the root's: leaves are balanced up to the keys' duplicates, whatever the shape, so a small
//! change of the key set cannot flip a model between a good and a poor fit.

mod common;

use dlht_core::{format, ModelType, Rmi, RmiConfig};
use proptest::prelude::*;

/// A seeded key set of one of the shapes in `common`, at most `n` keys (clusters may be tiny).
fn keys(shape: u8, n: usize, seed: u64) -> Vec<f64> {
    match shape {
        0 => common::uniform(n, seed),
        1 => common::lognormal(n, seed),
        2 => common::clustered(n, seed),
        3 => common::duplicates(n, seed),
        4 => common::skewed(n, seed),
        5 => common::with_outliers(n, seed),
        6 => common::zeros_and_skewed(n, seed),
        // Timestamps with sub-ulp spacing: many keys a few ulps apart.
        _ => (0..n).map(|i| 1.7e12 + (i / 3) as f64 * 2.44e-4).collect(),
    }
}

fn model_type(cubic: bool) -> ModelType {
    if cubic {
        ModelType::Cubic
    } else {
        ModelType::Linear
    }
}

prop_compose! {
    fn trained()(
        shape in 0u8..8,
        n in prop_oneof![1usize..4, 4usize..3000],
        seed in any::<u64>(),
        branching_factor in prop_oneof![Just(1usize), 1usize..64, 64usize..5000],
        cubic in any::<bool>(),
        cubic_root in any::<bool>(),
        small_space in any::<bool>(),
    ) -> (Vec<f64>, Rmi) {
        let keys = keys(shape, n, seed);
        let config = RmiConfig {
            branching_factor,
            model_type: model_type(cubic),
            stage1_model_type: model_type(cubic_root),
            hash_space_size: if small_space { 1000 } else { 1 << 62 },
        };
        let rmi = Rmi::train(config, &keys).unwrap();
        (keys, rmi)
    }
}

fn assert_monotone(rmi: &Rmi, sorted_probes: &[f64]) -> Result<(), TestCaseError> {
    let mut out = vec![0; sorted_probes.len()];
    rmi.predict_many(sorted_probes, &mut out).unwrap();
    for (i, w) in out.windows(2).enumerate() {
        prop_assert!(
            w[0] <= w[1],
            "position decreases from key {} ({}) to key {} ({})",
            sorted_probes[i],
            w[0],
            sorted_probes[i + 1],
            w[1]
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(common::proptest_config(256))]

    #[test]
    fn error_bound_holds_for_every_trained_key((keys, rmi) in trained()) {
        let h = rmi.config().hash_space_size;
        for (&key, rank) in keys.iter().zip(common::scaled_ranks(&keys, h)) {
            let (position, error) = rmi.predict_with_error(key);
            prop_assert!(position < h);
            prop_assert!(position.abs_diff(rank) <= error, "key {key}: {position} ± {error}, rank {rank}");
        }
        prop_assert_eq!(rmi.num_keys(), keys.len() as u64);
    }

    #[test]
    fn positions_are_monotone_for_trained_and_unseen_keys((keys, rmi) in trained(), seed in any::<u64>()) {
        assert_monotone(&rmi, &keys)?;
        // Random probes around and beyond the trained range, plus the floats adjacent to trained
        // keys and leaf boundaries, where rounding would show first.
        let (lo, hi) = rmi.key_range();
        let span = (hi - lo).max(1.0);
        let mut rng = dlht_core::SplitMix64::new(seed);
        let mut probes: Vec<f64> = (0..2000).map(|_| lo - span * 0.1 + rng.next_f64() * span * 1.2).collect();
        for &key in keys.iter().step_by(keys.len() / 200 + 1) {
            let mut x = key;
            for _ in 0..8 {
                x = x.next_down();
            }
            for _ in 0..16 {
                probes.push(x);
                x = x.next_up();
            }
        }
        for leaf in rmi.leaves() {
            probes.extend([leaf.key_lo.next_down(), leaf.key_lo, leaf.key_hi, leaf.key_hi.next_up()]);
        }
        probes.extend([f64::NEG_INFINITY, -f64::MAX, f64::MAX, f64::INFINITY]);
        probes.sort_unstable_by(f64::total_cmp);
        assert_monotone(&rmi, &probes)?;
    }

    #[test]
    fn predict_range_covers_every_key_inside((keys, rmi) in trained(), a in 0usize..10_000, len in 0usize..500) {
        let a = a % keys.len();
        let b = (a + len).min(keys.len() - 1);
        let (lo, hi) = rmi.predict_range(keys[a], keys[b]).unwrap();
        for &key in &keys[a..=b] {
            let position = rmi.predict(key);
            prop_assert!(lo <= position && position <= hi);
        }
    }

    #[test]
    fn files_round_trip_bit_exactly((_keys, rmi) in trained()) {
        let bytes = format::serialize(&rmi);
        prop_assert_eq!(bytes.len() as u64, rmi.stats().model_bytes);
        let copy = format::deserialize(&bytes).unwrap();
        prop_assert_eq!(&copy, &rmi);
        prop_assert_eq!(format::serialize(&copy), bytes);
        let parts = Rmi::from_parts(*rmi.config(), rmi.root().clone(), rmi.leaves().to_vec(), rmi.num_keys(), rmi.key_range());
        prop_assert_eq!(parts.unwrap(), rmi);
    }

    #[test]
    fn damaged_files_are_errors_never_panics((_keys, rmi) in trained(), at in any::<usize>(), bit in 0u8..8, cut in any::<usize>()) {
        let bytes = format::serialize(&rmi);
        let mut flipped = bytes.clone();
        flipped[at % bytes.len()] ^= 1 << bit;
        prop_assert!(format::deserialize(&flipped).is_err());
        prop_assert!(format::deserialize(&bytes[..cut % bytes.len()]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        prop_assert!(format::deserialize(&longer).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400), header in any::<bool>()) {
        let mut bytes = bytes;
        if header && bytes.len() >= 6 {
            bytes[..6].copy_from_slice(b"DLHT\x01\x00");
        }
        let _ = format::deserialize(&bytes);
    }

    #[test]
    fn untrained_models_are_monotone(raw in proptest::collection::vec(any::<u64>(), 1..500), h in 2u64..=(1 << 63)) {
        let config = RmiConfig { hash_space_size: h, ..RmiConfig::default() };
        let rmi = Rmi::untrained(config).unwrap();
        let mut probes: Vec<f64> = raw.into_iter().map(f64::from_bits).filter(|k| !k.is_nan()).collect();
        probes.sort_unstable_by(f64::total_cmp);
        assert_monotone(&rmi, &probes)?;
        for &key in &probes {
            prop_assert!(rmi.predict(key) < h);
        }
    }

    #[test]
    fn leaves_are_balanced_up_to_duplicates(
        shape in prop_oneof![Just(0u8), Just(1), Just(3), Just(4), Just(5), Just(6)],
        n in 1000usize..30_000,
        seed in any::<u64>(),
        branching_factor in 1usize..200,
        cubic_root in any::<bool>(),
    ) {
        // Every leaf ends within a cell of its quantile (a leaf started after a gap may run one
        // share ahead), and a cell of these smooth shapes holds a small part of a leaf's share, or
        // one key's duplicates.
        let keys = keys(shape, n, seed);
        let config = RmiConfig {
            branching_factor,
            stage1_model_type: model_type(cubic_root),
            ..RmiConfig::default()
        };
        let rmi = Rmi::train(config, &keys).unwrap();
        let largest = rmi.leaves().iter().map(|leaf| leaf.num_keys as usize).max().unwrap();
        let bound = 3 * n / branching_factor + common::longest_run(&keys) + 2;
        prop_assert!(largest <= bound, "a leaf holds {largest} of {n} keys, above {bound}");
    }

    #[test]
    fn a_few_keys_more_or_less_keep_the_error(
        shape in prop_oneof![Just(1u8), Just(3), Just(4), Just(5), Just(6)],
        n in 5000usize..40_000,
        seed in any::<u64>(),
        dropped in 1usize..50,
    ) {
        // What federated averaging relies on: a model of nearly the same keys is nearly as good.
        let keys = keys(shape, n, seed);
        let mut rng = dlht_core::SplitMix64::new(seed);
        let mut fewer = keys.clone();
        for _ in 0..dropped {
            fewer.remove(rng.below(fewer.len() as u64) as usize);
        }
        let error = |model_keys: &[f64]| accuracy_of(&Rmi::train(RmiConfig::default(), model_keys).unwrap(), &keys).0;
        let (all, some) = (error(&keys), error(&fewer));
        // Dropping a key moves others' ranks by 1/n: allow that on top of the ratio.
        let slack = (dropped + 1) as f64 / n as f64;
        prop_assert!(some <= 1.5 * all + slack && all <= 1.5 * some + slack, "mean error {all} with every key, {some} without {dropped}");
    }

    #[test]
    fn updated_leaves_keep_positions_monotone((keys, mut rmi) in trained(), shift in 0u64..1_000_000, key in any::<usize>()) {
        let bucket = rmi.bucket_of(keys[key % keys.len()]);
        let leaf_keys: Vec<f64> = keys.iter().copied().filter(|&k| rmi.bucket_of(k) == bucket).collect();
        let h = rmi.config().hash_space_size;
        let positions: Vec<u64> = leaf_keys.iter().map(|&k| (rmi.predict(k) + shift).min(h - 1)).collect();
        rmi.update_leaf(bucket, &leaf_keys, &positions).unwrap();
        for (&k, &p) in leaf_keys.iter().zip(&positions) {
            let (got, error) = rmi.predict_with_error(k);
            prop_assert!(got.abs_diff(p) <= error);
        }
        assert_monotone(&rmi, &keys)?;
        prop_assert_eq!(format::deserialize(&format::serialize(&rmi)).unwrap(), rmi);
    }
}

/// Mean and max distance of `rmi`'s positions to the `partition_point` rank in `keys`, as fractions
/// of H.
fn accuracy_of(rmi: &Rmi, keys: &[f64]) -> (f64, f64) {
    let h = rmi.config().hash_space_size;
    let mut positions = vec![0; keys.len()];
    rmi.predict_many(keys, &mut positions).unwrap();
    let errors: Vec<f64> = positions
        .iter()
        .zip(common::scaled_ranks(keys, h))
        .map(|(&p, rank)| p.abs_diff(rank) as f64 / h as f64)
        .collect();
    let mean = errors.iter().sum::<f64>() / errors.len() as f64;
    (mean, errors.iter().copied().fold(0.0, f64::max))
}

/// [`accuracy_of`] a model trained on `keys`, checked against its own statistics.
fn accuracy(keys: &[f64], config: RmiConfig) -> (f64, f64) {
    let rmi = Rmi::train(config, keys).unwrap();
    let h = config.hash_space_size;
    let (mean, max) = accuracy_of(&rmi, keys);
    let stats = rmi.stats();
    assert!(
        (stats.mean_error / h as f64 - mean).abs() < 1e-9,
        "stats agree with a plain rank search"
    );
    (mean, max)
}

#[test]
fn distributions_are_learned_closely_and_spread_evenly() {
    let sets = [
        ("uniform", common::uniform(100_000, 7)),
        ("lognormal", common::lognormal(100_000, 7)),
        ("lognormal σ=2", common::skewed(100_000, 7)),
        ("uniform with outliers", common::with_outliers(100_000, 7)),
        (
            "zeros and skewed integers",
            common::zeros_and_skewed(100_000, 7),
        ),
    ];
    for (name, keys) in sets {
        for model_type in [ModelType::Linear, ModelType::Cubic] {
            let config = RmiConfig {
                model_type,
                stage1_model_type: model_type,
                ..RmiConfig::default()
            };
            let (mean, max) = accuracy(&keys, config);
            println!(
                "{name} {model_type}: mean error {:.5}% of H, max {:.5}%",
                mean * 100.0,
                max * 100.0
            );
            assert!(mean < 0.001, "{name} {model_type}: mean error {mean}");
            // Each tenth of the ring gets a tenth of the keys, give or take 2%.
            let rmi = Rmi::train(config, &keys).unwrap();
            let mut positions = vec![0; keys.len()];
            rmi.predict_many(&keys, &mut positions).unwrap();
            let h = config.hash_space_size as u128;
            let mut tenths = [0usize; 10];
            for p in positions {
                tenths[(p as u128 * 10 / h) as usize] += 1;
            }
            let tenth = keys.len() / 10;
            assert!(
                tenths.iter().all(|&c| c.abs_diff(tenth) < keys.len() / 50),
                "{name} {model_type}: {tenths:?}"
            );
        }
    }
}
