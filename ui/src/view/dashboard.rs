//! The dashboard: progress, throughput, bytes on the wire; loss and test accuracy; sparsity
//! per worker on a log axis with the target band; per-worker numbers; warnings.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph};

use super::fmt;
use crate::app::App;
use crate::model::{JobState, WorkerState};
use crate::state::{JobView, warnings};

/// Colours cycle for workers; each line also carries its worker number as text.
const PALETTE: [Color; 6] =
    [Color::Cyan, Color::Magenta, Color::Yellow, Color::Green, Color::Blue, Color::Red];

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let job = app.view();
    let warns = warnings(job);
    let workers = job.workers.len().min(8) as u16;
    let warn_h = if warns.is_empty() { 0 } else { (warns.len() as u16).min(3) + 1 };
    let summary_h = if job.model_dir.is_empty() { 2 } else { 3 };
    let [summary, charts, sparsity, table, warn] = Layout::vertical([
        Constraint::Length(summary_h),
        Constraint::Fill(1),
        Constraint::Fill(1),
        Constraint::Length(workers + 1),
        Constraint::Length(warn_h),
    ])
    .areas(area);
    draw_summary(f, summary, app);
    let [loss, acc] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(charts);
    draw_loss(f, loss, job);
    draw_accuracy(f, acc, job);
    draw_sparsity(f, sparsity, job);
    draw_workers(f, table, job);
    if !warns.is_empty() {
        let mut lines = vec![Line::from("Warnings").bold()];
        lines.extend(
            warns.iter().take(3).map(|w| Line::styled(format!("! {}", w.text), Style::new().fg(Color::Red))),
        );
        f.render_widget(Paragraph::new(lines), warn);
    }
}

/// Whether the job shown has started (a run exists on the coordinator).
fn started(job: &JobView) -> bool {
    !matches!(job.state, JobState::Ready | JobState::Idle | JobState::Unspecified)
}

fn draw_summary(f: &mut Frame, area: Rect, app: &App) {
    let job = app.view();
    let p = &job.progress;
    let t = &job.totals;
    if !started(job) {
        let planned = app
            .setup
            .fields
            .iter()
            .find(|f| f.key == "train.epochs")
            .map(|f| if f.value.is_empty() { "the default number of".to_string() } else { f.value.clone() })
            .unwrap_or_else(|| "its".into());
        let lines = vec![
            Line::from(format!("not started: the Setup job trains {planned} epochs; press s to start")),
            Line::from("the charts fill in as workers report").italic(),
        ];
        f.render_widget(Paragraph::new(lines), area);
        return;
    }
    let epochs = p.epochs.max(1);
    let frac =
        if p.partitions_total > 0 { p.partitions_done as f64 / p.partitions_total as f64 } else { 0.0 };
    let filled = (frac * 10.0).round() as usize;
    let bar = format!("{}{}", "#".repeat(filled), ".".repeat(10 - filled.min(10)));
    let eta = if p.eta_seconds >= 0.0 { fmt::duration(p.eta_seconds) } else { "-".into() };
    let line1 = format!(
        "epoch {}/{} [{bar}] {}/{} partitions  elapsed {}  ETA {eta}",
        (p.epoch + 1).min(epochs),
        epochs,
        p.partitions_done,
        p.partitions_total,
        fmt::duration(p.elapsed_seconds)
    );
    let lost = job.workers.values().filter(|w| w.state == WorkerState::Lost).count();
    let wire = if t.bytes_sent > 0 && t.compression_ratio > 0.0 {
        format!("sent {} ({:.0}x < dense)", fmt::bytes(t.bytes_sent), t.compression_ratio)
    } else {
        format!("sent {}", fmt::bytes(t.bytes_sent))
    };
    // Most important first; what does not fit the width is left out.
    let parts = [
        format!("{} samples/s", fmt::count(p.samples_per_sec)),
        wire,
        format!("workers {} live, {lost} lost", job.live_workers()),
        if job.sharing_mode.is_empty() { String::new() } else { format!("sharing {}", job.sharing_mode) },
    ];
    let mut line2 = String::new();
    for part in parts.iter().filter(|p| !p.is_empty()) {
        let sep = if line2.is_empty() { "" } else { " · " };
        if line2.chars().count() + sep.len() + part.chars().count() > area.width as usize {
            break;
        }
        line2.push_str(sep);
        line2.push_str(part);
    }
    let mut lines = vec![Line::from(line1), Line::from(line2)];
    if !job.model_dir.is_empty() {
        lines.push(
            Line::from(format!("model saved to {} (strom eval --model {})", job.model_dir, job.model_dir))
                .bold(),
        );
    }
    f.render_widget(Paragraph::new(lines), area);
}

