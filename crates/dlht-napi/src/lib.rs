//! N-API binding of dlht-core: converts JavaScript values to core types and core errors
//! to JavaScript errors whose `code` is the core's stable ERR_DLHT_* code. Nothing else.

use dlht_core::curve::{Curve, CurveKind};
use dlht_core::fedavg::{self, AverageOptions, Contribution};
use std::sync::Arc;

use dlht_core::format;
use dlht_core::keyed_training::train_with_key_code;
use dlht_core::keys;
use dlht_core::rmi::{Leaf, RootModel};
use dlht_core::{
    Error as CoreError, KeyCode, KeyScale, ModelType, ReservoirSampler, Rmi, RmiConfig,
};
use napi::bindgen_prelude::{
    AsyncTask, BigInt, BigUint64ArraySlice, Float64Array, Float64ArraySlice, Uint32Array,
    Uint8Array,
};
use napi::{Env, Task};
use napi_derive::napi;

/// The status of a binding error: the core's stable code, read by JavaScript as `err.code`.
pub struct Code(&'static str);

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.0
    }
}

type Result<T> = napi::Result<T, Code>;

/// The one place where core errors become JavaScript errors.
fn to_js(err: CoreError) -> napi::Error<Code> {
    napi::Error::new(Code(err.code()), err.to_string())
}

fn invalid(message: impl ToString) -> napi::Error<Code> {
    to_js(CoreError::InvalidArgument(message.to_string()))
}

fn parse_model_type(name: &str) -> Result<ModelType> {
    name.parse().map_err(to_js)
}

/// A BigInt that must fit in u64 (hash space sizes, positions).
fn bigint_to_u64(value: &BigInt, what: &str) -> Result<u64> {
    let (negative, magnitude, lossless) = value.get_u64();
    if negative || !lossless {
        return Err(invalid(format!(
            "{what} must be a non-negative bigint below 2^64"
        )));
    }
    Ok(magnitude)
}

/// Options of a model; the facade fills in defaults.
#[napi(object)]
pub struct RmiOptions {
    pub branching_factor: f64,
    pub model_type: String,
    pub stage1_model_type: String,
    pub hash_space_size: BigInt,
}

fn to_config(options: &RmiOptions) -> Result<RmiConfig> {
    let hash_space_size = options.hash_space_size.get_u128();
    if hash_space_size.0 || !hash_space_size.2 || hash_space_size.1 > u64::MAX as u128 {
        return Err(to_js(CoreError::InvalidHashSpace(hash_space_size.1)));
    }
    let branching_factor = options.branching_factor;
    if branching_factor.fract() != 0.0 || !(0.0..=u32::MAX as f64).contains(&branching_factor) {
        return Err(invalid(format!(
            "branching factor must be a positive integer, got {branching_factor}"
        )));
    }
    let config = RmiConfig {
        branching_factor: branching_factor as usize,
        model_type: parse_model_type(&options.model_type)?,
        stage1_model_type: parse_model_type(&options.stage1_model_type)?,
        hash_space_size: hash_space_size.1 as u64,
    };
    config.validate().map_err(to_js)?;
    Ok(config)
}

#[napi(object, object_from_js = false)]
pub struct PositionWithError {
    pub position: u64,
    pub error: u64,
}

#[napi(object, object_from_js = false)]
pub struct PositionRange {
    pub hash_min: u64,
    pub hash_max: u64,
}

#[napi(object)]
pub struct LeafStats {
    pub num_keys: f64,
    pub mean_error: f64,
    pub max_error: f64,
}

#[napi(object)]
pub struct TrainingStats {
    pub num_keys: f64,
    pub mean_error: f64,
    pub max_error: f64,
    pub model_bytes: f64,
    pub leaves: Vec<LeafStats>,
}

/// The root model as plain numbers, for `toDict` / `fromDict`.
#[napi(object)]
pub struct RootParts {
    pub model_type: String,
    /// 'linear', or 'log' when the root reads keys on their float-bit (logarithmic) scale.
    pub key_scale: String,
    pub key_min: f64,
    pub key_max: f64,
    /// Maps the normalised key to a cell of `[0, cells)`.
    pub coefficients: Vec<f64>,
    pub cells: u32,
    /// The first cell of each leaf.
    pub leaf_starts: Vec<u32>,
}

