//! Packing a selection of quanta into a message. The selection comes from a backend's
//! primitives (`residual += update`, select `|r| >= tau`, scatter-subtract; see
//! [`super::ThresholdSharing`]); the set of entries is decided before any packing, so the
//! format (sparse or bitmap) never loses quanta: `sum(emitted) + residual == sum(update)`.

use super::codec::{Format, HEADER_LEN, Header, bitmap_len, put_varint, write_header};
use super::quantum;
use crate::backend::cpu_sharing;

/// Density above which the bitmap format is used ...
pub const TO_BITMAP: f64 = 1.0 / 16.0;
/// ... and below which it switches back to sparse (hysteresis).
pub const TO_SPARSE: f64 = 1.0 / 32.0;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EncodeStats {
    /// Quanta emitted.
    pub entries: usize,
    pub format: Format,
    /// Encoded message size, header included.
    pub bytes: usize,
    /// Entries sent / parameters.
    pub sparsity: f64,
    /// L2 norm of the residual after encoding.
    pub residual_norm: f64,
}

/// One worker's encoder: reusable selection and message buffers, and the format hysteresis.
pub struct ThresholdEncoder {
    params: usize,
    selected: Vec<u32>,
    bitmap: bool,
    out: Vec<u8>,
}

impl ThresholdEncoder {
    pub fn new(params: usize) -> Self {
        assert!(params < quantum::MAX_PARAMS, "at most 2^31 parameters per message");
        ThresholdEncoder {
            params,
            selected: Vec::with_capacity(params.min(1 << 20)),
            bitmap: false,
            out: Vec::with_capacity(HEADER_LEN + bitmap_len(params)),
        }
    }

    pub fn params(&self) -> usize {
        self.params
    }

    /// The last encoded message.
    pub fn message(&self) -> &[u8] {
        &self.out
    }

    /// On host buffers: `residual += update`, select and subtract quanta, and pack the
    /// message (tests, benchmarks and tools; training goes through a backend).
    pub fn encode(
        &mut self,
        residual: &mut [f32],
        update: &[f32],
        tau: f32,
        origin: u32,
        step: u64,
    ) -> EncodeStats {
        let residual_norm = self.accumulate_and_select(residual, update, tau);
        self.pack(tau, origin, step, residual_norm, None)
    }

    /// On host buffers: accumulates, fills the selection list, subtracts the quanta and
    /// returns the residual's L2 norm afterwards.
    pub fn accumulate_and_select(&mut self, residual: &mut [f32], update: &[f32], tau: f32) -> f64 {
        assert_eq!(residual.len(), self.params);
        assert_eq!(update.len(), self.params);
        let mut norm2 = [0.0f64];
        let whole = 0..self.params;
        cpu_sharing::add_select(
            residual,
            update,
            tau,
            std::slice::from_ref(&whole),
            &mut self.selected,
            &mut norm2,
        );
        norm2[0].sqrt()
    }

    /// The selection list (ascending indices, bit 31 = negative); a device backend fills it
    /// directly and then calls [`ThresholdEncoder::pack`].
    pub fn selected_mut(&mut self) -> &mut Vec<u32> {
        &mut self.selected
    }

    /// Packs the selection into a message, choosing the format with hysteresis unless `force`.
    pub fn pack(
        &mut self,
        tau: f32,
        origin: u32,
        step: u64,
        residual_norm: f64,
        force: Option<Format>,
    ) -> EncodeStats {
        let entries = self.selected.len();
        let sparsity = entries as f64 / self.params.max(1) as f64;
        let format = match force {
            Some(f) => f,
            None => {
                if self.bitmap && sparsity < TO_SPARSE {
                    self.bitmap = false;
                } else if !self.bitmap && sparsity > TO_BITMAP {
                    self.bitmap = true;
                }
                if self.bitmap { Format::Bitmap } else { Format::Sparse }
            }
        };
        self.out.clear();
        write_header(
            &mut self.out,
            &Header { format, params: self.params as u32, tau, entries: entries as u32, origin, step },
        );
        match format {
            Format::Sparse => {
                let mut next: u32 = 0;
                for &q in &self.selected {
                    let i = quantum::index(q) as u32;
                    put_varint(&mut self.out, (((i - next) as u64) << 1) | quantum::is_negative(q) as u64);
                    next = i + 1;
                }
            }
            Format::Bitmap => {
                let start = self.out.len();
                self.out.resize(start + bitmap_len(self.params), 0);
                let bits = &mut self.out[start..];
                for &q in &self.selected {
                    let i = quantum::index(q);
                    let code = if quantum::is_negative(q) { 2u8 } else { 1u8 };
                    bits[i / 4] |= code << (2 * (i % 4));
                }
            }
            _ => unreachable!("threshold messages are sparse or bitmap"),
        }
        EncodeStats { entries, format, bytes: self.out.len(), sparsity, residual_norm }
    }
}

#[cfg(test)]
mod tests {
    use super::super::MessageView;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn one_quantum_per_entry_and_exact_subtraction() {
        let mut enc = ThresholdEncoder::new(5);
        let mut r = vec![0.0; 5];
        let s = enc.encode(&mut r, &[0.25, -0.3, 0.05, 0.0, 0.7], 0.1, 0, 1);
        assert_eq!(s.entries, 3);
        assert!((r[0] - 0.15).abs() < 1e-7 && (r[1] + 0.2).abs() < 1e-7 && (r[4] - 0.6).abs() < 1e-7);
        assert_eq!(r[2], 0.05);
        let d = MessageView::parse(enc.message(), 5).unwrap().to_dense();
        assert_eq!(d, vec![0.1, -0.1, 0.0, 0.0, 0.1]);
    }

