//! Field rules for the admin forms, shared by the browser (inline messages) and the server (which
//! enforces them). Each function returns every field's error at once.

use super::{model::EnvironmentName, parameters::FieldError};

pub fn customer_name(name: &str, out: &mut Vec<FieldError>) {
    let n = name.trim().chars().count();
    if n == 0 {
        out.push(FieldError::new("name", "required", "enter the customer's name"));
    } else if n > 100 {
        out.push(FieldError::new("name", "too_long", "at most 100 characters"));
    } else if name.chars().any(char::is_control) {
        out.push(FieldError::new("name", "invalid_characters", "no control characters"));
    }
}

/// Lower-case letters, digits and dashes, 2 to 32 characters, starting with a letter (stack
/// names are `nexus-<capability>-<slug>-<environment>`, at most 128 characters).
pub fn slug(slug: &str, out: &mut Vec<FieldError>) {
    let b = slug.as_bytes();
    let ok = (2..=32).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && !slug.ends_with('-')
        && !slug.contains("--");
    if !ok {
        out.push(FieldError::new(
            "slug",
            "invalid_slug",
            "2 to 32 lower-case letters, digits and single dashes, starting with a letter",
        ));
    }
}

/// A slug from a name: `Acme Logistics, Inc.` -> `acme-logistics-inc`.
pub fn slug_from_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let mut s: String = out.trim_matches('-').chars().take(32).collect();
    while s.ends_with('-') {
        s.pop();
    }
    if s.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        s = format!("c-{s}").chars().take(32).collect();
    }
    s
}

pub fn cost_center(cc: &str, out: &mut Vec<FieldError>) {
    let ok = (1..=64).contains(&cc.len())
        && cc.chars().all(|c| c.is_ascii_alphanumeric() || "-_. ".contains(c))
        && !cc.trim().is_empty();
    if !ok {
        out.push(FieldError::new(
            "cost_center",
            "invalid_cost_center",
            "1 to 64 letters, digits, spaces, dots, dashes or underscores",
        ));
    }
}

pub fn environment_name(name: &str, out: &mut Vec<FieldError>) -> Option<EnvironmentName> {
    let env = EnvironmentName::parse(name);
    if env.is_none() {
        out.push(FieldError::new("name", "invalid_environment", "one of dev, staging, prod"));
    }
    env
}

pub fn account_id(id: &str, out: &mut Vec<FieldError>) {
    if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
        out.push(FieldError::new("account_id", "invalid_account_id", "an AWS account id is 12 digits"));
    }
}

/// `eu-west-1`, `us-gov-west-1`, `ap-southeast-2` …
pub fn region(region: &str, out: &mut Vec<FieldError>) {
    let parts: Vec<&str> = region.split('-').collect();
    let ok = (3..=4).contains(&parts.len())
        && parts[0].len() == 2
        && parts
            .iter()
            .take(parts.len() - 1)
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts
            .last()
            .is_some_and(|n| !n.is_empty() && n.len() <= 2 && n.bytes().all(|b| b.is_ascii_digit()));
    if !ok {
        out.push(FieldError::new("region", "invalid_region", "an AWS region such as eu-west-1"));
    }
}

/// `arn:aws:iam::<account>:role/<path/name>`, in the environment's own account.
pub fn role_arn(arn: &str, account: &str, out: &mut Vec<FieldError>) {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(acct), Some(resource)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        out.push(FieldError::new(
            "role_arn",
            "invalid_role_arn",
            "an IAM role ARN: arn:aws:iam::<account>:role/<name>",
        ));
        return;
    };
    let name = resource.strip_prefix("role/").unwrap_or_default();
    let name_ok = (1..=512).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c));
    if !partition.starts_with("aws") || !name_ok {
        out.push(FieldError::new(
            "role_arn",
            "invalid_role_arn",
            "an IAM role ARN: arn:aws:iam::<account>:role/<name>",
        ));
    } else if acct != account {
        out.push(FieldError::new(
            "role_arn",
            "account_mismatch",
            "the role must be in the environment's account",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(f: impl FnOnce(&mut Vec<FieldError>)) -> Vec<String> {
        let mut out = Vec::new();
        f(&mut out);
        out.into_iter().map(|e| format!("{}:{}", e.field, e.code)).collect()
    }

    #[test]
    fn names_and_slugs() {
        assert!(errors(|o| customer_name("Acme", o)).is_empty());
        assert_eq!(errors(|o| customer_name("  ", o)), ["name:required"]);
        assert_eq!(errors(|o| customer_name(&"x".repeat(101), o)), ["name:too_long"]);
        assert_eq!(slug_from_name("Acme Logistics, Inc."), "acme-logistics-inc");
        assert_eq!(slug_from_name("3M"), "c-3m");
        assert!(errors(|o| slug("acme-logistics", o)).is_empty());
        for bad in ["A", "Acme", "-acme", "acme-", "ac--me", "9acme", &"a".repeat(33)] {
            assert_eq!(errors(|o| slug(bad, o)), ["slug:invalid_slug"], "{bad}");
        }
    }

    #[test]
    fn aws_fields() {
        assert!(errors(|o| account_id("123456789012", o)).is_empty());
        for bad in ["12345678901", "1234567890123", "12345678901a", ""] {
            assert_eq!(errors(|o| account_id(bad, o)), ["account_id:invalid_account_id"], "{bad}");
        }
        for good in ["eu-west-1", "us-gov-west-1", "ap-southeast-2"] {
            assert!(errors(|o| region(good, o)).is_empty(), "{good}");
        }
        for bad in ["eu-west", "EU-west-1", "euwest1", "e-west-1", "eu-west-1a"] {
            assert_eq!(errors(|o| region(bad, o)), ["region:invalid_region"], "{bad}");
        }
        assert!(
            errors(|o| role_arn("arn:aws:iam::123456789012:role/nexus/Deployer", "123456789012", o))
                .is_empty()
        );
        assert_eq!(
            errors(|o| role_arn("arn:aws:iam::210987654321:role/Deployer", "123456789012", o)),
            ["role_arn:account_mismatch"]
        );
        assert_eq!(
            errors(|o| role_arn("arn:aws:s3:::bucket", "123456789012", o)),
            ["role_arn:invalid_role_arn"]
        );
    }
}
