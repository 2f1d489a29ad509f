//! A fixed-point circuit compiled from an ONNX model: the layers a proof
//! covers, with integer weights, and the constraint system they write.
//!
//! Every value is an integer `v` standing for the real number
//! `v / (2^log2 * factor)` (its [`Scale`]). Linear layers (Gemm, MatMul,
//! Conv, AveragePool as a sum, Add of a constant, Flatten, Reshape) cost no
//! constraint: their weights are constants of the circuit, so each output
//! is a linear combination of the inputs. Relu and MaxPool cost one bit
//! decomposition per value or comparison. Nothing is rounded except the
//! weights and biases (once, here), the inputs (at [`Circuit::quantize_input`])
//! and the low bits a Relu drops to keep magnitudes small; the outputs are
//! exact integers, which the proof states as they are.

use serde::{Deserialize, Serialize};
use tract_onnx::pb;

use crate::ProofError;
use crate::r1cs::{Lc, R1cs, Wire, bit_length};

/// The circuit format this code writes and reads. 2: a decomposition's
/// lowest bit is a linear combination, not a variable, so a file gives
/// another constraint system (and other keys) than under 1, and version 1
/// files are refused rather than proved or checked under the wrong system.
pub const VERSION: u32 = 2;

/// Bits of fraction the inputs keep: `x` becomes `round(x * 2^12)`.
pub const INPUT_SHIFT: u32 = 12;

/// Inputs accepted by default: `|x| <= 256`. Larger inputs are refused,
/// not clipped.
pub const INPUT_RANGE: f64 = 256.0;

/// Choices made when compiling a model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Options {
    /// The largest input magnitude the circuit accepts ([`INPUT_RANGE`] by
    /// default). A tighter range gives smaller circuits and a tighter
    /// error bound: 1 for pixels in [0, 1].
    pub input_range: f64,
    /// Weights are rounded, per layer, to integers below 2^`weight_bits`
    /// ([`WEIGHT_BITS`] by default, [`MIN_WEIGHT_BITS`] at least).
    pub weight_bits: u32,
    /// After a Relu, values keep at most this many bits
    /// ([`ACTIVATION_BITS`] by default, [`MIN_ACTIVATION_BITS`] at least).
    pub activation_bits: u32,
}

impl Options {
    /// Whether a circuit can be compiled with these options; if not, what
    /// to give instead.
    fn check(&self) -> Result<(), String> {
        let range = self.input_range;
        if !(range.is_finite() && range > 0.0 && range <= 1048576.0) {
            return Err(format!(
                "input range {range}: give a positive range of at most 2^20"
            ));
        }
        if !(MIN_WEIGHT_BITS..=WEIGHT_BITS).contains(&self.weight_bits) {
            return Err(format!(
                "{} weight bits: give {MIN_WEIGHT_BITS} to {WEIGHT_BITS}",
                self.weight_bits
            ));
        }
        if !(MIN_ACTIVATION_BITS..=ACTIVATION_BITS).contains(&self.activation_bits) {
            return Err(format!(
                "{} activation bits: give {MIN_ACTIVATION_BITS} to {ACTIVATION_BITS}",
                self.activation_bits
            ));
        }
        Ok(())
    }
}

impl Default for Options {
    fn default() -> Options {
        Options {
            input_range: INPUT_RANGE,
            weight_bits: WEIGHT_BITS,
            activation_bits: ACTIVATION_BITS,
        }
    }
}

/// Weights are rounded to integers below 2^16 in magnitude by default:
/// constants of the circuit, their size costs only a few bits in each
/// decomposition after them (and the stated error bound, if fewer).
pub const WEIGHT_BITS: u32 = 16;

/// The fewest weight bits a circuit may keep.
pub const MIN_WEIGHT_BITS: u32 = 4;

/// After a Relu, values are shifted right until their bound has at most
/// this many bits, by default. Fewer make every decomposition after it
/// narrower, and the stated error bound wider.
pub const ACTIVATION_BITS: u32 = 24;

/// The fewest activation bits a circuit may keep.
pub const MIN_ACTIVATION_BITS: u32 = 8;

fn default_weight_bits() -> u32 {
    WEIGHT_BITS
}

fn default_activation_bits() -> u32 {
    ACTIVATION_BITS
}

/// The operators a circuit covers.
pub const SUPPORTED: [&str; 11] = [
    "Gemm",
    "MatMul",
    "Add",
    "Relu",
    "Conv",
    "MaxPool",
    "AveragePool",
    "Flatten",
    "Reshape",
    "Identity",
    "Dropout",
];

/// What an integer stands for: `v / (2^log2 * factor)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scale {
    /// The power of two.
    pub log2: i32,
    /// The product of the sizes of the average pools on the way.
    pub factor: u64,
}

impl Scale {
    /// The real number `v` stands for, as the nearest f64.
    pub fn real(&self, v: i128) -> f64 {
        v as f64 / self.factor as f64 / 2f64.powi(self.log2)
    }

    /// `x` at this scale, rounded to the nearest integer.
    fn quantize(&self, x: f64) -> i128 {
        (x * self.factor as f64 * 2f64.powi(self.log2)).round() as i128
    }
}

/// The geometry of a window over a `channels x height x width` tensor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Input channels.
    pub channels: usize,
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Strides.
    pub stride: [usize; 2],
    /// Zero padding: top, left, bottom, right.
    pub pads: [usize; 4],
}

impl Window {
    /// Output height and width.
    pub fn out(&self) -> [usize; 2] {
        let h = (self.height + self.pads[0] + self.pads[2] - self.kernel[0]) / self.stride[0] + 1;
        let w = (self.width + self.pads[1] + self.pads[3] - self.kernel[1]) / self.stride[1] + 1;
        [h, w]
    }

