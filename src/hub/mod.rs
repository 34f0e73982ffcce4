//! The hub: names each event (or takes the feed's name for it), encodes it
//! once per dialect, keeps the history for resume and the newest event of
//! each symbol, and fans each tick out to the subscribers.
//!
//! One lock guards the ids, the history, the newest events and the
//! subscriber list, so a subscriber's catch-up (read from the history) and
//! its first live tick are taken on the same side of every publish: no gap,
//! no duplicate at the seam. It is a `RwLock` so that conflated streams,
//! which only read, share it when a tick wakes many at once (with a
//! `Mutex`, 1.15x the CPU of 5,000 throttled streams: BENCHMARKS.md, issue
//! 17). The hub never touches a socket and never waits for a client.
//!
//! Each live subscriber's queue is an `std::sync::mpsc` channel, bounded by
//! a count the hub keeps (`--client-queue` ticks): the hub `send`s only
//! while the count is under the bound, and drops a subscriber whose queue is
//! full (its connection ends as `slow`). The list-flavour channel allocates
//! its slots 31 at a time as they fill, where `sync_channel(256)` would
//! touch 4 KiB per client up front. The receiving thread sleeps in
//! `thread::park_timeout` and the hub unparks it after each send: a blocking
//! `recv` would first spin and `sched_yield` on every wake-up, which costs
//! more CPU than the write it waits for (BENCHMARKS.md has both figures).
//!
//! A conflated (`?throttle=`) subscriber has no queue at all: it reads the
//! newest event of each symbol when its period is up. The hub wakes it at
//! the first publish it takes once that time has come (or, when it found
//! nothing new, at the next one), so conflated streams wake together with a
//! tick, as live ones do, and write events just published. It unparks them
//! only after releasing its lock, which they then read.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::marker::PhantomData;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use crate::id::{EventId, IdForm};
use crate::metrics::DisconnectReason;
use crate::symbol::Symbol;

mod tick;

pub use tick::{EventRun, Filter, Price, Selection, Tick};

/// Most symbols whose newest event is kept for snapshots and conflated
/// streams; past it the symbol updated longest ago is forgotten (a stdin
/// feed may name any number of symbols, memory must not grow with them).
pub const MAX_SNAPSHOT_SYMBOLS: usize = 1024;

/// What a client asks the hub for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wants {
    /// Its symbols and framing (`floor` is set by the hub).
    pub selection: Selection,
    /// Where it resumes, if it does.
    pub last_event_id: Option<EventId>,
    /// `?throttle=` (or its token's period): a conflated stream, at most one
    /// write of events per this long. It has no queue: it reads
    /// [`Subscription::newest_since`].
    pub throttle: Option<Duration>,
    /// A tag that [`Hub::revoke`] looks at: the id of the key that signed
    /// the stream's token.
    pub tag: Option<u64>,
}

/// A client's view of the hub: the catch-up to write first, then the live
/// ticks (or, conflated, the newest events). It stays on the thread that
/// subscribed, the one the hub wakes (it is not `Send`). Dropping it
/// unsubscribes.
pub struct Subscription {
    /// Retained events to send before any live tick, oldest first.
    pub catch_up: Vec<EventRun>,
    /// What this client takes.
    pub selection: Arc<Selection>,
    /// Conflated only: the newest id this client has been given (or its
    /// resume point); [`Subscription::newest_since`] looks past it.
    pub cursor: Option<EventId>,
    ticks: Receiver<Arc<Tick>>,
    inbox: Arc<Inbox>,
    hub: Arc<Hub>,
    /// Not `Send`: the hub unparks the thread that subscribed.
    _on_this_thread: PhantomData<*const ()>,
}

impl Subscription {
    /// Why the stream must end, if it must: the server ended it (stopping,
    /// or its key revoked), or the hub dropped it for a full queue.
    pub fn ended(&self) -> Option<DisconnectReason> {
        match self.inbox.ended.load(Ordering::Relaxed) {
            0 if self.inbox.dropped_slow.load(Ordering::Relaxed) => Some(DisconnectReason::Slow),
            0 => None,
            REVOKED => Some(DisconnectReason::Revoked),
            _ => Some(DisconnectReason::Drain),
        }
    }

    /// The oldest queued tick, without waiting; `Ok(None)` if none is
    /// queued, `Err` once the stream must end ([`Subscription::ended`]).
    pub fn try_next(&self) -> Result<Option<Arc<Tick>>, DisconnectReason> {
        if let Some(reason) = self.ended() {
            return Err(reason);
        }
        match self.ticks.try_recv() {
            Ok(tick) => {
                self.inbox.queued.fetch_sub(1, Ordering::Relaxed);
                Ok(Some(tick))
            }
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(DisconnectReason::Slow),
        }
    }

