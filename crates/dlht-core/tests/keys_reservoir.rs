//! Properties of the inputs to training: byte-key encoding keeps lexicographic order and resolves
//! any key's first 4 bytes, and the reservoir keeps a uniform sample of its stream (chi-square
//! checks with fixed seeds).

use dlht_core::keys::{encode_bytes, encode_bytes_batch, encode_i128};
use dlht_core::ReservoirSampler;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn byte_encoding_follows_lexicographic_order(
        a in proptest::collection::vec(any::<u8>(), 0..12),
        b in proptest::collection::vec(any::<u8>(), 0..12),
        common in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        // A shared prefix makes near-equal keys common, where order is hardest to keep.
        let a = [common.clone(), a].concat();
        let b = [common, b].concat();
        let (lo, hi) = if a <= b { (&a, &b) } else { (&b, &a) };
        prop_assert!(encode_bytes(lo) <= encode_bytes(hi));
    }

    #[test]
    fn keys_that_differ_in_their_first_4_bytes_never_share_an_encoding(
        a in proptest::collection::vec(any::<u8>(), 0..10),
        b in proptest::collection::vec(any::<u8>(), 0..10),
        common in proptest::collection::vec(any::<u8>(), 0..4),
    ) {
        let a = [common.clone(), a].concat();
        let b = [common, b].concat();
        let (lo, hi) = if a <= b { (&a, &b) } else { (&b, &a) };
        let first_difference = lo.iter().zip(hi).position(|(x, y)| x != y).unwrap_or(lo.len());
        if lo != hi && first_difference < 4 {
            prop_assert!(encode_bytes(lo) < encode_bytes(hi), "{lo:?} and {hi:?} tie");
        }
    }

    #[test]
    fn string_encoding_is_its_utf8_bytes_encoding(words in proptest::collection::vec(".{0,10}", 1..20)) {
        let mut data = Vec::new();
        let mut offsets = vec![0u32];
        for word in &words {
            data.extend_from_slice(word.as_bytes());
            offsets.push(data.len() as u32);
        }
        let mut out = vec![0.0; words.len()];
        encode_bytes_batch(&data, &offsets, &mut out).unwrap();
        let mut sorted = words.clone();
        sorted.sort();
        for (word, &encoded) in words.iter().zip(&out) {
            prop_assert_eq!(encoded, encode_bytes(word.as_bytes()));
        }
        let encoded: Vec<f64> = sorted.iter().map(|w| encode_bytes(w.as_bytes())).collect();
        prop_assert!(encoded.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn bigint_encoding_is_monotone(a in any::<i128>(), b in any::<i128>()) {
        let (lo, hi) = (a.min(b), a.max(b));
        prop_assert!(encode_i128(lo) <= encode_i128(hi));
    }
}

/// Pearson's chi-square statistic of observed counts against equal expected counts.
fn chi_square(counts: &[u64]) -> f64 {
    let expected = counts.iter().sum::<u64>() as f64 / counts.len() as f64;
    counts
        .iter()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum()
}

#[test]
fn each_tenth_of_a_long_stream_is_equally_represented() {
    // 200 runs of 100k keys into 1000 slots: 20,000 expected per tenth.
    let n = 100_000u32;
    let stream: Vec<f64> = (0..n).map(f64::from).collect();
    let mut tenths = [0u64; 10];
    for seed in 0..200 {
        let mut sampler = ReservoirSampler::new(1000, seed).unwrap();
        sampler.insert_many(&stream).unwrap();
        assert_eq!(sampler.len(), 1000);
        for key in sampler.sample_sorted() {
            tenths[(key as u32 / (n / 10)) as usize] += 1;
        }
    }
    // 9 degrees of freedom: P(χ² > 27.9) = 0.001. A sampler favouring early or late keys by even
    // 2% lands far beyond.
    let chi = chi_square(&tenths);
    assert!(chi < 27.9, "chi-square {chi}, tenths {tenths:?}");
}

#[test]
fn every_position_of_a_short_stream_is_equally_likely() {
    // The fill/skip boundary is where off-by-one bugs hide: stream 20 keys into 5 slots, one key at
    // a time and in batches, and count how often each position is kept (1/4 of the runs each).
    let mut counts = [0u64; 20];
    let stream: Vec<f64> = (0..20).map(f64::from).collect();
    for seed in 0..40_000u64 {
        let mut sampler = ReservoirSampler::new(5, seed).unwrap();
        if seed % 2 == 0 {
            for &key in &stream {
                sampler.insert(key).unwrap();
            }
        } else {
            for chunk in stream.chunks(3 + seed as usize % 5) {
                sampler.insert_many(chunk).unwrap();
            }
        }
        for key in sampler.sample_sorted() {
            counts[key as usize] += 1;
        }
    }
    // 19 degrees of freedom: P(χ² > 43.8) = 0.001.
    let chi = chi_square(&counts);
    assert!(chi < 43.8, "chi-square {chi}, counts {counts:?}");
}
