//! The label tables: transports and protocols (capped), peers (connected,
//! and an LRU of recently disconnected ones). Locked when a connection or
//! stream opens or closes and when a snapshot is taken, never per byte.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lru::LruCache;

use crate::traffic::{Entry, Traffic};

/// The label that stands for every label past a table's cap (a label of
/// that name is counted under it too).
pub const OVERFLOW_LABEL: &str = "other";

/// Transports or protocols: at most `cap` labels, then [`OVERFLOW_LABEL`].
#[derive(Debug)]
pub(crate) struct LabelTable {
    cap: usize,
    entries: HashMap<Arc<str>, Arc<Entry>>,
    overflow: Option<Arc<Entry>>,
    /// Labels folded into the overflow label since start.
    pub(crate) overflowed: u64,
    /// Bytes in and out of the labels evicted so far.
    retired: (u64, u64),
}

impl LabelTable {
    pub(crate) fn new(cap: usize) -> Self {
        LabelTable {
            cap,
            entries: HashMap::new(),
            overflow: None,
            overflowed: 0,
            retired: (0, 0),
        }
    }

    /// The entry of `label` (created if there is room), and the label it
    /// is counted under.
    pub(crate) fn get(&mut self, label: &str, now: Instant) -> (Arc<str>, Arc<Entry>) {
        if let Some((k, e)) = self.entries.get_key_value(label) {
            return (Arc::clone(k), Arc::clone(e));
        }
        // A label that is the overflow label's name is counted under it:
        // an entry of its own would be a second series of the same name.
        if label != OVERFLOW_LABEL && self.entries.len() < self.cap {
            let key: Arc<str> = Arc::from(label);
            let entry = Arc::new(Entry::new(now));
            self.entries.insert(Arc::clone(&key), Arc::clone(&entry));
            return (key, entry);
        }
        if label != OVERFLOW_LABEL {
            self.overflowed += 1;
        }
        let entry = self
            .overflow
            .get_or_insert_with(|| Arc::new(Entry::new(now)));
        (Arc::from(OVERFLOW_LABEL), Arc::clone(entry))
    }

