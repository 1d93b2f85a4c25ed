//! Components shared by several pages.

pub mod change_set;
pub mod chips;
pub mod connectivity;
pub mod device;
pub mod hydration;
pub mod json_codec;
pub mod last_known;
pub mod layout;
pub mod outbox;
pub mod passkeys;
pub mod session;
pub mod step_up;
pub mod webauthn;
