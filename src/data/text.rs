//! Text sources (`data.format = "text"`): a UTF-8 file or a folder of files (local or HDFS)
//! read as characters or bytes. The vocabulary is built from the training text (ids in the
//! order of the characters' code points, id 0 kept for a character the training text lacks);
//! examples are windows of `data.context` ids, each step's target the next id; the held-out
//! part (`data.holdout`) is a contiguous tail, not windows drawn at random, so no held-out
//! window overlaps a trained one. Ids stay u8 until a batch is formed.

use super::{DataError, DataShape, Dataset, Features, Targets};
use crate::job::{DataSpec, TextUnit};
use crate::nn::Shape;
use crate::storage::Location;

/// Distinct characters a `char` vocabulary holds, besides id 0 for the unknown.
pub const MAX_CHARS: usize = 255;

/// The ids of a text source. Saved with a model as `{"unit": "char", "chars": "\n !..."}`
/// (the characters of ids 1.., in order).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(into = "VocabularyRepr", from = "VocabularyRepr")]
pub struct Vocabulary {
    unit: TextUnit,
    /// `char` unit: the characters of ids 1.. in code-point order.
    chars: Vec<char>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct VocabularyRepr {
    unit: TextUnit,
    #[serde(default)]
    chars: String,
}

impl From<Vocabulary> for VocabularyRepr {
    fn from(v: Vocabulary) -> Self {
        VocabularyRepr { unit: v.unit, chars: v.chars.into_iter().collect() }
    }
}

impl From<VocabularyRepr> for Vocabulary {
    fn from(r: VocabularyRepr) -> Self {
        let mut chars: Vec<char> = r.chars.chars().collect();
        // Kept sorted and distinct, as `encode` searches it.
        chars.sort_unstable();
        chars.dedup();
        chars.truncate(MAX_CHARS);
        Vocabulary { unit: r.unit, chars }
    }
}

impl Vocabulary {
    /// The vocabulary of `text` (for `byte`, every byte value).
    pub fn build(unit: TextUnit, text: &[u8], file: &str) -> Result<Vocabulary, DataError> {
        let chars = match unit {
            TextUnit::Byte => Vec::new(),
            TextUnit::Char => {
                let s = utf8(text, file)?;
                let mut seen = std::collections::BTreeSet::new();
                seen.extend(s.chars());
                if seen.len() > MAX_CHARS {
                    return Err(DataError::Format {
                        file: file.into(),
                        message: format!(
                            "{} distinct characters; a character vocabulary holds at most {MAX_CHARS} \
                             (data.unit = \"byte\" reads any text as bytes)",
                            seen.len()
                        ),
                    });
                }
                seen.into_iter().collect()
            }
        };
        Ok(Vocabulary { unit, chars })
    }

    /// Ids, the unknown's included.
    pub fn len(&self) -> usize {
        match self.unit {
            TextUnit::Byte => 256,
            TextUnit::Char => self.chars.len() + 1,
        }
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// The ids of `text` (characters the vocabulary lacks become id 0).
    pub fn encode(&self, text: &[u8], file: &str) -> Result<Vec<u8>, DataError> {
        Ok(match self.unit {
            TextUnit::Byte => text.to_vec(),
            TextUnit::Char => utf8(text, file)?
                .chars()
                .map(|c| self.chars.binary_search(&c).map_or(0, |i| i as u8 + 1))
                .collect(),
        })
    }

    /// The text of `ids` (id 0, a character the training text lacked, as U+FFFD).
    pub fn decode(&self, ids: &[u8]) -> Vec<u8> {
        match self.unit {
            TextUnit::Byte => ids.to_vec(),
            TextUnit::Char => ids
                .iter()
                .map(|&i| {
                    if i == 0 {
                        '\u{fffd}'
                    } else {
                        self.chars.get(i as usize - 1).copied().unwrap_or('\u{fffd}')
                    }
                })
                .collect::<String>()
                .into_bytes(),
        }
    }

    /// One readable name per id (class names): `<unk>`, `a`, `\n`, `0x80`.
    pub fn names(&self) -> Vec<String> {
        match self.unit {
            TextUnit::Byte => (0..=255u8)
                .map(|b| {
                    if b.is_ascii_graphic() || b == b' ' {
                        (b as char).to_string()
                    } else {
                        format!("0x{b:02x}")
                    }
                })
                .collect(),
            TextUnit::Char => std::iter::once("<unk>".to_string())
                .chain(self.chars.iter().map(|c| c.escape_debug().to_string()))
                .collect(),
        }
    }
}

/// `text` as UTF-8, or an error naming the file, line and column of the first bad byte.
fn utf8<'a>(text: &'a [u8], file: &str) -> Result<&'a str, DataError> {
    std::str::from_utf8(text).map_err(|e| {
        let at = e.valid_up_to();
        let before = &text[..at];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = at - before.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1) + 1;
        DataError::Format {
            file: file.into(),
            message: format!(
                "line {line}, column {column}: byte 0x{:02x} is not UTF-8 (text sources read UTF-8 \
                 characters; data.unit = \"byte\" reads any bytes)",
                text[at]
            ),
        }
    })
}

