//! A store that fails transiently on command: every writing call may, at a seeded rate,
//! return [`StoreError::Transient`] *before* touching the inner store, as a database
//! would on a lost connection or a lock timeout. Nothing changes when it fails, so the
//! engine's retry paths are exercised without the store itself lying.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use smsim_core::domain::{Campaign, Tenant};
use smsim_core::store::{Store, StoreError, StoreResult};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A store wrapper injecting transient failures.
pub struct FaultyStore<S: ?Sized> {
    inner: Arc<S>,
    rate_millionths: AtomicU64,
    rng: Mutex<ChaCha8Rng>,
    failures: AtomicU64,
}

impl<S: Store + ?Sized> FaultyStore<S> {
    /// Wraps `inner`, failing writing calls with probability `rate`, drawn from `seed`.
    pub fn new(inner: Arc<S>, rate: f64, seed: u64) -> Self {
        FaultyStore {
            inner,
            rate_millionths: AtomicU64::new((rate.clamp(0.0, 1.0) * 1e6) as u64),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
            failures: AtomicU64::new(0),
        }
    }

    /// Stops failing (the heal phase).
    pub fn heal(&self) {
        self.rate_millionths.store(0, Ordering::SeqCst);
    }

    /// Failures injected so far.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::SeqCst)
    }

    fn maybe_fail(&self, call: &str) -> StoreResult<()> {
        let rate = self.rate_millionths.load(Ordering::SeqCst);
        if rate == 0 {
            return Ok(());
        }
        let fail = self.rng.lock().expect("fault rng poisoned").random_range(0..1_000_000) < rate;
        if fail {
            self.failures.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::Transient(format!("injected failure of {call}")));
        }
        Ok(())
    }
}

/// Reading calls go through as they are, writing calls through `maybe_fail` first.
macro_rules! faulty {
    ($($access:ident $name:ident($($arg:ident: $ty:ty),*) -> $answer:ty;)*) => {
        impl<S: Store + ?Sized> Store for FaultyStore<S> {
            $(faulty!(@one $access $name($($arg: $ty),*) -> $answer);)*
        }
    };
    (@one read $name:ident($($arg:ident: $ty:ty),*) -> $answer:ty) => {
        fn $name(&self, $($arg: $ty),*) -> StoreResult<$answer> {
            self.inner.$name($($arg),*)
        }
    };
    (@one write $name:ident($($arg:ident: $ty:ty),*) -> $answer:ty) => {
        fn $name(&self, $($arg: $ty),*) -> StoreResult<$answer> {
            self.maybe_fail(stringify!($name))?;
            self.inner.$name($($arg),*)
        }
    };
}

smsim_core::store_methods!(faulty);

/// A store whose *answers* are tampered with, so tests can show the oracle catches an
/// engine that reports wrong numbers. The inner store stays correct.
pub struct TamperedStore<S> {
    inner: Arc<S>,
    campaigns: fn(&mut Campaign),
    tenants: fn(&mut Tenant),
}

impl<S: Store> TamperedStore<S> {
    /// Wraps `inner`, passing every campaign and tenant it returns through the functions.
    pub fn new(inner: Arc<S>, campaigns: fn(&mut Campaign), tenants: fn(&mut Tenant)) -> Self {
        TamperedStore { inner, campaigns, tenants }
    }
}

/// Every call goes through; the tenants and campaigns a listing or a tenant read returns
/// pass through the tampering functions first.
macro_rules! tampered {
    ($($access:ident $name:ident($($arg:ident: $ty:ty),*) -> $answer:ty;)*) => {
        impl<S: Store> Store for TamperedStore<S> {
            $(tampered!(@one $name($($arg: $ty),*) -> $answer);)*
        }
    };
    (@one tenant($($arg:ident: $ty:ty),*) -> $answer:ty) => {
        fn tenant(&self, $($arg: $ty),*) -> StoreResult<$answer> {
            let mut tenant = self.inner.tenant($($arg),*)?;
            (self.tenants)(&mut tenant);
            Ok(tenant)
        }
    };
    (@one tenants() -> $answer:ty) => {
        fn tenants(&self) -> StoreResult<$answer> {
            let mut tenants = self.inner.tenants()?;
            tenants.iter_mut().for_each(self.tenants);
            Ok(tenants)
        }
    };
    (@one all_campaigns() -> $answer:ty) => {
        fn all_campaigns(&self) -> StoreResult<$answer> {
            let mut campaigns = self.inner.all_campaigns()?;
            campaigns.iter_mut().for_each(self.campaigns);
            Ok(campaigns)
        }
    };
    (@one $name:ident($($arg:ident: $ty:ty),*) -> $answer:ty) => {
        fn $name(&self, $($arg: $ty),*) -> StoreResult<$answer> {
            self.inner.$name($($arg),*)
        }
    };
}

smsim_core::store_methods!(tampered);
