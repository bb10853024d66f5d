//! LSTM kernel, forward and backward (through time) side by side. Examples are step-major
//! (`x[r][t][f]`); one product takes every step's input term (`X W_x`), then each step adds
//! its recurrent term (`h[t-1] W_h`, strided views, no copies) and applies the gates. The
//! gates, cell states and hidden states of the last forward pass are kept (capacity rows,
//! allocated once) for the backward pass.

use super::Kernel;
use super::gemm::{Op, View, gemm, gemm_view};
use super::recurrent::{input_side, last_step, output_grad, sigmoid, write_output};
use crate::nn::Real;

pub struct LstmKernel<F> {
    pub inputs: usize,
    pub units: usize,
    pub steps: usize,
    pub return_sequences: bool,
    pub threads: usize,
    /// Gate values after their activations, `[r][t][i f g o]`; reused as their gradients
    /// before activation in the backward pass.
    gates: Vec<F>,
    /// Cell states and hidden states, `[r][t][units]`.
    cells: Vec<F>,
    hidden: Vec<F>,
    /// Gradients flowing to the previous step: hidden and cell, `[r][units]`.
    dh: Vec<F>,
    /// Each example's steps this batch (empty: all of them): the last one's state is the
    /// output without `return_sequences`.
    lengths: Vec<u32>,
    dc: Vec<F>,
}

impl<F: Real> LstmKernel<F> {
    pub fn new(
        inputs: usize,
        units: usize,
        steps: usize,
        return_sequences: bool,
        capacity: usize,
        threads: usize,
    ) -> Self {
        let states = capacity * steps * units;
        LstmKernel {
            inputs,
            units,
            steps,
            return_sequences,
            threads,
            gates: vec![F::zero(); 4 * states],
            cells: vec![F::zero(); states],
            hidden: vec![F::zero(); states],
            dh: vec![F::zero(); capacity * units],
            lengths: Vec::with_capacity(capacity),
            dc: vec![F::zero(); capacity * units],
        }
    }
}

impl<F: Real> Kernel<F> for LstmKernel<F> {
    fn forward(&mut self, x: &[F], y: &mut [F], p: &[F], _r: &mut [F], rows: usize, _train: bool) {
        let (n, h, t_n) = (self.inputs, self.units, self.steps);
        let g4 = 4 * h;
        let (wx, rest) = p.split_at(n * g4);
        let (wh, b) = rest.split_at(h * g4);
        let gates = &mut self.gates[..rows * t_n * g4];
        for row in gates.chunks_exact_mut(g4) {
            row.copy_from_slice(b);
        }
        gemm(rows * t_n, g4, n, &x[..rows * t_n * n], Op::N, wx, Op::N, gates, true, self.threads);
        for t in 0..t_n {
            if t > 0 {
                // gates[r][t] += hidden[r][t-1] · W_h
                let a = View { data: &self.hidden[(t - 1) * h..], rs: t_n * h, cs: 1 };
                let w = View { data: wh, rs: g4, cs: 1 };
                gemm_view(rows, g4, h, a, w, &mut gates[t * g4..], t_n * g4, true, self.threads);
            }
            for r in 0..rows {
                let at = r * t_n + t;
                let z = &mut gates[at * g4..(at + 1) * g4];
                for j in 0..h {
                    let i = sigmoid(z[j]);
                    let f = sigmoid(z[h + j]);
                    let g = z[2 * h + j].tanh();
                    let o = sigmoid(z[3 * h + j]);
                    z[j] = i;
                    z[h + j] = f;
                    z[2 * h + j] = g;
                    z[3 * h + j] = o;
                    let prev = if t > 0 { self.cells[(at - 1) * h + j] } else { F::zero() };
                    let c = f * prev + i * g;
                    self.cells[at * h + j] = c;
                    self.hidden[at * h + j] = o * c.tanh();
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
        let g4 = 4 * h;
        let (wx, rest) = p.split_at(n * g4);
        let wh = &rest[..h * g4];
        let (gwx, grest) = g.split_at_mut(n * g4);
        let (gwh, gb) = grest.split_at_mut(h * g4);
        gwh.fill(F::zero());
        let (dh, dc) = (&mut self.dh[..rows * h], &mut self.dc[..rows * h]);
        dh.fill(F::zero());
        dc.fill(F::zero());
        let one = F::one();
        for t in (0..t_n).rev() {
            for r in 0..rows {
                let last = last_step(&self.lengths, r, t_n);
                let at = r * t_n + t;
                let z = &mut self.gates[at * g4..(at + 1) * g4];
                for j in 0..h {
                    let from_output = output_grad(dy, r, t, j, t_n, h, self.return_sequences, last);
                    let dhj = dh[r * h + j] + from_output;
                    let (i, f, gg, o) = (z[j], z[h + j], z[2 * h + j], z[3 * h + j]);
                    let c = self.cells[at * h + j];
                    let tc = c.tanh();
                    let dcj = dhj * o * (one - tc * tc) + dc[r * h + j];
                    let prev = if t > 0 { self.cells[(at - 1) * h + j] } else { F::zero() };
                    dc[r * h + j] = dcj * f;
                    // Gradients before the gates' activations, in place of the gates.
                    z[j] = dcj * gg * i * (one - i);
                    z[h + j] = dcj * prev * f * (one - f);
                    z[2 * h + j] = dcj * i * (one - gg * gg);
                    z[3 * h + j] = dhj * tc * o * (one - o);
                }
            }
            if t > 0 {
                // dh[t-1] = dz[t] · W_hᵀ; dW_h += h[t-1]ᵀ · dz[t]
                let dz = View { data: &self.gates[t * g4..], rs: t_n * g4, cs: 1 };
                let wht = View { data: wh, rs: 1, cs: g4 };
                gemm_view(rows, h, g4, dz, wht, dh, h, false, self.threads);
                let ht = View { data: &self.hidden[(t - 1) * h..], rs: 1, cs: t_n * h };
                gemm_view(h, g4, rows, ht, dz, gwh, g4, true, self.threads);
            }
        }
        input_side(x, &self.gates[..rows * t_n * g4], wx, gwx, gb, dx, rows * t_n, n, self.threads);
    }

    fn mask(&mut self, lengths: Option<&[u32]>) {
        super::keep_lengths(&mut self.lengths, lengths);
    }
}
