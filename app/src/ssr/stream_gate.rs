//! How many live event streams each user holds open: at most [`MAX_STREAMS_PER_USER`], so one
//! session cannot hold the server's connections and store reads (`http::event_stream`).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use crate::{domain::ids::Id, ssr::error::ServiceError};

/// The most live streams one user may hold open at once.
pub const MAX_STREAMS_PER_USER: usize = 10;

/// Counts each user's open streams. In memory, per process: behind several replicas a user may
/// hold this many per replica (the cap bounds the cost of one session, not the fleet's).
#[derive(Default)]
pub struct StreamGate {
    open: Mutex<HashMap<Id, usize>>,
}

/// One open stream; dropping it (the stream ended or the client went away) frees the place.
pub struct StreamPermit {
    gate: Arc<StreamGate>,
    user: Id,
}

impl StreamGate {
    /// A place for one more of `user`'s streams, or `TooManyStreams` (429).
    pub fn open(self: &Arc<Self>, user: &Id) -> Result<StreamPermit, ServiceError> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(user.clone()).or_default();
        if *count >= MAX_STREAMS_PER_USER {
            return Err(ServiceError::TooManyStreams { max: MAX_STREAMS_PER_USER });
        }
        *count += 1;
        Ok(StreamPermit { gate: self.clone(), user: user.clone() })
    }

    /// How many streams `user` holds open now.
    pub fn open_for(&self, user: &Id) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).get(user).copied().unwrap_or(0)
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = self.gate.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_per_user_and_a_dropped_permit_frees_its_place() {
        let gate = Arc::new(StreamGate::default());
        let (a, b) = (Id::from_parts(1, 1), Id::from_parts(1, 2));
        let mut held: Vec<_> = (0..MAX_STREAMS_PER_USER).map(|_| gate.open(&a).unwrap()).collect();
        assert!(matches!(gate.open(&a), Err(ServiceError::TooManyStreams { max: 10 })));
        let other = gate.open(&b).expect("another user is not affected");
        held.pop();
        assert_eq!(gate.open_for(&a), MAX_STREAMS_PER_USER - 1);
        let again = gate.open(&a).unwrap();
        drop((held, again, other));
        assert_eq!((gate.open_for(&a), gate.open_for(&b)), (0, 0));
        assert!(gate.open.lock().unwrap().is_empty(), "no entry left behind");
    }
}