    /// The oldest queued tick, waiting up to `timeout` for one (`Ok(None)`:
    /// nothing arrived in time).
    pub fn next(&self, timeout: Duration) -> Result<Option<Arc<Tick>>, DisconnectReason> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(tick) = self.try_next()? {
                return Ok(Some(tick));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            // Returns early when the hub unparks us (or spuriously): look again.
            thread::park_timeout(left);
        }
    }

    /// Conflated: the newest event of each selected symbol whose id is past
    /// the cursor, in id order, moving the cursor past them. If there is
    /// none, asks the hub to wake this thread at the next such event.
    pub fn newest_since(&mut self) -> Vec<EventRun> {
        let state = self.hub.read();
        let runs = newest_since(&state, self.cursor, &self.selection.filter);
        match runs.last() {
            Some(run) => self.cursor = Some(run.first_id()),
            None => self.inbox.wake_at.store(0, Ordering::Relaxed),
        }
        runs
    }

    /// Conflated: asks the hub to wake this thread at the first publish it
    /// takes at or after `due`.
    pub fn wake_at(&self, due: Instant) {
        // Under the lock, as every change of `wake_at`: the hub's look at it
        // is then never torn by this store.
        let _state = self.hub.read();
        let nanos = due.saturating_duration_since(self.hub.started).as_nanos();
        self.inbox.wake_at.store(nanos as u64, Ordering::Relaxed);
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.unsubscribe(&self.inbox);
    }
}

/// What the hub and one subscriber's thread share.
struct Inbox {
    /// Ticks sent and not yet taken: the bound of the queue.
    queued: AtomicUsize,
    /// Set when the hub dropped the subscriber for a full queue.
    dropped_slow: AtomicBool,
    /// Conflated: the hub wakes the subscriber at the first publish it takes
    /// at or after this many nanoseconds past [`Hub`]'s start (0: the next;
    /// [`NOT_WAITING`]: none).
    wake_at: AtomicU64,
    /// Set when the server ends this stream: [`DRAIN`] or [`REVOKED`].
    ended: AtomicU8,
    /// The thread to wake.
    reader: Thread,
}

struct Subscriber {
    /// It came with a last event id.
    resumed: bool,
    /// `None` for a conflated subscriber.
    queue: Option<Sender<Arc<Tick>>>,
    selection: Arc<Selection>,
    inbox: Arc<Inbox>,
    tag: Option<u64>,
}

#[derive(Default)]
struct State {
    /// The counter's next id (counter form only).
    next_counter: u64,
    /// The newest id published.
    newest: Option<EventId>,
    history: VecDeque<Arc<Tick>>,
    /// Events in `history` (it may hold up to one tick more than the limit).
    history_events: usize,
    /// The newest event of each symbol, and the same ordered by id.
    latest: HashMap<Symbol, EventRun>,
    latest_by_id: BTreeMap<EventId, Symbol>,
    subscribers: Vec<Subscriber>,
    /// Set by [`Hub::drain`]: streams subscribing from now on end at once.
    draining: bool,
}

/// Ends one stream when the server stops (see [`Hub::drain`]).
pub struct Ender(Arc<Inbox>);

impl Ender {
    /// Ends the stream: its thread wakes and closes the connection.
    pub fn end(&self) {
        end(&self.0, DRAIN);
    }
}

/// [`Inbox::wake_at`] of a conflated subscriber that is not waiting.
const NOT_WAITING: u64 = u64::MAX;

/// Values of [`Inbox::ended`].
const DRAIN: u8 = 1;
const REVOKED: u8 = 2;

fn end(inbox: &Inbox, why: u8) {
    inbox.ended.store(why, Ordering::Relaxed);
    inbox.reader.unpark();
}

/// The broadcast point between the feed and the connections.
pub struct Hub {
    state: RwLock<State>,
    /// What [`Inbox::wake_at`] counts from.
    started: Instant,
    form: IdForm,
    history_limit: usize,
    queue_len: usize,
}

impl Hub {
    /// A hub naming its events in `form` (a counter's first id is
    /// `first_id`), keeping `history_limit` events for resume and giving
    /// each live client a queue of `queue_len` ticks.
    pub fn new(form: IdForm, first_id: u64, history_limit: usize, queue_len: usize) -> Arc<Hub> {
        Arc::new(Hub {
            state: RwLock::new(State {
                next_counter: first_id,
                ..State::default()
            }),
            started: Instant::now(),
            form,
            history_limit,
            queue_len: queue_len.max(1),
        })
    }