    /// For output position `(y, x)` of channel `c`: the input indices the
    /// window covers (padding left out) with the kernel offset of each.
    fn cells(&self, c: usize, y: usize, x: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        let [kh, kw] = self.kernel;
        (0..kh).flat_map(move |i| {
            (0..kw).filter_map(move |j| {
                let yy = (y * self.stride[0] + i).checked_sub(self.pads[0])?;
                let xx = (x * self.stride[1] + j).checked_sub(self.pads[1])?;
                (yy < self.height && xx < self.width)
                    .then_some(((c * self.height + yy) * self.width + xx, i * kw + j))
            })
        })
    }
}

/// One layer of a circuit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Layer {
    /// `y = W x + b`, `W` row-major `outputs x inputs`; the output scale
    /// is the input's times `2^shift`.
    Dense {
        /// Input length.
        inputs: usize,
        /// Output length.
        outputs: usize,
        /// The weights' power-of-two scale.
        shift: u32,
        /// Integer weights.
        weights: Vec<i64>,
        /// Integer biases at the output scale.
        #[serde(with = "crate::ints")]
        bias: Vec<i128>,
    },
    /// A 2-D convolution (one group, no dilation), weights
    /// `filters x channels x kh x kw`.
    Conv {
        /// The window.
        window: Window,
        /// Output channels.
        filters: usize,
        /// The weights' power-of-two scale.
        shift: u32,
        /// Integer weights.
        weights: Vec<i64>,
        /// Integer biases at the output scale, one per filter.
        #[serde(with = "crate::ints")]
        bias: Vec<i128>,
    },
    /// `y = x + b` for a constant `b` at the input's scale.
    Offset {
        /// One per element.
        #[serde(with = "crate::ints")]
        bias: Vec<i128>,
    },
    /// `y = max(x, 0) >> drop` (floor).
    Relu {
        /// Low bits dropped.
        drop: u32,
    },
    /// The maximum over each window (no padding).
    MaxPool(Window),
    /// The sum over each window (AveragePool; the scale takes the divisor).
    SumPool(Window),
}

impl Layer {
    /// The layer's kind, as `vouch model circuit` lists it: `dense`,
    /// `conv`, `add`, `relu`, `maxpool` or `avgpool`.
    pub fn kind(&self) -> &'static str {
        match self {
            Layer::Dense { .. } => "dense",
            Layer::Conv { .. } => "conv",
            Layer::Offset { .. } => "add",
            Layer::Relu { .. } => "relu",
            Layer::MaxPool(_) => "maxpool",
            Layer::SumPool(_) => "avgpool",
        }
    }

    /// The rows of a linear layer: per output, `(input index, coefficient
    /// index)` pairs and the output's bias index; `None` for the others.
    fn rows(&self) -> Option<Vec<Vec<(usize, usize)>>> {
        match self {
            Layer::Dense {
                inputs, outputs, ..
            } => Some(
                (0..*outputs)
                    .map(|o| (0..*inputs).map(|i| (i, o * inputs + i)).collect())
                    .collect(),
            ),
            Layer::Conv {
                window, filters, ..
            } => {
                let [oh, ow] = window.out();
                let per_filter = window.channels * window.kernel[0] * window.kernel[1];
                let mut rows = Vec::with_capacity(filters * oh * ow);
                for f in 0..*filters {
                    for y in 0..oh {
                        for x in 0..ow {
                            let mut row = Vec::new();
                            for c in 0..window.channels {
                                let base = f * per_filter + c * window.kernel[0] * window.kernel[1];
                                row.extend(window.cells(c, y, x).map(|(i, k)| (i, base + k)));
                            }
                            rows.push(row);
                        }
                    }
                }
                Some(rows)
            }
            Layer::SumPool(w) => Some(
                pool_rows(w)
                    .into_iter()
                    .map(|r| r.into_iter().map(|i| (i, 0)).collect())
                    .collect(),
            ),
            Layer::Offset { bias } => Some((0..bias.len()).map(|i| vec![(i, 0)]).collect()),
            Layer::Relu { .. } | Layer::MaxPool(_) => None,
        }
    }

    /// A linear layer's coefficient `k` and the bias of output `o`.
    fn coefficient(&self, k: usize) -> i128 {
        match self {
            Layer::Dense { weights, .. } | Layer::Conv { weights, .. } => weights[k] as i128,
            _ => 1,
        }
    }

    fn bias(&self, o: usize, per_filter: usize) -> i128 {
        match self {
            Layer::Dense { bias, .. } | Layer::Offset { bias } => bias[o],
            Layer::Conv { bias, .. } => bias[o / per_filter],
            _ => 0,
        }
    }

    /// Outputs per filter (Conv), for the bias of an output row.
    fn per_filter(&self) -> usize {
        match self {
            Layer::Conv { window, .. } => {
                let [h, w] = window.out();
                h * w
            }
            _ => 1,
        }
    }

    /// Output bounds from input bounds (`|value| <= bound`).
    pub fn bounds(&self, input: &[i128]) -> Vec<i128> {
        if let Some(rows) = self.rows() {
            let pf = self.per_filter();
            return rows
                .iter()
                .enumerate()
                .map(|(o, row)| {
                    row.iter()
                        .map(|&(i, k)| self.coefficient(k).abs() * input[i])
                        .sum::<i128>()
                        + self.bias(o, pf).abs()
                })
                .collect();
        }
        match self {
            Layer::Relu { drop } => input.iter().map(|b| b >> drop).collect(),
            Layer::MaxPool(w) => pool_rows(w)
                .iter()
                .map(|r| r.iter().map(|&i| input[i]).max().unwrap_or(0))
                .collect(),
            _ => unreachable!("linear layers have rows"),
        }
    }

    /// Writes this layer's constraints; returns its outputs.
    pub fn forward(&self, r: &mut R1cs, input: &[Wire], bounds: &[i128]) -> Vec<Wire> {
        if let Some(rows) = self.rows() {
            let pf = self.per_filter();
            return rows
                .iter()
                .enumerate()
                .map(|(o, row)| {
                    let b = self.bias(o, pf);
                    let mut lc = Lc::constant(b);
                    let mut value = b;
                    for &(i, k) in row {
                        let c = self.coefficient(k);
                        if !r.values_only {
                            lc.add_scaled(c, &input[i].lc);
                        }
                        value += c * input[i].value;
                    }
                    Wire {
                        lc: lc.merged(),
                        value,
                    }
                })
                .collect();
        }
        match self {
            Layer::Relu { drop } => input
                .iter()
                .zip(bounds)
                .map(|(w, &b)| r.relu(w, bit_length(b), *drop))
                .collect(),
            Layer::MaxPool(win) => pool_rows(win)
                .iter()
                .map(|row| {
                    let mut acc = input[row[0]].clone();
                    let mut bound = bounds[row[0]];
                    for &i in &row[1..] {
                        acc = r.max(&acc, &input[i], bit_length(bound + bounds[i]));
                        bound = bound.max(bounds[i]);
                    }
                    acc
                })
                .collect(),
            _ => unreachable!("linear layers have rows"),
        }
    }
}

