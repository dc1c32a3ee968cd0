//! Locking that survives a panic elsewhere: the one way the gateway takes a std lock.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Locks `mutex`, poisoned or not. Poisoning only says that some thread panicked while it
/// held the lock; every value the gateway guards is changed in whole steps (an insert, a
/// swap, an assignment), so it is still valid, and refusing it would turn one panic into a
/// gateway that can no longer serve.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// Reads `rwlock`, poisoned or not (see [`lock`]).
pub fn read<T>(rwlock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    rwlock.read().unwrap_or_else(|poison| poison.into_inner())
}

/// Writes `rwlock`, poisoned or not (see [`lock`]).
pub fn write<T>(rwlock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    rwlock.write().unwrap_or_else(|poison| poison.into_inner())
}
