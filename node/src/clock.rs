//! Wall-clock milliseconds and the one way this crate takes a lock.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time in milliseconds (0 before 1970, `u64::MAX` past year 584
/// million).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Locks `m`, recovering a poisoned lock.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every guarded value stays consistent across a panic in a holder (each
    // update is a single call), so a poisoned lock is recovered.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
