//! The ETL pipeline end to end: `strom analyze`, `strom transform` (the local executor), the
//! distributed executor (each worker transforming its own partitions) and training on a real
//! CSV (scikit-learn's wine data) through a JSON transform process.

mod common;

use std::path::Path;

use common::{json, path, run};
use strom::data::{BatchBuffer, BatchTargets};
use strom::job::{DataFormat, DataSpec};

const WINE_JOB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/jobs/wine.toml");
const WINE_CSV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/wine/wine_data.csv");

#[test]
fn wine_trains_through_the_transform_with_two_workers_and_evaluates_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let (summary, model) = (dir.path().join("s.json"), dir.path().join("model"));
    // The job file names repository-relative paths: run from the repository root.
    let out = common::strom()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["train", "--config", WINE_JOB, "--output", path(&model), "--summary-json", path(&summary)])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let s = json(&summary);
    assert_eq!(s["workers"].as_u64(), Some(2), "{s}");
    let acc = s["test_accuracy"].as_f64().unwrap();
    assert!(acc >= 0.9, "held-out accuracy {acc}");
    // 20% of 178 rows held out.
    assert_eq!(s["evaluation"]["confusion"].as_array().unwrap().len(), 3);
    let held: u64 = s["evaluation"]["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()))
        .sum();
    assert_eq!(held, 36);

    // The model carries its fitted transform: raw CSV in, the same features out.
    let (ok, stdout, stderr) = run(&["eval", "--model", path(&model), "--test", WINE_CSV]);
    assert!(ok, "{stderr}");
    let line = stdout.lines().find(|l| l.starts_with("accuracy")).unwrap_or_else(|| panic!("{stdout}"));
    let acc: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(acc >= 0.9, "{line}");
    assert!(line.contains("(178 examples)"), "{line}");
}

#[test]
fn wine_trains_in_two_worker_processes_that_each_transform_their_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("s.json");
    let out = common::strom()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["train", "--config", WINE_JOB, "--launcher", "local", "--output", path(&dir.path().join("m"))])
        .args(["--summary-json", path(&summary)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = json(&summary);
    let acc = s["test_accuracy"].as_f64().unwrap();
    assert!(acc >= 0.85, "accuracy {acc}");
    assert!(s["bytes_sent"].as_u64().unwrap() > 0, "updates went over gRPC");
}

/// A CSV with text categories, dates, missing values and NaN, and a process using most steps.
fn mixed_csv(dir: &Path, rows: usize) -> (std::path::PathBuf, std::path::PathBuf) {
    let cities = ["Paris", "Lyon", "Nice", "Lille"];
    let mut text = String::from("city,temp,n,when,y\n");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..rows {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let temp = match i % 97 {
            5 => String::new(),
            11 => "NaN".into(),
            _ => format!("{:.2}", (x % 4000) as f64 / 100.0 - 5.0),
        };
        let day = 1 + (x >> 20) % 28;
        let month = 1 + (x >> 30) % 12;
        text.push_str(&format!(
            "{},{temp},{},2024-{month:02}-{day:02},{}\n",
            cities[(x >> 8) as usize % 4],
            (x >> 12) % 50,
            (x >> 40) % 3
        ));
    }
    let csv = dir.join("mixed.csv");
    std::fs::write(&csv, text).unwrap();
    let process = dir.join("tp.json");
    std::fs::write(
        &process,
        r#"{"schema":{"columns":[{"name":"city","type":"string"},{"name":"temp","type":"double"},
              {"name":"n","type":"integer"},{"name":"when","type":"string"},{"name":"y","type":"integer"}]},
            "steps":[
              {"step":"filter","remove":{"kind":"nan","column":"temp"}},
              {"step":"impute","column":"temp","strategy":"median"},
              {"step":"string_to_categorical","column":"city"},
              {"step":"categorical_to_one_hot","column":"city"},
              {"step":"string_to_time","column":"when","format":"%Y-%m-%d","zone":"Europe/Paris"},
              {"step":"derive_time","column":"when","fields":["month","weekday","day_of_year"],"zone":"Europe/Paris"},
              {"step":"remove_columns","columns":["when"]},
              {"step":"normalize","column":"temp","kind":"standardize"},
              {"step":"normalize","column":"n","kind":"min_max"},
              {"step":"column_math","left":"temp","right":"n","op":"multiply","to":"temp_n"}
            ]}"#,
    )
    .unwrap();
    (csv, process)
}

