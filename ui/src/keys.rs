//! The one key table: it drives input handling, the command bar and the help overlay, so the
//! three cannot disagree (gitui's and bottom's approach).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Screen {
    Setup,
    Dashboard,
    Workers,
    Logs,
}

impl Screen {
    pub const ALL: [Screen; 4] = [Screen::Setup, Screen::Dashboard, Screen::Workers, Screen::Logs];

    pub fn title(self) -> &'static str {
        match self {
            Screen::Setup => "Setup",
            Screen::Dashboard => "Dashboard",
            Screen::Workers => "Workers",
            Screen::Logs => "Logs",
        }
    }

    pub fn next(self) -> Screen {
        let i = Screen::ALL.iter().position(|s| *s == self).unwrap_or(0);
        Screen::ALL[(i + 1) % Screen::ALL.len()]
    }

    pub fn prev(self) -> Screen {
        let i = Screen::ALL.iter().position(|s| *s == self).unwrap_or(0);
        Screen::ALL[(i + Screen::ALL.len() - 1) % Screen::ALL.len()]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    NextScreen,
    PrevScreen,
    Start,
    PauseResume,
    Stop,
    Freeze,
    Help,
    Quit,
    Up,
    Down,
    PageUp,
    PageDown,
    // Setup
    Edit,
    NextChoice,
    PrevChoice,
    Reset,
    Open,
    Save,
    CheckPaths,
    AllKeys,
    // Workers
    AddWorker,
    RemoveWorker,
    // Logs
    Level,
    Source,
    Follow,
}

/// Where a binding applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Global,
    On(Screen),
}

pub struct Binding {
    /// As shown to people.
    pub label: &'static str,
    pub keys: &'static [(KeyCode, KeyModifiers)],
    pub command: Command,
    pub scope: Scope,
    pub help: &'static str,
    /// Short name for the command bar; empty: help overlay only.
    pub bar: &'static str,
}

const NONE: KeyModifiers = KeyModifiers::NONE;
const SHIFT: KeyModifiers = KeyModifiers::SHIFT;
const CTRL: KeyModifiers = KeyModifiers::CONTROL;

