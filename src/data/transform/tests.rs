//! Every step, condition and policy, with the error cases named in full.

use super::*;
use crate::data::csv::{CsvOptions, CsvSource};
use crate::data::schema::Column;

fn process(json: &str) -> TransformProcess {
    TransformProcess::from_json(json, "tp.json").unwrap_or_else(|e| panic!("{e}"))
}

fn rec(line: u64, fields: &[&str]) -> RawRecord {
    RawRecord { fields: csv::ByteRecord::from(fields.to_vec()), file: 0, line }
}

fn run(p: &TransformProcess, rows: &[&[&str]]) -> (Vec<Vec<Value>>, Report) {
    let c = p.compile().unwrap_or_else(|e| panic!("{e}"));
    let mut report = Report::default();
    let mut out = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        if let Some(row) =
            c.record(&rec(i as u64 + 2, r), "data.csv", &mut report).unwrap_or_else(|e| panic!("{e}"))
        {
            out.push(row);
        }
    }
    (out, report)
}

fn err(p: &TransformProcess, rows: &[&[&str]]) -> String {
    let c = p.compile().unwrap();
    let mut report = Report::default();
    for (i, r) in rows.iter().enumerate() {
        if let Err(e) = c.record(&rec(i as u64 + 2, r), "data.csv", &mut report) {
            return e.to_string();
        }
    }
    panic!("no error")
}

fn fit(p: &mut TransformProcess, rows: &[&[&str]]) {
    let recs: Vec<RawRecord> = rows.iter().enumerate().map(|(i, r)| rec(i as u64 + 2, r)).collect();
    p.fit(|| recs.clone().into_iter().map(Ok), &|_| "data.csv".into()).unwrap_or_else(|e| panic!("{e}"));
}

const SCHEMA: &str = r#"{"columns":[{"name":"city","type":"string"},{"name":"temp","type":"double"},{"name":"n","type":"integer"},{"name":"when","type":"string"}]}"#;

