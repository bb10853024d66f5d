//! Sliding-window geometry shared by convolutions and pooling: kernel, stride and padding
//! given in a job file, resolved against an input's height and width.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A size for both spatial dimensions: one number, or `[height, width]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pair(pub usize, pub usize);

impl Pair {
    pub fn square(n: usize) -> Pair {
        Pair(n, n)
    }
}

impl fmt::Display for Pair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.0, self.1)
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PairRepr {
    One(usize),
    Two([usize; 2]),
}

impl<'de> Deserialize<'de> for Pair {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Pair, D::Error> {
        match PairRepr::deserialize(d)
            .map_err(|_| serde::de::Error::custom("expected a positive integer or [height, width]"))?
        {
            PairRepr::One(n) => Ok(Pair(n, n)),
            PairRepr::Two([h, w]) => Ok(Pair(h, w)),
        }
    }
}

impl Serialize for Pair {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 == self.1 { s.serialize_u64(self.0 as u64) } else { [self.0, self.1].serialize(s) }
    }
}

/// How the input's border is padded with zeros.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Padding {
    /// Output size = ceil(input / stride); the padding is split with the extra pixel after.
    Same,
    /// No padding: only windows that fit inside the input.
    #[default]
    Valid,
    /// This many zeros on each side (`[rows, columns]` or one number).
    Explicit(Pair),
}

impl fmt::Display for Padding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Padding::Same => f.write_str("same"),
            Padding::Valid => f.write_str("valid"),
            Padding::Explicit(p) if p.0 == p.1 => write!(f, "pad {}", p.0),
            Padding::Explicit(p) => write!(f, "pad {p}"),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PaddingRepr {
    Name(String),
    Pixels(usize),
    Pair([usize; 2]),
}

impl<'de> Deserialize<'de> for Padding {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Padding, D::Error> {
        let expected = "expected \"same\", \"valid\", a number of pixels or [rows, columns]";
        match PaddingRepr::deserialize(d).map_err(|_| serde::de::Error::custom(expected))? {
            PaddingRepr::Name(n) if n == "same" => Ok(Padding::Same),
            PaddingRepr::Name(n) if n == "valid" => Ok(Padding::Valid),
            PaddingRepr::Name(n) => {
                Err(serde::de::Error::custom(format!("unknown padding '{n}'; {expected}")))
            }
            PaddingRepr::Pixels(p) => Ok(Padding::Explicit(Pair(p, p))),
            PaddingRepr::Pair([a, b]) => Ok(Padding::Explicit(Pair(a, b))),
        }
    }
}

impl Serialize for Padding {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Padding::Same => s.serialize_str("same"),
            Padding::Valid => s.serialize_str("valid"),
            Padding::Explicit(p) => p.serialize(s),
        }
    }
}

/// A window resolved against an input of `h` x `w`: kernel, stride, the padding before the
/// first row and column, and the output size. Padding after is whatever the output needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub pt: usize,
    pub pl: usize,
    pub h: usize,
    pub w: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Window {
    pub fn resolve(
        kernel: Pair,
        stride: Pair,
        padding: Padding,
        h: usize,
        w: usize,
    ) -> Result<Window, String> {
        let axis = |n: usize, k: usize, s: usize, pad: Option<usize>| -> Option<(usize, usize)> {
            match pad {
                None => {
                    // same
                    let out = n.div_ceil(s);
                    let total = ((out - 1) * s + k).saturating_sub(n);
                    Some((total / 2, out))
                }
                Some(p) => {
                    let padded = n + 2 * p;
                    (padded >= k).then(|| (p, (padded - k) / s + 1))
                }
            }
        };
        let (ph, pw) = match padding {
            Padding::Same => (None, None),
            Padding::Valid => (Some(0), Some(0)),
            Padding::Explicit(Pair(a, b)) => (Some(a), Some(b)),
        };
        match (axis(h, kernel.0, stride.0, ph), axis(w, kernel.1, stride.1, pw)) {
            (Some((pt, oh)), Some((pl, ow))) => {
                Ok(Window { kh: kernel.0, kw: kernel.1, sh: stride.0, sw: stride.1, pt, pl, h, w, oh, ow })
            }
            _ => Err("is smaller than its window".into()),
        }
    }

    /// The input row of output row `oy` and kernel row `ky`, if inside the input.
    #[inline]
    pub fn in_row(&self, oy: usize, ky: usize) -> Option<usize> {
        (oy * self.sh + ky).checked_sub(self.pt).filter(|&r| r < self.h)
    }

    #[inline]
    pub fn in_col(&self, ox: usize, kx: usize) -> Option<usize> {
        (ox * self.sw + kx).checked_sub(self.pl).filter(|&c| c < self.w)
    }
}

/// Range checks of a kernel / stride / padding triple, as (field, message).
pub fn check(kernel: Pair, stride: Pair, padding: Padding, errors: &mut Vec<(&'static str, String)>) {
    if !(1..=64).contains(&kernel.0) || !(1..=64).contains(&kernel.1) {
        errors.push(("kernel", format!("must be 1..=64 (got {kernel})")));
    }
    if !(1..=64).contains(&stride.0) || !(1..=64).contains(&stride.1) {
        errors.push(("stride", format!("must be 1..=64 (got {stride})")));
    }
    if let Padding::Explicit(p) = padding
        && (p.0 >= kernel.0 || p.1 >= kernel.1)
    {
        errors.push(("padding", format!("must be smaller than the kernel {kernel} (got {p})")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_valid_and_explicit_sizes() {
        let w = Window::resolve(Pair(3, 3), Pair(1, 1), Padding::Same, 28, 28).unwrap();
        assert_eq!((w.oh, w.ow, w.pt, w.pl), (28, 28, 1, 1));
        let w = Window::resolve(Pair(2, 2), Pair(2, 2), Padding::Same, 7, 7).unwrap();
        assert_eq!((w.oh, w.pt), (4, 0), "the extra padding row goes after");
        let w = Window::resolve(Pair(5, 5), Pair(1, 1), Padding::Valid, 14, 14).unwrap();
        assert_eq!(w.oh, 10);
        let w = Window::resolve(Pair(3, 3), Pair(2, 2), Padding::Explicit(Pair(1, 1)), 28, 28).unwrap();
        assert_eq!(w.oh, 14);
        assert!(Window::resolve(Pair(2, 2), Pair(2, 2), Padding::Valid, 1, 1).is_err());
        assert_eq!(w.in_row(0, 0), None);
        assert_eq!(w.in_row(0, 1), Some(0));
    }

    #[test]
    fn serde_forms() {
        #[derive(Deserialize, Serialize)]
        struct T {
            k: Pair,
            p: Padding,
        }
        let t: T = serde_json::from_str(r#"{"k": [3, 5], "p": "same"}"#).unwrap();
        assert_eq!((t.k, t.p), (Pair(3, 5), Padding::Same));
        let t: T = serde_json::from_str(r#"{"k": 2, "p": 1}"#).unwrap();
        assert_eq!((t.k, t.p), (Pair(2, 2), Padding::Explicit(Pair(1, 1))));
        assert_eq!(serde_json::to_string(&t).unwrap(), r#"{"k":2,"p":1}"#);
        let e = serde_json::from_str::<T>(r#"{"k": 2, "p": "full"}"#).err().unwrap().to_string();
        assert!(e.contains("unknown padding 'full'"), "{e}");
    }
}