#[test]
fn local_executor_and_the_workers_distributed_executor_give_identical_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, process) = mixed_csv(dir.path(), 3000);
    let out = dir.path().join("out.csv");
    let fitted = dir.path().join("fitted.json");
    let (ok, stdout, stderr) = run(&[
        "transform",
        "--process",
        path(&process),
        "--input",
        path(&csv),
        "--output",
        path(&out),
        "--fitted-out",
        path(&fitted),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("3000 rows in"), "{stdout}");
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(
        header,
        [
            "city[Lille]",
            "city[Lyon]",
            "city[Nice]",
            "city[Paris]",
            "temp",
            "n",
            "y",
            "when_month",
            "when_weekday",
            "when_day_of_year",
            "temp_n"
        ]
    );
    let label = header.iter().position(|h| *h == "y").unwrap();
    let local: Vec<(Vec<f32>, f32)> = lines
        .map(|l| {
            let v: Vec<f64> = l.split(',').map(|f| f.parse().unwrap()).collect();
            let features =
                v.iter().enumerate().filter(|(i, _)| *i != label).map(|(_, x)| *x as f32).collect();
            (features, v[label] as f32)
        })
        .collect();
    let nans = (0..3000).filter(|i| i % 97 == 11).count();
    assert_eq!(local.len(), 3000 - nans, "NaN rows filtered, the others kept in order");

    // The training path: the coordinator fits the process, each worker applies it lazily to
    // the partitions it trains; in-process training transforms eagerly.
    let spec = DataSpec {
        train: path(&csv).into(),
        test: String::new(),
        format: DataFormat::Csv,
        transform: path(&process).into(),
        label: "y".into(),
        num_classes: Some(3),
        ..Default::default()
    };
    let spec = strom::job::ResolvedData::resolve(spec).unwrap();
    let p = strom::data::fitted_process(&spec, 1).unwrap().expect("csv has a process");
    assert_eq!(
        p.to_json(),
        strom::data::transform::TransformProcess::from_json(&std::fs::read_to_string(&fitted).unwrap(), "f")
            .unwrap()
            .to_json(),
        "both executors fit the same statistics"
    );
    let lazy = strom::data::load_train(&spec, 1, Some(&p), true, 3).unwrap();
    let eager = strom::data::load_train(&spec, 1, Some(&p), false, 3).unwrap();
    for (name, ds) in [("distributed", &lazy), ("eager", &eager)] {
        let all: Vec<u32> = (0..ds.rows as u32).collect();
        let mut usable = Vec::new();
        ds.prepare(&all, &mut usable).unwrap();
        assert_eq!(usable.len(), local.len(), "{name}");
        let mut buf = BatchBuffer::with_capacity(ds, usable.len());
        let batch = buf.gather(ds, &usable);
        let BatchTargets::Classes(labels) = batch.targets else { panic!("{name}: classes") };
        let mut row = vec![0f32; ds.width];
        for (r, (features, label)) in local.iter().enumerate() {
            batch.input.row_into(r, ds.width, &mut row);
            assert_eq!(&row, features, "{name}: row {r}");
            assert_eq!(labels[r] as f32, *label, "{name}: label of row {r}");
        }
    }
}

