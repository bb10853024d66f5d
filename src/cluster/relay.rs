//! The relay tree. Up to `cluster.relay.star_max` workers the coordinator sends every accepted
//! update to every other worker (a star). Above it, as Deeplearning4j's mesh, the coordinator
//! numbers each update it accepts (1, 2, 3, ...: its order, the same for everyone) and keeps it
//! in a bounded [`History`]; workers form a tree of at most `cluster.relay.fanout` children per
//! node, filled breadth first ([`layout`]), and each node serves its history to its children
//! (`Relay.Subscribe`). Updates still go up to the coordinator directly (it validates each one
//! before any worker sees it, and keeps its replica as in the star); only the fan-out moves.
//!
//! A subscriber asks for the update after the last one it holds, so a child that moves to
//! another parent (its parent died or the tree changed) misses nothing and drops what it
//! already has: every update reaches every worker once. A child further behind than its new
//! parent's history re-synchronises from the coordinator's replica, as a re-joining worker does.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::Stream;
use strom_proto::v1 as pb;
use tokio::sync::{Notify, watch};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status, Streaming};

use super::ClusterError;
use super::auth::{CheckToken, WorkerSession};
use crate::engine::hub::WorkerId;
use crate::engine::inbox::{Inbox, SharedMessage};

/// What a node keeps for children that re-attach: this many updates ...
pub const HISTORY_MESSAGES: usize = 65_536;
/// ... and at most this many bytes of them.
pub const HISTORY_BYTES: usize = 256 << 20;

pub type UpdateStream = Pin<Box<dyn Stream<Item = Result<pb::Update, Status>> + Send + 'static>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One relayed update and its place in the coordinator's order.
#[derive(Clone, Debug)]
pub struct Entry {
    pub seq: u64,
    pub origin: WorkerId,
    pub payload: SharedMessage,
}

struct Ring {
    entries: VecDeque<Entry>,
    bytes: usize,
    /// The last update held (or, empty, the one before the next expected).
    last: u64,
    closed: bool,
}

/// The updates a node has seen, contiguous in the coordinator's order, bounded in count and
/// bytes; subscribers read it at their own pace and wake when it grows.
pub struct History {
    ring: Mutex<Ring>,
    grown: watch::Sender<u64>,
    max_messages: usize,
    max_bytes: usize,
}

/// What [`History::push`] did with an update.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    Added,
    /// Already held (a re-attached child hearing it again): dropped.
    Duplicate,
    /// Not the next one: updates in between are missing.
    Gap {
        expected: u64,
    },
}

impl History {
    /// An empty history whose next update is `last + 1`.
    pub fn new(last: u64) -> Arc<History> {
        History::bounded(last, HISTORY_MESSAGES, HISTORY_BYTES)
    }

    pub fn bounded(last: u64, max_messages: usize, max_bytes: usize) -> Arc<History> {
        Arc::new(History {
            ring: Mutex::new(Ring { entries: VecDeque::new(), bytes: 0, last, closed: false }),
            grown: watch::channel(last).0,
            max_messages: max_messages.max(1),
            max_bytes,
        })
    }

    /// The last update held.
    pub fn last(&self) -> u64 {
        lock(&self.ring).last
    }

    /// The coordinator: numbers `payload` as the next update and keeps it.
    pub fn append(&self, origin: WorkerId, payload: SharedMessage) -> u64 {
        let seq = self.last() + 1;
        // Only the coordinator appends, under its run's lock: the number is still free.
        let _ = self.push(Entry { seq, origin, payload });
        seq
    }

    /// A relaying worker: keeps an update its parent sent.
    pub fn push(&self, entry: Entry) -> Pushed {
        let seq = entry.seq;
        {
            let mut r = lock(&self.ring);
            if seq <= r.last {
                return Pushed::Duplicate;
            }
            if seq != r.last + 1 {
                return Pushed::Gap { expected: r.last + 1 };
            }
            r.bytes += entry.payload.len();
            r.entries.push_back(entry);
            r.last = seq;
            while r.entries.len() > self.max_messages || (r.bytes > self.max_bytes && r.entries.len() > 1) {
                if let Some(old) = r.entries.pop_front() {
                    r.bytes -= old.payload.len();
                }
            }
        }
        self.grown.send_replace(seq);
        Pushed::Added
    }

