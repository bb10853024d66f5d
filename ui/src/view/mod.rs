//! Drawing: the frame around every screen (header, tabs, command bar), the screens, and the
//! overlays. Everything is readable at 80x24, and no meaning is carried by colour alone:
//! states are words, the selected tab is bracketed, the selected row is marked.

mod dashboard;
pub mod fmt;
mod logs;
mod setup;
mod workers;

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use crate::app::{App, Overlay, PromptKind};
use crate::keys::{OverlayKind, Screen, bar_for, bindings_for, overlay_bindings, overlay_footer};
use crate::model;
use crate::state::Connection;
use crate::tour;

pub fn draw(f: &mut Frame, app: &App) {
    let [header, tabs, body, bar] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(f.area());
    draw_header(f, header, app);
    draw_tabs(f, tabs, app);
    match app.screen {
        Screen::Setup => setup::draw(f, body, app),
        Screen::Dashboard => dashboard::draw(f, body, app),
        Screen::Workers => workers::draw(f, body, app),
        Screen::Logs => logs::draw(f, body, app),
    }
    draw_bar(f, bar, app);
    match &app.overlay {
        Some(Overlay::Help) => draw_help(f, app),
        Some(Overlay::Confirm(c)) => draw_box(
            f,
            "Confirm",
            vec![
                Line::from(c.question(app.job.is_running())),
                Line::from(""),
                Line::from(overlay_footer(OverlayKind::Confirm)).bold(),
            ],
            60,
            5,
        ),
        Some(Overlay::Prompt { kind, line }) => {
            let (title, what) = match kind {
                PromptKind::Open => ("Open job file", "Path of a job file (TOML) to open:"),
                PromptKind::Save => ("Write job file", "Path to write the job to:"),
                PromptKind::AddWorkers => (
                    "Add workers",
                    "How many, and where: `2` (the job's launcher), `2 local` (this machine) or `2 user@host[:port]` (SSH):",
                ),
            };
            draw_box(
                f,
                title,
                vec![
                    Line::from(what),
                    Line::from(line.spans_within(66, Style::new().bold())),
                    Line::from(""),
                    Line::from(overlay_footer(OverlayKind::Prompt)),
                ],
                70,
                if *kind == PromptKind::AddWorkers { 7 } else { 6 },
            );
        }
        Some(Overlay::Tour(step)) => draw_tour(f, *step),
        None => {}
    }
}

pub fn state_word(s: model::JobState) -> &'static str {
    match s {
        model::JobState::Unspecified => "-",
        model::JobState::Ready => "READY",
        model::JobState::Running => "RUNNING",
        model::JobState::Paused => "PAUSED",
        model::JobState::Finished => "FINISHED",
        model::JobState::Failed => "FAILED",
        model::JobState::Stopped => "STOPPED",
        model::JobState::Idle => "IDLE",
    }
}

fn state_style(s: model::JobState) -> Style {
    let c = match s {
        model::JobState::Running => Color::Green,
        model::JobState::Paused => Color::Yellow,
        model::JobState::Failed => Color::Red,
        model::JobState::Finished => Color::Cyan,
        _ => Color::Reset,
    };
    Style::new().fg(c).add_modifier(Modifier::BOLD)
}

/// Characters of the connection's state the header keeps however long the job's detail is.
const CONNECTION_KEEPS: usize = 24;

fn draw_header(f: &mut Frame, area: Rect, app: &App) {
    let job = app.view();
    let mut spans = vec![Span::from(" strom ").bold().reversed(), Span::from(" ")];
    if !job.name.is_empty() {
        spans.push(Span::from(job.name.clone()).bold());
        spans.push(Span::from(" "));
    }
    spans.push(Span::styled(state_word(job.state), state_style(job.state)));
    let frozen = if app.frozen.is_some() { " [FROZEN]" } else { "" };
    let (conn, style) = match &app.conn {
        Connection::Connected => (format!("● connected {}", app.url), Style::new().fg(Color::Green)),
        Connection::Connecting => (format!("○ connecting to {}", app.url), Style::new().fg(Color::Yellow)),
        // The job ended and its coordinator went with it: say so, not "reconnecting".
        Connection::Reconnecting { .. }
            if matches!(
                job.state,
                model::JobState::Finished | model::JobState::Stopped | model::JobState::Failed
            ) =>
        {
            ("○ the coordinator has gone (its job ended)".to_string(), Style::new().fg(Color::Yellow).bold())
        }
        c @ Connection::Reconnecting { .. } => {
            (format!("○ {}", c.label()), Style::new().fg(Color::Red).bold())
        }
        c @ Connection::Refused(_) => (format!("✗ {}", c.label()), Style::new().fg(Color::Red).bold()),
    };
    let width = area.width as usize;
    // The job's detail gives way before the connection's state does (its first words stay).
    if !job.detail.is_empty() {
        let used = Line::from(spans.clone()).width() + frozen.len();
        let keep = conn.chars().count().min(CONNECTION_KEEPS);
        let room = width.saturating_sub(used + keep + 4);
        if room > 3 {
            spans.push(Span::from(format!(" ({})", fmt::truncate(&job.detail, room))));
        }
    }
    if !frozen.is_empty() {
        spans.push(Span::from(frozen).bold());
    }
    let left = Line::from(spans);
    let used = left.width();
    let conn = fmt::truncate(&conn, width.saturating_sub(used + 1));
    let pad = width.saturating_sub(used + conn.chars().count());
    let mut all = left.spans;
    all.push(Span::from(" ".repeat(pad)));
    all.push(Span::styled(conn, style));
    f.render_widget(Paragraph::new(Line::from(all)), area);
}

