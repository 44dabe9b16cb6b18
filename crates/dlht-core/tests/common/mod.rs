//! Seeded key distributions shared by the property tests and the criterion bench, so both see the
//! same shapes: smooth (uniform, lognormal), bursty (clusters) and heavy duplicates.

#![allow(dead_code)] // each test binary uses its own subset

use dlht_core::SplitMix64;
use proptest::test_runner::{Config, FileFailurePersistence};

/// Property-test settings: `cases` runs, failing seeds kept beside the test (`*.regressions`).
pub fn proptest_config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..Config::default()
    }
}

/// `n` keys drawn by `draw`, sorted ascending.
fn sorted(n: usize, seed: u64, mut draw: impl FnMut(&mut SplitMix64) -> f64) -> Vec<f64> {
    let mut rng = SplitMix64::new(seed);
    let mut keys: Vec<f64> = (0..n).map(|_| draw(&mut rng)).collect();
    keys.sort_unstable_by(f64::total_cmp);
    keys
}

/// Standard normal draw (Box–Muller).
fn normal(rng: &mut SplitMix64) -> f64 {
    (-2.0 * rng.next_f64().ln()).sqrt() * (std::f64::consts::TAU * rng.next_f64()).cos()
}

pub fn uniform(n: usize, seed: u64) -> Vec<f64> {
    sorted(n, seed, |rng| rng.next_f64() * 1e6)
}

/// Lognormal(0, σ = 1): most keys near 1, a long right tail.
pub fn lognormal(n: usize, seed: u64) -> Vec<f64> {
    sorted(n, seed, |rng| normal(rng).exp())
}

/// Lognormal(0, σ = 2): keys over eight decades, most of them near 1.
pub fn skewed(n: usize, seed: u64) -> Vec<f64> {
    sorted(n, seed, |rng| (2.0 * normal(rng)).exp())
}

/// Uniform keys plus a few sentinels far outside their range (a 0 and a 1e300).
pub fn with_outliers(n: usize, seed: u64) -> Vec<f64> {
    let mut keys = uniform(n, seed);
    keys[0] = 0.0;
    keys.extend([1e300, 1e300]);
    keys
}

/// Bursts: ten tight clusters at random places spread over a wide range, like timestamps.
pub fn clustered(n: usize, seed: u64) -> Vec<f64> {
    let mut centers = SplitMix64::new(seed ^ 0xC1);
    let centers: Vec<f64> = (0..10).map(|_| centers.next_f64() * 1.7e12).collect();
    sorted(n, seed, |rng| {
        centers[rng.below(10) as usize] + normal(rng) * 1e3
    })
}

/// Few distinct values with very uneven counts (Zipf-like).
pub fn duplicates(n: usize, seed: u64) -> Vec<f64> {
    sorted(n, seed, |rng| (1.0 / rng.next_f64()).floor().min(1000.0))
}

/// Like city populations: 11% zeros, then integers over five decades (1000·lognormal(0, 2)),
/// many of them repeated.
pub fn zeros_and_skewed(n: usize, seed: u64) -> Vec<f64> {
    sorted(n, seed, |rng| {
        if rng.below(100) < 11 {
            0.0
        } else {
            (1000.0 * (2.0 * normal(rng)).exp()).round()
        }
    })
}

/// Length of the longest run of one key in sorted `keys`.
pub fn longest_run(keys: &[f64]) -> usize {
    keys.chunk_by(|a, b| a == b)
        .map(<[f64]>::len)
        .max()
        .unwrap_or(0)
}

/// Index of each key's first occurrence in sorted `keys`, scaled to `[0, h)`.
pub fn scaled_ranks(keys: &[f64], h: u64) -> Vec<u64> {
    keys.iter()
        .map(|&key| {
            let rank = keys.partition_point(|&k| k < key);
            (rank as u128 * h as u128 / keys.len() as u128) as u64
        })
        .collect()
}