    /// After a re-synchronisation from the replica (which includes every update up to `last`):
    /// what is held stays only if it continues there.
    pub fn restart_at(&self, last: u64) {
        let mut r = lock(&self.ring);
        if r.last != last {
            r.entries.clear();
            r.bytes = 0;
            r.last = last;
        }
    }

    /// The run is over: subscribers' streams end.
    pub fn close(&self) {
        lock(&self.ring).closed = true;
        self.grown.send_modify(|_| {});
    }

    /// Copies up to `max` updates from `from` on into `out`. `Err(oldest)` when `from` is no
    /// longer held; `Ok(true)` when the history is closed.
    fn read(&self, from: u64, out: &mut Vec<Entry>, max: usize) -> Result<bool, u64> {
        let r = lock(&self.ring);
        let oldest = r.entries.front().map_or(r.last + 1, |e| e.seq);
        if from < oldest {
            return Err(oldest);
        }
        let skip = (from - oldest) as usize;
        out.extend(r.entries.iter().skip(skip).take(max).cloned());
        Ok(r.closed)
    }

    /// The updates from `from` on, then each as it arrives; ends with OUT_OF_RANGE when `from`
    /// (or, for a subscriber that fell this far behind, its next update) is no longer held.
    pub fn subscribe(self: &Arc<Self>, from: u64) -> UpdateStream {
        struct Reader {
            history: Arc<History>,
            grown: watch::Receiver<u64>,
            next: u64,
            ready: VecDeque<Entry>,
            batch: Vec<Entry>,
            done: bool,
        }
        let reader = Reader {
            history: self.clone(),
            grown: self.grown.subscribe(),
            next: from.max(1),
            ready: VecDeque::new(),
            batch: Vec::new(),
            done: false,
        };
        Box::pin(futures_util::stream::unfold(reader, |mut s| async move {
            loop {
                if let Some(e) = s.ready.pop_front() {
                    let update = pb::Update { origin: e.origin, seq: e.seq, payload: e.payload };
                    return Some((Ok(update), s));
                }
                if s.done {
                    return None;
                }
                // Seen before reading: growth after this wakes the wait below.
                s.grown.borrow_and_update();
                s.batch.clear();
                match s.history.read(s.next, &mut s.batch, 256) {
                    Err(oldest) => {
                        s.done = true;
                        let why = format!(
                            "update {} is no longer held here (this node's history starts at {oldest})",
                            s.next
                        );
                        return Some((Err(Status::out_of_range(why)), s));
                    }
                    Ok(closed) => {
                        if let Some(e) = s.batch.last() {
                            s.next = e.seq + 1;
                            s.ready.extend(s.batch.drain(..));
                            continue;
                        }
                        if closed {
                            return None;
                        }
                    }
                }
                if s.grown.changed().await.is_err() {
                    return None;
                }
            }
        }))
    }
}

/// The parent of each worker (`None`: the coordinator). `workers` in placement order, each with
/// whether it can relay (serves `Relay` and has not been reported unreachable). Nodes take at
/// most `fanout` children, filled breadth first, relays placed before the others so that a
/// worker that cannot relay is always a leaf; when the relays' places run out the rest hang
/// from the coordinator.
pub fn layout(workers: &[(WorkerId, bool)], fanout: usize) -> BTreeMap<WorkerId, Option<WorkerId>> {
    let fanout = fanout.max(1);
    let mut parents = BTreeMap::new();
    // Nodes with free places, in breadth-first order.
    let mut open: VecDeque<(Option<WorkerId>, usize)> = VecDeque::from([(None, fanout)]);
    let order = workers.iter().filter(|w| w.1).chain(workers.iter().filter(|w| !w.1));
    for &(id, relays) in order {
        let parent = match open.front_mut() {
            Some((parent, free)) => {
                let p = *parent;
                *free -= 1;
                if *free == 0 {
                    open.pop_front();
                }
                p
            }
            None => None,
        };
        parents.insert(id, parent);
        if relays {
            open.push_back((Some(id), fanout));
        }
    }
    parents
}

