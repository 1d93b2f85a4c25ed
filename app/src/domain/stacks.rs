//! CloudFormation naming and the reading of stack states and events: pure rules the engine
//! follows and the pages explain, tested here against event sequences in the shape AWS writes
//! them (`app/tests/fixtures/stack-events/`).

use serde::{Deserialize, Serialize};

use super::{
    ids::Id,
    model::{Color, EnvironmentName, FailureCause},
    time::Timestamp,
};

/// `nexus-<capability>-<customer slug>-<environment>` (PRODUCT.md §4), with `-blue`/`-green` for
/// blue-green stacks: unique per account because the slug is unique and one deployment exists
/// per capability and environment.
pub fn stack_name(
    capability: &str,
    customer_slug: &str,
    env: EnvironmentName,
    color: Option<Color>,
) -> String {
    let base = format!("nexus-{capability}-{customer_slug}-{}", env.as_str());
    match color {
        None => base,
        Some(Color::Blue) => format!("{base}-blue"),
        Some(Color::Green) => format!("{base}-green"),
    }
}

/// The same stack in `color`: a blue-green change builds the other colour's stack, named like the
/// running one with its colour suffix replaced (or added, for a stack that had none).
pub fn colour_stack_name(stack_name: &str, color: Color) -> String {
    let base = stack_name.strip_suffix("-blue").or_else(|| stack_name.strip_suffix("-green"));
    format!("{}-{}", base.unwrap_or(stack_name), color.as_str())
}

/// The change set of an operation: one name per operation, so a retried create finds the one
/// it made instead of making a second.
pub fn change_set_name(op: &Id) -> String {
    format!("nexus-{op}")
}

/// The steps an operation makes idempotent with a CloudFormation token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenStep {
    CreateChangeSet,
    Execute,
    Delete,
    /// A blue-green stack's creation or removal (`color` keeps them apart).
    Stack(Color),
    DeleteStack(Color),
}

/// CloudFormation's idempotency token for `step` of operation `op`. Tokens must start with a
/// letter (ULIDs may start with a digit) and stay within 128 characters.
pub fn client_token(op: &Id, step: TokenStep) -> String {
    let suffix = match step {
        TokenStep::CreateChangeSet => "cs",
        TokenStep::Execute => "exec",
        TokenStep::Delete => "del",
        TokenStep::Stack(Color::Blue) => "blue",
        TokenStep::Stack(Color::Green) => "green",
        TokenStep::DeleteStack(Color::Blue) => "del-blue",
        TokenStep::DeleteStack(Color::Green) => "del-green",
    };
    format!("n{op}-{suffix}")
}

/// One stack event, as the API stores and streams it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct StackEvent {
    pub event_id: String,
    pub timestamp: Timestamp,
    pub logical_id: String,
    pub resource_type: String,
    /// `CREATE_IN_PROGRESS`, `CREATE_FAILED` …
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
    /// The token of the call that caused it: ties the event to one operation.
    #[serde(default)]
    pub client_request_token: Option<String>,
}

/// What a stack status means for the operation following it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StackPhase {
    InProgress,
    /// The change went through.
    Complete,
    /// The change failed and CloudFormation put the stack back (or removed a new one).
    RolledBack,
    /// The change failed and the stack is stuck in a failed state.
    Failed,
    /// The stack is gone.
    Deleted,
}

/// The phase of a stack status (`REVIEW_IN_PROGRESS`: a change set exists, nothing executed).
pub fn stack_phase(status: &str) -> StackPhase {
    match status {
        "DELETE_COMPLETE" => StackPhase::Deleted,
        "ROLLBACK_COMPLETE" | "UPDATE_ROLLBACK_COMPLETE" | "IMPORT_ROLLBACK_COMPLETE" => {
            StackPhase::RolledBack
        }
        s if s.ends_with("_IN_PROGRESS") => StackPhase::InProgress,
        s if s.ends_with("_FAILED") => StackPhase::Failed,
        s if s.ends_with("_COMPLETE") => StackPhase::Complete,
        _ => StackPhase::Failed,
    }
}

/// Reasons CloudFormation writes on resources it stopped because another one failed: they
/// are consequences, never the cause.
fn is_consequence(reason: &str) -> bool {
    let r = reason.to_ascii_lowercase();
    r.contains("resource creation cancelled")
        || r.contains("resource update cancelled")
        || r.contains("resource deletion cancelled")
        || r.starts_with("the following resource(s) failed")
}

