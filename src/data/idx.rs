//! The IDX format of MNIST and Fashion-MNIST: raw or gzip-compressed, every header field checked.

use std::io::Read;

use super::{DataError, Dataset, Features, Targets};
use crate::nn::Shape;
use crate::storage::Location;

const IMAGES: &str = "images-idx3-ubyte";
const LABELS: &str = "labels-idx1-ubyte";

/// Class names of the built-in Fashion-MNIST demo subset.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// The images and labels files a location stands for.
pub(super) fn resolve(location: &Location) -> Result<(Location, Location), DataError> {
    match location.stat() {
        Ok(entry) if entry.is_dir => {
            let entries = location.list()?;
            let pick = |kind: &str| -> Result<Location, DataError> {
                let found: Vec<&Location> = entries
                    .iter()
                    .filter(|e| !e.is_dir && e.location.file_name().contains(kind))
                    .map(|e| &e.location)
                    .collect();
                match found.as_slice() {
                    [one] => Ok((*one).clone()),
                    [] => Err(DataError::NoInput {
                        location: location.to_string(),
                        message: format!("no *{kind}[.gz] file in this directory"),
                    }),
                    many => Err(DataError::NoInput {
                        location: location.to_string(),
                        message: format!(
                            "several *{kind} files ({}); name one split by its prefix, e.g. {}",
                            many.iter().map(|l| l.file_name()).collect::<Vec<_>>().join(", "),
                            location.join("train")
                        ),
                    }),
                }
            };
            Ok((pick(IMAGES)?, pick(LABELS)?))
        }
        Ok(_) => Err(DataError::NoInput {
            location: location.to_string(),
            message: "is a file; give the directory or the prefix of the *-images-idx3-ubyte and \
                      *-labels-idx1-ubyte pair"
                .into(),
        }),
        Err(e) if e.is_not_found() => {
            let find = |kind: &str| -> Result<Option<Location>, DataError> {
                for suffix in [format!("-{kind}.gz"), format!("-{kind}")] {
                    let candidate = location.with_suffix(&suffix);
                    if candidate.exists()? {
                        return Ok(Some(candidate));
                    }
                }
                Ok(None)
            };
            match (find(IMAGES)?, find(LABELS)?) {
                (Some(images), Some(labels)) => Ok((images, labels)),
                (images, _) => Err(DataError::NoInput {
                    location: location.to_string(),
                    message: format!(
                        "no IDX data: expected a directory, or the files {0}-{IMAGES}[.gz] and \
                         {0}-{LABELS}[.gz]{1}",
                        location,
                        if images.is_some() { " (the labels file is missing)" } else { "" }
                    ),
                }),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Decompresses gzip data (recognised by its magic bytes) or returns the bytes unchanged.
pub fn maybe_gunzip(file: &str, bytes: Vec<u8>) -> Result<Vec<u8>, DataError> {
    if bytes.len() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b {
        let mut out = Vec::with_capacity(bytes.len() * 4);
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .map_err(|e| DataError::Format { file: file.into(), message: format!("bad gzip data: {e}") })?;
        Ok(out)
    } else {
        Ok(bytes)
    }
}

/// A parsed IDX array of unsigned bytes.
#[derive(Debug)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Parses an IDX file holding unsigned bytes with `expected_dims` dimensions.
pub fn parse(file: &str, bytes: &[u8], expected_dims: usize) -> Result<IdxArray, DataError> {
    let fail = |message: String| DataError::Format { file: file.into(), message };
    if bytes.len() < 4 {
        return Err(fail(format!("too short for an IDX header ({} bytes)", bytes.len())));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(fail(format!(
            "wrong magic number {:02x}{:02x}{:02x}{:02x}: not an IDX file",
            bytes[0], bytes[1], bytes[2], bytes[3]
        )));
    }
    if bytes[2] != 0x08 {
        return Err(fail(format!(
            "element type 0x{:02x} is not supported; expected 0x08 (unsigned byte)",
            bytes[2]
        )));
    }
    let ndims = bytes[3] as usize;
    if ndims != expected_dims {
        return Err(fail(format!("has {ndims} dimensions; expected {expected_dims}")));
    }
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err(fail(format!("truncated header: {} bytes, expected {header}", bytes.len())));
    }
    let dims: Vec<usize> = (0..ndims)
        .map(|i| {
            u32::from_be_bytes([bytes[4 + 4 * i], bytes[5 + 4 * i], bytes[6 + 4 * i], bytes[7 + 4 * i]])
                as usize
        })
        .collect();
    let expected = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let Some(expected) = expected else {
        return Err(fail(format!("dimensions {dims:?} overflow")));
    };
    let found = bytes.len() - header;
    if found < expected {
        return Err(fail(format!(
            "truncated: dimensions {dims:?} need {expected} data bytes, found {found}"
        )));
    }
    if found > expected {
        return Err(fail(format!(
            "{} unexpected bytes after the {expected} data bytes of dimensions {dims:?}",
            found - expected
        )));
    }
    Ok(IdxArray { dims, data: bytes[header..].to_vec() })
}

/// Reads the image header and the (small) label file: the shape without the pixels.
pub fn describe(images: &Location, labels: &Location) -> Result<super::DataShape, DataError> {
    let img_name = images.to_string();
    let mut head = [0u8; 16];
    let raw = images.open()?;
    let mut peek = std::io::BufReader::new(raw);
    let gz = {
        use std::io::BufRead;
        let buf = peek
            .fill_buf()
            .map_err(|e| DataError::Format { file: img_name.clone(), message: e.to_string() })?;
        buf.len() >= 2 && buf[0] == 0x1f && buf[1] == 0x8b
    };
    let mut reader: Box<dyn Read> =
        if gz { Box::new(flate2::read::MultiGzDecoder::new(peek)) } else { Box::new(peek) };
    // The magic first, so a file that is not IDX at all says so (not "too short").
    let short = |e: std::io::Error| DataError::Format {
        file: img_name.clone(),
        message: if gz {
            format!("bad gzip data: {e}")
        } else {
            format!("cannot read the 16-byte IDX header: {e}")
        },
    };
    reader.read_exact(&mut head[..4]).map_err(short)?;
    if head[0] != 0 || head[1] != 0 {
        return Err(DataError::Format {
            file: img_name,
            message: format!(
                "wrong magic number {:02x}{:02x}{:02x}{:02x}: not an IDX file",
                head[0], head[1], head[2], head[3]
            ),
        });
    }
    if head[2] != 0x08 || head[3] != 3 {
        return Err(DataError::Format {
            file: img_name,
            message: format!("not an IDX image file (header {:02x?}); expected 00 00 08 03", &head[..4]),
        });
    }
    reader.read_exact(&mut head[4..]).map_err(short)?;
    let dim = |i: usize| {
        u32::from_be_bytes([head[4 + 4 * i], head[5 + 4 * i], head[6 + 4 * i], head[7 + 4 * i]]) as usize
    };
    let (rows, width) = (dim(0), dim(1) * dim(2));
    if width == 0 {
        return Err(DataError::Format {
            file: img_name,
            message: format!("images of {}x{} pixels hold no values", dim(1), dim(2)),
        });
    }
    let lbl_name = labels.to_string();
    let lbl = parse(&lbl_name, &maybe_gunzip(&lbl_name, labels.read()?)?, 1)?;
    if lbl.dims[0] != rows {
        return Err(DataError::Mismatch(format!(
            "{img_name} has {rows} images but {lbl_name} has {} labels",
            lbl.dims[0]
        )));
    }
    let classes = (lbl.data.iter().copied().max().unwrap_or(0) as usize + 1).max(2);
    Ok(super::DataShape {
        rows,
        width,
        input: Shape::image(1, dim(1), dim(2)),
        outputs: classes,
        classification: true,
        class_names: class_names(images, classes),
        columns: Vec::new(),
        label: String::new(),
    })
}

fn class_names(images: &Location, classes: usize) -> Vec<String> {
    if matches!(images, Location::Builtin(n) if n.starts_with("fashion-mnist")) {
        FASHION_MNIST_CLASSES.iter().map(|s| s.to_string()).collect()
    } else {
        (0..classes).map(|c| c.to_string()).collect()
    }
}

/// Loads an image file and its label file into a dataset; images stay u8.
pub fn load(images: &Location, labels: &Location) -> Result<Dataset, DataError> {
    let (img_name, lbl_name) = (images.to_string(), labels.to_string());
    let img = parse(&img_name, &maybe_gunzip(&img_name, images.read()?)?, 3)?;
    let lbl = parse(&lbl_name, &maybe_gunzip(&lbl_name, labels.read()?)?, 1)?;
    let rows = img.dims[0];
    if lbl.dims[0] != rows {
        return Err(DataError::Mismatch(format!(
            "{img_name} has {rows} images but {lbl_name} has {} labels",
            lbl.dims[0]
        )));
    }
    if rows == 0 {
        return Err(DataError::Format { file: img_name, message: "holds no images".into() });
    }
    let width = img.dims[1] * img.dims[2];
    if width == 0 {
        return Err(DataError::Format {
            file: img_name,
            message: format!("images of {}x{} pixels hold no values", img.dims[1], img.dims[2]),
        });
    }
    let labels: Vec<u32> = lbl.data.iter().map(|&l| l as u32).collect();
    let classes = (labels.iter().copied().max().unwrap_or(0) as usize + 1).max(2);
    let class_names = class_names(images, classes);
    Ok(Dataset {
        source: images.to_string(),
        features: Features::U8 { data: img.data, scale: 1.0 / 255.0 },
        width,
        shape: Shape::image(1, img.dims[1], img.dims[2]),
        rows,
        targets: Targets::Classes { labels, classes },
        class_names,
        lengths: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn parses_a_valid_array() {
        let a = parse("f", &idx(&[2, 2, 2], &[1, 2, 3, 4, 5, 6, 7, 8]), 3).unwrap();
        assert_eq!(a.dims, vec![2, 2, 2]);
        assert_eq!(a.data[7], 8);
    }

    #[test]
    fn every_corruption_is_named() {
        let e = parse("f.idx", &[0x12, 0x34, 8, 3], 3).unwrap_err().to_string();
        assert!(e.starts_with("f.idx: wrong magic number 12340803"), "{e}");
        let e = parse("f", &idx(&[2, 2, 2], &[1, 2, 3]), 3).unwrap_err().to_string();
        assert!(e.contains("truncated") && e.contains("need 8 data bytes, found 3"), "{e}");
        let e = parse("f", &idx(&[1, 1, 1], &[1, 2]), 3).unwrap_err().to_string();
        assert!(e.contains("1 unexpected bytes"), "{e}");
        let e = parse("f", &idx(&[3], &[1, 2, 3]), 3).unwrap_err().to_string();
        assert!(e.contains("has 1 dimensions; expected 3"), "{e}");
        let mut v = idx(&[1], &[1]);
        v[2] = 0x0D;
        assert!(parse("f", &v, 1).unwrap_err().to_string().contains("0x0d"));
        assert!(parse("f", &[0, 0], 1).unwrap_err().to_string().contains("too short"));
        let e = maybe_gunzip("g.gz", vec![0x1f, 0x8b, 1, 2, 3]).unwrap_err().to_string();
        assert!(e.starts_with("g.gz: bad gzip data"), "{e}");
    }

    #[test]
    fn builtin_demo_loads_with_class_names() {
        let ds = crate::data::load(
            &Location::parse("builtin:fashion-mnist-demo/test").unwrap(),
            &Default::default(),
            None,
        )
        .unwrap();
        assert_eq!(ds.rows, 2000);
        assert_eq!(ds.width, 784);
        assert_eq!(ds.class_names[9], "Ankle boot");
        let Targets::Classes { classes, .. } = ds.targets else { panic!() };
        assert_eq!(classes, 10);
    }

    #[test]
    fn describe_matches_load() {
        let loc = Location::parse("builtin:fashion-mnist-demo/train").unwrap();
        let spec = crate::job::DataSpec { train: loc.to_string(), ..Default::default() };
        let spec = crate::job::ResolvedData::resolve(spec).unwrap();
        let shape = crate::data::describe(&spec, 0, None).unwrap();
        let ds = crate::data::load(&loc, &Default::default(), None).unwrap();
        assert_eq!((shape.rows, shape.width, shape.outputs), (ds.rows, ds.width, ds.output_width()));
        assert_eq!(shape.to_string(), "10000 examples x 784 features, 10 classes");
    }

    #[test]
    fn count_mismatch_and_missing_files_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| Location::local(dir.path().join(n));
        p("a-images-idx3-ubyte").write_atomic(&idx(&[2, 1, 1], &[1, 2])).unwrap();
        p("a-labels-idx1-ubyte").write_atomic(&idx(&[3], &[1, 2, 3])).unwrap();
        let e = crate::data::load(&p("a"), &Default::default(), None).unwrap_err().to_string();
        assert!(e.contains("has 2 images but") && e.contains("has 3 labels"), "{e}");
        let e = crate::data::load(&p("nothing"), &Default::default(), None).unwrap_err().to_string();
        assert!(e.contains("no IDX data"), "{e}");
        p("b-images-idx3-ubyte").write_atomic(&idx(&[1, 1, 1], &[1])).unwrap();
        let e = crate::data::load(&Location::local(dir.path()), &Default::default(), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("several"), "{e}");
        let e = crate::data::load(&p("b"), &Default::default(), None).unwrap_err().to_string();
        assert!(e.contains("labels file is missing"), "{e}");
    }
}
