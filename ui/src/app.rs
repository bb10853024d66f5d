//! The cockpit's state machine: keys and messages from the coordinator in, requests out (to
//! the coordinator, or file I/O where the cockpit runs, both carried out by `conn`). Pure, so
//! every key path is unit-tested without a terminal.

use crossterm::event::{KeyCode, KeyEvent};

use crate::keys::{Command, OverlayAction, OverlayKind, Screen, command_for, overlay_action};
use crate::line::{LineEdit, Typed};
use crate::model;
use crate::state::{Connection, JobView, LEVELS, Logs};
use crate::tour;

/// What the app asks the connection to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    Submit {
        toml: String,
        start: bool,
    },
    Pause,
    Resume,
    Stop,
    /// `count` more workers; `host`: empty for the job's launcher, `local`, or an SSH host.
    AddWorkers {
        count: u32,
        host: String,
    },
    RemoveWorker(u32),
    Describe {
        toml: String,
    },
    Edit {
        toml: String,
        key: String,
        value: String,
    },
    Validate {
        toml: String,
    },
    /// Read a job file here and describe it (the form).
    OpenFile {
        path: String,
    },
    /// Write the job to a file here.
    SaveFile {
        path: String,
        toml: String,
    },
}

/// What the connection tells the app.
#[derive(Clone, Debug)]
pub enum Msg {
    Connection(Connection),
    Snapshot(model::JobSnapshot),
    Delta(model::JobDelta),
    Logs(model::LogBatch),
    Form(model::JobForm),
    Validated(model::ValidateReply),
    /// The answer to a command: (ok, message).
    Reply(bool, String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Confirm {
    Pause,
    Stop,
    Quit,
    RemoveWorker(u32),
}

impl Confirm {
    /// The question, as things stand (`running`: the job is running or paused).
    pub fn question(&self, running: bool) -> String {
        match self {
            Confirm::Pause => "Pause training? Workers finish their step and wait.".into(),
            Confirm::Stop if running => "Stop the job? The model so far is saved.".into(),
            Confirm::Stop => "The job has already ended; nothing to stop.".into(),
            Confirm::Quit if running => {
                "Quit? The running job stops (its model so far is saved) and its workers exit.".into()
            }
            Confirm::Quit => "Quit? The job has ended; nothing is lost.".into(),
            Confirm::RemoveWorker(id) => format!("Stop worker {id}? Its partitions go back to the queue."),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromptKind {
    Open,
    Save,
    /// How many workers to add, and where.
    AddWorkers,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Overlay {
    Help,
    Confirm(Confirm),
    Prompt {
        kind: PromptKind,
        line: LineEdit,
    },
    /// The guided walkthrough (`strom demo`), at this step.
    Tour(usize),
}

/// The Setup screen's form.
#[derive(Clone, Debug, Default)]
pub struct SetupForm {
    pub fields: Vec<model::FormField>,
    pub problems: Vec<model::KeyProblem>,
    pub toml: String,
    /// The selected row of [`SetupForm::rows`].
    pub selected: usize,
    /// Sections shown whole (the others show their common keys only).
    pub open: std::collections::BTreeSet<String>,
    /// The field being typed into: its line, its value before editing, and its key (edits go
    /// to that key, whatever row it stands on when a new form arrives).
    pub editing: Option<(LineEdit, String, String)>,
    /// What checking the data locations found.
    pub path_problems: Vec<model::KeyProblem>,
    pub data_summary: String,
    /// Tables: the schema after the transform process.
    pub data_columns: Vec<model::DataColumn>,
    /// The job's model on that data, layer by layer, and its one-line summary.
    pub model: Vec<model::ModelLayer>,
    pub model_summary: String,
    /// A location was edited: check it once the coordinator returns the edited job.
    pub check_after_edit: bool,
}

/// One row of the Setup form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Row {
    /// A section's title; `hidden` keys are folded away.
    Section { name: String, hidden: usize },
    /// `fields[i]`.
    Field(usize),
}

/// The form's sections in the order they are shown.
const SECTIONS: [&str; 7] = ["job", "data", "model", "train", "sharing", "cluster", "compute"];

impl SetupForm {
    /// The rows shown: each section's title, then its common keys, and the rest when open.
    /// A key with a problem is never folded away.
    pub fn rows(&self) -> Vec<Row> {
        let mut names: Vec<&str> = SECTIONS.to_vec();
        for f in &self.fields {
            if !names.contains(&f.section.as_str()) {
                names.push(&f.section);
            }
        }
        let mut rows = Vec::new();
        for name in names {
            let members: Vec<usize> =
                (0..self.fields.len()).filter(|&i| self.fields[i].section == name).collect();
            if members.is_empty() {
                continue;
            }
            let open = self.open.contains(name);
            let shown: Vec<usize> = members
                .iter()
                .copied()
                .filter(|&i| {
                    let key = &self.fields[i].key;
                    open || self.fields[i].common
                        || self.problem_for(key).is_some()
                        || self.editing.as_ref().is_some_and(|e| e.2 == *key)
                })
                .collect();
            rows.push(Row::Section { name: name.to_string(), hidden: members.len() - shown.len() });
            rows.extend(shown.into_iter().map(Row::Field));
        }
        rows
    }

    pub fn field(&self) -> Option<&model::FormField> {
        match self.rows().get(self.selected) {
            Some(Row::Field(i)) => self.fields.get(*i),
            _ => None,
        }
    }

    /// Selects the row of `key`, if it is shown.
    fn select_key(&mut self, key: &str) -> bool {
        let rows = self.rows();
        match rows.iter().position(|r| matches!(r, Row::Field(i) if self.fields[*i].key == key)) {
            Some(r) => {
                self.selected = r;
                true
            }
            None => false,
        }
    }

    /// Opens or folds the section whose title is selected; the title stays selected.
    fn toggle_section(&mut self) -> bool {
        let Some(Row::Section { name, .. }) = self.rows().get(self.selected).cloned() else { return false };
        if !self.open.remove(&name) {
            self.open.insert(name.clone());
        }
        if let Some(r) =
            self.rows().iter().position(|r| matches!(r, Row::Section { name: n, .. } if *n == name))
        {
            self.selected = r;
        }
        true
    }

    pub fn problem_for(&self, key: &str) -> Option<&model::KeyProblem> {
        self.problems.iter().chain(&self.path_problems).find(|p| p.key == key)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    pub text: String,
    pub error: bool,
    /// Ticks until it fades.
    pub ttl: u32,
}

pub struct App {
    pub screen: Screen,
    pub job: JobView,
    /// While frozen, the view shows this copy; the live state keeps updating underneath.
    pub frozen: Option<JobView>,
    pub conn: Connection,
    pub logs: Logs,
    pub setup: SetupForm,
    pub overlay: Option<Overlay>,
    pub status: Option<Status>,
    /// The coordinator lives in this process: quitting stops the job.
    pub embedded: bool,
    pub url: String,
    pub selected_worker: usize,
    pub quit: bool,
    /// Data arrived since the last frame.
    pub dirty: bool,
}

impl App {
    pub fn new(url: impl Into<String>, embedded: bool, tour: bool) -> App {
        App {
            screen: Screen::Setup,
            job: JobView::default(),
            frozen: None,
            conn: Connection::Connecting,
            logs: Logs { min_level: 2, ..Default::default() },
            setup: SetupForm::default(),
            overlay: tour.then_some(Overlay::Tour(0)),
            status: None,
            embedded,
            url: url.into(),
            selected_worker: 0,
            quit: false,
            dirty: true,
        }
    }

    /// The job as displayed (frozen or live).
    pub fn view(&self) -> &JobView {
        self.frozen.as_ref().unwrap_or(&self.job)
    }

    fn say(&mut self, text: impl Into<String>, error: bool) {
        self.status = Some(Status { text: text.into(), error, ttl: if error { 40 } else { 20 } });
    }

    /// One redraw tick: status messages fade.
    pub fn tick(&mut self) {
        if let Some(s) = &mut self.status {
            s.ttl = s.ttl.saturating_sub(1);
            if s.ttl == 0 {
                self.status = None;
                self.dirty = true;
            }
        }
    }

    pub fn handle_msg(&mut self, msg: Msg) -> Vec<Request> {
        self.dirty = true;
        let mut out = Vec::new();
        match msg {
            Msg::Connection(c) => self.conn = c,
            Msg::Snapshot(s) => {
                self.conn = Connection::Connected;
                let first_form = self.setup.fields.is_empty() && !s.job_toml.is_empty();
                if first_form {
                    out.push(Request::Describe { toml: s.job_toml.clone() });
                }
                let fresh = JobView::from_snapshot(s);
                if fresh.is_running()
                    && self.job.state != fresh.state
                    && self.screen == Screen::Setup
                    && !first_form
                {
                    self.screen = Screen::Dashboard;
                }
                self.job = fresh;
            }
            Msg::Delta(d) => {
                self.conn = Connection::Connected;
                self.job.apply(d);
            }
            Msg::Logs(b) => self.logs.push(b),
            Msg::Form(form) => {
                // The new problems first: they decide which keys are folded away.
                self.setup.problems = form.problems;
                if !form.fields.is_empty() {
                    let first = self.setup.fields.is_empty();
                    let key = match &self.setup.editing {
                        Some((_, _, k)) => Some(k.clone()),
                        None => self.setup.field().map(|f| f.key.clone()),
                    };
                    self.setup.fields = form.fields;
                    let kept = key.as_ref().is_some_and(|k| self.setup.select_key(k));
                    if first || (!kept && key.is_some()) {
                        // The first key (not a section's title) is where editing starts.
                        let rows = self.setup.rows();
                        self.setup.selected =
                            rows.iter().position(|r| matches!(r, Row::Field(_))).unwrap_or(0);
                    }
                    self.setup.selected = self.setup.selected.min(self.setup.rows().len().saturating_sub(1));
                }
                self.setup.toml = form.toml;
                if std::mem::take(&mut self.setup.check_after_edit) {
                    out.push(Request::Validate { toml: self.setup.toml.clone() });
                }
            }
            Msg::Validated(v) => {
                self.setup.path_problems = v.problems;
                self.setup.data_summary = v.data_summary;
                self.setup.data_columns = v.data_columns;
                self.setup.model = v.model;
                self.setup.model_summary = v.model_summary;
                if self.setup.path_problems.is_empty() && !self.setup.data_summary.is_empty() {
                    let summary = format!("data found: {}", self.setup.data_summary);
                    self.say(summary, false);
                }
            }
            Msg::Reply(ok, text) => self.say(text, !ok),
        }
        out
    }

    pub fn handle_key(&mut self, key: KeyEvent) -> Vec<Request> {
        self.dirty = true;
        if let Some(overlay) = self.overlay.clone() {
            return self.overlay_key(overlay, key);
        }
        if self.setup.editing.is_some() && self.screen == Screen::Setup {
            return self.edit_key(key);
        }
        let Some(cmd) = command_for(key, self.screen) else { return vec![] };
        self.command(cmd)
    }

    fn command(&mut self, cmd: Command) -> Vec<Request> {
        match cmd {
            Command::NextScreen => self.screen = self.screen.next(),
            Command::PrevScreen => self.screen = self.screen.prev(),
            Command::Help => self.overlay = Some(Overlay::Help),
            Command::Quit => {
                if self.embedded && self.job.is_running() {
                    self.overlay = Some(Overlay::Confirm(Confirm::Quit));
                } else {
                    self.quit = true;
                }
            }
            Command::Freeze => {
                self.frozen = match self.frozen.take() {
                    Some(_) => None,
                    None => Some(self.job.clone()),
                };
                let msg = if self.frozen.is_some() {
                    "view frozen (training goes on); f to unfreeze"
                } else {
                    "live view"
                };
                self.say(msg, false);
            }
            Command::Start => {
                if self.job.is_running() {
                    self.say("the job is running; stop it first (x)", true);
                } else if !self.setup.problems.is_empty() {
                    let first = &self.setup.problems[0];
                    let msg = format!("fix the job first: {}: {}", first.key, first.message);
                    self.screen = Screen::Setup;
                    self.say(msg, true);
                } else if self.setup.toml.is_empty() && self.job.toml.is_empty() {
                    self.say("no job loaded: open a job file on the Setup screen (o)", true);
                } else {
                    let toml = if self.setup.toml.is_empty() {
                        self.job.toml.clone()
                    } else {
                        self.setup.toml.clone()
                    };
                    self.screen = Screen::Dashboard;
                    self.say("starting the job...", false);
                    return vec![Request::Submit { toml, start: true }];
                }
            }
            Command::PauseResume => match self.job.state {
                model::JobState::Running => self.overlay = Some(Overlay::Confirm(Confirm::Pause)),
                // Resuming loses nothing: no question asked.
                model::JobState::Paused => {
                    self.say("resuming...", false);
                    return vec![Request::Resume];
                }
                _ => self.say("no job is running", true),
            },
            Command::Stop => {
                if self.job.is_running() {
                    self.overlay = Some(Overlay::Confirm(Confirm::Stop));
                } else {
                    self.say("no job is running", true);
                }
            }
            Command::Up | Command::Down | Command::PageUp | Command::PageDown => self.navigate(cmd),
            Command::Edit => return self.start_edit(),
            Command::AllKeys => {
                let key = self.setup.field().map(|f| f.key.clone());
                let all: std::collections::BTreeSet<String> =
                    self.setup.fields.iter().map(|f| f.section.clone()).collect();
                let showing_all = all.is_subset(&self.setup.open);
                self.setup.open = if showing_all { Default::default() } else { all };
                if !key.is_some_and(|k| self.setup.select_key(&k)) {
                    self.setup.selected = self.setup.selected.min(self.setup.rows().len().saturating_sub(1));
                }
                self.say(
                    if showing_all {
                        "the common keys; z shows every key"
                    } else {
                        "every key; z folds them"
                    },
                    false,
                );
            }
            Command::NextChoice | Command::PrevChoice => {
                return self.cycle_choice(cmd == Command::NextChoice);
            }
            Command::Reset => {
                if let Some(f) = self.setup.field() {
                    return vec![Request::Edit {
                        toml: self.setup.toml.clone(),
                        key: f.key.clone(),
                        value: String::new(),
                    }];
                }
            }
            Command::Open => {
                self.overlay = Some(Overlay::Prompt { kind: PromptKind::Open, line: LineEdit::default() })
            }
            Command::Save => {
                self.overlay =
                    Some(Overlay::Prompt { kind: PromptKind::Save, line: LineEdit::new("job.toml") })
            }
            Command::CheckPaths => {
                self.say("checking the data locations...", false);
                return vec![Request::Validate { toml: self.setup.toml.clone() }];
            }
            Command::AddWorker => {
                if self.job.is_running() {
                    self.overlay =
                        Some(Overlay::Prompt { kind: PromptKind::AddWorkers, line: LineEdit::new("1") });
                } else {
                    self.say("no job is running", true);
                }
            }
            Command::RemoveWorker => match self.selected_worker_id() {
                Some(id) => self.overlay = Some(Overlay::Confirm(Confirm::RemoveWorker(id))),
                None => self.say("no worker selected", true),
            },
            Command::Level => {
                self.logs.min_level = (self.logs.min_level + 1) % LEVELS.len() as u8;
                let msg = format!("showing {} and above", LEVELS[self.logs.min_level as usize]);
                self.say(msg, false);
            }
            Command::Source => {
                let workers: Vec<u32> = self.job.workers.keys().copied().collect();
                self.logs.source = match self.logs.source {
                    None => Some(None),
                    Some(None) => workers.first().map(|w| Some(Some(*w))).unwrap_or(None),
                    Some(Some(w)) => workers.iter().find(|x| **x > w).map(|x| Some(Some(*x))).unwrap_or(None),
                };
                self.logs.scroll = 0;
            }
            Command::Follow => self.logs.scroll = 0,
        }
        vec![]
    }

    fn navigate(&mut self, cmd: Command) {
        let step: isize = match cmd {
            Command::Up => -1,
            Command::Down => 1,
            Command::PageUp => -10,
            _ => 10,
        };
        match self.screen {
            Screen::Setup => {
                let n = self.setup.rows().len();
                if n > 0 {
                    self.setup.selected =
                        (self.setup.selected as isize + step).clamp(0, n as isize - 1) as usize;
                }
            }
            Screen::Workers => {
                let n = self.view().workers.len();
                if n > 0 {
                    self.selected_worker =
                        (self.selected_worker as isize + step).clamp(0, n as isize - 1) as usize;
                }
            }
            Screen::Logs => {
                let n = self.logs.visible().count();
                self.logs.scroll =
                    (self.logs.scroll as isize - step).clamp(0, n.saturating_sub(1) as isize) as usize;
            }
            Screen::Dashboard => {}
        }
    }

    pub fn selected_worker_id(&self) -> Option<u32> {
        self.view().workers.keys().nth(self.selected_worker).copied()
    }

    fn start_edit(&mut self) -> Vec<Request> {
        if self.setup.toggle_section() {
            return vec![];
        }
        let Some(f) = self.setup.field().cloned() else { return vec![] };
        if f.kind == model::FieldKind::Choice {
            return self.cycle_choice(true);
        }
        self.setup.editing = Some((LineEdit::new(f.value.clone()), f.value, f.key));
        vec![]
    }

    fn cycle_choice(&mut self, forward: bool) -> Vec<Request> {
        let Some(f) = self.setup.field().cloned() else { return vec![] };
        if f.choices.is_empty() {
            return vec![];
        }
        let i = f.choices.iter().position(|c| *c == f.value).unwrap_or(0);
        let n = f.choices.len();
        let next = if forward { (i + 1) % n } else { (i + n - 1) % n };
        vec![Request::Edit { toml: self.setup.toml.clone(), key: f.key, value: f.choices[next].clone() }]
    }

    /// Typing into a field: every keystroke is validated by the coordinator.
    fn edit_key(&mut self, key: KeyEvent) -> Vec<Request> {
        let Some((mut line, original, field_key)) = self.setup.editing.clone() else { return vec![] };
        let kind = self.setup.fields.iter().find(|f| f.key == field_key).map(|f| f.kind);
        let edit =
            |value: String| Request::Edit { toml: self.setup.toml.clone(), key: field_key.clone(), value };
        match line.handle(key) {
            Typed::Accept => {
                self.setup.editing = None;
                self.setup.check_after_edit = kind == Some(model::FieldKind::Location);
                vec![edit(line.text().to_string())]
            }
            Typed::Cancel => {
                self.setup.editing = None;
                vec![edit(original)]
            }
            Typed::Changed => {
                let value = line.text().to_string();
                self.setup.editing = Some((line, original, field_key.clone()));
                vec![edit(value)]
            }
            Typed::Moved => {
                self.setup.editing = Some((line, original, field_key.clone()));
                vec![]
            }
            Typed::Ignored => vec![],
        }
    }

    fn overlay_key(&mut self, overlay: Overlay, key: KeyEvent) -> Vec<Request> {
        match overlay {
            Overlay::Help => {
                self.overlay = None;
                if key.code == KeyCode::Char('q') {
                    return self.command(Command::Quit);
                }
                vec![]
            }
            Overlay::Confirm(what) => match overlay_action(OverlayKind::Confirm, key) {
                Some(OverlayAction::Yes) => {
                    self.overlay = None;
                    match what {
                        Confirm::Pause => vec![Request::Pause],
                        Confirm::Stop => vec![Request::Stop],
                        Confirm::RemoveWorker(id) => vec![Request::RemoveWorker(id)],
                        Confirm::Quit => {
                            self.quit = true;
                            vec![]
                        }
                    }
                }
                Some(_) => {
                    self.overlay = None;
                    vec![]
                }
                None => vec![],
            },
            Overlay::Prompt { kind, mut line } => match line.handle(key) {
                Typed::Accept => {
                    self.overlay = None;
                    self.file_action(kind, line.text().trim())
                }
                Typed::Cancel => {
                    self.overlay = None;
                    vec![]
                }
                Typed::Changed | Typed::Moved => {
                    self.overlay = Some(Overlay::Prompt { kind, line });
                    vec![]
                }
                Typed::Ignored => vec![],
            },
            Overlay::Tour(step) => match overlay_action(OverlayKind::Tour, key) {
                Some(OverlayAction::TourClose) => {
                    self.overlay = None;
                    self.say("tour closed; ? shows every key", false);
                    vec![]
                }
                Some(OverlayAction::TourStart) => {
                    // Starting the job from the tour moves it on to the dashboard tips.
                    let out = self.command(Command::Start);
                    let next = tour::first_step_on(Screen::Dashboard).max(step + 1);
                    self.goto_tour(next);
                    out
                }
                Some(OverlayAction::TourBack) => {
                    self.goto_tour(step.saturating_sub(1));
                    vec![]
                }
                _ => {
                    // Enter, and any other key: on to the next step.
                    self.goto_tour(step + 1);
                    vec![]
                }
            },
        }
    }

    fn goto_tour(&mut self, step: usize) {
        match tour::STEPS.get(step) {
            Some(s) => {
                self.screen = s.screen;
                self.overlay = Some(Overlay::Tour(step));
            }
            None => {
                self.overlay = None;
                self.say("that was the tour; ? shows every key", false);
            }
        }
    }

    /// Opening and saving job files happen where the cockpit runs: the app asks, the
    /// connection's request task does the file I/O and answers.
    fn file_action(&mut self, kind: PromptKind, path: &str) -> Vec<Request> {
        if path.is_empty() && kind != PromptKind::AddWorkers {
            return vec![];
        }
        let path = path.to_string();
        match kind {
            PromptKind::Open => {
                // What was checked for the old job does not describe the new one.
                self.setup.data_summary.clear();
                self.setup.data_columns.clear();
                self.setup.model.clear();
                self.setup.model_summary.clear();
                self.setup.path_problems.clear();
                vec![Request::OpenFile { path }]
            }
            PromptKind::Save => vec![Request::SaveFile { path, toml: self.setup.toml.clone() }],
            PromptKind::AddWorkers => match parse_add(&path) {
                Ok((count, host)) => {
                    let place = if host.is_empty() {
                        "through the job's launcher".to_string()
                    } else {
                        format!("on {host}")
                    };
                    self.say(format!("adding {count} worker(s) {place}..."), false);
                    vec![Request::AddWorkers { count, host }]
                }
                Err(e) => {
                    self.say(e, true);
                    vec![]
                }
            },
        }
    }
}

/// "N [where]" from the add-workers prompt: a count (default 1), then nothing (the job's
/// launcher), `local`, or an SSH host `user@host[:port]`.
pub fn parse_add(text: &str) -> Result<(u32, String), String> {
    let mut words = text.split_whitespace();
    let first = words.next().unwrap_or("1");
    let (count, host) = match first.parse::<u32>() {
        Ok(n) => (n, words.next().unwrap_or_default()),
        // A host alone means one worker there.
        Err(_) => (1, first),
    };
    if !(1..=64).contains(&count) {
        return Err(format!("add 1 to 64 workers at a time (got {count})"));
    }
    if words.next().is_some() {
        return Err("expected a count and one place, like `2 local` or `2 user@host`".into());
    }
    Ok((count, host.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyModifiers;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    fn running(app: &mut App) {
        app.handle_msg(Msg::Snapshot(model::JobSnapshot {
            job_name: "demo".into(),
            job_toml: "name = \"demo\"\n".into(),
            state: model::JobState::Running,
            workers: vec![
                model::WorkerInfo { id: 0, state: model::WorkerState::Training, ..Default::default() },
                model::WorkerInfo { id: 1, state: model::WorkerState::Training, ..Default::default() },
            ],
            ..Default::default()
        }));
    }

    fn form(app: &mut App) {
        app.handle_msg(Msg::Form(model::JobForm {
            fields: vec![
                model::FormField {
                    key: "train.epochs".into(),
                    value: "5".into(),
                    kind: model::FieldKind::Integer,
                    section: "train".into(),
                    common: true,
                    ..Default::default()
                },
                model::FormField {
                    key: "train.seed".into(),
                    value: "7".into(),
                    kind: model::FieldKind::Integer,
                    section: "train".into(),
                    ..Default::default()
                },
                model::FormField {
                    key: "cluster.launcher".into(),
                    value: "local".into(),
                    kind: model::FieldKind::Choice,
                    choices: vec!["embedded".into(), "local".into(), "ssh".into()],
                    section: "cluster".into(),
                    common: true,
                    ..Default::default()
                },
                model::FormField {
                    key: "data.train".into(),
                    value: "x".into(),
                    kind: model::FieldKind::Location,
                    section: "data".into(),
                    common: true,
                    ..Default::default()
                },
            ],
            problems: vec![],
            toml: "T".into(),
        }));
        app.setup.select_key("train.epochs");
    }

    #[test]
    fn setup_groups_keys_by_section_and_folds_the_uncommon_ones() {
        let mut app = App::new("u", false, false);
        form(&mut app);
        let keys = |app: &App| -> Vec<String> {
            app.setup
                .rows()
                .iter()
                .map(|r| match r {
                    Row::Section { name, hidden } => format!("[{name} +{hidden}]"),
                    Row::Field(i) => app.setup.fields[*i].key.clone(),
                })
                .collect()
        };
        assert_eq!(
            keys(&app),
            ["[data +0]", "data.train", "[train +1]", "train.epochs", "[cluster +0]", "cluster.launcher"]
        );
        // Enter on a section's title opens it, and again folds it.
        app.handle_key(key(KeyCode::Up));
        assert_eq!(app.setup.field(), None, "a title is selected");
        assert!(app.handle_key(key(KeyCode::Enter)).is_empty());
        assert!(keys(&app).contains(&"train.seed".to_string()));
        app.handle_key(key(KeyCode::Enter));
        assert!(!keys(&app).contains(&"train.seed".to_string()));
        // z shows every key, then folds them again; the selected key stays selected.
        app.handle_key(key(KeyCode::Down));
        app.handle_key(key(KeyCode::Char('z')));
        assert_eq!(app.setup.field().map(|f| f.key.as_str()), Some("train.epochs"));
        assert!(keys(&app).contains(&"train.seed".to_string()));
        app.handle_key(key(KeyCode::Char('z')));
        assert!(!keys(&app).contains(&"train.seed".to_string()));
        // A key with a problem is never folded away.
        app.setup.problems = vec![model::KeyProblem { key: "train.seed".into(), message: "bad".into() }];
        assert!(keys(&app).contains(&"train.seed".to_string()));
    }

    #[test]
    fn tab_cycles_screens_both_ways() {
        let mut app = App::new("u", false, false);
        app.handle_key(key(KeyCode::Tab));
        assert_eq!(app.screen, Screen::Dashboard);
        app.handle_key(KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT));
        app.handle_key(KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT));
        assert_eq!(app.screen, Screen::Logs);
    }

    #[test]
    fn start_submits_the_form_and_pause_stop_are_confirmed() {
        let mut app = App::new("u", true, false);
        form(&mut app);
        assert_eq!(
            app.handle_key(key(KeyCode::Char('s'))),
            vec![Request::Submit { toml: "T".into(), start: true }]
        );
        assert_eq!(app.screen, Screen::Dashboard);
        running(&mut app);
        assert!(app.handle_key(key(KeyCode::Char('s'))).is_empty(), "no second start while running");
        assert!(app.handle_key(key(KeyCode::Char('p'))).is_empty());
        assert_eq!(app.overlay, Some(Overlay::Confirm(Confirm::Pause)));
        assert!(app.handle_key(key(KeyCode::Char('n'))).is_empty(), "declined");
        app.handle_key(key(KeyCode::Char('p')));
        assert_eq!(app.handle_key(key(KeyCode::Char('y'))), vec![Request::Pause]);
        app.handle_key(key(KeyCode::Char('x')));
        assert_eq!(app.handle_key(key(KeyCode::Enter)), vec![Request::Stop]);
    }

    #[test]
    fn quit_asks_only_when_it_would_stop_an_embedded_job() {
        let mut attached = App::new("u", false, false);
        running(&mut attached);
        attached.handle_key(key(KeyCode::Char('q')));
        assert!(attached.quit, "detaching from a remote job needs no confirmation");
        let mut embedded = App::new("u", true, false);
        running(&mut embedded);
        embedded.handle_key(key(KeyCode::Char('q')));
        assert!(!embedded.quit);
        assert_eq!(embedded.overlay, Some(Overlay::Confirm(Confirm::Quit)));
        embedded.handle_key(key(KeyCode::Char('y')));
        assert!(embedded.quit);
        let mut idle = App::new("u", true, false);
        idle.handle_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
        assert!(idle.quit);
    }

    #[test]
    fn freeze_keeps_the_view_while_updates_continue() {
        let mut app = App::new("u", false, false);
        running(&mut app);
        app.handle_key(key(KeyCode::Char('f')));
        app.handle_msg(Msg::Delta(model::JobDelta {
            state: Some(model::JobState::Paused),
            ..Default::default()
        }));
        assert_eq!(app.view().state, model::JobState::Running, "the frozen view");
        assert_eq!(app.job.state, model::JobState::Paused, "the live state");
        app.handle_key(key(KeyCode::Char('f')));
        assert_eq!(app.view().state, model::JobState::Paused);
    }

    #[test]
    fn setup_edits_as_you_type_and_cycles_choices() {
        let mut app = App::new("u", false, false);
        form(&mut app);
        assert!(app.handle_key(key(KeyCode::Enter)).is_empty(), "start editing train.epochs");
        let edit = |v: &str| Request::Edit { toml: "T".into(), key: "train.epochs".into(), value: v.into() };
        assert_eq!(app.handle_key(key(KeyCode::Char('0'))), vec![edit("50")]);
        assert_eq!(app.handle_key(key(KeyCode::Backspace)), vec![edit("5")]);
        assert_eq!(app.handle_key(key(KeyCode::Char('q'))), vec![edit("5q")], "while editing, q is text");
        assert!(!app.quit);
        assert_eq!(app.handle_key(key(KeyCode::Esc)), vec![edit("5")], "Esc restores");
        app.setup.select_key("cluster.launcher");
        assert_eq!(
            app.handle_key(key(KeyCode::Right)),
            vec![Request::Edit { toml: "T".into(), key: "cluster.launcher".into(), value: "ssh".into() }]
        );
        assert_eq!(
            app.handle_key(key(KeyCode::Left)),
            vec![Request::Edit {
                toml: "T".into(),
                key: "cluster.launcher".into(),
                value: "embedded".into()
            }]
        );
        app.setup.select_key("data.train");
        app.handle_key(key(KeyCode::Enter));
        let out = app.handle_key(key(KeyCode::Enter));
        assert!(matches!(out.last(), Some(Request::Edit { .. })));
        let out = app.handle_msg(Msg::Form(model::JobForm { toml: "T2".into(), ..Default::default() }));
        assert_eq!(out, vec![Request::Validate { toml: "T2".into() }], "a location is checked once applied");
    }

    #[test]
    fn fields_and_prompts_edit_at_the_cursor_and_ignore_control_letters() {
        let mut app = App::new("u", false, false);
        form(&mut app);
        app.handle_key(key(KeyCode::Enter));
        let edit = |v: &str| Request::Edit { toml: "T".into(), key: "train.epochs".into(), value: v.into() };
        assert!(app.handle_key(key(KeyCode::Home)).is_empty(), "a cursor move asks nothing");
        assert_eq!(app.handle_key(key(KeyCode::Char('1'))), vec![edit("15")], "typed at the cursor");
        let ctrl = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL);
        assert!(app.handle_key(ctrl('x')).is_empty(), "ctrl-x types nothing");
        assert_eq!(app.handle_key(ctrl('k')), vec![edit("1")]);
        assert_eq!(app.handle_key(ctrl('u')), vec![edit("")]);
        assert_eq!(app.handle_key(key(KeyCode::Enter)), vec![edit("")]);
        // The save prompt: Ctrl-U clears the suggested name, Ctrl-W drops a path component.
        app.handle_key(key(KeyCode::Char('w')));
        app.handle_key(ctrl('u'));
        for c in "runs/a/job.toml".chars() {
            app.handle_key(key(KeyCode::Char(c)));
        }
        app.handle_key(ctrl('w'));
        for c in "b.toml".chars() {
            app.handle_key(key(KeyCode::Char(c)));
        }
        app.handle_key(key(KeyCode::Left));
        app.handle_key(key(KeyCode::Left));
        app.handle_key(key(KeyCode::Left));
        app.handle_key(key(KeyCode::Left));
        app.handle_key(key(KeyCode::Left));
        app.handle_key(key(KeyCode::Char('2')));
        assert_eq!(
            app.handle_key(key(KeyCode::Enter)),
            vec![Request::SaveFile { path: "runs/a/b2.toml".into(), toml: "T".into() }]
        );
    }

    #[test]
    fn an_edit_stays_with_its_key_when_the_form_changes_under_it() {
        let mut app = App::new("u", false, false);
        form(&mut app);
        // train.seed is folded, shown only while it has a problem; start editing it.
        app.setup.problems = vec![model::KeyProblem { key: "train.seed".into(), message: "bad".into() }];
        app.setup.select_key("train.seed");
        app.handle_key(key(KeyCode::Enter));
        // The fix arrives: no problem any more, but the key being typed stays in view and edited.
        let fields = app.setup.fields.clone();
        app.handle_msg(Msg::Form(model::JobForm { fields, problems: vec![], toml: "T2".into() }));
        assert_eq!(app.setup.field().map(|f| f.key.as_str()), Some("train.seed"));
        assert_eq!(
            app.handle_key(key(KeyCode::Char('1'))),
            vec![Request::Edit { toml: "T2".into(), key: "train.seed".into(), value: "71".into() }]
        );
        app.handle_key(key(KeyCode::Enter));
        assert!(!app.setup.rows().contains(&Row::Field(1)), "folded again once typed");
    }

    #[test]
    fn resuming_needs_no_confirmation_and_questions_follow_the_state() {
        let mut app = App::new("u", true, false);
        running(&mut app);
        app.handle_msg(Msg::Delta(model::JobDelta {
            state: Some(model::JobState::Paused),
            ..Default::default()
        }));
        assert_eq!(app.handle_key(key(KeyCode::Char('p'))), vec![Request::Resume]);
        assert!(app.overlay.is_none());
        assert!(Confirm::Quit.question(true).contains("running job"));
        assert!(!Confirm::Quit.question(false).contains("running job"), "after the job ended");
    }

    #[test]
    fn problems_block_start_and_point_to_the_field() {
        let mut app = App::new("u", false, false);
        form(&mut app);
        app.setup.problems =
            vec![model::KeyProblem { key: "train.epochs".into(), message: "must be 1..".into() }];
        app.screen = Screen::Dashboard;
        assert!(app.handle_key(key(KeyCode::Char('s'))).is_empty());
        assert_eq!(app.screen, Screen::Setup);
        assert!(app.status.as_ref().unwrap().text.contains("train.epochs"));
    }

    #[test]
    fn workers_screen_adds_and_removes_with_confirmation() {
        let mut app = App::new("u", false, false);
        running(&mut app);
        app.screen = Screen::Workers;
        assert!(app.handle_key(key(KeyCode::Char('a'))).is_empty(), "asks how many and where");
        assert!(matches!(app.overlay, Some(Overlay::Prompt { kind: PromptKind::AddWorkers, .. })));
        assert_eq!(
            app.handle_key(key(KeyCode::Enter)),
            vec![Request::AddWorkers { count: 1, host: String::new() }]
        );
        app.handle_key(key(KeyCode::Char('a')));
        for c in " me@node2:2222".chars() {
            app.handle_key(key(KeyCode::Char(c)));
        }
        assert_eq!(
            app.handle_key(key(KeyCode::Enter)),
            vec![Request::AddWorkers { count: 1, host: "me@node2:2222".into() }]
        );
        assert_eq!(parse_add("3 local"), Ok((3, "local".into())));
        assert_eq!(parse_add("me@n"), Ok((1, "me@n".into())));
        assert!(parse_add("0").is_err() && parse_add("2 a b").is_err());
        app.handle_key(key(KeyCode::Down));
        app.handle_key(key(KeyCode::Char('d')));
        assert_eq!(app.overlay, Some(Overlay::Confirm(Confirm::RemoveWorker(1))));
        assert_eq!(app.handle_key(key(KeyCode::Char('y'))), vec![Request::RemoveWorker(1)]);
    }

    #[test]
    fn save_and_open_ask_for_the_file_io_where_the_cockpit_runs() {
        let mut app = App::new("u", false, false);
        form(&mut app);
        app.handle_key(key(KeyCode::Char('w')));
        if let Some(Overlay::Prompt { line, .. }) = &mut app.overlay {
            *line = LineEdit::new("jobs/j.toml");
        }
        assert_eq!(
            app.handle_key(key(KeyCode::Enter)),
            vec![Request::SaveFile { path: "jobs/j.toml".into(), toml: "T".into() }]
        );
        app.handle_key(key(KeyCode::Char('o')));
        for c in " jobs/j.toml ".chars() {
            app.handle_key(key(KeyCode::Char(c)));
        }
        assert_eq!(
            app.handle_key(key(KeyCode::Enter)),
            vec![Request::OpenFile { path: "jobs/j.toml".into() }]
        );
        app.handle_key(key(KeyCode::Char('o')));
        assert!(app.handle_key(key(KeyCode::Enter)).is_empty(), "no path, nothing asked");
    }

    #[test]
    fn the_tour_walks_the_screens_and_s_starts() {
        let mut app = App::new("u", true, true);
        form(&mut app);
        assert_eq!(app.overlay, Some(Overlay::Tour(0)));
        let out = app.handle_key(key(KeyCode::Char('s')));
        assert_eq!(out, vec![Request::Submit { toml: "T".into(), start: true }]);
        assert_eq!(app.screen, Screen::Dashboard);
        let mut steps = 0;
        while app.overlay.is_some() && steps < 50 {
            app.handle_key(key(KeyCode::Enter));
            steps += 1;
        }
        assert!(app.overlay.is_none(), "the tour ends");
        assert!(steps >= 3);
    }

    #[test]
    fn logs_filters_cycle() {
        let mut app = App::new("u", false, false);
        running(&mut app);
        app.screen = Screen::Logs;
        app.handle_key(key(KeyCode::Char('l')));
        assert_eq!(app.logs.min_level, 3);
        app.handle_key(key(KeyCode::Char('w')));
        assert_eq!(app.logs.source, Some(None));
        app.handle_key(key(KeyCode::Char('w')));
        assert_eq!(app.logs.source, Some(Some(0)));
        app.handle_key(key(KeyCode::Char('w')));
        assert_eq!(app.logs.source, Some(Some(1)));
        app.handle_key(key(KeyCode::Char('w')));
        assert_eq!(app.logs.source, None);
    }
}
