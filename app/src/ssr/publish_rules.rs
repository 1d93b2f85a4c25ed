//! The policy a template must meet before it is published, beyond its structure
//! ([`super::catalog::parse_version`]): resource types from an allow-list, IAM roles that carry
//! the customer role's permissions boundary, no administrator-like grants, trust only in AWS
//! services or the account itself. The rules are AWS CloudFormation Guard rules in
//! `catalog/policy/capability.guard`, compiled into the server; this module is the one place
//! that talks to the `cfn-guard` crate (server build only: it never reaches the browser).

use serde_json::Value;

/// The rules, kept in the repository beside the catalog they judge.
const RULES: &str = include_str!("../../../catalog/policy/capability.guard");
const RULES_NAME: &str = "catalog/policy/capability.guard";

/// One broken rule: which resource (or `template` when the rule is about the whole), which rule,
/// and why, in the rule file's words.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Violation {
    pub resource: String,
    pub rule: String,
    pub why: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} (rule {})", self.resource, self.why, self.rule)
    }
}

/// Checks a template (as JSON, short forms written long). `Err` lists every violation, each once.
pub fn check(template: &Value) -> Result<(), Vec<Violation>> {
    let data = template.to_string();
    let unreadable = |why: String| vec![Violation { resource: "template".into(), rule: "guard".into(), why }];
    // The verbose record, not the summary: cfn-guard 3.2.1's summary is read from a `BufWriter`'s
    // unflushed buffer, so a report over 8 KiB comes back cut (seen with two failing roles).
    let record = cfn_guard::run_checks(
        cfn_guard::ValidateInput { content: &data, file_name: "template" },
        cfn_guard::ValidateInput { content: RULES, file_name: RULES_NAME },
        true,
    )
    // The rules are ours and tested: an error here is a bug, never the publisher's fault.
    .map_err(|e| unreadable(format!("the policy rules could not be evaluated: {e}")))?;
    let record: Value = serde_json::from_str(&record)
        .map_err(|e| unreadable(format!("the policy report could not be read: {e}")))?;
    let mut found = Vec::new();
    let file_failed = record["container"]["FileCheck"]["status"] == "FAIL";
    for rule in record["children"].as_array().into_iter().flatten() {
        let check = &rule["container"]["RuleCheck"];
        if check["status"] == "FAIL" {
            let name = check["name"].as_str().unwrap_or("unnamed");
            failures(rule, name, &mut found);
        }
    }
    found.sort();
    found.dedup();
    if found.is_empty() && file_failed {
        found.push(Violation {
            resource: "template".into(),
            rule: "guard".into(),
            why: "failed the policy".into(),
        });
    }
    if found.is_empty() { Ok(()) } else { Err(found) }
}

/// The failed clauses under one failed rule (an `EventRecord` tree: `container` and
/// `children`). Conditions (`when`, filters) are evaluated like clauses but are not violations,
/// so their subtrees are skipped; a clause that passed is recorded as `"Success"`.
fn failures(node: &Value, rule: &str, out: &mut Vec<Violation>) {
    let container = &node["container"];
    let kind = container.as_object().and_then(|c| c.keys().next()).map(String::as_str);
    if matches!(kind, Some("WhenCondition" | "RuleCondition" | "TypeCondition" | "Filter")) {
        return;
    }
    if kind == Some("ClauseValueCheck") {
        let clause = &container["ClauseValueCheck"];
        if clause.is_object() {
            let why = message_in(clause).unwrap_or_else(|| "failed a policy rule".into());
            let mut resources = Vec::new();
            resources_in(clause, &mut resources);
            if resources.is_empty() {
                resources.push("template".to_string());
            }
            for resource in resources {
                out.push(Violation { resource, rule: rule.to_string(), why: why.clone() });
            }
        }
        return;
    }
    for child in node["children"].as_array().into_iter().flatten() {
        failures(child, rule, out);
    }
}

/// The rule file's message for a failed clause, whitespace folded.
fn message_in(node: &Value) -> Option<String> {
    match node {
        Value::Object(map) => map
            .get("custom_message")
            .and_then(Value::as_str)
            .map(|m| m.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|m| !m.is_empty())
            .or_else(|| map.values().find_map(message_in)),
        Value::Array(items) => items.iter().find_map(message_in),
        _ => None,
    }
}

