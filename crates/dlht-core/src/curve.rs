//! Space-filling curves (Hilbert, Z-order) that turn a bounded multi-dimensional point into one
//! integer index, so nearby points get nearby keys and a box query becomes a few index intervals.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::OnceLock;

use crate::error::{Error, Result};

/// Most dimensions a curve may have.
const MAX_DIMS: usize = 8;
/// Indices stay exact when JavaScript holds them in an f64.
const MAX_INDEX_BITS: u32 = 53;
/// Cell coordinates are `u32` (see [`Curve::cell_of`]).
const MAX_BITS_PER_DIM: u32 = 32;
/// Default resolution: 2^26 cells split the equator into cells under a metre.
const DEFAULT_MAX_BITS_PER_DIM: u32 = 26;
/// `decompose_box` refines the box into about this many pieces per requested interval before
/// closing gaps: finer pieces let it keep the widest gaps (measured on 1% boxes in 2-D: 2 gives
/// 1.11 times the box's cells, 4 gives 1.06 in half the time of 8, which gives 1.03).
const REFINE_FACTOR: usize = 4;
/// Most pieces one `decompose_box` refines into, whatever the budget, so time and memory stay small.
const MAX_REFINE_PIECES: usize = 1 << 16;

/// Which space-filling curve orders the cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CurveKind {
    /// Consecutive indices are adjacent cells, so a box splits into few intervals.
    Hilbert,
    /// Morton order, plain bit interleaving: cheaper per point, but boxes split into more intervals.
    ZOrder,
}

impl FromStr for CurveKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<CurveKind> {
        match s {
            "hilbert" => Ok(CurveKind::Hilbert),
            "z-order" => Ok(CurveKind::ZOrder),
            _ => Err(Error::InvalidArgument(format!(
                "unknown curve {s:?}: expected \"hilbert\" or \"z-order\""
            ))),
        }
    }
}

/// A space-filling curve over a box of user coordinates, cut into `2^bits_per_dim` cells per axis.
#[derive(Debug, Clone)]
pub struct Curve {
    kind: CurveKind,
    bits: u32,
    min: Vec<f64>,
    max: Vec<f64>,
    /// Cells per user unit on each axis, so quantising is one multiply.
    scale: Vec<f64>,
}

impl Curve {
    /// A curve over `[min[i], max[i]]` on each axis with `2^bits_per_dim` cells per axis.
    ///
    /// `dims` (the length of `min` and `max`) must be 1 to 8, `bits_per_dim` 1 to 32 with
    /// `dims * bits_per_dim <= 53` (indices stay exact in an f64), and the bounds finite with
    /// `min[i] < max[i]`.
    pub fn new(kind: CurveKind, min: Vec<f64>, max: Vec<f64>, bits_per_dim: u32) -> Result<Curve> {
        let dims = min.len();
        if dims == 0 || dims > MAX_DIMS {
            return Err(invalid(format!(
                "a curve needs 1 to {MAX_DIMS} dimensions, got {dims}"
            )));
        }
        if max.len() != dims {
            return Err(invalid(format!(
                "min has {dims} bounds but max has {}",
                max.len()
            )));
        }
        let max_bits = (MAX_INDEX_BITS / dims as u32).min(MAX_BITS_PER_DIM);
        if bits_per_dim == 0 || bits_per_dim > max_bits {
            return Err(invalid(format!(
                "bits per dimension must be 1 to {max_bits} for {dims} dimensions, got {bits_per_dim}"
            )));
        }
        let cells = (1u64 << bits_per_dim) as f64;
        let mut scale = Vec::with_capacity(dims);
        for (axis, (&lo, &hi)) in min.iter().zip(&max).enumerate() {
            let s = cells / (hi - lo);
            // `lo < hi` is false for NaN; a huge width or a tiny one would break the scale.
            if !(lo < hi && (hi - lo).is_finite() && s.is_finite()) {
                return Err(invalid(format!(
                    "bounds of axis {axis} must be finite numbers with min < max, got [{lo}, {hi}]"
                )));
            }
            scale.push(s);
        }
        Ok(Curve {
            kind,
            bits: bits_per_dim,
            min,
            max,
            scale,
        })
    }

    /// A curve with `floor(53 / dims)` bits per axis, at most 26.
    pub fn with_default_bits(kind: CurveKind, min: Vec<f64>, max: Vec<f64>) -> Result<Curve> {
        let bits = (MAX_INDEX_BITS as usize / min.len().max(1)) as u32;
        Curve::new(kind, min, max, bits.min(DEFAULT_MAX_BITS_PER_DIM))
    }

    pub fn dims(&self) -> usize {
        self.min.len()
    }

    pub fn bits_per_dim(&self) -> u32 {
        self.bits
    }

    pub fn kind(&self) -> CurveKind {
        self.kind
    }

    pub fn min(&self) -> &[f64] {
        &self.min
    }

    pub fn max(&self) -> &[f64] {
        &self.max
    }

    /// Largest index of this curve: `2^(dims * bits_per_dim) - 1`.
    fn max_index(&self) -> u64 {
        (1u64 << (self.dims() as u32 * self.bits)) - 1
    }