    #[test]
    fn hysteresis_between_sparse_and_bitmap() {
        let n = 1024;
        let mut enc = ThresholdEncoder::new(n);
        let mut at_density = |d: usize| {
            let mut r = vec![0.0; n];
            let u: Vec<f32> = (0..n).map(|i| if i % d == 0 { 1.0 } else { 0.0 }).collect();
            enc.encode(&mut r, &u, 0.5, 0, 0).format
        };
        assert_eq!(at_density(100), Format::Sparse);
        assert_eq!(at_density(8), Format::Bitmap); // 1/8 > 1/16
        assert_eq!(at_density(20), Format::Bitmap); // 1/20 is between the bounds: stays
        assert_eq!(at_density(40), Format::Sparse); // 1/40 < 1/32
        assert_eq!(at_density(20), Format::Sparse);
    }

    #[test]
    fn about_two_bytes_per_entry_at_density_1e3() {
        let n = 1_000_000;
        let mut enc = ThresholdEncoder::new(n);
        let mut rng = crate::rng::Rng::new(3);
        let mut r = vec![0.0; n];
        let u: Vec<f32> = (0..n).map(|_| if rng.next_f64() < 1e-3 { 1.0 } else { 0.0 }).collect();
        let s = enc.encode(&mut r, &u, 0.5, 0, 0);
        let per_entry = (s.bytes - HEADER_LEN) as f64 / s.entries as f64;
        assert!(per_entry <= 2.0, "{per_entry} bytes per entry");
    }

    fn updates(n: usize) -> impl Strategy<Value = Vec<Vec<f32>>> {
        prop::collection::vec(prop::collection::vec(-1.0f32..1.0, n), 1..6)
    }

    proptest! {
        #[test]
        fn conservation_emitted_plus_residual_is_sum_of_updates(
            steps in updates(67), tau in 0.01f32..0.8
        ) {
            let n = 67;
            let mut enc = ThresholdEncoder::new(n);
            let mut residual = vec![0.0f32; n];
            let mut emitted = vec![0.0f64; n];
            let mut total = vec![0.0f64; n];
            for (s, u) in steps.iter().enumerate() {
                enc.encode(&mut residual, u, tau, 0, s as u64);
                let d = MessageView::parse(enc.message(), n).unwrap().to_dense();
                for i in 0..n {
                    emitted[i] += d[i] as f64;
                    total[i] += u[i] as f64;
                }
            }
            for i in 0..n {
                prop_assert!((emitted[i] + residual[i] as f64 - total[i]).abs() < 1e-5,
                    "entry {}: {} + {} != {}", i, emitted[i], residual[i], total[i]);
                prop_assert!(residual[i].abs() < tau + steps.len() as f32 * 1.0);
            }
        }

        #[test]
        fn round_trip_and_sparse_bitmap_agree(u in prop::collection::vec(-1.0f32..1.0, 1..300), tau in 0.05f32..1.0) {
            let n = u.len();
            let mut enc = ThresholdEncoder::new(n);
            let mut r = vec![0.0; n];
            let norm = enc.accumulate_and_select(&mut r, &u, tau);
            let selected = enc.selected_mut().clone();
            enc.pack(tau, 1, 2, norm, Some(Format::Sparse));
            let sparse = MessageView::parse(enc.message(), n).unwrap().to_dense();
            *enc.selected_mut() = selected.clone();
            enc.pack(tau, 1, 2, norm, Some(Format::Bitmap));
            let bitmap = MessageView::parse(enc.message(), n).unwrap().to_dense();
            prop_assert_eq!(&sparse, &bitmap);
            for i in 0..n {
                let expect = if u[i] >= tau { tau } else if u[i] <= -tau { -tau } else { 0.0 };
                prop_assert_eq!(sparse[i], expect);
            }
            let computed: f64 = r.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
            prop_assert!((computed - norm).abs() < 1e-4 * (1.0 + computed));
        }

        #[test]
        fn arbitrary_bytes_never_panic_the_decoder(bytes in prop::collection::vec(any::<u8>(), 0..200), n in 0usize..100) {
            if let Ok(v) = MessageView::parse(&bytes, n) {
                let mut p = vec![0.0; n];
                v.subtract_from(&mut p, 1.0);
            }
        }

        #[test]
        fn damaged_valid_messages_never_panic(u in prop::collection::vec(-1.0f32..1.0, 1..200), flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..4), cut in any::<usize>()) {
            let n = u.len();
            let mut enc = ThresholdEncoder::new(n);
            let mut r = vec![0.0; n];
            enc.encode(&mut r, &u, 0.3, 0, 0);
            let mut m = enc.message().to_vec();
            for (pos, val) in flips {
                let len = m.len();
                m[pos % len] ^= val;
            }
            m.truncate(cut % (m.len() + 1));
            if let Ok(v) = MessageView::parse(&m, n) {
                let mut p = vec![0.0; n];
                v.subtract_from(&mut p, 1.0);
                prop_assert!(p.iter().all(|x| x.is_finite()));
            }
        }
    }
}
