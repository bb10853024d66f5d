//! Render tests: every screen, at 80x24 and at a large size, as insta snapshots of a fixed,
//! deterministic state.

use ratatui::Terminal;
use ratatui::backend::TestBackend;

use crate::app::{App, Confirm, Msg, Overlay};
use crate::keys::Screen;
use crate::model;

fn field(key: &str, value: &str, kind: model::FieldKind, choices: &[&str], help: &str) -> model::FormField {
    model::FormField {
        key: key.into(),
        value: value.into(),
        kind,
        choices: choices.iter().map(|c| c.to_string()).collect(),
        help: help.into(),
        section: key.split('.').next().filter(|_| key.contains('.')).unwrap_or("job").into(),
        common: matches!(
            key,
            "name" | "data.train" | "data.test" | "model.preset" | "train.epochs" | "cluster.launcher"
        ),
    }
}

/// A job three epochs into a run of five, with three workers.
pub fn fixture() -> App {
    let mut app = App::new("http://127.0.0.1:7878", true, false);
    let series = |w: u32, base: f64| model::WorkerSeries {
        worker: w,
        time: (0..40).map(|i| i as f64 * 0.25).collect(),
        sparsity: (0..40)
            .map(|i| if i < 10 { 0.08 / (i as f64 + 1.0) } else { base * (1.0 + 0.1 * ((i % 5) as f64)) })
            .collect(),
        samples_per_sec: (0..40).map(|i| 9000.0 + 800.0 * ((i * (w as usize + 1)) % 7) as f64).collect(),
        residual_norm: (0..40).map(|i| 0.2 + 0.001 * (i % 3) as f64).collect(),
        tau: (0..40).map(|i| 1e-3 * (1.0 + i as f64 * 0.05)).collect(),
    };
    let worker = |id: u32, state: model::WorkerState, sps: f64, step: u64| model::WorkerInfo {
        id,
        host: format!("node-{id}"),
        device: "cpu".into(),
        state,
        samples_per_sec: sps,
        sparsity: 2.5e-3 + id as f64 * 1e-4,
        tau: 3.1e-3,
        residual_norm: 0.2134 + id as f64 * 0.01,
        lag: 310 - step,
        last_heartbeat: 0.2,
        step,
        loss: 0.4312,
        bytes_sent: 812_000,
        bytes_received: 1_624_000,
        memory_used: 3_700_000,
        ..Default::default()
    };
    app.handle_msg(Msg::Snapshot(model::JobSnapshot {
        job_name: "fashion-mnist-demo".into(),
        job_toml: "name = \"fashion-mnist-demo\"\n".into(),
        state: model::JobState::Running,
        progress: Some(model::JobProgress {
            epoch: 2,
            epochs: 5,
            partitions_done: 12,
            partitions_total: 20,
            elapsed_seconds: 12.4,
            eta_seconds: 7.6,
            samples_per_sec: 28_450.0,
        }),
        workers: vec![
            worker(0, model::WorkerState::Training, 9_800.0, 310),
            worker(1, model::WorkerState::Training, 9_650.0, 305),
            worker(2, model::WorkerState::Training, 9_000.0, 290),
        ],
        epochs: vec![
            model::EpochPoint { epoch: 0, test_accuracy: Some(0.712), ..Default::default() },
            model::EpochPoint { epoch: 1, test_accuracy: Some(0.781), ..Default::default() },
        ],
        loss: (0..50)
            .map(|i| model::LossPoint { time: i as f64 * 0.25, loss: 2.3 / (1.0 + i as f64 * 0.2) })
            .collect(),
        totals: Some(model::Totals { bytes_sent: 2_436_000, compression_ratio: 349.4 }),
        band_low: Some(1e-4),
        band_high: Some(1e-2),
        sharing_mode: "threshold".into(),
        parameters: 235_146,
        coordinator: "http://127.0.0.1:7878".into(),
        series: vec![series(0, 2e-3), series(1, 3e-3), series(2, 4e-3)],
        ..Default::default()
    }));
    app.handle_msg(Msg::Form(model::JobForm {
        fields: vec![
            field("name", "fashion-mnist-demo", model::FieldKind::Text, &[], "Job name"),
            field(
                "data.train",
                "builtin:fashion-mnist-demo/train",
                model::FieldKind::Location,
                &[],
                "Training data",
            ),
            field(
                "data.test",
                "builtin:fashion-mnist-demo/test",
                model::FieldKind::Location,
                &[],
                "Test data",
            ),
            field("data.format", "idx", model::FieldKind::Choice, &["idx", "csv"], "Data format"),
            field("model.hidden", "256, 128", model::FieldKind::List, &[], "Hidden layer widths"),
            field("train.epochs", "0", model::FieldKind::Integer, &[], "Passes over the training data"),
            field("train.batch_size", "64", model::FieldKind::Integer, &[], "Minibatch size per worker"),
            field(
                "train.updater.kind",
                "",
                model::FieldKind::Choice,
                &["", "sgd", "nesterov", "adam"],
                "Updater",
            ),
            field(
                "sharing.mode",
                "threshold",
                model::FieldKind::Choice,
                &["", "threshold", "averaging", "none"],
                "How workers share updates",
            ),
            field(
                "cluster.launcher",
                "local",
                model::FieldKind::Choice,
                &["embedded", "local", "ssh", "spark", "none"],
                "Where workers run",
            ),
            field("cluster.workers", "3", model::FieldKind::Integer, &[], "Number of workers"),
        ],
        problems: vec![model::KeyProblem {
            key: "train.epochs".into(),
            message: "must be 1..=100000 (got 0)".into(),
        }],
        toml: "T".into(),
    }));
    app.handle_msg(Msg::Logs(model::LogBatch {
        records: vec![
            model::LogRecord {
                time: 45_000.0,
                level: "INFO".into(),
                message: "starting job fashion-mnist-demo".into(),
                worker: None,
            },
            model::LogRecord {
                time: 45_001.0,
                level: "INFO".into(),
                message: "worker 0 joined".into(),
                worker: None,
            },
            model::LogRecord {
                time: 45_002.5,
                level: "WARN".into(),
                message: "cannot reach the coordinator (attempt 1/10)".into(),
                worker: Some(2),
            },
            model::LogRecord {
                time: 45_010.0,
                level: "INFO".into(),
                message: "epoch 2 done: train loss 0.7000, test accuracy 0.7810".into(),
                worker: None,
            },
        ],
    }));
    app.status = None;
    app
}