/// The files behind a text location: the file itself, or a folder's files (not hidden, not
/// `_SUCCESS`-style markers) in name order.
pub fn files(location: &Location) -> Result<Vec<Location>, DataError> {
    if !location.stat()?.is_dir {
        return Ok(vec![location.clone()]);
    }
    super::csv::folder_files(location, "text files")
}

/// A location's text, its files one after another, each checked as the unit requires.
fn read(location: &Location, unit: TextUnit) -> Result<Vec<u8>, DataError> {
    let mut all = Vec::new();
    for f in files(location)? {
        let bytes = f.read()?;
        if unit == TextUnit::Char {
            utf8(&bytes, &f.to_string())?;
        }
        all.extend_from_slice(&bytes);
    }
    Ok(all)
}

/// The training text's vocabulary (`data.train`, whole: the held-out tail's characters count).
pub fn vocabulary(data: &DataSpec) -> Result<Vocabulary, DataError> {
    let train = Location::parse(&data.train)?;
    Vocabulary::build(data.unit, &read(&train, data.unit)?, &train.to_string())
}

/// Windows in `ids`: `(len - 1) / context`, each followed by its last target.
fn windows(ids: usize, context: usize) -> usize {
    ids.saturating_sub(1) / context.max(1)
}

/// Windows of the held-out tail of `n`.
fn held_windows(n: usize, fraction: f32) -> usize {
    ((n as f64) * fraction as f64).round() as usize
}

/// The rows of `location`: all of it, or without (`Train`) or only (`Held`) its tail.
pub fn load(location: &Location, data: &DataSpec, split: super::table::Split) -> Result<Dataset, DataError> {
    load_with(location, data, split, None)
}

/// [`load`] with a known vocabulary (a saved model's); `None`: the training text's.
pub fn load_with(
    location: &Location,
    data: &DataSpec,
    split: super::table::Split,
    known: Option<&Vocabulary>,
) -> Result<Dataset, DataError> {
    use super::table::Split;
    let is_train = Location::parse(&data.train).is_ok_and(|t| t.to_string() == location.to_string());
    let text = read(location, data.unit)?;
    let vocab = match known {
        Some(v) => v.clone(),
        None if is_train => Vocabulary::build(data.unit, &text, &location.to_string())?,
        None => vocabulary(data)?,
    };
    let ids = vocab.encode(&text, &location.to_string())?;
    let t = data.context.max(1);
    let n = windows(ids.len(), t);
    if n == 0 {
        return Err(DataError::NoInput {
            location: location.to_string(),
            message: format!(
                "{} ids, too few for one window of data.context = {t} ids and its next-id target",
                ids.len()
            ),
        });
    }
    let held = if data.holdout > 0.0 { held_windows(n, data.holdout) } else { 0 };
    let range = match split {
        Split::All => 0..n,
        Split::Train => 0..n - held,
        Split::Held => n - held..n,
    };
    let (start, end) = (range.start * t, range.end * t);
    Ok(Dataset {
        source: location.to_string(),
        features: Features::U8 { data: ids[start..end].to_vec(), scale: 1.0 },
        width: t,
        shape: Shape::Tokens { steps: t, vocab: vocab.len() },
        rows: range.len(),
        targets: Targets::Steps {
            next: ids[start + 1..end + 1].iter().map(|&i| i as u16).collect(),
            steps: t,
            classes: vocab.len(),
        },
        class_names: vocab.names(),
        lengths: Vec::new(),
    })
}

