//! The two-stage Recursive Model Index: a root model picks one of `branching_factor` leaves and the
//! leaf maps the key to a ring position in key order, approximating its scaled rank (empirical CDF).

use std::ops::Range;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format;
use crate::key_code::KeyCode;
use crate::keys::{self, validate_sorted};
use crate::model::{
    from_ordered_bits, ordered_bits, HotModel, KeyScale, ModelType, Normalizer, Poly, Sums,
};

/// Largest accepted branching factor.
pub const MAX_BRANCHING_FACTOR: usize = 1_000_000;

/// Largest accepted hash space size: positions must fit in a signed 64-bit integer.
pub const MAX_HASH_SPACE_SIZE: u64 = 1 << 63;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RmiConfig {
    /// Number of leaf models (stage 2).
    pub branching_factor: usize,
    /// Shape of the leaf models.
    pub model_type: ModelType,
    /// Shape of the root model (stage 1).
    pub stage1_model_type: ModelType,
    /// Positions lie in `[0, hash_space_size)`.
    pub hash_space_size: u64,
}

impl Default for RmiConfig {
    fn default() -> Self {
        RmiConfig {
            branching_factor: 100,
            model_type: ModelType::Linear,
            stage1_model_type: ModelType::Linear,
            hash_space_size: 1 << 62,
        }
    }
}

impl RmiConfig {
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_BRANCHING_FACTOR).contains(&self.branching_factor) {
            return Err(Error::InvalidBranchingFactor {
                got: self.branching_factor as u64,
                max: MAX_BRANCHING_FACTOR as u64,
            });
        }
        if !(2..=MAX_HASH_SPACE_SIZE).contains(&self.hash_space_size) {
            return Err(Error::InvalidHashSpace(self.hash_space_size.into()));
        }
        Ok(())
    }
}

/// Stage 1, in two steps. The polynomial `p(t) = c0 + c1·t + c2·t² + c3·t³` (`coefficients`) maps
/// the key, normalised from `[key_min, key_max]` to `t ∈ [0, 1]` on `key_scale`, to a cell
/// `⌊p(t)⌋` clamped to `[0, cells)`; the cell's leaf is the last `b` with `leaf_starts[b] <= cell`.
///
/// Training, on a linear and on a log key scale: the bulk of the keys (all but outliers and a mass
/// of duplicates at either end, which lie beyond a gap) is spread over the inner cells by a line, or
/// by a fitted cubic stretched to them, and the end cells take what lies beyond, each with a leaf of
/// its own. Then the cells are cut into leaves at the keys' quantiles (each cell goes to the leaf of
/// the rank at its middle; after a stretch of empty cells a new leaf starts), and the scale whose
/// leaves are the more even is kept. So leaves are balanced to within a cell (or one key's
/// duplicates) however well the polynomial fits, and a small change of the key set moves a leaf
/// boundary by about a cell: a model cannot flip between a good and a poor fit.
#[derive(Clone, Debug, PartialEq)]
pub struct RootModel {
    /// `Linear` also when a cubic fit fell back to a line.
    pub model_type: ModelType,
    pub key_scale: KeyScale,
    pub key_min: f64,
    pub key_max: f64,
    pub coefficients: [f64; 4],
    /// Number of cells, at most [`MAX_CELLS`].
    pub cells: u32,
    /// First cell of each leaf (`branching_factor` of them): 0, then non-decreasing, at most `cells`.
    pub leaf_starts: Vec<u32>,
}

/// Largest accepted number of root cells.
pub const MAX_CELLS: u32 = 1 << 22;

/// Cells per leaf in a trained root: enough that a leaf's size is balanced to a few percent, few
/// enough that the table (4 bytes a cell) stays in the first-level cache beside the leaves.
const CELLS_PER_LEAF: usize = 16;

/// Smallest branching factor whose end leaves are kept for the keys beyond a gap at either end:
/// fewer leaves would leave too few for the bulk.
const RESERVE_END_LEAVES_FROM: usize = 16;

/// Number of root cells for a branching factor.
fn cell_count(branching_factor: usize) -> u32 {
    (branching_factor * CELLS_PER_LEAF).min(1 << 20) as u32
}

/// The cell → leaf table of `leaf_starts` (checked by the caller).
fn cell_table(cells: u32, leaf_starts: &[u32]) -> Vec<u32> {
    let mut table = vec![0; cells as usize];
    for (leaf, pair) in leaf_starts.windows(2).enumerate() {
        table[pair[0] as usize..pair[1] as usize].fill(leaf as u32);
    }
    if let Some(&last) = leaf_starts.last() {
        table[last as usize..].fill(leaf_starts.len() as u32 - 1);
    }
    table
}

/// Stage 2: `position = ⌊clamp(p(t), position_lo, position_hi)⌋` with `t` the key normalised from
/// `[key_lo, key_hi]` (the leaf's first and last training keys) to `[0, 1]` and `p` as in
/// [`RootModel`], in positions. Both stages evaluate `p` in a rounding-safe monotone form, so
/// predictions match the formula up to f64 rounding. A cubic leaf whose fit was not monotone holds
/// a quadratic or a line (then `model_type` is `Linear`). The least-squares fit is squeezed so that
/// `p(0)` and `p(1)` lie in `[0, position_hi − position_lo]` (see `Sums::fit_within`): the clamp
/// no longer piles the training keys beyond a crossing on one position. An empty leaf is the constant
/// `position_lo = position_hi`, the start of the next non-empty leaf. A key the root sends here that
/// lies below `key_lo` (above `key_hi`), between trained keys, gets `position_lo` (`position_hi`):
/// the scaled number of trained keys below it. Errors are in positions, measured exactly on the
/// training keys.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Leaf {
    pub model_type: ModelType,
    pub key_lo: f64,
    pub key_hi: f64,
    pub coefficients: [f64; 4],
    pub position_lo: f64,
    pub position_hi: f64,
    pub max_error: f64,
    pub mean_error: f64,
    pub num_keys: u64,
}

/// Error of a model on its training keys, in positions.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingStats {
    pub num_keys: u64,
    pub mean_error: f64,
    pub max_error: f64,
    /// Size of the serialized model ([`format::serialize`]).
    pub model_bytes: u64,
    pub leaves: Vec<LeafStats>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LeafStats {
    pub num_keys: u64,
    pub mean_error: f64,
    pub max_error: f64,
}

/// Largest f64 below 2^63. Positions are clamped to it, so converting one to an integer is a single
/// signed conversion (x86 has no unsigned one).
const POSITION_LIMIT: f64 = 9_223_372_036_854_774_784.0;

/// The evaluation form of a leaf; `None` when its coefficients are not a monotone model.
fn leaf_model(leaf: &Leaf) -> Option<HotModel> {
    let poly = Poly::from_coefficients(leaf.model_type, leaf.coefficients)?;
    let norm = Normalizer::new(leaf.key_lo, leaf.key_hi);
    let (lo, hi) = (
        leaf.position_lo.min(POSITION_LIMIT),
        leaf.position_hi.min(POSITION_LIMIT),
    );
    Some(HotModel::new(norm, poly, lo, hi))
}

/// The root's cell for `key`.
#[inline(always)]
fn cell<const LINEAR: bool>(root: &HotModel, key: f64) -> usize {
    // SAFETY: `eval` clamps to [0, cells − 1] ⊂ [0, MAX_CELLS] and maps NaN to 0.
    unsafe { root.eval::<LINEAR>(key).to_int_unchecked::<u32>() as usize }
}