fn block(title: &str) -> Block<'static> {
    Block::default().borders(Borders::ALL).title(format!(" {title} "))
}

fn bounds(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    (lo <= hi).then_some((lo, hi))
}

fn empty(f: &mut Frame, area: Rect, title: &str, text: &str) {
    f.render_widget(Paragraph::new(Line::from(text).italic()).block(block(title)), area);
}

fn draw_loss(f: &mut Frame, area: Rect, job: &JobView) {
    let points: Vec<(f64, f64)> =
        job.loss.iter().filter(|p| p.loss.is_finite()).map(|p| (p.time, p.loss)).collect();
    let (Some((x0, x1)), Some((_, y1))) =
        (bounds(points.iter().map(|p| p.0)), bounds(points.iter().map(|p| p.1)))
    else {
        return empty(f, area, "Training loss", "no steps yet");
    };
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    let last = points.last().map(|p| p.1).unwrap_or(0.0);
    let chart = Chart::new(vec![
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(Color::Cyan))
            .data(&points),
    ])
    .block(block(&format!("Training loss {last:.3}")))
    .x_axis(Axis::default().bounds([x0, x1]).labels([fmt::duration(x0), fmt::duration(x1)]))
    .y_axis(Axis::default().bounds([0.0, y1 * 1.05]).labels(["0".to_string(), format!("{:.2}", y1)]));
    f.render_widget(chart, area);
}

fn draw_accuracy(f: &mut Frame, area: Rect, job: &JobView) {
    if job.epochs.last().is_some_and(|e| e.language_loss.is_some()) {
        // A language model: its held-out loss (nats per token) and perplexity instead.
        let points: Vec<(f64, f64)> =
            job.epochs.iter().filter_map(|e| e.language_loss.map(|l| ((e.epoch + 1) as f64, l))).collect();
        let Some((lo, hi)) = bounds(points.iter().map(|p| p.1)) else {
            return empty(f, area, "Held-out loss", "after the first epoch");
        };
        let last = points.last().map(|p| p.1).unwrap_or(0.0);
        let title = format!("Held-out {last:.3} nats/token, perplexity {:.2}", last.exp());
        return epoch_chart(f, area, job, &points, &title, ((lo - 0.1).max(0.0), hi + 0.1));
    }
    let points: Vec<(f64, f64)> =
        job.epochs.iter().filter_map(|e| e.test_accuracy.map(|a| ((e.epoch + 1) as f64, a))).collect();
    let Some((lo, hi)) = bounds(points.iter().map(|p| p.1)) else {
        return empty(f, area, "Test accuracy", "after the first epoch");
    };
    let lo = (lo - 0.05).max(0.0).min(hi - 0.01);
    let last = points.last().map(|p| p.1).unwrap_or(0.0);
    epoch_chart(f, area, job, &points, &format!("Test accuracy {last:.4}"), (lo, hi.max(lo + 0.01)));
}

/// One figure per epoch, as a line over the job's epochs.
fn epoch_chart(
    f: &mut Frame,
    area: Rect,
    job: &JobView,
    points: &[(f64, f64)],
    title: &str,
    (lo, hi): (f64, f64),
) {
    let n = job.progress.epochs.max(points.len() as u32).max(1) as f64;
    let chart = Chart::new(vec![
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(Color::Green))
            .data(points),
    ])
    .block(block(title))
    .x_axis(Axis::default().bounds([1.0, n.max(2.0)]).labels(["1".to_string(), format!("{n:.0}")]))
    .y_axis(Axis::default().bounds([lo, hi]).labels([format!("{lo:.2}"), format!("{hi:.2}")]));
    f.render_widget(chart, area);
}