    /// Curve index of a point. Coordinates outside the bounds count as the nearest edge cell.
    pub fn index(&self, point: &[f64]) -> Result<u64> {
        if point.len() != self.dims() {
            return Err(invalid(format!(
                "the point has {} coordinates but the curve has {} dimensions",
                point.len(),
                self.dims()
            )));
        }
        match self.point_cells(point) {
            Ok(cells) => Ok(self.index_of_cells(cells)),
            Err(axis) => Err(non_finite(point[axis], axis, "the point")),
        }
    }

    /// Indices of `out.len()` points given flat and row-major in `points`.
    /// On error, `out` may be partly written.
    pub fn index_many(&self, points: &[f64], out: &mut [u64]) -> Result<()> {
        let dims = self.dims();
        if Some(points.len()) != out.len().checked_mul(dims) {
            return Err(invalid(format!(
                "{} coordinates do not make {} points of {dims} dimensions",
                points.len(),
                out.len()
            )));
        }
        for (row, (point, slot)) in points.chunks_exact(dims).zip(out.iter_mut()).enumerate() {
            match self.point_cells(point) {
                Ok(cells) => *slot = self.index_of_cells(cells),
                Err(axis) => return Err(non_finite(point[axis], axis, &format!("point {row}"))),
            }
        }
        Ok(())
    }

    /// Cell coordinates (0 to `2^bits_per_dim - 1` per axis) of an index; bits above
    /// `dims * bits_per_dim` are ignored. The inverse of [`Curve::index`] on cells, for tests and debugging.
    pub fn cell_of(&self, index: u64) -> Vec<u32> {
        let dims = self.dims();
        let index = index & self.max_index();
        let morton = match self.kind {
            CurveKind::ZOrder => index,
            CurveKind::Hilbert => {
                let gray = index ^ (index >> 1);
                let mask = (1u64 << dims) - 1;
                let mut orientation = Orientation::IDENTITY;
                let mut morton = 0;
                for level in (0..self.bits as usize).rev() {
                    let digit = ((gray >> (level * dims)) & mask) as u32;
                    morton = (morton << dims) | u64::from(orientation.twist(digit, dims));
                    orientation = orientation.below(digit, dims);
                }
                morton
            }
        };
        let mut cells = vec![0u32; dims];
        deinterleave(morton, &mut cells, self.bits);
        cells
    }

    /// Sorted, disjoint, inclusive index intervals, at most `max_intervals` of them, whose union
    /// holds the index of every point of the inclusive box `[min, max]`.
    ///
    /// The box is clamped to the bounds (infinite corners are allowed). The union may also hold
    /// indices of points outside the box: the caller filters exactly. Subtrees of the curve whose
    /// cells form a cube and one index interval are refined where they waste most, then the
    /// smallest gaps between them are closed until the budget holds.
    pub fn decompose_box(
        &self,
        min: &[f64],
        max: &[f64],
        max_intervals: usize,
    ) -> Result<Vec<(u64, u64)>> {
        let dims = self.dims();
        if min.len() != dims || max.len() != dims {
            return Err(invalid(format!(
                "the box has {} and {} coordinates but the curve has {dims} dimensions",
                min.len(),
                max.len()
            )));
        }
        if max_intervals == 0 {
            return Err(invalid("max_intervals must be at least 1".to_string()));
        }
        let mut query = CellBox {
            lo: [0; MAX_DIMS],
            hi: [0; MAX_DIMS],
        };
        for (axis, (&lo, &hi)) in min.iter().zip(max).enumerate() {
            if lo.is_nan() || hi.is_nan() || lo > hi {
                return Err(invalid(format!(
                    "box axis {axis} must have min <= max, got [{lo}, {hi}]"
                )));
            }
            query.lo[axis] = self.cell(axis, lo);
            query.hi[axis] = self.cell(axis, hi);
        }
        let limit = max_intervals
            .saturating_mul(REFINE_FACTOR)
            .min(MAX_REFINE_PIECES);
        Ok(close_gaps(self.refine(&query, limit), max_intervals))
    }

    /// Cell of one coordinate, clamped to the grid. Monotone in `x`, so the cells of a box's
    /// corners bound the cells of every point inside it.
    #[inline]
    fn cell(&self, axis: usize, x: f64) -> u32 {
        let top = ((1u64 << self.bits) - 1) as f64;
        ((x - self.min[axis]) * self.scale[axis]).clamp(0.0, top) as u32
    }

    /// Cells of a point whose length was checked, or the axis of a coordinate that is not finite.
    #[inline]
    fn point_cells(&self, point: &[f64]) -> std::result::Result<[u32; MAX_DIMS], usize> {
        let mut cells = [0u32; MAX_DIMS];
        for (axis, (&x, cell)) in point.iter().zip(&mut cells).enumerate() {
            if !x.is_finite() {
                return Err(axis);
            }
            *cell = self.cell(axis, x);
        }
        Ok(cells)
    }

    #[inline]
    fn index_of_cells(&self, cells: [u32; MAX_DIMS]) -> u64 {
        let dims = self.dims();
        let morton = interleave(&cells[..dims], self.bits);
        match self.kind {
            CurveKind::ZOrder => morton,
            CurveKind::Hilbert => gray_decode(match hilbert_table(dims) {
                Some(table) => table.untwist(morton, dims, self.bits),
                None => untwist_levels(Orientation::IDENTITY, morton, dims, self.bits).0,
            }),
        }
    }

