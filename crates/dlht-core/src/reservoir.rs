//! A uniform fixed-size sample of an unbounded key stream (Algorithm L), the training set of a node.
//! Seeded and deterministic, so a node's sample (and so its model) can be reproduced.

use crate::error::{Error, Result};
use crate::keys::validate_finite;

/// SplitMix64: a small, fast, seedable generator, enough for sampling (not for cryptography).
/// Public so tests and benches draw seeded data from the same generator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in the open interval (0, 1), so its logarithm is finite.
    pub fn next_f64(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `0..n` (`n > 0`), by multiply-shift.
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

/// Keeps a uniform random sample of at most `capacity` keys of everything inserted.
///
/// Algorithm L (Li, 1994): once full, the sampler draws how many keys to skip before the next
/// replacement (geometric skips) instead of a random number per key, so big batches are fast.
#[derive(Clone, Debug)]
pub struct ReservoirSampler {
    capacity: usize,
    sample: Vec<f64>,
    seen: u64,
    rng: SplitMix64,
    /// Algorithm L's running weight: the largest of `capacity` uniform draws' minimum.
    w: f64,
    /// Stream index of the next key that replaces a sampled one.
    next: u64,
}

impl ReservoirSampler {
    /// The Python reference's `reservoir_sample_size`.
    pub const DEFAULT_CAPACITY: usize = 10_000;

    pub fn new(capacity: usize, seed: u64) -> Result<Self> {
        if capacity == 0 {
            return Err(Error::InvalidArgument(
                "reservoir capacity must be at least 1".into(),
            ));
        }
        Ok(ReservoirSampler {
            capacity,
            sample: Vec::new(),
            seen: 0,
            rng: SplitMix64::new(seed),
            w: 1.0,
            next: 0,
        })
    }

    pub fn insert(&mut self, key: f64) -> Result<()> {
        self.insert_many(std::slice::from_ref(&key))
    }

    /// All or nothing: every key is validated before any is inserted.
    pub fn insert_many(&mut self, keys: &[f64]) -> Result<()> {
        validate_finite(keys)?;
        let mut keys = keys;
        // Filling phase: keep everything until full.
        let room = (self.capacity - self.sample.len()).min(keys.len());
        if room > 0 {
            self.sample.extend_from_slice(&keys[..room]);
            self.seen += room as u64;
            keys = &keys[room..];
            if self.sample.len() == self.capacity {
                self.w = 1.0;
                self.advance(self.seen - 1);
            }
        }
        // Skipping phase: jump straight to the keys that replace a sampled one.
        let start = self.seen;
        let end = start + keys.len() as u64;
        while self.sample.len() == self.capacity && self.next < end {
            let slot = self.rng.below(self.capacity as u64) as usize;
            self.sample[slot] = keys[(self.next - start) as usize];
            self.advance(self.next);
        }
        self.seen = end;
        Ok(())
    }

    /// Draws the stream index of the next replacement, after index `from`.
    fn advance(&mut self, from: u64) {
        self.w *= (self.rng.next_f64().ln() / self.capacity as f64).exp();
        let skip = (self.rng.next_f64().ln() / (-self.w).ln_1p()).floor();
        // `as` saturates a huge skip; the stream never gets that far.
        self.next = from.saturating_add(1).saturating_add(skip as u64);
    }

    /// The sample, sorted ascending: ready for `Rmi::train`.
    pub fn sample_sorted(&self) -> Vec<f64> {
        let mut sample = self.sample.clone();
        sample.sort_unstable_by(f64::total_cmp);
        sample
    }

    /// Number of keys inserted since creation or the last `clear`.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    pub fn len(&self) -> usize {
        self.sample.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sample.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Empties the sample; the generator runs on, so later samples differ from the first.
    pub fn clear(&mut self) {
        self.sample.clear();
        self.seen = 0;
        self.w = 1.0;
        self.next = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_then_stays_bounded() {
        let mut sampler = ReservoirSampler::new(100, 1).unwrap();
        assert!(sampler.is_empty());
        for i in 0..50 {
            sampler.insert(f64::from(i)).unwrap();
        }
        assert_eq!(sampler.len(), 50);
        assert_eq!(
            sampler.sample_sorted(),
            (0..50).map(f64::from).collect::<Vec<_>>()
        );
        let more: Vec<f64> = (50..10_000).map(f64::from).collect();
        sampler.insert_many(&more).unwrap();
        assert_eq!(
            (sampler.len(), sampler.seen(), sampler.capacity()),
            (100, 10_000, 100)
        );
        let sample = sampler.sample_sorted();
        assert!(sample.windows(2).all(|w| w[0] < w[1]));
        sampler.clear();
        assert_eq!((sampler.len(), sampler.seen()), (0, 0));
    }

    #[test]
    fn rejects_bad_input_without_side_effects() {
        assert_eq!(
            ReservoirSampler::new(0, 1).unwrap_err().code(),
            "ERR_DLHT_INVALID_ARGUMENT"
        );
        let mut sampler = ReservoirSampler::new(10, 1).unwrap();
        sampler.insert_many(&[1.0, 2.0]).unwrap();
        assert!(matches!(
            sampler.insert_many(&[3.0, f64::NAN]),
            Err(Error::NonFiniteKey { index: 1, .. })
        ));
        assert_eq!(sampler.seen(), 2);
        assert!(matches!(
            sampler.insert(f64::INFINITY),
            Err(Error::NonFiniteKey { index: 0, .. })
        ));
    }

    #[test]
    fn same_seed_same_sample_whatever_the_batching() {
        let stream: Vec<f64> = (0..50_000).map(f64::from).collect();
        let mut whole = ReservoirSampler::new(500, 9).unwrap();
        whole.insert_many(&stream).unwrap();
        let mut again = ReservoirSampler::new(500, 9).unwrap();
        again.insert_many(&stream).unwrap();
        assert_eq!(whole.sample_sorted(), again.sample_sorted());
        let mut pieces = ReservoirSampler::new(500, 9).unwrap();
        for chunk in stream.chunks(777) {
            pieces.insert_many(chunk).unwrap();
        }
        let mut single = ReservoirSampler::new(500, 9).unwrap();
        for &key in &stream {
            single.insert(key).unwrap();
        }
        assert_eq!(pieces.sample_sorted(), whole.sample_sorted());
        assert_eq!(single.sample_sorted(), whole.sample_sorted());
    }

    #[test]
    fn uniform_draws_stay_inside_bounds() {
        let mut rng = SplitMix64::new(3);
        for _ in 0..10_000 {
            let x = rng.next_f64();
            assert!(x > 0.0 && x < 1.0);
            assert!(rng.below(7) < 7);
        }
    }
}
