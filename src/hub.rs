//! The hub: gives each event its id, encodes it once, keeps the history for
//! resume, and fans each tick out to every subscriber's bounded queue.
//!
//! One mutex guards the id counter, the history and the subscriber list, so
//! a subscriber's catch-up (read from the history) and its first live tick
//! are taken on the same side of every publish: no gap, no duplicate at the
//! seam. Publishing never waits for a client: a full queue drops that
//! subscriber (its connection ends as `slow`), a closed one is forgotten.
//! The hub never touches a socket.
//!
//! Each queue is an `std::sync::mpsc` channel bounded by a count the hub
//! keeps (`--client-queue` ticks). The list-flavour channel allocates its
//! slots 31 at a time as they fill, where `sync_channel(256)` would touch
//! 4 KiB per client up front. The receiving thread sleeps in
//! `thread::park_timeout` and the hub unparks it after each send: a blocking
//! `recv` would first spin and `sched_yield` on every wake-up, which costs
//! more CPU than the write it waits for (BENCHMARKS.md has both figures).

use std::collections::{HashMap, HashSet, VecDeque};
use std::marker::PhantomData;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use crate::sse;
use crate::symbol::Symbol;

/// Most symbols whose latest event is kept for new clients' snapshots; past
/// it the symbol updated longest ago is forgotten (a stdin feed may name
/// any number of symbols, memory must not grow with them).
pub const MAX_SNAPSHOT_SYMBOLS: usize = 1024;

/// One price as a feed produces it, before it has an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    /// The symbol.
    pub symbol: Symbol,
    /// The price as a JSON number: digits, optionally `.` and digits.
    pub price: String,
    /// Milliseconds since the Unix epoch when the feed produced it.
    pub ts_ms: u64,
}

/// The events of one publish, encoded once, shared by every client.
#[derive(Debug)]
pub struct Tick {
    bytes: Box<[u8]>,
    events: Box<[Event]>,
    /// When the hub published it (for `tickstream_delivery_lag_seconds`).
    published: Instant,
}

#[derive(Debug)]
struct Event {
    id: u64,
    symbol: Symbol,
    /// End of this event's frame in `Tick::bytes`; it starts where the
    /// previous one ends.
    end: usize,
}

impl Tick {
    /// Numbers and encodes `prices`, the first with `first_id`.
    fn encode(prices: &[Price], first_id: u64) -> Tick {
        let mut bytes = Vec::with_capacity(prices.len() * 96);
        let mut events = Vec::with_capacity(prices.len());
        for (id, price) in (first_id..).zip(prices) {
            sse::push_event(&mut bytes, id, &price.symbol, &price.price, price.ts_ms);
            events.push(Event {
                id,
                symbol: price.symbol.clone(),
                end: bytes.len(),
            });
        }
        Tick {
            bytes: bytes.into(),
            events: events.into(),
            published: Instant::now(),
        }
    }

    /// When the hub published this tick.
    pub fn published(&self) -> Instant {
        self.published
    }

    /// Every frame of the tick, in id order.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Number of events in the tick.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// True if the tick holds no event (the hub never publishes one).
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    fn first_id(&self) -> u64 {
        self.events[0].id
    }

    fn last_id(&self) -> u64 {
        self.events[self.events.len() - 1].id
    }

    /// Appends the frames of the events in `range` that pass `filter`;
    /// returns how many it appended.
    pub fn append_to(&self, buf: &mut Vec<u8>, range: Range<usize>, filter: &Filter) -> usize {
        let mut appended = 0;
        for i in range {
            let event = &self.events[i];
            if filter.matches(&event.symbol) {
                let start = if i == 0 { 0 } else { self.events[i - 1].end };
                buf.extend_from_slice(&self.bytes[start..event.end]);
                appended += 1;
            }
        }
        appended
    }

    fn any_match(&self, filter: &Filter) -> bool {
        self.events.iter().any(|e| filter.matches(&e.symbol))
    }
}

/// Which symbols a client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// Every symbol.
    All,
    /// Only these. A set: `publish` asks it about every event for every
    /// filtered subscriber, under the hub's lock.
    Only(HashSet<Symbol>),
}

impl Filter {
    /// A filter for these symbols; `All` if there are none.
    pub fn only(symbols: impl IntoIterator<Item = Symbol>) -> Filter {
        let set: HashSet<Symbol> = symbols.into_iter().collect();
        if set.is_empty() {
            Filter::All
        } else {
            Filter::Only(set)
        }
    }

