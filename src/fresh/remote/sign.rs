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

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64, padded.
fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64, padded or not; `None` for anything else.
fn unbase64(text: &str) -> Option<Vec<u8>> {
    let body = text.trim_end_matches('=');
    if text.len() - body.len() > 2 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in body.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c)? as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
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