/// A leaf model as plain numbers, for `toDict` / `fromDict`.
#[napi(object)]
pub struct ModelParts {
    pub model_type: String,
    pub key_lo: f64,
    pub key_hi: f64,
    pub coefficients: Vec<f64>,
    pub position_lo: f64,
    pub position_hi: f64,
    pub max_error: f64,
    pub mean_error: f64,
    pub num_keys: f64,
}

#[napi(object)]
pub struct RmiParts {
    pub options: RmiOptions,
    pub root: RootParts,
    pub leaves: Vec<ModelParts>,
    pub num_keys: f64,
    pub key_min: f64,
    pub key_max: f64,
    /// The key code's bytes, when the model has one.
    pub key_code: Option<Uint8Array>,
}

fn coefficients(values: &[f64]) -> Result<[f64; 4]> {
    values.try_into().map_err(|_| {
        to_js(CoreError::CorruptModel(format!(
            "expected 4 coefficients, got {}",
            values.len()
        )))
    })
}

fn leaf_parts(leaf: &Leaf) -> ModelParts {
    ModelParts {
        model_type: leaf.model_type.as_str().to_owned(),
        key_lo: leaf.key_lo,
        key_hi: leaf.key_hi,
        coefficients: leaf.coefficients.to_vec(),
        position_lo: leaf.position_lo,
        position_hi: leaf.position_hi,
        max_error: leaf.max_error,
        mean_error: leaf.mean_error,
        num_keys: leaf.num_keys as f64,
    }
}

fn leaf_from_parts(parts: &ModelParts) -> Result<Leaf> {
    Ok(Leaf {
        model_type: parse_model_type(&parts.model_type)?,
        key_lo: parts.key_lo,
        key_hi: parts.key_hi,
        coefficients: coefficients(&parts.coefficients)?,
        position_lo: parts.position_lo,
        position_hi: parts.position_hi,
        max_error: parts.max_error,
        mean_error: parts.mean_error,
        num_keys: parts.num_keys as u64,
    })
}

fn root_parts(root: &RootModel) -> RootParts {
    RootParts {
        model_type: root.model_type.as_str().to_owned(),
        key_scale: root.key_scale.as_str().to_owned(),
        key_min: root.key_min,
        key_max: root.key_max,
        coefficients: root.coefficients.to_vec(),
        cells: root.cells,
        leaf_starts: root.leaf_starts.clone(),
    }
}

fn root_from_parts(parts: &RootParts) -> Result<RootModel> {
    Ok(RootModel {
        model_type: parse_model_type(&parts.model_type)?,
        key_scale: parts.key_scale.parse::<KeyScale>().map_err(to_js)?,
        key_min: parts.key_min,
        key_max: parts.key_max,
        coefficients: coefficients(&parts.coefficients)?,
        cells: parts.cells,
        leaf_starts: parts.leaf_starts.clone(),
    })
}

/// The two-stage learned index. The TypeScript facade `RecursiveModelIndex` wraps it.
#[napi]
pub struct NativeRmi {
    inner: Rmi,
}

#[napi]
impl NativeRmi {
    /// An untrained model: an order-preserving default mapping until `train`.
    #[napi(constructor)]
    pub fn new(options: RmiOptions) -> Result<Self> {
        let inner = Rmi::untrained(to_config(&options)?).map_err(to_js)?;
        Ok(NativeRmi { inner })
    }

    #[napi(getter)]
    pub fn is_trained(&self) -> bool {
        self.inner.is_trained()
    }

    #[napi(getter)]
    pub fn num_keys(&self) -> f64 {
        self.inner.num_keys() as f64
    }

    #[napi]
    pub fn train(&mut self, sorted_keys: Float64ArraySlice) -> Result<()> {
        self.inner = Rmi::train(*self.inner.config(), &sorted_keys).map_err(to_js)?;
        Ok(())
    }

