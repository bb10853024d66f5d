//! The update wire format, version 1. All integers little-endian.
//!
//! ```text
//! offset size field
//!  0     2    magic "SU"
//!  2     1    version (1)
//!  3     1    format: 0 sparse, 1 bitmap, 2 dense f32, 3 values, 4 dense f16, 5 dense bf16
//!  4     4    parameter count n (u32)
//!  8     4    tau (f32; unused by dense)
//! 12     4    entry count: quanta carried (sparse, bitmap) or n (dense)
//! 16     4    origin worker id (u32)
//! 20     8    step (u64)
//! 28     ...  payload
//! ```
//!
//! Sparse payload: for each sent index, ascending, the gap to the previous one (`i - prev - 1`,
//! with `prev = -1` at the start) shifted left by one with the sign in bit 0 (1 = -tau), as an
//! LEB128 varint. Bitmap payload: 2 bits per parameter (00 nothing, 01 +tau, 10 -tau), four per
//! byte from the low bits up. Dense payload: n f32 values. Values payload (top-k): for each
//! sent index, ascending, the gap to the previous one as an LEB128 varint, then its value as an
//! f16. Dense f16 / bf16 payload: n 16-bit values. Tau is unused by every format but sparse and
//! bitmap; the entry count is n for the dense formats.
//!
//! A message stands for the update `u` that receivers subtract: `params -= u`.
//! Decoding validates the whole message before anything is applied; any byte string either
//! yields a valid message or a [`DecodeError`], never a panic or an out-of-bounds write.

pub const MAGIC: [u8; 2] = *b"SU";
pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 28;
/// The largest tau a message may carry: the adaptive threshold never goes beyond it, and a
/// message past it is refused (a finite but huge tau, applied a few times, would overflow
/// the parameters to infinity).
pub const MAX_TAU: f32 = 1e3;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Format {
    Sparse = 0,
    Bitmap = 1,
    Dense = 2,
    Values = 3,
    Half = 4,
    Bf16 = 5,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Sparse => "sparse",
            Format::Bitmap => "bitmap",
            Format::Dense => "dense",
            Format::Values => "values",
            Format::Half => "dense f16",
            Format::Bf16 => "dense bf16",
        }
    }

    /// Whether the message carries one value per parameter.
    pub fn is_dense(self) -> bool {
        matches!(self, Format::Dense | Format::Half | Format::Bf16)
    }

    /// Bytes per value of a dense format.
    fn value_bytes(self) -> usize {
        if self == Format::Dense { 4 } else { 2 }
    }

    /// The index of the first value of a dense payload that is not finite. Checked a block at
    /// a time without branching per value (so it vectorises), the block that holds one searched.
    fn first_not_finite(self, payload: &[u8]) -> Option<usize> {
        // An all-ones exponent is infinity or NaN.
        match self {
            Format::Dense => first_with_exponent::<4>(payload, 0x7F80_0000),
            Format::Bf16 => super::wire16::first_not_finite(payload, 0x7F80),
            _ => super::wire16::first_not_finite(payload, 0x7C00),
        }
    }

    /// Reads one value of a dense or values format.
    #[inline]
    fn read(self, b: &[u8]) -> f32 {
        match self {
            Format::Dense => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            Format::Bf16 => half::bf16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32(),
            _ => half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32(),
        }
    }
}

/// The index of the first `W`-byte little-endian value whose bits under `mask` are all set,
/// checked a block at a time without branching per value.
fn first_with_exponent<const W: usize>(payload: &[u8], mask: u32) -> Option<usize> {
    const BLOCK: usize = 1024;
    let hit = |c: &[u8]| {
        let mut b = [0u8; 4];
        b[..W].copy_from_slice(&c[..W]);
        u32::from_le_bytes(b) & mask == mask
    };
    for (n, block) in payload.chunks(W * BLOCK).enumerate() {
        if block.chunks_exact(W).fold(false, |any, c| any | hit(c)) {
            return block.chunks_exact(W).position(hit).map(|i| n * BLOCK + i);
        }
    }
    None
}