/// The input indices of each window of a pool, channel-major.
fn pool_rows(w: &Window) -> Vec<Vec<usize>> {
    let [oh, ow] = w.out();
    let mut rows = Vec::with_capacity(w.channels * oh * ow);
    for c in 0..w.channels {
        for y in 0..oh {
            for x in 0..ow {
                rows.push(w.cells(c, y, x).map(|(i, _)| i).collect());
            }
        }
    }
    rows
}

/// A named tensor of the model and its shape (batch of 1 first).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    /// The tensor's name in the model.
    pub name: String,
    /// Its shape.
    pub shape: Vec<u64>,
}

/// A model as a circuit: what is proved, and how the integers relate to
/// the float model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Circuit {
    /// [`VERSION`].
    pub version: u32,
    /// The input: `x` enters as `round(x * 2^input_shift)`.
    pub input: Port,
    /// Bits of fraction the input keeps.
    pub input_shift: u32,
    /// The largest input magnitude accepted.
    pub input_range: f64,
    /// Bits of the integer weights ([`Options::weight_bits`]). Version 1
    /// files have none: read as the default, so that the version check
    /// refuses them by their version rather than a missing field.
    #[serde(default = "default_weight_bits")]
    pub weight_bits: u32,
    /// Bits activations keep ([`Options::activation_bits`]; as above).
    #[serde(default = "default_activation_bits")]
    pub activation_bits: u32,
    /// The output, an exact integer at `output_scale`.
    pub output: Port,
    /// What the output integers stand for.
    pub output_scale: Scale,
    /// The layers in order.
    pub layers: Vec<Layer>,
    /// A bound on `|circuit output - float model output|`, for every output
    /// and every input within `input_range`, in the output's units: the
    /// rounding of inputs, weights and biases and the bits Relus drop,
    /// carried through the layers in worst case (the float model's own
    /// float32 rounding left out).
    pub error_bound: f64,
}

impl Circuit {
    /// Compiles an ONNX model (its bytes) into a circuit with the default
    /// [`Options`].
    pub fn from_onnx(bytes: &[u8]) -> Result<Circuit, ProofError> {
        Circuit::compile(bytes, &Options::default())
    }

    /// Compiles an ONNX model (its bytes) into a circuit, or says which of
    /// its operators or attributes a circuit does not cover.
    pub fn compile(bytes: &[u8], options: &Options) -> Result<Circuit, ProofError> {
        options.check().map_err(ProofError::Input)?;
        let model = <pb::ModelProto as prost::Message>::decode(bytes)
            .map_err(|e| ProofError::Model(format!("not an ONNX model: {e}")))?;
        let graph = model
            .graph
            .ok_or_else(|| ProofError::Model("the ONNX model has no graph".into()))?;
        let missing: std::collections::BTreeSet<&str> = graph
            .node
            .iter()
            .map(|n| n.op_type.as_str())
            .filter(|op| !SUPPORTED.contains(op))
            .collect();
        if !missing.is_empty() {
            return Err(ProofError::Unsupported(format!(
                "the model uses operators a proof does not cover: {} (covered: {})",
                missing.into_iter().collect::<Vec<_>>().join(", "),
                SUPPORTED.join(", ")
            )));
        }
        Compiler::new(&graph, *options)?.run(&graph)
    }

    /// The options this circuit was compiled with: compiling its model
    /// with them again gives the same circuit.
    pub fn options(&self) -> Options {
        Options {
            input_range: self.input_range,
            weight_bits: self.weight_bits,
            activation_bits: self.activation_bits,
        }
    }