    fn lock(&self) -> RwLockWriteGuard<'_, State> {
        // A panic elsewhere must not take the feed down with it: the state
        // is consistent between statements that can panic.
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The state to read only: the conflated streams a tick wakes read it
    /// side by side.
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes `prices` as one tick, numbered by the counter; returns the
    /// number of events. The caller never waits for a client.
    pub fn publish(&self, prices: &[Price]) -> usize {
        let mut state = self.lock();
        let first = state.next_counter;
        state.next_counter += prices.len() as u64;
        let events: Vec<(EventId, &Price)> = (first..).map(EventId::counter).zip(prices).collect();
        self.publish_locked(state, &events, true)
    }

    /// Publishes events named by the feed (stream entry ids) as one tick,
    /// skipping any at or below the newest id published (an entry read
    /// twice across a reconnect); returns the number published. With
    /// `fan_out` false, into the history and snapshot only, sent to no
    /// subscriber: a replica's first load of the stream, finished with
    /// [`Hub::send_snapshot`].
    pub fn publish_named(&self, events: &[(EventId, Price)], fan_out: bool) -> usize {
        let state = self.lock();
        let (mut newest, mut fresh) = (state.newest, Vec::new());
        for (id, price) in events {
            if newest.is_none_or(|n| *id > n) {
                newest = Some(*id);
                fresh.push((*id, price));
            }
        }
        self.publish_locked(state, &fresh, fan_out)
    }

    /// Ends a load: a client that subscribed before it gets what it would
    /// have got after it: the snapshot (the newest event of each of its
    /// symbols, as one tick), or, resuming, the loaded events after its id.
    pub fn send_snapshot(&self) {
        let mut state = self.lock();
        let runs = newest_since(&state, None, &Filter::All);
        let snapshot = Arc::new(Tick::gather(&runs));
        let history: Vec<Arc<Tick>> = state.history.iter().cloned().collect();
        let (queue_len, now, mut woken) = (self.queue_len, self.nanos(), Vec::new());
        state.subscribers.retain(|s| match s.resumed {
            false => runs.is_empty() || deliver(s, &snapshot, queue_len, now, &mut woken),
            true => history
                .iter()
                .all(|tick| deliver(s, tick, queue_len, now, &mut woken)),
        });
        drop(state);
        woken.iter().for_each(Thread::unpark);
    }

