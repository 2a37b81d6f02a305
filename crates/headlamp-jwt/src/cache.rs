//! A JWKS cache over a [`KeySource`]: refetch on unknown `kid`,
//! rate-limited and single-flight, honouring `Cache-Control: max-age`
//! within bounds, and serving the last good set when the IdP is down.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use futures_util::FutureExt as _;
use futures_util::future::Shared;
use headlamp_core::{Clock, UnixTime};

use crate::{JwtError, KeySet, KeySource, KeySourceError};

/// Bounds of the JWKS cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct JwksCacheConfig {
    /// At most one fetch per this interval, whatever triggers it (unknown
    /// `kid`, expiry, failure). This is what stops a flood of tokens with
    /// random `kid` values from becoming a flood of requests to the IdP.
    pub min_refresh_interval: Duration,
    /// How long a key set stays fresh when the server sent no max-age.
    pub default_max_age: Duration,
    /// Lower bound applied to the server's max-age (a `max-age=0` must
    /// not mean "fetch on every request").
    pub min_max_age: Duration,
    /// Upper bound applied to the server's max-age (rotated keys must be
    /// picked up eventually even when the server says "cache for a year").
    pub max_max_age: Duration,
}

impl Default for JwksCacheConfig {
    fn default() -> Self {
        Self {
            min_refresh_interval: Duration::from_secs(10),
            default_max_age: Duration::from_secs(5 * 60),
            min_max_age: Duration::from_secs(60),
            max_max_age: Duration::from_secs(24 * 60 * 60),
        }
    }
}

impl JwksCacheConfig {
    /// Sets [`JwksCacheConfig::min_refresh_interval`].
    pub fn with_min_refresh_interval(mut self, interval: Duration) -> Self {
        self.min_refresh_interval = interval;
        self
    }

    /// Sets [`JwksCacheConfig::default_max_age`].
    pub fn with_default_max_age(mut self, max_age: Duration) -> Self {
        self.default_max_age = max_age;
        self
    }

    /// Sets the bounds applied to the server's max-age.
    pub fn with_max_age_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.min_max_age = min;
        self.max_max_age = max.max(min);
        self
    }

    fn freshness(&self, max_age: Option<Duration>) -> u64 {
        max_age
            .unwrap_or(self.default_max_age)
            .clamp(self.min_max_age, self.max_max_age.max(self.min_max_age))
            .as_secs()
    }
}

type FetchResult = Result<Arc<KeySet>, JwtError>;
type SharedFetch = Shared<Pin<Box<dyn Future<Output = FetchResult> + Send>>>;

#[derive(Clone)]
struct Snapshot {
    keys: Arc<KeySet>,
    fresh_until: UnixTime,
}

#[derive(Default)]
struct RefreshState {
    last_attempt: Option<UnixTime>,
    in_flight: Option<SharedFetch>,
    last_error: Option<JwtError>,
}

struct Inner<S> {
    source: S,
    clock: Arc<dyn Clock>,
    config: JwksCacheConfig,
    // Read on every cold verification, written once per refresh: a
    // read-mostly lock held only to clone an `Arc`, never across an await.
    current: RwLock<Option<Snapshot>>,
    // Touched only when a refresh is considered; never held across an await.
    refresh: Mutex<RefreshState>,
}

/// A cached JWKS over a [`KeySource`].
///
/// - Fresh set: served with no fetch.
/// - Unknown `kid` (key rotation): one refetch, then the lookup is retried.
/// - At most one fetch per [`JwksCacheConfig::min_refresh_interval`], and
///   concurrent callers share the fetch in progress.
/// - Freshness: the source's max-age clamped to the configured bounds;
///   a stale set is still served if the refetch fails.
/// - The request that finds the set stale waits for the refresh (bounded
///   by the [`KeySource`]'s own timeouts). A server that wants no request
///   ever to wait calls [`JwksCache::refresh`] from a periodic background
///   task; this crate spawns nothing.
///
/// Cloning is cheap and clones share the cache.
pub struct JwksCache<S> {
    inner: Arc<Inner<S>>,
}

impl<S> Clone for JwksCache<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S> fmt::Debug for JwksCache<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self
            .inner
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        f.debug_struct("JwksCache")
            .field("config", &self.inner.config)
            .field("keys", &current.as_ref().map(|s| &s.keys))
            .field("fresh_until", &current.as_ref().map(|s| s.fresh_until))
            .finish()
    }
}

impl<S: KeySource> JwksCache<S> {
    /// An empty cache; the first lookup fetches.
    pub fn new(source: S, clock: impl Clock, config: JwksCacheConfig) -> Self {
        Self::with_shared_clock(source, Arc::new(clock), config)
    }

