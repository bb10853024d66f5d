//! The one extension point of gradient sharing: a [`Scheme`] decides what a worker does after
//! its backward pass (run the updater and send a message, take part in a collective, or just
//! apply), what it does with each message another worker sent, and what it reports; its
//! [`SchemeInfo`] tells the hub which wire formats it relays, whether the job's replica follows
//! the messages and what the epoch barrier averages. [`create`] and [`describe`] are the only
//! places that look at `sharing.mode`.

use super::{DecodeError, Format, LayerShare, MessageView};
use crate::backend::Backend;
use crate::job::{JobSpec, SharingMode, UpdaterKind};
use crate::nn::Layout;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("the job is gone: {0}")]
    Closed(String),
    #[error("{0}")]
    Failed(String),
}

/// What a collective computes over the workers taking part in a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reduce {
    /// The element-wise sum (a scheme divides by the contributors itself).
    Sum,
    /// The mean of the model state (parameters, then running state); it becomes the job's
    /// replica (parameter averaging).
    Model,
}

/// One call of a collective.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Collective {
    pub op: Reduce,
    /// The scheme's name for the buffer.
    pub tag: u32,
    /// The dense format the values travel in.
    pub wire: Format,
    /// A worker out of partitions stepping along ([`SchemeInfo::lockstep`]): its values are
    /// summed but it does not count as a contributor (a round of idle workers only returns 0).
    pub idle: bool,
}

impl Collective {
    pub fn sum(tag: u32, wire: Format, idle: bool) -> Collective {
        Collective { op: Reduce::Sum, tag, wire, idle }
    }
}

/// How a scheme reaches the other workers (the engine's transports implement it).
pub trait Link {
    /// Sends an encoded message to every other worker (through the hub, which validates it).
    fn send(&mut self, message: &[u8]) -> Result<(), TransportError>;
    /// All-reduce: replaces `values` with the reduction over the workers in this round that
    /// sent the same `tag` (a scheme's name for the buffer, so workers in different phases
    /// never sum unlike buffers) and returns how many contributed (0: the job ended, `values`
    /// are left as they were). `wire` is the dense format the values travel in
    /// ([`Format::Dense`], `Half`, `Bf16`); the values are rounded to it on both legs.
    fn all_reduce(&mut self, values: &mut [f32], c: Collective) -> Result<u32, TransportError>;
}

/// One step's context.
pub struct StepCtx<'a> {
    pub backend: &'a mut dyn Backend,
    pub link: &'a mut dyn Link,
    pub origin: u32,
    /// This worker's step count in the scheme (1 on the first step; idle steps count).
    pub step: u64,
    /// The learning-rate schedule's factor now.
    pub lr_scale: f32,
    /// Epochs done, with the fraction of the current one.
    pub epochs_done: f64,
    /// An idle step of a lockstep scheme: the gradient is zero and this worker trained nothing.
    pub idle: bool,
}

/// What a step of a scheme reports (to `--metrics-out`, the summary and the cockpit).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Figures {
    /// Values this worker put on the wire (quanta, top-k entries, low-rank factors, dense).
    pub entries: u64,
    /// Entries / parameters.
    pub sparsity: f64,
    /// Bytes this worker sent and received in the step's collective or message.
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Threshold: tau after the step; 0 for schemes without one.
    pub tau: f32,
    /// Error feedback's residual norm (threshold, top-k, PowerSGD).
    pub residual_norm: f64,
    /// Top-k: the k of this step.
    pub k: u64,
    /// PowerSGD: the rank (0 while it still sends dense).
    pub rank: u32,
}

impl Figures {
    /// A dense exchange of `values` values of `width` bytes each way.
    pub fn dense(values: usize, width: usize) -> Figures {
        let bytes = (super::HEADER_LEN + width * values) as u64;
        Figures {
            entries: values as u64,
            sparsity: 1.0,
            bytes_sent: bytes,
            bytes_received: bytes,
            ..Figures::default()
        }
    }
}

/// What the rest of the job needs to know of a scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchemeInfo {
    pub mode: SharingMode,
    pub name: &'static str,
    /// Whether workers exchange anything (a dense f32 exchange per step is the reference).
    pub exchanges: bool,
    /// The message formats workers send each other; empty: no messages.
    pub formats: &'static [Format],
    /// Messages are parameter updates: the hub applies them to its replica as it relays them,
    /// so the replica is the model, and at the epoch barrier workers keep their parameters
    /// (updates may still be in flight) and take only the averaged running state. Otherwise
    /// the barrier averages everything.
    pub replica_follows: bool,
    /// Whether a threshold moves (the cockpit shows its band).
    pub has_tau: bool,
    /// Every step is a collective of all workers, and every replica applies its result: a
    /// worker out of partitions keeps stepping (with a zero gradient) until the others are
    /// done, so replicas and updater states stay the same.
    pub lockstep: bool,
}

