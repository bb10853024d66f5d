//! The workers table: id, host, device, state (`slow` for a straggler: a step time above 1.25x
//! the median of the others'), throughput, sparsity, the scheme's figure (tau, k, rank or bytes
//! per step), residual norm, lag, last heartbeat (and more columns when the terminal is wide:
//! step time and relay queue among them); below it, the selected
//! worker's last step layer by layer (entries sent, residual norm), so a user sees which
//! layers dominate traffic.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};

use super::fmt;
use crate::app::App;

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let job = app.view();
    let selected = app.selected_worker_id().and_then(|id| job.workers.get(&id));
    let area = match selected.filter(|w| !w.layers.is_empty()) {
        Some(w) if area.height >= 12 => {
            let want = (w.layers.len() as u16 + 3).min(area.height / 2);
            let [top, bottom] = Layout::vertical([Constraint::Min(5), Constraint::Length(want)]).areas(area);
            draw_layers(f, bottom, app, w);
            top
        }
        _ => area,
    };
    if job.workers.is_empty() {
        let text = if job.is_running() {
            "waiting for workers to join"
        } else {
            "no workers: press s to start the job"
        };
        f.render_widget(
            Paragraph::new(Line::from(text).italic())
                .block(Block::default().borders(Borders::ALL).title(" Workers ")),
            area,
        );
        return;
    }
    // The extra columns take 87 cells: below 175 they would squeeze the host column.
    let wide = area.width >= 175;
    // The host column takes what the other columns, the spacing and the borders leave (72
    // cells, 159 when wide), up to 48.
    let fixed = if wide { 159 } else { 72 };
    let host_width = (area.width as usize).saturating_sub(fixed).clamp(6, 48);
    let mode = job.sharing_mode.as_str();
    let mut header = vec![
        "",
        "id",
        "host",
        "device",
        "state",
        "samples/s",
        "sparsity",
        fmt::scheme_header(mode),
        "residual",
        "lag",
        "seen",
    ];
    if wide {
        header
            .extend(["step", "ms/step", "queue", "loss", "sent", "received", "merged", "restarts", "memory"]);
    }
    let rows: Vec<Row> = job
        .workers
        .values()
        .enumerate()
        .map(|(i, w)| {
            let selected = i == app.selected_worker;
            let slow = w.straggler && w.state == crate::model::WorkerState::Training;
            let state = if slow { "slow".to_string() } else { format!("{:?}", w.state).to_lowercase() };
            let mut cells = vec![
                Cell::from(if selected { "›" } else { " " }),
                Cell::from(w.id.to_string()),
                Cell::from(fmt::truncate_start(&w.host, host_width)),
                Cell::from(w.device.clone()),
                if slow { Cell::from(state).yellow().bold() } else { Cell::from(state) },
                Cell::from(fmt::count(w.samples_per_sec)),
                Cell::from(fmt::sci(w.sparsity)),
                Cell::from(fmt::scheme_figure(mode, w)),
                Cell::from(format!("{:.4}", w.residual_norm)),
                Cell::from(w.lag.to_string()),
                Cell::from(format!("{:.0}s", w.last_heartbeat)),
            ];
            if wide {
                let memory = if w.memory_total > 0 {
                    format!("{}/{}", fmt::bytes(w.memory_used), fmt::bytes(w.memory_total))
                } else {
                    fmt::bytes(w.memory_used)
                };
                cells.extend([
                    Cell::from(w.step.to_string()),
                    Cell::from(if w.step_seconds > 0.0 {
                        format!("{:.1}", w.step_seconds * 1e3)
                    } else {
                        "-".into()
                    }),
                    Cell::from(w.pending.to_string()),
                    Cell::from(format!("{:.4}", w.loss)),
                    Cell::from(fmt::bytes(w.bytes_sent)),
                    Cell::from(fmt::bytes(w.bytes_received)),
                    Cell::from(w.merged.to_string()),
                    Cell::from(w.restarts.to_string()),
                    Cell::from(memory),
                ]);
            }
            let row = Row::new(cells);
            if selected { row.style(Style::new().add_modifier(Modifier::REVERSED)) } else { row }
        })
        .collect();
    let mut widths = vec![
        Constraint::Length(1),
        Constraint::Length(3),
        Constraint::Length(host_width as u16),
        Constraint::Length(6),
        Constraint::Length(8),
        Constraint::Length(9),
        Constraint::Length(8),
        Constraint::Length(7),
        Constraint::Length(8),
        Constraint::Length(5),
        Constraint::Length(5),
    ];
    if wide {
        widths.extend([
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(6),
            Constraint::Length(7),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Length(7),
            Constraint::Length(8),
            Constraint::Length(18),
        ]);
    }
    let detail = app
        .selected_worker_id()
        .and_then(|id| job.workers.get(&id))
        .filter(|w| !w.detail.is_empty())
        .map(|w| format!(" — w{}: {}", w.id, w.detail))
        .unwrap_or_default();
    let table =
        Table::new(rows, widths).header(Row::new(header).style(Style::new().bold())).column_spacing(1).block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" Workers ({}){detail} ", job.workers.len())),
        );
    f.render_widget(table, area);
}

/// The selected worker's last step per layer: what share of the message each layer sent.
fn draw_layers(f: &mut Frame, area: Rect, app: &App, w: &crate::model::WorkerInfo) {
    let job = app.view();
    let total: u64 = w.layers.iter().map(|l| l.entries).sum();
    let rows: Vec<Row> = w
        .layers
        .iter()
        .map(|l| {
            let model = job.model.iter().find(|m| m.index == l.layer);
            let (name, params) = model.map(|m| (m.description.as_str(), m.parameters)).unwrap_or(("", 0));
            let share = if total > 0 { 100.0 * l.entries as f64 / total as f64 } else { 0.0 };
            let density = if params > 0 { l.entries as f64 / params as f64 } else { 0.0 };
            Row::new(vec![
                Cell::from(l.layer.to_string()),
                Cell::from(fmt::truncate(name, 28)),
                Cell::from(fmt::count(params as f64)),
                Cell::from(l.entries.to_string()),
                Cell::from(format!("{share:.0}%")),
                Cell::from(fmt::sci(density)),
                Cell::from(format!("{:.4}", l.residual_norm)),
            ])
        })
        .collect();
    let widths = [
        Constraint::Length(3),
        Constraint::Min(12),
        Constraint::Length(10),
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(8),
        Constraint::Length(9),
    ];
    let header = Row::new(vec!["#", "layer", "params", "sent", "share", "density", "residual"])
        .style(Style::new().bold());
    let table = Table::new(rows, widths).header(header).column_spacing(1).block(
        Block::default()
            .borders(Borders::ALL)
            .title(format!(" w{}: last step by layer ({total} entries) ", w.id)),
    );
    f.render_widget(table, area);
}