/// The root's leaf for `key`: its cell's entry in the table.
#[inline(always)]
fn bucket<const LINEAR: bool>(root: &HotModel, table: &[u32], key: f64) -> usize {
    let cell = cell::<LINEAR>(root, key);
    debug_assert!(cell < table.len());
    // SAFETY: `root` clamps to [0, cells − 1] and `from_parts` built `table` with `cells` entries.
    unsafe { *table.get_unchecked(cell) as usize }
}

/// The leaf's position for `key`: monotone, as the model is and flooring is.
#[inline(always)]
fn position<const LINEAR: bool>(leaf: &HotModel, key: f64, max_position: u64) -> u64 {
    // SAFETY: `eval` clamps to [position_lo, position_hi] capped at POSITION_LIMIT, a range
    // `from_parts` checked lies in [0, 2^63), and maps NaN to its lower end.
    let position = unsafe { leaf.eval_leaf::<LINEAR>(key).to_int_unchecked::<i64>() };
    (position as u64).min(max_position)
}

/// A trained or untrained two-stage RMI. Positions never decrease as keys grow.
#[derive(Clone, Debug, PartialEq)]
pub struct Rmi {
    config: RmiConfig,
    root: RootModel,
    leaves: Vec<Leaf>,
    num_keys: u64,
    key_range: (f64, f64),
    // Derived from `root` and `leaves` by `from_parts`: the flat form predictions read.
    root_hot: HotModel,
    /// The leaf of each root cell.
    root_table: Vec<u32>,
    hot: Vec<HotModel>,
    /// The code byte keys are encoded with for this model; none: the fixed text code.
    key_code: Option<Arc<KeyCode>>,
}

impl Rmi {
    /// A model that has seen no keys: maps every f64 onto the ring in order, by its
    /// order-preserving bit pattern scaled to `[0, H)`. `root()` is a zero placeholder over the whole
    /// f64 range and `leaves()` is empty.
    pub fn untrained(config: RmiConfig) -> Result<Rmi> {
        config.validate()?;
        Ok(Rmi {
            config,
            root: RootModel {
                model_type: ModelType::Linear,
                key_scale: KeyScale::Linear,
                key_min: -f64::MAX,
                key_max: f64::MAX,
                coefficients: [0.0; 4],
                cells: 1,
                leaf_starts: vec![0],
            },
            leaves: Vec::new(),
            num_keys: 0,
            key_range: (-f64::MAX, f64::MAX),
            root_hot: HotModel::new(
                Normalizer::new(-f64::MAX, f64::MAX),
                Poly::constant(0.0),
                0.0,
                0.0,
            ),
            root_table: vec![0],
            hot: Vec::new(),
            key_code: None,
        })
    }

    /// Learns the distribution of `sorted_keys` (ascending, finite, duplicates allowed) so that each
    /// key's position approximates `rank·H/n`, `rank` being the index of its first occurrence.
    /// Passes over the keys: validation, a cubic root's sums on each key scale (a linear root needs
    /// none), leaf sums, leaf errors. The root's cells are found by galloping over the sorted keys.
    pub fn train(config: RmiConfig, sorted_keys: &[f64]) -> Result<Rmi> {
        config.validate()?;
        validate_sorted(sorted_keys)?;
        let keys = sorted_keys;
        let n = keys.len();
        let branching = config.branching_factor;
        // Stage 1, on whichever key scale spreads the keys more evenly over the leaves: skewed
        // keys crowd into a few cells on a linear scale, evenly spread ones on a log scale.
        let RootFit { root, runs, .. } = [KeyScale::Linear, KeyScale::Log]
            .map(|scale| RootFit::new(&config, keys, scale))
            .into_iter()
            .min_by_key(|fit| fit.crowding)
            .expect("two candidate roots");

        let h = config.hash_space_size;
        let mut leaves = vec![empty_leaf(0.0); branching];
        for (b, range) in &runs {
            let run = &keys[range.clone()];
            let mut ranks = ScaledRank::new(range.start, h, n);
            let position_lo = ranks.at(range.start);
            let targets =
                lower_bounds(run).map(|first| (ranks.at(range.start + first) - position_lo) as f64);
            let (sums, distinct) = accumulate(
                config.model_type,
                run,
                &Normalizer::new(run[0], run[run.len() - 1]),
                targets,
            );
            // The leaf's positions end where the next leaf's begin (the last at H − 1).
            let span = (ranks.at(range.end).min(h - 1) - position_lo) as f64;
            let (model_type, mut coefficients) = sums.fit_within(config.model_type, distinct, span);
            // Fitted relative to the leaf's start for precision; stored absolute.
            coefficients[0] += position_lo as f64;
            leaves[*b] = Leaf {
                model_type,
                key_lo: run[0],
                key_hi: run[run.len() - 1],
                coefficients,
                position_lo: position_lo as f64,
                num_keys: run.len() as u64,
                ..empty_leaf(0.0)
            };
        }
        link_leaves(&mut leaves, h);

        for (b, range) in runs {
            let run = &keys[range.clone()];
            let mut ranks = ScaledRank::new(range.start, h, n);
            let targets = lower_bounds(run).map(|first| ranks.at(range.start + first));
            let leaf = &mut leaves[b];
            (leaf.max_error, leaf.mean_error) = measure(&config, leaf, run, targets);
        }

        Rmi::from_parts(config, root, leaves, n as u64, (keys[0], keys[n - 1]))
    }

    /// Rebuilds a model from its parts (`toDict`, model files), checking everything a prediction
    /// relies on; a violation is [`Error::CorruptModel`] saying which part is wrong. `key_range` is
    /// the smallest and largest trained key ([`Rmi::key_range`]); it contains the root's interval.
    pub fn from_parts(
        config: RmiConfig,
        root: RootModel,
        leaves: Vec<Leaf>,
        num_keys: u64,
        key_range: (f64, f64),
    ) -> Result<Rmi> {
        config.validate()?;
        let corrupt = |reason: String| Err(Error::CorruptModel(reason));
        if root.model_type == ModelType::Cubic && config.stage1_model_type == ModelType::Linear {
            return corrupt("root model is cubic but the stage 1 model type is linear".into());
        }
        if !(root.key_min.is_finite() && root.key_max.is_finite() && root.key_min <= root.key_max) {
            return corrupt(format!(
                "root key range [{}, {}] is not an ordered finite range",
                root.key_min, root.key_max
            ));
        }
        let (key_min, key_max) = key_range;
        if !(key_min.is_finite()
            && key_min <= root.key_min
            && root.key_max <= key_max
            && key_max.is_finite())
        {
            return corrupt(format!(
                "key range {key_range:?} does not contain the root's [{}, {}]",
                root.key_min, root.key_max
            ));
        }
        let Some(root_poly) = Poly::from_coefficients(root.model_type, root.coefficients) else {
            return corrupt(format!(
                "root coefficients {:?} are not a monotone {} model",
                root.coefficients, root.model_type
            ));
        };
        if !(1..=MAX_CELLS).contains(&root.cells) {
            return corrupt(format!(
                "root has {} cells: expected 1 to {MAX_CELLS}",
                root.cells
            ));
        }
        if root.leaf_starts.len() != config.branching_factor
            || root.leaf_starts.first() != Some(&0)
            || root.leaf_starts.windows(2).any(|w| w[0] > w[1])
            || root.leaf_starts.iter().any(|&start| start > root.cells)
        {
            return corrupt(format!(
                "root leaf starts are not {} non-decreasing cells from 0 to at most {}",
                config.branching_factor, root.cells
            ));
        }
        if leaves.len() != config.branching_factor {
            return corrupt(format!(
                "{} leaves for a branching factor of {}",
                leaves.len(),
                config.branching_factor
            ));
        }
        let max_position = (config.hash_space_size - 1) as f64;
        let mut hot = Vec::with_capacity(leaves.len());
        let mut previous_hi = 0.0;
        let mut total = 0u64;
        for (i, leaf) in leaves.iter().enumerate() {
            let problem = if leaf.model_type == ModelType::Cubic
                && config.model_type == ModelType::Linear
            {
                Some("is cubic but the model type is linear")
            } else if !(leaf.key_lo.is_finite()
                && leaf.key_hi.is_finite()
                && leaf.key_lo <= leaf.key_hi)
            {
                Some("has no ordered finite key range")
            } else if !(previous_hi <= leaf.position_lo
                && leaf.position_lo <= leaf.position_hi
                && leaf.position_hi <= max_position)
            {
                Some("has a position range that is unordered, overlaps the previous leaf's or leaves the hash space")
            } else if !(leaf.max_error >= 0.0
                && leaf.max_error.is_finite()
                && leaf.mean_error >= 0.0
                && leaf.mean_error.is_finite())
            {
                Some("has an invalid error")
            } else {
                None
            };
            let hot_leaf = leaf_model(leaf);
            match (problem, hot_leaf) {
                (None, Some(hot_leaf)) => hot.push(hot_leaf),
                (Some(problem), _) => return corrupt(format!("leaf {i} {problem}: {leaf:?}")),
                (None, None) => {
                    return corrupt(format!(
                        "leaf {i} coefficients are not a monotone {} model: {leaf:?}",
                        leaf.model_type
                    ))
                }
            }
            previous_hi = leaf.position_hi;
            total = total.saturating_add(leaf.num_keys);
        }
        if num_keys == 0 || total != num_keys {
            return corrupt(format!(
                "{num_keys} keys in total but the leaves hold {total}"
            ));
        }
        Ok(Rmi {
            config,
            root_hot: HotModel::new(
                Normalizer::with_scale(root.key_scale, root.key_min, root.key_max),
                root_poly,
                0.0,
                f64::from(root.cells - 1),
            ),
            root_table: cell_table(root.cells, &root.leaf_starts),
            root,
            leaves,
            num_keys,
            key_range,
            hot,
            key_code: None,
        })
    }