pub const BINDINGS: &[Binding] = &[
    Binding {
        label: "Tab",
        keys: &[(KeyCode::Tab, NONE)],
        command: Command::NextScreen,
        scope: Scope::Global,
        help: "next screen",
        bar: "screens",
    },
    Binding {
        label: "Shift-Tab",
        keys: &[(KeyCode::BackTab, SHIFT), (KeyCode::BackTab, NONE)],
        command: Command::PrevScreen,
        scope: Scope::Global,
        help: "previous screen",
        bar: "",
    },
    Binding {
        label: "s",
        keys: &[(KeyCode::Char('s'), NONE)],
        command: Command::Start,
        scope: Scope::Global,
        help: "start the job (the Setup form's job)",
        bar: "start",
    },
    Binding {
        label: "p",
        keys: &[(KeyCode::Char('p'), NONE)],
        command: Command::PauseResume,
        scope: Scope::Global,
        help: "pause or resume training (asks first)",
        bar: "pause",
    },
    Binding {
        label: "x",
        keys: &[(KeyCode::Char('x'), NONE)],
        command: Command::Stop,
        scope: Scope::Global,
        help: "stop the job, keeping the model so far (asks first)",
        bar: "stop",
    },
    Binding {
        label: "f",
        keys: &[(KeyCode::Char('f'), NONE)],
        command: Command::Freeze,
        scope: Scope::Global,
        help: "freeze or unfreeze the view (training goes on)",
        bar: "freeze",
    },
    Binding {
        label: "?",
        keys: &[(KeyCode::Char('?'), NONE), (KeyCode::Char('?'), SHIFT), (KeyCode::F(1), NONE)],
        command: Command::Help,
        scope: Scope::Global,
        help: "this help",
        bar: "help",
    },
    Binding {
        label: "q",
        keys: &[(KeyCode::Char('q'), NONE), (KeyCode::Char('c'), CTRL)],
        command: Command::Quit,
        scope: Scope::Global,
        help: "quit (the embedded job stops; an attached one goes on)",
        bar: "quit",
    },
    Binding {
        label: "↑/k",
        keys: &[(KeyCode::Up, NONE), (KeyCode::Char('k'), NONE)],
        command: Command::Up,
        scope: Scope::Global,
        help: "move up",
        bar: "",
    },
    Binding {
        label: "↓/j",
        keys: &[(KeyCode::Down, NONE), (KeyCode::Char('j'), NONE)],
        command: Command::Down,
        scope: Scope::Global,
        help: "move down",
        bar: "",
    },
    Binding {
        label: "PgUp",
        keys: &[(KeyCode::PageUp, NONE)],
        command: Command::PageUp,
        scope: Scope::Global,
        help: "page up",
        bar: "",
    },
    Binding {
        label: "PgDn",
        keys: &[(KeyCode::PageDown, NONE)],
        command: Command::PageDown,
        scope: Scope::Global,
        help: "page down",
        bar: "",
    },
    Binding {
        label: "Enter",
        keys: &[(KeyCode::Enter, NONE)],
        command: Command::Edit,
        scope: Scope::On(Screen::Setup),
        help: "edit the field (Enter again to apply, Esc to cancel); on a section's title: open or fold it",
        bar: "edit",
    },
    Binding {
        label: "→/l",
        keys: &[(KeyCode::Right, NONE), (KeyCode::Char('l'), NONE)],
        command: Command::NextChoice,
        scope: Scope::On(Screen::Setup),
        help: "next choice",
        bar: "",
    },
    Binding {
        label: "←/h",
        keys: &[(KeyCode::Left, NONE), (KeyCode::Char('h'), NONE)],
        command: Command::PrevChoice,
        scope: Scope::On(Screen::Setup),
        help: "previous choice",
        bar: "",
    },
    Binding {
        label: "Del",
        keys: &[(KeyCode::Delete, NONE), (KeyCode::Backspace, NONE)],
        command: Command::Reset,
        scope: Scope::On(Screen::Setup),
        help: "reset the field to its default",
        bar: "",
    },
    Binding {
        label: "o",
        keys: &[(KeyCode::Char('o'), NONE)],
        command: Command::Open,
        scope: Scope::On(Screen::Setup),
        help: "open a job file",
        bar: "open",
    },
    Binding {
        label: "w",
        keys: &[(KeyCode::Char('w'), NONE)],
        command: Command::Save,
        scope: Scope::On(Screen::Setup),
        help: "write the job to a file",
        bar: "save",
    },
    Binding {
        label: "v",
        keys: &[(KeyCode::Char('v'), NONE)],
        command: Command::CheckPaths,
        scope: Scope::On(Screen::Setup),
        help: "check that the data locations exist",
        bar: "check",
    },
    Binding {
        label: "z",
        keys: &[(KeyCode::Char('z'), NONE)],
        command: Command::AllKeys,
        scope: Scope::On(Screen::Setup),
        help: "show every key, or the common ones only (Enter on a section's title opens or folds it)",
        bar: "all keys",
    },
    Binding {
        label: "a",
        keys: &[(KeyCode::Char('a'), NONE)],
        command: Command::AddWorker,
        scope: Scope::On(Screen::Workers),
        help: "add workers: how many, and where (the job's launcher, this machine, an SSH host)",
        bar: "add",
    },
    Binding {
        label: "d",
        keys: &[(KeyCode::Char('d'), NONE), (KeyCode::Delete, NONE)],
        command: Command::RemoveWorker,
        scope: Scope::On(Screen::Workers),
        help: "stop the selected worker (asks first)",
        bar: "remove",
    },
    Binding {
        label: "l",
        keys: &[(KeyCode::Char('l'), NONE)],
        command: Command::Level,
        scope: Scope::On(Screen::Logs),
        help: "cycle the minimum level",
        bar: "level",
    },
    Binding {
        label: "w",
        keys: &[(KeyCode::Char('w'), NONE)],
        command: Command::Source,
        scope: Scope::On(Screen::Logs),
        help: "cycle the source: all, coordinator, each worker",
        bar: "source",
    },
    Binding {
        label: "End/G",
        keys: &[(KeyCode::End, NONE), (KeyCode::Char('G'), SHIFT), (KeyCode::Char('G'), NONE)],
        command: Command::Follow,
        scope: Scope::On(Screen::Logs),
        help: "follow new lines",
        bar: "follow",
    },
];

