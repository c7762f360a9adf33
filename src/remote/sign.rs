//! Signed artifacts: an HMAC-SHA256 tag over the artifact's hash, the team
//! and the artifact's bytes, keyed with `TASKER_REMOTE_CACHE_SIGNATURE_KEY`
//! and sent base64-encoded in `x-artifact-tag`, the layout Turborepo's
//! signed artifacts use, so one key verifies either tool's artifacts.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The tag of one artifact, fed its bytes as they stream past.
pub struct Tagger(Hmac<Sha256>);

impl Tagger {
    pub fn new(key: &[u8], hash: &str, team: &str) -> Tagger {
        // HMAC takes a key of any length.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
            .unwrap_or_else(|_| <Hmac<Sha256> as KeyInit>::new_from_slice(&[]).unwrap());
        mac.update(hash.as_bytes());
        mac.update(team.as_bytes());
        Tagger(mac)
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The tag, as the header carries it.
    pub fn tag(self) -> String {
        base64(&self.0.finalize().into_bytes())
    }

    /// Whether `tag` (the header's text) is this artifact's, compared in
    /// constant time.
    pub fn verify(self, tag: &str) -> bool {
        match unbase64(tag.trim()) {
            Some(bytes) => self.0.verify_slice(&bytes).is_ok(),
            None => false,
        }
    }
}

/// Standard base64, padded.
fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Standard base64; `None` for anything else.
fn unbase64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for (raw, text) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(raw), text);
            assert_eq!(unbase64(text).unwrap(), raw);
        }
        assert_eq!(unbase64("Zm9v!"), None);
        assert_eq!(unbase64("Zm9"), None);
    }

    #[test]
    fn a_tag_covers_hash_team_and_bytes() {
        let tag = |key: &[u8], hash: &str, team: &str, body: &[u8]| {
            let mut t = Tagger::new(key, hash, team);
            t.update(body);
            t.tag()
        };
        // HMAC-SHA256("key", "abc" + "team" + "body"), computed by Python.
        let base = tag(b"key", "abc", "team", b"body");
        assert_eq!(base, "Z3MZvPDmHI9ICNHqwwlix4ANYTNisqpTyzkSLGeY6cU=");
        assert_ne!(tag(b"key2", "abc", "team", b"body"), base);
        assert_ne!(tag(b"key", "abd", "team", b"body"), base);
        assert_ne!(tag(b"key", "abc", "tean", b"body"), base);
        assert_ne!(tag(b"key", "abc", "team", b"bodz"), base);
        let mut t = Tagger::new(b"key", "abc", "team");
        t.update(b"bo");
        t.update(b"dy");
        assert!(t.verify(&base));
        let mut t = Tagger::new(b"key", "abc", "team");
        t.update(b"body!");
        assert!(!t.verify(&base));
        assert!(!Tagger::new(b"key", "abc", "team").verify("not base64!"));
    }
}