    pub(crate) fn with_shared_clock(
        source: S,
        clock: Arc<dyn Clock>,
        config: JwksCacheConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                source,
                clock,
                config,
                current: RwLock::new(None),
                refresh: Mutex::new(RefreshState::default()),
            }),
        }
    }

    /// The key source.
    pub fn source(&self) -> &S {
        &self.inner.source
    }

    fn snapshot(&self) -> Option<Snapshot> {
        self.inner
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The current key set, fetching it first if there is none yet or it
    /// is stale (a failed refresh of a stale set serves the stale set).
    ///
    /// Fails only when no key set was ever fetched successfully.
    pub async fn keys(&self) -> Result<Arc<KeySet>, JwtError> {
        let now = self.inner.clock.now();
        match self.snapshot() {
            Some(s) if now < s.fresh_until => Ok(s.keys),
            Some(stale) => match self.fetch_if_allowed(now, false) {
                Some(fetch) => Ok(fetch.await.unwrap_or(stale.keys)),
                None => Ok(stale.keys),
            },
            None => match self.fetch_if_allowed(now, false) {
                Some(fetch) => fetch.await,
                None => Err(self.unavailable()),
            },
        }
    }

    /// Called when `seen` had no key for a token: returns a newer set if
    /// one exists or can be fetched now, `None` if the rate limit says to
    /// keep the one we have.
    pub async fn keys_after_miss(&self, seen: &Arc<KeySet>) -> Option<Arc<KeySet>> {
        if let Some(current) = self.snapshot()
            && !Arc::ptr_eq(&current.keys, seen)
        {
            return Some(current.keys);
        }
        let now = self.inner.clock.now();
        let fetched = self.fetch_if_allowed(now, false)?.await.ok()?;
        (!Arc::ptr_eq(&fetched, seen)).then_some(fetched)
    }

    /// Fetches now, ignoring the rate limit (joining a fetch already in
    /// progress). For a periodic background refresh or an admin action.
    pub async fn refresh(&self) -> Result<Arc<KeySet>, JwtError> {
        let now = self.inner.clock.now();
        match self.fetch_if_allowed(now, true) {
            Some(fetch) => fetch.await,
            None => Err(self.unavailable()),
        }
    }

    fn unavailable(&self) -> JwtError {
        let state = self
            .inner
            .refresh
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match &state.last_error {
            Some(error) => error.clone(),
            None => JwtError::KeysUnavailable(KeySourceError::new(
                "the key set has not been fetched yet",
            )),
        }
    }

    /// Joins the fetch in progress, or starts one if the rate limit allows.
    fn fetch_if_allowed(&self, now: UnixTime, force: bool) -> Option<SharedFetch> {
        let mut state = self
            .inner
            .refresh
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(fetch) = &state.in_flight {
            return Some(fetch.clone());
        }
        let interval = self.inner.config.min_refresh_interval.as_secs();
        if !force
            && let Some(last) = state.last_attempt
            && now < last.saturating_add(interval)
        {
            return None;
        }
        state.last_attempt = Some(now);
        let inner = Arc::clone(&self.inner);
        let fetch: Pin<Box<dyn Future<Output = FetchResult> + Send>> =
            Box::pin(async move { inner.fetch_and_install().await });
        let fetch = fetch.shared();
        state.in_flight = Some(fetch.clone());
        Some(fetch)
    }
}

impl<S: KeySource> Inner<S> {
    async fn fetch_and_install(&self) -> FetchResult {
        let fetched = self.source.fetch_keys().await;
        let now = self.clock.now();
        let outcome = fetched.map_err(JwtError::KeysUnavailable).and_then(|doc| {
            Ok((
                Arc::new(KeySet::from_jwks_json(&doc.jwks_json)?),
                doc.max_age,
            ))
        });
        match outcome {
            Ok((keys, max_age)) => {
                let fresh_until = now.saturating_add(self.config.freshness(max_age));
                tracing::debug!(keys = keys.len(), fresh_until, "installed a new JWKS");
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(Snapshot {
                    keys: Arc::clone(&keys),
                    fresh_until,
                });
                let mut state = self.refresh.lock().unwrap_or_else(PoisonError::into_inner);
                state.in_flight = None;
                state.last_error = None;
                Ok(keys)
            }
            Err(error) => {
                tracing::warn!(%error, "JWKS refresh failed; keeping the last good key set, if any");
                let mut state = self.refresh.lock().unwrap_or_else(PoisonError::into_inner);
                state.in_flight = None;
                state.last_error = Some(error.clone());
                Err(error)
            }
        }
    }
}