/// The coordinator's view of the tree: where each worker serves, who may not relay.
pub struct Tree {
    pub fanout: usize,
    pub history: Arc<History>,
    addrs: BTreeMap<WorkerId, SocketAddr>,
    /// Reported unreachable by a child: leaves from then on (until they join again).
    demoted: BTreeSet<WorkerId>,
}

impl Tree {
    pub fn new(fanout: usize, last: u64) -> Tree {
        Tree { fanout, history: History::new(last), addrs: BTreeMap::new(), demoted: BTreeSet::new() }
    }

    /// A heartbeat from `id`: where it serves, and a parent it could not reach. An address
    /// that is not `ip:port` is ignored (the worker stays a leaf).
    pub fn heard(&mut self, id: WorkerId, addr: &str, unreachable: Option<WorkerId>) {
        match addr.parse::<SocketAddr>() {
            Ok(a) => {
                self.addrs.insert(id, a);
            }
            Err(_) if !addr.is_empty() => {
                tracing::warn!(
                    worker = id,
                    "worker {id} gave {addr:?} as its relay address, not ip:port: it stays a leaf"
                )
            }
            Err(_) => {}
        }
        if let Some(p) = unreachable
            && p != id
            && self.demoted.insert(p)
        {
            tracing::warn!(
                worker = p,
                "worker {id} cannot reach worker {p}, its parent in the relay tree: worker {p} relays no more, its children move"
            );
        }
    }

    /// `id` joined again (a new process, perhaps a new address): it starts afresh.
    pub fn rejoined(&mut self, id: WorkerId) {
        self.addrs.remove(&id);
        self.demoted.remove(&id);
    }

    /// The parent of `id` among the `live` workers (in id order): `None` for the coordinator.
    pub fn parent(&self, id: WorkerId, live: &[WorkerId]) -> Option<(WorkerId, SocketAddr)> {
        let nodes: Vec<(WorkerId, bool)> =
            live.iter().map(|&w| (w, self.addrs.contains_key(&w) && !self.demoted.contains(&w))).collect();
        let parent = layout(&nodes, self.fanout).get(&id).copied().flatten()?;
        self.addrs.get(&parent).map(|&a| (parent, a))
    }
}

/// `Relay` as a worker serves it: its own history, to callers with the job's token.
pub struct NodeService {
    pub history: Arc<History>,
}

#[tonic::async_trait]
impl pb::relay_server::Relay for NodeService {
    type SubscribeStream = UpdateStream;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        Ok(Response::new(self.history.subscribe(request.get_ref().from_seq)))
    }
}

/// A relaying worker: its history and the `Relay` server that serves it.
pub struct RelayNode {
    pub history: Arc<History>,
    /// Where it serves (the address its children connect to).
    pub addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for RelayNode {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RelayNode {
    /// Serves `Relay` (to callers with the job's `token`) on the address this host reaches the
    /// coordinator at `coordinator_url` from, on a free port.
    pub async fn start(coordinator_url: &str, token: Option<&str>) -> Result<RelayNode, ClusterError> {
        let bad = |m: String| ClusterError::Config(format!("relay tree: {m}"));
        let uri: tonic::codegen::http::Uri =
            coordinator_url.parse().map_err(|e| bad(format!("coordinator URL {coordinator_url}: {e}")))?;
        let host = uri.host().unwrap_or("127.0.0.1").trim_matches(['[', ']']).to_string();
        let port = uri.port_u16().unwrap_or(80);
        let target = tokio::net::lookup_host((host.as_str(), port))
            .await
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| bad(format!("cannot resolve {host}")))?;
        // The interface the coordinator is reached through (a UDP "connection" sends nothing).
        let probe = std::net::UdpSocket::bind(if target.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" })
            .and_then(|s| s.connect(target).map(|_| s))
            .and_then(|s| s.local_addr())
            .map_err(|e| bad(format!("no route to the coordinator at {target}: {e}")))?;
        let listen = SocketAddr::new(probe.ip(), 0);
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| ClusterError::Listen { addr: listen.to_string(), source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| ClusterError::Listen { addr: listen.to_string(), source })?;
        let history = History::new(0);
        let service = pb::relay_server::RelayServer::new(NodeService { history: history.clone() })
            .max_encoding_message_size(crate::cluster::coordinator::MAX_MESSAGE);
        let check = CheckToken::for_service(token, "relay", None);
        // Each update is sent as it comes: without TCP_NODELAY a child's delayed ACK holds a
        // small message back by up to 40 ms at every hop.
        let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        let server = tokio::spawn(async move {
            let served = tonic::transport::Server::builder()
                .http2_keepalive_interval(Some(KEEPALIVE))
                .http2_keepalive_timeout(Some(KEEPALIVE))
                .add_service(InterceptedService::new(service, check))
                .serve_with_incoming(incoming)
                .await;
            if let Err(e) = served {
                tracing::warn!("the relay server stopped: {e}");
            }
        });
        Ok(RelayNode { history, addr, server })
    }
}

/// Keep-alive between parent and child: a parent that vanishes without closing its
/// connection (a host powered off) is found within two of these.
const KEEPALIVE: Duration = Duration::from_secs(1);

/// Whom a worker subscribes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parent {
    Coordinator,
    Worker(WorkerId, String),
}

impl std::fmt::Display for Parent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Parent::Coordinator => write!(f, "the coordinator"),
            Parent::Worker(id, addr) => write!(f, "worker {id} ({addr})"),
        }
    }
}