    /// Trains a new model off the main thread. Keys are validated here, synchronously, so
    /// input errors keep their codes; the copy lets JavaScript reuse its array meanwhile.
    #[napi(ts_return_type = "Promise<NativeRmi>")]
    pub fn train_new(&self, sorted_keys: Float64ArraySlice) -> Result<AsyncTask<TrainTask>> {
        keys::validate_sorted(&sorted_keys).map_err(to_js)?;
        Ok(AsyncTask::new(TrainTask {
            config: *self.inner.config(),
            keys: sorted_keys.to_vec(),
        }))
    }

    /// A `u64` return becomes a BigInt in one N-API call (no word vector).
    #[napi]
    pub fn predict(&self, key: f64) -> u64 {
        self.inner.predict(key)
    }

    #[napi]
    pub fn predict_with_error(&self, key: f64) -> PositionWithError {
        let (position, error) = self.inner.predict_with_error(key);
        PositionWithError { position, error }
    }

    #[napi]
    pub fn predict_range(&self, key_min: f64, key_max: f64) -> Result<PositionRange> {
        let (hash_min, hash_max) = self.inner.predict_range(key_min, key_max).map_err(to_js)?;
        Ok(PositionRange { hash_min, hash_max })
    }

    /// Batch prediction into a caller-owned array: no allocation on either side.
    #[napi]
    pub fn predict_into(
        &self,
        keys: Float64ArraySlice,
        mut out: BigUint64ArraySlice,
    ) -> Result<()> {
        let keys_bytes = keys.as_ptr_range();
        let out_start = out.as_ptr() as *const f64;
        let out_bytes = out_start..out_start.wrapping_add(out.len());
        if keys_bytes.start < out_bytes.end && out_bytes.start < keys_bytes.end {
            return Err(invalid(
                "predictMany: the output must not share memory with the keys",
            ));
        }
        // SAFETY: this runs synchronously on the JavaScript thread, so no JavaScript code can touch
        // `out` while the slice lives, and the check above rules out aliasing with `keys`.
        let out = unsafe { out.as_mut() };
        self.inner.predict_many(&keys, out).map_err(to_js)
    }

    #[napi]
    pub fn bucket_of(&self, key: f64) -> u32 {
        self.inner.bucket_of(key) as u32
    }

    #[napi]
    pub fn update_leaf(
        &mut self,
        bucket_id: u32,
        sorted_keys: Float64ArraySlice,
        positions: BigUint64ArraySlice,
    ) -> Result<()> {
        self.inner
            .update_leaf(bucket_id as usize, &sorted_keys, &positions)
            .map_err(to_js)
    }

    #[napi]
    pub fn stats(&self) -> TrainingStats {
        let stats = self.inner.stats();
        TrainingStats {
            num_keys: stats.num_keys as f64,
            mean_error: stats.mean_error,
            max_error: stats.max_error,
            model_bytes: stats.model_bytes as f64,
            leaves: stats
                .leaves
                .iter()
                .map(|leaf| LeafStats {
                    num_keys: leaf.num_keys as f64,
                    mean_error: leaf.mean_error,
                    max_error: leaf.max_error,
                })
                .collect(),
        }
    }

    #[napi]
    pub fn options(&self) -> RmiOptions {
        let config = self.inner.config();
        RmiOptions {
            branching_factor: config.branching_factor as f64,
            model_type: config.model_type.as_str().to_owned(),
            stage1_model_type: config.stage1_model_type.as_str().to_owned(),
            hash_space_size: BigInt::from(config.hash_space_size),
        }
    }

    #[napi]
    pub fn to_parts(&self) -> RmiParts {
        let (key_min, key_max) = self.inner.key_range();
        RmiParts {
            options: self.options(),
            root: root_parts(self.inner.root()),
            leaves: self.inner.leaves().iter().map(leaf_parts).collect(),
            num_keys: self.inner.num_keys() as f64,
            key_min,
            key_max,
            key_code: self
                .inner
                .key_code()
                .map(|code| Uint8Array::from(code.to_bytes())),
        }
    }

