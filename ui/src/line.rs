//! The one line editor of the cockpit: Setup fields and the path prompts (open, save) type
//! through it. Its keys come from the overlay key table ([`crate::keys`]), so help and input
//! cannot disagree. The cursor counts characters, not bytes, so any UTF-8 text edits safely.
//!
//! Why our own: `tui-input` would fit ratatui 0.30, but the cockpit's keys live in one table
//! that also feeds the help overlay; a crate with its own key handling would be a second table.
//! The editor is small, pure and tested below.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::style::{Modifier, Style};
use ratatui::text::Span;

use crate::keys::{OverlayAction, OverlayKind, overlay_action};

/// A line of text with a cursor (a character index, 0..=len).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LineEdit {
    text: String,
    cursor: usize,
}

/// What a key did to the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Typed {
    /// Enter: take the text.
    Accept,
    /// Esc: drop the edit.
    Cancel,
    /// The text changed.
    Changed,
    /// Only the cursor moved.
    Moved,
    /// Not an editing key (a control key the line does not use): nothing happened.
    Ignored,
}

/// Characters that end a word for Ctrl-W (besides whitespace): a path loses one component
/// at a time, as in most shells' default.
fn is_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '/' | ',' | '=' | ':')
}

impl LineEdit {
    /// A line holding `text`, the cursor at its end.
    pub fn new(text: impl Into<String>) -> LineEdit {
        let text = text.into();
        let cursor = text.chars().count();
        LineEdit { text, cursor }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The cursor, in characters from the start.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    fn len(&self) -> usize {
        self.text.chars().count()
    }

    /// Byte offset of character `i`.
    fn byte(&self, i: usize) -> usize {
        self.text.char_indices().nth(i).map(|(b, _)| b).unwrap_or(self.text.len())
    }

    /// Removes characters `from..to` (character indices); the cursor goes to `from`.
    fn remove(&mut self, from: usize, to: usize) -> Typed {
        if from >= to {
            return Typed::Moved;
        }
        let (a, b) = (self.byte(from), self.byte(to));
        self.text.replace_range(a..b, "");
        self.cursor = from;
        Typed::Changed
    }

    fn insert(&mut self, c: char) -> Typed {
        let at = self.byte(self.cursor);
        self.text.insert(at, c);
        self.cursor += 1;
        Typed::Changed
    }

    fn moved(&mut self, to: usize) -> Typed {
        self.cursor = to.min(self.len());
        Typed::Moved
    }

    /// Where Ctrl-W deletes back to: over separators just before the cursor, then over the word.
    fn word_start(&self) -> usize {
        let chars: Vec<char> = self.text.chars().collect();
        let mut i = self.cursor;
        while i > 0 && is_separator(chars[i - 1]) {
            i -= 1;
        }
        while i > 0 && !is_separator(chars[i - 1]) {
            i -= 1;
        }
        i
    }

    /// Applies one key. Printable characters are typed at the cursor; a key with Ctrl or Alt
    /// that is not an editing key is ignored, never typed.
    pub fn handle(&mut self, key: KeyEvent) -> Typed {
        let action = overlay_action(OverlayKind::Prompt, key);
        match action {
            Some(OverlayAction::Accept) => Typed::Accept,
            Some(OverlayAction::Cancel) => Typed::Cancel,
            Some(OverlayAction::Left) => self.moved(self.cursor.saturating_sub(1)),
            Some(OverlayAction::Right) => self.moved(self.cursor + 1),
            Some(OverlayAction::Home) => self.moved(0),
            Some(OverlayAction::End) => self.moved(self.len()),
            Some(OverlayAction::DeleteBack) => {
                if self.cursor == 0 {
                    return Typed::Moved;
                }
                self.remove(self.cursor - 1, self.cursor)
            }
            Some(OverlayAction::DeleteForward) => self.remove(self.cursor, (self.cursor + 1).min(self.len())),
            Some(OverlayAction::KillToStart) => self.remove(0, self.cursor),
            Some(OverlayAction::KillToEnd) => self.remove(self.cursor, self.len()),
            Some(OverlayAction::KillWordBack) => self.remove(self.word_start(), self.cursor),
            Some(_) => Typed::Ignored,
            None => match key.code {
                KeyCode::Char(c) if !key.modifiers.intersects(!crossterm::event::KeyModifiers::SHIFT) => {
                    self.insert(c)
                }
                _ => Typed::Ignored,
            },
        }
    }

    /// The line as spans, the character under the cursor (or a blank past the end) shown
    /// reversed: a cursor visible without colour.
    pub fn spans(&self, style: Style) -> Vec<Span<'static>> {
        let (a, b) = (self.byte(self.cursor), self.byte(self.cursor + 1));
        let at = if a < b { self.text[a..b].to_string() } else { " ".to_string() };
        vec![
            Span::styled(self.text[..a].to_string(), style),
            Span::styled(at, style.add_modifier(Modifier::REVERSED)),
            Span::styled(self.text[b.max(a)..].to_string(), style),
        ]
    }

