//! One deadline for a whole operation of several vendor calls (a token, a read, a write;
//! BLAZE's window walk; Cova's update and its contact methods), so a kiosk waits at most the
//! store's timeout for any one answer, not the timeout once per call.

use std::future::Future;

use tokio::time::Instant;

tokio::task_local! {
    static DEADLINE: Instant;
}

/// `wait` from now, or [`crate::MAX_TIMEOUT`] from now when `wait` is longer: a timeout from a
/// library caller's settings, a vendor's `Retry-After` or a rate limiter's wait can be absurd,
/// and `Instant + Duration` panics on overflow.
pub fn after(wait: std::time::Duration) -> Instant {
    Instant::now() + wait.min(crate::MAX_TIMEOUT)
}

/// Runs `operation` with every vendor call in it bounded by `deadline` (as well as by its
/// own timeout).
pub async fn within<F: Future>(deadline: Instant, operation: F) -> F::Output {
    DEADLINE.scope(deadline, operation).await
}

/// The deadline of the operation this task runs, if any.
pub fn current() -> Option<Instant> {
    DEADLINE.try_with(|deadline| *deadline).ok()
}

/// How long the operation has left; `None` outside one.
pub fn time_left() -> Option<std::time::Duration> {
    current().map(|deadline| deadline.saturating_duration_since(Instant::now()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_absurd_wait_is_an_hour_not_a_panic() {
        let deadline = super::after(std::time::Duration::MAX);
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        assert!(left <= crate::MAX_TIMEOUT && left > crate::MAX_TIMEOUT / 2);
    }

    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn the_deadline_holds_inside_the_operation_only() {
        assert_eq!(current(), None);
        let deadline = Instant::now() + Duration::from_secs(5);
        let seen = within(deadline, async { current() }).await;
        assert_eq!(seen, Some(deadline));
        let left = within(deadline, async { time_left() }).await.unwrap();
        assert!(left <= Duration::from_secs(5) && left > Duration::from_secs(4));
        assert_eq!(current(), None);
    }
}
