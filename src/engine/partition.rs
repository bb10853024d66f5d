//! Data partitions: each epoch's shuffled order of examples cut into ranges of a few
//! minibatches. Workers pull partitions from the hub's work queue, so a slow or lost worker
//! never stalls an epoch. The order is a function of (seed, epoch, rows): workers compute it
//! themselves and only (epoch, index) travels.

use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// Stream id of the epoch shuffles within the job's seed.
const SHUFFLE_STREAM: u64 = 0x5348_5546; // "SHUF"

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Partition {
    pub epoch: u32,
    pub index: u32,
    /// Range into the epoch's order.
    pub start: u32,
    pub end: u32,
}

/// How an epoch is cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    pub rows: usize,
    pub rows_per_partition: usize,
}

impl Plan {
    pub fn new(rows: usize, batch_size: usize, batches_per_partition: usize) -> Plan {
        Plan { rows, rows_per_partition: (batch_size * batches_per_partition).max(1) }
    }

    pub fn count(&self) -> u32 {
        self.rows.div_ceil(self.rows_per_partition) as u32
    }

    pub fn partition(&self, epoch: u32, index: u32) -> Partition {
        let start = index as usize * self.rows_per_partition;
        let end = (start + self.rows_per_partition).min(self.rows);
        Partition { epoch, index, start: start as u32, end: end as u32 }
    }
}

/// The shuffled order of an epoch, recomputed in place (no allocation after the first).
#[derive(Default)]
pub struct EpochOrder {
    epoch: Option<u32>,
    order: Vec<u32>,
}

impl EpochOrder {
    pub fn get(&mut self, seed: u64, epoch: u32, rows: usize) -> &[u32] {
        if self.epoch != Some(epoch) || self.order.len() != rows {
            self.order.clear();
            self.order.extend(0..rows as u32);
            Rng::derive(seed, SHUFFLE_STREAM ^ ((epoch as u64) << 32)).shuffle(&mut self.order);
            self.epoch = Some(epoch);
        }
        &self.order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_cover_every_row_once() {
        let plan = Plan::new(1000, 32, 4);
        assert_eq!(plan.count(), 8);
        let mut covered = 0;
        for i in 0..plan.count() {
            let p = plan.partition(0, i);
            assert_eq!(p.start as usize, covered);
            covered = p.end as usize;
        }
        assert_eq!(covered, 1000);
    }

    #[test]
    fn order_is_a_seeded_permutation_that_changes_by_epoch() {
        let (mut a, mut b) = (EpochOrder::default(), EpochOrder::default());
        let e0 = a.get(1, 0, 100).to_vec();
        assert_eq!(e0, b.get(1, 0, 100));
        let e1 = a.get(1, 1, 100).to_vec();
        assert_ne!(e0, e1);
        let mut sorted = e1.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
    }
}
