//! Admission: a [`Gate`] lets at most its limit of holders in at once, and
//! a [`Pass`] gives its place back when dropped (also when its thread
//! unwinds). One type serves the three limits: connections still sending
//! their heads, connection threads, and open streams.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A counter with a limit.
#[derive(Debug)]
pub struct Gate {
    in_use: AtomicUsize,
    limit: usize,
}

/// One place taken in a [`Gate`], given back on drop.
#[derive(Debug)]
pub struct Pass(Arc<Gate>);

impl Gate {
    /// A gate letting `limit` holders in at once.
    pub fn new(limit: usize) -> Arc<Gate> {
        Arc::new(Gate {
            in_use: AtomicUsize::new(0),
            limit,
        })
    }

    /// Takes a place, or `None` if all are taken.
    pub fn try_enter(self: &Arc<Self>) -> Option<Pass> {
        self.in_use
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.limit).then_some(n + 1)
            })
            .ok()
            .map(|_| Pass(Arc::clone(self)))
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        self.0.in_use.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_its_limit_and_takes_places_back() {
        let gate = Gate::new(2);
        let a = gate.try_enter().unwrap();
        let b = gate.try_enter().unwrap();
        assert!(gate.try_enter().is_none());
        drop(a);
        let c = gate.try_enter().unwrap();
        assert_eq!(gate.in_use.load(Ordering::Relaxed), 2);
        drop((b, c));
        assert_eq!(gate.in_use.load(Ordering::Relaxed), 0);
        assert!(Gate::new(0).try_enter().is_none());
    }
}
