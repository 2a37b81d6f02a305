//! Sealing small values into cookies: AES-256-GCM under keys derived from
//! the session key file.
//!
//! Why: Headlamp keeps login state and refresh tokens in process memory, so
//! a second replica or a restart breaks sign-in ("key not found"). We give
//! that state to the browser instead, encrypted and authenticated, so any
//! replica holding the same key file completes the login. See
//! `docs/headlamp-compat.md` part B.
//!
//! Format of a sealed value (then base64url without padding):
//!
//! ```text
//! version (1 byte, = 1) | key id (4 bytes) | nonce (12 bytes) | ciphertext | GCM tag (16 bytes)
//! ```
//!
//! - Keys are derived with HKDF-SHA256
//!   ([RFC 5869](https://www.rfc-editor.org/rfc/rfc5869)) from the key
//!   file's bytes, one subkey per [`Purpose`], so a value sealed for one
//!   purpose cannot even be decrypted as another.
//! - The additional authenticated data binds the version, key id, purpose
//!   and a caller-supplied context (the cluster for refresh tokens), so a
//!   refresh-token cookie replayed as login state, or for another cluster,
//!   fails authentication rather than being misread.
//! - The key id is a non-secret HKDF output that lets us say "sealed with a
//!   different key" (the usual multi-replica misconfiguration) instead of a
//!   generic "tampered".
//! - Nonces are random. With 96-bit random nonces AES-GCM stays within its
//!   bounds for 2^32 seals per key (NIST SP 800-38D section 8.3), far beyond
//!   the logins and refreshes one key file sees.

use std::path::Path;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::OidcError;

const VERSION: u8 = 1;
const KEY_ID_LEN: usize = 4;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;
const TAG_LEN: usize = 16;
/// The least key material accepted: 256 bits.
pub const MIN_KEY_MATERIAL: usize = 32;
const HKDF_SALT: &[u8] = b"headlamp-auth session key v1";

/// What a sealed value is for. Each purpose has its own subkey and AAD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// The login-state cookie between `/oidc` and `/oidc-callback`.
    LoginState,
    /// The refresh-token cookie beside the token cookie.
    RefreshToken,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Self::LoginState => b"login-state",
            Self::RefreshToken => b"refresh-token",
        }
    }
}

/// Why a sealed value did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// Not base64url, too short, or an unknown version.
    Malformed,
    /// Sealed under a different key file.
    OtherKey,
    /// Authentication failed: altered, or sealed for another purpose or context.
    Forged,
}

/// The keys derived from the session key file.
///
/// Built once at start from `-session-key-file` ([`SessionKey::from_file`])
/// or, without one, from random bytes ([`SessionKey::ephemeral`]).
pub struct SessionKey {
    login_state: DerivedKey,
    refresh_token: DerivedKey,
    rng: SystemRandom,
}

struct DerivedKey {
    key: LessSafeKey,
    id: [u8; KEY_ID_LEN],
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey([redacted])")
    }
}

impl SessionKey {
    /// Reads the key file: any file with at least 32 bytes of random data,
    /// raw (`head -c 64 /dev/urandom`) or text (`openssl rand -base64 48`).
    /// Surrounding white space (a trailing newline from an editor) is
    /// ignored so a re-saved text file keeps the same keys.
    pub fn from_file(path: &Path) -> Result<Self, OidcError> {
        let invalid = |reason: String| OidcError::InvalidSessionKey {
            path: path.display().to_string(),
            reason,
        };
        let material = std::fs::read(path).map_err(|e| invalid(format!("cannot read it: {e}")))?;
        Self::from_material(&material).map_err(|e| match e {
            OidcError::InvalidSessionKey { reason, .. } => invalid(reason),
            other => other,
        })
    }

