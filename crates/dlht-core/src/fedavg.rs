//! Federated averaging of RMIs: each node's model of its own keys, weighted by its key count, makes
//! one global model without any raw key leaving its node (FedAvg on the function the models compute).
//!
//! Local models cannot be averaged parameter by parameter: their leaves cover different key ranges
//! (a node mostly holds the keys of its arcs), so leaf `i` of one model and leaf `i` of another say
//! nothing about the same keys. What every model does describe is a CDF over all keys,
//! `Fᵢ(x) = predictᵢ(x) / Hᵢ`: 0 below its keys, 1 above them. FedAvg of those functions,
//! `F(x) = Σ wᵢ·Fᵢ(x) / Σ wᵢ` with `wᵢ` the node's key count, is the CDF of the union of the nodes'
//! keys (exactly, if each model were exact), whatever the overlap of their ranges. The global RMI is
//! then fitted to `F`: `F` is inverted at evenly spaced quantiles (bisection on the keys'
//! order-preserving bit patterns, so it is exact to the last representable key) and the keys found
//! are the training set of an ordinary [`Rmi::train`]. A leaf of the global model that spans several
//! nodes' ranges is thus fitted to the weighted mixture of what each of them knows there.

use crate::error::{Error, Result};
use crate::model::{from_ordered_bits, ordered_bits};
use crate::rmi::{Rmi, RmiConfig};

/// One node's contribution: its local model and its weight (its key count).
#[derive(Clone, Copy, Debug)]
pub struct Contribution<'a> {
    pub model: &'a Rmi,
    pub weight: f64,
}

/// Options of [`federated_average`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AverageOptions {
    /// Keys drawn from the averaged CDF to train the global model on (quantiles `j / n`).
    pub synthetic_keys: usize,
}

impl Default for AverageOptions {
    fn default() -> Self {
        AverageOptions {
            synthetic_keys: 1 << 15,
        }
    }
}

/// Largest accepted number of synthetic keys.
pub const MAX_SYNTHETIC_KEYS: usize = 1 << 24;

/// The count-weighted average of the contributions' CDFs, after [`validate`].
struct AveragedCdf<'a> {
    /// Contributions of positive weight, with their weight divided by the total.
    parts: Vec<(&'a Rmi, f64)>,
    /// Smallest and largest key any contribution was trained on.
    key_range: (f64, f64),
    /// Where the contributions saw keys: their non-empty leaves' key ranges, merged and sorted.
    occupied: Vec<(f64, f64)>,
}

impl<'a> AveragedCdf<'a> {
    /// The average of contributions that passed [`validate`].
    fn new(contributions: &[Contribution<'a>]) -> Self {
        let total: f64 = contributions.iter().map(|c| c.weight).sum();
        let parts: Vec<(&Rmi, f64)> = contributions
            .iter()
            .filter(|c| c.weight > 0.0)
            .map(|c| (c.model, c.weight / total))
            .collect();
        let key_range = parts
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), (model, _)| {
                let (min, max) = model.key_range();
                (lo.min(min), hi.max(max))
            });
        let mut ranges: Vec<(f64, f64)> = parts
            .iter()
            .flat_map(|(model, _)| model.leaves())
            .filter(|leaf| leaf.num_keys > 0)
            .map(|leaf| (leaf.key_lo, leaf.key_hi))
            .collect();
        ranges.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut occupied: Vec<(f64, f64)> = Vec::with_capacity(ranges.len());
        for (lo, hi) in ranges {
            match occupied.last_mut() {
                Some(last) if lo <= last.1 => last.1 = last.1.max(hi),
                _ => occupied.push((lo, hi)),
            }
        }
        AveragedCdf {
            parts,
            key_range,
            occupied,
        }
    }

    /// `key`, or the largest key below it that a contribution saw when it falls where none did.
    /// A model is flat over a gap between keys (its value there is that of the next key); the keys
    /// themselves lie at the gap's ends, as the leaves' key ranges record.
    fn snap(&self, key: f64) -> f64 {
        let after = self.occupied.partition_point(|range| range.0 <= key);
        match after.checked_sub(1).map(|i| self.occupied[i]) {
            Some((_, hi)) if key > hi => hi,
            _ => key,
        }
    }

    fn at(&self, key: f64) -> f64 {
        self.parts
            .iter()
            .map(|(model, share)| {
                share * model.predict(key) as f64 / model.config().hash_space_size as f64
            })
            .sum()
    }

    /// The largest key `x` of `[lo, key_range.1]` with `F(x) <= q` (or `lo`), found by bisection on
    /// order-preserving bit patterns: every f64 between two keys is a candidate. Largest, not
    /// smallest: where `F` jumps at a key `v` (a leaf boundary, a heavy duplicate) the quantiles
    /// inside the jump land just below `v`, so the refitted model keeps `F(v)` at `v` itself; and
    /// a quantile that ends in a gap where no contribution saw a key is snapped to the gap's start.
    fn quantile(&self, q: f64, lo: f64) -> f64 {
        let (mut below, mut above) = (ordered_bits(lo), ordered_bits(self.key_range.1));
        if self.at(lo) > q || self.at(self.key_range.1) <= q {
            return if self.at(lo) > q {
                lo
            } else {
                self.key_range.1
            };
        }
        // Invariant: F(below) <= q < F(above).
        while above - below > 1 {
            let mid = below + (above - below) / 2;
            if self.at(from_ordered_bits(mid)) <= q {
                below = mid;
            } else {
                above = mid;
            }
        }
        self.snap(from_ordered_bits(below))
    }
}