#[test]
fn analyze_reports_statistics_quality_and_categories() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, _) = mixed_csv(dir.path(), 500);
    let (ok, stdout, stderr) = run(&["analyze", path(&csv), "--json"]);
    assert!(ok, "{stderr}");
    let a: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(a["rows"], 500);
    let col =
        |name: &str| a["columns"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap().clone();
    let temp = col("temp");
    assert_eq!(temp["type"], "double");
    let missing = (0..500).filter(|i| i % 97 == 5).count() as u64;
    let nan = (0..500).filter(|i| i % 97 == 11).count() as u64;
    assert_eq!((temp["missing"].as_u64(), temp["nan"].as_u64()), (Some(missing), Some(nan)));
    assert!(temp["min"].as_f64().unwrap() >= -5.0 && temp["max"].as_f64().unwrap() < 35.0);
    let hist: u64 = temp["histogram"].as_array().unwrap().iter().map(|b| b.as_u64().unwrap()).sum();
    assert_eq!(hist, 500 - missing - nan);
    let n = col("n");
    assert_eq!(n["type"], "integer", "integers stay integers");
    assert!(n["distinct"].as_u64().unwrap() <= 50);
    let city = col("city");
    let top: u64 = city["top"].as_array().unwrap().iter().map(|t| t[1].as_u64().unwrap()).sum();
    assert_eq!((city["distinct"].as_u64(), top), (Some(4), 500));

    // The table form, with a schema from a process file.
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/transforms/wine.json");
    let (ok, stdout, stderr) =
        run(&["analyze", WINE_CSV, "--skip-lines", "1", "--no-header", "--schema", schema]);
    assert!(ok, "{stderr}");
    assert!(stdout.starts_with(&format!("{WINE_CSV}: 178 rows, 14 columns, 0 malformed rows")), "{stdout}");
    let proline = stdout.lines().find(|l| l.starts_with("proline ")).unwrap();
    assert!(proline.contains("278.0000") && proline.contains("1680.0000"), "{proline}");
}