/// The logical ids of the resources a clause's values were found under (`path` keys only).
fn resources_in(node: &Value, out: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            if let Some(rest) =
                map.get("path").and_then(Value::as_str).and_then(|p| p.strip_prefix("/Resources/"))
            {
                let id = rest.split('/').next().unwrap_or_default().to_string();
                if !id.is_empty() && !out.contains(&id) {
                    out.push(id);
                }
            }
            // Beside a `path`, `value` is the template's own content: not looked into.
            let located = map.contains_key("path");
            for (k, v) in map {
                if !(located && k == "value") {
                    resources_in(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| resources_in(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssr::catalog::parse_template;

    /// A template that meets every rule: a bucket and a role as the catalog writes them.
    fn good() -> Value {
        parse_template(
            r#"
Resources:
  Inbox:
    Type: AWS::S3::Bucket
    DeletionPolicy: Retain
  Worker:
    Type: AWS::IAM::Role
    Properties:
      PermissionsBoundary: !Sub "arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/NexusPermissionsBoundary"
      AssumeRolePolicyDocument:
        Statement:
          - Effect: Allow
            Principal: { Service: lambda.amazonaws.com }
            Action: sts:AssumeRole
          - Effect: Allow
            Principal: { AWS: !Ref AWS::AccountId }
            Action: sts:AssumeRole
      Policies:
        - PolicyName: work
          PolicyDocument:
            Statement:
              - Effect: Allow
                Action: [s3:GetObject, "*"]
                Resource: !Sub "${Inbox.Arn}/*"
              - Effect: Allow
                Action: s3:ListBucket
                Resource: "*"
              - Effect: Deny
                Action: "*"
                Resource: "*"
"#,
            false,
        )
        .unwrap()
    }

    /// `good()` with one change at a JSON pointer.
    fn with(pointer: &str, value: Value) -> Value {
        let mut t = good();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let target = t.pointer_mut(parent).unwrap();
        match target {
            Value::Object(m) => {
                m.insert(key.to_string(), value);
            }
            Value::Array(a) => a[key.parse::<usize>().unwrap()] = value,
            _ => panic!("{pointer}"),
        }
        t
    }

    fn without(pointer: &str) -> Value {
        let mut t = good();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        t.pointer_mut(parent).unwrap().as_object_mut().unwrap().remove(key);
        t
    }

    /// The rules a template breaks, and the resources named.
    fn broken(t: &Value) -> Vec<(String, String)> {
        check(t).err().unwrap_or_default().into_iter().map(|v| (v.resource, v.rule)).collect()
    }

    fn pair(resource: &str, rule: &str) -> Vec<(String, String)> {
        vec![(resource.to_string(), rule.to_string())]
    }

    #[test]
    fn a_template_that_meets_every_rule_passes() {
        assert_eq!(check(&good()), Ok(()));
    }

    #[test]
    fn resource_types_off_the_list_are_refused() {
        let t = with("/Resources/Fn", serde_json::json!({"Type": "AWS::Lambda::Function", "Properties": {}}));
        assert_eq!(broken(&t), pair("Fn", "resource_types_on_the_allow_list"));
        let t = with("/Resources/Admin", serde_json::json!({"Type": "AWS::IAM::User"}));
        assert_eq!(broken(&t), pair("Admin", "resource_types_on_the_allow_list"));
        let t = with("/Resources/Nested", serde_json::json!({"Type": "AWS::CloudFormation::Stack"}));
        assert_eq!(broken(&t), pair("Nested", "resource_types_on_the_allow_list"));
    }

    #[test]
    fn a_role_without_the_boundary_is_refused() {
        let t = without("/Resources/Worker/Properties/PermissionsBoundary");
        assert_eq!(broken(&t), pair("Worker", "roles_carry_the_boundary"));
        let t = with(
            "/Resources/Worker/Properties/PermissionsBoundary",
            serde_json::json!("arn:aws:iam::aws:policy/AdministratorAccess"),
        );
        assert_eq!(broken(&t), pair("Worker", "roles_carry_the_boundary"));
    }

    #[test]
    fn managed_policies_are_refused() {
        let t = with(
            "/Resources/Worker/Properties/ManagedPolicyArns",
            serde_json::json!(["arn:aws:iam::aws:policy/AdministratorAccess"]),
        );
        assert_eq!(broken(&t), pair("Worker", "roles_have_inline_policies_only"));
    }

    #[test]
    fn star_on_star_is_refused_in_every_spelling() {
        let statement = "/Resources/Worker/Properties/Policies/0/PolicyDocument/Statement/1";
        for (action, resource) in [
            (serde_json::json!("*"), serde_json::json!("*")),
            (serde_json::json!("*:*"), serde_json::json!("*")),
            (serde_json::json!(["s3:GetObject", "*"]), serde_json::json!(["arn:aws:s3:::nexus-x", "*"])),
        ] {
            let t = with(
                statement,
                serde_json::json!({"Effect": "Allow", "Action": action, "Resource": resource}),
            );
            assert_eq!(
                broken(&t),
                pair("Worker", "no_star_actions_on_star_resources"),
                "{action} {resource}"
            );
        }
        for (key, value) in [("NotAction", "iam:PassRole"), ("NotResource", "arn:aws:s3:::nexus-x")] {
            let t = with(
                statement,
                serde_json::json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::x", key: value}),
            );
            assert_eq!(broken(&t), pair("Worker", "no_not_action_or_not_resource"), "{key}");
        }
    }

    #[test]
    fn trust_outside_the_account_is_refused() {
        let principal = "/Resources/Worker/Properties/AssumeRolePolicyDocument/Statement/1/Principal";
        for bad in [
            serde_json::json!("*"),
            serde_json::json!({"AWS": "*"}),
            serde_json::json!({"AWS": "arn:aws:iam::999999999999:root"}),
            serde_json::json!({"AWS": ["arn:aws:iam::999999999999:root"]}),
            serde_json::json!({"AWS": {"Ref": "TrustedAccount"}}),
            serde_json::json!({"AWS": [{"Ref": "AWS::AccountId"}, {"Ref": "TrustedAccount"}]}),
            serde_json::json!({"Federated": "cognito-identity.amazonaws.com"}),
        ] {
            let t = with(principal, bad.clone());
            assert_eq!(broken(&t), pair("Worker", "roles_trust_services_or_this_account"), "{bad}");
        }
    }

    #[test]
    fn every_violation_is_named_at_once() {
        let mut t = without("/Resources/Worker/Properties/PermissionsBoundary");
        t["Resources"]["Fn"] = serde_json::json!({"Type": "AWS::Lambda::Function"});
        let all = check(&t).unwrap_err();
        let rules: Vec<&str> = all.iter().map(|v| v.rule.as_str()).collect();
        assert_eq!(rules, ["resource_types_on_the_allow_list", "roles_carry_the_boundary"], "{all:?}");
        assert!(all.iter().all(|v| !v.why.is_empty()));
    }

    /// Many failures make a long report (cfn-guard's summary output is cut past 8 KiB): every
    /// one is still named.
    #[test]
    fn a_long_report_names_every_violation() {
        let mut t = without("/Resources/Worker/Properties/PermissionsBoundary");
        let role = t["Resources"]["Worker"].clone();
        for i in 0..20 {
            t["Resources"][format!("Worker{i}")] = role.clone();
        }
        let all = check(&t).unwrap_err();
        assert_eq!(all.len(), 21, "{all:?}");
        assert!(all.iter().all(|v| v.rule == "roles_carry_the_boundary"));
    }

    /// The shipped catalog: every version passes but the two released before the boundary
    /// existed, which break exactly that rule (released versions are never edited; 1.0.1 and
    /// 1.1.1 are their patches).
    #[test]
    fn the_shipped_catalog_meets_the_rules_but_the_pre_boundary_versions() {
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../catalog"));
        let mut checked = 0;
        for cap in std::fs::read_dir(dir).unwrap().flatten().filter(|e| e.path().is_dir()) {
            for file in std::fs::read_dir(cap.path()).unwrap().flatten() {
                let path = file.path();
                let json = match path.extension().and_then(|e| e.to_str()) {
                    Some("json") => true,
                    Some("yaml" | "yml") => false,
                    _ => continue,
                };
                let body = std::fs::read_to_string(&path).unwrap();
                let t = parse_template(&body, json).unwrap();
                let name = path.strip_prefix(dir).unwrap().display().to_string();
                checked += 1;
                if name == "document-intelligence/1.0.0.yaml" || name == "document-intelligence/1.1.0.yaml" {
                    assert_eq!(broken(&t), pair("WorkerRole", "roles_carry_the_boundary"), "{name}");
                } else {
                    assert_eq!(check(&t), Ok(()), "{name}");
                }
            }
        }
        assert!(checked >= 12, "{checked}");
    }
}
