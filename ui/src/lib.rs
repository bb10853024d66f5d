//! `strom-ui`: the cockpit. A pure client of the coordinator's `Control` service (it links
//! `strom-proto`, never the engine), so watching an embedded job and attaching to a remote
//! one over SSH are the same code.
//!
//! `state` holds what is known, `app` turns keys and messages into requests, `conn` talks to
//! the coordinator, `view` draws; `keys` is the one key table behind input, command bar and
//! help; `tour` is `strom demo`'s walkthrough. `model` has the cockpit's own types for what
//! the coordinator sends: `conn` converts the wire (protobuf) types into them where they
//! arrive, so nothing past it sees a protobuf type.

pub mod app;
pub mod conn;
pub mod keys;
pub mod line;
pub mod model;
pub mod state;
pub mod tour;
pub mod view;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossterm::event::{Event, EventStream, KeyEventKind, MouseButton, MouseEventKind};
use futures_util::StreamExt;
use tokio::sync::mpsc;

pub use conn::Target;

use app::{App, Msg, Request};

pub struct CockpitConfig {
    pub target: Target,
    /// The coordinator runs in this process: quitting stops the job.
    pub embedded: bool,
    /// Start with the guided walkthrough (`strom demo`).
    pub tour: bool,
    /// How often the coordinator sends deltas and the screen redraws.
    pub refresh: Duration,
    /// Let the mouse switch screens and scroll.
    pub mouse: bool,
    /// When the process started, for the first-frame measurement.
    pub started: Instant,
    /// Write time-to-first-frame figures here (`STROM_UI_TIMING`).
    pub timing_file: Option<PathBuf>,
}

/// Runs the cockpit until the user quits. The terminal is restored on every way out
/// (including a panic: ratatui's hook).
pub async fn run(cfg: CockpitConfig) -> anyhow::Result<()> {
    let mut terminal = ratatui::try_init()?;
    if cfg.mouse {
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture);
    }
    let result = event_loop(&mut terminal, &cfg).await;
    if cfg.mouse {
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
    }
    ratatui::restore();
    result
}

async fn event_loop(terminal: &mut ratatui::DefaultTerminal, cfg: &CockpitConfig) -> anyhow::Result<()> {
    let (msg_tx, mut msg_rx) = mpsc::channel::<Msg>(1024);
    let (req_tx, req_rx) = mpsc::channel::<Request>(64);
    let tasks = [
        tokio::spawn(conn::watch(cfg.target.clone(), cfg.refresh, msg_tx.clone())),
        tokio::spawn(conn::logs(cfg.target.clone(), msg_tx.clone())),
        tokio::spawn(conn::requests(cfg.target.clone(), req_rx, msg_tx)),
    ];
    let mut app = App::new(cfg.target.url.clone(), cfg.embedded, cfg.tour);
    let mut events = EventStream::new();
    let mut tick = tokio::time::interval(cfg.refresh);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut timing = Timing::default();
    let mut now = true; // draw at once (input, resize); data waits for the tick
    loop {
        if app.dirty && now {
            terminal.draw(|f| view::draw(f, &app))?;
            app.dirty = false;
            timing.frame(cfg, &app);
        }
        now = false;
        tokio::select! {
            _ = tick.tick() => {
                app.tick();
                now = true;
            }
            ev = events.next() => match ev {
                Some(Ok(Event::Key(k))) if k.kind == KeyEventKind::Press => {
                    for r in app.handle_key(k) {
                        let _ = req_tx.send(r).await;
                    }
                    now = true;
                }
                Some(Ok(Event::Resize(..))) => {
                    app.dirty = true;
                    now = true;
                }
                Some(Ok(Event::Mouse(m))) => {
                    match m.kind {
                        MouseEventKind::Down(MouseButton::Left) if m.row == 1 => {
                            if let Some(s) = view::tab_at(m.column) {
                                app.screen = s;
                                app.dirty = true;
                            }
                        }
                        MouseEventKind::ScrollUp => { app.handle_key(crossterm::event::KeyEvent::from(crossterm::event::KeyCode::Up)); }
                        MouseEventKind::ScrollDown => { app.handle_key(crossterm::event::KeyEvent::from(crossterm::event::KeyCode::Down)); }
                        _ => {}
                    }
                    now = true;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => break,
            },
            Some(msg) = msg_rx.recv() => {
                for r in app.handle_msg(msg) {
                    let _ = req_tx.send(r).await;
                }
                // The first frame with data is drawn at once; later data waits for the tick.
                now = !timing.data_seen && app.view().state != Default::default();
            }
            _ = sigterm.recv() => app.quit = true,
        }
        if app.quit {
            break;
        }
    }
    for t in tasks {
        t.abort();
    }
    Ok(())
}

#[derive(Default)]
struct Timing {
    first: bool,
    data_seen: bool,
}

impl Timing {
    fn frame(&mut self, cfg: &CockpitConfig, app: &App) {
        let ms = cfg.started.elapsed().as_secs_f64() * 1000.0;
        let mut line = None;
        if !self.first {
            self.first = true;
            line = Some(format!("first_frame_ms {ms:.1}\n"));
        }
        if !self.data_seen && app.view().state != Default::default() {
            self.data_seen = true;
            line = Some(format!("{}first_data_frame_ms {ms:.1}\n", line.unwrap_or_default()));
        }
        if let (Some(l), Some(path)) = (line, &cfg.timing_file) {
            use std::io::Write;
            if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
                let _ = f.write_all(l.as_bytes());
            }
        }
    }
}