/// Which resource failed and why: the earliest `*_FAILED` event of the operation that is not a
/// cancellation caused by another failure. `events` in any order; only those carrying `token`
/// (when given) count, so an older failure on the same stack is never blamed.
pub fn failure_cause(events: &[StackEvent], token: Option<&str>, final_status: Option<&str>) -> FailureCause {
    let mut own: Vec<&StackEvent> = events
        .iter()
        .filter(|e| token.is_none_or(|t| e.client_request_token.as_deref().is_none_or(|c| c == t)))
        .collect();
    own.sort_by(|a, b| a.timestamp.cmp(&b.timestamp).then_with(|| a.event_id.cmp(&b.event_id)));
    let failed = |e: &&&StackEvent| e.status.ends_with("_FAILED");
    let resource_cause = own.iter().filter(failed).find(|e| {
        e.resource_type != "AWS::CloudFormation::Stack" && !e.reason.as_deref().is_some_and(is_consequence)
    });
    let cause = resource_cause
        .or_else(|| own.iter().filter(failed).find(|e| !e.reason.as_deref().is_some_and(is_consequence)))
        .or_else(|| own.iter().find(failed));
    match cause {
        Some(e) => FailureCause {
            logical_id: Some(e.logical_id.clone()),
            resource_type: Some(e.resource_type.clone()),
            reason: e.reason.clone().filter(|r| !r.is_empty()).unwrap_or_else(|| e.status.clone()),
            stack_status: final_status.map(str::to_string),
        },
        None => FailureCause {
            logical_id: None,
            resource_type: None,
            reason: match final_status {
                Some(s) => format!("the stack ended in {s} without a failed resource event"),
                None => "the stack change failed".into(),
            },
            stack_status: final_status.map(str::to_string),
        },
    }
}

/// One reading of a stack name: capability, customer slug, environment, colour.
pub type StackNameParts = (String, String, EnvironmentName, Option<Color>);

/// What a stack name may say, read back: capability and customer slug both hold hyphens, so
/// `nexus-crm-sync-labs-dev` is `crm` at `sync-labs` or `crm-sync` at `labs` — every split is
/// given (the store knows which customer and deployment are real). Empty for a name the toolkit
/// did not make.
pub fn parse_stack_name(name: &str) -> Vec<StackNameParts> {
    let Some(rest) = name.strip_prefix("nexus-") else { return Vec::new() };
    let (rest, color) = match (rest.strip_suffix("-blue"), rest.strip_suffix("-green")) {
        (Some(r), _) => (r, Some(Color::Blue)),
        (_, Some(r)) => (r, Some(Color::Green)),
        _ => (rest, None),
    };
    let Some((rest, env)) = EnvironmentName::ALL
        .into_iter()
        .find_map(|e| rest.strip_suffix(e.as_str()).and_then(|r| r.strip_suffix('-')).map(|r| (r, e)))
    else {
        return Vec::new();
    };
    rest.match_indices('-')
        .map(|(i, _)| (&rest[..i], &rest[i + 1..]))
        .filter(|(capability, slug)| !capability.is_empty() && !slug.is_empty())
        .map(|(capability, slug)| (capability.to_string(), slug.to_string(), env, color))
        .collect()
}