/// Checks the inputs of [`federated_average`] without averaging: at least one contribution of
/// positive weight, finite non-negative weights, trained models, a valid synthetic key count.
pub fn validate(contributions: &[Contribution], options: AverageOptions) -> Result<()> {
    let invalid = |message: String| Err(Error::InvalidArgument(message));
    if !(2..=MAX_SYNTHETIC_KEYS).contains(&options.synthetic_keys) {
        return invalid(format!(
            "synthetic keys must be between 2 and {MAX_SYNTHETIC_KEYS}, got {}",
            options.synthetic_keys
        ));
    }
    if contributions.is_empty() {
        return invalid("federated averaging needs at least one contribution".into());
    }
    for (i, contribution) in contributions.iter().enumerate() {
        if !(contribution.weight.is_finite() && contribution.weight >= 0.0) {
            return invalid(format!(
                "contribution {i} has weight {}: weights must be finite and non-negative",
                contribution.weight
            ));
        }
        if contribution.weight > 0.0 && !contribution.model.is_trained() {
            return invalid(format!(
                "contribution {i} is an untrained model with a positive weight"
            ));
        }
    }
    if contributions.iter().all(|c| c.weight == 0.0) {
        return invalid("federated averaging needs a contribution of positive weight".into());
    }
    let mut weighted = contributions.iter().filter(|c| c.weight > 0.0);
    let code = weighted.next().and_then(|c| c.model.key_code());
    if weighted.any(|c| c.model.key_code() != code) {
        return invalid(
            "contributions encode byte keys differently: a round's local models must share one key code"
                .into(),
        );
    }
    Ok(())
}

/// `F(key)`: the weighted average of the contributions' CDFs (`predict / hash_space_size`), in
/// `[0, 1]`. Contributions of weight 0 are ignored; weights need not sum to 1.
pub fn averaged_cdf(contributions: &[Contribution], key: f64) -> Result<f64> {
    validate(contributions, AverageOptions::default())?;
    Ok(AveragedCdf::new(contributions).at(key))
}

/// The global model of a federated round: an RMI of `config` fitted to the averaged CDF of the
/// contributions (see the module documentation). Its key range is the union of theirs, its
/// `num_keys` the number of synthetic keys, and its errors are measured on those keys. It encodes
/// byte keys by the contributions' key code (which they must share: their CDFs are over its values).
pub fn federated_average(
    config: RmiConfig,
    contributions: &[Contribution],
    options: AverageOptions,
) -> Result<Rmi> {
    config.validate()?;
    validate(contributions, options)?;
    let cdf = AveragedCdf::new(contributions);
    let n = options.synthetic_keys - 1;
    let mut keys = Vec::with_capacity(n + 1);
    let mut lo = cdf.key_range.0;
    for j in 0..n {
        lo = cdf.quantile(j as f64 / n as f64, lo);
        keys.push(lo);
    }
    keys.push(cdf.key_range.1);
    let code = cdf.parts[0].0.key_code().cloned();
    Rmi::train(config, &keys)?.with_key_code(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_bits_round_trip_in_order() {
        let keys = [-f64::MAX, -1.5, -0.0, 0.0, 1e-300, 2.0, f64::MAX];
        for pair in keys.windows(2) {
            assert!(ordered_bits(pair[0]) <= ordered_bits(pair[1]));
        }
        for key in keys {
            assert_eq!(
                from_ordered_bits(ordered_bits(key)).to_bits(),
                key.to_bits()
            );
        }
    }

    #[test]
    fn contributions_must_share_their_key_code() {
        use crate::keyed_training::train_with_key_code;
        let words = |tag: &str| -> Vec<Vec<u8>> {
            (0..400)
                .map(|i| format!("{tag}:{i:05}").into_bytes())
                .collect()
        };
        let (a, b) = (words("user"), words("item"));
        let (refs_a, refs_b): (Vec<&[u8]>, Vec<&[u8]>) = (
            a.iter().map(Vec::as_slice).collect(),
            b.iter().map(Vec::as_slice).collect(),
        );
        let config = RmiConfig::default();
        let first = train_with_key_code(config, &[], &refs_a).unwrap();
        let other = train_with_key_code(config, &[], &refs_b).unwrap();
        let contribution = |model| Contribution { model, weight: 1.0 };
        let options = AverageOptions {
            synthetic_keys: 1000,
        };
        let mixed = federated_average(
            config,
            &[contribution(&first), contribution(&other)],
            options,
        );
        assert_eq!(mixed.unwrap_err().code(), "ERR_DLHT_INVALID_ARGUMENT");
        // Trained under the first one's code, the second contribution averages with it.
        let code = first.key_code().cloned();
        let mut encoded: Vec<f64> = b.iter().map(|key| first.encode_bytes(key)).collect();
        encoded.sort_by(f64::total_cmp);
        let second = Rmi::train(config, &encoded)
            .unwrap()
            .with_key_code(code)
            .unwrap();
        let global = federated_average(
            config,
            &[contribution(&first), contribution(&second)],
            options,
        )
        .unwrap();
        assert_eq!(global.key_code(), first.key_code());
    }
}