fn draw_sparsity(f: &mut Frame, area: Rect, job: &JobView) {
    let per_worker: Vec<(u32, Vec<(f64, f64)>)> = job
        .series
        .iter()
        .map(|(w, s)| {
            let pts = s
                .time
                .iter()
                .zip(&s.sparsity)
                .filter(|(_, v)| **v > 0.0 && v.is_finite())
                .map(|(t, v)| (*t, v.log10()))
                .collect();
            (*w, pts)
        })
        .collect();
    let all = per_worker.iter().flat_map(|(_, p)| p.iter());
    let (Some((x0, x1)), Some((y0, y1))) = (bounds(all.clone().map(|p| p.0)), bounds(all.map(|p| p.1)))
    else {
        return empty(f, area, "Sparsity (entries sent / parameters), log scale", "no updates sent yet");
    };
    let (mut y0, mut y1) = (y0, y1);
    if let Some((lo, hi)) = job.band {
        y0 = y0.min(lo.log10());
        y1 = y1.max(hi.log10());
    }
    let (y0, y1) = ((y0 - 0.3).floor(), (y1 + 0.3).ceil());
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    let band: Vec<Vec<(f64, f64)>> = match job.band {
        Some((lo, hi)) => {
            vec![vec![(x0, lo.log10()), (x1, lo.log10())], vec![(x0, hi.log10()), (x1, hi.log10())]]
        }
        None => vec![],
    };
    let mut datasets: Vec<Dataset> = band
        .iter()
        .map(|b| {
            Dataset::default()
                .marker(Marker::Dot)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(Color::DarkGray))
                .data(b)
        })
        .collect();
    if let Some(d) = datasets.first_mut() {
        *d = d.clone().name("band");
    }
    for (i, (w, pts)) in per_worker.iter().enumerate() {
        datasets.push(
            Dataset::default()
                .name(format!("w{w}"))
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(PALETTE[i % PALETTE.len()]))
                .data(pts),
        );
    }
    let label = |e: f64| format!("1e{}", e as i32);
    let title = match job.band {
        Some((lo, hi)) => {
            format!("Sparsity, log scale; target band {} .. {} dotted", fmt::sci(lo), fmt::sci(hi))
        }
        None => "Sparsity (entries sent / parameters), log scale".to_string(),
    };
    let chart = Chart::new(datasets)
        .block(block(&title))
        .x_axis(Axis::default().bounds([x0, x1]).labels([fmt::duration(x0), fmt::duration(x1)]))
        .y_axis(Axis::default().bounds([y0, y1]).labels([label(y0), label(y1)]));
    f.render_widget(chart, area);
}

fn draw_workers(f: &mut Frame, area: Rect, job: &JobView) {
    let wide = area.width >= 110;
    let mode = job.sharing_mode.as_str();
    let figure = fmt::scheme_header(mode);
    let mut lines = vec![
        Line::from(if wide {
            format!(
                "worker  state      samples/s  sparsity  {figure:<7}  residual  throughput            loss     sent"
            )
        } else {
            format!("worker  state     samples/s sparsity {figure:<7} residual throughput")
        })
        .bold(),
    ];
    for (i, (id, w)) in job.workers.iter().enumerate().take(area.height.saturating_sub(1) as usize) {
        let state = format!("{:?}", w.state).to_lowercase();
        let spark = job
            .series
            .get(id)
            .map(|s| fmt::sparkline(s.samples_per_sec.iter(), if wide { 20 } else { 12 }))
            .unwrap_or_default();
        let text = if wide {
            format!(
                "w{id:<5} {state:<10} {:>9}  {:>8}  {:>7}  {:>8}  {spark:<20}  {:>7.4}  {:>8}",
                fmt::count(w.samples_per_sec),
                fmt::sci(w.sparsity),
                fmt::scheme_figure(mode, w),
                format!("{:.4}", w.residual_norm),
                w.loss,
                fmt::bytes(w.bytes_sent)
            )
        } else {
            format!(
                "w{id:<5} {state:<9} {:>9} {:>8} {:>7} {:>8} {spark}",
                fmt::count(w.samples_per_sec),
                fmt::sci(w.sparsity),
                fmt::scheme_figure(mode, w),
                format!("{:.4}", w.residual_norm)
            )
        };
        lines.push(Line::from(vec![Span::styled(text, Style::new().fg(PALETTE[i % PALETTE.len()]))]));
    }
    f.render_widget(Paragraph::new(lines), area);
}