fn draw_tabs(f: &mut Frame, area: Rect, app: &App) {
    let mut spans = vec![Span::from(" ")];
    for s in Screen::ALL {
        if s == app.screen {
            spans.push(Span::from(format!("[{}]", s.title())).bold().reversed());
        } else {
            spans.push(Span::from(format!(" {} ", s.title())));
        }
        spans.push(Span::from(" "));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_bar(f: &mut Frame, area: Rect, app: &App) {
    if let Some(status) = &app.status {
        let (prefix, style) = if status.error {
            ("error: ", Style::new().fg(Color::Red).bold())
        } else {
            ("", Style::new().bold())
        };
        let text = fmt::truncate(&format!(" {prefix}{}", status.text), area.width as usize);
        f.render_widget(Paragraph::new(Line::styled(text, style)), area);
        return;
    }
    // Help and quit always stay; the others, in table order, as long as they fit.
    let items = bar_for(app.screen);
    let essential = |name: &str| matches!(name, "help" | "quit");
    let cost = |key: &str, name: &str| key.chars().count() + name.len() + 3;
    let mut room = (area.width as usize)
        .saturating_sub(items.iter().filter(|(_, n)| essential(n)).map(|(k, n)| cost(k, n)).sum());
    let mut spans = Vec::new();
    for (key, name) in items {
        if !essential(name) {
            let w = cost(key, name);
            if w > room {
                room = 0;
                continue;
            }
            room -= w;
        }
        spans.push(Span::from(format!(" {key}")).bold().reversed());
        spans.push(Span::from(format!(" {name} ")));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// A centred rectangle of at most `w` x `h` within `area`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let [v] = Layout::vertical([Constraint::Length(h.min(area.height))]).flex(Flex::Center).areas(area);
    let [r] = Layout::horizontal([Constraint::Length(w.min(area.width))]).flex(Flex::Center).areas(v);
    r
}

fn draw_box(f: &mut Frame, title: &str, lines: Vec<Line<'static>>, w: u16, h: u16) {
    let area = centered(f.area(), w, h + 2);
    f.render_widget(Clear, area);
    let block =
        Block::default().borders(Borders::ALL).title(format!(" {title} ")).title_style(Style::new().bold());
    f.render_widget(Paragraph::new(lines).block(block).wrap(Wrap { trim: false }), area);
}

fn draw_help(f: &mut Frame, app: &App) {
    let bindings = bindings_for(app.screen);
    let mut lines: Vec<Line> = bindings
        .iter()
        .map(|b| Line::from(vec![Span::from(format!("{:>10}  ", b.label)).bold(), Span::from(b.help)]))
        .collect();
    if app.screen == Screen::Setup {
        // Typing a field or a path: the line editor's keys, from the same table.
        lines.push(Line::from("While typing a field or a path:").bold());
        let typing: Vec<String> = overlay_bindings(OverlayKind::Prompt)
            .map(|b| format!("{} {}", b.label, short(b.action.help())))
            .collect();
        lines.push(Line::from(format!("  {}", typing.join(" · "))));
    }
    lines.push(Line::from(""));
    lines.push(Line::from("any key closes this help").italic());
    let h: u16 = lines.iter().map(|l| l.width().max(1).div_ceil(70) as u16).sum();
    draw_box(f, &format!("Keys on {}", app.screen.title()), lines, 72, h);
}

/// The first words of a help text (the typing keys' one-line summary).
fn short(help: &str) -> &str {
    help.split(':').next().unwrap_or(help).split(" (").next().unwrap_or(help)
}

fn draw_tour(f: &mut Frame, step: usize) {
    let Some(s) = tour::STEPS.get(step) else { return };
    let mut lines: Vec<Line> =
        s.text.split("\n\n").flat_map(|p| [Line::from(p.to_string()), Line::from("")]).collect();
    lines.push(
        Line::from(format!("{}   ({}/{})", overlay_footer(OverlayKind::Tour), step + 1, tour::STEPS.len()))
            .bold(),
    );
    let area = f.area();
    let w = 64.min(area.width);
    let text_width = w.saturating_sub(2).max(1) as usize;
    let h: u16 = lines.iter().map(|l| (l.width().max(1).div_ceil(text_width)) as u16).sum();
    // Bottom right, so the figures it explains stay visible.
    let rect = Rect {
        x: area.width.saturating_sub(w),
        y: area.height.saturating_sub(h + 3),
        width: w,
        height: (h + 2).min(area.height),
    };
    f.render_widget(Clear, rect);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(format!(" Tour: {} ", s.title))
        .title_style(Style::new().bold());
    f.render_widget(Paragraph::new(lines).block(block).wrap(Wrap { trim: true }), rect);
}

#[cfg(test)]
mod tests;

/// The screen whose tab title is at column `x` of the tab row (mouse clicks).
pub fn tab_at(x: u16) -> Option<Screen> {
    let mut at = 1u16;
    for s in Screen::ALL {
        let w = s.title().len() as u16 + 2;
        if x >= at && x < at + w {
            return Some(s);
        }
        at += w + 1;
    }
    None
}