    /// The circuit's canonical bytes (JSON, as this code writes it).
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a circuit serializes")
    }

    /// Reads a circuit written by [`Circuit::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Circuit, ProofError> {
        let c: Circuit = serde_json::from_slice(bytes)
            .map_err(|e| ProofError::Model(format!("not a circuit: {e}")))?;
        if c.version != VERSION {
            return Err(ProofError::Model(format!(
                "circuit version {} (this code knows {VERSION}): compile the model again (push it with --provable, or `vouch model circuit`)",
                c.version
            )));
        }
        c.validate()?;
        Ok(c)
    }

    /// Checks that a circuit read from elsewhere is one this code could
    /// have written: every layer's sizes chain from the input to the
    /// output, every window fits, and no value can outgrow the integers
    /// (so running it cannot panic or wrap).
    fn validate(&self) -> Result<(), ProofError> {
        let bad = |what: String| ProofError::Model(format!("not a valid circuit: {what}"));
        let count = |shape: &[u64]| {
            shape
                .iter()
                .try_fold(1u64, |a, &d| a.checked_mul(d))
                .filter(|&n| n > 0 && n <= 1 << 24)
                .map(|n| n as usize)
        };
        let mut n = count(&self.input.shape).ok_or_else(|| bad("input shape".into()))?;
        if count(&self.output.shape).is_none()
            || self.input.shape.first() != Some(&1)
            || self.output.shape.first() != Some(&1)
            || self.input_shift > 30
            || self.options().check().is_err()
            || self.output_scale.factor == 0
        {
            return Err(bad("its input or output".into()));
        }
        let window = |w: &Window, n: usize| -> Result<[usize; 2], ProofError> {
            let cells = w
                .channels
                .checked_mul(w.height)
                .and_then(|v| v.checked_mul(w.width));
            let fits = w.kernel[0] >= 1
                && w.kernel[1] >= 1
                && w.stride[0] >= 1
                && w.stride[1] >= 1
                && w.pads.iter().all(|&p| p <= 64)
                && w.kernel[0] <= w.height + w.pads[0] + w.pads[2]
                && w.kernel[1] <= w.width + w.pads[1] + w.pads[3]
                && w.kernel[0] * w.kernel[1] <= 1 << 12;
            if cells != Some(n) || !fits {
                return Err(bad(format!("a window {w:?} over {n} values")));
            }
            Ok(w.out())
        };
        // One bound for all values, carried with checked arithmetic.
        let mut bound = (self.input_range * 2f64.powi(self.input_shift as i32)).ceil() as i128;
        let limit = 1i128 << 120;
        let linear = |rows: Vec<Vec<(usize, usize)>>, layer: &Layer, bound: i128| -> Option<i128> {
            let pf = layer.per_filter();
            rows.iter().enumerate().try_fold(0i128, |top, (o, row)| {
                let sum = row.iter().try_fold(0i128, |acc, &(_, k)| {
                    acc.checked_add(layer.coefficient(k).checked_abs()?)
                })?;
                let b = sum
                    .checked_mul(bound)?
                    .checked_add(layer.bias(o, pf).checked_abs()?)?;
                Some(top.max(b))
            })
        };
        for layer in &self.layers {
            let next = match layer {
                Layer::Dense {
                    inputs,
                    outputs,
                    weights,
                    bias,
                    ..
                } => {
                    if *inputs != n
                        || inputs.checked_mul(*outputs) != Some(weights.len())
                        || bias.len() != *outputs
                    {
                        return Err(bad(format!(
                            "a dense layer of {inputs}x{outputs} after {n} values"
                        )));
                    }
                    *outputs
                }
                Layer::Conv {
                    window: w,
                    filters,
                    weights,
                    bias,
                    ..
                } => {
                    let [oh, ow] = window(w, n)?;
                    let per = w.channels * w.kernel[0] * w.kernel[1];
                    if filters.checked_mul(per) != Some(weights.len()) || bias.len() != *filters {
                        return Err(bad(format!("a convolution's {} weights", weights.len())));
                    }
                    filters
                        .checked_mul(oh * ow)
                        .ok_or_else(|| bad("a convolution's size".into()))?
                }
                Layer::Offset { bias } => {
                    if bias.len() != n {
                        return Err(bad(format!("{} offsets for {n} values", bias.len())));
                    }
                    n
                }
                Layer::Relu { drop } => {
                    if *drop > 120 {
                        return Err(bad(format!("a Relu dropping {drop} bits")));
                    }
                    n
                }
                Layer::MaxPool(w) | Layer::SumPool(w) => {
                    let [oh, ow] = window(w, n)?;
                    w.channels * oh * ow
                }
            };
            if next == 0 || next > 1 << 24 {
                return Err(bad(format!("a layer of {next} values")));
            }
            bound = match layer.rows() {
                Some(rows) => linear(rows, layer, bound),
                None => Some(match layer {
                    Layer::Relu { drop } => bound >> drop,
                    _ => bound,
                }),
            }
            .filter(|&b| b < limit)
            .ok_or_else(|| bad("values that outgrow its integers".into()))?;
            n = next;
        }
        if n != self.output_len() {
            return Err(bad(format!(
                "{n} outputs for an output of shape {:?}",
                self.output.shape
            )));
        }
        Ok(())
    }

    /// Elements of the input.
    pub fn input_len(&self) -> usize {
        self.input.shape.iter().product::<u64>() as usize
    }

    /// Elements of the output.
    pub fn output_len(&self) -> usize {
        self.output.shape.iter().product::<u64>() as usize
    }

    /// The integer inputs for float inputs, or why they are refused.
    pub fn quantize_input(&self, x: &[f32]) -> Result<Vec<i128>, ProofError> {
        if x.len() != self.input_len() {
            return Err(ProofError::Input(format!(
                "`{}` needs {} values (shape {:?}), got {}",
                self.input.name,
                self.input_len(),
                self.input.shape,
                x.len()
            )));
        }
        let scale = Scale {
            log2: self.input_shift as i32,
            factor: 1,
        };
        x.iter()
            .enumerate()
            .map(|(i, &v)| {
                if !v.is_finite() || (v as f64).abs() > self.input_range {
                    Err(ProofError::Input(format!(
                        "`{}` element {i} is {v}: a proof covers finite inputs within ±{}",
                        self.input.name, self.input_range
                    )))
                } else {
                    Ok(scale.quantize(v as f64))
                }
            })
            .collect()
    }

    /// The bound on the integer inputs.
    fn input_bound(&self) -> i128 {
        (self.input_range * 2f64.powi(self.input_shift as i32)).ceil() as i128
    }

    /// Runs the circuit on integer inputs: the constraint system with its
    /// assignment, whose public outputs are the model's outputs.
    pub fn synthesize(&self, input: &[i128]) -> Result<R1cs, ProofError> {
        self.run(R1cs::default(), input)
    }

    /// How many constraints the circuit writes: what deriving its keys and
    /// proving cost.
    pub fn constraints(&self) -> Result<usize, ProofError> {
        Ok(self
            .synthesize(&vec![0; self.input_len()])?
            .constraints
            .len())
    }

    /// The integer outputs for integer inputs: what [`Circuit::synthesize`]
    /// states, without writing the constraints.
    pub fn evaluate(&self, input: &[i128]) -> Result<Vec<i128>, ProofError> {
        Ok(self.run(R1cs::evaluating(), input)?.outputs)
    }

    fn run(&self, mut r: R1cs, input: &[i128]) -> Result<R1cs, ProofError> {
        let bound = self.input_bound();
        if input.len() != self.input_len() || input.iter().any(|v| v.abs() > bound) {
            return Err(ProofError::Input(format!(
                "{} integer inputs within ±{bound} expected",
                self.input_len()
            )));
        }
        let mut wires: Vec<Wire> = input.iter().map(|&v| r.input(v)).collect();
        let mut bounds = vec![bound; wires.len()];
        for layer in &self.layers {
            wires = layer.forward(&mut r, &wires, &bounds);
            bounds = layer.bounds(&bounds);
        }
        for w in wires {
            r.output(w);
        }
        Ok(r)
    }

    /// The float outputs the integer outputs stand for.
    pub fn dequantize(&self, outputs: &[i128]) -> Vec<f32> {
        outputs
            .iter()
            .map(|&v| self.output_scale.real(v) as f32)
            .collect()
    }
}

