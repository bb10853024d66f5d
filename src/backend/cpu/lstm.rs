//! LSTM kernel, forward and backward (through time) side by side. Examples are step-major
//! (`x[r][t][f]`); one product takes every step's input term (`X W_x`), then each step adds
//! its recurrent term (`h[t-1] W_h`, strided views, no copies) and applies the gates. The
//! gates, cell states and hidden states of the last forward pass are kept (capacity rows,
//! allocated once) for the backward pass.

use super::Kernel;
use super::gemm::{Op, View, gemm, gemm_view};
use super::recurrent::{input_side, last_step, sigmoid_slice, step_threads, tanh_slice, write_output};
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
    /// The cell state before the first step: zeros, `[units]`.
    zeros: Vec<F>,
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
            zeros: vec![F::zero(); units],
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
                gemm_view(
                    rows,
                    g4,
                    h,
                    a,
                    w,
                    &mut gates[t * g4..],
                    t_n * g4,
                    true,
                    step_threads(rows, g4, h, self.threads),
                );
            }
            for r in 0..rows {
                let at = r * t_n + t;
                let z = &mut gates[at * g4..(at + 1) * g4];
                // The gates' activations, each over a run of `units` values (vectorised).
                sigmoid_slice(&mut z[..2 * h]);
                tanh_slice(&mut z[2 * h..3 * h]);
                sigmoid_slice(&mut z[3 * h..]);
                let (i, rest) = z.split_at(h);
                let (f, rest) = rest.split_at(h);
                let (g, o) = rest.split_at(h);
                let (before, now) = self.cells.split_at_mut(at * h);
                let c = &mut now[..h];
                if t > 0 {
                    let prev = &before[(at - 1) * h..];
                    for j in 0..h {
                        c[j] = f[j] * prev[j] + i[j] * g[j];
                    }
                } else {
                    for j in 0..h {
                        c[j] = i[j] * g[j];
                    }
                }
                let hid = &mut self.hidden[at * h..(at + 1) * h];
                for j in 0..h {
                    hid[j] = o[j] * c[j].tanh_fast();
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
        let (dh, dc) = (&mut self.dh[..rows * h], &mut self.dc[..rows * h]);
        dh.fill(F::zero());
        dc.fill(F::zero());
        let one = F::one();
        for t in (0..t_n).rev() {
            for r in 0..rows {
                let at = r * t_n + t;
                // dL/dh at this step: from the next step (dh) and from the output.
                let dhr = &mut dh[r * h..(r + 1) * h];
                let from_output = if self.return_sequences {
                    Some(&dy[at * h..(at + 1) * h])
                } else if t == last_step(&self.lengths, r, t_n) {
                    Some(&dy[r * h..(r + 1) * h])
                } else {
                    None
                };
                if let Some(g) = from_output {
                    dhr.iter_mut().zip(g).for_each(|(d, &g)| *d = *d + g);
                }
                let dcr = &mut dc[r * h..(r + 1) * h];
                let (before, now) = self.cells.split_at(at * h);
                let c = &now[..h];
                let prev = if t > 0 { &before[(at - 1) * h..] } else { &self.zeros[..] };
                // Gradients before the gates' activations, in place of the gates (one pass over
                // runs of `units` values: vectorised).
                let z = &mut self.gates[at * g4..(at + 1) * g4];
                let (zi, rest) = z.split_at_mut(h);
                let (zf, rest) = rest.split_at_mut(h);
                let (zg, zo) = rest.split_at_mut(h);
                for j in 0..h {
                    let (i, f, gg, o) = (zi[j], zf[j], zg[j], zo[j]);
                    let tc = c[j].tanh_fast();
                    let dhj = dhr[j];
                    let dcj = dhj * o * (one - tc * tc) + dcr[j];
                    dcr[j] = dcj * f;
                    zi[j] = dcj * gg * i * (one - i);
                    zf[j] = dcj * prev[j] * f * (one - f);
                    zg[j] = dcj * i * (one - gg * gg);
                    zo[j] = dhj * tc * o * (one - o);
                }
            }
            if t > 0 {
                // dh[t-1] = dz[t] · W_hᵀ
                let dz = View { data: &self.gates[t * g4..], rs: t_n * g4, cs: 1 };
                let wht = View { data: wh, rs: 1, cs: g4 };
                gemm_view(rows, h, g4, dz, wht, dh, h, false, step_threads(rows, g4, h, self.threads));
            }
        }
        // dW_h = Σ_t h[t-1]ᵀ · dz[t]: per example one product over its steps (K = T - 1), not
        // one per step (K = rows), which would rewrite all of dW_h T times.
        gwh.fill(F::zero());
        if t_n > 1 {
            for r in 0..rows {
                let ht = View { data: &self.hidden[r * t_n * h..], rs: 1, cs: h };
                let dz = View { data: &self.gates[(r * t_n + 1) * g4..], rs: g4, cs: 1 };
                gemm_view(h, g4, t_n - 1, ht, dz, gwh, g4, true, self.threads);
            }
        }
        input_side(x, &self.gates[..rows * t_n * g4], wx, gwx, gb, dx, rows * t_n, n, self.threads);
    }

    fn mask(&mut self, lengths: Option<&[u32]>) {
        super::keep_lengths(&mut self.lengths, lengths);
    }
}
