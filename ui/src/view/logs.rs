//! The coordinator's and workers' log lines, filtered by level and source.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::fmt;
use crate::app::App;
use crate::state::{LEVELS, level_rank};

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let [head, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    let logs = &app.logs;
    let source = match logs.source {
        None => "all".to_string(),
        Some(None) => "coordinator".to_string(),
        Some(Some(w)) => format!("worker {w}"),
    };
    let visible: Vec<_> = logs.visible().collect();
    let follow = if logs.scroll == 0 { "following".to_string() } else { format!("{} lines up", logs.scroll) };
    let head_text = format!(
        " level ≥ {} · source: {source} · {} lines · {follow}",
        LEVELS[logs.min_level as usize],
        visible.len()
    );
    f.render_widget(Paragraph::new(Line::from(head_text).bold()), head);
    let height = body.height.saturating_sub(2) as usize;
    let end = visible.len().saturating_sub(logs.scroll);
    let start = end.saturating_sub(height);
    let width = body.width.saturating_sub(2) as usize;
    let lines: Vec<Line> = visible[start..end]
        .iter()
        .map(|r| {
            let who = r.worker.map(|w| format!("w{w}")).unwrap_or_else(|| "coord".into());
            let level = r.level.to_uppercase();
            let style = match level_rank(&level) {
                4 => Style::new().fg(Color::Red),
                3 => Style::new().fg(Color::Yellow),
                0 | 1 => Style::new().fg(Color::DarkGray),
                _ => Style::new(),
            };
            let text = format!("{} {:<5} {:<5} {}", fmt::clock(r.time), level, who, r.message);
            Line::from(vec![Span::styled(fmt::truncate(&text, width), style)])
        })
        .collect();
    let empty = lines.is_empty();
    let mut p = Paragraph::new(lines);
    if empty {
        p = Paragraph::new(Line::from("no log lines yet").italic());
    }
    f.render_widget(p.block(Block::default().borders(Borders::ALL).title(" Logs ")), body);
}