/// A tensor while compiling: its shape (batch first), the bound on its
/// integers, the bound on the float model's values and on the error.
#[derive(Clone)]
struct Meta {
    shape: Vec<u64>,
    scale: Scale,
    bound: Vec<i128>,
    real: Vec<f64>,
    error: Vec<f64>,
}

struct Compiler {
    constants: std::collections::HashMap<String, (Vec<u64>, Vec<f64>)>,
    input: Port,
    options: Options,
}

fn attr<'a>(node: &'a pb::NodeProto, name: &str) -> Option<&'a pb::AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn attr_i(node: &pb::NodeProto, name: &str, default: i64) -> i64 {
    attr(node, name).map_or(default, |a| a.i)
}

fn attr_f(node: &pb::NodeProto, name: &str, default: f32) -> f32 {
    attr(node, name).map_or(default, |a| a.f)
}

fn attr_ints(node: &pb::NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(node, name).map(|a| a.ints.clone())
}

fn unsupported(node: &pb::NodeProto, what: impl std::fmt::Display) -> ProofError {
    ProofError::Unsupported(format!("{} `{}`: {what}", node.op_type, node.name))
}

/// A float tensor's values, from an initializer.
fn tensor_values(t: &pb::TensorProto) -> Result<Vec<f64>, ProofError> {
    use pb::tensor_proto::DataType;
    if t.data_location == Some(1) {
        return Err(ProofError::Model(format!(
            "initializer `{}` is stored outside the model file",
            t.name
        )));
    }
    let raw = &t.raw_data;
    let dt = DataType::try_from(t.data_type).unwrap_or(DataType::Undefined);
    Ok(match dt {
        DataType::Float if !raw.is_empty() => raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
            .collect(),
        DataType::Float => t.float_data.iter().map(|&v| v as f64).collect(),
        DataType::Int64 if !raw.is_empty() => raw
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap_or_default()) as f64)
            .collect(),
        DataType::Int64 => t.int64_data.iter().map(|&v| v as f64).collect(),
        other => {
            return Err(ProofError::Unsupported(format!(
                "initializer `{}` has element type {other:?}; a proof covers float32 weights",
                t.name
            )));
        }
    })
}

impl Compiler {
    fn new(graph: &pb::GraphProto, options: Options) -> Result<Compiler, ProofError> {
        let mut constants = std::collections::HashMap::new();
        for t in &graph.initializer {
            let dims = t.dims.iter().map(|&d| d.max(0) as u64).collect();
            constants.insert(t.name.clone(), (dims, tensor_values(t)?));
        }
        let inputs: Vec<&pb::ValueInfoProto> = graph
            .input
            .iter()
            .filter(|i| !constants.contains_key(&i.name))
            .collect();
        let [input] = inputs[..] else {
            return Err(ProofError::Unsupported(format!(
                "a proof covers models with one input; this one has {}",
                inputs.len()
            )));
        };
        let Some(pb::type_proto::Value::TensorType(tt)) =
            input.r#type.as_ref().and_then(|t| t.value.as_ref())
        else {
            return Err(ProofError::Unsupported(format!(
                "input `{}` is not a tensor",
                input.name
            )));
        };
        if tt.elem_type != pb::tensor_proto::DataType::Float as i32 {
            return Err(ProofError::Unsupported(format!(
                "input `{}` is not float32",
                input.name
            )));
        }
        let dims = tt.shape.as_ref().map(|s| s.dim.clone()).unwrap_or_default();
        let mut shape = Vec::new();
        for (i, d) in dims.iter().enumerate() {
            use pb::tensor_shape_proto::dimension::Value;
            shape.push(match &d.value {
                Some(Value::DimValue(n)) if *n > 0 => *n as u64,
                // A symbolic batch: proofs are of one input.
                _ if i == 0 => 1,
                _ => {
                    return Err(ProofError::Unsupported(format!(
                        "input `{}` has a symbolic dimension beyond the batch",
                        input.name
                    )));
                }
            });
        }
        if shape.first() != Some(&1) || shape.len() < 2 {
            return Err(ProofError::Unsupported(format!(
                "input `{}` must be a batch of one: shape {shape:?}",
                input.name
            )));
        }
        Ok(Compiler {
            constants,
            input: Port {
                name: input.name.clone(),
                shape,
            },
            options,
        })
    }

