//! The one packing of a selected entry: its index in the low 31 bits, the sign of its quantum
//! in bit 31 (set: -tau). Backends fill selection lists in this form; the encoder packs them.

/// Bit marking a negative quantum.
pub const NEG: u32 = 1 << 31;

/// The most parameters a message can address.
pub const MAX_PARAMS: usize = NEG as usize;

#[inline(always)]
pub fn pack(index: usize, negative: bool) -> u32 {
    debug_assert!(index < MAX_PARAMS);
    index as u32 | if negative { NEG } else { 0 }
}

#[inline(always)]
pub fn index(q: u32) -> usize {
    (q & !NEG) as usize
}

#[inline(always)]
pub fn is_negative(q: u32) -> bool {
    q & NEG != 0
}

/// The quantum's value: +tau or -tau.
#[inline(always)]
pub fn value(q: u32, tau: f32) -> f32 {
    if is_negative(q) { -tau } else { tau }
}