    /// Nanoseconds since the hub's start: the clock of [`Inbox::wake_at`].
    fn nanos(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    /// Publishes `events` as one tick, then releases the lock and only then
    /// unparks the conflated subscribers the tick wakes.
    fn publish_locked(
        &self,
        mut state: RwLockWriteGuard<'_, State>,
        events: &[(EventId, &Price)],
        fan_out: bool,
    ) -> usize {
        if events.is_empty() {
            return 0;
        }
        let tick = Arc::new(Tick::encode(events));
        state.newest = Some(tick.last_id());
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
        // The newest event of each symbol; past the bound, the symbol
        // updated longest ago is forgotten.
        for (i, event) in tick.events.iter().enumerate() {
            let run = EventRun {
                tick: Arc::clone(&tick),
                events: i..i + 1,
            };
            if let Some(old) = state.latest.insert(event.symbol.clone(), run) {
                state.latest_by_id.remove(&old.first_id());
            } else if state.latest.len() > MAX_SNAPSHOT_SYMBOLS {
                if let Some((_, oldest)) = state.latest_by_id.pop_first() {
                    state.latest.remove(&oldest);
                }
            }
            state.latest_by_id.insert(event.id, event.symbol.clone());
        }
        let mut woken = Vec::new();
        if fan_out {
            let (queue_len, now) = (self.queue_len, self.nanos());
            state
                .subscribers
                .retain(|s| deliver(s, &tick, queue_len, now, &mut woken));
        }
        drop(state);
        woken.iter().for_each(Thread::unpark);
        events.len()
    }

    /// Subscribes a client on the calling thread. Without a last event id
    /// the catch-up is the newest event of each selected symbol; with one,
    /// every retained event with a larger id (the whole history if it is
    /// older than that, nothing if it is newer than the newest). Conflated,
    /// it is the newest event of each symbol past that id. With stream ids
    /// nothing at or below the id is ever sent; with counter ids, an id
    /// newer than the newest resumes from the next event.
    pub fn subscribe(self: &Arc<Self>, mut wants: Wants) -> Subscription {
        let mut state = self.lock();
        let last = wants.last_event_id;
        if self.form == IdForm::Stream {
            wants.selection.floor = last;
        }
        let selection = Arc::new(wants.selection);
        let mut cursor = None;
        let catch_up = match last {
            _ if wants.throttle.is_some() => {
                cursor = match (self.form, last, state.newest) {
                    (IdForm::Counter, Some(last), newest) => newest.map(|n| last.min(n)),
                    _ => last,
                };
                let runs = newest_since(&state, cursor, &selection.filter);
                cursor = runs.last().map(EventRun::first_id).or(cursor);
                runs
            }
            None => newest_since(&state, None, &selection.filter),
            Some(last) => {
                // The oldest tick may hold events past the limit: not retained.
                let beyond_limit = state.history_events.saturating_sub(self.history_limit);
                // Ticks are in id order: find the first event wanted directly.
                let first = state.history.partition_point(|tick| tick.last_id() <= last);
                state
                    .history
                    .range(first..)
                    .zip(first..)
                    .filter(|(tick, _)| tick.any_taken(&selection))
                    .map(|(tick, i)| {
                        let mut start = tick.events.partition_point(|e| e.id <= last);
                        if i == 0 {
                            start = start.max(beyond_limit);
                        }
                        EventRun {
                            tick: Arc::clone(tick),
                            events: start..tick.len(),
                        }
                    })
                    .collect()
            }
        };
        let (queue, ticks) = channel();
        let inbox = Arc::new(Inbox {
            queued: AtomicUsize::new(0),
            dropped_slow: AtomicBool::new(false),
            wake_at: AtomicU64::new(NOT_WAITING),
            ended: AtomicU8::new(if state.draining { DRAIN } else { 0 }),
            reader: thread::current(),
        });
        state.subscribers.push(Subscriber {
            resumed: last.is_some(),
            queue: wants.throttle.is_none().then_some(queue),
            selection: Arc::clone(&selection),
            inbox: Arc::clone(&inbox),
            tag: wants.tag,
        });
        Subscription {
            catch_up,
            selection,
            cursor,
            ticks,
            inbox,
            hub: Arc::clone(self),
            _on_this_thread: PhantomData,
        }
    }

    /// Starts a graceful stop: returns an [`Ender`] for every stream open
    /// now; streams that subscribe from now on end at once.
    pub fn drain(&self) -> Vec<Ender> {
        let mut state = self.lock();
        state.draining = true;
        let inboxes = state.subscribers.iter().map(|s| Arc::clone(&s.inbox));
        inboxes.map(Ender).collect()
    }

    /// Ends, as revoked, every stream whose tag `revoked` holds; returns
    /// how many.
    pub fn revoke(&self, revoked: impl Fn(u64) -> bool) -> usize {
        let state = self.read();
        let ended = state
            .subscribers
            .iter()
            .filter(|s| s.tag.is_some_and(&revoked));
        ended.map(|s| end(&s.inbox, REVOKED)).count()
    }

    fn unsubscribe(&self, inbox: &Arc<Inbox>) {
        let mut state = self.lock();
        if let Some(i) = state
            .subscribers
            .iter()
            .position(|s| Arc::ptr_eq(&s.inbox, inbox))
        {
            state.subscribers.swap_remove(i);
        }
    }
}

/// Hands `tick` to one subscriber if it takes any of it: queues it (or
/// drops a subscriber whose queue of `queue_len` is full), or, for a
/// conflated one whose wake-up time has come by `now`, adds its thread to
/// `woken`. Returns false to forget the subscriber.
fn deliver(
    s: &Subscriber,
    tick: &Arc<Tick>,
    queue_len: usize,
    now: u64,
    woken: &mut Vec<Thread>,
) -> bool {
    if !tick.any_taken(&s.selection) {
        return true;
    }
    let Some(queue) = &s.queue else {
        if s.inbox.wake_at.load(Ordering::Relaxed) <= now {
            s.inbox.wake_at.store(NOT_WAITING, Ordering::Relaxed);
            woken.push(s.inbox.reader.clone());
        }
        return true;
    };
    // Counted before the send, so the reader's decrement can never come
    // first.
    if s.inbox.queued.fetch_add(1, Ordering::Relaxed) >= queue_len {
        s.inbox.dropped_slow.store(true, Ordering::Relaxed);
        s.inbox.reader.unpark();
        return false;
    }
    let sent = queue.send(Arc::clone(tick)).is_ok();
    s.inbox.reader.unpark();
    sent
}

/// The newest event of each symbol `filter` takes with an id past `cursor`,
/// in id order.
fn newest_since(state: &State, cursor: Option<EventId>, filter: &Filter) -> Vec<EventRun> {
    let from = cursor.map_or(Bound::Unbounded, Bound::Excluded);
    state
        .latest_by_id
        .range((from, Bound::Unbounded))
        .filter(|(_, symbol)| filter.matches(symbol))
        .filter_map(|(_, symbol)| state.latest.get(symbol).cloned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::EventId;
    use crate::sse::Dialect;

    fn subscribe(hub: &Arc<Hub>, filter: Filter, last: Option<u64>) -> Subscription {
        hub.subscribe(Wants {
            selection: Selection {
                filter,
                floor: None,
                dialect: Dialect::Prices,
            },
            last_event_id: last.map(EventId::counter),
            throttle: None,
            tag: None,
        })
    }

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
                .append_to(&mut buf, run.events.clone(), &sub.selection);
        }
        while let Ok(Some(tick)) = sub.try_next() {
            tick.append_to(&mut buf, 0..tick.len(), &sub.selection);
        }
        String::from_utf8(buf).unwrap()
    }