    /// Covers `query` with curve subtrees, in index order: starting from the whole grid, each
    /// round splits the partial subtrees that waste most cells into their orthants, as many as
    /// keep the pieces under `limit`. Returns sorted, disjoint, not touching intervals.
    fn refine(&self, query: &CellBox, limit: usize) -> Vec<(u64, u64)> {
        let root = Node {
            first: 0,
            level: self.bits,
            corner: [0; MAX_DIMS],
            orientation: Orientation::IDENTITY,
        };
        let mut pieces = Vec::new();
        self.file(root, query, &mut pieces);
        // One split replaces a piece by at most `2^dims`: the pieces overshoot `limit` by less.
        let growth = (1usize << self.dims()) - 1;
        loop {
            let partial = pieces
                .iter()
                .filter(|piece| matches!(piece, Piece::Partial { .. }))
                .count();
            let mut room = limit.saturating_sub(pieces.len()).div_ceil(growth);
            if partial == 0 || room == 0 {
                break;
            }
            // When not all fit, the last round splits those that waste most.
            let last = room < partial;
            let threshold = if last {
                let mut wastes: Vec<u64> = pieces
                    .iter()
                    .filter_map(|piece| match piece {
                        Piece::Partial { waste, .. } => Some(*waste),
                        Piece::Run(..) => None,
                    })
                    .collect();
                *wastes.select_nth_unstable_by(room - 1, |a, b| b.cmp(a)).1
            } else {
                0
            };
            let mut next = Vec::with_capacity(pieces.len() * 2);
            for piece in pieces {
                match piece {
                    Piece::Partial { node, waste } if room > 0 && waste >= threshold => {
                        room -= 1;
                        self.children(&node, |child| self.file(child, query, &mut next));
                    }
                    piece => push_piece(&mut next, piece),
                }
            }
            pieces = next;
            if last {
                break;
            }
        }
        let mut intervals: Vec<(u64, u64)> = Vec::with_capacity(pieces.len());
        for piece in pieces {
            let (lo, hi) = match piece {
                Piece::Run(lo, hi) => (lo, hi),
                Piece::Partial { node, .. } => self.interval(&node),
            };
            match intervals.last_mut() {
                Some(last) if lo == last.1 + 1 => last.1 = hi,
                _ => intervals.push((lo, hi)),
            }
        }
        intervals
    }

    /// Appends a subtree as a run (inside the box) or a partial piece, or drops it (outside).
    fn file(&self, node: Node, query: &CellBox, pieces: &mut Vec<Piece>) {
        match self.overlap(&node, query) {
            Overlap::Inside => {
                let (lo, hi) = self.interval(&node);
                push_piece(pieces, Piece::Run(lo, hi));
            }
            Overlap::Partial(waste) => pieces.push(Piece::Partial { node, waste }),
            Overlap::Outside => {}
        }
    }

    fn interval(&self, node: &Node) -> (u64, u64) {
        let span = 1u64 << (self.dims() as u32 * node.level);
        (node.first, node.first + (span - 1))
    }

    /// How a subtree's cube meets the box; for a partial one, how many of its cells lie outside.
    fn overlap(&self, node: &Node, query: &CellBox) -> Overlap {
        let side = 1u64 << node.level;
        let mut inside = 1u64;
        let mut whole = true;
        for axis in 0..self.dims() {
            let lo = u64::from(node.corner[axis]);
            let hi = lo + side - 1;
            let (qlo, qhi) = (u64::from(query.lo[axis]), u64::from(query.hi[axis]));
            if lo > qhi || hi < qlo {
                return Overlap::Outside;
            }
            whole &= lo >= qlo && hi <= qhi;
            inside *= hi.min(qhi) - lo.max(qlo) + 1;
        }
        if whole {
            Overlap::Inside
        } else {
            Overlap::Partial((1u64 << (self.dims() as u32 * node.level)) - inside)
        }
    }

    /// Calls `f` on the `2^dims` orthants of a subtree (level >= 1), in index order.
    fn children(&self, node: &Node, mut f: impl FnMut(Node)) {
        let dims = self.dims();
        let level = node.level - 1;
        let span = 1u64 << (dims as u32 * level);
        // The index bit just above this node's digits: the Gray code runs across levels.
        let carry = ((node.first >> (dims as u32 * node.level)) & 1) as u32;
        for digit in 0..1u32 << dims {
            let (axes, orientation) = match self.kind {
                CurveKind::ZOrder => (digit, node.orientation),
                CurveKind::Hilbert => {
                    let gray = digit ^ (digit >> 1) ^ (carry << (dims - 1));
                    let orientation = node.orientation;
                    (orientation.twist(gray, dims), orientation.below(gray, dims))
                }
            };
            let mut corner = node.corner;
            for (axis, c) in corner[..dims].iter_mut().enumerate() {
                *c |= ((axes >> (dims - 1 - axis)) & 1) << level;
            }
            f(Node {
                first: node.first + u64::from(digit) * span,
                level,
                corner,
                orientation,
            });
        }
    }
}

/// A stretch of the curve in `decompose_box`: indices kept, or a subtree partly in the box.
enum Piece {
    Run(u64, u64),
    /// `waste`: how many of the subtree's cells lie outside the box.
    Partial {
        node: Node,
        waste: u64,
    },
}

