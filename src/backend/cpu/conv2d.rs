//! 2-D convolution kernel: per example, im2col into a column buffer of (C·kh·kw) x (OH·OW),
//! then a product with the weights ([F, C·kh·kw] row-major), a band of output rows at a time
//! (bands bound the column buffer on large images); a 1x1 stride-1 unpadded
//! convolution reads the input directly. Backward: dWᵀ += cols · dzᵀ, band by band; the input's
//! gradient of a stride-1 convolution is itself a convolution (of dz, with the kernel flipped
//! and its input and output channels swapped, padded by k - 1 - p), so it runs as the forward
//! pass does: im2col of dz, one product with K = F·kh·kw per band; other strides take
//! dcols = Wᵀ · dz (K = F only) and col2im. With several threads the batch is split into one
//! block of examples per thread, each with its own column buffers and weight-gradient partial
//! sums.

use rayon::prelude::*;

use super::Kernel;
use super::activation::{backward_in_place, forward_in_place};
use super::gemm::{Op, View, gemm, gemm_view};
use crate::nn::layers::Window;
use crate::nn::{Activation, Real};

/// Values of one band of columns (1 MiB of f32): a band is as many output rows as fit, so the
/// column buffer stays bounded on large images (a 224x224 RGB 3x3 convolution would need 5.4 MB
/// per thread for the whole plane). Smaller bands were measured slower on resnet20 (64 KB:
/// 10% slower steps): the products lose more than the cache gains. Unit tests use bands of a
/// few values, so that the gradient checks run every band boundary.
const BAND_VALUES: usize = if cfg!(test) { 24 } else { 256 * 1024 };

/// Output rows per band when one output row takes `per_row` column values.
fn band_rows(per_row: usize, rows: usize) -> usize {
    (BAND_VALUES / per_row.max(1)).clamp(1, rows.max(1))
}

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
    /// Output rows per band of columns.
    band: usize,
    /// 1x1, stride 1, no padding: the input is its own column buffer.
    direct: bool,
    /// Stride 1 (and not direct): the window of the flipped convolution that gives the
    /// input's gradient from dz (dz's size in, the input's size out), and its rows per band.
    back: Option<(Window, usize)>,
}

struct Scratch<F> {
    cols: Vec<F>,
    dcols: Vec<F>,
    /// The weight gradient transposed, [C·kh·kw, F].
    dw: Vec<F>,
    db: Vec<F>,
}

pub struct Conv2dKernel<F> {
    geom: Geom,
    threads: usize,
    scratch: Vec<Scratch<F>>,
    /// The flipped weights of `Geom::back`: [C, F·kh·kw], rebuilt at every backward pass.
    flipped: Vec<F>,
}

