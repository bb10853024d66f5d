//! CSV input: one file, or a directory of files read in name order; plain or gzip; header,
//! delimiter, quote and skipped lines as configured. Records stream: memory stays bounded
//! however large the input.

use std::io::{BufRead, BufReader, Read};

use serde::{Deserialize, Serialize};

use super::DataError;
use crate::storage::Location;

/// Whether the first record (after skipped lines) names the columns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Header {
    /// Decided from the first record: a header when none of its fields is a number. Every
    /// reader (`analyze`, `transform`, training, each worker) decides the same way.
    #[default]
    Auto,
    Yes,
    No,
}

impl Serialize for Header {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Header::Auto => s.serialize_str("auto"),
            Header::Yes => s.serialize_bool(true),
            Header::No => s.serialize_bool(false),
        }
    }
}

impl<'de> Deserialize<'de> for Header {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Header, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Given {
            Bool(bool),
            Text(String),
        }
        match Given::deserialize(d)? {
            Given::Bool(true) => Ok(Header::Yes),
            Given::Bool(false) => Ok(Header::No),
            Given::Text(t) => match t.as_str() {
                "auto" => Ok(Header::Auto),
                "true" => Ok(Header::Yes),
                "false" => Ok(Header::No),
                other => Err(serde::de::Error::custom(format!("'{other}' is not one of: auto, true, false"))),
            },
        }
    }
}

/// Whether `first` (the first record) is a header: none of its fields is a number. A header
/// of names never parses as numbers; a row of numeric data always has one.
pub fn looks_like_header(first: &[String]) -> bool {
    !first.is_empty() && !first.iter().any(|f| f.trim().parse::<f64>().is_ok())
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CsvOptions {
    /// The first record (after skipped lines) names the columns: `auto` (decided from it),
    /// `true` or `false`.
    pub header: Header,
    pub delimiter: char,
    pub quote: char,
    /// Records skipped at the start of every file, before the header.
    pub skip_lines: usize,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions { header: Header::Auto, delimiter: ',', quote: '"', skip_lines: 0 }
    }
}

impl CsvOptions {
    pub fn check(&self) -> Result<(), String> {
        for (name, c) in [("delimiter", self.delimiter), ("quote", self.quote)] {
            if !c.is_ascii() || c == '\n' || c == '\r' {
                return Err(format!(
                    "csv.{name} must be one ASCII character other than a line break (got {c:?})"
                ));
            }
        }
        if self.delimiter == self.quote {
            return Err("csv.delimiter and csv.quote must differ".into());
        }
        Ok(())
    }
}

/// One record as read, with where it came from.
#[derive(Clone, Debug)]
pub struct RawRecord {
    pub fields: csv::ByteRecord,
    /// Index into [`CsvSource::files`].
    pub file: u32,
    /// 1-based line number in that file.
    pub line: u64,
}

/// A CSV reader over one file's (decompressed, partitioned) bytes.
type FileReader = csv::Reader<Box<dyn Read + Send>>;

/// The files behind a CSV location.
#[derive(Clone, Debug)]
pub struct CsvSource {
    pub files: Vec<Location>,
    pub options: CsvOptions,
    /// Read only part `.0` of `.1` (see [`CsvSource::partition`]).
    part: Option<(usize, usize)>,
    /// The first record of the first file, when `header = auto` decided it is a header.
    pub detected_header: Option<Vec<String>>,
}

pub(crate) fn is_data_file(name: &str) -> bool {
    !(name.starts_with('.') || name.starts_with('_') || name.ends_with(".crc"))
}

/// A folder's data files (not hidden, not `_SUCCESS`-style markers, not checksums) in name
/// order; none is an error saying the folder holds no `what`.
pub(crate) fn folder_files(location: &Location, what: &str) -> Result<Vec<Location>, DataError> {
    let mut files: Vec<Location> = location
        .list()?
        .into_iter()
        .filter(|e| !e.is_dir && is_data_file(&e.location.file_name()))
        .map(|e| e.location)
        .collect();
    files.sort_by_key(|f| f.file_name());
    if files.is_empty() {
        return Err(DataError::NoInput {
            location: location.to_string(),
            message: format!("the folder holds no {what}"),
        });
    }
    Ok(files)
}