type CoordinatorRelay = pb::relay_client::RelayClient<InterceptedService<Channel, WorkerSession>>;

/// What a worker's subscription needs: where updates go (its history, for its own children,
/// and its inbox), whom to follow (set by its heartbeat), how to ask for a new parent.
pub struct Follow {
    pub id: WorkerId,
    pub history: Arc<History>,
    pub inbox: Arc<Mutex<Inbox>>,
    pub parent: watch::Receiver<Option<Parent>>,
    /// Wakes the heartbeat to ask for a parent now ...
    pub beat_now: Arc<Notify>,
    /// ... telling the coordinator which one could not be reached.
    pub unreachable: Arc<Mutex<Option<WorkerId>>>,
    pub coordinator: CoordinatorRelay,
    pub session: WorkerSession,
    /// Set when this worker must re-synchronise from the replica (it re-joins).
    pub broken: Arc<AtomicBool>,
}

async fn subscribe(f: &Follow, parent: &Parent, from: u64) -> Result<Streaming<pb::Update>, Status> {
    let req = pb::SubscribeRequest { worker_id: f.id, from_seq: from };
    let reply = match parent {
        Parent::Coordinator => f.coordinator.clone().subscribe(req).await?,
        Parent::Worker(_, addr) => {
            let ep = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                .map_err(|e| Status::invalid_argument(format!("relay address {addr}: {e}")))?
                .connect_timeout(Duration::from_secs(1))
                .tcp_nodelay(true)
                .http2_keep_alive_interval(KEEPALIVE)
                .keep_alive_timeout(KEEPALIVE);
            let channel = tokio::time::timeout(Duration::from_secs(2), ep.connect())
                .await
                .map_err(|_| Status::unavailable(format!("{addr} did not answer within 2 s")))?
                .map_err(|e| Status::unavailable(format!("cannot reach {addr}: {e}")))?;
            pb::relay_client::RelayClient::with_interceptor(channel, f.session.clone())
                .max_decoding_message_size(crate::cluster::coordinator::MAX_MESSAGE)
                .subscribe(req)
                .await?
        }
    };
    Ok(reply.into_inner())
}