    fn only(symbols: &[&str]) -> Filter {
        Filter::only(symbols.iter().map(|s| sym(s)))
    }

    #[test]
    fn one_tick_is_encoded_once_with_consecutive_ids() {
        let hub = Hub::new(IdForm::Counter, 100, 10, 4);
        let sub = subscribe(&hub, Filter::All, None);
        assert_eq!(hub.publish(&[price("BTC", "1.5"), price("ETH", "2")]), 2);
        let Ok(Some(tick)) = sub.try_next() else {
            panic!("a tick")
        };
        assert_eq!(tick.len(), 2);
        assert_eq!(
            &*tick.prices,
            (frame(100, "BTC", "1.5") + &frame(101, "ETH", "2")).as_bytes()
        );
    }

    #[test]
    fn snapshot_is_the_latest_per_symbol_in_id_order() {
        let hub = Hub::new(IdForm::Counter, 1, 10, 4);
        hub.publish(&[price("BTC", "1"), price("ETH", "2")]);
        hub.publish(&[price("BTC", "3")]);
        let sub = subscribe(&hub, Filter::All, None);
        assert_eq!(drain(&sub), frame(2, "ETH", "2") + &frame(3, "BTC", "3"));
        let sub = subscribe(&hub, only(&["BTC"]), None);
        hub.publish(&[price("ETH", "4"), price("BTC", "5")]);
        assert_eq!(drain(&sub), frame(3, "BTC", "3") + &frame(5, "BTC", "5"));
    }

    #[test]
    fn resume_sends_exactly_the_missed_events() {
        let hub = Hub::new(IdForm::Counter, 1, 100, 4);
        for n in 0..4 {
            hub.publish(&[
                price("A", &format!("{}", 2 * n + 1)),
                price("B", &format!("{}", 2 * n + 2)),
            ]);
        }
        // Ids 1..=8. Resume after 3: 4..=8, the first from the middle of a tick.
        let sub = subscribe(&hub, Filter::All, Some(3));
        hub.publish(&[price("A", "9")]);
        let expected: String = (4..=9)
            .map(|id| frame(id, if id % 2 == 1 { "A" } else { "B" }, &id.to_string()))
            .collect();
        assert_eq!(drain(&sub), expected);
        // Newer than the newest: live only. Filtered: only B.
        let live = subscribe(&hub, Filter::All, Some(1_000));
        let only_b = subscribe(&hub, only(&["B"]), Some(5));
        hub.publish(&[price("B", "10")]);
        assert_eq!(drain(&live), frame(10, "B", "10"));
        assert_eq!(
            drain(&only_b),
            frame(6, "B", "6") + &frame(8, "B", "8") + &frame(10, "B", "10")
        );
    }