impl CsvSource {
    pub fn open(location: &Location, options: &CsvOptions) -> Result<CsvSource, DataError> {
        options.check().map_err(|m| DataError::NoInput { location: location.to_string(), message: m })?;
        let entry = location.stat()?;
        let files = if entry.is_dir {
            let files: Vec<Location> = location
                .list()?
                .into_iter()
                .filter(|e| !e.is_dir && is_data_file(&e.location.file_name()))
                .map(|e| e.location)
                .collect();
            if files.is_empty() {
                return Err(DataError::NoInput {
                    location: location.to_string(),
                    message: "the directory holds no data files".into(),
                });
            }
            files
        } else {
            vec![location.clone()]
        };
        let mut source = CsvSource { files, options: options.clone(), part: None, detected_header: None };
        if options.header == Header::Auto {
            let first = source.first_record()?;
            let header = first.as_deref().is_some_and(looks_like_header);
            source.options.header = if header { Header::Yes } else { Header::No };
            if header {
                source.detected_header = first;
            }
        }
        Ok(source)
    }

    /// Whether the files' first record (after skipped lines) is a header (decided at open).
    pub fn has_header(&self) -> bool {
        self.options.header == Header::Yes
    }

    /// The first record of the first file after the skipped lines, if any.
    fn first_record(&self) -> Result<Option<Vec<String>>, DataError> {
        let Some((mut r, _)) = self.whole().reader(0)? else { return Ok(None) };
        let mut rec = csv::StringRecord::new();
        for _ in 0..=self.options.skip_lines {
            if !r.read_record(&mut rec).map_err(|e| csv_error(&self.files[0], e))? {
                return Ok(None);
            }
        }
        Ok(Some(rec.iter().map(|s| s.trim().to_string()).collect()))
    }

    /// One line for people when `header = auto` took the first record as a header.
    pub fn header_note(&self) -> Option<String> {
        let names = self.detected_header.as_ref()?;
        let shown: Vec<&str> = names.iter().take(6).map(String::as_str).collect();
        let more = if names.len() > shown.len() { ", ..." } else { "" };
        Some(format!(
            "the first row of {} is read as a header (none of its fields is a number): {}{more}; \
             if it is data, say so (--no-header, or data.csv.header = false)",
            self.files[0],
            shown.join(", ")
        ))
    }

    /// Part `index` of `count` of this source, for executors that split one input between
    /// tasks: a directory splits into contiguous runs of files; a single plain file into byte
    /// ranges cut at line starts (as Hadoop's text input does, so a quoted field must not hold
    /// a line break); a gzip file cannot be split and goes whole to part 0. Reading every part
    /// in order gives exactly the records of the whole.
    pub fn partition(&self, index: usize, count: usize) -> CsvSource {
        CsvSource { part: (count > 1).then_some((index.min(count - 1), count)), ..self.clone() }
    }

    pub fn file_name(&self, file: u32) -> String {
        self.files.get(file as usize).map(|l| l.to_string()).unwrap_or_default()
    }

    /// A reader of this part's share of one file (`None`: the share is empty), and the lines
    /// of the file before the share. Each file is opened once: the gzip sniff and the byte
    /// range both work on the same buffered stream.
    fn reader(&self, file: usize) -> Result<Option<(FileReader, u64)>, DataError> {
        let loc = &self.files[file];
        let lone = self.files.len() == 1;
        if let Some((i, n)) = self.part
            && !lone
        {
            let f = self.files.len();
            if !(i * f / n..(i + 1) * f / n).contains(&file) {
                return Ok(None);
            }
        }
        let mut buffered = BufReader::with_capacity(1 << 20, loc.open()?);
        let gz = {
            let head = buffered.fill_buf().map_err(|e| io(loc, e))?;
            head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b
        };
        let mut lines_before = 0;
        let stream: Box<dyn Read + Send> = match self.part {
            // A gzip stream cannot be split: part 0 reads it whole.
            Some((i, _)) if lone && gz && i > 0 => return Ok(None),
            Some((i, n)) if lone && !gz => {
                let size = loc.stat()?.len;
                let (start, end) = (size * i as u64 / n as u64, size * (i as u64 + 1) / n as u64);
                let (skipped, lines) = skip_to_line(&mut buffered, start).map_err(|e| io(loc, e))?;
                lines_before = lines;
                Box::new(LineRange {
                    inner: Box::new(buffered),
                    left: end.saturating_sub(skipped),
                    done: false,
                    at_line_start: true,
                })
            }
            _ if gz => Box::new(flate2::read::MultiGzDecoder::new(buffered)),
            _ => Box::new(buffered),
        };
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(self.options.delimiter as u8)
            .quote(self.options.quote as u8)
            .buffer_capacity(1 << 20)
            .from_reader(stream);
        Ok(Some((reader, lines_before)))
    }

