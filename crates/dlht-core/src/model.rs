//! The RMI's models: monotone polynomials of a key normalised to [0, 1], fitted by least squares.
//! They are evaluated in a form whose rounding can never make the output decrease as the key grows.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// Shape of a stage's models.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ModelType {
    Linear,
    Cubic,
}

impl ModelType {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelType::Linear => "linear",
            ModelType::Cubic => "cubic",
        }
    }
}

impl FromStr for ModelType {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        match name {
            "linear" => Ok(ModelType::Linear),
            "cubic" => Ok(ModelType::Cubic),
            _ => Err(Error::UnknownModelType(name.to_owned())),
        }
    }
}

impl fmt::Display for ModelType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a stage places keys along its interval before its polynomial applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyScale {
    /// By value: right for keys spread over a range (uniform, timestamps).
    Linear,
    /// By order-preserving IEEE-754 bit pattern, a piecewise-linear signed logarithm: right for
    /// skewed keys (lognormal, Zipf, sizes) that a linear scale would crowd into one leaf.
    Log,
}

impl KeyScale {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyScale::Linear => "linear",
            KeyScale::Log => "log",
        }
    }
}

impl FromStr for KeyScale {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        match name {
            "linear" => Ok(KeyScale::Linear),
            "log" => Ok(KeyScale::Log),
            _ => Err(Error::InvalidArgument(format!(
                "unknown key scale {name:?}: expected \"linear\" or \"log\""
            ))),
        }
    }
}

/// The bits of `key` as an integer that grows with the key over all f64: flip the sign bit of
/// positives, every bit of negatives. `-0.0` lands one below `+0.0`; callers fold them.
#[inline(always)]
pub(crate) fn ordered_bits(key: f64) -> u64 {
    let bits = key.to_bits();
    bits ^ (((bits as i64 >> 63) as u64) | 1 << 63)
}

/// The inverse of [`ordered_bits`]: the f64 whose order-preserving bit pattern is `bits`.
pub(crate) fn from_ordered_bits(bits: u64) -> f64 {
    f64::from_bits(if bits >> 63 == 1 {
        bits & !(1 << 63)
    } else {
        !bits
    })
}

/// Maps keys of `[lo, hi]` onto `[0, 1]`, on a [`KeyScale`]; keys outside clamp to the ends and NaN
/// clamps to `lo`. Coordinates are centred on the interval's midpoint: `|u − mid|` never exceeds
/// half the width, so even the whole f64 range does not overflow, and for nearby keys the
/// subtraction is exact.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Normalizer {
    lo: f64,
    hi: f64,
    /// Linear scale: the midpoint of `[lo, hi]`.
    mid: f64,
    inv_width: f64,
    scale: KeyScale,
    /// Log scale: ordered bits of `lo`, made odd (see `centred`), and the midpoint in steps.
    lo_bits: u64,
    mid_steps: i64,
}

impl Normalizer {
    pub(crate) fn new(lo: f64, hi: f64) -> Self {
        Normalizer::with_scale(KeyScale::Linear, lo, hi)
    }

    pub(crate) fn with_scale(scale: KeyScale, lo: f64, hi: f64) -> Self {
        let lo_bits = ordered_bits(lo);
        let mut norm = Normalizer {
            lo,
            hi,
            mid: lo * 0.5 + hi * 0.5,
            inv_width: 0.0,
            scale,
            // Never above `lo`'s own bits, so clamped keys never underflow.
            lo_bits: lo_bits - (!lo_bits & 1),
            mid_steps: 0,
        };
        norm.mid_steps = norm.steps(hi) / 2;
        let inv = match scale {
            KeyScale::Linear => 0.5 / (hi * 0.5 - lo * 0.5),
            KeyScale::Log => 1.0 / norm.steps(hi) as f64,
        };
        // A zero (or subnormal) width would give inf·0 = NaN: such an interval maps to ½.
        norm.inv_width = if inv.is_finite() { inv } else { 0.0 };
        norm
    }

    /// Log scale: ordered-bit steps of a key of `[lo, hi]` above `lo`, halved so they fit an i64.
    /// `lo_bits` is odd and `-0.0` sits one step below `+0.0` at an odd position, so halving puts
    /// both zeros on the same step. Wrapping: an inverted interval (a corrupt model, rejected by
    /// validation after construction) must not panic while it is being built.
    #[inline(always)]
    fn steps(&self, key: f64) -> i64 {
        (ordered_bits(key).wrapping_sub(self.lo_bits) >> 1) as i64
    }

