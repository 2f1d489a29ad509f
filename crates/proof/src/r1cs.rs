//! Rank-1 constraint systems as this crate writes them, independent of any
//! proof system: `<A, z> * <B, z> = <C, z>` over a prime field, with every
//! coefficient and value an integer that the field holds exactly (the
//! circuit keeps all of them far below 2^126 in magnitude, and the field
//! has 254 bits, so no wrap-around can make a false statement true).

/// A variable: the constant one, a public input, a public output, or an
/// auxiliary (private) value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Var {
    /// The constant 1.
    One,
    /// Public input `i` (the quantized model input).
    In(u32),
    /// Public output `i` (the quantized model output).
    Out(u32),
    /// Auxiliary value `i`.
    Aux(u32),
}

/// A linear combination: the sum of `coefficient * variable`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lc(pub Vec<(Var, i128)>);

impl Lc {
    /// `k * v`.
    pub fn term(v: Var, k: i128) -> Lc {
        Lc(vec![(v, k)])
    }

    /// The constant `k`.
    pub fn constant(k: i128) -> Lc {
        if k == 0 {
            Lc::default()
        } else {
            Lc::term(Var::One, k)
        }
    }

    /// Adds `k * other` term by term (unmerged; see [`Lc::merged`]).
    pub fn add_scaled(&mut self, k: i128, other: &Lc) {
        if k != 0 {
            self.0.extend(other.0.iter().map(|&(v, c)| (v, c * k)));
        }
    }

    /// The same combination with each variable once and no zero terms.
    pub fn merged(mut self) -> Lc {
        if self.0.len() < 2 {
            self.0.retain(|t| t.1 != 0);
            return self;
        }
        self.0.sort_unstable_by_key(|t| t.0);
        let mut out: Vec<(Var, i128)> = Vec::with_capacity(self.0.len());
        for (v, k) in self.0 {
            match out.last_mut() {
                Some(last) if last.0 == v => last.1 += k,
                _ => out.push((v, k)),
            }
        }
        out.retain(|t| t.1 != 0);
        Lc(out)
    }
}

/// A value under construction: its linear combination and its integer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wire {
    /// How the value is written in the variables.
    pub lc: Lc,
    /// The value itself.
    pub value: i128,
}

impl Wire {
    /// A constant.
    pub fn constant(k: i128) -> Wire {
        Wire {
            lc: Lc::constant(k),
            value: k,
        }
    }
}

/// A constraint system with its satisfying assignment.
#[derive(Clone, Debug, Default)]
pub struct R1cs {
    /// Only the values: no constraint and no linear combination is kept
    /// ([`R1cs::evaluating`]).
    pub values_only: bool,
    /// Each `(A, B, C)`.
    pub constraints: Vec<[Lc; 3]>,
    /// Public inputs' values.
    pub inputs: Vec<i128>,
    /// Public outputs' values.
    pub outputs: Vec<i128>,
    /// Auxiliary values.
    pub aux: Vec<i128>,
}

impl R1cs {
    /// A system that computes the values alone, as the constraints would
    /// (the same code path, none of its bookkeeping).
    pub fn evaluating() -> R1cs {
        R1cs {
            values_only: true,
            ..R1cs::default()
        }
    }

    /// Adds public input `value`.
    pub fn input(&mut self, value: i128) -> Wire {
        self.inputs.push(value);
        Wire {
            lc: Lc::term(Var::In(len_u32(self.inputs.len() - 1)), 1),
            value,
        }
    }

    /// Adds an auxiliary variable.
    pub fn aux(&mut self, value: i128) -> Var {
        self.aux.push(value);
        Var::Aux(len_u32(self.aux.len() - 1))
    }

    /// Makes `w` public output number `self.outputs.len()`.
    pub fn output(&mut self, w: Wire) {
        self.outputs.push(w.value);
        let out = Var::Out(len_u32(self.outputs.len() - 1));
        self.enforce(w.lc, Lc::constant(1), Lc::term(out, 1));
    }

