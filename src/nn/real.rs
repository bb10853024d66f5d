//! The float types the network runs in: f32 for training, f64 for gradient checks of the very
//! same code.

use std::fmt::Debug;

pub trait Real: num_traits::Float + Default + Debug + Send + Sync + std::iter::Sum + 'static {
    fn of(x: f64) -> Self;
    fn of32(x: f32) -> Self;
    fn f64(self) -> f64;
    /// `e^x` for element-wise loops: f32 a branch-free approximation the compiler vectorises
    /// (relative error below 2e-7 over the whole range, 0 below -87), f64 exact (gradient checks).
    fn exp_fast(self) -> Self;
    /// The logistic function through [`Real::exp_fast`].
    #[inline(always)]
    fn sigmoid_fast(self) -> Self {
        Self::one() / (Self::one() + (-self).exp_fast())
    }
    /// tanh through [`Real::exp_fast`]: 1 - 2 / (e^2x + 1).
    #[inline(always)]
    fn tanh_fast(self) -> Self {
        let two = Self::one() + Self::one();
        Self::one() - two / ((two * self).exp_fast() + Self::one())
    }
}

/// e^r for |r| <= ln 2 / 2 (Taylor to r^7: error below 6e-9).
#[inline(always)]
fn exp_reduced(r: f32) -> f32 {
    1.0 + r
        * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))))
}

impl Real for f32 {
    #[inline(always)]
    fn exp_fast(self) -> Self {
        // e^x = 2^k · e^r with k = round(x log2 e) and r = x - k ln 2 (ln 2 in two parts, so r
        // keeps its precision), |r| <= ln 2 / 2; k rounded by the 1.5·2^23 trick and 2^k built
        // from its exponent bits: no branch, no call.
        const ROUND: f32 = 12_582_912.0;
        const LN2_HI: f32 = 0.693_359_4;
        const LN2_LO: f32 = -2.121_944_4e-4;
        let x = self.clamp(-87.0, 88.0);
        let k = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
        let r = (x - k * LN2_HI) - k * LN2_LO;
        let scale = f32::from_bits(((k as i32 + 127) << 23) as u32);
        exp_reduced(r) * scale
    }
    #[inline]
    fn of(x: f64) -> Self {
        x as f32
    }
    #[inline]
    fn of32(x: f32) -> Self {
        x
    }
    #[inline]
    fn f64(self) -> f64 {
        self as f64
    }
}

impl Real for f64 {
    #[inline(always)]
    fn exp_fast(self) -> Self {
        self.exp()
    }
    #[inline]
    fn of(x: f64) -> Self {
        x
    }
    #[inline]
    fn of32(x: f32) -> Self {
        x as f64
    }
    #[inline]
    fn f64(self) -> f64 {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::Real;

    #[test]
    fn fast_exp_sigmoid_and_tanh_are_within_a_few_ulps() {
        let mut worst = 0.0f64;
        let mut x = -90.0f32;
        while x < 90.0 {
            let (fast, exact) = (x.exp_fast() as f64, (x as f64).exp());
            if exact > 1e-37 && exact < 1e38 {
                worst = worst.max((fast - exact).abs() / exact);
            }
            assert!((x.sigmoid_fast() as f64 - 1.0 / (1.0 + (-(x as f64)).exp())).abs() < 1e-6, "{x}");
            assert!((x.tanh_fast() as f64 - (x as f64).tanh()).abs() < 1e-6, "{x}");
            x += 0.0137;
        }
        assert!(worst < 2e-7, "relative error {worst}");
        assert_eq!((-100.0f32).exp_fast(), (-87.0f32).exp_fast());
        assert!(f32::NAN.exp_fast().is_nan() && f32::NAN.sigmoid_fast().is_nan());
    }
}