impl<F: Real> Conv2dKernel<F> {
    pub fn new(win: Window, channels: usize, filters: usize, act: Activation, threads: usize) -> Self {
        let ckk = channels * win.kh * win.kw;
        let ohw = win.oh * win.ow;
        let direct = win.kh == 1 && win.kw == 1 && win.sh == 1 && win.sw == 1 && win.pt == 0 && win.pl == 0;
        let band = band_rows(ckk * win.ow, win.oh);
        let cols = if direct { 0 } else { ckk * band * win.ow };
        let fkk = filters * win.kh * win.kw;
        let back = (!direct && win.sh == 1 && win.sw == 1 && win.pt < win.kh && win.pl < win.kw).then(|| {
            let back = Window {
                pt: win.kh - 1 - win.pt,
                pl: win.kw - 1 - win.pl,
                h: win.oh,
                w: win.ow,
                oh: win.h,
                ow: win.w,
                ..win
            };
            (back, band_rows(fkk * back.ow, back.oh))
        });
        let dcols = match back {
            Some((b, rows)) => fkk * rows * b.ow,
            None if direct => 0,
            None => ckk * ohw,
        };
        let threads = threads.max(1);
        Conv2dKernel {
            geom: Geom { win, c: channels, f: filters, act, ckk, ohw, band, direct, back },
            threads,
            flipped: vec![F::zero(); if back.is_some() { filters * ckk } else { 0 }],
            scratch: (0..threads)
                .map(|_| Scratch {
                    cols: vec![F::zero(); cols],
                    dcols: vec![F::zero(); dcols],
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

/// The bands of `rows` output rows, `band` at a time: (first row, end row).
fn bands(rows: usize, band: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..rows).step_by(band.max(1)).map(move |r0| (r0, (r0 + band).min(rows)))
}

/// A row-major matrix of `cols` columns, read in place.
fn rows_of<F>(data: &[F], cols: usize) -> View<'_, F> {
    View { data, rs: cols, cs: 1 }
}

impl<F: Real> Kernel<F> for Conv2dKernel<F> {
    fn forward(&mut self, x: &[F], y: &mut [F], p: &[F], _r: &mut [F], rows: usize, _train: bool) {
        let g = self.geom;
        let (in_len, out_len) = (g.c * g.win.h * g.win.w, g.f * g.ohw);
        let (w, b) = p.split_at(g.f * g.ckk);
        let block = self.block(rows);
        let run = |xb: &[F], yb: &mut [F], s: &mut Scratch<F>| {
            for (xn, yn) in xb.chunks_exact(in_len).zip(yb.chunks_exact_mut(out_len)) {
                if g.direct {
                    gemm(g.f, g.ohw, g.ckk, w, Op::N, xn, Op::N, yn, false, 1);
                } else {
                    for (r0, r1) in bands(g.win.oh, g.band) {
                        let n = (r1 - r0) * g.win.ow;
                        let cols = &mut s.cols[..g.ckk * n];
                        im2col(&g.win, xn, cols, r0, r1);
                        let out = &mut yn[r0 * g.win.ow..];
                        gemm_view(g.f, n, g.ckk, rows_of(w, g.ckk), rows_of(cols, n), out, g.ohw, false, 1);
                    }
                }
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
        if g.back.is_some() && dx.is_some() {
            flip(&g, w, &mut self.flipped);
        }
        let flipped = &self.flipped[..];
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
                    *sum = *sum + super::reduce::sum(plane);
                }
                // dWᵀ = cols · dzᵀ ([C·kh·kw, F]): with the long dimension inside, this shape
                // runs about twice as fast as dW = dz · colsᵀ.
                if g.direct {
                    gemm(g.ckk, g.f, g.ohw, xn, Op::N, dzn, Op::T, &mut s.dw, true, 1);
                } else {
                    for (r0, r1) in bands(g.win.oh, g.band) {
                        let n = (r1 - r0) * g.win.ow;
                        let cols = &mut s.cols[..g.ckk * n];
                        im2col(&g.win, xn, cols, r0, r1);
                        let dz_t = View { data: &dzn[r0 * g.win.ow..], rs: 1, cs: g.ohw };
                        gemm_view(g.ckk, g.f, n, rows_of(cols, n), dz_t, &mut s.dw, g.f, true, 1);
                    }
                }
                let Some(dxb) = dxb.as_deref_mut() else { continue };
                let dxn = &mut dxb[n * in_len..(n + 1) * in_len];
                let hw = g.win.h * g.win.w;
                if g.direct {
                    gemm(g.c, g.ohw, g.f, w, Op::T, dzn, Op::N, dxn, false, 1);
                } else if let Some((back, band)) = &g.back {
                    let fkk = g.f * g.win.kh * g.win.kw;
                    for (r0, r1) in bands(back.oh, *band) {
                        let n = (r1 - r0) * back.ow;
                        let dcols = &mut s.dcols[..fkk * n];
                        im2col(back, dzn, dcols, r0, r1);
                        let out = &mut dxn[r0 * back.ow..];
                        gemm_view(g.c, n, fkk, rows_of(flipped, fkk), rows_of(dcols, n), out, hw, false, 1);
                    }
                } else {
                    gemm(g.ckk, g.ohw, g.f, w, Op::T, dzn, Op::N, &mut s.dcols, false, 1);
                    col2im(&g, &s.dcols, dxn);
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
        // The partial sums hold dWᵀ: transposed back while they are added up.
        let (gw, gb) = grad.split_at_mut(g.f * g.ckk);
        gb.copy_from_slice(&self.scratch[0].db);
        for s in self.scratch.iter().take(blocks).skip(1) {
            gb.iter_mut().zip(&s.db).for_each(|(a, &b)| *a = *a + b);
        }
        for (f, row) in gw.chunks_exact_mut(g.ckk).enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                let mut sum = self.scratch[0].dw[j * g.f + f];
                for s in self.scratch.iter().take(blocks).skip(1) {
                    sum = sum + s.dw[j * g.f + f];
                }
                *v = sum;
            }
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

/// The weights of the flipped convolution: `flipped[c][f][ky][kx] = w[f][c][kh-1-ky][kw-1-kx]`.
fn flip<F: Real>(g: &Geom, w: &[F], flipped: &mut [F]) {
    let (kh, kw) = (g.win.kh, g.win.kw);
    let kk = kh * kw;
    for c in 0..g.c {
        for f in 0..g.f {
            let src = &w[(f * g.c + c) * kk..][..kk];
            let dst = &mut flipped[(c * g.f + f) * kk..][..kk];
            for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
                *d = *s;
            }
        }
    }
}

/// Output rows `[r0, r1)` of one example's columns for window `win`: row (ci, ky, kx), column
/// (oy - r0, ox) holds x[ci, oy·sh + ky - pt, ox·sw + kx - pl], zero outside the input.
fn im2col<F: Real>(win: &Window, x: &[F], cols: &mut [F], r0: usize, r1: usize) {
    if win.sh == 1 && win.sw == 1 && win.ow == win.w {
        return im2col_shifted(win, x, cols, r0, r1);
    }
    im2col_rows(win, x, cols, r0, r1)
}

/// [`im2col`] row by row of the output, for any stride.
fn im2col_rows<F: Real>(win: &Window, x: &[F], cols: &mut [F], r0: usize, r1: usize) {
    let (h, w, ow) = (win.h, win.w, win.ow);
    let mut rows = cols.chunks_exact_mut((r1 - r0) * ow);
    for plane in x.chunks_exact(h * w) {
        for ky in 0..win.kh {
            for kx in 0..win.kw {
                let Some(out) = rows.next() else { return };
                let (lo, hi) = valid_span(win, kx);
                for (oy, o) in (r0..r1).zip(out.chunks_exact_mut(ow)) {
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

/// [`im2col`] when both strides are 1 and rows keep their width (`same` padding): each row of
/// the columns is the input plane shifted by (ky - pt) rows and (kx - pl) columns, so it is
/// one contiguous copy, then the rows above or below the input and the columns that wrapped
/// around from the neighbouring row are zeroed.
fn im2col_shifted<F: Real>(win: &Window, x: &[F], cols: &mut [F], r0: usize, r1: usize) {
    let (h, w, oh) = (win.h, win.w, win.oh);
    let plane = h * w;
    let mut rows = cols.chunks_exact_mut((r1 - r0) * w);
    for src in x.chunks_exact(plane) {
        for ky in 0..win.kh {
            let dy = ky as isize - win.pt as isize;
            // Output rows of the band whose input row lies inside the plane.
            let lo = (-dy).clamp(r0 as isize, r1 as isize) as usize;
            let hi = (h as isize - dy).clamp(lo as isize, r1.min(oh) as isize) as usize;
            for kx in 0..win.kw {
                let Some(out) = rows.next() else { return };
                let dx = kx as isize - win.pl as isize;
                out[..(lo - r0) * w].fill(F::zero());
                out[(hi - r0) * w..].fill(F::zero());
                // out[p - r0·w] = src[p + dy·w + dx] for p in [lo·w, hi·w), inside the plane.
                let shift = dy * w as isize + dx;
                let start = ((lo * w) as isize + shift).max(0) as usize;
                let end = (((hi * w) as isize + shift).max(0) as usize).min(plane);
                if end > start {
                    let at = (start as isize - shift) as usize - r0 * w;
                    out[at..at + (end - start)].copy_from_slice(&src[start..end]);
                }
                // Columns that read past the row's edge.
                let (zl, zr) = (dx.min(0).unsigned_abs().min(w), dx.max(0).unsigned_abs().min(w));
                for row in out[(lo - r0) * w..(hi - r0) * w].chunks_exact_mut(w) {
                    row[..zl].fill(F::zero());
                    row[w - zr..].fill(F::zero());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::layers::{Padding, Pair};

    #[test]
    fn shifted_columns_equal_the_row_by_row_columns_in_any_band() {
        for (k, pad, h, w) in [
            (3, Padding::Same, 5, 4),
            (5, Padding::Same, 6, 7),
            (7, Padding::Same, 4, 3),
            (2, Padding::Same, 3, 5),
            (5, Padding::Explicit(Pair(2, 2)), 9, 6),
            (3, Padding::Explicit(Pair(0, 1)), 6, 5),
            (3, Padding::Explicit(Pair(2, 1)), 4, 5),
            (1, Padding::Valid, 3, 3),
        ] {
            let win = Window::resolve(Pair(k, k), Pair(1, 1), pad, h, w).unwrap();
            assert_eq!(win.ow, win.w, "{k} {pad}");
            let c = 2;
            let x: Vec<f64> = (0..c * h * w).map(|i| i as f64 + 1.0).collect();
            let oh = win.oh;
            let mut whole = vec![f64::NAN; c * k * k * oh * w];
            im2col_rows(&win, &x, &mut whole, 0, oh);
            for band in 1..=oh {
                for (r0, r1) in bands(oh, band) {
                    let n = (r1 - r0) * w;
                    let (mut a, mut b) = (vec![f64::NAN; c * k * k * n], vec![f64::NAN; c * k * k * n]);
                    im2col_shifted(&win, &x, &mut a, r0, r1);
                    im2col_rows(&win, &x, &mut b, r0, r1);
                    assert_eq!(a, b, "kernel {k}, {pad}, {h}x{w}, rows {r0}..{r1}");
                    for (row, part) in whole.chunks_exact(oh * w).zip(a.chunks_exact(n)) {
                        assert_eq!(&row[r0 * w..r1 * w], part, "kernel {k}, {pad}, rows {r0}..{r1}");
                    }
                }
            }
        }
    }
}