    /// The model with `key_code` as the code of its byte keys (its keys must have been encoded by
    /// it). Errors: a code on an untrained model, which encodes keys without one.
    pub fn with_key_code(mut self, key_code: Option<Arc<KeyCode>>) -> Result<Rmi> {
        if key_code.is_some() && !self.is_trained() {
            return Err(Error::InvalidArgument(
                "an untrained model has no key code".into(),
            ));
        }
        self.key_code = key_code;
        Ok(self)
    }

    /// The code of this model's byte keys, if it has one (else the fixed text code).
    pub fn key_code(&self) -> Option<&Arc<KeyCode>> {
        self.key_code.as_ref()
    }

    /// A byte key (a string's UTF-8 bytes) as this model's input: by its key code, or the fixed
    /// text code. Non-decreasing in the bytes' lexicographic order.
    pub fn encode_bytes(&self, bytes: &[u8]) -> f64 {
        match &self.key_code {
            Some(code) => code.encode(bytes),
            None => keys::encode_bytes(bytes),
        }
    }

    pub fn config(&self) -> &RmiConfig {
        &self.config
    }

    pub fn is_trained(&self) -> bool {
        !self.hot.is_empty()
    }

    /// Number of keys the model was trained on.
    pub fn num_keys(&self) -> u64 {
        self.num_keys
    }

    /// Smallest and largest trained key; untrained: `(-f64::MAX, f64::MAX)`.
    pub fn key_range(&self) -> (f64, f64) {
        self.key_range
    }

    pub fn root(&self) -> &RootModel {
        &self.root
    }

    pub fn leaves(&self) -> &[Leaf] {
        &self.leaves
    }

    /// The leaf the root picks for `key` (untrained: the slice of the ring the key falls in).
    pub fn bucket_of(&self, key: f64) -> usize {
        if !self.is_trained() {
            let position = untrained_position(key, self.config.hash_space_size);
            let scaled = position as u128 * self.config.branching_factor as u128;
            (scaled / self.config.hash_space_size as u128) as usize
        } else if self.config.stage1_model_type == ModelType::Linear {
            bucket::<true>(&self.root_hot, &self.root_table, key)
        } else {
            bucket::<false>(&self.root_hot, &self.root_table, key)
        }
    }

    /// Position of `key` in `[0, H)`. Keys below the trained range (and NaN) map to 0, keys above
    /// it to `H − 1`.
    #[inline]
    pub fn predict(&self, key: f64) -> u64 {
        match self.paths() {
            Some((true, true)) => self.trained_position::<true, true>(key),
            Some((true, false)) => self.trained_position::<true, false>(key),
            Some((false, true)) => self.trained_position::<false, true>(key),
            Some((false, false)) => self.trained_position::<false, false>(key),
            None => untrained_position(key, self.config.hash_space_size),
        }
    }

    /// Position and error bound: every trained key's scaled rank `⌊rank·H/n⌋` lies within
    /// `position ± error`. For other keys the bound is their leaf's and not guaranteed; an untrained
    /// model reports 0.
    pub fn predict_with_error(&self, key: f64) -> (u64, u64) {
        let error = self
            .leaves
            .get(self.bucket_of(key))
            .map_or(0, |leaf| leaf.max_error as u64);
        (self.predict(key), error)
    }

    /// `(predict(key_min), predict(key_max))`: by monotonicity it contains the position of every key
    /// in `[key_min, key_max]`.
    pub fn predict_range(&self, key_min: f64, key_max: f64) -> Result<(u64, u64)> {
        if key_min.is_nan() || key_max.is_nan() || key_min > key_max {
            return Err(Error::InvalidArgument(format!(
                "range bounds must be ordered numbers, got [{key_min}, {key_max}]"
            )));
        }
        Ok((self.predict(key_min), self.predict(key_max)))
    }

    /// Predicts every key of `keys` into `out` (same length), without allocating.
    pub fn predict_many(&self, keys: &[f64], out: &mut [u64]) -> Result<()> {
        if keys.len() != out.len() {
            return Err(Error::InvalidArgument(format!(
                "output length {} differs from the {} keys",
                out.len(),
                keys.len()
            )));
        }
        // Branching once, outside the loop, keeps the loop body straight-line.
        fn fill(keys: &[f64], out: &mut [u64], position: impl Fn(f64) -> u64) {
            for (slot, &key) in out.iter_mut().zip(keys) {
                *slot = position(key);
            }
        }
        let h = self.config.hash_space_size;
        match self.paths() {
            Some((true, true)) => fill(keys, out, |key| self.trained_position::<true, true>(key)),
            Some((true, false)) => fill(keys, out, |key| self.trained_position::<true, false>(key)),
            Some((false, true)) => fill(keys, out, |key| self.trained_position::<false, true>(key)),
            Some((false, false)) => {
                fill(keys, out, |key| self.trained_position::<false, false>(key))
            }
            None => fill(keys, out, |key| untrained_position(key, h)),
        }
        Ok(())
    }

