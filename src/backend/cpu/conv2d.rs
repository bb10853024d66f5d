//! 2-D convolution kernel: per example, im2col into a column buffer of (C·kh·kw) x (OH·OW)
//! that stays in cache, then one product with the weights ([F, C·kh·kw] row-major); a 1x1
//! stride-1 unpadded convolution reads the input directly. Backward: dW += dz · colsᵀ,
//! dcols = Wᵀ · dz, then col2im. With several threads the batch is split into one block of
//! examples per thread, each with its own column buffers and weight-gradient partial sums.

use rayon::prelude::*;

use super::Kernel;
use super::activation::{backward_in_place, forward_in_place};
use super::gemm::{Op, gemm};
use crate::nn::layers::Window;
use crate::nn::{Activation, Real};

#[derive(Clone, Copy)]
struct Geom {
    win: Window,
    c: usize,
    f: usize,
    act: Activation,
    /// Rows of the column buffer: C·kh·kw.
    ckk: usize,
    /// Output pixels per channel.
    ohw: usize,
    /// 1x1, stride 1, no padding: the input is its own column buffer.
    direct: bool,
}

struct Scratch<F> {
    cols: Vec<F>,
    dcols: Vec<F>,
    dw: Vec<F>,
    db: Vec<F>,
}

pub struct Conv2dKernel<F> {
    geom: Geom,
    threads: usize,
    scratch: Vec<Scratch<F>>,
}

impl<F: Real> Conv2dKernel<F> {
    pub fn new(win: Window, channels: usize, filters: usize, act: Activation, threads: usize) -> Self {
        let ckk = channels * win.kh * win.kw;
        let ohw = win.oh * win.ow;
        let direct = win.kh == 1 && win.kw == 1 && win.sh == 1 && win.sw == 1 && win.pt == 0 && win.pl == 0;
        let cols = if direct { 0 } else { ckk * ohw };
        let threads = threads.max(1);
        Conv2dKernel {
            geom: Geom { win, c: channels, f: filters, act, ckk, ohw, direct },
            threads,
            scratch: (0..threads)
                .map(|_| Scratch {
                    cols: vec![F::zero(); cols],
                    dcols: vec![F::zero(); cols],
                    dw: vec![F::zero(); filters * ckk],
                    db: vec![F::zero(); filters],
                })
                .collect(),
        }
    }

    /// Examples per block so that every thread gets one block.
    fn block(&self, rows: usize) -> usize {
        rows.div_ceil(self.threads).max(1)
    }
}

impl<F: Real> Kernel<F> for Conv2dKernel<F> {
    fn forward(&mut self, x: &[F], y: &mut [F], p: &[F], _r: &mut [F], rows: usize, _train: bool) {
        let g = self.geom;
        let (in_len, out_len) = (g.c * g.win.h * g.win.w, g.f * g.ohw);
        let (w, b) = p.split_at(g.f * g.ckk);
        let block = self.block(rows);
        let run = |xb: &[F], yb: &mut [F], s: &mut Scratch<F>| {
            for (xn, yn) in xb.chunks_exact(in_len).zip(yb.chunks_exact_mut(out_len)) {
                let cols: &[F] = if g.direct {
                    xn
                } else {
                    im2col(&g, xn, &mut s.cols);
                    &s.cols
                };
                gemm(g.f, g.ohw, g.ckk, w, Op::N, cols, Op::N, yn, false, 1);
                for (plane, &bias) in yn.chunks_exact_mut(g.ohw).zip(b) {
                    plane.iter_mut().for_each(|v| *v = *v + bias);
                }
                forward_in_place(g.act, yn, g.ohw);
            }
        };
        if self.threads == 1 || rows <= 1 {
            run(x, y, &mut self.scratch[0]);
        } else {
            y.par_chunks_mut(block * out_len)
                .zip(x.par_chunks(block * in_len))
                .zip(self.scratch.par_iter_mut())
                .for_each(|((yb, xb), s)| run(xb, yb, s));
        }
    }

