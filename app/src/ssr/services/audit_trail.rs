//! Reading the audit log: Executives everything, Sales Managers their team's events (by them,
//! or about their team's customers), Reps nothing; verification and export.

use std::sync::Arc;

use crate::domain::{
    model::{AuditEvent, Page},
    permissions::{self, Action, Scope},
};

use super::super::{
    audit::{AuditFilter, AuditLog, VerifyReport},
    auth::Actor,
    error::ServiceError,
};

/// Exports hold at most this many events (narrow the filter for more).
pub const EXPORT_LIMIT: usize = 100_000;

#[derive(Clone)]
pub struct AuditService {
    log: Arc<AuditLog>,
}

impl AuditService {
    pub fn new(log: Arc<AuditLog>) -> Self {
        AuditService { log }
    }

    fn scoped(&self, actor: &Actor, mut filter: AuditFilter) -> Result<AuditFilter, ServiceError> {
        actor.require(Action::ReadAudit)?;
        if permissions::audit_scope(actor.role()) != Scope::All {
            filter.people = actor.visible_owners();
        }
        Ok(filter)
    }

    pub async fn list(
        &self,
        actor: &Actor,
        filter: AuditFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<AuditEvent>, ServiceError> {
        let filter = self.scoped(actor, filter)?;
        self.log.list(&filter, limit, cursor).await
    }

    /// Recomputes the whole chain: an Executive's check (it covers everyone's events).
    pub async fn verify(&self, actor: &Actor) -> Result<VerifyReport, ServiceError> {
        actor.require(Action::ReadAudit)?;
        if permissions::audit_scope(actor.role()) != Scope::All {
            return Err(ServiceError::Forbidden("only an Executive verifies the whole audit log".into()));
        }
        self.log.verify().await
    }

    /// Every matching event, newest first.
    pub async fn export(&self, actor: &Actor, filter: AuditFilter) -> Result<Vec<AuditEvent>, ServiceError> {
        let filter = self.scoped(actor, filter)?;
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self.log.list(&filter, 1000, cursor.as_deref()).await?;
            out.extend(page.items);
            if out.len() >= EXPORT_LIMIT {
                out.truncate(EXPORT_LIMIT);
                return Ok(out);
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(out),
            }
        }
    }
}

/// One CSV field: quoted when needed, and a leading `= + - @` defused so a spreadsheet does not
/// run it as a formula.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) { format!("'{s}") } else { s.to_string() };
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
}

pub fn to_csv(events: &[AuditEvent]) -> String {
    let mut out = String::from(
        "seq,at,actor_email,actor_role,source_ip,action,target,outcome,details,prev_hash,hash\n",
    );
    for e in events {
        let row = [
            e.seq.to_string(),
            e.at.to_string(),
            e.actor_email.clone().unwrap_or_default(),
            e.actor_role.map(|r| r.as_str().to_string()).unwrap_or_default(),
            e.source_ip.clone().unwrap_or_default(),
            e.action.clone(),
            e.target.clone(),
            e.outcome.clone(),
            e.details.to_string(),
            e.prev_hash.clone(),
            e.hash.clone(),
        ];
        out.push_str(&row.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(csv_field("-1"), "'-1");
    }
}