    /// Refits leaf `bucket_id` on `sorted_keys` with target `positions` (in positions, below H) and
    /// recomputes its errors against them. The leaf keeps its position range, so positions stay
    /// monotone across leaves; keys the root sends elsewhere do not get this leaf's bound.
    pub fn update_leaf(
        &mut self,
        bucket_id: usize,
        sorted_keys: &[f64],
        positions: &[u64],
    ) -> Result<()> {
        if !self.is_trained() {
            return Err(Error::InvalidArgument(
                "cannot update a leaf of an untrained model".into(),
            ));
        }
        if bucket_id >= self.leaves.len() {
            return Err(Error::InvalidArgument(format!(
                "bucket {bucket_id} out of range: the model has {} leaves",
                self.leaves.len()
            )));
        }
        if sorted_keys.len() != positions.len() {
            return Err(Error::InvalidArgument(format!(
                "{} keys but {} positions",
                sorted_keys.len(),
                positions.len()
            )));
        }
        validate_sorted(sorted_keys)?;
        let h = self.config.hash_space_size;
        if let Some(i) = positions.iter().position(|&p| p >= h) {
            return Err(Error::InvalidArgument(format!(
                "position {} at index {i} is outside the hash space [0, {h})",
                positions[i]
            )));
        }
        let keys = sorted_keys;
        let old = self.leaves[bucket_id];
        let norm = Normalizer::new(keys[0], keys[keys.len() - 1]);
        let targets = positions.iter().map(|&p| p as f64 - old.position_lo);
        let (sums, distinct) = accumulate(self.config.model_type, keys, &norm, targets);
        let span = old.position_hi - old.position_lo;
        let (model_type, mut coefficients) =
            sums.fit_within(self.config.model_type, distinct, span);
        coefficients[0] += old.position_lo;
        let mut leaf = Leaf {
            model_type,
            key_lo: keys[0],
            key_hi: keys[keys.len() - 1],
            coefficients,
            num_keys: keys.len() as u64,
            ..old
        };
        (leaf.max_error, leaf.mean_error) =
            measure(&self.config, &leaf, keys, positions.iter().copied());
        let hot = leaf_model(&leaf).expect("fitted coefficients are monotone");
        self.num_keys = self.num_keys - old.num_keys + leaf.num_keys;
        self.leaves[bucket_id] = leaf;
        self.hot[bucket_id] = hot;
        Ok(())
    }

    pub fn stats(&self) -> TrainingStats {
        let leaves: Vec<LeafStats> = self
            .leaves
            .iter()
            .map(|leaf| LeafStats {
                num_keys: leaf.num_keys,
                mean_error: leaf.mean_error,
                max_error: leaf.max_error,
            })
            .collect();
        let weighted: f64 = leaves
            .iter()
            .map(|leaf| leaf.mean_error * leaf.num_keys as f64)
            .sum();
        TrainingStats {
            num_keys: self.num_keys,
            mean_error: if self.num_keys == 0 {
                0.0
            } else {
                weighted / self.num_keys as f64
            },
            max_error: leaves.iter().map(|leaf| leaf.max_error).fold(0.0, f64::max),
            model_bytes: format::encoded_len(self) as u64,
            leaves,
        }
    }

    /// For a trained model, whether the root and the leaves take the linear evaluation path.
    fn paths(&self) -> Option<(bool, bool)> {
        self.is_trained().then_some((
            self.config.stage1_model_type == ModelType::Linear,
            self.config.model_type == ModelType::Linear,
        ))
    }

    #[inline(always)]
    fn trained_position<const ROOT_LINEAR: bool, const LEAF_LINEAR: bool>(&self, key: f64) -> u64 {
        let max_position = self.config.hash_space_size - 1;
        let bucket = bucket::<ROOT_LINEAR>(&self.root_hot, &self.root_table, key);
        debug_assert!(bucket < self.hot.len());
        // SAFETY: the table holds leaf indices below `leaf_starts.len()`, which `from_parts` checked
        // is the branching factor, the number of leaves in `hot`.
        let leaf = unsafe { self.hot.get_unchecked(bucket) };
        // Keys below (above) the trained range reach a leaf no later (earlier) than the first (last)
        // with keys, and get its start, 0 (its end, H − 1): the leaf's own range check is the
        // model's.
        position::<LEAF_LINEAR>(leaf, key, max_position)
    }
}

/// A candidate root: its fit on one key scale and the runs of sorted keys it sends to each leaf.
struct RootFit {
    root: RootModel,
    runs: Vec<(usize, Range<usize>)>,
    /// Σ (keys per leaf)²: n²/branching when perfectly even, n² when all keys share a leaf.
    crowding: u128,
}

impl RootFit {
    /// Maps the bulk of the keys onto cells `1..cells − 1` on `scale` (a line, or a fitted cubic
    /// stretched to it), finds how many keys land in each cell, and cuts the cells into leaves at
    /// the keys' quantiles. Trimmed keys and duplicate runs at the ends get the end cells.
    fn new(config: &RmiConfig, keys: &[f64], scale: KeyScale) -> RootFit {
        let n = keys.len();
        let branching = config.branching_factor;
        let cells = cell_count(branching);
        let (bulk_lo, bulk_hi) = bulk(scale, keys, cells);
        let (key_min, key_max) = widened(scale, keys, bulk_lo, bulk_hi, cells);
        let norm = Normalizer::with_scale(scale, key_min, key_max);
        let fit = (config.stage1_model_type == ModelType::Cubic).then(|| {
            let per_key = f64::from(cells) / n as f64;
            let targets = lower_bounds(keys).map(|first| first as f64 * per_key);
            let (sums, distinct) = accumulate(ModelType::Cubic, keys, &norm, targets);
            sums.fit(ModelType::Cubic, distinct).1
        });
        let (model_type, coefficients, poly) =
            spanning(fit, norm.t(bulk_lo), norm.t(bulk_hi), cells);
        let hot = HotModel::new(norm, poly, 0.0, f64::from(cells - 1));
        let linear = config.stage1_model_type == ModelType::Linear;
        let cell_of = |key: f64| {
            if linear {
                cell::<true>(&hot, key)
            } else {
                cell::<false>(&hot, key)
            }
        };
        // The root is monotone, so each cell's keys form one run of the sorted keys: `ends[c]` is
        // the end of cell c's run (the number of keys in cells up to c).
        let mut ends = vec![0usize; cells as usize];
        let mut start = 0;
        while start < n {
            let c = cell_of(keys[start]);
            start += run_length(&keys[start..], |key| cell_of(key) == c);
            ends[c] = start;
        }
        // Keys beyond a gap at either end (in an end cell) get the end leaf to themselves, so no
        // leaf's line spans the gap. Each inner cell goes to the inner leaf of the rank at its
        // middle among the inner keys: `low + ⌊inner_leaves·(middle − inner_start)/inner_keys⌋`.
        // Leaves no cell goes to are empty: they start where the next one does (or at `cells`).
        let last_cell = cells as usize - 1;
        let (inner_start, inner_end) = (
            ends[0],
            ends[..last_cell].iter().copied().max().unwrap_or(0),
        );
        let (low, high) = if branching >= RESERVE_END_LEAVES_FROM {
            (usize::from(inner_start > 0), usize::from(inner_end < n))
        } else {
            (0, 0)
        };
        let inner_leaves = (branching - low - high) as u128;
        let inner_keys = inner_end.saturating_sub(inner_start).max(1) as u128;
        let mut leaf_starts = vec![cells; branching];
        let mut next_leaf: usize = 0;
        let mut runs: Vec<(usize, Range<usize>)> = Vec::new();
        let mut begin = 0;
        let mut gap_cells = 0;
        for (c, &cell_end) in ends.iter().enumerate() {
            let end = cell_end.max(begin);
            let leaf = match c {
                0 if low == 1 => 0,
                c if c == last_cell && high == 1 => branching - 1,
                _ => {
                    let share = |twice_rank: usize| {
                        let rank = twice_rank.saturating_sub(2 * inner_start) as u128;
                        low + (inner_leaves * rank / (2 * inner_keys)) as usize
                    };
                    // After a gap (empty cells) a cell starts a new leaf, so that no leaf's line
                    // spans the gap, if it reaches into that leaf's share, or if the gap is a
                    // leaf's worth of cells and the new leaf is at most one ahead of its share;
                    // and never goes back to an earlier leaf than the previous cell's.
                    let mut leaf = share(begin + end).max(next_leaf.saturating_sub(1));
                    let ahead = if gap_cells >= CELLS_PER_LEAF { 1 } else { 0 };
                    if gap_cells > 0
                        && end > begin
                        && next_leaf > 0
                        && next_leaf <= share(2 * end) + ahead
                    {
                        leaf = leaf.max(next_leaf);
                    }
                    leaf.min(branching - 1 - high)
                }
            };
            gap_cells = if end == begin && c > 0 {
                gap_cells + 1
            } else {
                0
            };
            if leaf >= next_leaf {
                leaf_starts[next_leaf..=leaf].fill(c as u32);
                next_leaf = leaf + 1;
            }
            if end > begin {
                match runs.last_mut() {
                    Some((b, range)) if *b == leaf => range.end = end,
                    _ => runs.push((leaf, begin..end)),
                }
            }
            begin = end;
        }
        let crowding = runs
            .iter()
            .map(|(_, range)| (range.len() as u128).pow(2))
            .sum();
        RootFit {
            root: RootModel {
                model_type,
                key_scale: scale,
                key_min,
                key_max,
                coefficients,
                cells,
                leaf_starts,
            },
            runs,
            crowding,
        }
    }
}