/// Rounds `v` to what a 16-bit format carries (f16: to the nearest, saturating at ±65504).
#[inline]
pub fn round_half(format: Format, v: f32) -> f32 {
    match format {
        Format::Bf16 => half::bf16::from_f32(v).to_f32(),
        _ => half::f16::from_f32(v.clamp(-65504.0, 65504.0)).to_f32(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Header {
    pub format: Format,
    pub params: u32,
    pub tau: f32,
    pub entries: u32,
    pub origin: u32,
    pub step: u64,
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("message of {0} bytes is shorter than the {HEADER_LEN}-byte header")]
    Short(usize),
    #[error("bad magic {0:02x?}; not a Strom update")]
    Magic([u8; 2]),
    #[error("unsupported version {0} (this build reads version {VERSION})")]
    Version(u8),
    #[error("unknown format {0}")]
    UnknownFormat(u8),
    #[error("message is for {got} parameters, this model has {expected}")]
    ParamCount { expected: u32, got: u32 },
    #[error("tau {0} is outside (0, {MAX_TAU}]")]
    Tau(f32),
    #[error("entry count {entries} is impossible for {params} parameters")]
    EntryCount { entries: u32, params: u32 },
    #[error("payload is {got} bytes, expected {expected}")]
    PayloadLength { expected: usize, got: usize },
    #[error("index {index} is out of range for {params} parameters")]
    IndexOutOfRange { index: u64, params: u32 },
    #[error("varint at byte {0} is malformed or too long")]
    Varint(usize),
    #[error("payload ended after {found} of {expected} entries")]
    Truncated { expected: u32, found: u32 },
    #[error("{0} bytes after the last entry")]
    Trailing(usize),
    #[error("bitmap holds the invalid code 11 at parameter {0}")]
    BitmapCode(usize),
    #[error("bitmap padding bits are not zero")]
    BitmapPadding,
    #[error("value at {0} is not finite")]
    NotFinite(usize),
}

/// Appends a header to `out`.
pub fn write_header(out: &mut Vec<u8>, h: &Header) {
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(h.format as u8);
    out.extend_from_slice(&h.params.to_le_bytes());
    out.extend_from_slice(&h.tau.to_le_bytes());
    out.extend_from_slice(&h.entries.to_le_bytes());
    out.extend_from_slice(&h.origin.to_le_bytes());
    out.extend_from_slice(&h.step.to_le_bytes());
}

#[inline]
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline]
fn get_varint(bytes: &[u8], pos: &mut usize) -> Result<u64, DecodeError> {
    let start = *pos;
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let Some(&b) = bytes.get(*pos) else {
            return Err(DecodeError::Varint(start));
        };
        *pos += 1;
        if shift == 63 && b > 1 {
            return Err(DecodeError::Varint(start));
        }
        v |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(DecodeError::Varint(start))
}

/// Bytes of a bitmap payload for `n` parameters.
pub fn bitmap_len(n: usize) -> usize {
    n.div_ceil(4)
}

/// Builds a dense message (parameter averaging, replica snapshots).
pub fn encode_dense(out: &mut Vec<u8>, values: &[f32], origin: u32, step: u64) {
    out.clear();
    out.reserve(HEADER_LEN + 4 * values.len());
    write_header(
        out,
        &Header {
            format: Format::Dense,
            params: values.len() as u32,
            tau: 0.0,
            entries: values.len() as u32,
            origin,
            step,
        },
    );
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Builds a dense message in a 16-bit format (`dense16`; values are rounded, saturating).
pub fn encode_half(out: &mut Vec<u8>, format: Format, values: &[f32], origin: u32, step: u64) {
    debug_assert!(matches!(format, Format::Half | Format::Bf16));
    out.clear();
    out.reserve(HEADER_LEN + 2 * values.len());
    let n = values.len() as u32;
    write_header(out, &Header { format, params: n, tau: 0.0, entries: n, origin, step });
    super::wire16::append(out, format == Format::Bf16, values);
}

/// [`round_half`] over a slice, in place (F16C where the CPU has it).
pub fn round_half_slice(format: Format, values: &mut [f32]) {
    super::wire16::round(format == Format::Bf16, values);
}

/// Builds a values message (top-k): `entries` are (index, value) pairs, indices ascending;
/// values are sent as f16, so callers round them with [`round_half`] first to keep the
/// rounding in their residual. Receivers subtract `scale·value` (the scale travels as tau).
pub fn encode_values(
    out: &mut Vec<u8>,
    params: usize,
    scale: f32,
    entries: &[(u32, f32)],
    origin: u32,
    step: u64,
) {
    out.clear();
    out.reserve(HEADER_LEN + 5 * entries.len());
    write_header(
        out,
        &Header {
            format: Format::Values,
            params: params as u32,
            tau: scale,
            entries: entries.len() as u32,
            origin,
            step,
        },
    );
    let mut next = 0u64;
    for &(i, v) in entries {
        debug_assert!(i as u64 >= next);
        put_varint(out, i as u64 - next);
        out.extend_from_slice(&half::f16::from_f32(v.clamp(-65504.0, 65504.0)).to_bits().to_le_bytes());
        next = i as u64 + 1;
    }
}

/// A message whose every byte has been checked against a parameter count.
#[derive(Clone, Copy, Debug)]
pub struct MessageView<'a> {
    pub header: Header,
    payload: &'a [u8],
}

/// Reads only the header (for routing); see [`MessageView::parse`] for full validation.
pub fn peek_header(bytes: &[u8]) -> Result<Header, DecodeError> {
    if bytes.len() < HEADER_LEN {
        return Err(DecodeError::Short(bytes.len()));
    }
    let magic = [bytes[0], bytes[1]];
    if magic != MAGIC {
        return Err(DecodeError::Magic(magic));
    }
    if bytes[2] != VERSION {
        return Err(DecodeError::Version(bytes[2]));
    }
    let format = match bytes[3] {
        0 => Format::Sparse,
        1 => Format::Bitmap,
        2 => Format::Dense,
        3 => Format::Values,
        4 => Format::Half,
        5 => Format::Bf16,
        other => return Err(DecodeError::UnknownFormat(other)),
    };
    let u32_at = |o: usize| u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
    let mut step = [0u8; 8];
    step.copy_from_slice(&bytes[20..28]);
    Ok(Header {
        format,
        params: u32_at(4),
        tau: f32::from_le_bytes(u32_at(8).to_le_bytes()),
        entries: u32_at(12),
        origin: u32_at(16),
        step: u64::from_le_bytes(step),
    })
}

impl<'a> MessageView<'a> {
    /// Validates `bytes` completely as an update for `params` parameters.
    pub fn parse(bytes: &'a [u8], params: usize) -> Result<MessageView<'a>, DecodeError> {
        let header = peek_header(bytes)?;
        if header.params as usize != params {
            return Err(DecodeError::ParamCount { expected: params as u32, got: header.params });
        }
        let payload = &bytes[HEADER_LEN..];
        let view = MessageView { header, payload };
        match header.format {
            Format::Sparse | Format::Bitmap | Format::Values => {
                if !(header.tau.is_finite() && header.tau > 0.0 && header.tau <= MAX_TAU) {
                    return Err(DecodeError::Tau(header.tau));
                }
                if header.entries > header.params {
                    return Err(DecodeError::EntryCount { entries: header.entries, params: header.params });
                }
            }
            Format::Dense | Format::Half | Format::Bf16 => {
                if header.entries != header.params {
                    return Err(DecodeError::EntryCount { entries: header.entries, params: header.params });
                }
            }
        }
        match header.format {
            Format::Sparse => view.walk_sparse(|_, _| {})?,
            Format::Bitmap => view.walk_bitmap(|_, _| {})?,
            Format::Values => view.walk_values(|_, _| {})?,
            Format::Dense | Format::Half | Format::Bf16 => {
                let width = header.format.value_bytes();
                let expected = width * params;
                if payload.len() != expected {
                    return Err(DecodeError::PayloadLength { expected, got: payload.len() });
                }
                if let Some(i) = header.format.first_not_finite(payload) {
                    return Err(DecodeError::NotFinite(i));
                }
            }
        }
        Ok(view)
    }

    fn walk_sparse(&self, mut f: impl FnMut(usize, bool)) -> Result<(), DecodeError> {
        let (n, count) = (self.header.params as u64, self.header.entries);
        let mut pos = 0;
        let mut next: u64 = 0; // smallest index the next entry may have
        for found in 0..count {
            if pos >= self.payload.len() {
                return Err(DecodeError::Truncated { expected: count, found });
            }
            let v = get_varint(self.payload, &mut pos)?;
            let index = next + (v >> 1);
            if index >= n {
                return Err(DecodeError::IndexOutOfRange { index, params: self.header.params });
            }
            f(index as usize, v & 1 == 1);
            next = index + 1;
        }
        if pos != self.payload.len() {
            return Err(DecodeError::Trailing(self.payload.len() - pos));
        }
        Ok(())
    }

    fn walk_values(&self, mut f: impl FnMut(usize, f32)) -> Result<(), DecodeError> {
        let (n, count) = (self.header.params as u64, self.header.entries);
        let mut pos = 0;
        let mut next: u64 = 0;
        for found in 0..count {
            if pos >= self.payload.len() {
                return Err(DecodeError::Truncated { expected: count, found });
            }
            let index = next.saturating_add(get_varint(self.payload, &mut pos)?);
            if index >= n {
                return Err(DecodeError::IndexOutOfRange { index, params: self.header.params });
            }
            let Some(b) = self.payload.get(pos..pos + 2) else {
                return Err(DecodeError::Truncated { expected: count, found });
            };
            pos += 2;
            let v = Format::Half.read(b);
            if !v.is_finite() {
                return Err(DecodeError::NotFinite(index as usize));
            }
            f(index as usize, v);
            next = index + 1;
        }
        if pos != self.payload.len() {
            return Err(DecodeError::Trailing(self.payload.len() - pos));
        }
        Ok(())
    }

    fn walk_bitmap(&self, mut f: impl FnMut(usize, bool)) -> Result<(), DecodeError> {
        let n = self.header.params as usize;
        let expected = bitmap_len(n);
        if self.payload.len() != expected {
            return Err(DecodeError::PayloadLength { expected, got: self.payload.len() });
        }
        let mut count: u32 = 0;
        for (bi, &byte) in self.payload.iter().enumerate() {
            if byte == 0 {
                continue;
            }
            for k in 0..4 {
                let code = (byte >> (2 * k)) & 3;
                if code == 0 {
                    continue;
                }
                let i = bi * 4 + k;
                if i >= n {
                    return Err(DecodeError::BitmapPadding);
                }
                if code == 3 {
                    return Err(DecodeError::BitmapCode(i));
                }
                count += 1;
                f(i, code == 2);
            }
        }
        if count != self.header.entries {
            return Err(DecodeError::EntryCount { entries: self.header.entries, params: self.header.params });
        }
        Ok(())
    }

    /// Calls `f(index, negative)` for every quantum of a sparse or bitmap message.
    pub fn for_each_quantum(&self, f: impl FnMut(usize, bool)) {
        // Already validated by `parse`, so these cannot fail.
        let _ = match self.header.format {
            Format::Sparse => self.walk_sparse(f),
            Format::Bitmap => self.walk_bitmap(f),
            _ => Ok(()),
        };
    }

    /// Values of a dense message (f32, f16 or bf16).
    pub fn dense_values(&self) -> impl Iterator<Item = f32> + '_ {
        let format = self.header.format;
        let width = format.value_bytes();
        self.payload.chunks_exact(width).take_while(move |_| format.is_dense()).map(move |c| format.read(c))
    }

    /// `params -= scale * update`.
    pub fn subtract_from(&self, params: &mut [f32], scale: f32) {
        debug_assert_eq!(params.len(), self.header.params as usize);
        match self.header.format {
            Format::Dense => {
                for (p, v) in params.iter_mut().zip(self.dense_values()) {
                    *p -= scale * v;
                }
            }
            Format::Half | Format::Bf16 => {
                super::wire16::subtract(self.payload, self.header.format == Format::Bf16, params, scale)
            }
            Format::Values => {
                let s = scale * self.header.tau;
                let _ = self.walk_values(|i, v| params[i] -= s * v);
            }
            Format::Sparse | Format::Bitmap => {
                let q = self.header.tau * scale;
                self.for_each_quantum(|i, neg| params[i] -= if neg { -q } else { q });
            }
        }
    }

    /// The update as a dense vector (tests and tools).
    pub fn to_dense(&self) -> Vec<f32> {
        let mut v = vec![0.0; self.header.params as usize];
        self.subtract_from(&mut v, -1.0);
        v
    }
}

#[cfg(test)]
mod finite_tests {
    use super::*;

    #[test]
    fn the_first_value_that_is_not_finite_is_found_in_any_block() {
        let mut half = vec![0u8; 2 * 3000];
        assert_eq!(Format::Half.first_not_finite(&half), None);
        for (at, bits) in [(2999usize, 0x7C00u16), (1500, 0xFE00), (1501, 0x7C00)] {
            half[2 * at..2 * at + 2].copy_from_slice(&bits.to_le_bytes());
        }
        assert_eq!(Format::Half.first_not_finite(&half), Some(1500));
        // 0x7C00 is infinity in f16 but a finite number in bf16.
        let mut b = vec![0u8; 2 * 10];
        b[6..8].copy_from_slice(&0x7C00u16.to_le_bytes());
        assert_eq!(Format::Bf16.first_not_finite(&b), None);
        assert_eq!(Format::Half.first_not_finite(&b), Some(3));
        let dense: Vec<u8> =
            [1.0f32, f32::MAX, f32::NEG_INFINITY, f32::NAN].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(Format::Dense.first_not_finite(&dense), Some(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(format: Format, params: u32, entries: u32) -> Vec<u8> {
        let mut v = Vec::new();
        write_header(&mut v, &Header { format, params, tau: 0.5, entries, origin: 3, step: 9 });
        v
    }

    #[test]
    fn sparse_message_by_hand() {
        // +tau at 2, -tau at 3, +tau at 200 of 300.
        let mut m = header(Format::Sparse, 300, 3);
        put_varint(&mut m, 2 << 1);
        put_varint(&mut m, 1);
        put_varint(&mut m, 196 << 1);
        assert_eq!(m.len(), HEADER_LEN + 4, "gap 196 needs a 2-byte varint");
        let v = MessageView::parse(&m, 300).unwrap();
        assert_eq!((v.header.origin, v.header.step), (3, 9));
        let d = v.to_dense();
        assert_eq!((d[2], d[3], d[200]), (0.5, -0.5, 0.5));
        assert_eq!(d.iter().filter(|x| **x != 0.0).count(), 3);
    }

    #[test]
    fn every_kind_of_damage_is_a_typed_error() {
        let mut ok = header(Format::Sparse, 10, 1);
        put_varint(&mut ok, 4);
        assert!(MessageView::parse(&ok, 10).is_ok());
        assert_eq!(MessageView::parse(&ok[..5], 10).unwrap_err(), DecodeError::Short(5));
        assert!(matches!(MessageView::parse(&ok, 11), Err(DecodeError::ParamCount { .. })));
        let mut bad = ok.clone();
        bad[0] = b'X';
        assert!(matches!(MessageView::parse(&bad, 10), Err(DecodeError::Magic(_))));
        let mut bad = ok.clone();
        bad[2] = 7;
        assert_eq!(MessageView::parse(&bad, 10).unwrap_err(), DecodeError::Version(7));
        let mut bad = ok.clone();
        bad[3] = 9;
        assert_eq!(MessageView::parse(&bad, 10).unwrap_err(), DecodeError::UnknownFormat(9));
        let mut bad = header(Format::Sparse, 10, 1);
        put_varint(&mut bad, 40 << 1);
        assert!(matches!(MessageView::parse(&bad, 10), Err(DecodeError::IndexOutOfRange { index: 40, .. })));
        let mut bad = ok.clone();
        bad.push(0);
        assert_eq!(MessageView::parse(&bad, 10).unwrap_err(), DecodeError::Trailing(1));
        let bad = header(Format::Sparse, 10, 2);
        assert!(matches!(MessageView::parse(&bad, 10), Err(DecodeError::Truncated { .. })));
        let mut bad = header(Format::Sparse, 10, 1);
        bad.extend_from_slice(&[0xff; 11]);
        assert!(matches!(MessageView::parse(&bad, 10), Err(DecodeError::Varint(_))));
        let mut bad = header(Format::Bitmap, 5, 1);
        bad.extend_from_slice(&[0b11, 0]);
        assert_eq!(MessageView::parse(&bad, 5).unwrap_err(), DecodeError::BitmapCode(0));
        let mut bad = header(Format::Bitmap, 5, 1);
        bad.extend_from_slice(&[0, 0b0100]);
        assert_eq!(MessageView::parse(&bad, 5).unwrap_err(), DecodeError::BitmapPadding);
        let mut bad = header(Format::Bitmap, 5, 11);
        bad.extend_from_slice(&[0, 0]);
        assert!(matches!(MessageView::parse(&bad, 5), Err(DecodeError::EntryCount { .. })));
        let mut dense = Vec::new();
        encode_dense(&mut dense, &[1.0, f32::NAN], 0, 0);
        assert_eq!(MessageView::parse(&dense, 2).unwrap_err(), DecodeError::NotFinite(1));
        let mut bad = header(Format::Sparse, 10, 1);
        bad[8..12].copy_from_slice(&f32::NAN.to_le_bytes());
        put_varint(&mut bad, 4);
        assert!(matches!(MessageView::parse(&bad, 10), Err(DecodeError::Tau(_))));
        // Finite but huge: twice applied, 3e38 overflows a parameter to infinity.
        bad[8..12].copy_from_slice(&3e38f32.to_le_bytes());
        assert!(matches!(MessageView::parse(&bad, 10), Err(DecodeError::Tau(_))));
        bad[8..12].copy_from_slice(&MAX_TAU.to_le_bytes());
        assert!(MessageView::parse(&bad, 10).is_ok(), "the largest tau the threshold reaches passes");
    }

    #[test]
    fn dense_round_trip() {
        let mut m = Vec::new();
        encode_dense(&mut m, &[1.5, -2.0, 0.0], 1, 2);
        let v = MessageView::parse(&m, 3).unwrap();
        assert_eq!(v.to_dense(), vec![1.5, -2.0, 0.0]);
        let mut p = vec![1.0; 3];
        v.subtract_from(&mut p, 0.5);
        assert_eq!(p, vec![0.25, 2.0, 1.0]);
    }

    #[test]
    fn values_round_trip_and_their_damage_is_refused() {
        let mut m = Vec::new();
        encode_values(&mut m, 300, 0.5, &[(2, 1.5), (3, -2.0), (299, 0.25)], 1, 7);
        let v = MessageView::parse(&m, 300).unwrap();
        let d = v.to_dense();
        assert_eq!((d[2], d[3], d[299]), (0.75, -1.0, 0.125), "values times the scale in tau");
        assert_eq!(d.iter().filter(|x| **x != 0.0).count(), 3);
        assert!(matches!(MessageView::parse(&m, 299), Err(DecodeError::ParamCount { .. })));
        let mut bad = m.clone();
        bad.pop();
        assert!(matches!(MessageView::parse(&bad, 300), Err(DecodeError::Truncated { .. })));
        let mut bad = m.clone();
        bad.push(0);
        assert_eq!(MessageView::parse(&bad, 300).unwrap_err(), DecodeError::Trailing(1));
        let mut bad = m.clone();
        let last = bad.len() - 2;
        bad[last..].copy_from_slice(&half::f16::NAN.to_bits().to_le_bytes());
        assert_eq!(MessageView::parse(&bad, 300).unwrap_err(), DecodeError::NotFinite(299));
        let mut bad = m.clone();
        bad[8..12].copy_from_slice(&0f32.to_le_bytes());
        assert!(matches!(MessageView::parse(&bad, 300), Err(DecodeError::Tau(_))), "a zero scale");
        let mut far = Vec::new();
        encode_values(&mut far, 400, 1.0, &[(350, 1.0)], 0, 0);
        far[4..8].copy_from_slice(&300u32.to_le_bytes());
        assert!(matches!(
            MessageView::parse(&far, 300),
            Err(DecodeError::IndexOutOfRange { index: 350, .. })
        ));
    }

    #[test]
    fn half_formats_round_trip_within_their_precision() {
        let values = [1.0f32, -0.333, 1e-3, 60000.0, 1e6];
        for format in [Format::Half, Format::Bf16] {
            let mut m = Vec::new();
            encode_half(&mut m, format, &values, 0, 0);
            assert_eq!(m.len(), HEADER_LEN + 2 * values.len());
            let got = MessageView::parse(&m, values.len()).unwrap().to_dense();
            for (g, v) in got.iter().zip(values) {
                assert_eq!(*g, round_half(format, v), "{format:?} {v}");
            }
            assert!(got.iter().all(|g| g.is_finite()), "f16 saturates at 65504 rather than overflowing");
            let mut bad = m.clone();
            bad[HEADER_LEN..HEADER_LEN + 2].copy_from_slice(&[0x00, 0x7f]);
            if format == Format::Half {
                bad[HEADER_LEN..HEADER_LEN + 2].copy_from_slice(&half::f16::INFINITY.to_bits().to_le_bytes());
            } else {
                bad[HEADER_LEN..HEADER_LEN + 2].copy_from_slice(&half::bf16::NAN.to_bits().to_le_bytes());
            }
            assert_eq!(MessageView::parse(&bad, values.len()).unwrap_err(), DecodeError::NotFinite(0));
            assert!(matches!(
                MessageView::parse(&m[..m.len() - 1], values.len()),
                Err(DecodeError::PayloadLength { .. })
            ));
        }
    }

    #[test]
    fn the_slice_rounding_is_the_value_rounding() {
        let values: Vec<f32> = (0..200).map(|i| (i as f32 - 100.0) * 777.7 + 1e-3 * i as f32).collect();
        for format in [Format::Half, Format::Bf16] {
            let mut v = values.clone();
            round_half_slice(format, &mut v);
            for (r, x) in v.iter().zip(&values) {
                assert_eq!(*r, round_half(format, *x), "{format:?} {x}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn damaged_values_and_half_messages_never_panic(
            entries in proptest::collection::btree_map(0u32..500, -100.0f32..100.0, 0..60),
            flips in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()), 1..4),
            cut in proptest::prelude::any::<usize>(),
            half in proptest::prelude::any::<bool>(),
        ) {
            let mut m = Vec::new();
            if half {
                let dense: Vec<f32> = (0..500).map(|i| entries.get(&i).copied().unwrap_or(0.0)).collect();
                encode_half(&mut m, Format::Half, &dense, 0, 0);
            } else {
                let list: Vec<(u32, f32)> = entries.into_iter().collect();
                encode_values(&mut m, 500, 0.1, &list, 0, 0);
            }
            for (at, byte) in flips {
                let i = at % m.len();
                m[i] ^= byte;
            }
            m.truncate(cut % (m.len() + 1));
            if let Ok(view) = MessageView::parse(&m, 500) {
                let mut p = vec![0.0f32; 500];
                view.subtract_from(&mut p, 1.0);
                proptest::prop_assert!(p.iter().all(|x| x.is_finite()));
            }
        }
    }
}