/// Appends a piece, joining a run to a run it touches.
fn push_piece(pieces: &mut Vec<Piece>, piece: Piece) {
    if let (Some(Piece::Run(_, hi)), Piece::Run(lo, next_hi)) = (pieces.last_mut(), &piece) {
        if *lo == *hi + 1 {
            *hi = *next_hi;
            return;
        }
    }
    pieces.push(piece);
}

/// An inclusive box of cells.
struct CellBox {
    lo: [u32; MAX_DIMS],
    hi: [u32; MAX_DIMS],
}

/// A subtree of the curve: a cube of `2^level` cells per axis whose indices are the interval
/// starting at `first`.
#[derive(Clone, Copy)]
struct Node {
    first: u64,
    level: u32,
    /// Lowest cell of the cube on each axis.
    corner: [u32; MAX_DIMS],
    /// For Hilbert, how the levels below are twisted.
    orientation: Orientation,
}

enum Overlap {
    Outside,
    Inside,
    /// Number of the node's cells outside the box.
    Partial(u64),
}

/// Closes the smallest gaps between sorted, disjoint intervals until at most `budget` remain:
/// the fewest extra indices for that many intervals.
fn close_gaps(intervals: Vec<(u64, u64)>, budget: usize) -> Vec<(u64, u64)> {
    if intervals.len() <= budget {
        return intervals;
    }
    // Keep the `budget - 1` widest gaps open.
    let mut gaps: Vec<(Reverse<u64>, usize)> = intervals
        .windows(2)
        .enumerate()
        .map(|(i, pair)| (Reverse(pair[1].0 - pair[0].1), i))
        .collect();
    let keep = budget - 1;
    gaps.select_nth_unstable(keep);
    let mut open = vec![false; intervals.len()];
    for &(_, i) in &gaps[..keep] {
        open[i] = true;
    }
    let mut out = Vec::with_capacity(budget);
    let mut start = intervals[0].0;
    for (i, &(_, hi)) in intervals.iter().enumerate() {
        if i + 1 == intervals.len() || open[i] {
            out.push((start, hi));
            if let Some(next) = intervals.get(i + 1) {
                start = next.0;
            }
        }
    }
    out
}

/// SPREAD[n - 1][b] has bit k of the byte b at bit k * n: one lookup interleaves 8 bits of an axis.
static SPREAD: [[u64; 256]; MAX_DIMS] = spread_table();

const fn spread_table() -> [[u64; 256]; MAX_DIMS] {
    let mut table = [[0u64; 256]; MAX_DIMS];
    let mut n = 0;
    while n < MAX_DIMS {
        let mut byte = 0;
        while byte < 256 {
            let mut k = 0;
            while k < 8 {
                if (byte >> k) & 1 == 1 {
                    table[n][byte] |= 1 << (k * (n + 1));
                }
                k += 1;
            }
            byte += 1;
        }
        n += 1;
    }
    table
}

/// Bit `level` of axis `i` goes to index bit `level * n + (n - 1 - i)`: axis 0 is the most
/// significant within each level.
#[inline]
fn interleave(cells: &[u32], bits: u32) -> u64 {
    let n = cells.len();
    let table = &SPREAD[n - 1];
    let mut out = 0;
    for (axis, &cell) in cells.iter().enumerate() {
        let mut spread = 0;
        for byte in 0..bits.div_ceil(8) as usize {
            spread |= table[(cell >> (8 * byte)) as usize & 0xff] << (8 * byte * n);
        }
        out |= spread << (n - 1 - axis);
    }
    out
}

fn deinterleave(index: u64, cells: &mut [u32], bits: u32) {
    let n = cells.len();
    for level in 0..bits as usize {
        for (axis, cell) in cells.iter_mut().enumerate() {
            *cell |= (((index >> (level * n + n - 1 - axis)) & 1) as u32) << level;
        }
    }
}

/// Each index bit is the XOR of the untwisted bits at and above it (Skilling's "Gray encode" of
/// the transposed index, run across all levels at once).
#[inline]
fn gray_decode(mut gray: u64) -> u64 {
    for shift in [1, 2, 4, 8, 16, 32] {
        gray ^= gray >> shift;
    }
    gray
}

/// Orientation of a Hilbert subtree: Skilling's transpose algorithm (AxestoTranspose, 2004)
/// restated level by level. Going down, each level's bits invert or swap the axes of all the
/// levels below; this is that twist so far. Untwisted slot `j` is cell axis `perm[j]`, inverted
/// where bit `j` of `flip` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Orientation {
    perm: [u8; MAX_DIMS],
    flip: u8,
}

impl Orientation {
    const IDENTITY: Orientation = Orientation {
        perm: [0, 1, 2, 3, 4, 5, 6, 7],
        flip: 0,
    };

    /// Untwisted bits of one level (slot 0 most significant) from its Morton digit (axis 0 most
    /// significant). They are the Gray code of the level's index digit.
    #[inline]
    fn untwist(&self, axes: u32, dims: usize) -> u32 {
        let mut gray = 0;
        for slot in 0..dims {
            let axis = usize::from(self.perm[slot]);
            let bit = ((axes >> (dims - 1 - axis)) & 1) ^ u32::from((self.flip >> slot) & 1);
            gray = (gray << 1) | bit;
        }
        gray
    }

