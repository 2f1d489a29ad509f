//! Spike: one R1CS (ours) for a quantized MLP 784x56x10, proved by
//! arkworks Groth16 (BN254) and by Nova's Spartan (IPA over Pallas, transparent).
use std::time::Instant;

#[derive(Clone, Copy, Debug)]
pub enum Var { One, Public(usize), Private(usize) }
#[derive(Clone, Debug, Default)]
pub struct Lc(pub Vec<(i128, Var)>);
#[derive(Clone, Debug, Default)]
pub struct R1cs { pub public: usize, pub private: usize, pub constraints: Vec<[Lc; 3]> }
#[derive(Clone, Debug, Default)]
pub struct Witness { pub public: Vec<i128>, pub private: Vec<i128> }

struct Builder { r: R1cs, w: Witness }
impl Builder {
    fn public(&mut self, v: i128) -> Var { self.r.public += 1; self.w.public.push(v); Var::Public(self.r.public - 1) }
    fn private(&mut self, v: i128) -> Var { self.r.private += 1; self.w.private.push(v); Var::Private(self.r.private - 1) }
    fn enforce(&mut self, a: Lc, b: Lc, c: Lc) { self.r.constraints.push([a, b, c]); }
    fn value(&self, lc: &Lc) -> i128 { lc.0.iter().map(|(k, v)| k * match v { Var::One => 1, Var::Public(i) => self.w.public[*i], Var::Private(i) => self.w.private[*i] }).sum() }
    /// relu(h) with h in [-2^bits, 2^bits)
    fn relu(&mut self, h: Lc, bits: u32) -> Var {
        let hv = self.value(&h);
        let shifted = hv + (1i128 << bits);
        assert!(shifted >= 0 && shifted < (1i128 << (bits + 1)));
        let mut sum = Lc::default();
        let mut top = Var::One;
        for i in 0..=bits {
            let b = self.private((shifted >> i) & 1);
            self.enforce(Lc(vec![(1, b)]), Lc(vec![(1, Var::One), (-1, b)]), Lc::default());
            sum.0.push((1i128 << i, b));
            top = b;
        }
        let mut rhs = h.clone(); rhs.0.push((1i128 << bits, Var::One));
        self.enforce(sum, Lc(vec![(1, Var::One)]), rhs);
        let a = self.private(if hv >= 0 { hv } else { 0 });
        self.enforce(Lc(vec![(1, top)]), h, Lc(vec![(1, a)]));
        a
    }
}

fn mlp(w1: &[Vec<i64>], b1: &[i64], w2: &[Vec<i64>], b2: &[i64], x: &[i64]) -> (R1cs, Witness, Vec<i128>) {
    let mut b = Builder { r: R1cs::default(), w: Witness::default() };
    let xs: Vec<Var> = x.iter().map(|&v| b.public(v as i128)).collect();
    let mut hidden = vec![];
    for (row, &bias) in w1.iter().zip(b1) {
        let mut lc = Lc(row.iter().zip(&xs).filter(|(w, _)| **w != 0).map(|(&w, &v)| (w as i128, v)).collect());
        lc.0.push((bias as i128, Var::One));
        let bound: i128 = row.iter().map(|w| (w.unsigned_abs() as i128) * 255).sum::<i128>() + bias.unsigned_abs() as i128;
        let bits = 128 - bound.leading_zeros();
        hidden.push(b.relu(lc, bits));
    }
    let mut ys = vec![];
    for (row, &bias) in w2.iter().zip(b2) {
        let mut lc = Lc(row.iter().zip(&hidden).map(|(&w, &v)| (w as i128, v)).collect());
        lc.0.push((bias as i128, Var::One));
        let y = b.value(&lc);
        let yv = b.public(y);
        b.enforce(lc, Lc(vec![(1, Var::One)]), Lc(vec![(1, yv)]));
        ys.push(y);
    }
    (b.r, b.w, ys)
}

