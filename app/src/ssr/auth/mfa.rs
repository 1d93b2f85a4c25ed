//! Second factors of local accounts: TOTP (RFC 6238: SHA-1, 6 digits, 30 s, one step of clock
//! skew either way) and single-use recovery codes. What is stored per user ([`MfaRecord`]) and the
//! checks, kept free of I/O so they are tested here; `AuthService` reads and writes the record.
//!
//! - A TOTP code is accepted once: the step it matched is stored and a code of that step or an
//!   earlier one is refused (no replay within its window).
//! - The TOTP secret is stored sealed (as `NoEcho` parameter values are), bound to the user.
//! - Recovery codes are shown once and stored as SHA-256 hashes bound to the user; each works once.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, Builder, Totp};

use crate::domain::{ids::Id, time::Timestamp};

/// Seconds per TOTP step.
pub const STEP_SECONDS: u64 = 30;
/// Recovery codes made at enrolment (and when renewed).
pub const RECOVERY_CODES: usize = 10;
/// Bytes of a new TOTP secret (160 bits, RFC 4226's recommendation).
const SECRET_BYTES: usize = 20;
/// Characters of a recovery code, without the dash. Crockford's base32 letters: no I, L, O, U.
const CODE_LENGTH: usize = 10;
const CODE_ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The second factors of one user.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaRecord {
    /// The confirmed authenticator app.
    #[serde(default)]
    pub totp: Option<TotpFactor>,
    /// A secret shown for enrolment, not yet confirmed by a code.
    #[serde(default)]
    pub pending_totp: Option<PendingTotp>,
    #[serde(default)]
    pub recovery: Vec<RecoveryCode>,
    /// Passkeys (WebAuthn credentials), in the order they were added.
    #[serde(default)]
    pub passkeys: Vec<StoredPasskey>,
    /// The user's WebAuthn user handle (a random UUID, never the user id): what a passkey
    /// names its user by at a username-less sign-in.
    #[serde(default)]
    pub webauthn_handle: Option<String>,
    /// The stored revision (0: nothing stored yet); writes are conditional on it.
    #[serde(skip)]
    pub rev: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpFactor {
    pub sealed_secret: String,
    pub added_at: Timestamp,
    /// The step of the last code accepted: that one and earlier ones are refused.
    pub last_step: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPasskey {
    /// The credential id, base64url.
    pub id: String,
    pub name: String,
    pub added_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    /// The credential (public key, counter) as webauthn-rs keeps it, as JSON.
    pub key: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingTotp {
    pub sealed_secret: String,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryCode {
    pub hash: String,
    pub used_at: Option<Timestamp>,
}

/// What a submitted code turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeMatch {
    /// The app's code for this step (record it as the last step).
    Totp { step: u64 },
    /// An unused recovery code (mark it used).
    Recovery { index: usize },
    /// Neither, or used already.
    Wrong,
}

impl MfaRecord {
    /// Whether sign-in needs a second factor (recovery codes alone are a backup, not a factor).
    pub fn has_factor(&self) -> bool {
        self.totp.is_some() || !self.passkeys.is_empty()
    }

    pub fn recovery_left(&self) -> usize {
        self.recovery.iter().filter(|c| c.used_at.is_none()).count()
    }

    /// Checks `code` (a TOTP code or a recovery code, as typed) at `unix_secs`; `secret` is the
    /// opened TOTP secret, when there is one. Changes nothing: the caller records the match.
    pub fn check(&self, secret: Option<&[u8]>, user: &Id, code: &str, unix_secs: u64) -> CodeMatch {
        let typed: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if let (Some(factor), Some(secret)) = (&self.totp, secret)
            && typed.len() == 6
            && typed.bytes().all(|b| b.is_ascii_digit())
        {
            return match totp_step(secret, &typed, unix_secs) {
                Some(step) if step > factor.last_step => CodeMatch::Totp { step },
                _ => CodeMatch::Wrong,
            };
        }
        let Some(normalized) = normalize_recovery_code(&typed) else { return CodeMatch::Wrong };
        let hash = recovery_hash(user, &normalized);
        // Every code is compared, so the time taken does not say which one matched.
        let mut found = None;
        for (i, c) in self.recovery.iter().enumerate() {
            if constant_time_eq(c.hash.as_bytes(), hash.as_bytes()) && c.used_at.is_none() {
                found = Some(i);
            }
        }
        found.map_or(CodeMatch::Wrong, |index| CodeMatch::Recovery { index })
    }
}

fn totp(secret: &[u8]) -> Option<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(STEP_SECONDS)
        .with_secret(secret.to_vec())
        .build()
        .ok()
}

/// The step `code` belongs to, within one step of `unix_secs` either way.
pub fn totp_step(secret: &[u8], code: &str, unix_secs: u64) -> Option<u64> {
    totp(secret)?.check(code, unix_secs)
}

/// The code an authenticator app shows at `unix_secs` (tests and the demo).
pub fn totp_code(secret: &[u8], unix_secs: u64) -> String {
    totp(secret).map(|t| t.generate(unix_secs).to_string()).unwrap_or_default()
}

/// A new random TOTP secret.
pub fn new_secret() -> Vec<u8> {
    let mut s = vec![0u8; SECRET_BYTES];
    getrandom::fill(&mut s).expect("the operating system's random source is unavailable");
    s
}

/// RFC 4648 base32 without padding: how apps take a secret typed by hand.
pub fn base32(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    for chunk in bytes.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let n = u64::from_be_bytes([0, 0, 0, buf[0], buf[1], buf[2], buf[3], buf[4]]);
        let chars = (chunk.len() * 8).div_ceil(5);
        for i in 0..chars {
            out.push(A[((n >> (35 - i * 5)) & 31) as usize] as char);
        }
    }
    out
}

/// The inverse of [`base32`] (case-insensitive, spaces and padding ignored).
pub fn from_base32(text: &str) -> Option<Vec<u8>> {
    let mut bits: u64 = 0;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.chars().filter(|c| !c.is_whitespace() && *c != '=') {
        let v = match c.to_ascii_uppercase() {
            c @ 'A'..='Z' => c as u64 - 'A' as u64,
            c @ '2'..='7' => c as u64 - '2' as u64 + 26,
            _ => return None,
        };
        bits = (bits << 5) | v;
        count += 5;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Some(out)
}

/// The `otpauth://` URL an app reads from the QR code.
pub fn otpauth_url(issuer: &str, account: &str, secret: &[u8]) -> String {
    let enc = |s: &str| crate::url::encode(s);
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits=6&period={STEP_SECONDS}",
        enc(issuer),
        enc(account),
        base32(secret),
        enc(issuer)
    )
}

/// New recovery codes as shown once (`ABCDE-FGHJK`), and as stored.
pub fn new_recovery_codes(user: &Id) -> (Vec<String>, Vec<RecoveryCode>) {
    let mut shown = Vec::with_capacity(RECOVERY_CODES);
    let mut stored = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let mut random = [0u8; CODE_LENGTH];
        getrandom::fill(&mut random).expect("the operating system's random source is unavailable");
        let code: String = random.iter().map(|b| CODE_ALPHABET[(b & 31) as usize] as char).collect();
        stored.push(RecoveryCode { hash: recovery_hash(user, &code), used_at: None });
        shown.push(format!("{}-{}", &code[..5], &code[5..]));
    }
    (shown, stored)
}

