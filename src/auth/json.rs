//! A small strict JSON parser (RFC 8259), enough for a token's header and
//! claims (SPEC "Access control": "the JSON is strict (a duplicate member is
//! malformed)"). Strict means: the input is UTF-8 and one value with only
//! whitespace around it; the grammar of §§2-7 exactly (no trailing comma,
//! no leading zero, no raw control character in a string); a `\u` escape
//! of a surrogate must be half of a pair; a member name twice in one object
//! is invalid (RFC 7515 §4 and RFC 7519 §4 let a parser refuse it, rather
//! than keep the last one). Limits (RFC 8259 §9): nesting at most
//! [`MAX_DEPTH`] deep, and a number must fit a finite `f64`. The caller
//! bounds the input size.

/// How deep arrays and objects may nest.
pub const MAX_DEPTH: usize = 16;

/// One JSON value. An object keeps its members in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as the nearest `f64` (always finite).
    Number(f64),
    /// A string, its escapes resolved.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object: its members in order, no name twice.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// The value of member `name`, if this is an object that has one.
    pub fn get(&self, name: &str) -> Option<&Json> {
        match self {
            Json::Object(members) => members.iter().find(|(n, _)| n == name).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// The value `text` holds, or `None` if it is not strict JSON (module doc).
pub fn parse(text: &[u8]) -> Option<Json> {
    std::str::from_utf8(text).ok()?;
    let mut parser = Parser { text, pos: 0 };
    let value = parser.value(0)?;
    parser.skip_whitespace();
    (parser.pos == text.len()).then_some(value)
}

/// `text` as a JSON string (RFC 8259 §7).
pub fn quote(text: &str) -> String {
    let mut out = String::from('"');
    for c in text.chars() {
        match c {
            '"' | '\\' => out.extend(['\\', c]),
            c if c < ' ' => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out + "\""
}

/// A cursor over valid UTF-8.
struct Parser<'a> {
    text: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.pos += 1;
        Some(byte)
    }

    /// Consumes `byte` if it comes next.
    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        self.pos += usize::from(found);
        found
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// One value, after optional whitespace, inside `depth` open containers.
    fn value(&mut self, depth: usize) -> Option<Json> {
        self.skip_whitespace();
        match self.peek()? {
            b'{' | b'[' if depth == MAX_DEPTH => None,
            b'[' => self.list(b']', |p| p.value(depth + 1)).map(Json::Array),
            b'{' => self.object(depth + 1),
            b'"' => self.string().map(Json::String),
            b'-' | b'0'..=b'9' => self.number(),
            b't' => self.word("true", Json::Bool(true)),
            b'f' => self.word("false", Json::Bool(false)),
            _ => self.word("null", Json::Null),
        }
    }

    fn word(&mut self, word: &str, value: Json) -> Option<Json> {
        let found = self.text[self.pos..].starts_with(word.as_bytes());
        self.pos += if found { word.len() } else { 0 };
        found.then_some(value)
    }

    /// The items of an array or object, each read by `item`: from the
    /// opening bracket to `close`, separated by commas.
    fn list<T>(
        &mut self,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Option<T>,
    ) -> Option<Vec<T>> {
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.eat(close) {
            return Some(items);
        }
        loop {
            self.skip_whitespace();
            items.push(item(self)?);
            self.skip_whitespace();
            match self.next()? {
                b',' => {}
                byte if byte == close => return Some(items),
                _ => return None,
            }
        }
    }

    /// An object; a name twice is invalid.
    fn object(&mut self, depth: usize) -> Option<Json> {
        let members = self.list(b'}', |p| {
            let name = p.string()?;
            p.skip_whitespace();
            p.eat(b':').then_some(())?;
            Some((name, p.value(depth)?))
        })?;
        // Sorted, so that the check costs O(n log n) whatever the input.
        let mut names: Vec<&str> = members.iter().map(|(name, _)| name.as_str()).collect();
        names.sort_unstable();
        let unique = names.windows(2).all(|pair| pair[0] != pair[1]);
        unique.then_some(Json::Object(members))
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, finite.
    fn number(&mut self) -> Option<Json> {
        let start = self.pos;
        self.eat(b'-');
        if !self.eat(b'0') && self.digits() == 0 {
            return None;
        }
        if self.eat(b'.') && self.digits() == 0 {
            return None;
        }
        if self.eat(b'e') || self.eat(b'E') {
            let _sign = self.eat(b'+') || self.eat(b'-');
            if self.digits() == 0 {
                return None;
            }
        }
        let text = std::str::from_utf8(&self.text[start..self.pos]).ok()?;
        let number: f64 = text.parse().ok()?;
        number.is_finite().then_some(Json::Number(number))
    }

    /// Consumes ASCII digits; returns how many.
    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// A string, from its opening quote.
    fn string(&mut self) -> Option<String> {
        if !self.eat(b'"') {
            return None;
        }
        let mut out = Vec::new();
        loop {
            let c = match self.next()? {
                b'"' => return String::from_utf8(out).ok(),
                0..=0x1f => return None,
                b'\\' => match self.next()? {
                    escaped @ (b'"' | b'\\' | b'/') => char::from(escaped),
                    b'b' => '\u{8}',
                    b'f' => '\u{c}',
                    b'n' => '\n',
                    b'r' => '\r',
                    b't' => '\t',
                    b'u' => self.unicode_escape()?,
                    _ => return None,
                },
                byte => {
                    out.push(byte);
                    continue;
                }
            };
            out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        }
    }

    /// The character of a `\uXXXX` escape (after the `\u`), joining a
    /// surrogate pair; a lone surrogate is invalid.
    fn unicode_escape(&mut self) -> Option<char> {
        let high = self.hex4()?;
        if !(0xd800..0xdc00).contains(&high) {
            // `None` for a low surrogate, which cannot come first.
            return char::from_u32(high);
        }
        (self.eat(b'\\') && self.eat(b'u')).then_some(())?;
        let low = self.hex4().filter(|low| (0xdc00..0xe000).contains(low))?;
        char::from_u32(0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00))
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.text.get(self.pos..self.pos + 4)?;
        // Checked first: `from_str_radix` would take a sign.
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        self.pos += 4;
        u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(members: &[(&str, Json)]) -> Json {
        Json::Object(
            members
                .iter()
                .map(|(n, v)| (n.to_string(), v.clone()))
                .collect(),
        )
    }

    fn s(text: &str) -> Json {
        Json::String(text.to_string())
    }

    #[test]
    fn valid() {
        let cases: Vec<(&str, Json)> = vec![
            ("null", Json::Null),
            (" true ", Json::Bool(true)),
            ("\r\n\tfalse\n", Json::Bool(false)),
            ("0", Json::Number(0.0)),
            ("-0", Json::Number(-0.0)),
            ("1300819380", Json::Number(1300819380.0)),
            ("-12.5e+2", Json::Number(-1250.0)),
            ("1.5E-1", Json::Number(0.15)),
            ("1e2", Json::Number(100.0)),
            (r#""""#, s("")),
            (r#""a\"\\\/\b\f\n\r\t""#, s("a\"\\/\u{8}\u{c}\n\r\t")),
            (r#""\u0041\u00e9\u20AC""#, s("Aé€")),
            (r#""\ud83d\ude00""#, s("😀")),
            ("\"é😀\"", s("é😀")),
            ("[]", Json::Array(vec![])),
            (
                "[ 1 , [ ] ]",
                Json::Array(vec![Json::Number(1.0), Json::Array(vec![])]),
            ),
            ("{}", obj(&[])),
            (
                r#"{"a":1, "b" : {"a":2}, "c":[{"a":3},{"a":4}]}"#,
                obj(&[
                    ("a", Json::Number(1.0)),
                    ("b", obj(&[("a", Json::Number(2.0))])),
                    (
                        "c",
                        Json::Array(vec![
                            obj(&[("a", Json::Number(3.0))]),
                            obj(&[("a", Json::Number(4.0))]),
                        ]),
                    ),
                ]),
            ),
            // Names that differ only after an escape are distinct.
            (
                r#"{"a":1,"\u0062":2}"#,
                obj(&[("a", Json::Number(1.0)), ("b", Json::Number(2.0))]),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text.as_bytes()), Some(expected), "{text:?}");
        }
        // Sixteen levels are allowed.
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(deep.as_bytes()).is_some());
        let deep = format!("{}1{}", r#"{"a":"#.repeat(MAX_DEPTH), "}".repeat(MAX_DEPTH));
        assert!(parse(deep.as_bytes()).is_some());
    }

    #[test]
    fn invalid() {
        for text in [
            "",
            " ",
            "nul",
            "True",
            "NaN",
            "Infinity",
            "undefined",
            "'a'",
            // numbers
            "01",
            "-01",
            "00",
            "+1",
            "1.",
            ".5",
            "-",
            "1e",
            "1e+",
            "0x10",
            "1.5e",
            "- 1",
            "1e400",
            "-1e999",
            // trailing garbage, two values
            "1 2",
            "{} x",
            "[]]",
            "{}}",
            "null,",
            "\"a\"\"b\"",
            "true false",
            // commas, colons, brackets
            "[1,]",
            "[,1]",
            "[1,,2]",
            "{\"a\":1,}",
            "{,}",
            "{\"a\" 1}",
            "{\"a\":}",
            "{a:1}",
            "{\"a\":1 \"b\":2}",
            "[1",
            "{\"a\":1",
            "{1:2}",
            "[}",
            "{]",
            // strings
            "\"abc",
            "\"a\nb\"",
            "\"\t\"",
            "\"\u{1}\"",
            r#""\x""#,
            r#""\u12""#,
            r#""\u12G4""#,
            r#""\'""#,
            r#""\U0041""#,
            // lone surrogates
            r#""\ud800""#,
            r#""\udc00""#,
            r#""\ud800x""#,
            r#""\ud800\u0041""#,
            r#""\ude00\ud83d""#,
            r#""\ud83d\ud83d""#,
            // duplicate members, at the top and nested
            r#"{"a":1,"a":2}"#,
            r#"{"a":1,"b":2,"a":1}"#,
            r#"{"x":{"a":1,"a":1}}"#,
            r#"[{"a":1,"a":1}]"#,
            r#"{"a":1,"\u0061":2}"#,
            r#"{"alg":"HS256","alg":"none"}"#,
        ] {
            assert_eq!(parse(text.as_bytes()), None, "{text:?}");
        }
        // Not UTF-8, in and out of a string.
        assert_eq!(parse(b"\"\xff\""), None);
        assert_eq!(parse(b"\"\xc3\""), None);
        assert_eq!(parse(b"[1]\xff"), None);
        // Seventeen levels are not.
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(parse(deep.as_bytes()), None);
        let deep = format!(
            "{}1{}",
            r#"{"a":"#.repeat(MAX_DEPTH + 1),
            "}".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(parse(deep.as_bytes()), None);
        // A deep input far past the limit fails fast, without recursion.
        assert_eq!(parse("[".repeat(100_000).as_bytes()), None);
    }

    #[test]
    fn get() {
        let value = parse(br#"{"alg":"HS256","n":1}"#).unwrap();
        assert_eq!(value.get("alg"), Some(&s("HS256")));
        assert_eq!(value.get("x"), None);
        assert_eq!(Json::Null.get("alg"), None);
    }
}
