//! GRU kernel, forward and backward (through time) side by side, laid out as the LSTM kernel:
//! one product for every step's input term, then per step the recurrent term (`h[t-1] W_h +
//! b_h`, kept for the reset gate's gradient) and the gates. Buffers for capacity rows are
//! allocated once.

use super::Kernel;
use super::gemm::{Op, View, gemm, gemm_view};
use super::recurrent::{input_side, last_step, output_grad, sigmoid, step_threads, write_output};
use crate::nn::Real;

pub struct GruKernel<F> {
    pub inputs: usize,
    pub units: usize,
    pub steps: usize,
    pub return_sequences: bool,
    pub threads: usize,
    /// Gates after their activations, `[r][t][r z n]`; in the backward pass, the gradients of
    /// the input terms.
    gates: Vec<F>,
    /// The recurrent term of the new gate before the reset gate, `[r][t][units]`.
    rec_n: Vec<F>,
    /// Hidden states, `[r][t][units]`.
    hidden: Vec<F>,
    /// One step's recurrent term (forward) or its gradient (backward), `[r][3 units]`.
    step: Vec<F>,
    /// The gradient flowing to the previous step's hidden state, `[r][units]`.
    dh: Vec<F>,
    /// Each example's steps this batch (empty: all of them): the last one's state is the
    /// output without `return_sequences`.
    lengths: Vec<u32>,
}

impl<F: Real> GruKernel<F> {
    pub fn new(
        inputs: usize,
        units: usize,
        steps: usize,
        return_sequences: bool,
        capacity: usize,
        threads: usize,
    ) -> Self {
        let states = capacity * steps * units;
        GruKernel {
            inputs,
            units,
            steps,
            return_sequences,
            threads,
            gates: vec![F::zero(); 3 * states],
            rec_n: vec![F::zero(); states],
            hidden: vec![F::zero(); states],
            step: vec![F::zero(); capacity * 3 * units],
            dh: vec![F::zero(); capacity * units],
            lengths: Vec::with_capacity(capacity),
        }
    }
}

impl<F: Real> Kernel<F> for GruKernel<F> {
    fn forward(&mut self, x: &[F], y: &mut [F], p: &[F], _r: &mut [F], rows: usize, _train: bool) {
        let (n, h, t_n) = (self.inputs, self.units, self.steps);
        let g3 = 3 * h;
        let (wx, rest) = p.split_at(n * g3);
        let (wh, rest) = rest.split_at(h * g3);
        let (bx, bh) = rest.split_at(g3);
        let gates = &mut self.gates[..rows * t_n * g3];
        for row in gates.chunks_exact_mut(g3) {
            row.copy_from_slice(bx);
        }
        gemm(rows * t_n, g3, n, &x[..rows * t_n * n], Op::N, wx, Op::N, gates, true, self.threads);
        let rec = &mut self.step[..rows * g3];
        for t in 0..t_n {
            for row in rec.chunks_exact_mut(g3) {
                row.copy_from_slice(&bh[..g3]);
            }
            if t > 0 {
                let a = View { data: &self.hidden[(t - 1) * h..], rs: t_n * h, cs: 1 };
                gemm_view(
                    rows,
                    g3,
                    h,
                    a,
                    View { data: wh, rs: g3, cs: 1 },
                    rec,
                    g3,
                    true,
                    step_threads(rows, g3, h, self.threads),
                );
            }
            for r in 0..rows {
                let at = r * t_n + t;
                let (z, gh) = (&mut gates[at * g3..(at + 1) * g3], &rec[r * g3..(r + 1) * g3]);
                for j in 0..h {
                    let reset = sigmoid(z[j] + gh[j]);
                    let update = sigmoid(z[h + j] + gh[h + j]);
                    let new = (z[2 * h + j] + reset * gh[2 * h + j]).tanh();
                    let prev = if t > 0 { self.hidden[(at - 1) * h + j] } else { F::zero() };
                    z[j] = reset;
                    z[h + j] = update;
                    z[2 * h + j] = new;
                    self.rec_n[at * h + j] = gh[2 * h + j];
                    self.hidden[at * h + j] = (F::one() - update) * new + update * prev;
                }
            }
        }
        write_output(&self.hidden, y, rows, t_n, h, self.return_sequences, &self.lengths);
    }

    fn backward(
        &mut self,
        x: &[F],
        _y: &[F],
        dy: &mut [F],
        dx: Option<&mut [F]>,
        p: &[F],
        g: &mut [F],
        rows: usize,
    ) {
        let (n, h, t_n) = (self.inputs, self.units, self.steps);
        let g3 = 3 * h;
        let (wx, rest) = p.split_at(n * g3);
        let wh = &rest[..h * g3];
        let (gwx, grest) = g.split_at_mut(n * g3);
        let (gwh, grest) = grest.split_at_mut(h * g3);
        let (gbx, gbh) = grest.split_at_mut(g3);
        gwh.fill(F::zero());
        gbh.fill(F::zero());
        let dh = &mut self.dh[..rows * h];
        dh.fill(F::zero());
        let drec = &mut self.step[..rows * g3];
        let one = F::one();
        for t in (0..t_n).rev() {
            for r in 0..rows {
                let last = last_step(&self.lengths, r, t_n);
                let at = r * t_n + t;
                let z = &mut self.gates[at * g3..(at + 1) * g3];
                let dr = &mut drec[r * g3..(r + 1) * g3];
                for j in 0..h {
                    let from_output = output_grad(dy, r, t, j, t_n, h, self.return_sequences, last);
                    let dhj = dh[r * h + j] + from_output;
                    let (reset, update, new) = (z[j], z[h + j], z[2 * h + j]);
                    let prev = if t > 0 { self.hidden[(at - 1) * h + j] } else { F::zero() };
                    let dn = dhj * (one - update) * (one - new * new);
                    let du = dhj * (prev - new) * update * (one - update);
                    let dres = dn * self.rec_n[at * h + j] * reset * (one - reset);
                    dh[r * h + j] = dhj * update;
                    // Input terms' gradients in place of the gates; the recurrent term's beside.
                    z[j] = dres;
                    z[h + j] = du;
                    z[2 * h + j] = dn;
                    dr[j] = dres;
                    dr[h + j] = du;
                    dr[2 * h + j] = dn * reset;
                }
            }
            super::reduce::add_rows(gbh, drec);
            if t > 0 {
                // dh[t-1] += drec · W_hᵀ; dW_h += h[t-1]ᵀ · drec
                let wht = View { data: wh, rs: 1, cs: g3 };
                gemm_view(
                    rows,
                    h,
                    g3,
                    View { data: drec, rs: g3, cs: 1 },
                    wht,
                    dh,
                    h,
                    true,
                    step_threads(rows, h, g3, self.threads),
                );
                let ht = View { data: &self.hidden[(t - 1) * h..], rs: 1, cs: t_n * h };
                gemm_view(h, g3, rows, ht, View { data: drec, rs: g3, cs: 1 }, gwh, g3, true, self.threads);
            }
        }
        input_side(x, &self.gates[..rows * t_n * g3], wx, gwx, gbx, dx, rows * t_n, n, self.threads);
    }

    fn mask(&mut self, lengths: Option<&[u32]>) {
        super::keep_lengths(&mut self.lengths, lengths);
    }
}
