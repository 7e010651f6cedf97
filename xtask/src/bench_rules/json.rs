//! JSON (the CLI's `rules list` and Prometheus's API), without a dependency.

use super::*;

#[derive(Debug, PartialEq)]
pub(super) enum Json {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    pub(super) fn get(&self, key: &str) -> Option<&Json> {
        self.object().iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub(super) fn str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    pub(super) fn number(&self) -> Option<f64> {
        match self {
            Json::Number(n) => Some(*n),
            _ => None,
        }
    }

    pub(super) fn array(&self) -> &[Json] {
        match self {
            Json::Array(items) => items,
            _ => &[],
        }
    }

    pub(super) fn object(&self) -> &[(String, Json)] {
        match self {
            Json::Object(fields) => fields,
            _ => &[],
        }
    }
}

pub(super) fn parse_json(text: &str) -> Result<Json> {
    let mut parser = JsonParser {
        bytes: text.as_bytes(),
        pos: 0,
    };
    let value = parser.value()?;
    parser.skip_ws();
    ensure!(
        parser.pos == parser.bytes.len(),
        "JSON: trailing characters at byte {}",
        parser.pos
    );
    Ok(value)
}

pub(super) struct JsonParser<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) pos: usize,
}

impl JsonParser<'_> {
    pub(super) fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    pub(super) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    pub(super) fn value(&mut self) -> Result<Json> {
        self.skip_ws();
        match self.peek() {
            Some(b'{') => {
                self.pos += 1;
                let mut fields = Vec::new();
                if self.close(b'}') {
                    return Ok(Json::Object(fields));
                }
                loop {
                    self.skip_ws();
                    let key = self.string()?;
                    self.skip_ws();
                    ensure!(
                        self.peek() == Some(b':'),
                        "JSON: no ':' at byte {}",
                        self.pos
                    );
                    self.pos += 1;
                    fields.push((key, self.value()?));
                    if self.separator(b'}')? {
                        return Ok(Json::Object(fields));
                    }
                }
            }
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                if self.close(b']') {
                    return Ok(Json::Array(items));
                }
                loop {
                    items.push(self.value()?);
                    if self.separator(b']')? {
                        return Ok(Json::Array(items));
                    }
                }
            }
            Some(b'"') => Ok(Json::String(self.string()?)),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'n') => self.literal("null", Json::Null),
            Some(_) => {
                let start = self.pos;
                while matches!(
                    self.peek(),
                    Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                ) {
                    self.pos += 1;
                }
                let text = std::str::from_utf8(&self.bytes[start..self.pos])?;
                let number = text
                    .parse()
                    .with_context(|| format!("JSON: bad value at byte {start}"))?;
                Ok(Json::Number(number))
            }
            None => bail!("JSON: unexpected end"),
        }
    }

    /// Consumes `end` if it comes next.
    pub(super) fn close(&mut self, end: u8) -> bool {
        self.skip_ws();
        let found = self.peek() == Some(end);
        if found {
            self.pos += 1;
        }
        found
    }

    /// After an item: `,` (false) or `end` (true).
    pub(super) fn separator(&mut self, end: u8) -> Result<bool> {
        self.skip_ws();
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                Ok(false)
            }
            Some(b) if b == end => {
                self.pos += 1;
                Ok(true)
            }
            _ => bail!(
                "JSON: expected ',' or '{}' at byte {}",
                end as char,
                self.pos
            ),
        }
    }

    pub(super) fn literal(&mut self, word: &str, value: Json) -> Result<Json> {
        ensure!(
            self.bytes[self.pos..].starts_with(word.as_bytes()),
            "JSON: bad literal at byte {}",
            self.pos
        );
        self.pos += word.len();
        Ok(value)
    }

    pub(super) fn hex4(&mut self) -> Result<u32> {
        let digits = self
            .bytes
            .get(self.pos..self.pos + 4)
            .context("JSON: truncated \\u escape")?;
        self.pos += 4;
        Ok(u32::from_str_radix(std::str::from_utf8(digits)?, 16)?)
    }

    pub(super) fn string(&mut self) -> Result<String> {
        ensure!(
            self.peek() == Some(b'"'),
            "JSON: no string at byte {}",
            self.pos
        );
        self.pos += 1;
        let mut out = String::new();
        loop {
            let start = self.pos;
            while !matches!(self.peek(), Some(b'"' | b'\\') | None) {
                self.pos += 1;
            }
            // Stops only at ASCII bytes: the run ends on a character boundary.
            out.push_str(std::str::from_utf8(&self.bytes[start..self.pos])?);
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    let escape = *self
                        .bytes
                        .get(self.pos + 1)
                        .context("JSON: truncated escape")?;
                    self.pos += 2;
                    match escape {
                        b'n' => out.push('\n'),
                        b't' => out.push('\t'),
                        b'r' => out.push('\r'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'u' => {
                            let mut code = self.hex4()?;
                            if (0xD800..0xDC00).contains(&code)
                                && self.bytes[self.pos..].starts_with(b"\\u")
                            {
                                self.pos += 2;
                                let low = self.hex4()?;
                                code = 0x10000
                                    + ((code - 0xD800) << 10)
                                    + (low.wrapping_sub(0xDC00) & 0x3FF);
                            }
                            out.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
                        }
                        other => out.push(other as char),
                    }
                }
                _ => bail!("JSON: unterminated string"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_json() {
        let json = parse_json(
            r#"{"a": [1, -2.5e1, true, null], "b": {"c": "x\"\u003e\ud83d\ude00"}, "d": []}"#,
        )
        .unwrap();
        assert_eq!(json.get("a").unwrap().array()[1], Json::Number(-25.0));
        assert_eq!(
            json.get("b").and_then(|b| b.get("c")).and_then(Json::str),
            Some("x\">😀")
        );
        assert!(parse_json("[1,]").is_err());
    }
}