mod ark {
    use super::*;
    use ark_ff::PrimeField;
    use ark_relations::r1cs::{ConstraintSynthesizer, ConstraintSystemRef, LinearCombination, SynthesisError, Variable};
    #[derive(Clone)]
    pub struct C<'a> { pub r: &'a R1cs, pub w: Option<&'a Witness> }
    pub fn fe<F: PrimeField>(v: i128) -> F { if v >= 0 { F::from(v as u128) } else { -F::from((-v) as u128) } }
    impl<'a, F: PrimeField> ConstraintSynthesizer<F> for C<'a> {
        fn generate_constraints(self, cs: ConstraintSystemRef<F>) -> Result<(), SynthesisError> {
            let p: Vec<Variable> = (0..self.r.public).map(|i| cs.new_input_variable(|| Ok(fe(self.w.ok_or(SynthesisError::AssignmentMissing)?.public[i])))).collect::<Result<_, _>>()?;
            let q: Vec<Variable> = (0..self.r.private).map(|i| cs.new_witness_variable(|| Ok(fe(self.w.ok_or(SynthesisError::AssignmentMissing)?.private[i])))).collect::<Result<_, _>>()?;
            let conv = |l: &Lc| LinearCombination(l.0.iter().map(|(k, v)| (fe::<F>(*k), match v { Var::One => Variable::One, Var::Public(i) => p[*i], Var::Private(i) => q[*i] })).collect());
            for [a, b, c] in &self.r.constraints { cs.enforce_constraint(conv(a), conv(b), conv(c))?; }
            Ok(())
        }
    }
}

mod nova {
    use super::*;
    use ff::PrimeField;
    use nova_snark::frontend::{num::AllocatedNum, ConstraintSystem, LinearCombination, SynthesisError, Variable};
    use nova_snark::traits::circuit::StepCircuit;
    #[derive(Clone)]
    pub struct C { pub r: R1cs, pub w: Option<Witness>, pub n_in: usize }
    pub fn fe<F: PrimeField>(v: i128) -> F { if v >= 0 { F::from_u128(v as u128) } else { -F::from_u128((-v) as u128) } }
    impl<F: PrimeField> StepCircuit<F> for C {
        fn arity(&self) -> usize { self.n_in }
        fn synthesize<CS: ConstraintSystem<F>>(&self, cs: &mut CS, z: &[AllocatedNum<F>]) -> Result<Vec<AllocatedNum<F>>, SynthesisError> {
            let n_out = self.r.public - self.n_in;
            let outs: Vec<AllocatedNum<F>> = (0..self.n_in).map(|i| AllocatedNum::alloc(cs.namespace(|| format!("o{i}")), || Ok(if i < n_out { fe(self.w.as_ref().map(|w| w.public[self.n_in + i]).unwrap_or(0)) } else { F::ZERO }))).collect::<Result<_, _>>()?;
            for o in &outs[n_out..] { cs.enforce(|| "zero", |lc| lc + o.get_variable(), |lc| lc + CS::one(), |lc| lc); }
            let mut pubs: Vec<Variable> = z.iter().map(|a| a.get_variable()).collect();
            pubs.extend(outs[..n_out].iter().map(|a| a.get_variable()));
            let q: Vec<Variable> = (0..self.r.private).map(|i| cs.alloc(|| format!("w{i}"), || Ok(fe(self.w.as_ref().map(|w| w.private[i]).unwrap_or(0))))).collect::<Result<_, _>>()?;
            let conv = |l: &Lc| { let mut lc = LinearCombination::zero(); for (k, v) in &l.0 { lc = lc.add_unsimplified((fe::<F>(*k), match v { Var::One => CS::one(), Var::Public(i) => pubs[*i], Var::Private(i) => q[*i] })); } lc };
            for (n, [a, b, c]) in self.r.constraints.iter().enumerate() { let (a, b, c) = (conv(a), conv(b), conv(c)); cs.enforce(|| format!("c{n}"), |_| a, |_| b, |_| c); }
            Ok(outs)
        }
    }
}