    #[test]
    fn history_is_counted_in_events_across_symbols() {
        let hub = Hub::new(IdForm::Counter, 1, 3, 4);
        for n in 1..=4 {
            hub.publish(&[price("A", &n.to_string()), price("B", &n.to_string())]);
        }
        // Ids 1..=8; only 6, 7, 8 are retained, whatever is asked.
        let expected = frame(6, "B", "3") + &frame(7, "A", "4") + &frame(8, "B", "4");
        assert_eq!(drain(&subscribe(&hub, Filter::All, Some(0))), expected);
        assert_eq!(drain(&subscribe(&hub, Filter::All, Some(4))), expected);
        assert_eq!(
            drain(&subscribe(&hub, Filter::All, Some(7))),
            frame(8, "B", "4")
        );
        let none = Hub::new(IdForm::Counter, 1, 0, 4);
        none.publish(&[price("A", "1")]);
        assert_eq!(drain(&subscribe(&none, Filter::All, Some(0))), "");
    }

    #[test]
    fn a_full_queue_drops_only_that_subscriber() {
        let hub = Hub::new(IdForm::Counter, 1, 10, 2);
        let slow = subscribe(&hub, Filter::All, None);
        let fast = subscribe(&hub, Filter::All, None);
        for n in 1..=3 {
            hub.publish(&[price("A", &n.to_string())]);
            assert_eq!(drain(&fast), frame(n, "A", &n.to_string()));
        }
        // The third tick found the slow queue full: dropped at once, even
        // though two ticks are still queued.
        assert_eq!(slow.try_next().err(), Some(DisconnectReason::Slow));
        assert_eq!(
            slow.next(Duration::from_secs(5)).err(),
            Some(DisconnectReason::Slow)
        );
        assert!(matches!(fast.try_next(), Ok(None)));
        assert!(matches!(fast.next(Duration::from_millis(1)), Ok(None)));
        assert_eq!(hub.lock().subscribers.len(), 1);
    }

    #[test]
    fn filtered_subscribers_are_not_woken_for_other_symbols() {
        let hub = Hub::new(IdForm::Counter, 1, 10, 1);
        let sub = subscribe(&hub, only(&["B"]), None);
        for _ in 0..5 {
            hub.publish(&[price("A", "1")]);
        }
        assert!(matches!(sub.try_next(), Ok(None)));
    }