    fn constant(
        &self,
        node: &pb::NodeProto,
        name: &str,
    ) -> Result<&(Vec<u64>, Vec<f64>), ProofError> {
        self.constants.get(name).ok_or_else(|| {
            unsupported(
                node,
                format!("`{name}` must be a constant (an initializer)"),
            )
        })
    }

    fn run(self, graph: &pb::GraphProto) -> Result<Circuit, ProofError> {
        let n = self.input.shape.iter().product::<u64>() as usize;
        let input_scale = Scale {
            log2: INPUT_SHIFT as i32,
            factor: 1,
        };
        let range = self.options.input_range;
        let bound = (range * 2f64.powi(INPUT_SHIFT as i32)).ceil() as i128;
        let mut values = std::collections::HashMap::new();
        values.insert(
            self.input.name.clone(),
            Meta {
                shape: self.input.shape.clone(),
                scale: input_scale,
                bound: vec![bound; n],
                real: vec![range; n],
                error: vec![0.5 / 2f64.powi(INPUT_SHIFT as i32); n],
            },
        );
        let mut layers = Vec::new();
        for node in &graph.node {
            // The computed operand: the first input, but either of an Add's.
            let x = node
                .input
                .iter()
                .take(if node.op_type == "Add" { 2 } else { 1 })
                .find_map(|i| values.get(i))
                .cloned()
                .ok_or_else(|| {
                    unsupported(node, "its data input is not computed from the model input")
                })?;
            let (layer, out) = self.layer(node, x)?;
            if let Some((mut layer, float)) = layer {
                let mut out = out;
                self.finish(&mut layer, &mut out, float, node)?;
                layers.push(layer);
                values.insert(node.output[0].clone(), out);
            } else {
                values.insert(node.output[0].clone(), out);
            }
        }
        pool_before_relu(&mut layers);
        let [output] = &graph.output[..] else {
            return Err(ProofError::Unsupported(format!(
                "a proof covers models with one output; this one has {}",
                graph.output.len()
            )));
        };
        let out = values.get(&output.name).ok_or_else(|| {
            ProofError::Unsupported(format!(
                "output `{}` is not computed from the input",
                output.name
            ))
        })?;
        Ok(Circuit {
            version: VERSION,
            input: self.input.clone(),
            input_shift: INPUT_SHIFT,
            input_range: range,
            weight_bits: self.options.weight_bits,
            activation_bits: self.options.activation_bits,
            output: Port {
                name: output.name.clone(),
                shape: out.shape.clone(),
            },
            output_scale: out.scale,
            layers,
            error_bound: out.error.iter().cloned().fold(0.0, f64::max),
        })
    }