    /// The inverse of [`Orientation::untwist`].
    #[inline]
    fn twist(&self, gray: u32, dims: usize) -> u32 {
        let mut axes = 0;
        for slot in 0..dims {
            let bit = ((gray >> (dims - 1 - slot)) & 1) ^ u32::from((self.flip >> slot) & 1);
            axes |= bit << (dims - 1 - usize::from(self.perm[slot]));
        }
        axes
    }

    /// Orientation of the levels below one whose untwisted bits are `gray`: Skilling's step,
    /// where a set bit inverts slot 0 and a clear bit swaps slot 0 with its own.
    #[inline]
    fn below(mut self, gray: u32, dims: usize) -> Orientation {
        for slot in 0..dims {
            // Branch-free: the bits are data, a branch would mispredict half the time.
            let set = ((gray >> (dims - 1 - slot)) & 1) as u8;
            self.flip ^= set;
            let swap = (self.perm[0] ^ self.perm[slot]) & set.wrapping_sub(1);
            self.perm[0] ^= swap;
            self.perm[slot] ^= swap;
            let differ = (self.flip ^ (self.flip >> slot)) & 1 & (set ^ 1);
            self.flip ^= differ | (differ << slot);
        }
        self
    }
}

/// Untwists the `levels` levels of a Morton code, top first, starting in `orientation`:
/// the untwisted bits of those levels and the orientation below them.
#[inline]
fn untwist_levels(
    mut orientation: Orientation,
    morton: u64,
    dims: usize,
    levels: u32,
) -> (u64, Orientation) {
    let mask = (1u64 << dims) - 1;
    let mut gray = 0;
    for level in (0..levels as usize).rev() {
        let digit = orientation.untwist(((morton >> (level * dims)) & mask) as u32, dims);
        gray = (gray << dims) | u64::from(digit);
        orientation = orientation.below(digit, dims);
    }
    (gray, orientation)
}

/// Levels one table lookup untwists, for 1 to 4 dimensions: at most 8 bits a lookup, and the
/// `dims! * 2^dims` orientations (384 in 4-D) keep entries in a `u16`. Beyond, tables grow too
/// big and `index` untwists level by level.
const TABLE_LEVELS: [u32; 4] = [8, 4, 2, 1];

static HILBERT_TABLES: [OnceLock<HilbertTable>; TABLE_LEVELS.len()] =
    [const { OnceLock::new() }; TABLE_LEVELS.len()];

fn hilbert_table(dims: usize) -> Option<&'static HilbertTable> {
    let table = HILBERT_TABLES.get(dims - 1)?;
    Some(table.get_or_init(|| HilbertTable::new(dims)))
}

/// [`untwist_levels`] for a few levels at once, memoised for one number of dimensions: a table
/// walk costs one lookup per chunk of levels instead of a few operations per axis and level.
struct HilbertTable {
    levels: u32,
    /// At `state << chunk | morton chunk`: `next state << chunk | untwisted chunk`, where
    /// `chunk` is `levels * dims` bits and state 0 is [`Orientation::IDENTITY`].
    entries: Vec<u16>,
}

impl HilbertTable {
    fn new(dims: usize) -> HilbertTable {
        let levels = TABLE_LEVELS[dims - 1];
        let chunk = levels as usize * dims;
        let mut states = vec![Orientation::IDENTITY];
        let mut ids = HashMap::from([(Orientation::IDENTITY, 0usize)]);
        let mut entries = Vec::new();
        let mut state = 0;
        while state < states.len() {
            for morton in 0..1u64 << chunk {
                let (gray, below) = untwist_levels(states[state], morton, dims, levels);
                let next = *ids.entry(below).or_insert_with(|| {
                    states.push(below);
                    states.len() - 1
                });
                entries.push(((next << chunk) | gray as usize) as u16);
            }
            state += 1;
        }
        HilbertTable { levels, entries }
    }

    /// Untwisted bits of a Morton code of `bits` levels.
    #[inline]
    fn untwist(&self, morton: u64, dims: usize, bits: u32) -> u64 {
        let chunk = self.levels as usize * dims;
        let steps = bits.div_ceil(self.levels) as usize;
        // Zero levels appended below the last make whole chunks; their bits are shifted out.
        let pad = steps * chunk - bits as usize * dims;
        let morton = morton << pad;
        let mask = (1u64 << chunk) - 1;
        let mut state = 0;
        let mut gray = 0;
        for step in (0..steps).rev() {
            let index = (state << chunk) | ((morton >> (step * chunk)) & mask) as usize;
            let entry = u64::from(self.entries[index]);
            gray = (gray << chunk) | (entry & mask);
            state = (entry >> chunk) as usize;
        }
        gray >> pad
    }
}

fn invalid(message: String) -> Error {
    Error::InvalidArgument(message)
}