    /// The clamped key's coordinate minus the midpoint: the key itself, or its steps (centred in
    /// integers, then one signed conversion). Every step is monotone.
    #[inline(always)]
    fn centred(&self, key: f64) -> f64 {
        self.centred_inside(clamp(key, self.lo, self.hi))
    }

    /// [`Normalizer::centred`] of a key already in `[lo, hi]`.
    #[inline(always)]
    fn centred_inside(&self, key: f64) -> f64 {
        match self.scale {
            KeyScale::Linear => key - self.mid,
            KeyScale::Log => (self.steps(key) - self.mid_steps) as f64,
        }
    }

    /// The normalised key, about `[0, 1]`; scaling by a positive constant keeps it monotone.
    #[inline(always)]
    pub(crate) fn t(&self, key: f64) -> f64 {
        self.centred(key) * self.inv_width + 0.5
    }
}

/// A fitted model bound to its key interval and output range, as predictions read it.
///
/// Two evaluation paths, chosen per stage by its configured model type so that training and
/// prediction always agree: the general one evaluates `poly` at `t`; the linear one folds the
/// normalisation into the line, `base + (key − mid)·slope`, one multiply-add on the critical path.
/// Both are monotone, and the output clamp maps NaN to `out_lo`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub(crate) struct HotModel {
    norm: Normalizer,
    slope: f64,
    base: f64,
    out_lo: f64,
    out_hi: f64,
    poly: Poly,
}

impl HotModel {
    pub(crate) fn new(norm: Normalizer, poly: Poly, out_lo: f64, out_hi: f64) -> Self {
        HotModel {
            norm,
            slope: poly.d[1] * norm.inv_width,
            base: poly.d[0] + 0.5 * poly.d[1],
            out_lo,
            out_hi,
            poly,
        }
    }

    /// `LINEAR` must be the same for every evaluation of a model (see the type's doc) and set only
    /// for linear polynomials (`ModelType::Linear` guarantees it).
    #[inline(always)]
    pub(crate) fn eval<const LINEAR: bool>(&self, key: f64) -> f64 {
        self.at::<LINEAR>(self.norm.centred(key))
    }

    /// The clamped output at a centred coordinate.
    #[inline(always)]
    fn at<const LINEAR: bool>(&self, centred: f64) -> f64 {
        let value = if LINEAR {
            self.base + centred * self.slope
        } else {
            self.poly.eval(centred * self.norm.inv_width + 0.5)
        };
        clamp(value, self.out_lo, self.out_hi)
    }
}

impl HotModel {
    /// [`HotModel::eval`], except that keys outside the interval give the ends of the output range:
    /// for a leaf, a key between its trained keys and another leaf's gets where the later of the
    /// two leaves starts, which is the rank (number of trained keys below) such a key has.
    #[inline(always)]
    pub(crate) fn eval_leaf<const LINEAR: bool>(&self, key: f64) -> f64 {
        // One well-predicted branch: trained and most other keys lie inside. NaN goes to `out_lo`.
        if key >= self.norm.lo && key <= self.norm.hi {
            self.at::<LINEAR>(self.norm.centred_inside(key))
        } else if key > self.norm.hi {
            self.out_hi
        } else {
            self.out_lo
        }
    }
}

/// `x` clamped to `[lo, hi]`, NaN to `lo`. Written as compare-and-select so it compiles to one
/// `maxsd` and one `minsd` (`f64::max`/`min` need extra NaN handling on x86).
#[inline(always)]
pub(crate) fn clamp(x: f64, lo: f64, hi: f64) -> f64 {
    let x = if x > lo { x } else { lo };
    if x < hi {
        x
    } else {
        hi
    }
}

/// A monotone polynomial ready to evaluate: `d0 + d1·x + d2·x·|x| + d3·x³` with `x = t − shift` and
/// `d1, d2, d3 ≥ 0`. Every term is non-decreasing in `t` after rounding too (`x·|x|` and `x·x·x`
/// round symmetrically about 0), so their rounded sum is: the RMI's order guarantee rests on this.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Poly {
    shift: f64,
    d: [f64; 4],
}

impl Poly {
    pub(crate) fn constant(value: f64) -> Self {
        Poly {
            shift: 0.0,
            d: [value, 0.0, 0.0, 0.0],
        }
    }