    /// The layer for `node` (with the float weights and biases of a linear
    /// one, for the error bound) and its output's shape and scale; no layer
    /// for a node that only renames or reshapes.
    #[allow(clippy::type_complexity)]
    fn layer(
        &self,
        node: &pb::NodeProto,
        x: Meta,
    ) -> Result<(Option<(Layer, Option<(Vec<f64>, Vec<f64>)>)>, Meta), ProofError> {
        let count = x.bound.len();
        let chw = |x: &Meta| -> Result<[usize; 3], ProofError> {
            match x.shape[..] {
                [1, c, h, w] => Ok([c as usize, h as usize, w as usize]),
                _ => Err(unsupported(
                    node,
                    format!("needs an input of shape [1, C, H, W], got {:?}", x.shape),
                )),
            }
        };
        let mut out = x.clone();
        let layer = match node.op_type.as_str() {
            "Identity" | "Dropout" => None,
            "Flatten" => {
                out.shape = vec![1, count as u64];
                None
            }
            "Reshape" => {
                let (_, target) = self.constant(node, &node.input[1])?;
                let known: u64 = target
                    .iter()
                    .filter(|&&d| d > 0.0)
                    .map(|&d| d as u64)
                    .product();
                let shape: Vec<u64> = target
                    .iter()
                    .enumerate()
                    .map(|(i, &d)| match d as i64 {
                        -1 => count as u64 / known.max(1),
                        0 => x.shape.get(i).copied().unwrap_or(1),
                        d => d as u64,
                    })
                    .collect();
                if shape.iter().product::<u64>() != count as u64 || shape.first() != Some(&1) {
                    return Err(unsupported(
                        node,
                        format!("reshapes {:?} to {target:?}", x.shape),
                    ));
                }
                out.shape = shape;
                None
            }
            "Relu" => Some((Layer::Relu { drop: 0 }, None)),
            "Gemm" | "MatMul" => {
                let gemm = node.op_type == "Gemm";
                if x.shape.len() != 2 {
                    return Err(unsupported(
                        node,
                        format!("needs an input of shape [1, K], got {:?}", x.shape),
                    ));
                }
                if gemm && attr_i(node, "transA", 0) != 0 {
                    return Err(unsupported(node, "transA is not covered"));
                }
                let (bdims, b) = self.constant(node, &node.input[1])?;
                let trans = gemm && attr_i(node, "transB", 0) != 0;
                let (k, n) = match bdims[..] {
                    [r, c] if trans => (c as usize, r as usize),
                    [r, c] => (r as usize, c as usize),
                    _ => return Err(unsupported(node, "needs a 2-D weight")),
                };
                if k != count {
                    return Err(unsupported(
                        node,
                        format!("weight of {k} rows for an input of {count}"),
                    ));
                }
                let alpha = if gemm {
                    attr_f(node, "alpha", 1.0) as f64
                } else {
                    1.0
                };
                let mut w = vec![0.0; n * k];
                for o in 0..n {
                    for i in 0..k {
                        w[o * k + i] = alpha * if trans { b[o * k + i] } else { b[i * n + o] };
                    }
                }
                let mut bias = vec![0.0; n];
                if gemm && node.input.len() > 2 && !node.input[2].is_empty() {
                    let (_, c) = self.constant(node, &node.input[2])?;
                    let beta = attr_f(node, "beta", 1.0) as f64;
                    for (o, v) in bias.iter_mut().enumerate() {
                        *v = beta
                            * match c.len() {
                                1 => c[0],
                                l if l == n => c[o],
                                _ => {
                                    return Err(unsupported(
                                        node,
                                        "its bias must have one value per output",
                                    ));
                                }
                            };
                    }
                }
                out.shape = vec![1, n as u64];
                Some((
                    Layer::Dense {
                        inputs: k,
                        outputs: n,
                        shift: 0,
                        weights: vec![],
                        bias: vec![],
                    },
                    Some((w, bias)),
                ))
            }
            "Add" => {
                let other = node
                    .input
                    .iter()
                    .find(|i| self.constants.contains_key(*i))
                    .ok_or_else(|| {
                        unsupported(
                            node,
                            "adds two computed tensors; a proof covers adding a constant",
                        )
                    })?;
                let (_, c) = &self.constants[other];
                let per = match c.len() {
                    1 => 1,
                    l if l == count => 1,
                    l if x.shape.len() == 4 && l as u64 == x.shape[1] => count / l,
                    _ => {
                        return Err(unsupported(
                            node,
                            "its constant does not broadcast over the input",
                        ));
                    }
                };
                let bias = (0..count)
                    .map(|i| if c.len() == 1 { c[0] } else { c[i / per] })
                    .collect();
                Some((Layer::Offset { bias: vec![] }, Some((vec![], bias))))
            }
            "Conv" | "MaxPool" | "AveragePool" => {
                let [c, h, w] = chw(&x)?;
                let conv = node.op_type == "Conv";
                let (wdims, weights) = if conv {
                    let (d, v) = self.constant(node, &node.input[1])?;
                    (d.clone(), v.clone())
                } else {
                    (vec![], vec![])
                };
                let kernel = match attr_ints(node, "kernel_shape") {
                    Some(k) if k.len() == 2 => [k[0] as usize, k[1] as usize],
                    None if conv && wdims.len() == 4 => [wdims[2] as usize, wdims[3] as usize],
                    _ => return Err(unsupported(node, "needs a 2-D kernel")),
                };
                let stride = match attr_ints(node, "strides") {
                    Some(s) if s.len() == 2 => [s[0] as usize, s[1] as usize],
                    None => [1, 1],
                    _ => return Err(unsupported(node, "needs 2-D strides")),
                };
                let pads = match attr_ints(node, "pads") {
                    Some(p) if p.len() == 4 => {
                        [p[0] as usize, p[1] as usize, p[2] as usize, p[3] as usize]
                    }
                    None => [0; 4],
                    _ => return Err(unsupported(node, "needs 4 pads")),
                };
                let auto = attr(node, "auto_pad")
                    .map(|a| a.s.clone())
                    .unwrap_or_default();
                if !auto.is_empty() && auto != b"NOTSET" {
                    return Err(unsupported(
                        node,
                        "auto_pad is not covered: write explicit pads",
                    ));
                }
                if attr_ints(node, "dilations").is_some_and(|d| d.iter().any(|&v| v != 1)) {
                    return Err(unsupported(node, "dilations are not covered"));
                }
                if attr_i(node, "ceil_mode", 0) != 0 {
                    return Err(unsupported(node, "ceil_mode is not covered"));
                }
                if kernel.contains(&0)
                    || stride.contains(&0)
                    || kernel[0] > h + pads[0] + pads[2]
                    || kernel[1] > w + pads[1] + pads[3]
                {
                    return Err(unsupported(node, "its kernel does not fit its input"));
                }
                let window = Window {
                    channels: c,
                    height: h,
                    width: w,
                    kernel,
                    stride,
                    pads,
                };
                let [oh, ow] = window.out();
                if conv {
                    if attr_i(node, "group", 1) != 1 {
                        return Err(unsupported(node, "grouped convolutions are not covered"));
                    }
                    let filters = wdims[0] as usize;
                    if wdims[1] as usize != c
                        || weights.len() != filters * c * kernel[0] * kernel[1]
                    {
                        return Err(unsupported(
                            node,
                            format!("weight {wdims:?} for {c} channels"),
                        ));
                    }
                    let mut bias = vec![0.0; filters * oh * ow];
                    if node.input.len() > 2 && !node.input[2].is_empty() {
                        let (_, b) = self.constant(node, &node.input[2])?;
                        if b.len() != filters {
                            return Err(unsupported(node, "needs one bias per filter"));
                        }
                        for (i, v) in bias.iter_mut().enumerate() {
                            *v = b[i / (oh * ow)];
                        }
                    }
                    out.shape = vec![1, filters as u64, oh as u64, ow as u64];
                    Some((
                        Layer::Conv {
                            window,
                            filters,
                            shift: 0,
                            weights: vec![],
                            bias: vec![],
                        },
                        Some((weights, bias)),
                    ))
                } else if pads != [0; 4] {
                    return Err(unsupported(node, "padded pools are not covered"));
                } else {
                    out.shape = vec![1, c as u64, oh as u64, ow as u64];
                    Some(if node.op_type == "MaxPool" {
                        (Layer::MaxPool(window), None)
                    } else {
                        (Layer::SumPool(window), None)
                    })
                }
            }
            other => {
                return Err(unsupported(
                    node,
                    format!("operator {other} is not covered"),
                ));
            }
        };
        Ok((layer, out))
    }