    /// True if events of `symbol` go to this client.
    pub fn matches(&self, symbol: &Symbol) -> bool {
        match self {
            Filter::All => true,
            Filter::Only(symbols) => symbols.contains(symbol.as_str()),
        }
    }
}

/// Some events of one tick, in id order: a piece of a catch-up.
#[derive(Debug, Clone)]
pub struct EventRun {
    /// The tick holding the events.
    pub tick: Arc<Tick>,
    /// Their indexes in the tick.
    pub events: Range<usize>,
}

impl EventRun {
    fn first_id(&self) -> u64 {
        self.tick.events[self.events.start].id
    }
}

/// What a subscriber finds when it looks at its queue.
#[derive(Debug)]
pub enum Next {
    /// The oldest queued tick.
    Tick(Arc<Tick>),
    /// Nothing arrived in time.
    Idle,
    /// The hub dropped this client: its queue was full.
    Dropped,
}

/// A client's view of the hub: the catch-up to write first, then the live
/// ticks. It stays on the thread that subscribed, the one the hub wakes
/// (it is not `Send`). Dropping it unsubscribes.
pub struct Subscription {
    /// Retained events to send before any live tick, oldest first.
    pub catch_up: Vec<EventRun>,
    /// The symbols this client asked for.
    pub filter: Arc<Filter>,
    ticks: Receiver<Arc<Tick>>,
    inbox: Arc<Inbox>,
    key: u64,
    hub: Arc<Hub>,
    /// Not `Send`: the hub unparks the thread that subscribed.
    _on_this_thread: PhantomData<*const ()>,
}

impl Subscription {
    /// True once the hub has dropped this client for a full queue.
    pub fn is_dropped(&self) -> bool {
        self.inbox.dropped_slow.load(Ordering::Relaxed)
    }

    /// The next tick if one is queued, without waiting; `None` if none is.
    pub fn try_next(&self) -> Option<Next> {
        if self.is_dropped() {
            return Some(Next::Dropped);
        }
        match self.ticks.try_recv() {
            Ok(tick) => {
                self.inbox.queued.fetch_sub(1, Ordering::Relaxed);
                Some(Next::Tick(tick))
            }
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Next::Dropped),
        }
    }

    /// The next tick, waiting up to `timeout` for one.
    pub fn next(&self, timeout: Duration) -> Next {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(next) = self.try_next() {
                return next;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Next::Idle;
            }
            // Returns early when the hub unparks us (or spuriously): look again.
            thread::park_timeout(left);
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.unsubscribe(self.key);
    }
}

/// What the hub and one subscriber's thread share.
struct Inbox {
    /// Ticks sent and not yet taken: the bound of the queue.
    queued: AtomicUsize,
    /// Set when the hub dropped the subscriber for a full queue.
    dropped_slow: AtomicBool,
    /// The thread to wake after a send.
    reader: Thread,
}

struct Subscriber {
    key: u64,
    queue: Sender<Arc<Tick>>,
    filter: Arc<Filter>,
    inbox: Arc<Inbox>,
}

struct State {
    next_id: u64,
    next_key: u64,
    history: VecDeque<Arc<Tick>>,
    /// Events in `history` (it may hold up to one tick more than the limit).
    history_events: usize,
    /// The latest event of each symbol, for snapshots.
    latest: HashMap<Symbol, EventRun>,
    subscribers: Vec<Subscriber>,
}

/// The broadcast point between the feed and the connections.
pub struct Hub {
    state: Mutex<State>,
    history_limit: usize,
    queue_len: usize,
}

