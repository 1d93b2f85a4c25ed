//! The audit log page.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use super::AppError;
use crate::domain::model::{AuditEvent, Page};

pub const AUDIT_PAGE: usize = 50;

/// The page's filters, as its GET form sends them (empty fields are no filter).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditQuery {
    /// Events whose action starts with this (`auth.`, `operation.`).
    pub action: Option<String>,
    /// Events about exactly this target (`user/rep@demo.nexus`, `deployment/<id>`).
    pub target: Option<String>,
    /// Words found in who did it, the action, the target, the outcome or the source address.
    pub q: Option<String>,
    /// First and last day (`YYYY-MM-DD`, UTC), both included.
    pub from: Option<String>,
    pub to: Option<String>,
}

impl AuditQuery {
    fn field(v: &Option<String>) -> Option<&str> {
        v.as_deref().map(str::trim).filter(|v| !v.is_empty())
    }

    /// The same filters for `GET /api/v1/audit/export` (the days as an RFC 3339 range).
    pub fn export_query(&self) -> String {
        let day = |d: &Option<String>, next: bool| {
            Self::field(d).and_then(crate::domain::time::Timestamp::parse_day).map(|t| {
                let t =
                    if next { crate::domain::time::Timestamp::from_millis(t.millis() + DAY_MS) } else { t };
                t.to_string()
            })
        };
        let (from, to) = (day(&self.from, false), day(&self.to, true));
        let pairs: Vec<(&str, &str)> = [
            ("action", Self::field(&self.action)),
            ("target", Self::field(&self.target)),
            ("q", Self::field(&self.q)),
            ("from", from.as_deref()),
            ("to", to.as_deref()),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
        crate::url::query(&pairs)
    }
}

const DAY_MS: i64 = 86_400_000;

/// Newest first, filtered by [`AuditQuery`]; a day that is not a date is refused by name.
#[server(input = GetUrl, prefix = "/sfn", endpoint = "audit")]
pub async fn get_audit(query: AuditQuery, cursor: Option<String>) -> Result<Page<AuditEvent>, AppError> {
    use crate::domain::time::Timestamp;
    use crate::ssr::{audit::AuditFilter, error::ServiceError, http::sfn};
    let (state, actor) = (sfn::state(), sfn::actor()?);
    let day = |name: &str, v: &Option<String>| match AuditQuery::field(v) {
        None => Ok(None),
        Some(d) => Timestamp::parse_day(d).map(Some).ok_or_else(|| {
            sfn::fail(ServiceError::invalid(
                name,
                "invalid_date",
                format!("`{d}` is not a date (YYYY-MM-DD)"),
            ))
        }),
    };
    let filter = AuditFilter {
        action: AuditQuery::field(&query.action).map(str::to_string),
        target: AuditQuery::field(&query.target).map(str::to_string),
        search: AuditQuery::field(&query.q).map(str::to_string),
        from: day("from", &query.from)?,
        to: day("to", &query.to)?.map(|t| Timestamp::from_millis(t.millis() + DAY_MS)),
        ..AuditFilter::default()
    };
    state
        .audit_trail
        .list(&actor, filter, AUDIT_PAGE, cursor.as_deref().filter(|c| !c.is_empty()))
        .await
        .map_err(sfn::fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_export_link_carries_the_filters_with_days_as_a_range() {
        let q = AuditQuery {
            action: Some(" auth. ".into()),
            target: Some("user/rep@demo.nexus".into()),
            q: Some("rep denied".into()),
            from: Some("2026-11-01".into()),
            to: Some("2026-11-28".into()),
        };
        assert_eq!(
            q.export_query(),
            "action=auth.&target=user%2Frep%40demo.nexus&q=rep%20denied&from=2026-11-01T00%3A00%3A00.000Z&to=2026-11-29T00%3A00%3A00.000Z"
        );
        // Empty fields and a day that is not a date add nothing.
        let q =
            AuditQuery { action: Some("".into()), from: Some("2026-02-30".into()), ..AuditQuery::default() };
        assert_eq!(q.export_query(), "");
    }
}