    #[inline(always)]
    pub(crate) fn eval(&self, t: f64) -> f64 {
        // Plain mul/add, not mul_add: without a target FMA unit mul_add is a slow libm call.
        let x = t - self.shift;
        // Any order sums non-decreasing terms monotonically; the big constant goes last.
        self.d[0] + (self.d[1] * x + (self.d[2] * (x * x.abs()) + self.d[3] * (x * x * x)))
    }

    /// The evaluation form of `c0 + c1·t + c2·t² + c3·t³` on `t ∈ [0, 1]`, or `None` when it is not
    /// monotone there or has `c3 < 0`. A cubic with `c3 < 0` has a concave slope; no rounding-safe
    /// form of the shape above exists for it, so fitting falls back to a quadratic instead.
    /// Linear models must have `c2 = c3 = 0`. Deterministic, so stored coefficients reload exactly.
    pub(crate) fn from_coefficients(model_type: ModelType, c: [f64; 4]) -> Option<Poly> {
        if c.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let [c0, c1, c2, c3] = c;
        if model_type == ModelType::Linear && (c2 != 0.0 || c3 != 0.0) {
            return None;
        }
        // Taylor expansion about `shift`; the slope is checked where it is smallest on [0, 1].
        let expand = |shift: f64| {
            let value = c0 + shift * (c1 + shift * (c2 + shift * c3));
            let slope = c1 + shift * (2.0 * c2 + 3.0 * shift * c3);
            let curvature = c2 + 3.0 * shift * c3;
            (value, slope, curvature)
        };
        if c3 < 0.0 {
            return None;
        }
        let vertex = -c2 / (3.0 * c3);
        let (shift, value, slope, curvature) = if c3 > 0.0 && vertex > 0.0 && vertex < 1.0 {
            // The slope is smallest inside, where the x² term vanishes.
            let (value, slope, _) = expand(vertex);
            (vertex, value, slope, 0.0)
        } else if c2 < 0.0 {
            // The slope decreases over [0, 1] (concave quadratic, or a cubic whose slope is smallest
            // past 1): expand at 1, where x ≤ 0 and so x² = −x·|x|. Only rounding makes it positive.
            let (value, slope, curvature) = expand(1.0);
            (1.0, value, slope, (-curvature).max(0.0))
        } else {
            (0.0, c0, c1, c2)
        };
        if slope < 0.0 || !value.is_finite() || !slope.is_finite() {
            return None;
        }
        Some(Poly {
            shift,
            d: [value, slope, curvature, c3],
        })
    }
}

/// Streaming least-squares sums of `(t, y)` pairs: `Σ t^k` for k ≤ 6 and `Σ y·t^k` for k ≤ 3.
/// Linear fits only touch the first three and two, so their pass stays cheap.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Sums {
    t: [f64; 7],
    ty: [f64; 4],
}

impl Sums {
    #[inline(always)]
    pub(crate) fn add<const CUBIC: bool>(&mut self, t: f64, y: f64) {
        let t2 = t * t;
        self.t[0] += 1.0;
        self.t[1] += t;
        self.t[2] += t2;
        self.ty[0] += y;
        self.ty[1] += y * t;
        if CUBIC {
            let t3 = t2 * t;
            self.t[3] += t3;
            self.t[4] += t2 * t2;
            self.t[5] += t3 * t2;
            self.t[6] += t3 * t3;
            self.ty[2] += y * t2;
            self.ty[3] += y * t3;
        }
    }

    /// Best model of `model_type` for the sums: for cubic, the least-squares cubic if it has a
    /// monotone evaluation form, else the least-squares quadratic if monotone, else linear.
    /// `distinct` (number of distinct keys) skips fits that would be underdetermined.
    pub(crate) fn fit(&self, model_type: ModelType, distinct: u64) -> (ModelType, [f64; 4], Poly) {
        if model_type == ModelType::Cubic {
            for degree in [3, 2] {
                if distinct > degree as u64 {
                    if let Some(c) = self.solve(degree) {
                        if let Some(poly) = Poly::from_coefficients(ModelType::Cubic, c) {
                            return (ModelType::Cubic, c, poly);
                        }
                    }
                }
            }
        }
        let c = self.linear();
        let poly = Poly::from_coefficients(ModelType::Linear, c).unwrap_or(Poly::constant(c[0]));
        (ModelType::Linear, c, poly)
    }

