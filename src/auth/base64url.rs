//! Base64url without padding (RFC 4648 §5, as RFC 7515 §2 uses it): the
//! three parts of a token. Decoding is strict, so that one token has one
//! spelling (SPEC "Access control": "Base64url is unpadded and strict"):
//! no `=`, no character outside `A-Z a-z 0-9 - _`, no length that leaves a
//! lone character, and the unused bits of the last character are zero.

/// The url and filename safe alphabet (RFC 4648 Table 2).
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// `bytes` in base64url, without padding.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let group = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        // n bytes make n + 1 characters.
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(group >> (18 - 6 * i)) as usize & 63]));
        }
    }
    out
}

/// The bytes `text` spells in unpadded base64url, or `None` if it breaks
/// any rule of the module doc.
pub fn decode(text: &[u8]) -> Option<Vec<u8>> {
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
    // Bits read but not yet written out, and how many there are (0 to 6).
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in text {
        acc = acc << 6 | u32::from(value(c)?);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    (acc == 0).then_some(out)
}

/// The 6-bit value of one alphabet character.
fn value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'-' => Some(62),
        b'_' => Some(63),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4648 §10, without the padding.
    const RFC_4648: [(&str, &str); 7] = [
        ("", ""),
        ("f", "Zg"),
        ("fo", "Zm8"),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg"),
        ("fooba", "Zm9vYmE"),
        ("foobar", "Zm9vYmFy"),
    ];

    #[test]
    fn rfc_4648_vectors() {
        for (plain, coded) in RFC_4648 {
            assert_eq!(encode(plain.as_bytes()), coded);
            assert_eq!(decode(coded.as_bytes()).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn url_alphabet() {
        // 0xfb 0xff: standard base64 "+/8=", url "-_8".
        assert_eq!(encode(&[0xfb, 0xff]), "-_8");
        assert_eq!(decode(b"-_8").unwrap(), [0xfb, 0xff]);
        assert_eq!(encode(&[0xff; 3]), "____");
        assert_eq!(encode(&[0xf8]), "-A");
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(decode(encode(&all).as_bytes()).unwrap(), all);
    }

    #[test]
    fn rejections() {
        for bad in [
            "Zg==",
            "Zg=",
            "Zm9vYg==", // padding
            "+_8",
            "-/8",
            "Zm9v+A", // standard alphabet
            "Zm9v Yg",
            " Zg",
            "Zg\n",
            "Zm9\tv", // whitespace
            "Z",
            "Zm9vY",
            "Zm9vYmFyZ", // a lone last character
            "Zh",
            "Zm9",
            "Zm-",
            "Zm9vYh",
            "Zm9vYmF", // non-zero unused bits
            "Zg.",
            "Zé",
        ] {
            assert_eq!(decode(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(decode(b"Zg").unwrap(), b"f");
        assert_eq!(decode(b"Zm8").unwrap(), b"fo");
    }
}
