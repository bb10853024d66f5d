//! The 16-bit wire formats' bulk kernels (`dense16`'s messages): f32 to f16 or bf16 bytes,
//! the check that a payload holds only finite values, and `params -= scale · value` straight
//! from the bytes. On x86-64 with F16C and AVX2 (chosen at run time: one portable binary is
//! copied to SSH hosts and Spark executors) f16 converts eight values per instruction and
//! decoding is one pass, without an f32 copy of the message; elsewhere, and for bf16, the
//! `half` crate's slice conversions in chunks.

use half::slice::HalfFloatSliceExt;

/// Values converted at a time through a buffer on the stack.
const CHUNK: usize = 256;

/// The largest finite f16: f32 values beyond it saturate rather than become infinite.
pub const F16_MAX: f32 = 65504.0;

/// Whether the CPU converts f16 itself (F16C, with AVX2 for the arithmetic).
#[cfg(target_arch = "x86_64")]
#[inline]
fn f16c() -> bool {
    std::arch::is_x86_feature_detected!("f16c") && crate::backend::cpu_sharing::avx2()
}

/// Appends `values` to `out` as little-endian 16-bit values: bf16 (`bf16 = true`, rounded to
/// nearest) or f16 (rounded to nearest, saturating at ±65504; NaN stays NaN).
pub fn append(out: &mut Vec<u8>, bf16: bool, values: &[f32]) {
    out.reserve(2 * values.len());
    let mut bytes = [0u8; 2 * CHUNK];
    #[cfg(target_arch = "x86_64")]
    if !bf16 && f16c() {
        for chunk in values.chunks(CHUNK) {
            let k = chunk.len();
            // SAFETY: the CPU has F16C and AVX2, checked by f16c().
            unsafe { x86::to_f16(chunk, &mut bytes[..2 * k]) };
            // One capacity check per chunk, not per value.
            out.extend_from_slice(&bytes[..2 * k]);
        }
        return;
    }
    let mut clamped = [0f32; CHUNK];
    let mut f16s = [half::f16::ZERO; CHUNK];
    let mut bf16s = [half::bf16::ZERO; CHUNK];
    for chunk in values.chunks(CHUNK) {
        let k = chunk.len();
        let bits: &[u16] = if bf16 {
            bf16s[..k].convert_from_f32_slice(chunk);
            bf16s[..k].reinterpret_cast()
        } else {
            clamped[..k].iter_mut().zip(chunk).for_each(|(c, v)| *c = v.clamp(-F16_MAX, F16_MAX));
            f16s[..k].convert_from_f32_slice(&clamped[..k]);
            f16s[..k].reinterpret_cast()
        };
        bits.iter().zip(bytes.chunks_exact_mut(2)).for_each(|(u, b)| b.copy_from_slice(&u.to_le_bytes()));
        out.extend_from_slice(&bytes[..2 * k]);
    }
}

/// Rounds `values` in place to what bf16 or f16 carries (f16 saturating at ±65504).
pub fn round(bf16: bool, values: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if !bf16 && f16c() {
        // SAFETY: the CPU has F16C and AVX2, checked by f16c().
        return unsafe { x86::round_f16(values) };
    }
    let mut f16s = [half::f16::ZERO; CHUNK];
    let mut bf16s = [half::bf16::ZERO; CHUNK];
    for chunk in values.chunks_mut(CHUNK) {
        let k = chunk.len();
        if bf16 {
            bf16s[..k].convert_from_f32_slice(chunk);
            bf16s[..k].convert_to_f32_slice(chunk);
        } else {
            chunk.iter_mut().for_each(|v| *v = v.clamp(-F16_MAX, F16_MAX));
            f16s[..k].convert_from_f32_slice(chunk);
            f16s[..k].convert_to_f32_slice(chunk);
        }
    }
}

/// The index of the first value of a 16-bit payload that is not finite (all-ones exponent:
/// `0x7C00` for f16, `0x7F80` for bf16). A block at a time without a branch per value, the
/// block that holds one searched.
pub fn first_not_finite(payload: &[u8], exponent: u16) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if crate::backend::cpu_sharing::avx2() {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { first_with_exponent_avx2(payload, exponent) };
    }
    first_with_exponent(payload, exponent)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn first_with_exponent_avx2(payload: &[u8], exponent: u16) -> Option<usize> {
    first_with_exponent(payload, exponent)
}