    /// Quantizes a layer's weights and biases, picks a Relu's shift, and
    /// carries the bounds, scale and error through it.
    fn finish(
        &self,
        layer: &mut Layer,
        out: &mut Meta,
        float: Option<(Vec<f64>, Vec<f64>)>,
        node: &pb::NodeProto,
    ) -> Result<(), ProofError> {
        let x = out.clone();
        let x_bound = x.bound.clone();
        match (layer, float) {
            (Layer::Relu { drop }, None) => {
                let top = x.bound.iter().cloned().max().unwrap_or(0);
                *drop = bit_length(top).saturating_sub(self.options.activation_bits);
                let l = Layer::Relu { drop: *drop };
                out.bound = l.bounds(&x_bound);
                out.scale.log2 -= *drop as i32;
                let step = 1.0 / out.scale.factor as f64 / 2f64.powi(out.scale.log2);
                out.error = x
                    .error
                    .iter()
                    .map(|e| e + if *drop > 0 { step } else { 0.0 })
                    .collect();
            }
            (l @ Layer::MaxPool(_), None) => {
                out.bound = l.bounds(&x_bound);
                let rows = match &*l {
                    Layer::MaxPool(w) => pool_rows(w),
                    _ => unreachable!(),
                };
                out.error = rows
                    .iter()
                    .map(|r| r.iter().map(|&i| x.error[i]).fold(0.0, f64::max))
                    .collect();
                out.real = rows
                    .iter()
                    .map(|r| r.iter().map(|&i| x.real[i]).fold(0.0, f64::max))
                    .collect();
            }
            (l @ Layer::SumPool(_), None) => {
                let Layer::SumPool(w) = &*l else {
                    unreachable!()
                };
                let k = (w.kernel[0] * w.kernel[1]) as u64;
                let rows = pool_rows(w);
                out.bound = l.bounds(&x_bound);
                out.scale.factor = out
                    .scale
                    .factor
                    .checked_mul(k)
                    .ok_or_else(|| unsupported(node, "too many average pools"))?;
                // The sum over k is exact; in real units, the average of
                // the errors (over the cells inside the input).
                out.error = rows
                    .iter()
                    .map(|r| r.iter().map(|&i| x.error[i]).sum::<f64>() / k as f64)
                    .collect();
                out.real = rows
                    .iter()
                    .map(|r| r.iter().map(|&i| x.real[i]).sum::<f64>() / k as f64)
                    .collect();
            }
            (layer, Some((wf, bf))) => {
                // Weights: the largest power-of-two scale keeping each
                // below 2^weight_bits (at most 2^30).
                let top = wf.iter().fold(0.0f64, |m, w| m.max(w.abs()));
                let mut shift = 30u32;
                while shift > 0
                    && top * 2f64.powi(shift as i32) >= 2f64.powi(self.options.weight_bits as i32)
                {
                    shift -= 1;
                }
                let wq: Vec<i64> = wf
                    .iter()
                    .map(|w| (w * 2f64.powi(shift as i32)).round() as i64)
                    .collect();
                let mut scale = x.scale;
                if !wf.is_empty() {
                    scale.log2 += shift as i32;
                }
                let bq: Vec<i128> = bf.iter().map(|&b| scale.quantize(b)).collect();
                match layer {
                    Layer::Dense {
                        shift: s,
                        weights,
                        bias,
                        ..
                    }
                    | Layer::Conv {
                        shift: s,
                        weights,
                        bias,
                        ..
                    } => {
                        *s = shift;
                        *weights = wq.clone();
                        *bias = match layer_kind_conv(weights.len(), bq.len(), &out.shape) {
                            Some(per) => bq.iter().step_by(per).cloned().collect(),
                            None => bq.clone(),
                        };
                    }
                    Layer::Offset { bias } => *bias = bq.clone(),
                    _ => unreachable!(),
                }
                let rows = layer.rows().expect("linear");
                let pf = layer.per_filter();
                out.bound = layer.bounds(&x_bound);
                out.scale = scale;
                let unit = 2f64.powi(shift as i32);
                let mut real = Vec::with_capacity(rows.len());
                let mut error = Vec::with_capacity(rows.len());
                for (o, row) in rows.iter().enumerate() {
                    let (mut r, mut e) =
                        (bf[o].abs(), (bf[o] - scale.real(layer.bias(o, pf))).abs());
                    for &(i, k) in row {
                        let (w, q) = if wf.is_empty() {
                            (1.0, 1.0)
                        } else {
                            (wf[k], wq[k] as f64 / unit)
                        };
                        r += w.abs() * x.real[i];
                        e += q.abs() * x.error[i] + (w - q).abs() * x.real[i];
                    }
                    real.push(r);
                    error.push(e);
                }
                out.real = real;
                out.error = error;
                if out.bound.iter().any(|b| bit_length(*b) > 120) {
                    return Err(unsupported(
                        node,
                        "its values outgrow the circuit's integers",
                    ));
                }
            }
            _ => unreachable!("a layer with the wrong parameters"),
        }
        Ok(())
    }
}

/// Moves each max pool that follows a Relu before it. Both are monotone
/// (`max(x, 0) >> drop` never decreases as `x` grows), so the maximum of
/// the Relus is the Relu of the maximum, integer for integer; and a pool
/// leaves a quarter of the values (2 × 2) to pay a Relu's bit
/// decomposition. The layers form a chain, so nothing else reads the
/// Relu's output.
fn pool_before_relu(layers: &mut [Layer]) {
    for i in 1..layers.len() {
        if matches!(layers[i - 1], Layer::Relu { .. }) && matches!(layers[i], Layer::MaxPool(_)) {
            layers.swap(i - 1, i);
        }
    }
}

/// For a Conv's per-output biases: the outputs per filter, to keep one bias
/// per filter; `None` for others.
fn layer_kind_conv(weights: usize, biases: usize, shape: &[u64]) -> Option<usize> {
    match shape {
        [1, f, h, w] if weights > 0 && biases as u64 == f * h * w => Some((h * w) as usize),
        _ => None,
    }
}