    /// The publish comes only once the reader is asleep in `park_timeout`
    /// (its thread's state in `/proc` is `S`), so the wake-up is what is
    /// tested, not a tick that was already queued.
    #[test]
    #[cfg(target_os = "linux")]
    fn a_publish_wakes_the_parked_subscriber() {
        let hub = Hub::new(IdForm::Counter, 1, 10, 4);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let reader_hub = Arc::clone(&hub);
        let reader = thread::spawn(move || {
            let sub = subscribe(&reader_hub, Filter::All, None);
            ready_tx
                .send(std::fs::read_link("/proc/thread-self"))
                .unwrap();
            let next = sub.next(Duration::from_secs(60));
            matches!(next, Ok(Some(_)))
        });
        let task = ready_rx.recv().unwrap().expect("/proc/thread-self");
        let stat = std::path::Path::new("/proc").join(task).join("stat");
        let asleep = || {
            let stat = std::fs::read_to_string(&stat).unwrap_or_default();
            // The state follows the ")" that ends the thread's name.
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('S'))
        };
        while !asleep() {
            thread::yield_now();
        }
        hub.publish(&[price("A", "1")]);
        assert!(
            reader.join().unwrap(),
            "woken with the tick, not after 60 s"
        );
    }

    #[test]
    fn dropping_a_subscription_unsubscribes() {
        let hub = Hub::new(IdForm::Counter, 1, 10, 1);
        let sub = subscribe(&hub, only(&["NEVER"]), None);
        assert_eq!(hub.lock().subscribers.len(), 1);
        drop(sub);
        assert_eq!(hub.lock().subscribers.len(), 0);
    }

    #[test]
    fn snapshot_symbols_are_bounded() {
        let hub = Hub::new(IdForm::Counter, 1, 1, 1);
        for n in 0..MAX_SNAPSHOT_SYMBOLS + 10 {
            hub.publish(&[price(&format!("S{n}"), "1")]);
        }
        assert!(!hub.lock().latest.contains_key(&sym("S0")));
        assert!(hub
            .lock()
            .latest
            .contains_key(&sym(&format!("S{}", MAX_SNAPSHOT_SYMBOLS + 9))));
        assert_eq!(hub.lock().latest.len(), MAX_SNAPSHOT_SYMBOLS);
    }

    /// Publishing asks each filtered subscriber one set lookup per event,
    /// however many symbols its filter names (a list scanned per event took
    /// 45 s for 200,000 events with 300 long filters). Measured as a ratio
    /// in one run, so it holds in debug and release builds alike.
    #[test]
    fn long_filters_cost_about_what_short_ones_cost() {
        let cost = |filter_len: usize| {
            let hub = Hub::new(IdForm::Counter, 1, 0, usize::MAX);
            let subs: Vec<Subscription> = (0..100)
                .map(|_| {
                    let names = (0..filter_len).map(|n| sym(&format!("NEVER{n}")));
                    subscribe(&hub, Filter::only(names), None)
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

    fn wants(filter: Filter, last: Option<EventId>, conflated: bool, dialect: Dialect) -> Wants {
        Wants {
            selection: Selection {
                filter,
                floor: None,
                dialect,
            },
            last_event_id: last,
            throttle: conflated.then_some(Duration::from_secs(1)),
            tag: None,
        }
    }

    fn resume(hub: &Arc<Hub>, id: EventId) -> Subscription {
        hub.subscribe(wants(Filter::All, Some(id), false, Dialect::Prices))
    }

    fn named(ms: u64, seq: u64, symbol: &str, p: &str) -> (EventId, Price) {
        (EventId::stream(ms, seq), price(symbol, p))
    }

    fn stream_frames(events: &[(u64, u64, &str, &str)]) -> String {
        events
            .iter()
            .map(|(ms, seq, symbol, price)| stream_frame(*ms, *seq, symbol, price))
            .collect()
    }

    fn stream_frame(ms: u64, seq: u64, symbol: &str, price: &str) -> String {
        format!("id: {ms}-{seq}\ndata: {{\"symbol\":\"{symbol}\",\"price\":{price},\"ts\":5}}\n\n")
    }

    #[test]
    fn stream_ids_are_the_feeds_and_never_repeat() {
        let hub = Hub::new(IdForm::Stream, 0, 100, 8);
        assert_eq!(
            hub.publish_named(&[named(10, 0, "A", "1"), named(10, 1, "B", "2")], true),
            2
        );
        // Read again after a reconnect: only the new entry is published.
        assert_eq!(
            hub.publish_named(&[named(10, 1, "B", "2"), named(11, 0, "A", "3")], true),
            1
        );
        let resumed = resume(&hub, EventId::stream(10, 0));
        assert_eq!(
            drain(&resumed),
            stream_frames(&[(10, 1, "B", "2"), (11, 0, "A", "3")])
        );
        // A client that failed over from a replica a few events ahead:
        // nothing at or below its id, in catch-up or live.
        let ahead = resume(&hub, EventId::stream(12, 0));
        hub.publish_named(&[named(12, 0, "A", "4"), named(12, 1, "B", "5")], true);
        hub.publish_named(&[named(13, 0, "A", "6")], true);
        assert_eq!(
            drain(&ahead),
            stream_frames(&[(12, 1, "B", "5"), (13, 0, "A", "6")])
        );
    }

    #[test]
    fn counter_ids_newer_than_the_newest_resume_at_the_next() {
        let hub = Hub::new(IdForm::Counter, 1, 100, 8);
        hub.publish(&[price("A", "1")]);
        let sub = subscribe(&hub, Filter::All, Some(1_000_000));
        hub.publish(&[price("A", "2")]);
        assert_eq!(drain(&sub), frame(2, "A", "2"));
    }

    #[test]
    fn the_article_dialect_frames_the_same_events() {
        let hub = Hub::new(IdForm::Counter, 7, 100, 8);
        let sub = hub.subscribe(wants(only(&["B"]), None, false, Dialect::Article));
        hub.publish(&[price("A", "1"), price("B", "2.5")]);
        assert_eq!(
            drain(&sub),
            "id: 8\nevent: price-update\ndata: {\"data\":2.5}\n\n"
        );
    }

    /// Writes what a conflated subscription would write now.
    fn conflated_write(sub: &mut Subscription) -> String {
        let mut buf = Vec::new();
        for run in sub.newest_since() {
            run.tick
                .append_to(&mut buf, run.events.clone(), &sub.selection);
        }
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn conflated_reads_the_newest_per_symbol_since_its_last_write() {
        let hub = Hub::new(IdForm::Counter, 1, 100, 1);
        hub.publish(&[price("A", "1"), price("B", "2")]);
        hub.publish(&[price("A", "3")]);
        // Snapshot first, in id order.
        let mut sub = hub.subscribe(wants(Filter::All, None, true, Dialect::Prices));
        assert_eq!(drain(&sub), frame(2, "B", "2") + &frame(3, "A", "3"));
        assert_eq!(sub.cursor, Some(EventId::counter(3)));
        // Many ticks, no queue (the queue of 1 would have dropped a live
        // subscriber): one event per symbol that changed.
        for n in 4..=20 {
            hub.publish(&[price("A", &n.to_string())]);
        }
        hub.publish(&[price("C", "9")]);
        assert_eq!(sub.ended(), None);
        assert_eq!(
            conflated_write(&mut sub),
            frame(20, "A", "20") + &frame(21, "C", "9")
        );
        assert_eq!(conflated_write(&mut sub), "");
        // Nothing new: waiting, so the next event wakes it.
        assert_eq!(sub.inbox.wake_at.load(Ordering::Relaxed), 0);
        hub.publish(&[price("B", "7")]);
        assert_eq!(sub.inbox.wake_at.load(Ordering::Relaxed), NOT_WAITING);
        assert_eq!(conflated_write(&mut sub), frame(22, "B", "7"));
        // Resume: the newest missed event per symbol.
        let mut resumed = hub.subscribe(wants(
            Filter::All,
            Some(EventId::counter(19)),
            true,
            Dialect::Prices,
        ));
        assert_eq!(
            drain(&resumed),
            frame(20, "A", "20") + &frame(21, "C", "9") + &frame(22, "B", "7")
        );
        assert_eq!(conflated_write(&mut resumed), "");
        // Resume from beyond the newest (a counter): the next event on.
        let mut beyond = hub.subscribe(wants(
            Filter::All,
            Some(EventId::counter(999)),
            true,
            Dialect::Prices,
        ));
        assert_eq!(drain(&beyond), "");
        hub.publish(&[price("A", "8")]);
        assert_eq!(conflated_write(&mut beyond), frame(23, "A", "8"));
    }

    #[test]
    fn a_drain_ends_open_and_later_streams() {
        let hub = Hub::new(IdForm::Counter, 1, 10, 4);
        let open = subscribe(&hub, Filter::All, None);
        let enders = hub.drain();
        assert_eq!(enders.len(), 1);
        assert!(matches!(open.try_next(), Ok(None)));
        enders[0].end();
        assert_eq!(open.try_next().err(), Some(DisconnectReason::Drain));
        let late = subscribe(&hub, Filter::All, None);
        assert_eq!(late.ended(), Some(DisconnectReason::Drain));
    }

    #[test]
    fn a_load_reaches_early_subscribers_as_the_snapshot() {
        let hub = Hub::new(IdForm::Stream, 0, 100, 8);
        let early = hub.subscribe(wants(only(&["A"]), None, false, Dialect::Prices));
        hub.publish_named(
            &[
                named(1, 0, "A", "1"),
                named(1, 1, "B", "2"),
                named(2, 0, "A", "3"),
            ],
            false,
        );
        assert!(
            matches!(early.try_next(), Ok(None)),
            "a load is sent to no one"
        );
        hub.send_snapshot();
        assert_eq!(drain(&early), stream_frame(2, 0, "A", "3"));
        let missed = stream_frames(&[(1, 1, "B", "2"), (2, 0, "A", "3")]);
        assert_eq!(drain(&resume(&hub, EventId::stream(1, 0))), missed);
    }

    #[test]
    fn a_conflated_subscriber_is_woken_by_the_first_publish_it_takes_once_due() {
        let hub = Hub::new(IdForm::Counter, 1, 16, 1);
        let sub = hub.subscribe(wants(
            Filter::only(vec![sym("A")]),
            None,
            true,
            Dialect::Prices,
        ));
        let waiting = || sub.inbox.wake_at.load(Ordering::Relaxed) != NOT_WAITING;
        assert!(!waiting());
        // Not due yet: a publish leaves it asleep.
        sub.wake_at(Instant::now() + Duration::from_secs(3600));
        hub.publish(&[price("A", "1")]);
        assert!(waiting());
        // Due: a publish of another symbol does not wake it, one of its own does.
        sub.wake_at(Instant::now());
        hub.publish(&[price("B", "1")]);
        assert!(waiting());
        hub.publish(&[price("A", "2")]);
        assert!(!waiting());
    }

    #[test]
    fn a_conflated_resume_before_any_event_starts_at_the_first() {
        let hub = Hub::new(IdForm::Counter, 1, 100, 8);
        let mut sub = hub.subscribe(wants(
            Filter::All,
            Some(EventId::counter(u64::MAX)),
            true,
            Dialect::Prices,
        ));
        hub.publish(&[price("A", "1")]);
        assert_eq!(conflated_write(&mut sub), frame(1, "A", "1"));
    }
}