    /// The header of the first file (after skipped lines), when the options say there is one.
    pub fn header(&self) -> Result<Option<Vec<String>>, DataError> {
        if !self.has_header() {
            return Ok(None);
        }
        let Some((mut r, _)) = self.whole().reader(0)? else { return Ok(None) };
        let mut rec = csv::StringRecord::new();
        for _ in 0..=self.options.skip_lines {
            if !r.read_record(&mut rec).map_err(|e| csv_error(&self.files[0], e))? {
                return Err(DataError::Format {
                    file: self.files[0].to_string(),
                    message: "is empty: no header".into(),
                });
            }
        }
        Ok(Some(rec.iter().map(|s| s.trim().to_string()).collect()))
    }

    /// The first `n` records of the first file, as text (schema inference, analysis samples).
    pub fn sample(&self, n: usize) -> Result<Vec<Vec<String>>, DataError> {
        let mut out = Vec::new();
        for rec in self.records() {
            let rec = rec?;
            out.push(rec.fields.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect());
            if out.len() >= n {
                break;
            }
        }
        Ok(out)
    }

    /// The same files, unpartitioned.
    fn whole(&self) -> CsvSource {
        CsvSource { part: None, ..self.clone() }
    }

    /// Every data record of every file (of this part), in order.
    pub fn records(&self) -> Records<'_> {
        Records { source: self, file: 0, reader: None, record: csv::ByteRecord::new(), line_offset: 0 }
    }
}

fn io(loc: &Location, e: std::io::Error) -> DataError {
    DataError::Format { file: loc.to_string(), message: e.to_string() }
}

fn csv_error(loc: &Location, e: csv::Error) -> DataError {
    let line = e.position().map(|p| format!("line {}: ", p.line())).unwrap_or_default();
    DataError::Format { file: loc.to_string(), message: format!("{line}{e}") }
}

/// Streams the records of a [`CsvSource`].
pub struct Records<'a> {
    source: &'a CsvSource,
    file: usize,
    reader: Option<FileReader>,
    record: csv::ByteRecord,
    /// Lines of the file before this part's share of it.
    line_offset: u64,
}

/// Reads and drops `start` bytes, then up to the next line start; returns the bytes dropped
/// and the lines they held (so records keep their true line numbers).
fn skip_to_line(input: &mut dyn Read, start: u64) -> std::io::Result<(u64, u64)> {
    if start == 0 {
        return Ok((0, 0));
    }
    let mut buf = vec![0u8; 1 << 16];
    let (mut skipped, mut lines) = (0u64, 0u64);
    let mut last = 0u8;
    while skipped < start {
        let want = ((start - skipped) as usize).min(buf.len());
        let got = input.read(&mut buf[..want])?;
        if got == 0 {
            return Ok((skipped, lines));
        }
        lines += buf[..got].iter().filter(|&&b| b == b'\n').count() as u64;
        last = buf[got - 1];
        skipped += got as u64;
    }
    // Mid-line: that line belongs to the previous part.
    let mut byte = [0u8; 1];
    while last != b'\n' {
        if input.read(&mut byte)? == 0 {
            break;
        }
        last = byte[0];
        skipped += 1;
        lines += (last == b'\n') as u64;
    }
    Ok((skipped, lines))
}

/// The lines that start within the next `left` bytes: everything up to and including the
/// line break that ends the line crossing the limit.
struct LineRange {
    inner: Box<dyn Read + Send>,
    left: u64,
    done: bool,
    at_line_start: bool,
}

impl Read for LineRange {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            // Past the limit: finish the current line, a byte at a time (one line at most).
            if self.at_line_start {
                self.done = true;
                return Ok(0);
            }
            let got = self.inner.read(&mut buf[..1])?;
            if got == 0 || buf[0] == b'\n' {
                self.done = true;
            }
            return Ok(got);
        }
        let want = (self.left as usize).min(buf.len());
        let got = self.inner.read(&mut buf[..want])?;
        if got == 0 {
            self.done = true;
            return Ok(0);
        }
        self.left -= got as u64;
        self.at_line_start = buf[got - 1] == b'\n';
        Ok(got)
    }
}

