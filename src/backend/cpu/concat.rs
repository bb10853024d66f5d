//! Concat kernel: per example, the inputs' values one after the other (channels of images of
//! one size, or features of vectors); backward hands each input its slice of the output's
//! gradient (`first` as for add).

use crate::nn::Real;

/// Per example, the inputs' values one after the other (`widths`: values per example).
pub fn concat_forward<F: Real>(xs: &[&[F]], widths: &[usize], y: &mut [F], rows: usize) {
    let total: usize = widths.iter().sum();
    for r in 0..rows {
        let mut at = r * total;
        for (x, &w) in xs.iter().zip(widths) {
            y[at..at + w].copy_from_slice(&x[r * w..(r + 1) * w]);
            at += w;
        }
    }
}

/// Input `which`'s share of the output's gradient.
pub fn concat_backward<F: Real>(
    dy: &[F],
    widths: &[usize],
    which: usize,
    dx: &mut [F],
    rows: usize,
    first: bool,
) {
    let total: usize = widths.iter().sum();
    let (offset, w) = (widths[..which].iter().sum::<usize>(), widths[which]);
    for r in 0..rows {
        let src = &dy[r * total + offset..r * total + offset + w];
        let dst = &mut dx[r * w..(r + 1) * w];
        if first {
            dst.copy_from_slice(src);
        } else {
            dst.iter_mut().zip(src).for_each(|(o, &g)| *o = *o + g);
        }
    }
}
