//! The live event stream of one operation (server-sent events), and the limits that keep a
//! stream from outliving the session that opened it.
//!
//! A stream is one long request: the session check at its start is not enough, since a user
//! signed out, deactivated or given another role would go on receiving events. So every few
//! seconds the stream checks the session again ([`AuthService::recheck`]) and ends itself when
//! it no longer stands; it also ends after `NEXUS_EVENT_STREAM_MAX_SECONDS` whatever happens,
//! and a user holds at most [`MAX_STREAMS_PER_USER`](crate::ssr::stream_gate::MAX_STREAMS_PER_USER)
//! at once (per server process: `ssr::stream_gate`).
//!
//! Stack events carry their position as the SSE `id`, so a browser that reconnects (after the
//! lifetime cap, or a network blip) sends `Last-Event-ID` and gets only what it has not seen.

use std::{
    convert::Infallible,
    time::{Duration, Instant},
};

use axum::response::sse::Event;
use futures::{Stream, StreamExt};

use crate::{
    domain::ids::Id,
    ssr::{auth::Actor, clock, state::AppState, stream_gate::StreamPermit},
};

/// How often an open stream checks that its session still stands.
const RECHECK_EVERY: Duration = Duration::from_secs(2);
/// How often it looks for new stack events and state changes.
const POLL_EVERY: Duration = Duration::from_millis(500);

/// Why the server ended a stream (the `end` event's `reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
enum EndReason {
    /// The operation is over (its last `operation` event says how).
    Finished,
    /// The session was signed out or expired, or the user deactivated or given another role.
    Session,
    /// Open for `NEXUS_EVENT_STREAM_MAX_SECONDS`: reconnect to go on.
    Lifetime,
}

/// Where one stream stands between two polls.
struct Follow {
    state: AppState,
    actor: Actor,
    id: Id,
    /// Stack events sent so far (also the last sent event's SSE id).
    sent: usize,
    /// The operation's revision and whether it was over, as last sent.
    last: Option<(u64, bool)>,
    opened: Instant,
    checked: Instant,
    ended: bool,
    _permit: StreamPermit,
}

/// The events of operation `id` as `actor` may see them, from the `resume_after`th stack event
/// on: `stack-event` for each new one, `operation` when its state changes, and `end` (with the
/// reason) as the last event.
pub fn follow_operation(
    state: AppState,
    actor: Actor,
    id: Id,
    resume_after: usize,
    permit: StreamPermit,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let now = Instant::now();
    let follow = Follow {
        state,
        actor,
        id,
        sent: resume_after,
        last: None,
        opened: now,
        checked: now,
        ended: false,
        _permit: permit,
    };
    futures::stream::unfold(follow, |mut f| async move {
        if f.ended {
            return None;
        }
        let out = f.next_batch().await;
        Some((futures::stream::iter(out.into_iter().map(Ok)), f))
    })
    .flatten()
}

impl Follow {
    /// Waits until there is something to send, and answers it.
    async fn next_batch(&mut self) -> Vec<Event> {
        let lifetime = self.state.config.event_stream_lifetime;
        loop {
            if self.opened.elapsed() >= lifetime {
                return vec![self.end(EndReason::Lifetime)];
            }
            if self.checked.elapsed() >= RECHECK_EVERY {
                self.checked = Instant::now();
                match self.state.auth.recheck(&self.actor, clock::now()).await {
                    Ok(actor) => self.actor = actor,
                    Err(e) => {
                        // Also on a store error: a stream that cannot check its session closes,
                        // and the browser's reconnect meets the full sign-in check.
                        tracing::info!(operation = %self.id, reason = %e, "ended a live event stream");
                        return vec![self.end(EndReason::Session)];
                    }
                }
            }
            let mut out = Vec::new();
            if let Ok(events) = self.state.operations.events(&self.actor, &self.id).await {
                for (i, e) in events.iter().enumerate().skip(self.sent) {
                    let event = Event::default().event("stack-event").id((i + 1).to_string());
                    out.push(event.json_data(e).unwrap_or_default());
                }
                self.sent = self.sent.max(events.len());
            }
            match self.state.deployments.operation(&self.actor, &self.id).await {
                Ok(op) => {
                    let now = (op.rev, op.state.is_terminal());
                    if self.last != Some(now) {
                        self.last = Some(now);
                        out.push(Event::default().event("operation").json_data(&op).unwrap_or_default());
                        if now.1 {
                            out.push(self.end(EndReason::Finished));
                        }
                    }
                }
                // Gone from the actor's scope (or the store): nothing more to follow.
                Err(_) => out.push(self.end(EndReason::Finished)),
            }
            if !out.is_empty() {
                return out;
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    fn end(&mut self, reason: EndReason) -> Event {
        self.ended = true;
        Event::default().event("end").json_data(serde_json::json!({ "reason": reason })).unwrap_or_default()
    }
}