#[inline(always)]
fn first_with_exponent(payload: &[u8], exponent: u16) -> Option<usize> {
    const BLOCK: usize = 1024;
    let hit = |c: &[u8; 2]| u16::from_le_bytes(*c) & exponent == exponent;
    let (values, _) = payload.as_chunks::<2>();
    for (n, block) in values.chunks(BLOCK).enumerate() {
        if block.iter().fold(false, |any, c| any | hit(c)) {
            return block.iter().position(hit).map(|i| n * BLOCK + i);
        }
    }
    None
}

/// `params[i] -= scale · value[i]` for the 16-bit little-endian values of `payload` (bf16 or
/// f16), which holds at least `2 · params.len()` bytes.
pub fn subtract(payload: &[u8], bf16: bool, params: &mut [f32], scale: f32) {
    #[cfg(target_arch = "x86_64")]
    if !bf16 && f16c() {
        // SAFETY: the CPU has F16C and AVX2, checked by f16c().
        return unsafe { x86::subtract_f16(payload, params, scale) };
    }
    let mut f16s = [half::f16::ZERO; CHUNK];
    let mut bf16s = [half::bf16::ZERO; CHUNK];
    let mut values = [0f32; CHUNK];
    for (p, b) in params.chunks_mut(CHUNK).zip(payload.chunks(2 * CHUNK)) {
        let k = p.len();
        let bits = b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]));
        if bf16 {
            bf16s.iter_mut().zip(bits).for_each(|(x, u)| *x = half::bf16::from_bits(u));
            bf16s[..k].convert_to_f32_slice(&mut values[..k]);
        } else {
            f16s.iter_mut().zip(bits).for_each(|(x, u)| *x = half::f16::from_bits(u));
            f16s[..k].convert_to_f32_slice(&mut values[..k]);
        }
        p.iter_mut().zip(&values[..k]).for_each(|(p, v)| *p -= scale * v);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::F16_MAX;

    /// Eight f32 to eight f16 per instruction, saturating (`min` then `max`, ordered so that
    /// a NaN passes through both), rounded to nearest even. `bytes` is `2 · values.len()`.
    #[target_feature(enable = "avx2,f16c")]
    pub(super) fn to_f16(values: &[f32], bytes: &mut [u8]) {
        let (hi, lo) = (_mm256_set1_ps(F16_MAX), _mm256_set1_ps(-F16_MAX));
        let (vc, vt) = values.as_chunks::<8>();
        let (bc, bt) = bytes.as_chunks_mut::<16>();
        for (v, b) in vc.iter().zip(bc.iter_mut()) {
            // SAFETY: `v` holds 8 f32 and `b` 16 bytes; both loads and the store are unaligned.
            unsafe {
                let x = _mm256_loadu_ps(v.as_ptr());
                let x = _mm256_max_ps(lo, _mm256_min_ps(hi, x));
                let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(x);
                _mm_storeu_si128(b.as_mut_ptr().cast(), h);
            }
        }
        for (v, b) in vt.iter().zip(bt.chunks_exact_mut(2)) {
            b.copy_from_slice(&half::f16::from_f32(v.clamp(-F16_MAX, F16_MAX)).to_bits().to_le_bytes());
        }
    }

    /// Rounds to f16 and back, eight values per instruction each way, saturating as
    /// [`to_f16`] does.
    #[target_feature(enable = "avx2,f16c")]
    pub(super) fn round_f16(values: &mut [f32]) {
        let (hi, lo) = (_mm256_set1_ps(F16_MAX), _mm256_set1_ps(-F16_MAX));
        let (vc, vt) = values.as_chunks_mut::<8>();
        for v in vc.iter_mut() {
            // SAFETY: `v` holds 8 f32; load and store are unaligned.
            unsafe {
                let x = _mm256_loadu_ps(v.as_ptr());
                let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_max_ps(lo, _mm256_min_ps(hi, x)));
                _mm256_storeu_ps(v.as_mut_ptr(), _mm256_cvtph_ps(h));
            }
        }
        for v in vt.iter_mut() {
            *v = half::f16::from_f32(v.clamp(-F16_MAX, F16_MAX)).to_f32();
        }
    }

    /// `params -= scale · f16 values`, eight per instruction, straight from the bytes.
    #[target_feature(enable = "avx2,f16c")]
    pub(super) fn subtract_f16(payload: &[u8], params: &mut [f32], scale: f32) {
        let s = _mm256_set1_ps(scale);
        let (pc, pt) = params.as_chunks_mut::<8>();
        let (bc, _) = payload.as_chunks::<16>();
        let full = pc.len();
        for (p, b) in pc.iter_mut().zip(bc) {
            // SAFETY: `p` holds 8 f32 and `b` 16 bytes; loads and store are unaligned.
            unsafe {
                let v = _mm256_cvtph_ps(_mm_loadu_si128(b.as_ptr().cast()));
                let x = _mm256_loadu_ps(p.as_ptr());
                _mm256_storeu_ps(p.as_mut_ptr(), _mm256_sub_ps(x, _mm256_mul_ps(s, v)));
            }
        }
        // The last values (fewer than 8) come after the full groups' bytes.
        let rest = payload.get(full * 16..).unwrap_or_default();
        for (p, c) in pt.iter_mut().zip(rest.chunks_exact(2)) {
            *p -= scale * half::f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every f16 bit pattern, and f32 values around every rounding edge, come out of the fast
    /// kernels as they come out of `half` one value at a time (the reference).
    #[test]
    fn the_kernels_agree_with_half_value_by_value() {
        let mut values: Vec<f32> = (0..=u16::MAX)
            .map(|b| half::f16::from_bits(b).to_f32())
            .filter(|v| v.is_finite())
            .flat_map(|v| [v, v * (1.0 + 1e-4), v * (1.0 - 3e-4), v + 1e-8])
            .collect();
        values.extend([1e6, -1e6, 65519.0, 65520.0, -65520.0, 1e-9, -0.0, f32::MAX, f32::MIN]);
        values.push(0.1); // not a multiple of 8: a tail
        for bf16 in [false, true] {
            let mut bytes = Vec::new();
            append(&mut bytes, bf16, &values);
            assert_eq!(bytes.len(), 2 * values.len());
            for (i, (&v, c)) in values.iter().zip(bytes.chunks_exact(2)).enumerate() {
                let bits = u16::from_le_bytes([c[0], c[1]]);
                let want = if bf16 {
                    half::bf16::from_f32(v).to_bits()
                } else {
                    half::f16::from_f32(v.clamp(-F16_MAX, F16_MAX)).to_bits()
                };
                assert_eq!(bits, want, "bf16 {bf16}: value {i} ({v})");
            }
            let mut rounded = values.clone();
            round(bf16, &mut rounded);
            for (i, (r, c)) in rounded.iter().zip(bytes.chunks_exact(2)).enumerate() {
                let bits = u16::from_le_bytes([c[0], c[1]]);
                let want = if bf16 {
                    half::bf16::from_bits(bits).to_f32()
                } else {
                    half::f16::from_bits(bits).to_f32()
                };
                assert_eq!(r.to_bits(), want.to_bits(), "bf16 {bf16}: rounding value {i}");
            }
            let mut params: Vec<f32> = (0..values.len()).map(|i| i as f32 * 0.5).collect();
            let before = params.clone();
            subtract(&bytes, bf16, &mut params, 0.25);
            for (i, c) in bytes.chunks_exact(2).enumerate() {
                let bits = u16::from_le_bytes([c[0], c[1]]);
                let v = if bf16 {
                    half::bf16::from_bits(bits).to_f32()
                } else {
                    half::f16::from_bits(bits).to_f32()
                };
                assert_eq!(params[i], before[i] - 0.25 * v, "bf16 {bf16}: value {i}");
            }
        }
    }

    #[test]
    fn nan_stays_nan_and_is_found() {
        let mut values = vec![1.0f32; 3000];
        values[2049] = f32::NAN;
        for (bf16, exponent) in [(false, 0x7C00), (true, 0x7F80)] {
            let mut bytes = Vec::new();
            append(&mut bytes, bf16, &values);
            assert_eq!(first_not_finite(&bytes, exponent), Some(2049), "bf16 {bf16}");
            assert_eq!(first_not_finite(&bytes[..4096], exponent), None, "bf16 {bf16}");
        }
    }
}