fn render(app: &App, w: u16, h: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| super::draw(f, app)).unwrap();
    terminal.backend().to_string()
}

fn each_screen(name: &str, w: u16, h: u16) {
    for screen in Screen::ALL {
        let mut app = fixture();
        app.screen = screen;
        insta::assert_snapshot!(format!("{name}_{}", screen.title().to_lowercase()), render(&app, w, h));
    }
}

#[test]
fn screens_at_80x24() {
    each_screen("80x24", 80, 24);
}

#[test]
fn screens_at_160x48() {
    each_screen("160x48", 160, 48);
}

#[test]
fn overlays_and_connection_states() {
    let mut app = fixture();
    app.screen = Screen::Dashboard;
    app.overlay = Some(Overlay::Help);
    insta::assert_snapshot!("help_80x24", render(&app, 80, 24));
    app.overlay = Some(Overlay::Confirm(Confirm::Stop));
    insta::assert_snapshot!("confirm_stop_80x24", render(&app, 80, 24));
    app.overlay = Some(Overlay::Tour(4));
    insta::assert_snapshot!("tour_80x24", render(&app, 80, 24));
    app.overlay = None;
    app.conn = crate::state::Connection::Reconnecting {
        attempt: 3,
        retry_in: 1.5,
        error: "coordinator unavailable".into(),
    };
    app.frozen = Some(app.job.clone());
    let text = render(&app, 80, 24);
    assert!(text.contains("reconnecting (attempt 3"), "{text}");
    assert!(text.contains("[FROZEN]"), "{text}");
}

#[test]
fn worker_hosts_use_the_columns_room_and_keep_their_distinguishing_end() {
    let mut app = fixture();
    app.screen = Screen::Workers;
    for (i, w) in app.job.workers.values_mut().enumerate() {
        w.host = format!("alice@compute-node.example.org:2222#{i}");
    }
    let wide = render(&app, 120, 30);
    assert!(wide.contains("alice@compute-node.example.org:2222#1"), "{wide}");
    let narrow = render(&app, 80, 24);
    assert!(narrow.contains("…:2222#1") && !narrow.contains("alice@compute-node"), "{narrow}");
}

#[test]
fn a_long_job_detail_gives_way_to_the_connection_state() {
    let mut app = fixture();
    app.conn = crate::state::Connection::Connected;
    app.job.detail = "waiting for workers: 1 of 2 joined, and a great deal more said after it".into();
    let text = render(&app, 100, 24);
    let header = text.lines().next().unwrap_or_default();
    assert!(header.contains("● connected") && header.contains("(waiting for workers: 1 of"), "{header}");
}

