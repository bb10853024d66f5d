//! A worker's queue of updates from the others, bounded: when it is full, further messages are
//! summed into one dense vector instead of queued (updates are summed anyway, so nothing is
//! lost), and the merges are counted.

use std::collections::VecDeque;

use crate::sharing::MessageView;

/// A relayed, already validated message; clones share the buffer.
pub type SharedMessage = bytes::Bytes;

pub struct Inbox {
    capacity: usize,
    params: usize,
    queue: VecDeque<SharedMessage>,
    /// Sum of the updates that did not fit; allocated on first overflow.
    merged: Vec<f32>,
    merged_pending: bool,
    merged_total: u64,
}

impl Inbox {
    pub fn new(capacity: usize, params: usize) -> Self {
        Inbox {
            capacity: capacity.max(1),
            params,
            queue: VecDeque::with_capacity(capacity.max(1)),
            merged: Vec::new(),
            merged_pending: false,
            merged_total: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.queue.len() + self.merged_pending as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Messages merged since the inbox was created.
    pub fn merged_total(&self) -> u64 {
        self.merged_total
    }

    /// Queues a message, or merges it into the dense sum when the queue is full.
    pub fn push(&mut self, message: SharedMessage) {
        if self.queue.len() < self.capacity {
            self.queue.push_back(message);
            return;
        }
        let Ok(view) = MessageView::parse(&message, self.params) else {
            return; // the hub validated it; a mismatch here would be a bug, not data
        };
        if self.merged.len() != self.params {
            self.merged = vec![0.0; self.params];
        }
        // `merged` holds the summed update; applying it subtracts it like any message.
        view.subtract_from(&mut self.merged, -1.0);
        self.merged_pending = true;
        self.merged_total += 1;
    }

    /// Drops what is waiting (a rejoined worker starts from the replica, which holds it
    /// already); the counters stay.
    pub fn clear(&mut self) {
        self.queue.clear();
        if self.merged_pending {
            self.merged.fill(0.0);
            self.merged_pending = false;
        }
    }

    /// Moves the queued messages into `out`; returns the merged sum, if any, through `merged`
    /// (swapped, so no allocation once both sides have buffers).
    pub fn take(&mut self, out: &mut VecDeque<SharedMessage>, merged: &mut Vec<f32>) -> bool {
        std::mem::swap(&mut self.queue, out);
        if !self.merged_pending {
            return false;
        }
        std::mem::swap(&mut self.merged, merged);
        if self.merged.len() == self.params {
            self.merged.fill(0.0);
        }
        self.merged_pending = false;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sharing::ThresholdEncoder;

    fn message(n: usize, at: usize) -> SharedMessage {
        let mut e = ThresholdEncoder::new(n);
        let mut r = vec![0.0; n];
        let mut u = vec![0.0; n];
        u[at] = 1.0;
        e.encode(&mut r, &u, 0.5, 0, 0);
        SharedMessage::copy_from_slice(e.message())
    }

    #[test]
    fn overflow_is_summed_not_lost() {
        let mut inbox = Inbox::new(2, 4);
        for at in [0, 1, 2, 2, 3] {
            inbox.push(message(4, at));
        }
        assert_eq!(inbox.len(), 3);
        assert_eq!(inbox.merged_total(), 3);
        let mut out = VecDeque::new();
        let mut merged = Vec::new();
        assert!(inbox.take(&mut out, &mut merged));
        assert_eq!(out.len(), 2);
        assert_eq!(merged, vec![0.0, 0.0, 1.0, 0.5]);
        assert!(inbox.is_empty());
        out.clear();
        assert!(!inbox.take(&mut out, &mut merged));
    }
}