    #[napi(factory)]
    pub fn from_parts(parts: RmiParts) -> Result<Self> {
        let leaves = parts
            .leaves
            .iter()
            .map(leaf_from_parts)
            .collect::<Result<Vec<_>>>()?;
        let inner = Rmi::from_parts(
            to_config(&parts.options)?,
            root_from_parts(&parts.root)?,
            leaves,
            parts.num_keys as u64,
            (parts.key_min, parts.key_max),
        )
        .and_then(|rmi| {
            let code = parts
                .key_code
                .as_ref()
                .map(|bytes| KeyCode::from_bytes(bytes));
            rmi.with_key_code(code.transpose()?.map(Arc::new))
        })
        .map_err(to_js)?;
        Ok(NativeRmi { inner })
    }

    /// Trains a new model off the main thread on numeric keys (encoded) and byte keys packed as
    /// one buffer (key i is `data[offsets[i]..offsets[i + 1]]`, any order): the byte keys' code is
    /// learned from them and carried by the model. Inputs are checked here, synchronously.
    #[napi(ts_return_type = "Promise<NativeRmi>")]
    pub fn train_on_keys(
        options: RmiOptions,
        numbers: Float64ArraySlice,
        data: Uint8Array,
        offsets: Uint32Array,
    ) -> Result<AsyncTask<TrainOnKeysTask>> {
        keys::validate_offsets(&data, &offsets).map_err(to_js)?;
        keys::validate_finite(&numbers).map_err(to_js)?;
        if numbers.is_empty() && offsets.len() == 1 {
            return Err(to_js(CoreError::EmptyKeys));
        }
        Ok(AsyncTask::new(TrainOnKeysTask {
            config: to_config(&options)?,
            numbers: numbers.to_vec(),
            data: data.to_vec(),
            offsets: offsets.to_vec(),
        }))
    }

    /// Whether byte keys are encoded by a key code learned with this model (else the text code).
    #[napi(getter)]
    pub fn has_key_code(&self) -> bool {
        self.inner.key_code().is_some()
    }

    /// Whether this model and `other` encode byte keys alike.
    #[napi]
    pub fn same_key_code(&self, other: &NativeRmi) -> bool {
        self.inner.key_code() == other.inner.key_code()
    }

    /// This model, encoding byte keys by `other`'s key code (its keys must have been encoded so).
    #[napi]
    pub fn with_key_code_of(&self, other: &NativeRmi) -> Result<NativeRmi> {
        let inner = self
            .inner
            .clone()
            .with_key_code(other.inner.key_code().cloned())
            .map_err(to_js)?;
        Ok(NativeRmi { inner })
    }

    /// A string key (its UTF-8 bytes) as this model's input.
    #[napi]
    pub fn encode_string(&self, key: String) -> f64 {
        self.inner.encode_bytes(key.as_bytes())
    }

    #[napi]
    pub fn encode_bytes(&self, key: Uint8Array) -> f64 {
        self.inner.encode_bytes(&key)
    }

    /// Byte keys packed as one buffer: key i is `data[offsets[i]..offsets[i + 1]]`.
    #[napi]
    pub fn encode_bytes_batch(
        &self,
        data: Uint8Array,
        offsets: Uint32Array,
    ) -> Result<Float64Array> {
        let mut out = vec![0.0; offsets.len().saturating_sub(1)];
        keys::encode_bytes_batch_by(
            |key| self.inner.encode_bytes(key),
            &data,
            &offsets,
            &mut out,
        )
        .map_err(to_js)?;
        Ok(Float64Array::from(out))
    }

    #[napi]
    pub fn serialize(&self) -> Uint8Array {
        Uint8Array::from(format::serialize(&self.inner))
    }

    #[napi(factory)]
    pub fn deserialize(bytes: Uint8Array) -> Result<Self> {
        let inner = format::deserialize(&bytes).map_err(to_js)?;
        Ok(NativeRmi { inner })
    }
}

pub struct TrainTask {
    config: RmiConfig,
    keys: Vec<f64>,
}

impl Task for TrainTask {
    type Output = Rmi;
    type JsValue = NativeRmi;

    fn compute(&mut self) -> napi::Result<Rmi> {
        // Keys were validated before scheduling, so a failure here is a core bug worth surfacing as is.
        Rmi::train(self.config, &self.keys).map_err(|err| napi::Error::from_reason(err.to_string()))
    }

    fn resolve(&mut self, _env: Env, inner: Rmi) -> napi::Result<NativeRmi> {
        Ok(NativeRmi { inner })
    }
}