fn with_steps(steps: &str) -> TransformProcess {
    process(&format!(r#"{{"schema":{SCHEMA},"steps":{steps}}}"#))
}

#[test]
fn column_steps() {
    let p = with_steps(
        r#"[{"step":"remove_columns","columns":["when"]},{"step":"rename_column","from":"temp","to":"t"},
            {"step":"duplicate_column","column":"n","to":"n2"},{"step":"reorder_columns","order":["n2","t"]},
            {"step":"keep_columns","columns":["n2","t","city"]}]"#,
    );
    assert_eq!(p.compile().unwrap().output.names(), ["n2", "t", "city"]);
    let (rows, _) = run(&p, &[&["Oslo", "1.5", "7", "x"]]);
    assert_eq!(rows[0], vec![Value::Int(7), Value::Float(1.5), Value::Str("Oslo".into())]);
}

#[test]
fn categorical_steps_learned_and_given() {
    let mut p = with_steps(
        r#"[{"step":"string_to_categorical","column":"city"},{"step":"categorical_to_one_hot","column":"city"}]"#,
    );
    let data: &[&[&str]] = &[&["Oslo", "1", "1", ""], &["Bergen", "2", "2", ""], &["Oslo", "3", "3", ""]];
    assert!(p.needs_fit());
    fit(&mut p, data);
    assert_eq!(
        p.steps[0],
        Step::StringToCategorical {
            column: "city".into(),
            states: Some(vec!["Bergen".into(), "Oslo".into()])
        }
    );
    let c = p.compile().unwrap();
    assert_eq!(&c.output.names()[..2], ["city[Bergen]", "city[Oslo]"]);
    let (rows, _) = run(&p, data);
    assert_eq!(&rows[0][..2], [Value::Int(0), Value::Int(1)]);
    let p = with_steps(
        r#"[{"step":"string_to_categorical","column":"city","states":["Oslo","Bergen"]},{"step":"categorical_to_integer","column":"city"}]"#,
    );
    let (rows, _) = run(&p, &[&["Bergen", "1", "1", ""]]);
    assert_eq!(rows[0][0], Value::Int(1));
}

#[test]
fn unknown_categories_follow_the_policy() {
    let steps = r#"[{"step":"string_to_categorical","column":"city","states":["Oslo"]},{"step":"categorical_to_one_hot","column":"city"}]"#;
    let p = with_steps(steps);
    let e = err(&p, &[&["Oslo", "1", "1", ""], &["Paris", "1", "1", ""]]);
    assert_eq!(
        e,
        "data.csv:3: column 'city': unknown category (set policies.unknown_category to \"reserved\" or \"drop\" to accept it) (value 'Paris')"
    );
    let p = process(&format!(
        r#"{{"schema":{SCHEMA},"steps":{steps},"policies":{{"unknown_category":"reserved"}}}}"#
    ));
    let (rows, report) = run(&p, &[&["Paris", "1", "1", ""]]);
    assert_eq!(p.compile().unwrap().output.names()[..2], ["city[Oslo]", "city[__unknown__]"]);
    assert_eq!(&rows[0][..2], [Value::Int(0), Value::Int(1)]);
    assert_eq!(report.unknown_mapped, 1);
    let p = process(&format!(
        r#"{{"schema":{SCHEMA},"steps":{steps},"policies":{{"unknown_category":"drop"}}}}"#
    ));
    let (rows, report) = run(&p, &[&["Paris", "1", "1", ""], &["Oslo", "1", "1", ""]]);
    assert_eq!((rows.len(), report.unknown_dropped), (1, 1));
}

#[test]
fn integer_one_hot_and_categorical_input_columns() {
    let p = with_steps(r#"[{"step":"integer_to_one_hot","column":"n","min":1,"max":3}]"#);
    let (rows, _) = run(&p, &[&["a", "1", "2", ""]]);
    assert_eq!(&rows[0][2..5], [Value::Int(0), Value::Int(1), Value::Int(0)]);
    assert!(err(&p, &[&["a", "1", "9", ""]]).contains("column 'n': unknown category (set"));
    let p = process(r#"{"schema":{"columns":[{"name":"c","type":"categorical","states":["x","y"]}]}}"#);
    assert!(err(&p, &[&["z"]]).contains("column 'c': unknown category"));
}

#[test]
fn time_parsing_is_explicit_about_format_and_zone() {
    let p = with_steps(
        r#"[{"step":"string_to_time","column":"when","format":"%Y-%m-%d %H:%M","zone":"Europe/Berlin"},
            {"step":"derive_time","column":"when","fields":["year","month","day","weekday","hour","day_of_year"],"zone":"Europe/Berlin"}]"#,
    );
    let (rows, _) = run(&p, &[&["a", "1", "1", "2024-03-01 10:30"]]);
    // 10:30 in Berlin (UTC+1 in March before DST) is 09:30 UTC.
    assert_eq!(rows[0][3], Value::Time(1_709_285_400_000));
    assert_eq!(
        &rows[0][4..],
        [Value::Int(2024), Value::Int(3), Value::Int(1), Value::Int(5), Value::Int(10), Value::Int(61)]
    );
    let e = err(&p, &[&["a", "1", "1", "01/03/2024"]]);
    assert!(e.starts_with("data.csv:2: column 'when': expected a time like '%Y-%m-%d %H:%M'"), "{e}");
    assert!(e.ends_with("(value '01/03/2024')"), "{e}");
    let bad = TransformProcess::from_json(
        &format!(
            r#"{{"schema":{SCHEMA},"steps":[{{"step":"string_to_time","column":"when","format":"%Y","zone":"Mars/Olympus"}}]}}"#
        ),
        "tp.json",
    );
    assert!(bad.unwrap_err().to_string().contains("unknown time zone 'Mars/Olympus'"));
}

#[test]
fn math_on_columns() {
    let p = with_steps(
        r#"[{"step":"math","column":"temp","op":"multiply","value":2},{"step":"column_math","left":"temp","right":"n","op":"divide","to":"ratio"},
            {"step":"math","column":"n","op":"clip","min":0,"max":5}]"#,
    );
    let (rows, _) = run(&p, &[&["a", "3", "10", ""]]);
    assert_eq!(
        (rows[0][1].clone(), rows[0][2].clone(), rows[0][4].clone()),
        (Value::Float(6.0), Value::Float(5.0), Value::Float(0.6))
    );
    for (op, x) in [("abs", -2.0f64), ("log", std::f64::consts::E), ("add", 1.0), ("subtract", 1.0)] {
        let p = with_steps(&format!(r#"[{{"step":"math","column":"temp","op":"{op}","value":1}}]"#));
        let (rows, _) = run(&p, &[&["a", &x.to_string(), "1", ""]]);
        let expect = match op {
            "abs" => 2.0,
            "log" => 1.0,
            "add" => x + 1.0,
            _ => x - 1.0,
        };
        assert!((rows[0][1].as_f64().unwrap() - expect).abs() < 1e-12, "{op}");
    }
    let e = TransformProcess::from_json(
        &format!(r#"{{"schema":{SCHEMA},"steps":[{{"step":"math","column":"city","op":"abs"}}]}}"#),
        "tp.json",
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "step 0 (math): column 'city' is string; this step needs a number");
    // Finite inputs that give NaN or infinity make the row invalid, named by column.
    let log = with_steps(r#"[{"step":"math","column":"temp","op":"log"}]"#);
    assert_eq!(
        err(&log, &[&["a", "-1", "1", ""]]),
        "data.csv:2: column 'temp': log gave a non-finite result (value 'NaN')"
    );
    assert_eq!(run(&log, &[&["a", "NaN", "1", ""]]).0.len(), 1, "NaN already there passes to later steps");
    let div = with_steps(r#"[{"step":"column_math","left":"temp","right":"n","op":"divide","to":"r"}]"#);
    assert_eq!(
        err(&div, &[&["a", "1", "0", ""]]),
        "data.csv:2: column 'r': divide gave a non-finite result (value 'inf')"
    );
}

#[test]
fn filters_and_conditional_replace() {
    let p = with_steps(
        r#"[{"step":"filter","remove":{"kind":"or","any":[{"kind":"nan","column":"temp"},{"kind":"missing","column":"n"}]}},
            {"step":"conditional_replace","column":"temp","condition":{"kind":"compare","column":"temp","op":"gt","value":40},"value":40.0}]"#,
    );
    let (rows, report) =
        run(&p, &[&["a", "NaN", "1", ""], &["b", "55", "1", ""], &["c", "5", "", ""], &["d", "5", "2", ""]]);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0][1], Value::Float(40.0));
    assert_eq!(report.filtered, 2);
}

#[test]
fn normalize_fits_and_stores_statistics() {
    let mut p = with_steps(
        r#"[{"step":"normalize","column":"temp","kind":"standardize"},{"step":"normalize","column":"n","kind":"min_max"}]"#,
    );
    let data: &[&[&str]] = &[&["a", "1", "10", ""], &["b", "3", "20", ""], &["c", "5", "30", ""]];
    fit(&mut p, data);
    let Step::Normalize { stats: Some(s), .. } = &p.steps[0] else { panic!() };
    assert_eq!((s.mean, s.min, s.max), (3.0, 1.0, 5.0));
    let (rows, _) = run(&p, data);
    assert!((rows[2][1].as_f64().unwrap() - 2.0 / (8.0f64 / 3.0).sqrt()).abs() < 1e-12);
    assert_eq!(rows[1][2], Value::Float(0.5));
    // Stored with the process: a reload gives the same rows without refitting.
    let again = TransformProcess::from_json(&p.to_json(), "again.json").unwrap();
    assert!(!again.needs_fit());
    assert_eq!(run(&again, data).0, rows);
    let e = err(&again, &[&["d", "NaN", "1", ""]]);
    assert!(e.starts_with("data.csv:2: column 'temp': expected a finite number to normalise"), "{e}");
    let mut log = with_steps(r#"[{"step":"normalize","column":"n","kind":"log"}]"#);
    fit(&mut log, data);
    assert_eq!(run(&log, data).0[0][2], Value::Float(0.0));
}

#[test]
fn imputation_mean_median_mode_constant() {
    let data: &[&[&str]] =
        &[&["a", "1", "1", ""], &["b", "", "1", ""], &["", "3", "4", ""], &["a", "8", "", ""]];
    for (strategy, column, expect) in [
        ("mean", "temp", Value::Float(4.0)),
        ("median", "temp", Value::Float(3.0)),
        ("mode", "city", Value::Str("a".into())),
        ("mode", "n", Value::Int(1)),
    ] {
        let mut p =
            with_steps(&format!(r#"[{{"step":"impute","column":"{column}","strategy":"{strategy}"}}]"#));
        fit(&mut p, data);
        let c = p.schema.index(column).unwrap();
        let (rows, _) = run(&p, data);
        let missing_row = data.iter().position(|r| r[c].is_empty()).unwrap();
        assert_eq!(rows[missing_row][c], expect, "{strategy} of {column}");
    }
    let p = with_steps(r#"[{"step":"impute","column":"city","strategy":"constant","value":"unknown"}]"#);
    assert_eq!(run(&p, data).0[2][0], Value::Str("unknown".into()));
    let bad = TransformProcess::from_json(
        &format!(
            r#"{{"schema":{SCHEMA},"steps":[{{"step":"impute","column":"city","strategy":"constant"}}]}}"#
        ),
        "x",
    );
    assert!(bad.unwrap_err().to_string().contains("needs a value"));
}

#[test]
fn invalid_records_follow_the_policy_and_name_file_line_column_and_type() {
    let p = with_steps("[]");
    assert_eq!(
        err(&p, &[&["a", "1", "1"]]),
        "data.csv:2: column '(row)': expected 4 columns, found 3 (value 'a,1,1')"
    );
    assert_eq!(
        err(&p, &[&["a", "1", "1", ""], &["b", "2.x", "1", ""]]),
        "data.csv:3: column 'temp': expected a number (double) (value '2.x')"
    );
    assert_eq!(
        err(&p, &[&["b", "2", "1.5", ""]]),
        "data.csv:2: column 'n': expected an integer (32-bit) (integer) (value '1.5')"
    );
    for policy in ["drop", "drop_and_log"] {
        let p = process(&format!(r#"{{"schema":{SCHEMA},"policies":{{"invalid_record":"{policy}"}}}}"#));
        let (rows, report) = run(&p, &[&["a", "x", "1", ""], &["b", "2", "1", ""], &["c"]]);
        assert_eq!((rows.len(), report.invalid_dropped, report.rows_in, report.rows_out), (1, 2, 3, 1));
    }
}

#[test]
fn nan_passes_parsing_and_is_caught_by_conditions() {
    let p = with_steps(r#"[{"step":"filter","remove":{"kind":"invalid","column":"temp"}}]"#);
    let (rows, report) = run(&p, &[&["a", "NaN", "1", ""], &["b", "inf", "1", ""], &["c", "1", "1", ""]]);
    assert_eq!((rows.len(), report.filtered), (1, 2));
}

#[test]
fn process_json_errors_name_the_path_and_datavec_names_are_accepted() {
    let e =
        TransformProcess::from_json(r#"{"schema":{"columns":[]},"steps":[{"step":"teleport"}]}"#, "tp.json")
            .unwrap_err()
            .to_string();
    assert!(e.starts_with("tp.json: at 'steps[0].step'"), "{e}");
    assert!(e.contains("unknown variant `teleport`"), "{e}");
    let e = TransformProcess::from_json(
        &format!(r#"{{"schema":{SCHEMA},"steps":[{{"step":"remove_columns","columns":["nope"]}}]}}"#),
        "tp.json",
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("step 0 (remove_columns): no column 'nope' here"), "{e}");
    let dv = TransformProcess::from_json(
        r#"{"initialSchema":{"columns":[{"name":"a","type":"double"}]},"actionList":[{"step":"remove_columns","columns":["a"]}]}"#,
        "dl4j.json",
    );
    assert!(dv.is_ok());
    let unfitted = with_steps(r#"[{"step":"normalize","column":"temp","kind":"min_max"}]"#);
    assert!(unfitted.compile().err().unwrap().to_string().contains("not fitted"));
}

#[test]
fn fitting_reads_csv_files_in_as_few_passes_as_possible() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.csv");
    std::fs::write(&path, "city,temp,n,when\nOslo,1,1,\nBergen,3,2,\n").unwrap();
    let src = CsvSource::open(&Location::local(&path), &CsvOptions::default()).unwrap();
    let mut p = with_steps(
        r#"[{"step":"normalize","column":"temp","kind":"min_max"},{"step":"normalize","column":"n","kind":"min_max"},{"step":"string_to_categorical","column":"city"}]"#,
    );
    let mut passes = 0;
    p.fit(
        || {
            passes += 1;
            src.records()
        },
        &|i| src.file_name(i),
    )
    .unwrap();
    assert_eq!(passes, 1, "three column-local steps on distinct columns share a pass");
    assert!(!p.needs_fit());
    let _ = Column { name: String::new(), kind: ColumnType::String };
}
