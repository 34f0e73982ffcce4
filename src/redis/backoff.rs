//! The back-off between attempts to reach Redis, shared by the feed and
//! the publisher.

use std::time::Duration;

/// A jittered exponential back-off: 100 ms doubling to 5 s, each wait
/// drawn between half and all of the current step, so replicas that lost
/// Redis together do not come back in step.
pub struct Backoff(Duration);

impl Backoff {
    /// The first step.
    pub const FIRST: Duration = Duration::from_millis(100);
    /// The longest step.
    pub const MOST: Duration = Duration::from_secs(5);

    /// The next wait; the step after it doubles.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.0.mul_f64(0.5 + fastrand::f64() / 2.0);
        self.0 = (self.0 * 2).min(Backoff::MOST);
        wait
    }

    /// Back to the first step (after a success).
    pub fn reset(&mut self) {
        self.0 = Backoff::FIRST;
    }
}

impl Default for Backoff {
    /// A back-off at its first step.
    fn default() -> Self {
        Backoff(Backoff::FIRST)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_ceiling_with_jitter() {
        let mut backoff = Backoff::default();
        let waits: Vec<Duration> = (0..10).map(|_| backoff.next_wait()).collect();
        for (n, wait) in waits.iter().enumerate() {
            let step = (Backoff::FIRST * 2u32.pow(n as u32)).min(Backoff::MOST);
            assert!(
                *wait >= step / 2 && *wait <= step,
                "{n}: {wait:?} of {step:?}"
            );
        }
        backoff.reset();
        assert!(backoff.next_wait() <= Backoff::FIRST);
    }
}