pub struct TrainOnKeysTask {
    config: RmiConfig,
    numbers: Vec<f64>,
    data: Vec<u8>,
    offsets: Vec<u32>,
}

impl Task for TrainOnKeysTask {
    type Output = Rmi;
    type JsValue = NativeRmi;

    fn compute(&mut self) -> napi::Result<Rmi> {
        let byte_keys: Vec<&[u8]> = self
            .offsets
            .windows(2)
            .map(|w| &self.data[w[0] as usize..w[1] as usize])
            .collect();
        // Inputs were validated before scheduling, so a failure here is a core bug worth surfacing as is.
        train_with_key_code(self.config, &self.numbers, &byte_keys)
            .map_err(|err| napi::Error::from_reason(err.to_string()))
    }

    fn resolve(&mut self, _env: Env, inner: Rmi) -> napi::Result<NativeRmi> {
        Ok(NativeRmi { inner })
    }
}

/// Federated average of serialized models weighted by `weights` (key counts), fitted as a model of
/// `options` on `synthetic_keys` quantiles, off the main thread. Inputs are read and checked here,
/// synchronously, so their errors keep their codes.
#[napi(ts_return_type = "Promise<NativeRmi>")]
pub fn federated_average(
    models: Vec<Uint8Array>,
    weights: Float64Array,
    options: RmiOptions,
    synthetic_keys: u32,
) -> Result<AsyncTask<AverageTask>> {
    if models.len() != weights.len() {
        return Err(invalid(format!(
            "{} models but {} weights",
            models.len(),
            weights.len()
        )));
    }
    let models = models
        .iter()
        .map(|bytes| format::deserialize(bytes))
        .collect::<dlht_core::Result<Vec<_>>>()
        .map_err(to_js)?;
    let task = AverageTask {
        config: to_config(&options)?,
        models,
        weights: weights.to_vec(),
        options: AverageOptions {
            synthetic_keys: synthetic_keys as usize,
        },
    };
    fedavg::validate(&task.contributions(), task.options).map_err(to_js)?;
    Ok(AsyncTask::new(task))
}

pub struct AverageTask {
    config: RmiConfig,
    models: Vec<Rmi>,
    weights: Vec<f64>,
    options: AverageOptions,
}

impl AverageTask {
    fn contributions(&self) -> Vec<Contribution<'_>> {
        self.models
            .iter()
            .zip(&self.weights)
            .map(|(model, &weight)| Contribution { model, weight })
            .collect()
    }
}

impl Task for AverageTask {
    type Output = Rmi;
    type JsValue = NativeRmi;

    fn compute(&mut self) -> napi::Result<Rmi> {
        // Inputs were validated before scheduling, so a failure here is a core bug worth surfacing as is.
        fedavg::federated_average(self.config, &self.contributions(), self.options)
            .map_err(|err| napi::Error::from_reason(err.to_string()))
    }

    fn resolve(&mut self, _env: Env, inner: Rmi) -> napi::Result<NativeRmi> {
        Ok(NativeRmi { inner })
    }
}

/// Uniform reservoir sample of a key stream. Wrapped by the facade `ReservoirSampler`.
#[napi]
pub struct NativeReservoir {
    inner: ReservoirSampler,
}

#[napi]
impl NativeReservoir {
    #[napi(constructor)]
    pub fn new(capacity: u32, seed: BigInt) -> Result<Self> {
        let seed = bigint_to_u64(&seed, "seed")?;
        let inner = ReservoirSampler::new(capacity as usize, seed).map_err(to_js)?;
        Ok(NativeReservoir { inner })
    }

    #[napi]
    pub fn insert(&mut self, key: f64) -> Result<()> {
        self.inner.insert(key).map_err(to_js)
    }

    #[napi]
    pub fn insert_many(&mut self, keys: Float64ArraySlice) -> Result<()> {
        self.inner.insert_many(&keys).map_err(to_js)
    }

    #[napi]
    pub fn sample(&self) -> Float64Array {
        Float64Array::from(self.inner.sample_sorted())
    }

    #[napi(getter)]
    pub fn seen(&self) -> f64 {
        self.inner.seen() as f64
    }