    /// Derives the keys from key material (the key file's contents).
    pub fn from_material(material: &[u8]) -> Result<Self, OidcError> {
        let material = material.trim_ascii();
        if material.len() < MIN_KEY_MATERIAL {
            return Err(OidcError::InvalidSessionKey {
                path: "(key material)".to_owned(),
                reason: format!(
                    "it holds {} bytes (after trimming white space); it needs at least \
                     {MIN_KEY_MATERIAL} bytes of random data, e.g. `head -c 64 /dev/urandom > \
                     session.key`",
                    material.len()
                ),
            });
        }
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_SALT).extract(material);
        Ok(Self {
            login_state: DerivedKey::new(&prk, Purpose::LoginState)?,
            refresh_token: DerivedKey::new(&prk, Purpose::RefreshToken)?,
            rng: SystemRandom::new(),
        })
    }

    /// A random key for this process only, with a warning that says what
    /// breaks.
    pub fn ephemeral() -> Result<Self, OidcError> {
        let rng = SystemRandom::new();
        let mut material = [0u8; 64];
        rng.fill(&mut material)
            .map_err(|_| OidcError::setting("session-key-file", "the system RNG failed"))?;
        tracing::warn!(
            "no -session-key-file configured: using a random session key for this process. \
             Sign-ins started on another replica or before a restart will fail, and refresh \
             cookies stop working after a restart. Give every replica the same key file \
             (e.g. `head -c 64 /dev/urandom > session.key`)."
        );
        Self::from_material(&material)
    }

    fn key(&self, purpose: Purpose) -> &DerivedKey {
        match purpose {
            Purpose::LoginState => &self.login_state,
            Purpose::RefreshToken => &self.refresh_token,
        }
    }

    /// Fills `out` from the system CSPRNG.
    pub(crate) fn random(&self, out: &mut [u8]) -> Result<(), OidcError> {
        self.rng
            .fill(out)
            .map_err(|_| OidcError::setting("random", "the system RNG failed"))
    }

    /// Seals `plaintext` for `purpose`, bound to `context`.
    pub(crate) fn seal(
        &self,
        purpose: Purpose,
        context: &[u8],
        plaintext: &[u8],
    ) -> Result<String, OidcError> {
        let key = self.key(purpose);
        let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
        out.push(VERSION);
        out.extend_from_slice(&key.id);
        let mut nonce = [0u8; NONCE_LEN];
        self.random(&mut nonce)?;
        out.extend_from_slice(&nonce);
        let aad = aad(&out[..1 + KEY_ID_LEN], purpose, context);
        let mut in_out = plaintext.to_vec();
        key.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&aad),
                &mut in_out,
            )
            .map_err(|_| OidcError::setting("session key", "sealing failed"))?;
        out.extend_from_slice(&in_out);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    /// Opens a value sealed by [`SessionKey::seal`] with the same purpose and context.
    pub(crate) fn open(
        &self,
        purpose: Purpose,
        context: &[u8],
        sealed: &str,
    ) -> Result<Vec<u8>, OpenError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(sealed.as_bytes())
            .map_err(|_| OpenError::Malformed)?;
        if bytes.len() < HEADER_LEN + TAG_LEN || bytes[0] != VERSION {
            return Err(OpenError::Malformed);
        }
        let key = self.key(purpose);
        if bytes[1..1 + KEY_ID_LEN] != key.id {
            // Either another key file, or a value sealed for another purpose
            // (whose subkey has another id): both are "not ours".
            return Err(if self.any_key_has_id(&bytes[1..1 + KEY_ID_LEN]) {
                OpenError::Forged
            } else {
                OpenError::OtherKey
            });
        }
        let aad = aad(&bytes[..1 + KEY_ID_LEN], purpose, context);
        let nonce = Nonce::try_assume_unique_for_key(&bytes[1 + KEY_ID_LEN..HEADER_LEN])
            .map_err(|_| OpenError::Malformed)?;
        let mut in_out = bytes[HEADER_LEN..].to_vec();
        let plain = key
            .key
            .open_in_place(nonce, Aad::from(&aad), &mut in_out)
            .map_err(|_| OpenError::Forged)?;
        Ok(plain.to_vec())
    }

    fn any_key_has_id(&self, id: &[u8]) -> bool {
        self.login_state.id == id || self.refresh_token.id == id
    }
}

