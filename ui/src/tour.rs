//! `strom demo`: a guided walkthrough, short overlays that explain what gradient sharing is
//! doing and how to read each figure, advanced with a key.

use crate::keys::Screen;

pub struct Step {
    pub screen: Screen,
    pub title: &'static str,
    pub text: &'static str,
}

pub const STEPS: &[Step] = &[
    Step {
        screen: Screen::Setup,
        title: "Welcome to Strom",
        text: "This is the job form: a small CNN on 10,000 Fashion-MNIST images, trained by \
               3 worker processes that share only the largest parts of their updates.\n\n\
               Every key can be edited (Enter). Press s to start the job, or any key for the next tip.",
    },
    Step {
        screen: Screen::Setup,
        title: "Gradient sharing in one paragraph",
        text: "Each worker adds its update to a residual. Entries whose residual reaches \
               tau are sent as a single +tau or -tau; the rest stays behind for later, so \
               nothing is lost, only delayed. A message of a few hundred entries replaces \
               421,642 floats.\n\nPress s to start the job.",
    },
    Step {
        screen: Screen::Dashboard,
        title: "The dashboard",
        text: "Top: epoch, partitions done, elapsed time and ETA, the throughput of all \
               workers, and the bytes on the wire with the compression against sending \
               dense f32 updates every step.",
    },
    Step {
        screen: Screen::Dashboard,
        title: "Loss and accuracy",
        text: "Left: the training loss, averaged over the workers' recent steps. Right: \
               test accuracy of the job's model, measured at the end of every epoch.",
    },
    Step {
        screen: Screen::Dashboard,
        title: "Sparsity and tau",
        text: "The sparsity ratio is the fraction of entries a worker sent in a step, on a \
               log scale. The dotted lines are the target band: below it tau shrinks, above \
               it tau grows, by a factor 2 every 20 steps. Early steps sit above the band \
               while tau finds its level.",
    },
    Step {
        screen: Screen::Dashboard,
        title: "Residual norm",
        text: "The residual is what a worker still owes the others. Its norm should level \
               off; a norm that keeps growing means tau lags behind the updates (the \
               dashboard warns), and the residual is clipped to 5 tau every 5 steps.",
    },
    Step {
        screen: Screen::Workers,
        title: "Workers",
        text: "One row per worker: throughput, sparsity, tau, residual norm, how many steps \
               it lags behind the fastest, and when it was last heard from; below, the selected \
               worker's last step by layer (which layers send most). a adds workers (here \
               or on an SSH host), d stops the selected one; its partitions go back to the queue.",
    },
    Step {
        screen: Screen::Logs,
        title: "Logs",
        text: "The coordinator's and the workers' log lines. l sets the minimum level, w \
               picks one worker. Tab moves between screens, ? lists every key, q quits \
               (the job and its worker processes stop with it).",
    },
];

/// The first step shown on `screen`.
pub fn first_step_on(screen: Screen) -> usize {
    STEPS.iter().position(|s| s.screen == screen).unwrap_or(0)
}