    #[napi(getter)]
    pub fn size(&self) -> u32 {
        self.inner.len() as u32
    }

    #[napi(getter)]
    pub fn capacity(&self) -> u32 {
        self.inner.capacity() as u32
    }

    #[napi]
    pub fn clear(&mut self) {
        self.inner.clear()
    }
}

/// Version of the key encoding; peers and data directories on another version place keys elsewhere.
#[napi]
pub const KEY_ENCODING_VERSION: u32 = keys::ENCODING_VERSION;

/// Order-preserving encoding of a string key (its UTF-8 bytes).
#[napi]
pub fn encode_string(key: String) -> f64 {
    keys::encode_bytes(key.as_bytes())
}

#[napi]
pub fn encode_bytes(key: Uint8Array) -> f64 {
    keys::encode_bytes(&key)
}

/// Bigints beyond the i128 range clamp to its ends, which keeps the encoding monotone.
#[napi]
pub fn encode_bigint(key: BigInt) -> f64 {
    let (value, lossless) = key.get_i128();
    if lossless {
        keys::encode_i128(value)
    } else if key.sign_bit {
        keys::encode_i128(i128::MIN)
    } else {
        keys::encode_i128(i128::MAX)
    }
}

/// Byte keys packed as one buffer: key i is `data[offsets[i]..offsets[i + 1]]`.
#[napi]
pub fn encode_bytes_batch(data: Uint8Array, offsets: Uint32Array) -> Result<Float64Array> {
    let mut out = vec![0.0; offsets.len().saturating_sub(1)];
    keys::encode_bytes_batch(&data, &offsets, &mut out).map_err(to_js)?;
    Ok(Float64Array::from(out))
}

/// A space-filling curve over a bounded box. Wrapped by the facade `SpaceFillingCurve`.
#[napi]
pub struct NativeCurve {
    inner: Curve,
}

#[napi]
impl NativeCurve {
    #[napi(constructor)]
    pub fn new(
        kind: String,
        min: Vec<f64>,
        max: Vec<f64>,
        bits_per_dim: Option<u32>,
    ) -> Result<Self> {
        let kind: CurveKind = kind.parse().map_err(to_js)?;
        let inner = match bits_per_dim {
            Some(bits) => Curve::new(kind, min, max, bits),
            None => Curve::with_default_bits(kind, min, max),
        }
        .map_err(to_js)?;
        Ok(NativeCurve { inner })
    }

    #[napi(getter)]
    pub fn dims(&self) -> u32 {
        self.inner.dims() as u32
    }

    #[napi(getter)]
    pub fn bits_per_dim(&self) -> u32 {
        self.inner.bits_per_dim()
    }

    /// Curve indices stay below 2^53, so they are exact as numbers.
    #[napi]
    pub fn index(&self, point: Float64Array) -> Result<f64> {
        Ok(self.inner.index(&point).map_err(to_js)? as f64)
    }

    #[napi]
    pub fn index_many(&self, points: Float64Array) -> Result<Float64Array> {
        let dims = self.inner.dims();
        if !points.len().is_multiple_of(dims) {
            return Err(invalid(format!(
                "points length {} is not a multiple of {dims} dimensions",
                points.len()
            )));
        }
        let mut indices = vec![0u64; points.len() / dims];
        self.inner
            .index_many(&points, &mut indices)
            .map_err(to_js)?;
        Ok(Float64Array::from(
            indices
                .into_iter()
                .map(|index| index as f64)
                .collect::<Vec<_>>(),
        ))
    }

    /// Intervals as a flat array `[lo0, hi0, lo1, hi1, ...]`, inclusive.
    #[napi]
    pub fn decompose_box(
        &self,
        min: Float64Array,
        max: Float64Array,
        max_intervals: u32,
    ) -> Result<Float64Array> {
        let intervals = self
            .inner
            .decompose_box(&min, &max, max_intervals as usize)
            .map_err(to_js)?;
        Ok(Float64Array::from(
            intervals
                .into_iter()
                .flat_map(|(lo, hi)| [lo as f64, hi as f64])
                .collect::<Vec<_>>(),
        ))
    }
}
