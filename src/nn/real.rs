//! The float types the network runs in: f32 for training, f64 for gradient checks of the very
//! same code.

use std::fmt::Debug;

pub trait Real: num_traits::Float + Default + Debug + Send + Sync + std::iter::Sum + 'static {
    fn of(x: f64) -> Self;
    fn of32(x: f32) -> Self;
    fn f64(self) -> f64;
}

impl Real for f32 {
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
