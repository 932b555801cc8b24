//! The handle on the replicated state (`senatus_replica::State`) that the
//! state machine applies to and the gate, the voter and the API read.

use std::sync::{Arc, Mutex};

use senatus_replica::amend::AmendState;
use senatus_replica::{Records, State};

/// The state machine's handle on the replicated state: shared with the
/// gate, the voter and the API, replaced whole on snapshot install. Most
/// readers want the amendment state ([`StateHandle::with`]).
#[derive(Debug, Clone, Default)]
pub struct StateHandle(Arc<Mutex<Option<State>>>);

impl StateHandle {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<State>> {
        // Apply changes the state only after every check passed, so a
        // panic elsewhere while the lock was held leaves nothing half done.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` on the amendment state, if the store tallies amendments.
    pub fn with<T>(&self, f: impl FnOnce(&mut AmendState) -> T) -> Option<T> {
        self.lock().as_mut().and_then(State::amend_mut).map(f)
    }

    /// Runs `f` on the whole replicated state, once it is loaded.
    pub fn with_state<T>(&self, f: impl FnOnce(&State) -> T) -> Option<T> {
        self.lock().as_ref().map(f)
    }

    /// Installs (or replaces) the state.
    pub fn set(&self, s: State) {
        *self.lock() = Some(s);
    }

    /// Whether a state is loaded.
    pub fn is_loaded(&self) -> bool {
        self.lock().is_some()
    }

    /// The ledger head the state is at.
    pub fn head(&self) -> Option<senatus_replica::LedgerHead> {
        self.lock().as_ref().map(State::head)
    }

    /// Runs the replicated core's `apply` on the loaded state.
    ///
    /// # Panics
    /// If no state is loaded (the store loads one before applying).
    pub fn apply<R: Records>(
        &self,
        records: &R,
        command: &senatus_replica::Command,
    ) -> Result<senatus_replica::Effects, senatus_replica::ApplyError<R::Error>> {
        self.lock()
            .as_mut()
            .expect("the store loads the replicated state before it applies")
            .apply(records, command)
    }
}