#[test]
fn every_size_down_to_tiny_renders_without_panic() {
    for (w, h) in [(80, 24), (40, 12), (20, 6), (1, 1), (200, 60)] {
        for screen in Screen::ALL {
            let mut app = fixture();
            app.screen = screen;
            app.overlay = Some(Overlay::Help);
            render(&app, w, h);
            app.overlay = Some(Overlay::Tour(0));
            render(&app, w, h);
        }
    }
}

#[test]
fn meaning_is_in_words_not_colour() {
    let mut app = fixture();
    app.screen = Screen::Dashboard;
    let text = render(&app, 80, 24);
    assert!(text.contains("RUNNING"), "{text}");
    assert!(text.contains("[Dashboard]"), "the selected tab is bracketed: {text}");
    assert!(text.contains("band"), "the band is labelled: {text}");
    assert!(text.contains("w0") && text.contains("w2"), "{text}");
    app.screen = Screen::Setup;
    let text = render(&app, 80, 24);
    assert!(text.contains("✗") && text.contains("must be 1..=100000"), "problems are marked: {text}");
}

#[test]
fn setup_shows_the_schema_after_the_transform() {
    let mut app = fixture();
    app.screen = Screen::Setup;
    app.handle_msg(Msg::Validated(model::ValidateReply {
        data_summary: "142 examples x 14 features, 3 classes".into(),
        data_columns: ["alcohol", "malic_acid", "proline", "cultivar", "flavanoid_ratio"]
            .iter()
            .map(|n| model::DataColumn {
                name: n.to_string(),
                r#type: if *n == "cultivar" { "integer" } else { "double" }.into(),
                label: *n == "cultivar",
            })
            .collect(),
        ..Default::default()
    }));
    let text = render(&app, 160, 48);
    // The info panel wraps: check the words, the snapshot checks the layout.
    let panel: Vec<&str> = text.lines().filter_map(|l| l.split("││").nth(1)).collect();
    let joined = panel
        .join(" ")
        .split(|c: char| c == '│' || c == '"' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        joined.contains("schema after the transform (5 columns): alcohol double · malic_acid double"),
        "{text}"
    );
    assert!(joined.contains("cultivar integer (label) · flavanoid_ratio double"), "{text}");
    insta::assert_snapshot!("setup_csv_schema_160x48", text);
}

fn cnn_layers() -> Vec<model::ModelLayer> {
    [
        ("conv2d 3x3 32 same relu", "32x28x28", 320),
        ("max_pool2d 2x2", "32x14x14", 0),
        ("conv2d 3x3 64 same relu", "64x14x14", 18_496),
        ("max_pool2d 2x2", "64x7x7", 0),
        ("dense 128 relu", "128", 401_536),
        ("dense 10 softmax", "10", 1_290),
    ]
    .iter()
    .enumerate()
    .map(|(i, (d, o, p))| model::ModelLayer {
        index: i as u32,
        description: d.to_string(),
        output: o.to_string(),
        parameters: *p,
    })
    .collect()
}

#[test]
fn workers_show_the_selected_workers_step_layer_by_layer() {
    let mut app = fixture();
    app.screen = Screen::Workers;
    app.job.model = cnn_layers();
    let shares = [(0, 1, 0.0012), (2, 37, 0.0151), (4, 402, 0.0833), (5, 3, 0.0009)];
    for w in app.job.workers.values_mut() {
        w.layers = shares
            .iter()
            .map(|&(layer, entries, residual_norm)| model::LayerShare { layer, entries, residual_norm })
            .collect();
    }
    let text = render(&app, 100, 30);
    assert!(text.contains("w0: last step by layer (443 entries)"), "{text}");
    let dense = text.lines().find(|l| l.contains("dense 128 relu")).unwrap_or_default();
    assert!(dense.contains("402") && dense.contains("91%"), "{dense}");
    insta::assert_snapshot!("workers_layers_100x30", text);
}

#[test]
fn setup_shows_the_model_on_the_data() {
    let mut app = fixture();
    app.screen = Screen::Setup;
    app.handle_msg(Msg::Validated(model::ValidateReply {
        data_summary: "10000 examples x 784 features, 10 classes".into(),
        model: cnn_layers(),
        model_summary: "1x28x28 -> 10: 2 conv2d, 2 max_pool2d, 2 dense; 421642 parameters".into(),
        ..Default::default()
    }));
    let text = render(&app, 160, 48);
    let joined: String = text.lines().filter_map(|l| l.split("││").nth(1)).collect::<Vec<_>>().join(" ");
    let joined = joined
        .split(|c: char| c == '│' || c == '"' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        joined.contains("model: 1x28x28 -> 10: 2 conv2d, 2 max_pool2d, 2 dense; 421642 parameters"),
        "{joined}"
    );
    assert!(joined.contains("conv2d 3x3 32 same relu → 32x28x28"), "{text}");
}