impl Hub {
    /// A hub whose first event gets `first_id`, keeping `history_limit`
    /// events for resume and giving each client a queue of `queue_len`
    /// ticks.
    pub fn new(first_id: u64, history_limit: usize, queue_len: usize) -> Arc<Hub> {
        Arc::new(Hub {
            state: Mutex::new(State {
                next_id: first_id,
                next_key: 0,
                history: VecDeque::new(),
                history_events: 0,
                latest: HashMap::new(),
                subscribers: Vec::new(),
            }),
            history_limit,
            queue_len: queue_len.max(1),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not take the feed down with it: the state
        // is consistent between statements that can panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes `prices` as one tick; returns the number of events. The
    /// caller never waits for a client.
    pub fn publish(&self, prices: &[Price]) -> usize {
        if prices.is_empty() {
            return 0;
        }
        let mut state = self.lock();
        let tick = Arc::new(Tick::encode(prices, state.next_id));
        state.next_id += prices.len() as u64;

        if self.history_limit > 0 {
            state.history_events += tick.len();
            state.history.push_back(Arc::clone(&tick));
            while let Some(front) = state.history.front() {
                if state.history_events - front.len() < self.history_limit {
                    break;
                }
                state.history_events -= front.len();
                state.history.pop_front();
            }
        }
        for (i, event) in tick.events.iter().enumerate() {
            let run = EventRun {
                tick: Arc::clone(&tick),
                events: i..i + 1,
            };
            remember_latest(&mut state.latest, &event.symbol, run);
        }
        let queue_len = self.queue_len;
        state.subscribers.retain(|s| {
            if !tick.any_match(&s.filter) {
                return true;
            }
            // Counted before the send, so the reader's decrement can never
            // come first.
            if s.inbox.queued.fetch_add(1, Ordering::Relaxed) >= queue_len {
                s.inbox.dropped_slow.store(true, Ordering::Relaxed);
                s.inbox.reader.unpark();
                return false;
            }
            let sent = s.queue.send(Arc::clone(&tick)).is_ok();
            s.inbox.reader.unpark();
            sent
        });
        prices.len()
    }

    /// Subscribes a client. Without `last_event_id` the catch-up is the
    /// latest event of each symbol in `filter`; with one, every retained
    /// event with a larger id (the whole history if it is older than that,
    /// nothing if it is newer than the newest).
    pub fn subscribe(self: &Arc<Self>, filter: Filter, last_event_id: Option<u64>) -> Subscription {
        let filter = Arc::new(filter);
        let mut state = self.lock();
        let catch_up = match last_event_id {
            None => {
                let mut latest: Vec<EventRun> = state
                    .latest
                    .iter()
                    .filter(|(symbol, _)| filter.matches(symbol))
                    .map(|(_, run)| run.clone())
                    .collect();
                latest.sort_unstable_by_key(EventRun::first_id);
                latest
            }
            Some(last) => {
                let oldest_retained = state.next_id.saturating_sub(self.history_limit as u64);
                let from = last.saturating_add(1).max(oldest_retained);
                // Ticks are in id order: find the first one wanted directly.
                let first = state.history.partition_point(|tick| tick.last_id() < from);
                state
                    .history
                    .range(first..)
                    .filter(|tick| tick.any_match(&filter))
                    .map(|tick| EventRun {
                        tick: Arc::clone(tick),
                        events: from.saturating_sub(tick.first_id()) as usize..tick.len(),
                    })
                    .collect()
            }
        };
        let (queue, ticks) = channel();
        let inbox = Arc::new(Inbox {
            queued: AtomicUsize::new(0),
            dropped_slow: AtomicBool::new(false),
            reader: thread::current(),
        });
        let key = state.next_key;
        state.next_key += 1;
        state.subscribers.push(Subscriber {
            key,
            queue,
            filter: Arc::clone(&filter),
            inbox: Arc::clone(&inbox),
        });
        Subscription {
            catch_up,
            filter,
            ticks,
            inbox,
            key,
            hub: Arc::clone(self),
            _on_this_thread: PhantomData,
        }
    }

    fn unsubscribe(&self, key: u64) {
        let mut state = self.lock();
        if let Some(i) = state.subscribers.iter().position(|s| s.key == key) {
            state.subscribers.swap_remove(i);
        }
    }
}

fn remember_latest(latest: &mut HashMap<Symbol, EventRun>, symbol: &Symbol, run: EventRun) {
    if let Some(entry) = latest.get_mut(symbol) {
        *entry = run;
        return;
    }
    if latest.len() >= MAX_SNAPSHOT_SYMBOLS {
        let oldest = latest
            .iter()
            .min_by_key(|(_, run)| run.first_id())
            .map(|(symbol, _)| symbol.clone());
        if let Some(oldest) = oldest {
            latest.remove(&oldest);
        }
    }
    latest.insert(symbol.clone(), run);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(symbol: &str) -> Symbol {
        Symbol::parse(symbol.as_bytes()).unwrap()
    }

    fn price(symbol: &str, price: &str) -> Price {
        Price {
            symbol: sym(symbol),
            price: price.into(),
            ts_ms: 5,
        }
    }

    fn frame(id: u64, symbol: &str, price: &str) -> String {
        format!("id: {id}\ndata: {{\"symbol\":\"{symbol}\",\"price\":{price},\"ts\":5}}\n\n")
    }

    /// Everything a subscription would write: catch-up, then queued ticks.
    fn drain(sub: &Subscription) -> String {
        let mut buf = Vec::new();
        for run in &sub.catch_up {
            run.tick
                .append_to(&mut buf, run.events.clone(), &sub.filter);
        }
        while let Some(Next::Tick(tick)) = sub.try_next() {
            tick.append_to(&mut buf, 0..tick.len(), &sub.filter);
        }
        String::from_utf8(buf).unwrap()
    }

    fn only(symbols: &[&str]) -> Filter {
        Filter::only(symbols.iter().map(|s| sym(s)))
    }

    #[test]
    fn one_tick_is_encoded_once_with_consecutive_ids() {
        let hub = Hub::new(100, 10, 4);
        let sub = hub.subscribe(Filter::All, None);
        assert_eq!(hub.publish(&[price("BTC", "1.5"), price("ETH", "2")]), 2);
        let Some(Next::Tick(tick)) = sub.try_next() else {
            panic!("a tick")
        };
        assert_eq!(tick.len(), 2);
        assert_eq!(
            tick.bytes(),
            (frame(100, "BTC", "1.5") + &frame(101, "ETH", "2")).as_bytes()
        );
    }

    #[test]
    fn snapshot_is_the_latest_per_symbol_in_id_order() {
        let hub = Hub::new(1, 10, 4);
        hub.publish(&[price("BTC", "1"), price("ETH", "2")]);
        hub.publish(&[price("BTC", "3")]);
        let sub = hub.subscribe(Filter::All, None);
        assert_eq!(drain(&sub), frame(2, "ETH", "2") + &frame(3, "BTC", "3"));
        let sub = hub.subscribe(only(&["BTC"]), None);
        hub.publish(&[price("ETH", "4"), price("BTC", "5")]);
        assert_eq!(drain(&sub), frame(3, "BTC", "3") + &frame(5, "BTC", "5"));
    }

    #[test]
    fn resume_sends_exactly_the_missed_events() {
        let hub = Hub::new(1, 100, 4);
        for n in 0..4 {
            hub.publish(&[
                price("A", &format!("{}", 2 * n + 1)),
                price("B", &format!("{}", 2 * n + 2)),
            ]);
        }
        // Ids 1..=8. Resume after 3: 4..=8, the first from the middle of a tick.
        let sub = hub.subscribe(Filter::All, Some(3));
        hub.publish(&[price("A", "9")]);
        let expected: String = (4..=9)
            .map(|id| frame(id, if id % 2 == 1 { "A" } else { "B" }, &id.to_string()))
            .collect();
        assert_eq!(drain(&sub), expected);
        // Newer than the newest: live only. Filtered: only B.
        let live = hub.subscribe(Filter::All, Some(1_000));
        let only_b = hub.subscribe(only(&["B"]), Some(5));
        hub.publish(&[price("B", "10")]);
        assert_eq!(drain(&live), frame(10, "B", "10"));
        assert_eq!(
            drain(&only_b),
            frame(6, "B", "6") + &frame(8, "B", "8") + &frame(10, "B", "10")
        );
    }

    #[test]
    fn history_is_counted_in_events_across_symbols() {
        let hub = Hub::new(1, 3, 4);
        for n in 1..=4 {
            hub.publish(&[price("A", &n.to_string()), price("B", &n.to_string())]);
        }
        // Ids 1..=8; only 6, 7, 8 are retained, whatever is asked.
        let expected = frame(6, "B", "3") + &frame(7, "A", "4") + &frame(8, "B", "4");
        assert_eq!(drain(&hub.subscribe(Filter::All, Some(0))), expected);
        assert_eq!(drain(&hub.subscribe(Filter::All, Some(4))), expected);
        assert_eq!(
            drain(&hub.subscribe(Filter::All, Some(7))),
            frame(8, "B", "4")
        );
        let none = Hub::new(1, 0, 4);
        none.publish(&[price("A", "1")]);
        assert_eq!(drain(&none.subscribe(Filter::All, Some(0))), "");
    }

    #[test]
    fn a_full_queue_drops_only_that_subscriber() {
        let hub = Hub::new(1, 10, 2);
        let slow = hub.subscribe(Filter::All, None);
        let fast = hub.subscribe(Filter::All, None);
        for n in 1..=3 {
            hub.publish(&[price("A", &n.to_string())]);
            assert_eq!(drain(&fast), frame(n, "A", &n.to_string()));
        }
        // The third tick found the slow queue full: dropped at once, even
        // though two ticks are still queued.
        assert!(matches!(slow.try_next(), Some(Next::Dropped)));
        assert!(matches!(slow.next(Duration::from_secs(5)), Next::Dropped));
        assert!(fast.try_next().is_none());
        assert!(matches!(fast.next(Duration::from_millis(1)), Next::Idle));
        assert_eq!(hub.lock().subscribers.len(), 1);
    }

    #[test]
    fn filtered_subscribers_are_not_woken_for_other_symbols() {
        let hub = Hub::new(1, 10, 1);
        let sub = hub.subscribe(only(&["B"]), None);
        for _ in 0..5 {
            hub.publish(&[price("A", "1")]);
        }
        assert!(sub.try_next().is_none());
    }

    #[test]
    fn a_publish_wakes_the_parked_subscriber() {
        let hub = Hub::new(1, 10, 4);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let reader_hub = Arc::clone(&hub);
        let reader = thread::spawn(move || {
            let sub = reader_hub.subscribe(Filter::All, None);
            ready_tx.send(()).unwrap();
            let started = Instant::now();
            let next = sub.next(Duration::from_secs(10));
            (matches!(next, Next::Tick(_)), started.elapsed())
        });
        ready_rx.recv().unwrap();
        thread::sleep(Duration::from_millis(50));
        hub.publish(&[price("A", "1")]);
        let (got_tick, waited) = reader.join().unwrap();
        assert!(got_tick);
        assert!(
            waited < Duration::from_secs(5),
            "woken by the publish, not the timeout"
        );
    }

    #[test]
    fn dropping_a_subscription_unsubscribes() {
        let hub = Hub::new(1, 10, 1);
        let sub = hub.subscribe(only(&["NEVER"]), None);
        assert_eq!(hub.lock().subscribers.len(), 1);
        drop(sub);
        assert_eq!(hub.lock().subscribers.len(), 0);
    }

    #[test]
    fn snapshot_symbols_are_bounded() {
        let hub = Hub::new(1, 1, 1);
        for n in 0..MAX_SNAPSHOT_SYMBOLS + 10 {
            hub.publish(&[price(&format!("S{n}"), "1")]);
        }
        assert!(!hub.lock().latest.contains_key("S0"));
        assert!(hub
            .lock()
            .latest
            .contains_key(format!("S{}", MAX_SNAPSHOT_SYMBOLS + 9).as_str()));
        assert_eq!(hub.lock().latest.len(), MAX_SNAPSHOT_SYMBOLS);
    }

    /// Publishing asks each filtered subscriber one set lookup per event,
    /// however many symbols its filter names (a list scanned per event took
    /// 45 s for 200,000 events with 300 long filters). Measured as a ratio
    /// in one run, so it holds in debug and release builds alike.
    #[test]
    fn long_filters_cost_about_what_short_ones_cost() {
        let cost = |filter_len: usize| {
            let hub = Hub::new(1, 0, usize::MAX);
            let subs: Vec<Subscription> = (0..100)
                .map(|_| {
                    let names = (0..filter_len).map(|n| sym(&format!("NEVER{n}")));
                    hub.subscribe(Filter::only(names), None)
                })
                .collect();
            let prices: Vec<Price> = (0..64).map(|n| price(&format!("S{n}"), "1")).collect();
            let started = Instant::now();
            for _ in 0..50 {
                hub.publish(&prices);
            }
            drop(subs);
            started.elapsed()
        };
        let (short, long) = (cost(1), cost(256));
        let ratio = long.as_secs_f64() / short.as_secs_f64().max(1e-9);
        // A scan of 256 names per event would be ~100 times the cost.
        assert!(
            ratio < 10.0,
            "256-symbol filters cost {ratio:.1}x one-symbol filters"
        );
    }
}