/// A worker's side of the tree: follows the parent its heartbeat names, keeps every update in
/// its history (its children read it there) and queues the others' for training. A parent
/// lost is reported and replaced; an update it already has is dropped; a gap, or a parent that
/// no longer holds what it needs, makes it re-synchronise from the replica.
pub async fn follow(mut f: Follow) {
    // Since when, and which parent, this worker has been without one.
    let mut lost: Option<(std::time::Instant, Parent)> = None;
    let mut duplicates = 0u64;
    loop {
        let Some(parent) = f.parent.borrow_and_update().clone() else {
            if f.parent.changed().await.is_err() {
                return;
            }
            continue;
        };
        let from = f.history.last() + 1;
        let mut stream = match subscribe(&f, &parent, from).await {
            Ok(s) => s,
            Err(status) if status.code() == Code::OutOfRange => return resync(&f, &parent, &status),
            Err(status) => {
                tracing::debug!("cannot subscribe to {parent}: {}", status.message());
                lose(&f, &parent, &mut lost);
                // A new parent from the heartbeat, or this one again after a pause.
                let _ = tokio::time::timeout(Duration::from_millis(250), f.parent.changed()).await;
                continue;
            }
        };
        match lost.take() {
            Some((since, old)) => tracing::info!(
                "re-attached to {parent} {:.2} s after losing {old}, from update {from} ({duplicates} duplicate updates dropped so far)",
                since.elapsed().as_secs_f64()
            ),
            None => tracing::info!("receives updates through {parent}, from update {from}"),
        }
        loop {
            tokio::select! {
                m = stream.message() => match m {
                    Ok(Some(u)) => {
                        let entry = Entry { seq: u.seq, origin: u.origin, payload: u.payload.clone() };
                        match f.history.push(entry) {
                            Pushed::Added if u.origin != f.id => lock(&f.inbox).push(u.payload),
                            Pushed::Added => {}
                            Pushed::Duplicate => duplicates += 1,
                            Pushed::Gap { expected } => {
                                let why = Status::data_loss(format!("sent update {} when {expected} was next", u.seq));
                                return resync(&f, &parent, &why);
                            }
                        }
                    }
                    Err(status) if status.code() == Code::OutOfRange => return resync(&f, &parent, &status),
                    other => {
                        let why = other.err().map_or("its stream ended".to_string(), |s| s.message().to_string());
                        tracing::debug!("lost {parent}: {why}");
                        lose(&f, &parent, &mut lost);
                        break;
                    }
                },
                changed = f.parent.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    if f.parent.borrow().as_ref() != Some(&parent) {
                        break;
                    }
                }
            }
        }
    }
}

fn lose(f: &Follow, parent: &Parent, lost: &mut Option<(std::time::Instant, Parent)>) {
    lost.get_or_insert_with(|| (std::time::Instant::now(), parent.clone()));
    if let Parent::Worker(p, _) = parent {
        *lock(&f.unreachable) = Some(*p);
    }
    f.beat_now.notify_one();
}