    fn backward(
        &mut self,
        x: &[F],
        y: &[F],
        dy: &mut [F],
        dx: Option<&mut [F]>,
        p: &[F],
        grad: &mut [F],
        rows: usize,
    ) {
        let g = self.geom;
        let (in_len, out_len) = (g.c * g.win.h * g.win.w, g.f * g.ohw);
        let w = &p[..g.f * g.ckk];
        let block = self.block(rows);
        let blocks = rows.div_ceil(block);
        let run = |xb: &[F], yb: &[F], dyb: &mut [F], mut dxb: Option<&mut [F]>, s: &mut Scratch<F>| {
            s.dw.fill(F::zero());
            s.db.fill(F::zero());
            for (n, ((xn, yn), dzn)) in xb
                .chunks_exact(in_len)
                .zip(yb.chunks_exact(out_len))
                .zip(dyb.chunks_exact_mut(out_len))
                .enumerate()
            {
                backward_in_place(g.act, yn, dzn, g.ohw);
                for (sum, plane) in s.db.iter_mut().zip(dzn.chunks_exact(g.ohw)) {
                    *sum = *sum + plane.iter().copied().sum::<F>();
                }
                let cols: &[F] = if g.direct {
                    xn
                } else {
                    im2col(&g, xn, &mut s.cols);
                    &s.cols
                };
                gemm(g.f, g.ckk, g.ohw, dzn, Op::N, cols, Op::T, &mut s.dw, true, 1);
                if let Some(dxb) = dxb.as_deref_mut() {
                    let dxn = &mut dxb[n * in_len..(n + 1) * in_len];
                    if g.direct {
                        gemm(g.c, g.ohw, g.f, w, Op::T, dzn, Op::N, dxn, false, 1);
                    } else {
                        gemm(g.ckk, g.ohw, g.f, w, Op::T, dzn, Op::N, &mut s.dcols, false, 1);
                        col2im(&g, &s.dcols, dxn);
                    }
                }
            }
        };
        if self.threads == 1 || rows <= 1 {
            run(x, y, dy, dx, &mut self.scratch[0]);
        } else {
            match dx {
                Some(d) => dy
                    .par_chunks_mut(block * out_len)
                    .zip(y.par_chunks(block * out_len))
                    .zip(x.par_chunks(block * in_len))
                    .zip(d.par_chunks_mut(block * in_len))
                    .zip(self.scratch.par_iter_mut())
                    .for_each(|((((dyb, yb), xb), dxb), s)| run(xb, yb, dyb, Some(dxb), s)),
                None => dy
                    .par_chunks_mut(block * out_len)
                    .zip(y.par_chunks(block * out_len))
                    .zip(x.par_chunks(block * in_len))
                    .zip(self.scratch.par_iter_mut())
                    .for_each(|(((dyb, yb), xb), s)| run(xb, yb, dyb, None, s)),
            }
        }
        let (gw, gb) = grad.split_at_mut(g.f * g.ckk);
        gw.copy_from_slice(&self.scratch[0].dw);
        gb.copy_from_slice(&self.scratch[0].db);
        for s in self.scratch.iter().take(blocks).skip(1) {
            gw.iter_mut().zip(&s.dw).for_each(|(a, &b)| *a = *a + b);
            gb.iter_mut().zip(&s.db).for_each(|(a, &b)| *a = *a + b);
        }
    }
}

/// The output columns `[lo, hi)` whose input column `ox + kx - pl` lies inside the row (stride 1).
#[inline]
fn valid_span(win: &Window, kx: usize) -> (usize, usize) {
    let lo = win.pl.saturating_sub(kx).min(win.ow);
    let hi = (win.w + win.pl).saturating_sub(kx).min(win.ow).max(lo);
    (lo, hi)
}

/// One example's columns: row (ci, ky, kx), column (oy, ox) holds x[ci, oy·sh + ky - pt,
/// ox·sw + kx - pl], zero outside the input.
fn im2col<F: Real>(g: &Geom, x: &[F], cols: &mut [F]) {
    let win = &g.win;
    let (h, w, ow) = (win.h, win.w, win.ow);
    let mut rows = cols.chunks_exact_mut(g.ohw);
    for plane in x.chunks_exact(h * w) {
        for ky in 0..win.kh {
            for kx in 0..win.kw {
                let Some(out) = rows.next() else { return };
                let (lo, hi) = valid_span(win, kx);
                for (oy, o) in out.chunks_exact_mut(ow).enumerate() {
                    let Some(iy) = win.in_row(oy, ky) else {
                        o.fill(F::zero());
                        continue;
                    };
                    let src = &plane[iy * w..(iy + 1) * w];
                    if win.sw == 1 {
                        o[..lo].fill(F::zero());
                        o[hi..].fill(F::zero());
                        if hi > lo {
                            let start = lo + kx - win.pl;
                            o[lo..hi].copy_from_slice(&src[start..start + (hi - lo)]);
                        }
                    } else {
                        for (ox, v) in o.iter_mut().enumerate() {
                            *v = win.in_col(ox, kx).map(|ix| src[ix]).unwrap_or(F::zero());
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: sums column gradients back into the input's places.
fn col2im<F: Real>(g: &Geom, dcols: &[F], dx: &mut [F]) {
    let win = &g.win;
    let (h, w, ow) = (win.h, win.w, win.ow);
    dx.fill(F::zero());
    let mut rows = dcols.chunks_exact(g.ohw);
    for plane in dx.chunks_exact_mut(h * w) {
        for ky in 0..win.kh {
            for kx in 0..win.kw {
                let Some(src) = rows.next() else { return };
                let (lo, hi) = valid_span(win, kx);
                for (oy, s) in src.chunks_exact(ow).enumerate() {
                    let Some(iy) = win.in_row(oy, ky) else { continue };
                    let dst = &mut plane[iy * w..(iy + 1) * w];
                    if win.sw == 1 {
                        if hi > lo {
                            let start = lo + kx - win.pl;
                            dst[start..start + (hi - lo)]
                                .iter_mut()
                                .zip(&s[lo..hi])
                                .for_each(|(d, &v)| *d = *d + v);
                        }
                    } else {
                        for (ox, &v) in s.iter().enumerate() {
                            if let Some(ix) = win.in_col(ox, kx) {
                                dst[ix] = dst[ix] + v;
                            }
                        }
                    }
                }
            }
        }
    }
}
