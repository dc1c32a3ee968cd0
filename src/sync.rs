//! Locking that survives a panic elsewhere.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, poisoned or not. Poisoning only says that some thread panicked while it
/// held the lock; every value the gateway guards is changed in whole steps (an insert, a
/// swap, an assignment), so it is still valid, and refusing it would turn one panic into a
/// gateway that can no longer serve.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}