fn applies(b: &Binding, screen: Screen) -> bool {
    b.scope == Scope::Global || b.scope == Scope::On(screen)
}

/// The command a key means on `screen`; screen bindings win over global ones.
pub fn command_for(key: KeyEvent, screen: Screen) -> Option<Command> {
    let hit = |b: &&Binding| b.keys.iter().any(|(code, mods)| *code == key.code && *mods == key.modifiers);
    BINDINGS
        .iter()
        .filter(|b| b.scope == Scope::On(screen))
        .find(hit)
        .or_else(|| BINDINGS.iter().filter(|b| b.scope == Scope::Global).find(hit))
        .map(|b| b.command)
}

/// The bindings for `screen`: its own first, then the global ones (help overlay).
pub fn bindings_for(screen: Screen) -> Vec<&'static Binding> {
    let own = BINDINGS.iter().filter(|b| b.scope == Scope::On(screen));
    let global = BINDINGS.iter().filter(|b| b.scope == Scope::Global);
    own.chain(global).filter(|b| applies(b, screen)).collect()
}

/// The command bar for `screen`: "key name" pairs.
pub fn bar_for(screen: Screen) -> Vec<(&'static str, &'static str)> {
    bindings_for(screen).into_iter().filter(|b| !b.bar.is_empty()).map(|b| (b.label, b.bar)).collect()
}

/// The boxes drawn over a screen that take the keys while open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverlayKind {
    /// A yes/no question.
    Confirm,
    /// A path being typed (open, save); typing a field on Setup uses the same keys.
    Prompt,
    /// The guided tour.
    Tour,
}

/// What a key does in an overlay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverlayAction {
    Yes,
    No,
    Accept,
    Cancel,
    /// Line editing (prompts and Setup fields): cursor moves, deletes and kills.
    Left,
    Right,
    Home,
    End,
    DeleteBack,
    DeleteForward,
    KillToStart,
    KillToEnd,
    KillWordBack,
    TourNext,
    TourBack,
    TourStart,
    TourClose,
}

pub struct OverlayBinding {
    pub overlay: OverlayKind,
    /// As shown to people, in the overlay's footer.
    pub label: &'static str,
    pub keys: &'static [(KeyCode, KeyModifiers)],
    pub action: OverlayAction,
    /// The footer's word for it; empty: not in the footer.
    pub hint: &'static str,
}

