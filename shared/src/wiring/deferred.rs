//! [`Deferred`]: a value built on first use by an async init given at cold
//! start, for everything that needs a secret held in AWS (fetched on the
//! first invocation, so cold init makes no network call).

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use tokio::sync::OnceCell;

use crate::config::ConfigError;

type InitFuture<T> = Pin<Box<dyn Future<Output = Result<T, ConfigError>> + Send>>;
type Init<T> = Box<dyn Fn() -> InitFuture<T> + Send + Sync>;

/// A value built by its init on the first [`Deferred::get`], then kept for
/// the container's (or the run's) life.
///
/// - Concurrent first calls run the init once; the others wait for it.
/// - A failed init keeps nothing: the error goes to that caller and the next
///   call runs the init again (a secret Secrets Manager could not serve
///   during one invocation is fetched on the next).
/// - The error is a [`ConfigError`], which names a variable and a reason,
///   never a secret's value; `Debug` shows whether the value is built, never
///   the value.
pub struct Deferred<T> {
    init: Init<T>,
    cell: OnceCell<T>,
}

impl<T: Send + Sync + 'static> Deferred<T> {
    /// Runs nothing yet: `init` is called by the first [`Deferred::get`]. It
    /// owns what it needs (clone `Arc`s into it), since it may run again.
    pub fn new<F, Fut>(init: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, ConfigError>> + Send + 'static,
    {
        Self { init: Box::new(move || Box::pin(init())), cell: OnceCell::new() }
    }

    /// The value, built now if it is not yet.
    pub async fn get(&self) -> Result<&T, ConfigError> {
        self.cell.get_or_try_init(|| (self.init)()).await
    }

    /// True once an init has succeeded.
    pub fn is_ready(&self) -> bool {
        self.cell.initialized()
    }
}

impl<T> fmt::Debug for Deferred<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deferred").field("ready", &self.cell.initialized()).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    /// A deferred secret-like value whose init fails the first `failures` times.
    fn counted(failures: usize) -> (Arc<AtomicUsize>, Deferred<String>) {
        let runs = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&runs);
        let deferred = Deferred::new(move || {
            let runs = Arc::clone(&seen);
            async move {
                let n = runs.fetch_add(1, Ordering::SeqCst);
                if n < failures {
                    return Err(ConfigError::SecretUnavailable {
                        var: "BREVO_API_KEY".into(),
                        reason: "Secrets Manager timed out".into(),
                    });
                }
                Ok("xkeysib-deferred-secret".to_owned())
            }
        });
        (runs, deferred)
    }

    #[tokio::test]
    async fn nothing_runs_until_first_use_and_the_value_is_kept() {
        let (runs, deferred) = counted(0);
        assert_eq!(runs.load(Ordering::SeqCst), 0, "built at cold start");
        assert!(!deferred.is_ready());
        assert_eq!(deferred.get().await.unwrap(), "xkeysib-deferred-secret");
        assert_eq!(deferred.get().await.unwrap(), "xkeysib-deferred-secret");
        assert_eq!(runs.load(Ordering::SeqCst), 1, "init ran once");
        assert!(deferred.is_ready());
    }

    #[tokio::test]
    async fn a_failed_init_is_retried_on_the_next_use() {
        let (runs, deferred) = counted(1);
        let e = deferred.get().await.unwrap_err();
        assert_eq!(e.kind(), "SecretUnavailable");
        assert!(e.to_string().contains("BREVO_API_KEY"), "{e}");
        assert!(!deferred.is_ready());
        assert_eq!(deferred.get().await.unwrap(), "xkeysib-deferred-secret");
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn concurrent_first_uses_run_the_init_once() {
        let (runs, deferred) = counted(0);
        let (a, b) = tokio::join!(deferred.get(), deferred.get());
        assert_eq!((a.unwrap().as_str(), b.unwrap().as_str()), ("xkeysib-deferred-secret", "xkeysib-deferred-secret"));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn debug_never_shows_the_value() {
        let (_, deferred) = counted(0);
        deferred.get().await.unwrap();
        let shown = format!("{deferred:?}");
        assert!(shown.contains("ready: true") && !shown.contains("xkeysib"), "{shown}");
    }
}
