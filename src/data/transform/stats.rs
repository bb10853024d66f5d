//! Streaming statistics for fitting and analysis: Welford mean and variance, min and max,
//! a seeded reservoir sample for medians, quantiles and histograms, and bounded category
//! counts. Memory stays bounded however many rows pass.

use std::collections::HashMap;

use crate::rng::Rng;

/// Values kept for quantiles; below this many the quantiles are exact.
pub const RESERVOIR: usize = 100_000;
/// Distinct values counted before counting stops.
pub const MAX_DISTINCT: usize = 100_000;

#[derive(Clone, Debug)]
pub struct NumStats {
    pub count: u64,
    pub min: f64,
    pub max: f64,
    mean: f64,
    m2: f64,
    reservoir: Vec<f64>,
    rng: Rng,
}

impl Default for NumStats {
    fn default() -> Self {
        NumStats {
            count: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            mean: 0.0,
            m2: 0.0,
            reservoir: Vec::new(),
            rng: Rng::new(0x5354_4154),
        }
    }
}

impl NumStats {
    /// Adds a finite value (callers count NaN, infinities and missing values themselves).
    pub fn push(&mut self, x: f64) {
        self.count += 1;
        self.min = self.min.min(x);
        self.max = self.max.max(x);
        let d = x - self.mean;
        self.mean += d / self.count as f64;
        self.m2 += d * (x - self.mean);
        if self.reservoir.len() < RESERVOIR {
            self.reservoir.push(x);
        } else {
            let j = self.rng.below(self.count) as usize;
            if j < RESERVOIR {
                self.reservoir[j] = x;
            }
        }
    }

    pub fn mean(&self) -> f64 {
        if self.count == 0 { f64::NAN } else { self.mean }
    }

    /// Population standard deviation.
    pub fn stdev(&self) -> f64 {
        if self.count == 0 { f64::NAN } else { (self.m2 / self.count as f64).sqrt() }
    }

    /// Quantiles (q in [0, 1]) of the reservoir: exact up to [`RESERVOIR`] values.
    pub fn quantiles(&self, qs: &[f64]) -> Vec<f64> {
        let mut v = self.reservoir.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        qs.iter()
            .map(|q| {
                if v.is_empty() {
                    return f64::NAN;
                }
                let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
                let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
                v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
            })
            .collect()
    }

    /// `bins` equal-width bins between min and max, counted over the reservoir and scaled to
    /// the full count.
    pub fn histogram(&self, bins: usize) -> Vec<u64> {
        let mut h = vec![0u64; bins.max(1)];
        if self.reservoir.is_empty() {
            return h;
        }
        let width = (self.max - self.min) / h.len() as f64;
        for &x in &self.reservoir {
            let i = if width > 0.0 { ((x - self.min) / width) as usize } else { 0 };
            h[i.min(bins - 1)] += 1;
        }
        let scale = self.count as f64 / self.reservoir.len() as f64;
        h.iter_mut().for_each(|c| *c = (*c as f64 * scale).round() as u64);
        h
    }
}

/// Counts of distinct text values, up to [`MAX_DISTINCT`].
#[derive(Clone, Debug, Default)]
pub struct Counts {
    pub map: HashMap<Box<str>, u64>,
    /// More distinct values arrived than were counted.
    pub overflow: bool,
}

impl Counts {
    pub fn push(&mut self, s: &str) {
        if let Some(c) = self.map.get_mut(s) {
            *c += 1;
        } else if self.map.len() < MAX_DISTINCT {
            self.map.insert(s.into(), 1);
        } else {
            self.overflow = true;
        }
    }

    /// The most frequent values, most frequent first, ties by value.
    pub fn top(&self, n: usize) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self.map.iter().map(|(k, c)| (k.to_string(), *c)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v.truncate(n);
        v
    }

    /// The distinct values in sorted order.
    pub fn sorted(&self) -> Vec<String> {
        let mut v: Vec<String> = self.map.keys().map(|k| k.to_string()).collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welford_matches_two_pass() {
        let xs = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        let mut s = NumStats::default();
        xs.iter().for_each(|&x| s.push(x));
        assert_eq!(s.mean(), 5.0);
        assert_eq!(s.stdev(), 2.0);
        assert_eq!((s.min, s.max), (2.0, 9.0));
        assert_eq!(s.quantiles(&[0.0, 0.5, 1.0]), vec![2.0, 4.5, 9.0]);
        assert_eq!(s.histogram(7).iter().sum::<u64>(), 8);
    }

    #[test]
    fn the_reservoir_stays_bounded_and_representative() {
        let mut s = NumStats::default();
        for i in 0..(3 * RESERVOIR) {
            s.push(i as f64);
        }
        assert_eq!(s.reservoir.len(), RESERVOIR);
        let median = s.quantiles(&[0.5])[0];
        assert!((median / (1.5 * RESERVOIR as f64) - 1.0).abs() < 0.02, "{median}");
    }

    #[test]
    fn counts_top_and_overflow() {
        let mut c = Counts::default();
        for s in ["b", "a", "b", "c", "b", "a"] {
            c.push(s);
        }
        assert_eq!(c.top(2), vec![("b".into(), 3), ("a".into(), 2)]);
        assert_eq!(c.sorted(), vec!["a", "b", "c"]);
    }
}