/// The overlays' keys: they drive the overlays' input handling and footers. (A prompt's other
/// keys type text; a tour step's other keys go on, as Enter does.)
pub static OVERLAY_BINDINGS: &[OverlayBinding] = &[
    OverlayBinding {
        overlay: OverlayKind::Confirm,
        label: "y",
        keys: &[
            (KeyCode::Char('y'), NONE),
            (KeyCode::Char('Y'), SHIFT),
            (KeyCode::Char('Y'), NONE),
            (KeyCode::Enter, NONE),
        ],
        action: OverlayAction::Yes,
        hint: "yes",
    },
    OverlayBinding {
        overlay: OverlayKind::Confirm,
        label: "n",
        keys: &[
            (KeyCode::Char('n'), NONE),
            (KeyCode::Char('N'), SHIFT),
            (KeyCode::Char('N'), NONE),
            (KeyCode::Esc, NONE),
            (KeyCode::Char('q'), NONE),
        ],
        action: OverlayAction::No,
        hint: "no",
    },
    OverlayBinding {
        overlay: OverlayKind::Prompt,
        label: "Enter",
        keys: &[(KeyCode::Enter, NONE)],
        action: OverlayAction::Accept,
        hint: "ok",
    },
    OverlayBinding {
        overlay: OverlayKind::Prompt,
        label: "Esc",
        keys: &[(KeyCode::Esc, NONE)],
        action: OverlayAction::Cancel,
        hint: "cancel",
    },
    OverlayBinding {
        overlay: OverlayKind::Prompt,
        label: "←/Ctrl-B",
        keys: &[(KeyCode::Left, NONE), (KeyCode::Char('b'), CTRL)],
        action: OverlayAction::Left,
        hint: "",
    },
    OverlayBinding {
        overlay: OverlayKind::Prompt,
        label: "→/Ctrl-F",
        keys: &[(KeyCode::Right, NONE), (KeyCode::Char('f'), CTRL)],
        action: OverlayAction::Right,
        hint: "",
    },
    OverlayBinding {
        overlay: OverlayKind::Prompt,
        label: "Home/Ctrl-A",
        keys: &[(KeyCode::Home, NONE), (KeyCode::Char('a'), CTRL)],
        action: OverlayAction::Home,
        hint: "",
    },
    OverlayBinding {
        overlay: OverlayKind::Prompt,
        label: "End/Ctrl-E",
        keys: &[(KeyCode::End, NONE), (KeyCode::Char('e'), CTRL)],
        action: OverlayAction::End,
        hint: "",
    },
    OverlayBinding {
        overlay: OverlayKind::Prompt,
        label: "Backspace",
        keys: &[(KeyCode::Backspace, NONE), (KeyCode::Char('h'), CTRL)],
        action: OverlayAction::DeleteBack,
        hint: "",
    },
    OverlayBinding {
        overlay: OverlayKind::Prompt,
        label: "Delete/Ctrl-D",
        keys: &[(KeyCode::Delete, NONE), (KeyCode::Char('d'), CTRL)],
        action: OverlayAction::DeleteForward,
        hint: "",
    },
    OverlayBinding {
        overlay: OverlayKind::Prompt,
        label: "Ctrl-U",
        keys: &[(KeyCode::Char('u'), CTRL)],
        action: OverlayAction::KillToStart,
        hint: "",
    },
    OverlayBinding {
        overlay: OverlayKind::Prompt,
        label: "Ctrl-K",
        keys: &[(KeyCode::Char('k'), CTRL)],
        action: OverlayAction::KillToEnd,
        hint: "",
    },
    OverlayBinding {
        overlay: OverlayKind::Prompt,
        label: "Ctrl-W",
        keys: &[(KeyCode::Char('w'), CTRL), (KeyCode::Backspace, KeyModifiers::ALT)],
        action: OverlayAction::KillWordBack,
        hint: "",
    },
    OverlayBinding {
        overlay: OverlayKind::Tour,
        label: "Enter",
        keys: &[(KeyCode::Enter, NONE), (KeyCode::Right, NONE), (KeyCode::Char(' '), NONE)],
        action: OverlayAction::TourNext,
        hint: "next",
    },
    OverlayBinding {
        overlay: OverlayKind::Tour,
        label: "b",
        keys: &[(KeyCode::Char('b'), NONE), (KeyCode::Left, NONE)],
        action: OverlayAction::TourBack,
        hint: "back",
    },
    OverlayBinding {
        overlay: OverlayKind::Tour,
        label: "s",
        keys: &[(KeyCode::Char('s'), NONE)],
        action: OverlayAction::TourStart,
        hint: "",
    },
    OverlayBinding {
        overlay: OverlayKind::Tour,
        label: "Esc",
        keys: &[(KeyCode::Esc, NONE), (KeyCode::Char('q'), NONE)],
        action: OverlayAction::TourClose,
        hint: "close tour",
    },
];

impl OverlayAction {
    /// What the action does, for the help overlay.
    pub fn help(self) -> &'static str {
        match self {
            OverlayAction::Yes => "yes",
            OverlayAction::No => "no",
            OverlayAction::Accept => "apply the value (or open / write the file)",
            OverlayAction::Cancel => "cancel: the value before editing comes back",
            OverlayAction::Left => "cursor left",
            OverlayAction::Right => "cursor right",
            OverlayAction::Home => "cursor to the start",
            OverlayAction::End => "cursor to the end",
            OverlayAction::DeleteBack => "delete the character before the cursor",
            OverlayAction::DeleteForward => "delete the character under the cursor",
            OverlayAction::KillToStart => "delete to the start",
            OverlayAction::KillToEnd => "delete to the end",
            OverlayAction::KillWordBack => "delete the word (or path component) before the cursor",
            OverlayAction::TourNext => "next step",
            OverlayAction::TourBack => "previous step",
            OverlayAction::TourStart => "start the job",
            OverlayAction::TourClose => "close the tour",
        }
    }
}