/// The root polynomial: `fit` (a cubic's coefficients) or a line, stretched so that the bulk of the
/// keys, `t ∈ [t_lo, t_hi]`, maps onto `[1.25, cells − 1.25]`, cells 1 to `cells − 2` with a
/// margin against rounding; keys below go to cell 0 and keys above to the last cell (a line puts
/// them there when [`widened`] had room, a cubic nearly). A cubic that is flat there, or that
/// stretching makes non-monotone by rounding, gives way to the line.
fn spanning(
    fit: Option<[f64; 4]>,
    t_lo: f64,
    t_hi: f64,
    cells: u32,
) -> (ModelType, [f64; 4], Poly) {
    const MARGIN: f64 = 1.25;
    let room = f64::from(cells) - 2.0 * MARGIN;
    let stretch = |c: [f64; 4]| {
        let at = |t: f64| c[0] + t * (c[1] + t * (c[2] + t * c[3]));
        let scale = room / (at(t_hi) - at(t_lo));
        [
            MARGIN + (c[0] - at(t_lo)) * scale,
            c[1] * scale,
            c[2] * scale,
            c[3] * scale,
        ]
    };
    if let Some(c) = fit.map(stretch) {
        if let Some(poly) = Poly::from_coefficients(ModelType::Cubic, c) {
            return (ModelType::Cubic, c, poly);
        }
    }
    let line = stretch([0.0, 1.0, 0.0, 0.0]);
    match Poly::from_coefficients(ModelType::Linear, line) {
        Some(poly) => (ModelType::Linear, line, poly),
        // The bulk is a single key (t_lo = t_hi): every key in one cell.
        None => (ModelType::Linear, [0.0; 4], Poly::constant(0.0)),
    }
}

/// `[bulk_lo, bulk_hi]` widened by one cell's width on `scale` at each end (but not beyond the keys),
/// so that keys outside the bulk, clamped to the ends, fall into cells of their own.
fn widened(scale: KeyScale, keys: &[f64], bulk_lo: f64, bulk_hi: f64, cells: u32) -> (f64, f64) {
    let (first, last) = (keys[0], keys[keys.len() - 1]);
    let room = u64::from(cells - 2);
    match scale {
        KeyScale::Linear => {
            let cell = (bulk_hi * 0.5 - bulk_lo * 0.5) / room as f64 * 2.0;
            let (lo, hi) = (bulk_lo - cell, bulk_hi + cell);
            (
                if lo > first { lo } else { first },
                if hi < last { hi } else { last },
            )
        }
        KeyScale::Log => {
            let (lo, hi) = (ordered_bits(bulk_lo), ordered_bits(bulk_hi));
            let cell = (hi - lo) / room;
            (
                from_ordered_bits(lo.saturating_sub(cell).max(ordered_bits(first))),
                from_ordered_bits(hi.saturating_add(cell).min(ordered_bits(last))),
            )
        }
    }
}

/// The bulk of the keys, which the root spreads over its inner cells: on a linear scale `keys`
/// without their `(n − 1) / (2·cells)` smallest and largest keys (half a cell's worth), so that a few
/// outliers cannot squeeze the rest into a few cells; on a log scale, where they cannot, all keys.
/// A run of duplicates at the cut goes out whole if it is the smallest (largest) key's and stays in
/// whole otherwise; then the bulk grows back over the keys less than a cell apart on `scale`. What
/// is left out at either end lies beyond a gap (outliers, a mass of zeros below keys over many
/// decades) and gets an end cell of its own.
fn bulk(scale: KeyScale, keys: &[f64], cells: u32) -> (f64, f64) {
    let n = keys.len();
    let trim = match scale {
        KeyScale::Linear => (n - 1) / (2 * cells as usize),
        KeyScale::Log => 0,
    };
    let (first, last) = (keys[trim], keys[n - 1 - trim]);
    let mut lo = if first == keys[0] {
        keys.partition_point(|&key| key <= first)
    } else {
        keys.partition_point(|&key| key < first)
    };
    let mut hi = if last == keys[n - 1] {
        keys.partition_point(|&key| key < last)
    } else {
        keys.partition_point(|&key| key <= last)
    };
    // `hi` is one past the bulk's last key; nothing left means the keys are one or two runs.
    if lo + 1 > hi {
        (lo, hi) = (trim, n - trim);
    }
    hi -= 1;
    // Coordinates on the scale, halved so that no difference overflows.
    let at = |i: usize| match scale {
        KeyScale::Linear => keys[i] * 0.5,
        KeyScale::Log => ordered_bits(keys[i]) as f64 * 0.5,
    };
    let cell = (at(hi) - at(lo)) / (f64::from(cells) - 2.5);
    while lo > 0 && at(lo) - at(lo - 1) < cell {
        lo -= 1;
    }
    while hi + 1 < n && at(hi + 1) - at(hi) < cell {
        hi += 1;
    }
    (keys[lo], keys[hi])
}

/// Order-preserving map of all f64 onto `[0, h)`: the bit pattern with the sign bit flipped for
/// positives and all bits flipped for negatives is monotone in the value; scaled by `h / 2^64`.
/// `-0.0` is folded onto `+0.0` and NaN onto `-∞`, as trained models do.
#[inline(always)]
fn untrained_position(key: f64, h: u64) -> u64 {
    let ordered = ordered_bits(key.max(f64::NEG_INFINITY) + 0.0);
    ((ordered as u128 * h as u128) >> 64) as u64
}

/// Least-squares sums of the normalised keys against their targets, with the number of distinct
/// keys. Cubic sums are only gathered when a cubic will be fitted.
fn accumulate(
    model_type: ModelType,
    keys: &[f64],
    norm: &Normalizer,
    targets: impl Iterator<Item = f64>,
) -> (Sums, u64) {
    fn run<const CUBIC: bool>(
        keys: &[f64],
        norm: &Normalizer,
        targets: impl Iterator<Item = f64>,
    ) -> (Sums, u64) {
        let mut sums = Sums::default();
        let mut distinct = 0;
        let mut previous = f64::NAN;
        for (&key, y) in keys.iter().zip(targets) {
            distinct += u64::from(key != previous);
            previous = key;
            sums.add::<CUBIC>(norm.t(key), y);
        }
        (sums, distinct)
    }
    match model_type {
        ModelType::Linear => run::<false>(keys, norm, targets),
        ModelType::Cubic => run::<true>(keys, norm, targets),
    }
}