impl DerivedKey {
    fn new(prk: &hkdf::Prk, purpose: Purpose) -> Result<Self, OidcError> {
        let failed = || OidcError::setting("session key", "key derivation failed");
        let info = [b"aead:".as_slice(), purpose.label()];
        let okm = prk.expand(&info, &AES_256_GCM).map_err(|_| failed())?;
        let key = LessSafeKey::new(UnboundKey::from(okm));
        let id_info = [b"key-id:".as_slice(), purpose.label()];
        let mut id = [0u8; KEY_ID_LEN];
        prk.expand(&id_info, KeyIdLen)
            .and_then(|okm| okm.fill(&mut id))
            .map_err(|_| failed())?;
        Ok(Self { key, id })
    }
}

struct KeyIdLen;

impl hkdf::KeyType for KeyIdLen {
    fn len(&self) -> usize {
        KEY_ID_LEN
    }
}

fn aad(header: &[u8], purpose: Purpose, context: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + 32 + context.len());
    aad.extend_from_slice(b"headlamp-oidc\0");
    aad.extend_from_slice(header);
    aad.extend_from_slice(purpose.label());
    aad.push(0);
    aad.extend_from_slice(context);
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SessionKey {
        SessionKey::from_material(&[byte; 48]).unwrap()
    }

    #[test]
    fn round_trips_and_binds_purpose_and_context() {
        let k = key(7);
        let sealed = k.seal(Purpose::RefreshToken, b"prod", b"hello").unwrap();
        assert_eq!(
            k.open(Purpose::RefreshToken, b"prod", &sealed).unwrap(),
            b"hello"
        );
        assert_eq!(
            k.open(Purpose::RefreshToken, b"dev", &sealed),
            Err(OpenError::Forged)
        );
        assert_eq!(
            k.open(Purpose::LoginState, b"prod", &sealed),
            Err(OpenError::Forged)
        );
        assert_eq!(
            key(8).open(Purpose::RefreshToken, b"prod", &sealed),
            Err(OpenError::OtherKey)
        );
        assert_eq!(
            k.open(Purpose::RefreshToken, b"prod", "not base64!"),
            Err(OpenError::Malformed)
        );
        assert_eq!(
            k.open(Purpose::RefreshToken, b"prod", ""),
            Err(OpenError::Malformed)
        );
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let k = key(1);
        let sealed = k.seal(Purpose::LoginState, b"", b"some state").unwrap();
        let raw = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        for i in 0..raw.len() {
            let mut bad = raw.clone();
            bad[i] ^= 0x01;
            let bad = URL_SAFE_NO_PAD.encode(bad);
            assert!(k.open(Purpose::LoginState, b"", &bad).is_err(), "byte {i}");
        }
    }

    #[test]
    fn seals_are_randomised_and_text_key_files_work() {
        let k = key(3);
        let a = k.seal(Purpose::LoginState, b"", b"x").unwrap();
        let b = k.seal(Purpose::LoginState, b"", b"x").unwrap();
        assert_ne!(a, b);
        // A text key file re-saved with a trailing newline keeps its keys.
        let text = b"q0FmZk1vYzVtT2ZkR0xkQ2lGd0p4Y0RzM1JwV2tZb0hBbWtOVFl6";
        let with_newline = [text.as_slice(), b"\n"].concat();
        let sealed = SessionKey::from_material(text)
            .unwrap()
            .seal(Purpose::LoginState, b"", b"x")
            .unwrap();
        let reopened = SessionKey::from_material(&with_newline).unwrap();
        assert_eq!(
            reopened.open(Purpose::LoginState, b"", &sealed).unwrap(),
            b"x"
        );
    }

    #[test]
    fn ephemeral_keys_are_per_process() {
        let a = SessionKey::ephemeral().unwrap();
        let b = SessionKey::ephemeral().unwrap();
        let sealed = a.seal(Purpose::LoginState, b"", b"x").unwrap();
        assert_eq!(a.open(Purpose::LoginState, b"", &sealed).unwrap(), b"x");
        assert_eq!(
            b.open(Purpose::LoginState, b"", &sealed),
            Err(OpenError::OtherKey)
        );
    }

    #[test]
    fn short_key_material_is_refused_with_advice() {
        let err = SessionKey::from_material(b"too short\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("at least 32 bytes"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, [9u8; 31]).unwrap();
        let err = SessionKey::from_file(&path).unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        let err = SessionKey::from_file(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot read"), "{err}");
        assert_eq!(format!("{:?}", key(1)), "SessionKey([redacted])");
    }
}
