//! The job form: every key with its value, grouped by section, validated as it is typed.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::fmt;
use crate::app::{App, Row};
use crate::model;

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let setup = &app.setup;
    if setup.fields.is_empty() {
        let refused;
        let text = match (&app.conn, app.view().state) {
            (crate::state::Connection::Refused(why), _) => {
                refused = format!(
                    "Not connected to {}: {why}. Fix it and start the cockpit again (q quits).",
                    app.url
                );
                refused.as_str()
            }
            (_, model::JobState::Idle) => "No job is loaded on this coordinator: press o to open a job file.",
            _ => "Loading the job form...",
        };
        f.render_widget(
            Paragraph::new(Line::from(text).italic())
                .wrap(Wrap { trim: true })
                .block(Block::default().borders(Borders::ALL).title(" Job ")),
            area,
        );
        return;
    }
    let side = area.width >= 110;
    let (list_area, info_area) = if side {
        let [l, r] = Layout::horizontal([Constraint::Percentage(62), Constraint::Percentage(38)]).areas(area);
        (l, r)
    } else {
        // The panel grows with what it has to say (the checked data and model after v), up to
        // half the screen; the list keeps the rest.
        let lines = info_lines(app);
        let width = area.width.saturating_sub(2).max(1) as usize;
        let needed: usize = lines.iter().map(|l| l.width().max(1).div_ceil(width)).sum();
        let h = (needed as u16 + 2).clamp(5, (area.height / 2).max(5));
        let [l, r] = Layout::vertical([Constraint::Min(5), Constraint::Length(h)]).areas(area);
        (l, r)
    };
    draw_list(f, list_area, app);
    draw_info(f, info_area, app);
}

fn draw_list(f: &mut Frame, area: Rect, app: &App) {
    let setup = &app.setup;
    let rows = setup.rows();
    let height = area.height.saturating_sub(2) as usize;
    // Keep the selected row in view.
    let start =
        setup.selected.saturating_sub(height.saturating_sub(1) / 2).min(rows.len().saturating_sub(height));
    let inner = area.width.saturating_sub(2) as usize;
    let key_w = (inner * 45 / 100).clamp(12, 34);
    let lines: Vec<Line> = rows
        .iter()
        .enumerate()
        .skip(start)
        .take(height)
        .map(|(r, row)| {
            let selected = r == setup.selected;
            let i = match row {
                Row::Section { name, hidden } => {
                    let text = if *hidden > 0 {
                        format!("{}▸ {name} ({hidden} more: Enter)", if selected { "›" } else { " " })
                    } else {
                        format!("{}▾ {name}", if selected { "›" } else { " " })
                    };
                    let mut style = Style::new().add_modifier(Modifier::BOLD);
                    if selected {
                        style = style.add_modifier(Modifier::REVERSED);
                    }
                    return Line::from(Span::styled(text, style));
                }
                Row::Field(i) => *i,
            };
            let field = &setup.fields[i];
            let problem = setup.problem_for(&field.key);
            let room = inner.saturating_sub(key_w + 3);
            if let Some((line, _, _)) = setup.editing.as_ref().filter(|e| e.2 == field.key) {
                // Being typed: the text with its cursor.
                let mark = if problem.is_some() { "✗" } else { " " };
                let mut style = Style::new().add_modifier(Modifier::BOLD);
                if problem.is_some() {
                    style = style.fg(Color::Red);
                }
                let mut spans = vec![Span::styled(
                    format!("›{mark}{:<key_w$} ", fmt::truncate(&field.key, key_w)),
                    style,
                )];
                spans.extend(line.spans_within(room.saturating_sub(1), style));
                return Line::from(spans);
            }
            let value = if field.value.is_empty() { "(default)".to_string() } else { field.value.clone() };
            let value = if field.kind == model::FieldKind::Choice { format!("‹{value}›") } else { value };
            let mark = if problem.is_some() { "✗" } else { " " };
            let text = format!(
                "{}{mark}{:<key_w$} {}",
                if selected { "›" } else { " " },
                fmt::truncate(&field.key, key_w),
                fmt::truncate(&value, room)
            );
            let mut style = Style::new();
            if problem.is_some() {
                style = style.fg(Color::Red);
            }
            if selected {
                style = style.add_modifier(Modifier::REVERSED);
            }
            Line::from(Span::styled(text, style))
        })
        .collect();
    let hidden: usize =
        rows.iter().map(|r| if let Row::Section { hidden, .. } = r { *hidden } else { 0 }).sum();
    let title = format!(
        " Job ({} keys{}{}) ",
        setup.fields.len(),
        if hidden > 0 { format!(", {hidden} folded: z shows all") } else { String::new() },
        if setup.problems.is_empty() { "" } else { ", problems marked ✗" }
    );
    f.render_widget(Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(title)), area);
}

fn draw_info(f: &mut Frame, area: Rect, app: &App) {
    f.render_widget(
        Paragraph::new(info_lines(app))
            .wrap(Wrap { trim: true })
            .block(Block::default().borders(Borders::ALL).title(" Field ")),
        area,
    );
}

/// The Field panel: the selected key's problem and help, the checked data and model (v), and
/// the keys of this screen.
fn info_lines(app: &App) -> Vec<Line<'static>> {
    let setup = &app.setup;
    let mut lines = Vec::new();
    if let Some(field) = setup.field() {
        if let Some(p) = setup.problem_for(&field.key) {
            lines.push(Line::styled(
                format!("✗ {}: {}", p.key, p.message),
                Style::new().fg(Color::Red).bold(),
            ));
        }
        let mut help = field.help.clone();
        if !field.choices.is_empty() {
            help.push_str(&format!(
                " [{}]",
                field
                    .choices
                    .iter()
                    .map(|c| if c.is_empty() { "default" } else { c })
                    .collect::<Vec<_>>()
                    .join(" | ")
            ));
        }
        lines.push(Line::from(format!("{}: {help}", field.key)));
    }
    let others: Vec<&model::KeyProblem> = setup
        .problems
        .iter()
        .chain(&setup.path_problems)
        .filter(|p| Some(&p.key) != setup.field().map(|f| &f.key))
        .collect();
    if !others.is_empty() {
        lines.push(Line::styled(
            format!("{} other problem(s), first: {}: {}", others.len(), others[0].key, others[0].message),
            Style::new().fg(Color::Red),
        ));
    }
    if !setup.data_summary.is_empty() {
        lines.push(Line::from(format!("data: {}", setup.data_summary)));
    }
    for p in &app.view().launch_problems {
        lines.push(Line::styled(format!("✗ launch: {p}"), Style::new().fg(Color::Red)));
    }
    if !setup.model_summary.is_empty() {
        lines.push(Line::from(format!("model: {}", setup.model_summary)));
        let layers: Vec<String> =
            setup.model.iter().map(|l| format!("{} → {}", l.description, l.output)).collect();
        lines.push(Line::from(format!("layers: {}", layers.join(" · "))));
    }
    if !setup.data_columns.is_empty() {
        let columns: Vec<String> = setup
            .data_columns
            .iter()
            .map(|c| format!("{} {}{}", c.name, c.r#type, if c.label { " (label)" } else { "" }))
            .collect();
        lines.push(Line::from(format!(
            "schema after the transform ({} columns): {}",
            columns.len(),
            columns.join(" · ")
        )));
    }
    lines.push(
        Line::from("Enter edit · ←→ choose · Del default · z all keys · o open · w save · v check").italic(),
    );
    lines
}