/// Runs `strom transform` on `csv_text` with `process`; returns stderr, asserting failure and
/// that no output was left behind.
fn transform_fails(csv_text: &str, process: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (csv, tp, out) = (dir.path().join("in.csv"), dir.path().join("tp.json"), dir.path().join("out.csv"));
    std::fs::write(&csv, csv_text).unwrap();
    std::fs::write(&tp, process).unwrap();
    let (ok, _, stderr) =
        run(&["transform", "--process", path(&tp), "--input", path(&csv), "--output", path(&out)]);
    assert!(!ok, "expected failure; stderr {stderr}");
    assert!(!out.exists(), "no partial output");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

const TWO_COLS: &str = r#"{"columns":[{"name":"city","type":"string"},{"name":"temp","type":"double"}]}"#;

#[test]
fn bad_rows_stop_the_transform_naming_file_line_column_value_and_type() {
    let p = format!(r#"{{"schema":{TWO_COLS},"steps":[]}}"#);
    let e = transform_fails("city,temp\nParis,1\nLyon,2,3\n", &p);
    assert!(e.contains("in.csv:3: column '(row)': expected 2 columns, found 3"), "{e}");
    let e = transform_fails("city,temp\nParis,1\nLyon,2.5x\n", &p);
    assert!(e.contains("in.csv:3: column 'temp': expected a number (double) (value '2.5x')"), "{e}");

    let cat = format!(
        r#"{{"schema":{TWO_COLS},"steps":[{{"step":"string_to_categorical","column":"city","states":["Paris","Lyon"]}}]}}"#
    );
    let e = transform_fails("city,temp\nParis,1\nNice,2\n", &cat);
    assert!(e.contains("in.csv:3: column 'city': unknown category") && e.contains("(value 'Nice')"), "{e}");

    let time = format!(
        r#"{{"schema":{TWO_COLS},"steps":[{{"step":"string_to_time","column":"city","format":"%Y-%m-%d","zone":"UTC"}}]}}"#
    );
    let e = transform_fails("city,temp\n2024-01-01,1\n01/02/2024,2\n", &time);
    assert!(
        e.contains("in.csv:3: column 'city': expected a time like '%Y-%m-%d'") && e.contains("'01/02/2024'"),
        "{e}"
    );

    // NaN parses as a double; normalising it would poison the statistics, so the fit refuses.
    let norm = format!(
        r#"{{"schema":{TWO_COLS},"steps":[{{"step":"normalize","column":"temp","kind":"standardize"}}]}}"#
    );
    let e = transform_fails("city,temp\nParis,1\nLyon,NaN\n", &norm);
    assert!(e.contains("in.csv:3") && e.contains("'temp'") && e.contains("NaN"), "{e}");

    let e = transform_fails("city,temp\n", "{\"schema\": ");
    assert!(e.contains("tp.json"), "{e}");
}

#[test]
fn policies_drop_and_count_what_they_drop() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, tp, out, summary) = (
        dir.path().join("in.csv"),
        dir.path().join("tp.json"),
        dir.path().join("out.csv"),
        dir.path().join("s.json"),
    );
    std::fs::write(&csv, "city,temp\nParis,1\nNice,x\nNice,2\nLyon,3\nLyon,NaN\n").unwrap();
    std::fs::write(
        &tp,
        format!(
            r#"{{"schema":{TWO_COLS},"steps":[{{"step":"string_to_categorical","column":"city","states":["Paris","Lyon"]}},
                 {{"step":"filter","remove":{{"kind":"nan","column":"temp"}}}}],
               "policies":{{"unknown_category":"drop","invalid_record":"drop"}}}}"#
        ),
    )
    .unwrap();
    let (ok, stdout, stderr) = run(&[
        "transform",
        "--process",
        path(&tp),
        "--input",
        path(&csv),
        "--output",
        path(&out),
        "--summary-json",
        path(&summary),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("5 rows in, 2 out"), "{stdout}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "city,temp\nParis,1.0\nLyon,3.0\n");
    let r = &json(&summary)["report"];
    assert_eq!(
        (r["invalid_dropped"].as_u64(), r["unknown_dropped"].as_u64(), r["filtered"].as_u64()),
        (Some(1), Some(1), Some(1)),
        "{r}"
    );
}

/// The executor streams: a CSV several times the memory bound transforms within it. (The
/// 1 GB run is `benches/etl_memory.sh`.)
#[test]
fn transform_streams_in_bounded_memory() {
    const ROWS: u64 = 2_500_000;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("big.csv");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&csv).unwrap());
        writeln!(f, "id,city,temp,n").unwrap();
        for i in 0..ROWS {
            writeln!(
                f,
                "{i},{},{}.{},{}",
                ["Paris", "Lyon", "Nice"][(i % 3) as usize],
                i % 40,
                i % 10,
                i % 7
            )
            .unwrap();
        }
    }
    let size = std::fs::metadata(&csv).unwrap().len();
    assert!(size > 40_000_000, "{size}");
    let tp = dir.path().join("tp.json");
    std::fs::write(
        &tp,
        r#"{"schema":{"columns":[{"name":"id","type":"long"},{"name":"city","type":"string"},{"name":"temp","type":"double"},{"name":"n","type":"integer"}]},
            "steps":[{"step":"string_to_categorical","column":"city"},{"step":"categorical_to_one_hot","column":"city"},
                     {"step":"normalize","column":"temp","kind":"standardize"},
                     {"step":"filter","remove":{"kind":"compare","column":"n","op":"eq","value":0}}]}"#,
    )
    .unwrap();
    let summary = dir.path().join("s.json");
    let out = dir.path().join("out.csv");
    let (ok, _, stderr) = run(&[
        "transform",
        "--process",
        path(&tp),
        "--input",
        path(&csv),
        "--output",
        path(&out),
        "--summary-json",
        path(&summary),
    ]);
    assert!(ok, "{stderr}");
    let s = json(&summary);
    let kept = (0..ROWS).filter(|i| i % 7 != 0).count() as u64;
    assert_eq!(s["report"]["rows_out"].as_u64(), Some(kept));
    let peak = s["peak_rss_mb"].as_f64().unwrap();
    assert!(peak < 120.0, "peak RSS {peak} MB for a {} MB file", size / 1_000_000);
}