    /// The fit of `model_type` with its values at `t = 0` and `t = 1` kept within `[0, span]`: a
    /// least-squares fit of keys crowded at one end of a leaf overshoots the leaf's positions
    /// there, and the clamp then puts every key beyond the crossing on one position, which no
    /// vnode placement can split. Squeezed by an affine map (which keeps it monotone), distinct
    /// keys keep distinct positions.
    pub(crate) fn fit_within(
        &self,
        model_type: ModelType,
        distinct: u64,
        span: f64,
    ) -> (ModelType, [f64; 4]) {
        let (model_type, c, _) = self.fit(model_type, distinct);
        let (at0, at1) = (c[0], c[0] + c[1] + c[2] + c[3]);
        if (0.0..=span).contains(&at0) && (0.0..=span).contains(&at1) {
            return (model_type, c);
        }
        let (lo, hi) = (at0.clamp(0.0, span), at1.clamp(0.0, span));
        let scale = if at1 > at0 {
            (hi - lo).max(0.0) / (at1 - at0)
        } else {
            0.0
        };
        (model_type, [lo, c[1] * scale, c[2] * scale, c[3] * scale])
    }

    /// Least-squares line with its slope clamped to ≥ 0 (sorted data has a non-negative slope;
    /// only rounding can make it negative). A single distinct `t` gives the mean.
    fn linear(&self) -> [f64; 4] {
        let n = self.t[0];
        if n == 0.0 {
            return [0.0; 4];
        }
        let (mean_t, mean_y) = (self.t[1] / n, self.ty[0] / n);
        let var = self.t[2] - self.t[1] * mean_t;
        let cov = self.ty[1] - self.t[1] * mean_y;
        let slope = cov / var;
        let slope = if var > 0.0 && slope.is_finite() {
            slope.max(0.0)
        } else {
            0.0
        };
        let intercept = mean_y - slope * mean_t;
        if intercept.is_finite() {
            [intercept, slope, 0.0, 0.0]
        } else {
            [mean_y, 0.0, 0.0, 0.0]
        }
    }