impl SchemeInfo {
    /// Checks a relayed message against this scheme's formats (the hub calls it before
    /// anything is applied or relayed).
    pub fn check<'a>(&self, bytes: &'a [u8], params: usize) -> Result<MessageView<'a>, DecodeError> {
        let view = MessageView::parse(bytes, params)?;
        if !self.formats.contains(&view.header.format) {
            return Err(DecodeError::UnknownFormat(view.header.format as u8));
        }
        Ok(view)
    }
}

/// A compression scheme as one worker runs it.
pub trait Scheme: Send {
    fn info(&self) -> SchemeInfo;
    /// One step: the backend holds this step's gradient. The scheme runs the updater (before
    /// or after the exchange), exchanges and applies; the parameters are updated on return.
    fn step(&mut self, ctx: StepCtx<'_>) -> Result<Figures, TransportError>;
    /// A validated message from another worker (or the dense sum of several merged).
    fn receive(&mut self, backend: &mut dyn Backend, message: &MessageView<'_>) {
        backend.apply_message(message);
    }
    /// Per-layer figures of the last step (threshold).
    fn layers(&self) -> &[LayerShare] {
        &[]
    }
    /// The threshold now; 0 for schemes without one.
    fn tau(&self) -> f32 {
        0.0
    }
    /// Continue from a saved tau (checkpoint resume, worker rejoin); schemes without one
    /// ignore it.
    fn set_tau(&mut self, _tau: f32) {}
}

/// Refusals of the factory, each naming the key to change.
#[derive(Debug, thiserror::Error)]
pub enum SchemeError {
    #[error("{key}: {message}")]
    Knob { key: &'static str, message: String },
}

/// Whether one updater runs after the exchange on the workers' summed gradient (every scheme
/// but threshold-on-updates, averaging, none, and top-k with momentum correction).
fn gradient_messages(job: &JobSpec) -> bool {
    match job.sharing_mode() {
        SharingMode::Threshold => job.shares_gradient(),
        SharingMode::Topk => !momentum_corrected(job),
        _ => true,
    }
}

/// The factor on `train.updater.lr` when the scheme runs one updater on the workers' mean
/// gradient ([`super::gradient::lr_gain`]: the linear rule for SGD and Nesterov, the
/// square-root rule for Adam and RMSProp); `None` when each worker's updater runs on its own
/// gradient (threshold on updates, top-k with momentum correction, averaging, none).
pub fn mean_gradient_gain(job: &JobSpec) -> Option<f32> {
    let mode = job.sharing_mode();
    (mode != SharingMode::None && mode != SharingMode::Averaging && gradient_messages(job))
        .then(|| super::gradient::lr_gain(job))
}

/// Top-k with an SGD-family updater corrects momentum itself (DGC) and sends parameter deltas.
pub(super) fn momentum_corrected(job: &JobSpec) -> bool {
    matches!(job.updater().kind, Some(UpdaterKind::Sgd | UpdaterKind::Nesterov))
}

/// The scheme `sharing.mode` names, described.
pub fn describe(job: &JobSpec) -> SchemeInfo {
    let mode = job.sharing_mode();
    let base = SchemeInfo {
        mode,
        name: mode.name(),
        exchanges: true,
        formats: &[],
        replica_follows: false,
        has_tau: false,
        lockstep: false,
    };
    match mode {
        SharingMode::None => SchemeInfo { exchanges: false, ..base },
        SharingMode::Averaging => base,
        SharingMode::Powersgd | SharingMode::Dense16 => SchemeInfo { lockstep: true, ..base },
        SharingMode::Threshold => SchemeInfo {
            formats: &[Format::Sparse, Format::Bitmap],
            replica_follows: !gradient_messages(job),
            has_tau: true,
            ..base
        },
        SharingMode::Topk => {
            SchemeInfo { formats: &[Format::Values], replica_follows: !gradient_messages(job), ..base }
        }
    }
}

/// Builds the scheme `sharing.mode` names for one worker.
pub fn create(job: &JobSpec, layout: &Layout) -> Result<Box<dyn Scheme>, SchemeError> {
    let info = describe(job);
    Ok(match info.mode {
        SharingMode::None => Box::new(super::none::NoSharing(info)),
        SharingMode::Averaging => Box::new(super::averaging::Averaging::new(job)),
        SharingMode::Threshold => Box::new(super::threshold::ThresholdSharing::new(job, layout)),
        SharingMode::Topk => Box::new(super::topk::TopK::new(job, layout)),
        SharingMode::Powersgd => Box::new(super::powersgd::PowerSgd::new(job, layout)?),
        SharingMode::Dense16 => Box::new(super::dense16::Dense16::new(job, layout)),
    })
}