/// The keys of an overlay, in table order (the help overlay's "while typing" part).
pub fn overlay_bindings(overlay: OverlayKind) -> impl Iterator<Item = &'static OverlayBinding> {
    OVERLAY_BINDINGS.iter().filter(move |b| b.overlay == overlay)
}

/// What `key` does in `overlay`, if it is one of its keys.
pub fn overlay_action(overlay: OverlayKind, key: KeyEvent) -> Option<OverlayAction> {
    OVERLAY_BINDINGS
        .iter()
        .filter(|b| b.overlay == overlay)
        .find(|b| b.keys.iter().any(|(code, mods)| *code == key.code && *mods == key.modifiers))
        .map(|b| b.action)
}

/// An overlay's footer: its keys and what they do, from the table.
pub fn overlay_footer(overlay: OverlayKind) -> String {
    let parts = OVERLAY_BINDINGS.iter().filter(|b| b.overlay == overlay && !b.hint.is_empty());
    match overlay {
        OverlayKind::Confirm => {
            parts.map(|b| format!("[{}] {}", b.label, b.hint)).collect::<Vec<_>>().join("    ")
        }
        OverlayKind::Prompt => {
            parts.map(|b| format!("{}: {}", b.label, b.hint)).collect::<Vec<_>>().join("    ")
        }
        OverlayKind::Tour => {
            parts.map(|b| format!("{}: {}", b.label, b.hint)).collect::<Vec<_>>().join("   ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, NONE)
    }

    #[test]
    fn screen_keys_shadow_global_ones() {
        assert_eq!(command_for(key(KeyCode::Char('w')), Screen::Setup), Some(Command::Save));
        assert_eq!(command_for(key(KeyCode::Char('w')), Screen::Logs), Some(Command::Source));
        assert_eq!(command_for(key(KeyCode::Char('w')), Screen::Dashboard), None);
        assert_eq!(command_for(key(KeyCode::Char('s')), Screen::Workers), Some(Command::Start));
        assert_eq!(command_for(KeyEvent::new(KeyCode::Char('c'), CTRL), Screen::Logs), Some(Command::Quit));
    }

    #[test]
    fn overlays_take_their_keys_from_the_table() {
        assert_eq!(overlay_footer(OverlayKind::Confirm), "[y] yes    [n] no");
        assert_eq!(overlay_footer(OverlayKind::Prompt), "Enter: ok    Esc: cancel");
        assert_eq!(overlay_footer(OverlayKind::Tour), "Enter: next   b: back   Esc: close tour");
        assert_eq!(overlay_action(OverlayKind::Confirm, key(KeyCode::Enter)), Some(OverlayAction::Yes));
        assert_eq!(overlay_action(OverlayKind::Prompt, key(KeyCode::Char('q'))), None, "q is typed");
        assert_eq!(overlay_action(OverlayKind::Confirm, key(KeyCode::Char('q'))), Some(OverlayAction::No));
        for kind in [OverlayKind::Confirm, OverlayKind::Prompt, OverlayKind::Tour] {
            let mut seen = std::collections::HashSet::new();
            for b in OVERLAY_BINDINGS.iter().filter(|b| b.overlay == kind) {
                for k in b.keys {
                    assert!(seen.insert(*k), "{k:?} bound twice in {kind:?}");
                }
            }
        }
    }

    #[test]
    fn no_key_means_two_things_on_one_screen() {
        for screen in Screen::ALL {
            let mut seen = std::collections::HashMap::new();
            for b in bindings_for(screen).iter().filter(|b| b.scope == Scope::On(screen)) {
                for k in b.keys {
                    assert!(seen.insert(*k, b.command).is_none(), "{k:?} bound twice on {screen:?}");
                }
            }
        }
    }

    #[test]
    fn the_bar_and_help_come_from_the_table() {
        let bar = bar_for(Screen::Workers);
        assert_eq!(bar[0], ("a", "add"));
        assert!(bar.contains(&("q", "quit")));
        assert!(bindings_for(Screen::Logs).iter().any(|b| b.command == Command::Level));
        for cmd in ["s", "p", "x", "f", "q", "?", "Tab", "Shift-Tab"] {
            assert!(BINDINGS.iter().any(|b| b.label == cmd && b.scope == Scope::Global), "{cmd}");
        }
    }
}