    /// `a * b = c`.
    pub fn enforce(&mut self, a: Lc, b: Lc, c: Lc) {
        if !self.values_only {
            self.constraints.push([a, b, c]);
        }
    }

    /// The bits `b_0..b_n` (n = `bits`) of `w + 2^bits`, for `|w| < 2^bits`,
    /// each constrained to 0 or 1, as linear combinations with their
    /// values. The top bit is 1 exactly when `w >= 0`.
    ///
    /// `b_1..b_n` are variables; `b_0` is what they leave of `w + 2^bits`
    /// (a linear combination), so that its being 0 or 1 is also what ties
    /// the bits to `w`: `n + 1` variables and constraints become `n`.
    pub fn decompose(&mut self, w: &Wire, bits: u32) -> Vec<(Lc, i128)> {
        let shifted = w.value + (1i128 << bits);
        assert!(
            (0..1i128 << (bits + 1)).contains(&shifted),
            "a value outside its bound: the circuit's bounds are wrong"
        );
        let mut out = Vec::with_capacity(bits as usize + 1);
        let mut low = Lc::default();
        if !self.values_only {
            low = w.lc.clone();
            low.0.push((Var::One, 1i128 << bits));
        }
        for i in 1..=bits {
            let bit = (shifted >> i) & 1;
            let b = self.aux(bit);
            // b * (1 - b) = 0
            self.enforce(
                Lc::term(b, 1),
                Lc(vec![(Var::One, 1), (b, -1)]),
                Lc::default(),
            );
            if !self.values_only {
                low.0.push((b, -(1i128 << i)));
            }
            out.push((Lc::term(b, 1), bit));
        }
        let low = low.merged();
        let mut one_minus = Lc::constant(1);
        one_minus.add_scaled(-1, &low);
        self.enforce(low.clone(), one_minus.merged(), Lc::default());
        out.insert(0, (low, shifted & 1));
        out
    }

    /// `relu(w) >> drop` (floor), for `|w| < 2^bits`: one bit
    /// decomposition, whose high bits are the shifted value.
    pub fn relu(&mut self, w: &Wire, bits: u32, drop: u32) -> Wire {
        if bits == 0 {
            return Wire::constant(0);
        }
        let b = self.decompose(w, bits);
        let (top, positive) = b[bits as usize].clone();
        let mut high = Lc::default();
        let mut high_value = 0i128;
        for (i, (lc, bit)) in b.iter().enumerate().take(bits as usize).skip(drop as usize) {
            high.add_scaled(1i128 << (i as u32 - drop), lc);
            high_value += bit << (i as u32 - drop);
        }
        let value = if positive == 1 { high_value } else { 0 };
        let a = self.aux(value);
        self.enforce(top, high.merged(), Lc::term(a, 1));
        Wire {
            lc: Lc::term(a, 1),
            value,
        }
    }

    /// `max(x, y)`, for `|x - y| < 2^bits`.
    pub fn max(&mut self, x: &Wire, y: &Wire, bits: u32) -> Wire {
        let mut d = x.lc.clone();
        d.add_scaled(-1, &y.lc);
        let d = Wire {
            lc: d.merged(),
            value: x.value - y.value,
        };
        let b = self.decompose(&d, bits);
        let (top, x_larger) = b[bits as usize].clone();
        let value = if x_larger == 1 { x.value } else { y.value };
        let m = self.aux(value);
        // top * (x - y) = m - y
        let mut c = Lc::term(m, 1);
        c.add_scaled(-1, &y.lc);
        self.enforce(top, d.lc, c.merged());
        Wire {
            lc: Lc::term(m, 1),
            value,
        }
    }

    /// The value of `lc` under the assignment.
    pub fn value(&self, lc: &Lc) -> i128 {
        lc.0.iter()
            .map(|&(v, k)| {
                k * match v {
                    Var::One => 1,
                    Var::In(i) => self.inputs[i as usize],
                    Var::Out(i) => self.outputs[i as usize],
                    Var::Aux(i) => self.aux[i as usize],
                }
            })
            .sum()
    }

