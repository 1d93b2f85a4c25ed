//! The review's password policy, shared so the sign-up and reset forms show the same rules the
//! server enforces.

use serde::{Deserialize, Serialize};

pub const MIN_LENGTH: usize = 12;
/// Longer inputs are refused before hashing (Argon2 cost grows with length).
pub const MAX_LENGTH: usize = 256;

/// One unmet rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PasswordRule {
    MinLength,
    MaxLength,
    Uppercase,
    Lowercase,
    Digit,
    Symbol,
}

impl PasswordRule {
    pub fn message(self) -> String {
        match self {
            PasswordRule::MinLength => format!("at least {MIN_LENGTH} characters"),
            PasswordRule::MaxLength => format!("at most {MAX_LENGTH} characters"),
            PasswordRule::Uppercase => "an upper-case letter".into(),
            PasswordRule::Lowercase => "a lower-case letter".into(),
            PasswordRule::Digit => "a digit".into(),
            PasswordRule::Symbol => "a symbol".into(),
        }
    }
}

/// Every rule the password breaks (empty: it is acceptable).
pub fn check(password: &str) -> Vec<PasswordRule> {
    let len = password.chars().count();
    let mut unmet = Vec::new();
    if len < MIN_LENGTH {
        unmet.push(PasswordRule::MinLength);
    }
    if len > MAX_LENGTH {
        unmet.push(PasswordRule::MaxLength);
    }
    if !password.chars().any(char::is_uppercase) {
        unmet.push(PasswordRule::Uppercase);
    }
    if !password.chars().any(char::is_lowercase) {
        unmet.push(PasswordRule::Lowercase);
    }
    if !password.chars().any(|c| c.is_ascii_digit()) {
        unmet.push(PasswordRule::Digit);
    }
    if !password.chars().any(|c| !c.is_alphanumeric() && !c.is_whitespace()) {
        unmet.push(PasswordRule::Symbol);
    }
    unmet
}

/// One sentence naming every unmet rule.
pub fn describe(unmet: &[PasswordRule]) -> String {
    let rules: Vec<String> = unmet.iter().map(|r| r.message()).collect();
    format!("the password needs {}", rules.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use PasswordRule::*;

    #[test]
    fn a_strong_password_passes() {
        assert!(check("Demo-Password-2026!").is_empty());
        assert!(check("Ünïcode-Pässw0rd").is_empty());
    }

    #[test]
    fn every_unmet_rule_is_named() {
        assert_eq!(check(""), vec![MinLength, Uppercase, Lowercase, Digit, Symbol]);
        assert_eq!(check("short1A!"), vec![MinLength]);
        assert_eq!(check("alllowercase-1"), vec![Uppercase]);
        assert_eq!(check("ALLUPPERCASE-1"), vec![Lowercase]);
        assert_eq!(check("NoDigitsHere-x"), vec![Digit]);
        assert_eq!(check("NoSymbols1234x"), vec![Symbol]);
        assert_eq!(check(&format!("Aa1!{}", "x".repeat(300))), vec![MaxLength]);
        let msg = describe(&check("abc"));
        assert!(
            msg.contains("12 characters") && msg.contains("upper-case") && msg.contains("symbol"),
            "{msg}"
        );
    }
}