fn non_finite(x: f64, axis: usize, what: &str) -> Error {
    invalid(format!(
        "coordinate {axis} of {what} is not a finite number ({x})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn unit_curve(kind: CurveKind, dims: usize, bits: u32) -> Curve {
        Curve::new(kind, vec![0.0; dims], vec![1.0; dims], bits).unwrap()
    }

    /// The centre of a cell, in the coordinates of a unit curve.
    fn centre(curve: &Curve, cells: &[u32]) -> Vec<f64> {
        let size = (1u64 << curve.bits_per_dim()) as f64;
        cells.iter().map(|&c| (f64::from(c) + 0.5) / size).collect()
    }

    fn contains(intervals: &[(u64, u64)], index: u64) -> bool {
        let i = intervals.partition_point(|&(_, hi)| hi < index);
        intervals.get(i).is_some_and(|&(lo, _)| lo <= index)
    }

    fn naive_interleave(cells: &[u32], bits: u32) -> u64 {
        let mut index = 0;
        for level in (0..bits).rev() {
            for &cell in cells {
                index = (index << 1) | u64::from((cell >> level) & 1);
            }
        }
        index
    }

    /// Skilling's AxestoTranspose (2004) as published, then the transposed index read out.
    fn skilling_index(cells: &[u32], bits: u32) -> u64 {
        let mut x = cells.to_vec();
        let n = x.len();
        let m = 1u32 << (bits - 1);
        let mut q = m;
        while q > 1 {
            let p = q - 1;
            for i in 0..n {
                if x[i] & q != 0 {
                    x[0] ^= p;
                } else {
                    let t = (x[0] ^ x[i]) & p;
                    x[0] ^= t;
                    x[i] ^= t;
                }
            }
            q >>= 1;
        }
        for i in 1..n {
            x[i] ^= x[i - 1];
        }
        let mut t = 0;
        q = m;
        while q > 1 {
            if x[n - 1] & q != 0 {
                t ^= q - 1;
            }
            q >>= 1;
        }
        for xi in &mut x {
            *xi ^= t;
        }
        naive_interleave(&x, bits)
    }

    fn assert_invalid<T: std::fmt::Debug>(result: Result<T>) {
        assert_eq!(result.unwrap_err().code(), "ERR_DLHT_INVALID_ARGUMENT");
    }

    #[test]
    fn hilbert_walks_adjacent_cells_once_each_in_every_dimension() {
        for (dims, bits) in [
            (1, 8),
            (2, 1),
            (2, 6),
            (3, 4),
            (4, 3),
            (5, 3),
            (6, 2),
            (7, 2),
            (8, 2),
        ] {
            let curve = unit_curve(CurveKind::Hilbert, dims, bits);
            let mut previous = curve.cell_of(0);
            assert_eq!(previous, vec![0; dims], "starts at the origin");
            for index in 0..=curve.max_index() {
                let cells = curve.cell_of(index);
                // index ∘ cell_of is the identity on 0..=max_index: a bijection of the grid.
                assert_eq!(curve.index(&centre(&curve, &cells)).unwrap(), index);
                let step: u32 = cells
                    .iter()
                    .zip(&previous)
                    .map(|(a, b)| a.abs_diff(*b))
                    .sum();
                assert_eq!(step, u32::from(index > 0), "{dims}-D index {index}");
                previous = cells;
            }
        }
    }

    #[test]
    fn kind_parses_from_its_names() {
        assert_eq!("hilbert".parse::<CurveKind>(), Ok(CurveKind::Hilbert));
        assert_eq!("z-order".parse::<CurveKind>(), Ok(CurveKind::ZOrder));
        assert_invalid("zorder".parse::<CurveKind>());
        assert_invalid("".parse::<CurveKind>());
    }

    #[test]
    fn default_bits_fill_53_bits_up_to_26_per_axis() {
        for (dims, bits) in [(1, 26), (2, 26), (3, 17), (4, 13), (7, 7), (8, 6)] {
            let curve =
                Curve::with_default_bits(CurveKind::Hilbert, vec![0.0; dims], vec![1.0; dims]);
            assert_eq!(curve.unwrap().bits_per_dim(), bits);
        }
        assert_invalid(Curve::with_default_bits(CurveKind::Hilbert, vec![], vec![]));
        assert_invalid(Curve::with_default_bits(
            CurveKind::Hilbert,
            vec![0.0; 9],
            vec![1.0; 9],
        ));
    }

    #[test]
    fn points_outside_the_bounds_take_the_edge_cells() {
        let curve = Curve::new(
            CurveKind::ZOrder,
            vec![-180.0, -90.0],
            vec![180.0, 90.0],
            26,
        )
        .unwrap();
        assert_eq!(curve.index(&[-500.0, -90.0]).unwrap(), 0);
        assert_eq!(curve.index(&[180.0, 1e300]).unwrap(), curve.max_index());
        assert_eq!(
            curve.cell_of(curve.index(&[0.0, 1e-9]).unwrap()),
            [1 << 25, 1 << 25]
        );
    }

    #[test]
    fn index_many_matches_index() {
        let curve = Curve::with_default_bits(CurveKind::Hilbert, vec![0.0; 3], vec![1.0; 3]);
        let curve = curve.unwrap();
        let points = [0.1, 0.2, 0.3, 0.9, 0.8, 0.7, 0.5, 0.5, 0.5];
        let mut out = [0u64; 3];
        curve.index_many(&points, &mut out).unwrap();
        for (point, index) in points.chunks(3).zip(out) {
            assert_eq!(curve.index(point).unwrap(), index);
        }
        assert_invalid(curve.index_many(&points, &mut [0u64; 2]));
        assert_invalid(curve.index_many(&points[..8], &mut out));
        let err = curve.index_many(&[0.0, 0.0, 0.0, 0.0, f64::NAN, 0.0], &mut [0; 2]);
        assert_eq!(
            err.unwrap_err().to_string(),
            "coordinate 1 of point 1 is not a finite number (NaN)"
        );
    }

    #[test]
    fn bad_input_is_refused() {
        let new =
            |min: Vec<f64>, max: Vec<f64>, bits| Curve::new(CurveKind::Hilbert, min, max, bits);
        assert_invalid(new(vec![], vec![], 10));
        assert_invalid(new(vec![0.0; 9], vec![1.0; 9], 5));
        assert_invalid(new(vec![0.0; 2], vec![1.0; 3], 10));
        assert_invalid(new(vec![0.0; 2], vec![1.0; 2], 0));
        assert_invalid(new(vec![0.0; 2], vec![1.0; 2], 27));
        assert_invalid(new(vec![0.0], vec![1.0], 33));
        assert_invalid(new(vec![0.0; 8], vec![1.0; 8], 7));
        assert_invalid(new(vec![0.0, 1.0], vec![1.0, 1.0], 10));
        assert_invalid(new(vec![0.0, f64::NAN], vec![1.0, 1.0], 10));
        assert_invalid(new(vec![0.0, 0.0], vec![1.0, f64::INFINITY], 10));
        assert_invalid(new(vec![-f64::MAX], vec![f64::MAX], 10));
        assert_invalid(new(vec![0.0], vec![1e-310], 10));

        let curve = new(vec![0.0; 2], vec![1.0; 2], 10).unwrap();
        assert_invalid(curve.index(&[0.5]));
        assert_invalid(curve.index(&[0.5, 0.5, 0.5]));
        assert_invalid(curve.index(&[0.5, f64::INFINITY]));
        assert_invalid(curve.index(&[f64::NAN, 0.5]));
        assert_invalid(curve.decompose_box(&[0.5, 0.5], &[0.4, 0.6], 8));
        assert_invalid(curve.decompose_box(&[0.5, f64::NAN], &[0.6, 0.6], 8));
        assert_invalid(curve.decompose_box(&[0.5], &[0.6], 8));
        assert_invalid(curve.decompose_box(&[0.1, 0.1], &[0.6, 0.6], 0));
    }

    #[test]
    fn a_box_over_everything_is_one_interval() {
        for kind in [CurveKind::Hilbert, CurveKind::ZOrder] {
            let curve = Curve::new(kind, vec![-1.0, 0.0, 5.0], vec![1.0, 2.0, 6.0], 17).unwrap();
            let whole = vec![(0, curve.max_index())];
            let decompose = |min: &[f64], max: &[f64]| curve.decompose_box(min, max, 1).unwrap();
            assert_eq!(decompose(curve.min(), curve.max()), whole);
            assert_eq!(decompose(&[-9.0, -9.0, -9.0], &[9.0, 9.0, 9.0]), whole);
            assert_eq!(
                decompose(&[f64::NEG_INFINITY; 3], &[f64::INFINITY; 3]),
                whole
            );
        }
    }

    /// A 1% box of a 2^26 x 2^26 grid in at most 64 intervals covers few more indices than it has
    /// cells (measured: 1.03 to 1.08 times for Hilbert, 1.05 to 1.10 for Z-order).
    #[test]
    fn a_small_box_costs_few_extra_indices() {
        for kind in [CurveKind::Hilbert, CurveKind::ZOrder] {
            let curve = unit_curve(kind, 2, 26);
            for (x, y) in [(0.123, 0.456), (0.45, 0.45), (0.8, 0.05), (0.3333, 0.6667)] {
                let (min, max) = ([x, y], [x + 0.1, y + 0.1]);
                let intervals = curve.decompose_box(&min, &max, 64).unwrap();
                let covered: u64 = intervals.iter().map(|&(lo, hi)| hi - lo + 1).sum();
                let cells: u64 = (0..2)
                    .map(|axis| {
                        u64::from(curve.cell(axis, max[axis]) - curve.cell(axis, min[axis])) + 1
                    })
                    .product();
                let ratio = covered as f64 / cells as f64;
                assert!(intervals.len() <= 64);
                assert!(
                    ratio < 1.25,
                    "{kind:?} box at ({x}, {y}) covers {ratio} times its cells"
                );
            }
        }
    }

    /// Curves of 1 to 8 dimensions with any resolution allowed for that many.
    fn any_curve() -> impl Strategy<Value = Curve> {
        (
            prop_oneof![Just(CurveKind::Hilbert), Just(CurveKind::ZOrder)],
            1usize..=8,
        )
            .prop_flat_map(|(kind, dims)| {
                let max_bits = (MAX_INDEX_BITS / dims as u32).min(MAX_BITS_PER_DIM);
                (Just(kind), Just(dims), 1..=max_bits)
            })
            .prop_map(|(kind, dims, bits)| unit_curve(kind, dims, bits))
    }

    /// A curve with random cells on it.
    fn curve_and_cells() -> impl Strategy<Value = (Curve, Vec<Vec<u32>>)> {
        any_curve().prop_flat_map(|curve| {
            let top = ((1u64 << curve.bits_per_dim()) - 1) as u32;
            let cells =
                proptest::collection::vec(proptest::collection::vec(0..=top, curve.dims()), 16);
            (Just(curve), cells)
        })
    }

    /// A curve, a box on it (reaching a little past the bounds) and points inside the box.
    fn curve_box_points() -> impl Strategy<Value = (Curve, Vec<f64>, Vec<f64>, Vec<Vec<f64>>)> {
        any_curve().prop_flat_map(|curve| {
            let dims = curve.dims();
            let corners = proptest::collection::vec((-0.25f64..1.25, -0.25f64..1.25), dims);
            let fractions =
                proptest::collection::vec(proptest::collection::vec(0.0f64..=1.0, dims), 32);
            (Just(curve), corners, fractions).prop_map(move |(curve, corners, fractions)| {
                let min: Vec<f64> = corners.iter().map(|&(a, b)| a.min(b)).collect();
                let max: Vec<f64> = corners.iter().map(|&(a, b)| a.max(b)).collect();
                let mut points: Vec<Vec<f64>> = fractions
                    .iter()
                    .map(|f| {
                        (0..dims)
                            .map(|i| min[i] + f[i] * (max[i] - min[i]))
                            .collect()
                    })
                    .collect();
                points.push(min.clone());
                points.push(max.clone());
                (curve, min, max, points)
            })
        })
    }

    proptest! {
        #[test]
        fn z_order_is_a_plain_bit_interleave((curve, cells) in curve_and_cells()) {
            let curve = Curve::new(CurveKind::ZOrder, curve.min, curve.max, curve.bits).unwrap();
            for cells in cells {
                let index = curve.index(&centre(&curve, &cells)).unwrap();
                prop_assert_eq!(index, naive_interleave(&cells, curve.bits_per_dim()));
                prop_assert_eq!(curve.cell_of(index), cells);
            }
        }

        #[test]
        fn hilbert_is_skillings_curve((curve, cells) in curve_and_cells()) {
            let curve = Curve::new(CurveKind::Hilbert, curve.min, curve.max, curve.bits).unwrap();
            for cells in cells {
                let index = curve.index(&centre(&curve, &cells)).unwrap();
                prop_assert_eq!(index, skilling_index(&cells, curve.bits_per_dim()));
            }
        }

        #[test]
        fn cell_of_inverts_index((curve, cells) in curve_and_cells()) {
            for cells in cells {
                let index = curve.index(&centre(&curve, &cells)).unwrap();
                prop_assert!(index <= curve.max_index());
                prop_assert_eq!(curve.cell_of(index), cells);
            }
        }

        #[test]
        fn decompose_box_never_misses(
            (curve, min, max, points) in curve_box_points(),
            max_intervals in 1usize..48,
        ) {
            let intervals = curve.decompose_box(&min, &max, max_intervals).unwrap();
            prop_assert!(!intervals.is_empty() && intervals.len() <= max_intervals);
            prop_assert!(intervals.iter().all(|&(lo, hi)| lo <= hi && hi <= curve.max_index()));
            // Sorted, disjoint and not touching (touching ones are merged).
            prop_assert!(intervals.windows(2).all(|pair| pair[0].1 + 1 < pair[1].0));
            for point in points {
                let index = curve.index(&point).unwrap();
                prop_assert!(contains(&intervals, index), "{:?} -> {} missed", point, index);
            }
        }

        /// With budget to spare, the intervals hold exactly the indices of the box's cells.
        #[test]
        fn decompose_box_is_exact_when_the_budget_allows(
            (curve, corners) in any_curve()
                .prop_filter("small grid", |curve| curve.dims() as u32 * curve.bits_per_dim() <= 12)
                .prop_flat_map(|curve| {
                    let top = ((1u64 << curve.bits_per_dim()) - 1) as u32;
                    let dims = curve.dims();
                    (Just(curve), proptest::collection::vec((0..=top, 0..=top), dims))
                }),
        ) {
            let lo: Vec<u32> = corners.iter().map(|&(a, b)| a.min(b)).collect();
            let hi: Vec<u32> = corners.iter().map(|&(a, b)| a.max(b)).collect();
            let intervals = curve
                .decompose_box(&centre(&curve, &lo), &centre(&curve, &hi), usize::MAX)
                .unwrap();
            for index in 0..=curve.max_index() {
                let cells = curve.cell_of(index);
                let inside = (0..curve.dims()).all(|i| lo[i] <= cells[i] && cells[i] <= hi[i]);
                prop_assert_eq!(contains(&intervals, index), inside, "index {}", index);
            }
        }

        #[test]
        fn any_input_gives_a_value_or_an_error(
            dims in 0usize..10,
            bits in 0u32..40,
            values in proptest::collection::vec(any::<f64>(), 40),
            max_intervals in 0usize..100,
        ) {
            let take = |from: usize| values[from..from + dims].to_vec();
            for kind in [CurveKind::Hilbert, CurveKind::ZOrder] {
                let _ = Curve::with_default_bits(kind, take(0), take(10));
                if let Ok(curve) = Curve::new(kind, take(0), take(10), bits) {
                    let _ = curve.index(&take(20));
                    let _ = curve.decompose_box(&take(20), &take(30), max_intervals);
                }
            }
        }
    }
}
