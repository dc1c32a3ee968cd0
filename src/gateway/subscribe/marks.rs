//! Marks on resource URIs whose upstream (un)subscription is on its way: what arrives for the
//! URI meanwhile finds the mark and waits on it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::sync::watch;

/// URI → the mark on it, as a receiver of its state.
pub(in crate::gateway) struct Marks<T>(Arc<Mutex<HashMap<String, watch::Receiver<T>>>>);

impl<T> Default for Marks<T> {
    fn default() -> Self {
        Self(Arc::default())
    }
}

impl<T> Marks<T> {
    /// Marks `uri`, in state `state`, until the mark is dropped.
    pub fn mark(&self, uri: &str, state: T) -> Mark<T> {
        let (sender, receiver) = watch::channel(state);
        crate::sync::lock(&self.0).insert(uri.to_owned(), receiver);
        Mark {
            marks: Self(self.0.clone()),
            uri: uri.to_owned(),
            sender,
        }
    }

    /// The mark on `uri`, if there is one.
    pub fn get(&self, uri: &str) -> Option<watch::Receiver<T>> {
        crate::sync::lock(&self.0).get(uri).cloned()
    }
}

/// A mark on a URI; its receivers hear what it is told, and that it is gone when dropped.
pub(in crate::gateway) struct Mark<T> {
    marks: Marks<T>,
    pub uri: String,
    pub sender: watch::Sender<T>,
}

impl<T> Mark<T> {
    /// Takes the mark off its URI (a new one put on since stays).
    pub fn unmark(&self) {
        let mut marks = crate::sync::lock(&self.marks.0);
        if marks
            .get(&self.uri)
            .is_some_and(|mark| mark.same_channel(&self.sender.subscribe()))
        {
            marks.remove(&self.uri);
        }
    }
}

impl<T> Drop for Mark<T> {
    fn drop(&mut self) {
        self.unmark();
    }
}