fn main() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let (n_in, n_h, n_out) = (784, 56, 10);
    let w1: Vec<Vec<i64>> = (0..n_h).map(|_| (0..n_in).map(|_| rng.gen_range(-2048..2048)).collect()).collect();
    let b1: Vec<i64> = (0..n_h).map(|_| rng.gen_range(-100000..100000)).collect();
    let w2: Vec<Vec<i64>> = (0..n_out).map(|_| (0..n_h).map(|_| rng.gen_range(-2048..2048)).collect()).collect();
    let b2: Vec<i64> = (0..n_out).map(|_| rng.gen_range(-100000..100000)).collect();
    let x: Vec<i64> = (0..n_in).map(|_| rng.gen_range(0..256)).collect();
    let t = Instant::now();
    let (r, w, ys) = mlp(&w1, &b1, &w2, &b2, &x);
    let nnz: usize = r.constraints.iter().map(|c| c[0].0.len() + c[1].0.len() + c[2].0.len()).sum();
    println!("r1cs: {} constraints, {} public, {} private, {} nonzeros, built in {:?}", r.constraints.len(), r.public, r.private, nnz, t.elapsed());
    let which = std::env::args().nth(1).unwrap_or_default();
    if which.is_empty() || which == "groth16" {
        use ark_bn254::{Bn254, Fr};
        use ark_groth16::Groth16;
        use ark_snark::SNARK;
        use ark_serialize::CanonicalSerialize;
        let c = ark::C { r: &r, w: None };
        let t = Instant::now();
        let (pk, vk) = Groth16::<Bn254>::circuit_specific_setup(c, &mut rng).unwrap();
        println!("groth16 setup {:?}", t.elapsed());
        let t = Instant::now();
        let proof = Groth16::<Bn254>::prove(&pk, ark::C { r: &r, w: Some(&w) }, &mut rng).unwrap();
        println!("groth16 prove {:?}", t.elapsed());
        let public: Vec<Fr> = w.public.iter().map(|v| ark::fe(*v)).collect();
        let t = Instant::now();
        let pvk = Groth16::<Bn254>::process_vk(&vk).unwrap();
        let ok = Groth16::<Bn254>::verify_with_processed_vk(&pvk, &public, &proof).unwrap();
        println!("groth16 verify {ok} {:?}, proof {} B, vk {} B", t.elapsed(), proof.compressed_size(), vk.compressed_size());
        let mut bad = public.clone(); bad[n_in] += Fr::from(1u64);
        assert!(!Groth16::<Bn254>::verify_with_processed_vk(&pvk, &bad, &proof).unwrap());
    }
    if which.is_empty() || which == "nova" || which == "novapp" {
        use nova_snark::provider::PallasEngine as E;
        use nova_snark::provider::ipa_pc::EvaluationEngine;
        use nova_snark::spartan::direct::DirectSNARK;
        use nova_snark::traits::Engine;
        type F = <E as Engine>::Scalar;
        fn run<S: nova_snark::traits::snark::RelaxedR1CSSNARKTrait<E>>(name: &str, c: nova::C, w: &Witness, n_in: usize) {
            let t = Instant::now();
            let (pk, vk) = DirectSNARK::<E, S, nova::C>::setup(c.clone()).unwrap();
            println!("{name} setup {:?}, vk {} B", t.elapsed(), bincode::serialize(&vk).unwrap().len());
            let z: Vec<F> = w.public[..n_in].iter().map(|v| nova::fe(*v)).collect();
            let t = Instant::now();
            let proof = DirectSNARK::<E, S, nova::C>::prove(&pk, nova::C { w: Some(w.clone()), ..c }, &z).unwrap();
            println!("{name} prove {:?}", t.elapsed());
            let mut io = z.clone();
            io.extend(w.public[n_in..].iter().map(|v| nova::fe::<F>(*v)));
            io.resize(2 * n_in, F::from(0u64));
            let t = Instant::now();
            let ok = proof.verify(&vk, &io).is_ok();
            println!("{name} verify {ok} {:?}, proof {} B", t.elapsed(), bincode::serialize(&proof).unwrap().len());
            io[n_in] += F::from(1u64);
            assert!(proof.verify(&vk, &io).is_err());
        }
        let c = nova::C { r: r.clone(), w: None, n_in };
        if which != "novapp" { run::<nova_snark::spartan::snark::RelaxedR1CSSNARK<E, EvaluationEngine<E>>>("spartan-ipa", c.clone(), &w, n_in); }
        run::<nova_snark::spartan::ppsnark::RelaxedR1CSSNARK<E, EvaluationEngine<E>>>("spartan-pp-ipa", c, &w, n_in);
    }
    let _ = ys;
}