impl Iterator for Records<'_> {
    type Item = Result<RawRecord, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.file >= self.source.files.len() {
                return None;
            }
            if self.reader.is_none() {
                let (mut r, lines_before) = match self.source.reader(self.file) {
                    Ok(Some(r)) => r,
                    Ok(None) => {
                        self.file += 1;
                        continue;
                    }
                    Err(e) => {
                        self.file = self.source.files.len();
                        return Some(Err(e));
                    }
                };
                self.line_offset = lines_before;
                // The header and skipped lines sit at the file's start, in part 0's share.
                let skip = (self.source.options.skip_lines + self.source.has_header() as usize)
                    .saturating_sub(lines_before as usize);
                for _ in 0..skip {
                    match r.read_byte_record(&mut self.record) {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(e) => return Some(Err(csv_error(&self.source.files[self.file], e))),
                    }
                }
                self.reader = Some(r);
            }
            let r = self.reader.as_mut()?;
            match r.read_byte_record(&mut self.record) {
                Ok(true) => {
                    let line = self.record.position().map(|p| p.line()).unwrap_or(0) + self.line_offset;
                    return Some(Ok(RawRecord { fields: self.record.clone(), file: self.file as u32, line }));
                }
                Ok(false) => {
                    self.reader = None;
                    self.file += 1;
                }
                Err(e) => {
                    let err = csv_error(&self.source.files[self.file], e);
                    self.file = self.source.files.len();
                    return Some(Err(err));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_directories_gzip_quotes_and_skipped_lines() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.csv"), "meta line\nx,y\n1,\"hello, world\"\n2,b\n").unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"meta\nx,y\n3,c\n").unwrap();
        std::fs::write(dir.path().join("b.csv.gz"), gz.finish().unwrap()).unwrap();
        std::fs::write(dir.path().join("_SUCCESS"), "").unwrap();
        let opts = CsvOptions { skip_lines: 1, ..CsvOptions::default() };
        let src = CsvSource::open(&Location::local(dir.path()), &opts).unwrap();
        assert_eq!(src.files.len(), 2);
        assert_eq!(src.header().unwrap(), Some(vec!["x".to_string(), "y".to_string()]));
        let recs: Vec<RawRecord> = src.records().collect::<Result<_, _>>().unwrap();
        assert_eq!(recs.len(), 3);
        assert_eq!(&recs[0].fields[1], b"hello, world");
        assert_eq!((recs[0].file, recs[0].line), (0, 3));
        assert_eq!((recs[2].file, recs[2].line), (1, 3));
        assert_eq!(&recs[2].fields[1], b"c");
    }

    #[test]
    fn partitions_together_read_exactly_the_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("skip me\nx,y\n");
        for i in 0..1000 {
            text.push_str(&format!("{i},{}\n", "v".repeat(i % 17)));
        }
        std::fs::write(dir.path().join("one.csv"), &text).unwrap();
        let opts = CsvOptions { skip_lines: 1, ..CsvOptions::default() };
        let whole = CsvSource::open(&Location::local(dir.path().join("one.csv")), &opts).unwrap();
        let all: Vec<(u64, Vec<u8>)> =
            whole.records().map(|r| r.unwrap()).map(|r| (r.line, r.fields[0].to_vec())).collect();
        assert_eq!(all.len(), 1000);
        for n in [1, 2, 3, 7, 64, 5000] {
            let mut got = Vec::new();
            for i in 0..n {
                got.extend(
                    whole
                        .partition(i, n)
                        .records()
                        .map(|r| r.unwrap())
                        .map(|r| (r.line, r.fields[0].to_vec())),
                );
            }
            assert_eq!(got, all, "{n} parts");
        }
        // A directory splits by files.
        for f in 0..5 {
            std::fs::write(dir.path().join(format!("part-{f}.csv")), format!("x,y\n{f},a\n{f},b\n")).unwrap();
        }
        std::fs::remove_file(dir.path().join("one.csv")).unwrap();
        let src = CsvSource::open(&Location::local(dir.path()), &CsvOptions::default()).unwrap();
        let parts: Vec<usize> = (0..2).map(|i| src.partition(i, 2).records().count()).collect();
        assert_eq!(parts, vec![4, 6]);
    }

    #[test]
    fn bad_options_and_missing_input_are_named() {
        let bad = CsvOptions { delimiter: '"', ..CsvOptions::default() };
        assert!(bad.check().unwrap_err().contains("must differ"));
        let e = CsvSource::open(&Location::local("/no/such.csv"), &CsvOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("/no/such.csv"), "{e}");
    }
}