fn resync(f: &Follow, parent: &Parent, why: &Status) {
    tracing::warn!(
        "{parent} cannot continue this worker's updates after update {} ({}): re-synchronising from the coordinator's replica",
        f.history.last(),
        why.message()
    );
    f.broken.store(true, Ordering::Release);
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn entry(seq: u64, len: usize) -> Entry {
        Entry { seq, origin: (seq % 3) as u32, payload: SharedMessage::from(vec![0u8; len]) }
    }

    #[test]
    fn layout_fills_breadth_first_with_relays_inside() {
        let ws: Vec<(WorkerId, bool)> = (1..=20).map(|w| (w, true)).collect();
        let p = layout(&ws, 3);
        assert_eq!(p[&1], None);
        assert_eq!(p[&3], None);
        assert_eq!(p[&4], Some(1));
        assert_eq!(p[&6], Some(1));
        assert_eq!(p[&7], Some(2));
        assert_eq!(p[&13], Some(4));
        // Every node has at most `fanout` children and every chain ends at the coordinator.
        for w in 1..=20u32 {
            assert!(p.values().filter(|&&q| q == Some(w)).count() <= 3);
            let mut at = Some(w);
            let mut depth = 0;
            while let Some(x) = at {
                at = p[&x];
                depth += 1;
                assert!(depth <= 20, "a cycle through {w}");
            }
            assert!(depth <= 3, "worker {w} at depth {depth}");
        }
        assert_eq!(p.values().filter(|q| q.is_none()).count(), 3);
    }

    #[test]
    fn workers_that_cannot_relay_are_leaves() {
        let ws = [(1, false), (2, true), (3, false), (4, true), (5, false)];
        let p = layout(&ws, 1);
        // Relays first: 2 under the coordinator, 4 under 2; then the leaves: 1 under 4, and
        // the rest overflow to the coordinator.
        assert_eq!(p[&2], None);
        assert_eq!(p[&4], Some(2));
        assert_eq!(p[&1], Some(4));
        assert_eq!(p[&3], None);
        assert_eq!(p[&5], None);
        for (_, parent) in p {
            assert!(parent.is_none() || [2, 4].contains(&parent.unwrap()));
        }
    }

    #[test]
    fn a_lost_relay_moves_only_into_the_live_tree() {
        let mut t = Tree::new(2, 0);
        for w in 1..=7 {
            t.heard(w, &format!("127.0.0.1:{}", 4000 + w), None);
        }
        let live: Vec<WorkerId> = (1..=7).collect();
        assert_eq!(t.parent(3, &live).map(|p| p.0), Some(1));
        // Worker 3's child reports it unreachable: 3 becomes a leaf, nobody's parent.
        t.heard(6, "127.0.0.1:4006", Some(3));
        for w in 1..=7 {
            assert_ne!(t.parent(w, &live).map(|p| p.0), Some(3));
        }
        // A bad address leaves the worker a leaf.
        let mut t = Tree::new(1, 0);
        t.heard(1, "not an address", None);
        t.heard(2, "127.0.0.1:9", None);
        assert_eq!(t.parent(1, &[1, 2]).map(|p| p.0), Some(2));
        t.rejoined(2);
        assert_eq!(t.parent(1, &[1, 2]), None);
    }

    #[test]
    fn history_keeps_order_and_drops_duplicates() {
        let h = History::bounded(10, 4, 1 << 20);
        assert_eq!(h.push(entry(12, 1)), Pushed::Gap { expected: 11 });
        assert_eq!(h.push(entry(11, 1)), Pushed::Added);
        assert_eq!(h.push(entry(11, 1)), Pushed::Duplicate);
        assert_eq!(h.push(entry(5, 1)), Pushed::Duplicate);
        for s in 12..=16 {
            assert_eq!(h.push(entry(s, 1)), Pushed::Added);
        }
        // Four kept: 13..=16.
        let mut out = Vec::new();
        assert_eq!(h.read(12, &mut out, 10), Err(13));
        assert_eq!(h.read(13, &mut out, 10), Ok(false));
        assert_eq!(out.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![13, 14, 15, 16]);
        // Bytes bound the history too (the newest is always kept).
        let h = History::bounded(0, 100, 25);
        for s in 1..=5 {
            h.push(entry(s, 10));
        }
        out.clear();
        assert_eq!(h.read(3, &mut out, 10), Err(4));
        h.restart_at(5);
        assert_eq!(h.last(), 5);
        h.restart_at(9);
        assert_eq!((h.last(), h.read(10, &mut out, 1)), (9, Ok(false)));
        assert_eq!(h.append(1, SharedMessage::from_static(b"x")), 10);
    }

    #[tokio::test]
    async fn a_subscriber_replays_then_follows_and_learns_when_it_fell_behind() {
        let h = History::bounded(0, 8, 1 << 20);
        for s in 1..=3 {
            h.push(entry(s, 1));
        }
        let mut sub = h.subscribe(2);
        let next = |m: Option<Result<pb::Update, Status>>| m.unwrap().unwrap().seq;
        assert_eq!(next(sub.next().await), 2);
        assert_eq!(next(sub.next().await), 3);
        let h2 = h.clone();
        let later = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            h2.push(entry(4, 1));
        });
        assert_eq!(next(sub.next().await), 4);
        later.await.unwrap();
        // Far behind: the stream says so and ends.
        for s in 5..=20 {
            h.push(entry(s, 1));
        }
        let mut old = h.subscribe(1);
        let e = old.next().await.unwrap().unwrap_err();
        assert_eq!(e.code(), tonic::Code::OutOfRange);
        assert!(old.next().await.is_none());
        // Closing ends a waiting subscriber.
        let mut live = h.subscribe(21);
        h.close();
        assert!(live.next().await.is_none());
    }
}