/// A typed recovery code in the stored form: upper case, no dash; `None` when it cannot be one.
fn normalize_recovery_code(typed: &str) -> Option<String> {
    let code: String = typed.chars().filter(|c| *c != '-').map(|c| c.to_ascii_uppercase()).collect();
    (code.len() == CODE_LENGTH && code.bytes().all(|b| CODE_ALPHABET.contains(&b))).then_some(code)
}

fn recovery_hash(user: &Id, code: &str) -> String {
    let digest = Sha256::digest(format!("nexus-recovery-code\0{user}\0{code}"));
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What a sealed TOTP secret is bound to (the cipher's associated data).
pub fn secret_binding(user: &Id) -> String {
    format!("mfa-totp\0{user}")
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6238 appendix B's SHA-1 secret: "12345678901234567890".
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    fn user() -> Id {
        Id::from_parts(1, 1)
    }

    fn enrolled(last_step: u64) -> MfaRecord {
        MfaRecord {
            totp: Some(TotpFactor {
                sealed_secret: String::new(),
                added_at: Timestamp::from_millis(0),
                last_step,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn codes_match_rfc_6238_and_one_step_of_skew_either_way() {
        // RFC 6238 B: T = 59 s -> 94287082 (8 digits); the 6-digit code is its last six.
        assert_eq!(totp_code(RFC_SECRET, 59), "287082");
        assert_eq!(totp_code(RFC_SECRET, 1_111_111_109), "081804");
        let now = 1_111_111_109;
        let step = now / STEP_SECONDS;
        for (at, expect) in [
            (now - STEP_SECONDS, Some(step - 1)),
            (now, Some(step)),
            (now + STEP_SECONDS, Some(step + 1)),
            (now - 2 * STEP_SECONDS, None),
            (now + 2 * STEP_SECONDS, None),
        ] {
            assert_eq!(totp_step(RFC_SECRET, &totp_code(RFC_SECRET, at), now), expect, "code of {at}");
        }
    }

    #[test]
    fn a_code_is_accepted_once_and_never_an_earlier_one() {
        let now = 1_700_000_000;
        let code = totp_code(RFC_SECRET, now);
        let fresh = enrolled(0);
        let step = now / STEP_SECONDS;
        assert_eq!(fresh.check(Some(RFC_SECRET), &user(), &code, now), CodeMatch::Totp { step });
        // Once its step is recorded, the same code (and the previous step's) is refused.
        let used = enrolled(step);
        assert_eq!(used.check(Some(RFC_SECRET), &user(), &code, now), CodeMatch::Wrong);
        let earlier = totp_code(RFC_SECRET, now - STEP_SECONDS);
        assert_eq!(used.check(Some(RFC_SECRET), &user(), &earlier, now), CodeMatch::Wrong);
        // The next step's code still works.
        let next = totp_code(RFC_SECRET, now + STEP_SECONDS);
        assert_eq!(
            used.check(Some(RFC_SECRET), &user(), &next, now + STEP_SECONDS),
            CodeMatch::Totp { step: step + 1 }
        );
        assert_eq!(fresh.check(Some(RFC_SECRET), &user(), "000000x", now), CodeMatch::Wrong);
    }

    #[test]
    fn recovery_codes_work_once_for_their_user_only() {
        let (shown, stored) = new_recovery_codes(&user());
        assert_eq!((shown.len(), stored.len()), (RECOVERY_CODES, RECOVERY_CODES));
        assert!(shown.iter().all(|c| c.len() == 11 && c.as_bytes()[5] == b'-'), "{shown:?}");
        let mut record = MfaRecord { recovery: stored, ..Default::default() };
        // Typed loosely: lower case, no dash, spaces.
        let typed = format!(" {} ", shown[3].replace('-', "").to_lowercase());
        assert_eq!(record.check(None, &user(), &typed, 0), CodeMatch::Recovery { index: 3 });
        assert_eq!(
            record.check(None, &Id::from_parts(1, 2), &shown[3], 0),
            CodeMatch::Wrong,
            "bound to the user"
        );
        record.recovery[3].used_at = Some(Timestamp::from_millis(1));
        assert_eq!(record.check(None, &user(), &shown[3], 0), CodeMatch::Wrong, "single use");
        assert_eq!(record.recovery_left(), RECOVERY_CODES - 1);
        assert!(record.recovery.iter().all(|c| !shown.iter().any(|s| c.hash.contains(&s.replace('-', "")))));
    }

    #[test]
    fn base32_round_trips_and_the_url_names_the_secret() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(from_base32("mzxw 6ytb oi==").unwrap(), b"foobar");
        let secret = new_secret();
        assert_eq!(from_base32(&base32(&secret)).unwrap(), secret);
        let url = otpauth_url("NexusAI Toolkit", "exec@demo.nexus", RFC_SECRET);
        assert!(
            url.starts_with(
                "otpauth://totp/NexusAI%20Toolkit:exec%40demo.nexus?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&"
            ),
            "{url}"
        );
    }
}
