//! When a second factor is needed: the roles that must have one (`NEXUS_MFA_REQUIRED_ROLES`),
//! and whether a session may do an action that needs a recent one (step-up). Pure rules, so the
//! server decides and the pages can say why.

use serde::{Deserialize, Serialize};

use super::{model::Role, time::Timestamp};

/// Reads `NEXUS_MFA_REQUIRED_ROLES`: role names separated by commas (`executive`,
/// `sales_manager`, `rep`), or `none`. An unknown name is an error (a typo must not turn the
/// requirement off).
pub fn parse_required_roles(text: &str) -> Result<Vec<Role>, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    let mut roles = Vec::new();
    for name in text.split(',').map(str::trim) {
        let role = [Role::Executive, Role::SalesManager, Role::Rep]
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                format!(
                    "unknown role `{name}`: expected executive, sales_manager, rep (comma-separated) or none"
                )
            })?;
        if !roles.contains(&role) {
            roles.push(role);
        }
    }
    Ok(roles)
}

/// What a session knows of its user's second factor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactorState {
    /// A sign-in with a password (single sign-on leaves factors to the identity provider).
    pub local: bool,
    /// The user's role must have a second factor (`NEXUS_MFA_REQUIRED_ROLES`).
    pub role_requires: bool,
    /// The role requires a factor the user did not have at sign-in: only enrolment is open.
    pub must_enrol: bool,
    /// When the session last proved a factor (sign-in, step-up, enrolment).
    pub proved_at: Option<Timestamp>,
    /// How recent a factor sensitive actions need (`NEXUS_MFA_STEP_UP_MINUTES`).
    pub window_ms: i64,
}

/// Whether a sensitive action may go ahead now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepUp {
    /// No factor needed, or one proved within the window.
    Fresh,
    /// A code is needed first (the API's `mfa_required`).
    CodeNeeded,
    /// A factor is needed but the user has none: enrol first (`mfa_enrolment_required`).
    EnrolFirst,
}

impl FactorState {
    /// Whether an action that needs a recent second factor (approving or running a prod change,
    /// publishing) may go ahead at `now`, for a user who has a factor or not. A local session
    /// needs one when the user has one or the role requires one; single sign-on never here.
    pub fn step_up(&self, has_factor: bool, now: Timestamp) -> StepUp {
        if !self.local || !(has_factor || self.role_requires) {
            return StepUp::Fresh;
        }
        if !has_factor {
            return StepUp::EnrolFirst;
        }
        match self.proved_at {
            Some(t) if now.millis() >= t.millis() && now.millis() - t.millis() <= self.window_ms => {
                StepUp::Fresh
            }
            _ => StepUp::CodeNeeded,
        }
    }
}

/// Paths a user who must enrol may still reach: their account page (where enrolment is), the
/// sign-in and sign-out, the factor's own calls, who they are, and the static files.
pub fn allowed_before_enrolment(path: &str) -> bool {
    const EXACT: [&str; 7] = [
        "/account",
        "/login",
        "/offline",
        "/api/v1/me",
        "/sfn/session",
        "/sfn/sign-out",
        "/sfn/sign-in-options",
    ];
    const PREFIXES: [&str; 4] = ["/api/v1/me/mfa", "/api/v1/auth/", "/sfn/mfa-", "/sfn/sign-in"];
    EXACT.contains(&path) || PREFIXES.iter().any(|p| path.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_roles_are_named_or_none() {
        assert_eq!(parse_required_roles("executive"), Ok(vec![Role::Executive]));
        assert_eq!(
            parse_required_roles(" Executive, sales_manager ,executive"),
            Ok(vec![Role::Executive, Role::SalesManager])
        );
        assert_eq!(parse_required_roles("none"), Ok(vec![]));
        assert_eq!(parse_required_roles("NONE"), Ok(vec![]));
        assert!(parse_required_roles("executives").unwrap_err().contains("`executives`"));
        assert!(parse_required_roles("").is_err(), "an empty value is a mistake, not `none`");
    }

    #[test]
    fn a_sensitive_action_needs_a_factor_proved_within_the_window() {
        let at = |s: i64| Timestamp::from_millis(s * 1000);
        let s = FactorState {
            local: true,
            role_requires: false,
            must_enrol: false,
            proved_at: Some(at(1000)),
            window_ms: 5 * 60 * 1000,
        };
        assert_eq!(s.step_up(true, at(1000)), StepUp::Fresh);
        assert_eq!(s.step_up(true, at(1300)), StepUp::Fresh, "exactly five minutes");
        assert_eq!(s.step_up(true, at(1301)), StepUp::CodeNeeded);
        assert_eq!(s.step_up(true, at(999)), StepUp::CodeNeeded, "a proof from the future is no proof");
        let never = FactorState { proved_at: None, ..s };
        assert_eq!(never.step_up(true, at(1000)), StepUp::CodeNeeded);
        // Without a factor: nothing to ask, unless the role requires one.
        assert_eq!(never.step_up(false, at(1000)), StepUp::Fresh);
        let required = FactorState { role_requires: true, ..never };
        assert_eq!(required.step_up(false, at(1000)), StepUp::EnrolFirst);
        assert_eq!(required.step_up(true, at(1000)), StepUp::CodeNeeded);
        // Single sign-on: the identity provider's business.
        let sso = FactorState { local: false, ..required };
        assert_eq!(sso.step_up(true, at(1000)), StepUp::Fresh);
        assert_eq!(sso.step_up(false, at(1000)), StepUp::Fresh);
    }

    #[test]
    fn before_enrolment_only_the_way_to_enrol_is_open() {
        for path in [
            "/account",
            "/login",
            "/api/v1/me",
            "/api/v1/me/mfa",
            "/api/v1/me/mfa/totp/confirm",
            "/api/v1/auth/logout",
            "/sfn/session",
            "/sfn/sign-out",
            "/sfn/mfa-totp-start",
            "/sfn/sign-in",
        ] {
            assert!(allowed_before_enrolment(path), "{path}");
        }
        for path in [
            "/",
            "/customers/01J",
            "/approvals",
            "/api/v1/customers",
            "/api/v1/me/notices",
            "/api/v1/users",
            "/sfn/dashboard",
            "/sfn/operation-action",
            "/accounts",
        ] {
            assert!(!allowed_before_enrolment(path), "{path}");
        }
    }
}
