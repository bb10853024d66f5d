//! Max pooling kernel: remembers where each window's maximum came from; backward routes the
//! gradient there.

use rayon::prelude::*;

use super::Kernel;
use crate::nn::Real;
use crate::nn::layers::Window;

pub struct MaxPoolKernel {
    pub win: Window,
    /// Per output value: the input position (within its channel plane) of the maximum.
    pub argmax: Vec<u32>,
    pub threads: usize,
}

/// The kernel offsets `[lo, hi)` of output `o` that land inside an input of `n` (window start
/// `o * stride - pad`).
#[inline(always)]
pub(super) fn span(o: usize, stride: usize, pad: usize, k: usize, n: usize) -> (usize, usize, usize) {
    let start = o * stride;
    let lo = pad.saturating_sub(start);
    let hi = (n + pad).saturating_sub(start).min(k);
    // First input index of offset `lo`.
    (lo, hi.max(lo), (start + lo).saturating_sub(pad))
}

impl MaxPoolKernel {
    fn tiled_2x2(&self) -> bool {
        let win = &self.win;
        (win.kh, win.kw, win.sh, win.sw, win.pt, win.pl) == (2, 2, 2, 2, 0, 0)
            && 2 * win.oh <= win.h
            && 2 * win.ow <= win.w
    }
}

impl<F: Real> Kernel<F> for MaxPoolKernel {
    fn forward(&mut self, x: &[F], y: &mut [F], _p: &[F], _r: &mut [F], rows: usize, _train: bool) {
        let win = self.win;
        let (plane_in, plane_out) = (win.h * win.w, win.oh * win.ow);
        let tiled = self.tiled_2x2();
        let run = |x: &[F], y: &mut [F], a: &mut [u32]| {
            for ((xp, yp), ap) in
                x.chunks_exact(plane_in).zip(y.chunks_exact_mut(plane_out)).zip(a.chunks_exact_mut(plane_out))
            {
                if tiled {
                    pool_2x2(xp, yp, ap, &win);
                } else {
                    pool_any(xp, yp, ap, &win);
                }
            }
        };
        let argmax = &mut self.argmax[..y.len()];
        let per_block = rows.div_ceil(self.threads.max(1)).max(1) * (y.len() / rows.max(1));
        if self.threads > 1 && rows > 1 {
            let planes_per_block = per_block / plane_out;
            x.par_chunks(planes_per_block * plane_in)
                .zip(y.par_chunks_mut(per_block))
                .zip(argmax.par_chunks_mut(per_block))
                .for_each(|((x, y), a)| run(x, y, a));
        } else {
            run(x, y, argmax);
        }
    }

    fn backward(
        &mut self,
        _x: &[F],
        _y: &[F],
        dy: &mut [F],
        dx: Option<&mut [F]>,
        _p: &[F],
        _g: &mut [F],
        rows: usize,
    ) {
        let Some(dx) = dx else { return };
        let win = self.win;
        let (plane_in, plane_out) = (win.h * win.w, win.oh * win.ow);
        let run = |dx: &mut [F], dy: &[F], a: &[u32]| {
            dx.fill(F::zero());
            for ((dxp, dyp), ap) in
                dx.chunks_exact_mut(plane_in).zip(dy.chunks_exact(plane_out)).zip(a.chunks_exact(plane_out))
            {
                for (&g, &at) in dyp.iter().zip(ap) {
                    dxp[at as usize] = dxp[at as usize] + g;
                }
            }
        };
        let argmax = &self.argmax[..dy.len()];
        if self.threads > 1 && rows > 1 {
            let block = rows.div_ceil(self.threads);
            let per_out = block * (dy.len() / rows);
            let per_in = block * (dx.len() / rows);
            dx.par_chunks_mut(per_in)
                .zip(dy.par_chunks(per_out))
                .zip(argmax.par_chunks(per_out))
                .for_each(|((dx, dy), a)| run(dx, dy, a));
        } else {
            run(dx, dy, argmax);
        }
    }
}

/// Any window: the offsets inside the plane, branch-free maxima.
fn pool_any<F: Real>(xp: &[F], yp: &mut [F], ap: &mut [u32], win: &Window) {
    for oy in 0..win.oh {
        let (ky0, ky1, iy0) = span(oy, win.sh, win.pt, win.kh, win.h);
        let (yrow, arow) = (&mut yp[oy * win.ow..(oy + 1) * win.ow], &mut ap[oy * win.ow..(oy + 1) * win.ow]);
        for (ox, (yv, av)) in yrow.iter_mut().zip(arow.iter_mut()).enumerate() {
            let (kx0, kx1, ix0) = span(ox, win.sw, win.pl, win.kw, win.w);
            let first = iy0 * win.w + ix0;
            let (mut best, mut at) = (xp[first], first);
            for r in 0..ky1 - ky0 {
                let row = (iy0 + r) * win.w + ix0;
                for (c, &v) in xp[row..row + (kx1 - kx0)].iter().enumerate() {
                    // Branch-free: which cell wins is data and would mispredict.
                    let better = v > best;
                    at = if better { row + c } else { at };
                    best = if better { v } else { best };
                }
            }
            *yv = best;
            *av = at as u32;
        }
    }
}

/// The common case: 2x2 windows side by side, all inside the plane. Two input rows at a time,
/// no bounds to test, branch-free maxima.
fn pool_2x2<F: Real>(xp: &[F], yp: &mut [F], ap: &mut [u32], win: &Window) {
    let w = win.w;
    for (oy, (yr, ar)) in yp.chunks_exact_mut(win.ow).zip(ap.chunks_exact_mut(win.ow)).enumerate() {
        let base = 2 * oy * w;
        let r0 = &xp[base..base + 2 * win.ow];
        let r1 = &xp[base + w..base + w + 2 * win.ow];
        for (ox, (((top, bottom), yv), av)) in
            r0.chunks_exact(2).zip(r1.chunks_exact(2)).zip(yr.iter_mut()).zip(ar.iter_mut()).enumerate()
        {
            let (m1, i1) = if top[1] > top[0] { (top[1], 1) } else { (top[0], 0) };
            let (m2, i2) = if bottom[1] > bottom[0] { (bottom[1], w + 1) } else { (bottom[0], w) };
            let (m, i) = if m2 > m1 { (m2, i2) } else { (m1, i1) };
            *yv = m;
            *av = (base + 2 * ox + i) as u32;
        }
    }
}