/// The training data's shape (`data.train` without its held-out tail).
pub fn describe(location: &Location, data: &DataSpec) -> Result<DataShape, DataError> {
    let ds = load(location, data, super::table::Split::Train)?;
    Ok(DataShape {
        rows: ds.rows,
        width: ds.width,
        input: ds.shape,
        outputs: ds.output_width(),
        classification: true,
        class_names: ds.class_names,
        columns: Vec::new(),
        label: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::table::Split;

    fn spec(dir: &std::path::Path, context: usize, holdout: f32) -> DataSpec {
        DataSpec {
            train: dir.join("train").to_string_lossy().into_owned(),
            format: crate::job::DataFormat::Text,
            context,
            holdout,
            ..DataSpec::default()
        }
    }

    #[test]
    fn windows_of_ids_with_next_id_targets_and_a_contiguous_tail() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("train")).unwrap();
        // Two files, read in name order.
        std::fs::write(dir.path().join("train/b.txt"), "cabbage\n").unwrap();
        std::fs::write(dir.path().join("train/a.txt"), "abc").unwrap();
        std::fs::write(dir.path().join("train/.hidden"), "zzz").unwrap();
        let d = spec(dir.path(), 3, 0.34);
        let loc = Location::parse(&d.train).unwrap();
        // "abccabbage\n": vocabulary \n a b c e g (+ unknown) = 7 ids.
        let all = load(&loc, &d, Split::All).unwrap();
        assert_eq!(all.shape, Shape::Tokens { steps: 3, vocab: 7 });
        assert_eq!(all.class_names[..3], ["<unk>".to_string(), "\\n".into(), "a".into()]);
        assert_eq!(all.rows, 3, "(11 - 1) / 3 windows");
        let Features::U8 { data, scale } = &all.features else { panic!() };
        assert_eq!((&data[..], *scale), (&[2u8, 3, 4, 4, 2, 3, 3, 2, 6][..], 1.0));
        let Targets::Steps { next, steps, classes } = &all.targets else { panic!() };
        assert_eq!((&next[..], *steps, *classes), (&[3u16, 4, 4, 2, 3, 3, 2, 6, 5][..], 3, 7));
        let (train, held) = (load(&loc, &d, Split::Train).unwrap(), load(&loc, &d, Split::Held).unwrap());
        assert_eq!((train.rows, held.rows), (2, 1));
        let Features::U8 { data, .. } = &held.features else { panic!() };
        assert_eq!(&data[..], &[3, 2, 6], "the last window, not one drawn at random");
    }

    #[test]
    fn test_text_uses_the_training_vocabulary_and_bad_input_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("train"), "abab\nabab").unwrap();
        std::fs::write(dir.path().join("test"), "abz\nba").unwrap();
        let d = spec(dir.path(), 2, 0.0);
        let test = load(&Location::local(dir.path().join("test")), &d, Split::All).unwrap();
        let Features::U8 { data, .. } = &test.features else { panic!() };
        assert_eq!(&data[..], &[2, 3, 0, 1], "z is unknown: id 0");
        // Bad UTF-8 on line 2, column 3.
        std::fs::write(dir.path().join("train"), b"ab\nab\xffc").unwrap();
        let e = load(&Location::parse(&d.train).unwrap(), &d, Split::All).unwrap_err().to_string();
        assert!(e.contains("train: line 2, column 3: byte 0xff is not UTF-8"), "{e}");
        // Bytes read anything.
        let bytes = DataSpec { unit: TextUnit::Byte, ..d.clone() };
        let ds = load(&Location::parse(&d.train).unwrap(), &bytes, Split::All).unwrap();
        assert_eq!(ds.shape, Shape::Tokens { steps: 2, vocab: 256 });
        // Too short for one window.
        std::fs::write(dir.path().join("train"), "ab").unwrap();
        let short = DataSpec { context: 8, ..d.clone() };
        let e = load(&Location::parse(&d.train).unwrap(), &short, Split::All).unwrap_err().to_string();
        assert!(e.contains("2 ids, too few for one window of data.context = 8"), "{e}");
        // More characters than a vocabulary holds.
        let wide: String = (0..300u32).filter_map(|c| char::from_u32(0x4e00 + c)).collect();
        std::fs::write(dir.path().join("train"), wide).unwrap();
        let e = load(&Location::parse(&d.train).unwrap(), &d, Split::All).unwrap_err().to_string();
        assert!(e.contains("300 distinct characters; a character vocabulary holds at most 255"), "{e}");
    }
}