#[test]
fn the_dashboard_before_a_start_and_after_the_end() {
    let mut app = App::new("http://127.0.0.1:7878", true, false);
    app.handle_msg(Msg::Snapshot(model::JobSnapshot {
        job_name: "demo".into(),
        job_toml: "name = \"demo\"\n".into(),
        state: model::JobState::Ready,
        ..Default::default()
    }));
    app.handle_msg(Msg::Form(model::JobForm {
        fields: vec![field("train.epochs", "60", model::FieldKind::Integer, &[], "Passes")],
        problems: vec![],
        toml: "T".into(),
    }));
    app.screen = Screen::Dashboard;
    let text = render(&app, 80, 24);
    assert!(text.contains("not started: the Setup job trains 60 epochs; press s to start"), "{text}");
    assert!(!text.contains("epoch 1/1"), "{text}");
    let mut ended = fixture();
    ended.handle_msg(Msg::Delta(model::JobDelta {
        state: Some(model::JobState::Finished),
        model_dir: "strom-runs/fashion-mnist-demo".into(),
        ..Default::default()
    }));
    ended.screen = Screen::Dashboard;
    let text = render(&ended, 100, 30);
    assert!(text.contains("model saved to strom-runs/fashion-mnist-demo"), "{text}");
}

/// A language model's run: the Dashboard charts the held-out loss in nats per token and its
/// perplexity where other models show test accuracy.
#[test]
fn a_language_model_shows_held_out_loss_and_perplexity() {
    let mut app = fixture();
    app.handle_msg(Msg::Delta(model::JobDelta {
        new_epochs: vec![model::EpochPoint {
            epoch: 2,
            test_accuracy: Some(0.41),
            language_loss: Some(1.9265),
            divergence: None,
        }],
        ..Default::default()
    }));
    app.screen = Screen::Dashboard;
    let text = render(&app, 100, 30);
    assert!(text.contains("Held-out 1.927 nats/token, perplexity 6.87"), "{text}");
    assert!(!text.contains("Test accuracy"), "{text}");
    insta::assert_snapshot!("dashboard_language_100x30", text);
}

/// Each sharing scheme's own figure in the worker tables: k for top-k, the rank (or "dense"
/// while warming up) for PowerSGD, bytes per step for dense16.
#[test]
fn the_worker_tables_show_each_schemes_figure() {
    for (mode, header, values) in [
        ("topk", " k ", ["235", "58,787"]),
        ("powersgd", "rank", ["2", "dense"]),
        ("dense16", "B/step", ["471.3kB", "471.3kB"]),
    ] {
        let mut app = fixture();
        app.job.sharing_mode = mode.into();
        for (id, w) in app.job.workers.iter_mut() {
            w.k = if *id == 2 { 58_787 } else { 235 };
            w.rank = if *id == 2 { 0 } else { 2 };
            w.step_bytes = 471_320;
        }
        for screen in [Screen::Workers, Screen::Dashboard] {
            app.screen = screen;
            let text = render(&app, 100, 30);
            assert!(text.contains(header), "{mode} {screen:?}: no {header} column:\n{text}");
            for v in values {
                assert!(text.contains(v), "{mode} {screen:?}: no {v}:\n{text}");
            }
            assert!(!text.contains("tau "), "{mode} {screen:?}: no tau column:\n{text}");
        }
        app.screen = Screen::Workers;
        insta::assert_snapshot!(format!("workers_{mode}_100x30"), render(&app, 100, 30));
    }
}

/// A straggler reads `slow` in the Workers table; a wide terminal shows each worker's step time
/// and relay queue.
#[test]
fn a_straggler_reads_slow_and_wide_tables_show_step_time_and_queue() {
    let mut app = fixture();
    for (id, w) in app.job.workers.iter_mut() {
        w.state = crate::model::WorkerState::Training;
        w.step_seconds = if *id == 2 { 0.0412 } else { 0.0198 };
        w.straggler = *id == 2;
        w.pending = if *id == 2 { 17 } else { 0 };
    }
    app.screen = Screen::Workers;
    let narrow = render(&app, 100, 30);
    assert_eq!(narrow.matches("slow").count(), 1, "{narrow}");
    let wide = render(&app, 180, 30);
    for v in ["ms/step", "queue", "41.2", "19.8", "17"] {
        assert!(wide.contains(v), "no {v}:\n{wide}");
    }
    insta::assert_snapshot!("workers_straggler_180x30", wide);
}