    /// The first constraint the assignment breaks, if any.
    pub fn unsatisfied(&self) -> Option<usize> {
        self.constraints
            .iter()
            .position(|[a, b, c]| self.value(a) * self.value(b) != self.value(c))
    }

    /// Nonzero coefficients over all three matrices.
    pub fn nonzeros(&self) -> usize {
        self.constraints
            .iter()
            .map(|c| c.iter().map(|l| l.0.len()).sum::<usize>())
            .sum()
    }
}

/// The number of bits `b` with `x < 2^b`, for `x >= 0`.
pub fn bit_length(x: i128) -> u32 {
    128 - x.unsigned_abs().leading_zeros()
}

fn len_u32(n: usize) -> u32 {
    u32::try_from(n).expect("fewer than 2^32 variables")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(r: &mut R1cs, v: i128) -> Wire {
        let x = r.aux(v);
        Wire {
            lc: Lc::term(x, 1),
            value: v,
        }
    }

    #[test]
    fn relu_max_and_shift_are_constrained_and_exact() {
        for (h, drop, want) in [
            (37, 0, 37),
            (-37, 0, 0),
            (37, 2, 9),
            (0, 0, 0),
            (-1, 3, 0),
            (63, 3, 7),
        ] {
            let mut r = R1cs::default();
            let w = wire(&mut r, h);
            let a = r.relu(&w, 6, drop);
            assert_eq!(a.value, want, "relu({h}) >> {drop}");
            assert_eq!(r.value(&a.lc), want);
            assert_eq!(r.unsatisfied(), None);
            // Any other value for the output breaks a constraint.
            let Var::Aux(i) = a.lc.0[0].0 else { panic!() };
            r.aux[i as usize] += 1;
            assert!(
                r.unsatisfied().is_some(),
                "relu({h}) accepted a wrong output"
            );
        }
        for (x, y) in [(5, 9), (9, 5), (-4, -4), (-30, 12)] {
            let mut r = R1cs::default();
            let (a, b) = (wire(&mut r, x), wire(&mut r, y));
            let m = r.max(&a, &b, 7);
            assert_eq!(m.value, x.max(y));
            assert_eq!(r.unsatisfied(), None);
            let Var::Aux(i) = m.lc.0[0].0 else { panic!() };
            r.aux[i as usize] = x.min(y) - 1;
            assert!(r.unsatisfied().is_some());
        }
    }

    #[test]
    fn a_flipped_sign_bit_is_caught() {
        let mut r = R1cs::default();
        let w = wire(&mut r, -5);
        r.relu(&w, 4, 0);
        // Claim the value is positive: flip the top bit.
        // w is auxiliary 0, its bits 1 to 4 auxiliaries 1 to 4 (bit 0 is
        // what they leave of w + 16); the sign is the last.
        assert_eq!(r.aux[4], 0);
        r.aux[4] = 1;
        assert!(r.unsatisfied().is_some());
    }

    #[test]
    fn any_other_bit_or_output_is_caught() {
        for (h, drop) in [(-5, 0), (37, 2), (0, 0), (63, 3), (-64 + 1, 1)] {
            let mut r = R1cs::default();
            let w = wire(&mut r, h);
            r.relu(&w, 6, drop);
            assert_eq!(r.unsatisfied(), None);
            // Every auxiliary after w (the bits, the output), changed.
            for i in 1..r.aux.len() {
                for delta in [1, -1] {
                    let mut bad = r.clone();
                    bad.aux[i] += delta;
                    assert!(
                        bad.unsatisfied().is_some(),
                        "relu({h}) >> {drop}: auxiliary {i} {delta:+}"
                    );
                }
            }
        }
        let mut r = R1cs::default();
        let (x, y) = (wire(&mut r, -30), wire(&mut r, 12));
        r.max(&x, &y, 7);
        assert_eq!(r.unsatisfied(), None);
        for i in 2..r.aux.len() {
            let mut bad = r.clone();
            bad.aux[i] += 1;
            assert!(bad.unsatisfied().is_some(), "max: auxiliary {i}");
        }
    }
}