/// Largest (rounded up to an f64) and mean distance between each key's predicted position and its
/// target, computed on the integer positions `predict` returns, along the same evaluation path.
fn measure(
    config: &RmiConfig,
    leaf: &Leaf,
    keys: &[f64],
    targets: impl Iterator<Item = u64>,
) -> (f64, f64) {
    let model = leaf_model(leaf).expect("fitted coefficients are monotone");
    let max_position = config.hash_space_size - 1;
    let linear = config.model_type == ModelType::Linear;
    let mut max = 0u64;
    let mut sum = 0u128;
    for (&key, target) in keys.iter().zip(targets) {
        let predicted = if linear {
            position::<true>(&model, key, max_position)
        } else {
            position::<false>(&model, key, max_position)
        };
        let error = predicted.abs_diff(target);
        max = max.max(error);
        sum += u128::from(error);
    }
    (ceil_to_f64(max), sum as f64 / keys.len().max(1) as f64)
}

/// `x` as the nearest f64 not below it, so a bound stored as f64 stays a bound.
fn ceil_to_f64(x: u64) -> f64 {
    let f = x as f64;
    if (f as u64) < x {
        f.next_up()
    } else {
        f
    }
}

/// Index of each key's first occurrence in a sorted run: its lower-bound rank within the run.
fn lower_bounds(keys: &[f64]) -> impl Iterator<Item = usize> + '_ {
    let mut first = 0;
    let mut previous = f64::NAN;
    keys.iter().enumerate().map(move |(i, &key)| {
        if key != previous {
            first = i;
            previous = key;
        }
        first
    })
}

/// Length of the prefix of `keys` (at least 1) for which `in_run` holds, `in_run` being true then
/// false: a galloping search, so finding every leaf costs O(B·log(n/B)) root evaluations.
fn run_length(keys: &[f64], in_run: impl Fn(f64) -> bool) -> usize {
    let mut bound = 1;
    while bound < keys.len() && in_run(keys[bound]) {
        bound *= 2;
    }
    let lo = bound / 2;
    lo + keys[lo..bound.min(keys.len())].partition_point(|&key| in_run(key))
}

/// `⌊i·H/n⌋` for increasing `i`: one division up front, none per step, exact.
struct ScaledRank {
    index: usize,
    quotient: u64,
    remainder: u64,
    step_quotient: u64,
    step_remainder: u64,
    n: u64,
}

impl ScaledRank {
    fn new(index: usize, h: u64, n: usize) -> Self {
        let (start, n) = (index as u128 * h as u128, n as u128);
        ScaledRank {
            index,
            quotient: (start / n) as u64,
            remainder: (start % n) as u64,
            step_quotient: (h as u128 / n) as u64,
            step_remainder: (h as u128 % n) as u64,
            n: n as u64,
        }
    }

    #[inline(always)]
    fn at(&mut self, index: usize) -> u64 {
        while self.index < index {
            self.index += 1;
            self.quotient += self.step_quotient;
            self.remainder += self.step_remainder;
            if self.remainder >= self.n {
                self.remainder -= self.n;
                self.quotient += 1;
            }
        }
        self.quotient
    }
}

/// A leaf without keys: the constant `position`.
fn empty_leaf(position: f64) -> Leaf {
    Leaf {
        model_type: ModelType::Linear,
        key_lo: 0.0,
        key_hi: 0.0,
        coefficients: [position, 0.0, 0.0, 0.0],
        position_lo: position,
        position_hi: position,
        max_error: 0.0,
        mean_error: 0.0,
        num_keys: 0,
    }
}