    /// Solves the normal equations of a polynomial of `degree` (2 or 3) by Gaussian elimination with
    /// partial pivoting; `None` when the system is (numerically) singular.
    fn solve(&self, degree: usize) -> Option<[f64; 4]> {
        let size = degree + 1;
        let mut m = [[0.0; 5]; 4];
        for (i, row) in m.iter_mut().enumerate().take(size) {
            row[..size].copy_from_slice(&self.t[i..i + size]);
            row[4] = self.ty[i];
        }
        // t ∈ [0, 1], so Σt⁰ = n bounds every entry: pivots below this are noise.
        let tiny = self.t[0] * 1e-13;
        for col in 0..size {
            let pivot = (col..size).max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))?;
            if m[pivot][col].abs() <= tiny {
                return None;
            }
            m.swap(col, pivot);
            let pivot_row = m[col];
            for row in m.iter_mut().take(size).skip(col + 1) {
                let factor = row[col] / pivot_row[col];
                for (x, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                    *x -= factor * p;
                }
            }
        }
        let mut c = [0.0; 4];
        for row in (0..size).rev() {
            let tail: f64 = (row + 1..size).map(|k| m[row][k] * c[k]).sum();
            c[row] = (m[row][4] - tail) / m[row][row];
        }
        c.iter().all(|v| v.is_finite()).then_some(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sums_of(points: &[(f64, f64)], cubic: bool) -> Sums {
        let mut sums = Sums::default();
        for &(t, y) in points {
            if cubic {
                sums.add::<true>(t, y);
            } else {
                sums.add::<false>(t, y);
            }
        }
        sums
    }

    #[test]
    fn model_type_parses_and_prints() {
        assert_eq!("cubic".parse::<ModelType>().unwrap(), ModelType::Cubic);
        assert_eq!(ModelType::Linear.as_str(), "linear");
        assert_eq!(ModelType::Cubic.to_string(), "cubic");
        let err = "quadratic".parse::<ModelType>().unwrap_err();
        assert_eq!(err.code(), "ERR_DLHT_UNKNOWN_MODEL_TYPE");
    }

    #[test]
    fn key_scales_parse_and_log_scale_is_monotone() {
        assert_eq!("log".parse::<KeyScale>().unwrap(), KeyScale::Log);
        assert_eq!(KeyScale::Linear.as_str(), "linear");
        assert!("sqrt".parse::<KeyScale>().is_err());
        let log = Normalizer::with_scale(KeyScale::Log, -1e300, 1e300);
        let probes = [
            f64::NAN,
            -1e300,
            -1.0,
            -1e-300,
            -0.0,
            0.0,
            5e-324,
            1.0,
            1e10,
            1e300,
            1e301,
        ];
        let ts: Vec<f64> = probes.iter().map(|&k| log.t(k)).collect();
        assert!(ts.windows(2).all(|w| w[0] <= w[1]), "{ts:?}");
        assert_eq!((ts[0], ts[1], ts[10]), (0.0, 0.0, 1.0));
        assert_eq!(log.t(-0.0), log.t(0.0));
        // Decades get equal room, unlike on a linear scale.
        let decades = Normalizer::with_scale(KeyScale::Log, 1.0, 1e8);
        let step = decades.t(1e5) - decades.t(1e4);
        assert!((decades.t(1e1) - decades.t(1.0) - step).abs() < 0.01);
    }

    #[test]
    fn normalizer_clamps_and_survives_extreme_ranges() {
        let n = Normalizer::new(10.0, 20.0);
        assert_eq!(n.t(10.0), 0.0);
        assert_eq!(n.t(20.0), 1.0);
        assert_eq!(n.t(15.0), 0.5);
        assert_eq!(n.t(f64::NEG_INFINITY), 0.0);
        assert_eq!(n.t(f64::NAN), 0.0);
        assert_eq!(n.t(1e300), 1.0);
        let whole = Normalizer::new(-f64::MAX, f64::MAX);
        assert_eq!(whole.t(0.0), 0.5);
        assert!((whole.t(f64::MAX) - 1.0).abs() < 1e-15);
        assert!(whole.t(-f64::MAX).abs() < 1e-15);
        let point = Normalizer::new(3.0, 3.0);
        assert_eq!(point.t(3.0), 0.5);
        assert_eq!(point.t(f64::INFINITY), 0.5);
    }

    #[test]
    fn linear_and_general_paths_agree_and_clamp() {
        let poly = Poly::from_coefficients(ModelType::Linear, [100.0, 50.0, 0.0, 0.0]).unwrap();
        let model = HotModel::new(Normalizer::new(1e12, 1e12 + 1e3), poly, 100.0, 140.0);
        for i in 0..=1000 {
            let key = 1e12 + f64::from(i);
            let (fast, general) = (model.eval::<true>(key), model.eval::<false>(key));
            assert!((fast - general).abs() < 1e-9, "{key}: {fast} vs {general}");
        }
        assert_eq!(model.eval::<true>(2e12), 140.0);
        assert_eq!(model.eval::<true>(f64::NAN), 100.0);
        assert_eq!(model.eval::<false>(f64::NEG_INFINITY), 100.0);
    }

    #[test]
    fn fits_recover_exact_polynomials() {
        let line: Vec<_> = (0..50)
            .map(|i| i as f64 / 49.0)
            .map(|t| (t, 3.0 + 2.0 * t))
            .collect();
        let (kind, c, _) = sums_of(&line, false).fit(ModelType::Linear, 50);
        assert_eq!(kind, ModelType::Linear);
        assert!((c[0] - 3.0).abs() < 1e-9 && (c[1] - 2.0).abs() < 1e-9);

        let cubic = |t: f64| 1.0 + 0.5 * t - 1.5 * t * t + 2.0 * t * t * t;
        let points: Vec<_> = (0..200)
            .map(|i| i as f64 / 199.0)
            .map(|t| (t, cubic(t)))
            .collect();
        let (kind, c, poly) = sums_of(&points, true).fit(ModelType::Cubic, 200);
        assert_eq!(kind, ModelType::Cubic);
        for (got, want) in c.iter().zip([1.0, 0.5, -1.5, 2.0]) {
            assert!((got - want).abs() < 1e-6, "{c:?}");
        }
        for &(t, y) in &points {
            assert!((poly.eval(t) - y).abs() < 1e-6);
        }
    }

    #[test]
    fn concave_cubic_falls_back_to_a_monotone_quadratic() {
        // Slope 3(t − 1)² + ... is fine, but c3 < 0 is never evaluated as a cubic.
        let f = |t: f64| t + t * t - 0.3 * t * t * t;
        let points: Vec<_> = (0..100)
            .map(|i| i as f64 / 99.0)
            .map(|t| (t, f(t)))
            .collect();
        let (kind, c, _) = sums_of(&points, true).fit(ModelType::Cubic, 100);
        assert_eq!(kind, ModelType::Cubic);
        assert_eq!(c[3], 0.0);
    }

    #[test]
    fn non_monotone_fits_fall_back_to_linear() {
        // A bump: no monotone cubic or quadratic fits it by least squares.
        let points: Vec<_> = (0..100)
            .map(|i| i as f64 / 99.0)
            .map(|t| (t, (t * 6.0).sin() + t))
            .collect();
        let (kind, c, _) = sums_of(&points, true).fit(ModelType::Cubic, 100);
        assert_eq!(kind, ModelType::Linear);
        assert!(c[1] >= 0.0);
        // Decreasing data: the slope clamps to 0.
        let down: Vec<_> = (0..10).map(|i| (i as f64 / 9.0, -(i as f64))).collect();
        assert_eq!(sums_of(&down, false).fit(ModelType::Linear, 10).1[1], 0.0);
    }

    #[test]
    fn degenerate_sums_give_constants() {
        let same = [(0.0, 5.0), (0.0, 7.0)];
        let (kind, c, poly) = sums_of(&same, true).fit(ModelType::Cubic, 1);
        assert_eq!(kind, ModelType::Linear);
        assert_eq!(c, [6.0, 0.0, 0.0, 0.0]);
        assert_eq!(poly.eval(0.3), 6.0);
        assert_eq!(Sums::default().fit(ModelType::Cubic, 0).1, [0.0; 4]);
    }

    #[test]
    fn coefficient_checks() {
        let lin = ModelType::Linear;
        let cub = ModelType::Cubic;
        assert!(Poly::from_coefficients(lin, [0.0, 1.0, 0.0, 0.0]).is_some());
        assert!(Poly::from_coefficients(lin, [0.0, -1.0, 0.0, 0.0]).is_none());
        assert!(Poly::from_coefficients(lin, [0.0, 1.0, 1.0, 0.0]).is_none());
        assert!(Poly::from_coefficients(cub, [0.0, f64::NAN, 0.0, 0.0]).is_none());
        // Slope 9(t − ½)²: monotone, smallest inside.
        assert!(Poly::from_coefficients(cub, [0.0, 2.25, -4.5, 3.0]).is_some());
        // Slope 9(t − ½)² − 0.1 dips below zero.
        assert!(Poly::from_coefficients(cub, [0.0, 2.15, -4.5, 3.0]).is_none());
        // Concave quadratic with slope 0 at 1.
        assert!(Poly::from_coefficients(cub, [0.0, 2.0, -1.0, 0.0]).is_some());
        assert!(Poly::from_coefficients(cub, [0.0, 1.0, -1.0, 0.0]).is_none());
        assert!(Poly::from_coefficients(cub, [0.0, 1.0, 0.0, -0.1]).is_none());
    }

    #[test]
    fn evaluation_form_matches_the_polynomial_and_is_monotone() {
        for c in [
            [1.0, 2.25, -4.5, 3.0],
            [0.0, 2.0, -1.0, 0.0],
            [2.0, 0.1, 0.3, 0.5],
            [0.0, 12.0, -6.5, 0.5],
        ] {
            let poly = Poly::from_coefficients(ModelType::Cubic, c).unwrap();
            let mut prev = f64::NEG_INFINITY;
            for i in 0..=10_000 {
                let t = i as f64 / 10_000.0;
                let want = c[0] + t * (c[1] + t * (c[2] + t * c[3]));
                let got = poly.eval(t);
                assert!(
                    (got - want).abs() < 1e-12 * (1.0 + want.abs()),
                    "{c:?} at {t}"
                );
                assert!(got >= prev, "{c:?} decreases at {t}");
                prev = got;
            }
            // Adjacent floats around the shift point, where rounding is most delicate.
            let mut t = poly.shift.clamp(0.0, 1.0);
            for _ in 0..20 {
                t = t.next_down();
            }
            let mut prev = poly.eval(t);
            for _ in 0..40 {
                t = t.next_up();
                assert!(poly.eval(t) >= prev);
                prev = poly.eval(t);
            }
        }
    }
}
