//! What the hub hands out: a [`Tick`] (the events of one publish, encoded
//! once per dialect and shared by `Arc`), the [`Filter`] and [`Selection`]
//! that decide what one client takes of it, and [`EventRun`]s, the pieces of
//! a catch-up. Pure values: no lock, no socket.

use std::collections::HashSet;
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use crate::id::EventId;
use crate::sse::{self, Dialect};
use crate::symbol::Symbol;

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

/// The events of one publish, encoded once per dialect, shared by every
/// client.
#[derive(Debug)]
pub struct Tick {
    /// Every frame of the tick in `/prices` framing, in id order.
    pub prices: Box<[u8]>,
    article: Box<[u8]>,
    pub(super) events: Box<[Event]>,
    /// When the hub published it (for `tickstream_delivery_lag_seconds`).
    pub published: Instant,
}

#[derive(Debug, Clone)]
pub(super) struct Event {
    pub(super) id: EventId,
    pub(super) symbol: Symbol,
    /// End of this event's frame in `Tick::prices` and `Tick::article`;
    /// it starts where the previous one ends.
    pub(super) ends: [usize; 2],
}

impl Tick {
    pub(super) fn encode(events: &[(EventId, &Price)]) -> Tick {
        let mut prices = Vec::with_capacity(events.len() * 96);
        let mut article = Vec::with_capacity(events.len() * 64);
        let mut encoded = Vec::with_capacity(events.len());
        for (id, price) in events {
            let (symbol, text, ts) = (&price.symbol, &price.price, price.ts_ms);
            sse::push_event(&mut prices, Dialect::Prices, *id, symbol, text, ts);
            sse::push_event(&mut article, Dialect::Article, *id, symbol, text, ts);
            encoded.push(Event {
                id: *id,
                symbol: price.symbol.clone(),
                ends: [prices.len(), article.len()],
            });
        }
        Tick::new(prices, article, encoded)
    }

    fn new(prices: Vec<u8>, article: Vec<u8>, events: Vec<Event>) -> Tick {
        Tick {
            prices: prices.into(),
            article: article.into(),
            events: events.into(),
            published: Instant::now(),
        }
    }

    /// A tick of copies of the events of `runs` (the snapshot of a load).
    pub(super) fn gather(runs: &[EventRun]) -> Tick {
        let (mut prices, mut article, mut events) = (Vec::new(), Vec::new(), Vec::new());
        for run in runs {
            for i in run.events.clone() {
                prices.extend_from_slice(run.tick.frame(i, Dialect::Prices));
                article.extend_from_slice(run.tick.frame(i, Dialect::Article));
                events.push(Event {
                    ends: [prices.len(), article.len()],
                    ..run.tick.events[i].clone()
                });
            }
        }
        Tick::new(prices, article, events)
    }

    /// Number of events in the tick (never 0: the hub publishes no empty
    /// tick).
    pub(crate) fn len(&self) -> usize {
        self.events.len()
    }

    pub(super) fn first_id(&self) -> EventId {
        self.events[0].id
    }

    pub(super) fn last_id(&self) -> EventId {
        self.events[self.events.len() - 1].id
    }

    /// Appends the frames of the events in `range` that `selection` takes;
    /// returns how many it appended.
    pub fn append_to(
        &self,
        buf: &mut Vec<u8>,
        range: Range<usize>,
        selection: &Selection,
    ) -> usize {
        let mut appended = 0;
        for i in range.filter(|&i| selection.takes(&self.events[i])) {
            buf.extend_from_slice(self.frame(i, selection.dialect));
            appended += 1;
        }
        appended
    }

    /// The frame of event `i` in `dialect`.
    fn frame(&self, i: usize, dialect: Dialect) -> &[u8] {
        let (bytes, which) = match dialect {
            Dialect::Prices => (&self.prices, 0),
            Dialect::Article => (&self.article, 1),
        };
        let start = i.checked_sub(1).map_or(0, |i| self.events[i].ends[which]);
        &bytes[start..self.events[i].ends[which]]
    }

    pub(super) fn any_taken(&self, selection: &Selection) -> bool {
        self.events.iter().any(|e| selection.takes(e))
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
            Filter::Only(symbols) => symbols.contains(symbol),
        }
    }
}

/// What one client takes of each tick, and how it is framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Its symbols.
    pub filter: Filter,
    /// Events at or below this id are never sent (a redis-fed stream
    /// resumed from it: a failover must not repeat an event).
    pub floor: Option<EventId>,
    /// Its framing.
    pub dialect: Dialect,
}

impl Selection {
    pub(super) fn takes(&self, event: &Event) -> bool {
        self.floor.is_none_or(|floor| event.id > floor) && self.filter.matches(&event.symbol)
    }

    /// True if this client takes all of `tick` in `/prices` framing, so
    /// [`Tick::prices`] can be written as it is.
    pub fn takes_whole(&self, tick: &Tick) -> bool {
        self.dialect == Dialect::Prices
            && self.filter == Filter::All
            && self.floor.is_none_or(|floor| tick.first_id() > floor)
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
    pub(super) fn first_id(&self) -> EventId {
        self.tick.events[self.events.start].id
    }
}