/// An AWS error message fit to show users: every ARN but `keep` (the environment's own role)
/// replaced, so a refused AssumeRole does not show the toolkit's own role (AWS names the caller:
/// "User: arn:aws:sts::<toolkit account>:assumed-role/<task role>/… is not authorized …").
pub fn without_foreign_arns(message: &str, keep: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find("arn:") {
        out.push_str(&rest[..at]);
        let arn = &rest[at..];
        let len = arn.find(|c: char| c.is_whitespace() || "\"'`,;()<>".contains(c)).unwrap_or(arn.len());
        let (token, after) = arn.split_at(len);
        let trimmed = token.trim_end_matches(['.', ':']);
        if trimmed == keep {
            out.push_str(token);
        } else {
            out.push_str("(a toolkit ARN)");
            out.push_str(&token[trimmed.len()..]);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn messages_shown_to_users_name_no_toolkit_arn() {
        let role = "arn:aws:iam::210000000001:role/NexusDeploymentRole";
        let message = format!(
            "User: arn:aws:sts::999999999999:assumed-role/nexus-toolkit-prod-task/abc is not authorized to perform: sts:AssumeRole on resource: {role}."
        );
        let shown = without_foreign_arns(&message, role);
        assert!(!shown.contains("999999999999") && !shown.contains("nexus-toolkit-prod-task"), "{shown}");
        assert!(shown.contains(&format!("{role}.")), "{shown}");
        assert_eq!(without_foreign_arns("no arn here", role), "no arn here");
        assert_eq!(without_foreign_arns("(arn:aws:iam::1:role/x)", role), "((a toolkit ARN))");
    }

    use super::*;

    #[test]
    fn the_other_colour_is_the_same_stack_with_its_suffix() {
        let blue = stack_name("crm", "acme", EnvironmentName::Prod, Some(Color::Blue));
        let green = colour_stack_name(&blue, Color::Green);
        assert_eq!(green, stack_name("crm", "acme", EnvironmentName::Prod, Some(Color::Green)));
        assert_eq!(colour_stack_name(&green, Color::Blue), blue);
        let plain = stack_name("crm", "acme", EnvironmentName::Prod, None);
        assert_eq!(colour_stack_name(&plain, Color::Green), green, "a stack without a colour gets one");
    }

    #[test]
    fn stack_names_read_back_into_every_possible_split() {
        let parts = |c: &str, s: &str, e, k| (c.to_string(), s.to_string(), e, k);
        let name = stack_name("lead-scoring", "acme", EnvironmentName::Prod, None);
        assert_eq!(
            parse_stack_name(&name),
            [
                parts("lead", "scoring-acme", EnvironmentName::Prod, None),
                parts("lead-scoring", "acme", EnvironmentName::Prod, None)
            ]
        );
        let name = stack_name("crm", "delta", EnvironmentName::Staging, Some(Color::Green));
        assert_eq!(
            parse_stack_name(&name),
            [parts("crm", "delta", EnvironmentName::Staging, Some(Color::Green))]
        );
        let name = stack_name("crm", "x", EnvironmentName::Dev, Some(Color::Blue));
        assert_eq!(parse_stack_name(&name), [parts("crm", "x", EnvironmentName::Dev, Some(Color::Blue))]);
        assert!(parse_stack_name("other-stack-dev").is_empty());
        assert!(parse_stack_name("nexus-lead-acme").is_empty(), "no environment");
        assert!(parse_stack_name("nexus-acme-dev").is_empty(), "one word: no split");
        assert!(parse_stack_name("nexus-a--dev").is_empty(), "an empty slug");
    }

    /// The fixtures hold events as DescribeStackEvents returns them (newest first).
    #[derive(Deserialize)]
    struct Fixture {
        #[serde(rename = "StackEvents")]
        events: Vec<AwsEvent>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct AwsEvent {
        event_id: String,
        timestamp: String,
        logical_resource_id: String,
        resource_type: String,
        resource_status: String,
        resource_status_reason: Option<String>,
        client_request_token: Option<String>,
    }

    fn load(json: &str) -> Vec<StackEvent> {
        let f: Fixture = serde_json::from_str(json).expect("fixture parses");
        f.events
            .into_iter()
            .map(|e| StackEvent {
                event_id: e.event_id,
                timestamp: Timestamp::parse(&e.timestamp).expect("fixture timestamp"),
                logical_id: e.logical_resource_id,
                resource_type: e.resource_type,
                status: e.resource_status,
                reason: e.resource_status_reason,
                client_request_token: e.client_request_token,
            })
            .collect()
    }

    #[test]
    fn names_follow_the_product_rule() {
        assert_eq!(
            stack_name("lead-scoring", "acme", EnvironmentName::Prod, None),
            "nexus-lead-scoring-acme-prod"
        );
        assert_eq!(
            stack_name("customer-360", "acme", EnvironmentName::Dev, Some(Color::Green)),
            "nexus-customer-360-acme-dev-green"
        );
    }

    #[test]
    fn tokens_start_with_a_letter_and_differ_per_step() {
        let id = Id::parse("01JDQ8ZK3M6V2C0N7R5T9W4XYA").unwrap();
        let steps = [
            TokenStep::CreateChangeSet,
            TokenStep::Execute,
            TokenStep::Delete,
            TokenStep::Stack(Color::Blue),
            TokenStep::Stack(Color::Green),
            TokenStep::DeleteStack(Color::Blue),
            TokenStep::DeleteStack(Color::Green),
        ];
        let tokens: std::collections::HashSet<String> = steps.iter().map(|s| client_token(&id, *s)).collect();
        assert_eq!(tokens.len(), steps.len());
        for t in &tokens {
            assert!(t.starts_with(|c: char| c.is_ascii_alphabetic()) && t.len() <= 128, "{t}");
            assert!(t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'), "{t}");
        }
        assert_eq!(client_token(&id, TokenStep::Execute), client_token(&id, TokenStep::Execute));
        assert!(change_set_name(&id).starts_with("nexus-"));
    }

    #[test]
    fn phases_of_every_kind_of_status() {
        use StackPhase::*;
        for (s, p) in [
            ("CREATE_COMPLETE", Complete),
            ("UPDATE_COMPLETE", Complete),
            ("CREATE_IN_PROGRESS", InProgress),
            ("REVIEW_IN_PROGRESS", InProgress),
            ("UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS", InProgress),
            ("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", InProgress),
            ("ROLLBACK_COMPLETE", RolledBack),
            ("UPDATE_ROLLBACK_COMPLETE", RolledBack),
            ("CREATE_FAILED", Failed),
            ("ROLLBACK_FAILED", Failed),
            ("UPDATE_ROLLBACK_FAILED", Failed),
            ("DELETE_FAILED", Failed),
            ("DELETE_COMPLETE", Deleted),
            ("SOMETHING_NEW", Failed),
        ] {
            assert_eq!(stack_phase(s), p, "{s}");
        }
    }

    #[test]
    fn a_taken_bucket_name_is_blamed_on_the_bucket() {
        let events = load(include_str!("../../tests/fixtures/stack-events/create-bucket-exists.json"));
        let cause =
            failure_cause(&events, Some("n01JDQ8ZK3M6V2C0N7R5T9W4XYA-exec"), Some("ROLLBACK_COMPLETE"));
        assert_eq!(cause.logical_id.as_deref(), Some("ModelBucket"));
        assert_eq!(cause.resource_type.as_deref(), Some("AWS::S3::Bucket"));
        assert!(cause.reason.contains("already exists"), "{}", cause.reason);
        assert_eq!(cause.stack_status.as_deref(), Some("ROLLBACK_COMPLETE"));
    }

    #[test]
    fn an_update_failure_skips_the_cancelled_resources() {
        // The IAM role failed first; the queue and the table were cancelled because of it.
        let events = load(include_str!("../../tests/fixtures/stack-events/update-rollback.json"));
        let cause =
            failure_cause(&events, Some("n01JDQA0000000000000000001-exec"), Some("UPDATE_ROLLBACK_COMPLETE"));
        assert_eq!(cause.logical_id.as_deref(), Some("ScoringRole"));
        assert!(cause.reason.contains("not authorized to perform: iam:CreateRole"), "{}", cause.reason);
    }

    #[test]
    fn an_older_failure_on_the_stack_is_not_blamed() {
        // The same fixture, read as the next operation (another token): nothing of its own failed.
        let events = load(include_str!("../../tests/fixtures/stack-events/update-rollback.json"));
        let cause = failure_cause(&events, Some("n01JDQB9999999999999999999-exec"), Some("UPDATE_FAILED"));
        assert_eq!(cause.logical_id, None);
        assert!(cause.reason.contains("UPDATE_FAILED"), "{}", cause.reason);
    }

    #[test]
    fn a_progress_sequence_ends_complete_with_no_failure() {
        let events = load(include_str!("../../tests/fixtures/stack-events/create-progress.json"));
        let newest = events.iter().max_by_key(|e| e.timestamp).unwrap();
        assert_eq!(newest.resource_type, "AWS::CloudFormation::Stack");
        assert_eq!(stack_phase(&newest.status), StackPhase::Complete);
        assert!(events.iter().any(|e| stack_phase(&e.status) == StackPhase::InProgress));
        assert!(events.iter().all(|e| !e.status.ends_with("_FAILED")));
    }
}