/// Ends each leaf's position range where the next non-empty leaf's begins (the last at `H − 1`) and
/// makes empty leaves constants there, so consecutive leaves' ranges are ordered.
fn link_leaves(leaves: &mut [Leaf], h: u64) {
    let mut next = (h - 1) as f64;
    for leaf in leaves.iter_mut().rev() {
        if leaf.num_keys == 0 {
            *leaf = empty_leaf(next);
        } else {
            leaf.position_hi = next;
            next = leaf.position_lo;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(branching_factor: usize, model_type: ModelType) -> RmiConfig {
        RmiConfig {
            branching_factor,
            model_type,
            stage1_model_type: model_type,
            ..RmiConfig::default()
        }
    }

    #[test]
    fn keys_crowded_at_a_leaf_end_keep_distinct_positions() {
        // One leaf: 1,000 spread keys, then 1,000 crowded into the last thousandth of the range.
        // The least-squares line overshoots the leaf's last position there; clamped, it piled them.
        let keys: Vec<f64> = (0..1000)
            .map(|i| f64::from(i) * 1000.0)
            .chain((0..1000).map(|i| 1e6 + f64::from(i)))
            .collect();
        for model_type in [ModelType::Linear, ModelType::Cubic] {
            let rmi = Rmi::train(config(1, model_type), &keys).unwrap();
            let positions: Vec<u64> = keys.iter().map(|&key| rmi.predict(key)).collect();
            assert!(
                positions.windows(2).all(|w| w[0] < w[1]),
                "{model_type:?}: distinct keys share a position"
            );
            let leaf = rmi.leaves()[0];
            assert!(leaf.coefficients.iter().sum::<f64>() <= leaf.position_hi);
        }
    }

    #[test]
    fn config_validation() {
        assert!(RmiConfig::default().validate().is_ok());
        let bad = |c: RmiConfig| c.validate().unwrap_err().code();
        assert_eq!(
            bad(config(0, ModelType::Linear)),
            "ERR_DLHT_INVALID_BRANCHING_FACTOR"
        );
        assert_eq!(
            bad(config(1_000_001, ModelType::Linear)),
            "ERR_DLHT_INVALID_BRANCHING_FACTOR"
        );
        for h in [0, 1, (1 << 63) + 1, u64::MAX] {
            let c = RmiConfig {
                hash_space_size: h,
                ..RmiConfig::default()
            };
            assert_eq!(bad(c), "ERR_DLHT_INVALID_HASH_SPACE");
        }
        let c = RmiConfig {
            hash_space_size: 1 << 63,
            ..RmiConfig::default()
        };
        assert!(c.validate().is_ok());
    }

    #[test]
    fn train_rejects_bad_keys() {
        let c = RmiConfig::default();
        assert_eq!(Rmi::train(c, &[]), Err(Error::EmptyKeys));
        assert_eq!(
            Rmi::train(c, &[1.0, 3.0, 2.0]),
            Err(Error::UnsortedKeys { index: 2, key: 2.0 })
        );
        assert!(matches!(
            Rmi::train(c, &[1.0, f64::NAN]),
            Err(Error::NonFiniteKey { index: 1, .. })
        ));
        assert!(matches!(
            Rmi::train(config(0, ModelType::Linear), &[1.0]),
            Err(Error::InvalidBranchingFactor { .. })
        ));
    }

    #[test]
    fn uniform_keys_get_their_scaled_rank() {
        let keys: Vec<f64> = (0..10_000).map(f64::from).collect();
        for model_type in [ModelType::Linear, ModelType::Cubic] {
            let rmi = Rmi::train(config(10, model_type), &keys).unwrap();
            let h = rmi.config().hash_space_size;
            for (i, &key) in keys.iter().enumerate() {
                let (position, error) = rmi.predict_with_error(key);
                let target = (i as u128 * h as u128 / keys.len() as u128) as u64;
                assert!(position.abs_diff(target) <= error);
                // Evenly spaced keys are fitted up to f64 rounding of positions.
                assert!(error < h / 10_000 / 1000, "error {error}");
            }
            assert_eq!(rmi.num_keys(), 10_000);
            assert_eq!(rmi.key_range(), (0.0, 9999.0));
        }
    }

    #[test]
    fn duplicates_share_their_lower_bound_rank() {
        let keys = [1.0, 1.0, 1.0, 2.0, 2.0, 3.0];
        let c = RmiConfig {
            hash_space_size: 600,
            branching_factor: 2,
            ..RmiConfig::default()
        };
        let rmi = Rmi::train(c, &keys).unwrap();
        for (key, rank) in [(1.0, 0u64), (2.0, 3), (3.0, 5)] {
            let (position, error) = rmi.predict_with_error(key);
            assert!(
                position.abs_diff(rank * 100) <= error,
                "{key}: {position} ± {error}"
            );
        }
    }

    #[test]
    fn tiny_sets_and_out_of_range_keys() {
        let h = RmiConfig::default().hash_space_size;
        let one = Rmi::train(RmiConfig::default(), &[5.0]).unwrap();
        assert_eq!(one.predict(5.0), 0);
        assert_eq!(one.predict_with_error(5.0), (0, 0));
        assert_eq!(one.predict(4.0), 0);
        assert_eq!(one.predict(f64::NAN), 0);
        assert_eq!(one.predict(6.0), h - 1);
        assert_eq!(one.predict(f64::INFINITY), h - 1);

        let two = Rmi::train(config(1, ModelType::Cubic), &[1.0, 2.0]).unwrap();
        assert_eq!(two.predict(1.0), 0);
        assert_eq!(two.predict(2.0), h / 2);
        assert_eq!(two.stats().max_error, 0.0);
    }

    #[test]
    fn extreme_and_subnormal_keys_keep_every_guarantee() {
        let sets: [&[f64]; 3] = [
            &[-f64::MAX, -1e300, -1.0, -0.0, 0.0, 1.0, 1e300, f64::MAX],
            &[0.0, 5e-324, 1e-323, 1.5e-323, 2.2e-308],
            &[1e15, 1e15 + 0.125, 1e15 + 0.25, 1e15 + 0.25, 1e15 + 1.0],
        ];
        for keys in sets {
            for model_type in [ModelType::Linear, ModelType::Cubic] {
                for branching_factor in [1, 3, 64] {
                    let rmi = Rmi::train(config(branching_factor, model_type), keys).unwrap();
                    let h = rmi.config().hash_space_size;
                    let mut out = vec![0; keys.len()];
                    rmi.predict_many(keys, &mut out).unwrap();
                    assert!(out.windows(2).all(|w| w[0] <= w[1]), "{keys:?}: {out:?}");
                    for (i, &key) in keys.iter().enumerate() {
                        let rank = keys.partition_point(|&k| k < key) as u128;
                        let target = (rank * h as u128 / keys.len() as u128) as u64;
                        let (position, error) = rmi.predict_with_error(key);
                        assert!(position.abs_diff(target) <= error, "{keys:?} at {i}");
                    }
                }
            }
        }
    }

    #[test]
    fn small_hash_space_keeps_positions_inside() {
        let keys: Vec<f64> = (0..5000).map(|i| f64::from(i) * 0.37).collect();
        let c = RmiConfig {
            hash_space_size: 1000,
            branching_factor: 10,
            ..RmiConfig::default()
        };
        let rmi = Rmi::train(c, &keys).unwrap();
        let mut out = vec![0; keys.len()];
        rmi.predict_many(&keys, &mut out).unwrap();
        assert!(out.iter().all(|&p| p < 1000));
        assert_eq!(rmi.predict(1e12), 999);
    }

    #[test]
    fn untrained_is_monotone_over_all_floats() {
        let rmi = Rmi::untrained(RmiConfig::default()).unwrap();
        assert!(!rmi.is_trained());
        assert_eq!(rmi.key_range(), (-f64::MAX, f64::MAX));
        assert!(rmi.leaves().is_empty());
        let probes = [
            f64::NEG_INFINITY,
            -1e300,
            -5.0,
            -0.5,
            -f64::MIN_POSITIVE,
            -0.0,
            0.0,
            1e-300,
            0.5,
            3.0,
            1e12,
            f64::MAX,
            f64::INFINITY,
        ];
        let mut out = vec![0; probes.len()];
        rmi.predict_many(&probes, &mut out).unwrap();
        assert!(out.windows(2).all(|w| w[0] <= w[1]), "{out:?}");
        assert_eq!(rmi.predict(-0.0), rmi.predict(0.0));
        let h = rmi.config().hash_space_size;
        assert!(rmi.predict(-1e300) < h / 10 && rmi.predict(1e300) > h / 10 * 9);
        assert_eq!(rmi.predict_with_error(3.0).1, 0);
        assert!(rmi.bucket_of(-1.0) < rmi.bucket_of(1.0));
        assert_eq!(rmi.bucket_of(f64::INFINITY), 99);
    }

    #[test]
    fn predict_range_and_predict_many_check_their_arguments() {
        let rmi = Rmi::train(RmiConfig::default(), &[1.0, 2.0, 3.0]).unwrap();
        assert_eq!(
            rmi.predict_range(1.0, 3.0).unwrap(),
            (rmi.predict(1.0), rmi.predict(3.0))
        );
        for (a, b) in [(5.0, 1.0), (f64::NAN, 1.0), (1.0, f64::NAN)] {
            assert_eq!(
                rmi.predict_range(a, b).unwrap_err().code(),
                "ERR_DLHT_INVALID_ARGUMENT"
            );
        }
        assert!(rmi.predict_many(&[1.0], &mut [0, 0]).is_err());
    }

    #[test]
    fn update_leaf_refits_and_stays_monotone() {
        let keys: Vec<f64> = (0..20_000).map(|i| (f64::from(i) * 0.001).exp()).collect();
        let mut rmi = Rmi::train(config(16, ModelType::Linear), &keys).unwrap();
        let bucket = rmi.bucket_of(keys[10_000]);
        let leaf_keys: Vec<f64> = keys
            .iter()
            .copied()
            .filter(|&k| rmi.bucket_of(k) == bucket)
            .collect();
        let positions: Vec<u64> = leaf_keys.iter().map(|&k| rmi.predict(k) + 12_345).collect();
        let before = rmi.leaves()[bucket];
        rmi.update_leaf(bucket, &leaf_keys, &positions).unwrap();
        let after = rmi.leaves()[bucket];
        assert_eq!(
            (after.position_lo, after.position_hi),
            (before.position_lo, before.position_hi)
        );
        assert_eq!(rmi.num_keys(), 20_000);
        let mut out = vec![0; keys.len()];
        rmi.predict_many(&keys, &mut out).unwrap();
        assert!(out.windows(2).all(|w| w[0] <= w[1]));
        for (&key, &position) in leaf_keys.iter().zip(&positions) {
            let (got, error) = rmi.predict_with_error(key);
            assert!(got.abs_diff(position) <= error);
        }

        let code = |r: Result<()>| r.unwrap_err().code();
        assert_eq!(
            code(rmi.update_leaf(16, &leaf_keys, &positions)),
            "ERR_DLHT_INVALID_ARGUMENT"
        );
        assert_eq!(
            code(rmi.update_leaf(bucket, &leaf_keys, &positions[1..])),
            "ERR_DLHT_INVALID_ARGUMENT"
        );
        assert_eq!(
            code(rmi.update_leaf(bucket, &[2.0, 1.0], &[0, 0])),
            "ERR_DLHT_UNSORTED_KEYS"
        );
        assert_eq!(
            code(rmi.update_leaf(bucket, &[1.0], &[u64::MAX])),
            "ERR_DLHT_INVALID_ARGUMENT"
        );
        assert_eq!(
            code(rmi.update_leaf(bucket, &[], &[])),
            "ERR_DLHT_EMPTY_KEYS"
        );
        let mut untrained = Rmi::untrained(RmiConfig::default()).unwrap();
        assert_eq!(
            code(untrained.update_leaf(0, &[1.0], &[0])),
            "ERR_DLHT_INVALID_ARGUMENT"
        );
    }

    #[test]
    fn from_parts_rejects_inconsistent_models() {
        let keys: Vec<f64> = (0..1000).map(|i| f64::from(i).sqrt()).collect();
        let rmi = Rmi::train(config(8, ModelType::Cubic), &keys).unwrap();
        let rebuild = |root: RootModel, leaves: Vec<Leaf>, n: u64| {
            Rmi::from_parts(*rmi.config(), root, leaves, n, rmi.key_range())
        };
        assert_eq!(
            rebuild(rmi.root().clone(), rmi.leaves().to_vec(), 1000).unwrap(),
            rmi
        );

        let corrupt = |r: Result<Rmi>| r.unwrap_err().code() == "ERR_DLHT_CORRUPT_MODEL";
        assert!(corrupt(rebuild(
            rmi.root().clone(),
            rmi.leaves()[1..].to_vec(),
            1000
        )));
        assert!(corrupt(rebuild(
            rmi.root().clone(),
            rmi.leaves().to_vec(),
            999
        )));
        let mut root = rmi.root().clone();
        root.coefficients[1] = -1.0;
        assert!(corrupt(rebuild(root, rmi.leaves().to_vec(), 1000)));
        let mut root = rmi.root().clone();
        root.key_min = f64::NAN;
        assert!(corrupt(rebuild(root, rmi.leaves().to_vec(), 1000)));
        let tweaks: [fn(&mut Leaf); 6] = [
            |leaf| leaf.coefficients[3] = -1.0,
            |leaf| leaf.position_hi = leaf.position_lo * 0.5,
            |leaf| leaf.position_lo = -1.0,
            |leaf| leaf.max_error = f64::NAN,
            |leaf| leaf.key_lo = f64::INFINITY,
            |leaf| leaf.position_hi = 1e30,
        ];
        for tweak in tweaks {
            let mut leaves = rmi.leaves().to_vec();
            tweak(&mut leaves[3]);
            assert!(corrupt(rebuild(rmi.root().clone(), leaves, 1000)));
        }
        assert!(corrupt(Rmi::from_parts(
            *rmi.config(),
            rmi.root().clone(),
            rmi.leaves().to_vec(),
            1000,
            (0.0, 1.0)
        )));
        let linear = RmiConfig {
            model_type: ModelType::Linear,
            ..*rmi.config()
        };
        let has_cubic = rmi
            .leaves()
            .iter()
            .any(|leaf| leaf.model_type == ModelType::Cubic);
        assert!(has_cubic);
        assert!(corrupt(Rmi::from_parts(
            linear,
            rmi.root().clone(),
            rmi.leaves().to_vec(),
            1000,
            rmi.key_range()
        )));
    }

    #[test]
    fn a_mass_of_zeros_gets_its_own_leaf_and_the_rest_stay_even() {
        // Like city populations: 11% zeros below keys over five decades. The zeros would stretch
        // a log scale over a thousand empty binary decades; they get the first leaf instead.
        let mut keys = vec![0.0; 1100];
        keys.extend((0..8900).map(|i| (1000.0 * 1e5f64.powf(f64::from(i) / 8900.0)).round()));
        let rmi = Rmi::train(config(100, ModelType::Linear), &keys).unwrap();
        assert_eq!(rmi.root().key_scale, KeyScale::Log);
        assert_eq!(rmi.leaves()[0].num_keys, 1100);
        assert_eq!((rmi.leaves()[0].key_lo, rmi.leaves()[0].key_hi), (0.0, 0.0));
        let largest = rmi.leaves()[1..].iter().map(|l| l.num_keys).max().unwrap();
        assert!(largest <= 2 * 8900 / 99, "a leaf holds {largest} keys");
        let h = rmi.config().hash_space_size as f64;
        assert!(
            rmi.stats().mean_error / h < 1e-4,
            "{:?}",
            rmi.stats().mean_error / h
        );
        // A key between the zeros and the rest has the rank of the first key above it.
        let (position, _) = rmi.predict_with_error(500.0);
        let rank = (1100.0 / 10_000.0 * h) as u64;
        assert!(position.abs_diff(rank) <= rmi.leaves()[1].max_error as u64 + 1);
    }

    #[test]
    fn keys_between_leaves_get_the_next_leafs_start() {
        // Two clusters far apart: a key in the gap has every key of the first cluster below it.
        let mut keys: Vec<f64> = (0..500).map(f64::from).collect();
        keys.extend((0..500).map(|i| 1e9 + f64::from(i)));
        let rmi = Rmi::train(config(10, ModelType::Linear), &keys).unwrap();
        let h = rmi.config().hash_space_size;
        for gap_key in [600.0, 1e6, 5e8, 1e9 - 1.0] {
            assert_eq!(rmi.predict(gap_key), h / 2, "{gap_key}");
        }
    }

    #[test]
    fn root_cells_are_checked() {
        let keys: Vec<f64> = (0..1000).map(f64::from).collect();
        let rmi = Rmi::train(config(8, ModelType::Linear), &keys).unwrap();
        assert_eq!(rmi.root().cells, 128);
        assert_eq!(rmi.root().leaf_starts.len(), 8);
        let tweaks: [fn(&mut RootModel); 5] = [
            |root| root.cells = 0,
            |root| root.cells = MAX_CELLS + 1,
            |root| root.leaf_starts[0] = 1,
            |root| root.leaf_starts.swap(2, 3),
            |root| root.leaf_starts.push(128),
        ];
        for tweak in tweaks {
            let mut root = rmi.root().clone();
            tweak(&mut root);
            let rebuilt = Rmi::from_parts(
                *rmi.config(),
                root,
                rmi.leaves().to_vec(),
                1000,
                rmi.key_range(),
            );
            assert_eq!(rebuilt.unwrap_err().code(), "ERR_DLHT_CORRUPT_MODEL");
        }
    }

    #[test]
    fn stats_sum_up_the_leaves() {
        let keys: Vec<f64> = (0..5000).map(|i| f64::from(i).powi(2)).collect();
        let rmi = Rmi::train(config(20, ModelType::Linear), &keys).unwrap();
        let stats = rmi.stats();
        assert_eq!(stats.num_keys, 5000);
        assert_eq!(stats.leaves.len(), 20);
        assert_eq!(stats.leaves.iter().map(|l| l.num_keys).sum::<u64>(), 5000);
        assert!(stats.mean_error <= stats.max_error);
        assert_eq!(stats.model_bytes, format::serialize(&rmi).len() as u64);
    }

    #[test]
    fn scaled_rank_walks_exactly() {
        let (h, n) = ((1u64 << 62) + 12_345, 999_983usize);
        let mut walker = ScaledRank::new(17, h, n);
        for i in [17, 18, 100, 5000, 999_982] {
            assert_eq!(walker.at(i), (i as u128 * h as u128 / n as u128) as u64);
        }
    }

    #[test]
    fn run_length_gallops_to_the_boundary() {
        let keys: Vec<f64> = (0..100).map(f64::from).collect();
        for cut in 1..=100 {
            assert_eq!(run_length(&keys, |k| k < f64::from(cut)), cut as usize);
        }
    }
}
