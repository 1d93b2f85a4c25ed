//! The customer role (`infra/customer-role.yaml`), read statement by statement: every limit the
//! design relies on is in the template. The emulator neither evaluates IAM policies nor keeps a
//! boundary on roles CloudFormation makes, so this (with cfn-lint) is what can be checked here;
//! on AWS, the IAM policy simulator checks enforcement (infra/README.md).

use app::{
    domain::model::{CUSTOMER_ROLE_VERSION, CUSTOMER_ROLE_VERSION_PARAMETER},
    ssr::catalog::parse_template,
};
use serde_json::{Value, json};

fn template() -> Value {
    let body =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/customer-role.yaml")).unwrap();
    parse_template(&body, false).unwrap()
}

/// A value or a list of values, as a list.
fn list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// Every statement of the deployment role's inline policies.
fn role_statements(t: &Value) -> Vec<Value> {
    list(&t["Resources"]["DeploymentRole"]["Properties"]["Policies"])
        .iter()
        .flat_map(|p| list(&p["PolicyDocument"]["Statement"]))
        .collect()
}

fn actions(statement: &Value) -> Vec<String> {
    list(&statement["Action"]).iter().filter_map(|a| a.as_str().map(str::to_string)).collect()
}

fn allows(t: &Value, action: &str) -> Vec<Value> {
    role_statements(t)
        .into_iter()
        .filter(|s| s["Effect"] == "Allow" && actions(s).iter().any(|a| a == action))
        .collect()
}

fn denies(t: &Value, action: &str) -> Vec<Value> {
    role_statements(t)
        .into_iter()
        .filter(|s| s["Effect"] == "Deny" && actions(s).iter().any(|a| a == action))
        .collect()
}

const BOUNDARY: &str = "NexusPermissionsBoundary";

#[test]
fn the_boundary_is_made_with_the_name_the_catalog_templates_use() {
    let t = template();
    let boundary = &t["Resources"]["PermissionsBoundary"];
    assert_eq!(boundary["Type"], "AWS::IAM::ManagedPolicy");
    assert_eq!(boundary["Properties"]["ManagedPolicyName"], BOUNDARY);
    assert!(boundary["Properties"].get("Path").is_none(), "the ARN the templates write has no path");
    // The publish rules demand exactly this ARN of every role (catalog/policy/capability.guard).
    let rules =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../catalog/policy/capability.guard"))
            .unwrap();
    assert!(rules.contains(&format!("'arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:policy/{BOUNDARY}'")));
}

#[test]
fn the_boundary_never_allows_identity_or_everything() {
    let t = template();
    let statements =
        list(&t["Resources"]["PermissionsBoundary"]["Properties"]["PolicyDocument"]["Statement"]);
    assert!(!statements.is_empty());
    for s in statements.iter().filter(|s| s["Effect"] == "Allow") {
        for a in actions(s) {
            assert!(
                a != "*" && !a.starts_with("iam:") && !a.starts_with("sts:") && !a.ends_with(":*"),
                "{s}"
            );
        }
        assert!(list(&s["Resource"]).iter().all(|r| r != "*"), "{s}");
    }
    let deny = statements.iter().find(|s| s["Effect"] == "Deny").expect("a deny statement");
    for a in ["iam:*", "sts:*"] {
        assert!(actions(deny).iter().any(|x| x == a), "{deny}");
    }
    assert_eq!(deny["Resource"], "*");
}

#[test]
fn roles_are_made_and_given_permissions_only_with_the_boundary() {
    let t = template();
    for action in ["iam:CreateRole", "iam:PutRolePolicy", "iam:PutRolePermissionsBoundary"] {
        let found = allows(&t, action);
        assert!(!found.is_empty(), "{action} is not allowed at all");
        for s in found {
            assert_eq!(
                s["Condition"]["StringEquals"]["iam:PermissionsBoundary"],
                json!({"Ref": "PermissionsBoundary"}),
                "{action} without the boundary condition: {s}"
            );
        }
    }
}

#[test]
fn nothing_widens_trust_attaches_policies_or_removes_the_boundary() {
    let t = template();
    for action in [
        "iam:UpdateAssumeRolePolicy",
        "iam:AttachRolePolicy",
        "iam:DeleteRolePermissionsBoundary",
        "iam:CreatePolicy",
        "iam:CreatePolicyVersion",
        "iam:SetDefaultPolicyVersion",
        "iam:CreateUser",
        "iam:PassRole*",
        "iam:*",
        "*",
    ] {
        assert!(allows(&t, action).is_empty(), "{action} is allowed");
    }
    let kept = denies(&t, "iam:DeleteRolePermissionsBoundary");
    assert!(kept.iter().any(|s| s["Resource"] == "*"), "{kept:?}");
    for action in [
        "iam:CreatePolicyVersion",
        "iam:DeletePolicy",
        "iam:DeletePolicyVersion",
        "iam:SetDefaultPolicyVersion",
    ] {
        let denied = denies(&t, action);
        assert!(
            denied.iter().any(|s| s["Resource"] == json!({"Ref": "PermissionsBoundary"})),
            "{action}: {denied:?}"
        );
    }
    // No IAM action is allowed beyond the toolkit's own nexus-* roles.
    for s in role_statements(&t).iter().filter(|s| s["Effect"] == "Allow") {
        if actions(s).iter().any(|a| a.starts_with("iam:")) {
            for r in list(&s["Resource"]) {
                let r = r["Fn::Sub"].as_str().unwrap_or_default().to_string();
                assert!(r.ends_with(":role/nexus-*"), "{s}");
            }
        }
    }
    // PassRole only to Lambda.
    for s in allows(&t, "iam:PassRole") {
        assert_eq!(s["Condition"]["StringEquals"]["iam:PassedToService"], "lambda.amazonaws.com", "{s}");
    }
}

#[test]
fn the_role_is_trusted_by_the_toolkit_with_the_external_id_only() {
    let t = template();
    let trust =
        list(&t["Resources"]["DeploymentRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]);
    assert_eq!(trust.len(), 1);
    assert_eq!(trust[0]["Principal"], json!({"AWS": {"Ref": "ToolkitTaskRoleArn"}}));
    assert_eq!(trust[0]["Condition"]["StringEquals"]["sts:ExternalId"], json!({"Ref": "ExternalId"}));
}

#[test]
fn the_role_says_its_version_and_may_list_stacks() {
    let t = template();
    let version = &t["Resources"]["RoleVersion"];
    assert_eq!(version["Type"], "AWS::SSM::Parameter");
    assert_eq!(version["Properties"]["Name"], CUSTOMER_ROLE_VERSION_PARAMETER);
    assert_eq!(version["Properties"]["Value"], CUSTOMER_ROLE_VERSION.to_string());
    assert_eq!(t["Outputs"]["RoleVersion"]["Value"], CUSTOMER_ROLE_VERSION.to_string());
    let read = allows(&t, "ssm:GetParameter");
    assert!(
        read.iter().any(|s| list(&s["Resource"])
            .iter()
            .any(|r| r["Fn::Sub"].as_str().is_some_and(|r| r.ends_with(":parameter/nexus-toolkit/*")))),
        "{read:?}"
    );
    assert_eq!(allows(&t, "cloudformation:ListStacks").len(), 1);
}
