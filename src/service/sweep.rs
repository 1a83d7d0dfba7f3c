//! The sweepers' batch loop, written once: every sweep (expiries, lapses, reminders and
//! escalations, contract-end warnings, recertification removals, orphaned accounts) finds its
//! due items a batch at a time and handles each in a write of its own.
//!
//! Two rules hold for all of them. A sweep goes on until nothing more is due, so a backlog
//! larger than a batch is cleared in one sweep rather than a batch a minute. And a full batch
//! of which nothing could be handled (each decided, renewed or recorded meanwhile, by this
//! replica or another) ends the sweep: the query would return the same items again, and
//! looping on them would spin until they changed; the next sweep tries again.

use super::ServiceResult;

/// How many due items a sweep reads at a time.
pub(super) const BATCH: u32 = 100;

/// Reads batches of at most `limit` items with `next(limit)` and hands each to `handle`, which
/// says whether it changed something; returns how many did. Ends at a short batch, or at a
/// full one where nothing changed.
///
/// Plain closures returning futures rather than async closures: the sweeper runs in a spawned
/// task, and an async closure's future cannot be shown to be `Send` for every borrow.
pub(super) async fn drain<T, Next, Batch, Handle, Handled>(
    limit: u32,
    mut next: Next,
    mut handle: Handle,
) -> ServiceResult<usize>
where
    Next: FnMut(u32) -> Batch,
    Batch: Future<Output = ServiceResult<Vec<T>>>,
    Handle: FnMut(T) -> Handled,
    Handled: Future<Output = ServiceResult<bool>>,
{
    let mut done = 0;
    loop {
        let items = next(limit).await?;
        let full = items.len() >= limit as usize;
        let mut changed = 0;
        for item in items {
            if handle(item).await? {
                changed += 1;
            }
        }
        done += changed;
        if !full || changed == 0 {
            return Ok(done);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::service::ServiceError;

    /// A queue of due items, as a store would return them: the first `limit` not yet handled.
    /// `sticky` items are never handled (each call to `handle` says false and leaves it due).
    struct Due {
        items: RefCell<Vec<u32>>,
        sticky: fn(u32) -> bool,
        reads: RefCell<Vec<usize>>,
    }

    impl Due {
        fn new(n: u32, sticky: fn(u32) -> bool) -> Due {
            Due {
                items: RefCell::new((0..n).collect()),
                sticky,
                reads: RefCell::new(Vec::new()),
            }
        }

        async fn sweep(&self, limit: u32) -> ServiceResult<usize> {
            drain(
                limit,
                |limit| async move {
                    assert!(self.reads.borrow().len() < 50, "the sweep does not end");
                    let batch: Vec<u32> = self
                        .items
                        .borrow()
                        .iter()
                        .copied()
                        .take(limit as usize)
                        .collect();
                    self.reads.borrow_mut().push(batch.len());
                    Ok(batch)
                },
                |item| async move {
                    if (self.sticky)(item) {
                        return Ok(false);
                    }
                    self.items.borrow_mut().retain(|&i| i != item);
                    Ok(true)
                },
            )
            .await
        }
    }

    fn never(_: u32) -> bool {
        false
    }

    #[tokio::test]
    async fn a_backlog_larger_than_a_batch_is_cleared_in_one_sweep() {
        let due = Due::new(250, never);
        assert_eq!(due.sweep(100).await.unwrap(), 250);
        assert!(due.items.borrow().is_empty());
        assert_eq!(*due.reads.borrow(), vec![100, 100, 50]);
    }

    #[tokio::test]
    async fn a_last_full_batch_is_followed_by_one_more_read() {
        // Exactly two batches: only an empty read tells the sweep that nothing more is due.
        let due = Due::new(200, never);
        assert_eq!(due.sweep(100).await.unwrap(), 200);
        assert_eq!(*due.reads.borrow(), vec![100, 100, 0]);
    }

    #[tokio::test]
    async fn a_short_batch_ends_the_sweep() {
        let due = Due::new(3, never);
        assert_eq!(due.sweep(100).await.unwrap(), 3);
        assert_eq!(*due.reads.borrow(), vec![3]);
    }

    #[tokio::test]
    async fn a_full_batch_of_which_nothing_changed_ends_the_sweep() {
        let due = Due::new(5, |_| true);
        assert_eq!(due.sweep(5).await.unwrap(), 0);
        assert_eq!(*due.reads.borrow(), vec![5]);
        assert_eq!(due.items.borrow().len(), 5, "left for the next sweep");
    }

    #[tokio::test]
    async fn only_what_changed_is_counted() {
        // Odd items stay due, and gather at the head of the queue: the sweep goes on while a
        // full batch changes something (5, 2, 2, 1 of the evens below 20) and stops at the
        // first batch of sticky items only; the evens after them wait for a later sweep.
        let due = Due::new(40, |i| i % 2 == 1);
        assert_eq!(due.sweep(10).await.unwrap(), 10);
        assert_eq!(*due.reads.borrow(), vec![10, 10, 10, 10, 10]);
        assert_eq!(
            due.items.borrow()[..11],
            [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 20]
        );
    }

    #[tokio::test]
    async fn an_error_ends_the_sweep_and_is_returned() {
        let handled = RefCell::new(0);
        let out = drain(
            10,
            |_| async { Ok(vec![1, 2, 3]) },
            |item: u32| {
                let handled = &handled;
                async move {
                    *handled.borrow_mut() += 1;
                    if item == 2 {
                        return Err(ServiceError::Unavailable("the database went away".into()));
                    }
                    Ok(true)
                }
            },
        )
        .await;
        assert!(matches!(out, Err(ServiceError::Unavailable(_))), "{out:?}");
        assert_eq!(*handled.borrow(), 2, "nothing after the failure");
    }
}