    /// The spans of a window of at most `width` characters that keeps the cursor in view.
    pub fn spans_within(&self, width: usize, style: Style) -> Vec<Span<'static>> {
        let width = width.max(1);
        if self.len() < width {
            return self.spans(style);
        }
        // Show the end of a long line; scroll so the cursor stays visible.
        let start = (self.cursor + 1).saturating_sub(width);
        let view = LineEdit {
            text: self.text.chars().skip(start).take(width).collect(),
            cursor: self.cursor - start,
        };
        view.spans(style)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyModifiers;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    fn ctrl(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    fn typed(line: &mut LineEdit, s: &str) {
        for c in s.chars() {
            assert_eq!(line.handle(key(KeyCode::Char(c))), Typed::Changed);
        }
    }

    #[test]
    fn typing_goes_where_the_cursor_is() {
        let mut l = LineEdit::new("job.toml");
        assert_eq!(l.cursor(), 8);
        assert_eq!(l.handle(key(KeyCode::Home)), Typed::Moved);
        typed(&mut l, "my-");
        assert_eq!(l.text(), "my-job.toml");
        l.handle(key(KeyCode::End));
        for _ in 0..5 {
            l.handle(key(KeyCode::Left));
        }
        typed(&mut l, "2");
        assert_eq!(l.text(), "my-job2.toml");
        l.handle(ctrl('a'));
        assert_eq!(l.cursor(), 0);
        l.handle(ctrl('e'));
        assert_eq!(l.cursor(), 12);
        l.handle(key(KeyCode::Right));
        assert_eq!(l.cursor(), 12, "the cursor stops at the end");
    }

    #[test]
    fn deleting_at_the_cursor_and_killing() {
        let mut l = LineEdit::new("abcdef");
        l.handle(key(KeyCode::Left));
        l.handle(key(KeyCode::Left));
        l.handle(key(KeyCode::Backspace));
        assert_eq!((l.text(), l.cursor()), ("abcef", 3));
        l.handle(key(KeyCode::Delete));
        assert_eq!((l.text(), l.cursor()), ("abcf", 3));
        l.handle(ctrl('k'));
        assert_eq!(l.text(), "abc");
        l.handle(key(KeyCode::Left));
        l.handle(ctrl('u'));
        assert_eq!((l.text(), l.cursor()), ("c", 0));
        assert_eq!(l.handle(key(KeyCode::Backspace)), Typed::Moved, "nothing before the cursor");
        assert_eq!(l.text(), "c");
    }

    #[test]
    fn ctrl_w_deletes_a_word_or_path_component_back() {
        let mut l = LineEdit::new("assets/jobs/wine.toml");
        l.handle(ctrl('w'));
        assert_eq!(l.text(), "assets/jobs/");
        l.handle(ctrl('w'));
        assert_eq!(l.text(), "assets/");
        l.handle(ctrl('w'));
        assert_eq!(l.text(), "");
        let mut l = LineEdit::new("256, 128");
        l.handle(ctrl('w'));
        assert_eq!(l.text(), "256, ");
    }

    #[test]
    fn control_keys_never_type_letters() {
        let mut l = LineEdit::new("job.toml");
        for c in ['x', 'o', 'q', 'r', 't', 'z'] {
            assert_eq!(l.handle(ctrl(c)), Typed::Ignored, "ctrl-{c}");
        }
        assert_eq!(l.handle(KeyEvent::new(KeyCode::Char('b'), KeyModifiers::ALT)), Typed::Ignored);
        assert_eq!(l.handle(key(KeyCode::F(5))), Typed::Ignored);
        assert_eq!(l.text(), "job.toml");
        // Ctrl-U then Enter saves nothing typed by the Ctrl-U.
        l.handle(ctrl('u'));
        assert_eq!(l.handle(key(KeyCode::Enter)), Typed::Accept);
        assert_eq!(l.text(), "");
        let mut upper = LineEdit::default();
        upper.handle(KeyEvent::new(KeyCode::Char('J'), KeyModifiers::SHIFT));
        assert_eq!(upper.text(), "J", "Shift types capitals");
    }

    #[test]
    fn multibyte_text_edits_by_character() {
        let mut l = LineEdit::new("données/été.csv");
        l.handle(key(KeyCode::Home));
        for _ in 0..3 {
            l.handle(key(KeyCode::Right));
        }
        l.handle(key(KeyCode::Delete));
        assert_eq!(l.text(), "donées/été.csv");
        l.handle(key(KeyCode::End));
        l.handle(ctrl('w'));
        assert_eq!(l.text(), "donées/");
    }

    #[test]
    fn the_cursor_is_drawn_reversed_and_kept_in_view() {
        let mut l = LineEdit::new("abc");
        let s = l.spans(Style::new());
        assert_eq!((s[0].content.as_ref(), s[1].content.as_ref(), s[2].content.as_ref()), ("abc", " ", ""));
        assert!(s[1].style.add_modifier.contains(Modifier::REVERSED));
        l.handle(key(KeyCode::Home));
        let s = l.spans(Style::new());
        assert_eq!((s[0].content.as_ref(), s[1].content.as_ref(), s[2].content.as_ref()), ("", "a", "bc"));
        let long = LineEdit::new("0123456789");
        let text: String = long.spans_within(5, Style::new()).iter().map(|s| s.content.as_ref()).collect();
        assert_eq!(text, "6789 ", "the end of a long line, and the cursor after it");
    }
}