    /// Polls every label, dropping those no open connection or stream
    /// holds that have been idle for `idle` (their bytes stay in
    /// [`LabelTable::total`]). Nothing can add to an entry once only the
    /// table holds it: new holders get it under the table's lock.
    pub(crate) fn poll(&mut self, now: Instant, idle: Duration) -> Vec<(Arc<str>, Traffic)> {
        let mut out = Vec::with_capacity(self.entries.len() + 1);
        let retired = &mut self.retired;
        self.entries.retain(|label, entry| {
            let traffic = entry.poll(now);
            let unused = Arc::strong_count(entry) == 1 && entry.idle_for(now) >= idle;
            if unused {
                retired.0 += traffic.bytes_in;
                retired.1 += traffic.bytes_out;
            } else {
                out.push((Arc::clone(label), traffic));
            }
            !unused
        });
        if let Some(entry) = &self.overflow {
            out.push((Arc::from(OVERFLOW_LABEL), entry.poll(now)));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Bytes in and out over every label ever counted: those polled into
    /// `polled` (the result of [`LabelTable::poll`]) and those evicted.
    pub(crate) fn total(&self, polled: &[(Arc<str>, Traffic)]) -> (u64, u64) {
        polled.iter().fold(self.retired, |(i, o), (_, t)| {
            (i.wrapping_add(t.bytes_in), o.wrapping_add(t.bytes_out))
        })
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Peers: those with open connections, and the most recently disconnected
/// ones in an LRU (libp2p keeps 50), each also dropped once idle.
#[derive(Debug)]
pub(crate) struct PeerTable {
    connected: HashMap<Arc<str>, (Arc<Entry>, usize)>,
    disconnected: LruCache<Arc<str>, (Arc<Entry>, Instant)>,
    /// Peers forgotten (pushed out of the LRU or idle) since start.
    pub(crate) evicted: u64,
}

/// One peer in a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerTraffic {
    /// The peer's label.
    pub peer: Arc<str>,
    /// Open connections to it now.
    pub connections: usize,
    /// Its counters and rates.
    pub traffic: Traffic,
}

impl PeerTable {
    pub(crate) fn new(lru: usize) -> Self {
        PeerTable {
            connected: HashMap::new(),
            disconnected: LruCache::new(NonZeroUsize::new(lru.max(1)).unwrap_or(NonZeroUsize::MIN)),
            evicted: 0,
        }
    }

    /// A connection to `peer` opened: its entry, revived from the LRU if
    /// the peer was seen recently.
    pub(crate) fn open(&mut self, peer: &str, now: Instant) -> (Arc<str>, Arc<Entry>) {
        if let Some((e, n)) = self.connected.get_mut(peer) {
            *n += 1;
            let entry = Arc::clone(e);
            if let Some((k, _)) = self.connected.get_key_value(peer) {
                return (Arc::clone(k), entry);
            }
        }
        let (key, entry) = match self.disconnected.pop_entry(peer) {
            Some((k, (e, _))) => (k, e),
            None => (Arc::from(peer), Arc::new(Entry::new(now))),
        };
        self.connected
            .insert(Arc::clone(&key), (Arc::clone(&entry), 1));
        (key, entry)
    }

    /// A connection to `peer` closed; with its last one the peer moves to
    /// the LRU, pushing out the least recently disconnected peer if full.
    pub(crate) fn close(&mut self, peer: &Arc<str>, now: Instant) {
        let last = match self.connected.get_mut(peer) {
            Some((_, n)) => {
                *n = n.saturating_sub(1);
                *n == 0
            }
            None => false,
        };
        if last {
            if let Some((key, (entry, _))) = self.connected.remove_entry(peer) {
                if self.disconnected.push(key, (entry, now)).is_some() {
                    self.evicted += 1;
                }
            }
        }
    }

    /// Polls every peer, forgetting disconnected ones idle for `idle`.
    pub(crate) fn poll(&mut self, now: Instant, idle: Duration) -> Vec<PeerTraffic> {
        let mut out = Vec::with_capacity(self.connected.len() + self.disconnected.len());
        for (peer, (entry, n)) in &self.connected {
            out.push(PeerTraffic {
                peer: Arc::clone(peer),
                connections: *n,
                traffic: entry.poll(now),
            });
        }
        // Least recently disconnected first, so the idle ones come first.
        while let Some((_, (_, since))) = self.disconnected.peek_lru() {
            if now.saturating_duration_since(*since) < idle {
                break;
            }
            self.disconnected.pop_lru();
            self.evicted += 1;
        }
        for (peer, (entry, _)) in self.disconnected.iter() {
            out.push(PeerTraffic {
                peer: Arc::clone(peer),
                connections: 0,
                traffic: entry.poll(now),
            });
        }
        out.sort_by(|a, b| a.peer.cmp(&b.peer));
        out
    }

    /// Peers tracked now: connected plus remembered.
    pub(crate) fn len(&self) -> usize {
        self.connected.len() + self.disconnected.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_past_the_cap_share_the_overflow_label() {
        let now = Instant::now();
        let mut t = LabelTable::new(2);
        let (a, _) = t.get("a", now);
        let (b, _) = t.get("b", now);
        let (c, e1) = t.get("c", now);
        let (d, e2) = t.get("d", now);
        assert_eq!((&*a, &*b, &*c, &*d), ("a", "b", "other", "other"));
        assert!(Arc::ptr_eq(&e1, &e2));
        assert_eq!(t.len(), 2);
        assert_eq!(t.overflowed, 2);
    }

    #[test]
    fn disconnected_peers_stay_until_pushed_out_or_idle() {
        let now = Instant::now();
        let mut t = PeerTable::new(2);
        for p in ["a", "b", "c"] {
            let (k, _) = t.open(p, now);
            t.close(&k, now);
        }
        assert_eq!(t.len(), 2, "the LRU holds two");
        assert_eq!(t.evicted, 1);
        let (k, _) = t.open("b", now);
        assert_eq!(t.len(), 2, "b revived, not duplicated");
        let later = now + Duration::from_secs(120);
        let polled = t.poll(later, Duration::from_secs(60));
        assert_eq!(polled.len(), 1, "c was idle too long; b is connected");
        assert_eq!(&*polled[0].peer, "b");
        t.close(&k, later);
        assert_eq!(t.len(), 1);
    }
}
