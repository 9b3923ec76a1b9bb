//! Splits a formula into tokens, each tagged with the character offset where it starts.

use rust_decimal::Decimal;

use super::FormulaError;

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// A non-negative number literal; `integer` is true when it was written without a `.`
    /// (offsets and the count of `sum` must be whole numbers as written, not `3.0`).
    Number {
        value: Decimal,
        integer: bool,
    },
    Ident(String),
    Plus,
    Minus,
    Star,
    Slash,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Gt,
    Lt,
    Ge,
    Le,
    EqEq,
    Ne,
    /// The end of the formula; always the last token, so the parser never runs off the end.
    Eof,
}

impl TokenKind {
    /// How the token reads in an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            TokenKind::Number { value, .. } => format!("`{value}`"),
            TokenKind::Ident(name) => format!("`{name}`"),
            TokenKind::Plus => "`+`".into(),
            TokenKind::Minus => "`-`".into(),
            TokenKind::Star => "`*`".into(),
            TokenKind::Slash => "`/`".into(),
            TokenKind::LParen => "`(`".into(),
            TokenKind::RParen => "`)`".into(),
            TokenKind::LBracket => "`[`".into(),
            TokenKind::RBracket => "`]`".into(),
            TokenKind::Comma => "`,`".into(),
            TokenKind::Gt => "`>`".into(),
            TokenKind::Lt => "`<`".into(),
            TokenKind::Ge => "`>=`".into(),
            TokenKind::Le => "`<=`".into(),
            TokenKind::EqEq => "`==`".into(),
            TokenKind::Ne => "`!=`".into(),
            TokenKind::Eof => "the end of the formula".into(),
        }
    }
}

/// A token and the 0-based character offset of its first character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: TokenKind,
    pub position: usize,
}

/// Tokenise `src`. The result always ends with an [`TokenKind::Eof`] token positioned just past
/// the last character.
pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, FormulaError> {
    // Offsets are in characters, not bytes, because analysts count characters; collecting the
    // characters once keeps the two from being confused.
    let chars: Vec<char> = src.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        let kind = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '0'..='9' | '.' => {
                let (kind, end) = number(&chars, start)?;
                i = end;
                tokens.push(Token {
                    kind,
                    position: start,
                });
                continue;
            }
            'a'..='z' | '_' => {
                while i < chars.len() && matches!(chars[i], 'a'..='z' | '0'..='9' | '_') {
                    i += 1;
                }
                if i < chars.len() && chars[i].is_ascii_uppercase() {
                    return Err(FormulaError::new(
                        i,
                        format!(
                            "unexpected `{}` at column {}: keys are written in lowercase",
                            chars[i],
                            i + 1
                        ),
                    ));
                }
                tokens.push(Token {
                    kind: TokenKind::Ident(chars[start..i].iter().collect()),
                    position: start,
                });
                continue;
            }
            '+' => TokenKind::Plus,
            '-' => TokenKind::Minus,
            '*' => TokenKind::Star,
            '/' => TokenKind::Slash,
            '(' => TokenKind::LParen,
            ')' => TokenKind::RParen,
            '[' => TokenKind::LBracket,
            ']' => TokenKind::RBracket,
            ',' => TokenKind::Comma,
            '>' | '<' | '=' | '!' => {
                let followed_by_eq = chars.get(i + 1) == Some(&'=');
                let kind = match (c, followed_by_eq) {
                    ('>', true) => TokenKind::Ge,
                    ('<', true) => TokenKind::Le,
                    ('=', true) => TokenKind::EqEq,
                    ('!', true) => TokenKind::Ne,
                    ('>', false) => TokenKind::Gt,
                    ('<', false) => TokenKind::Lt,
                    ('=', false) => {
                        return Err(FormulaError::new(
                            start,
                            format!(
                                "unexpected `=` at column {}: to compare for equality write `==` \
                                 (a formula is only the right-hand side, without `key =`)",
                                start + 1
                            ),
                        ));
                    }
                    _ => {
                        return Err(FormulaError::new(
                            start,
                            format!("unexpected `!` at column {}: did you mean `!=`?", start + 1),
                        ));
                    }
                };
                i += if followed_by_eq { 2 } else { 1 };
                tokens.push(Token {
                    kind,
                    position: start,
                });
                continue;
            }
            other => {
                let hint = if other.is_ascii_uppercase() {
                    ": keys are written in lowercase"
                } else {
                    ""
                };
                return Err(FormulaError::new(
                    start,
                    format!(
                        "unexpected character `{}` at column {}{hint}",
                        other.escape_debug(),
                        start + 1
                    ),
                ));
            }
        };
        i += 1;
        tokens.push(Token {
            kind,
            position: start,
        });
    }
    tokens.push(Token {
        kind: TokenKind::Eof,
        position: chars.len(),
    });
    Ok(tokens)
}

/// Read a number starting at `start`: `12`, `0.5` or `.5`. Returns the token and the offset just
/// past it.
fn number(chars: &[char], start: usize) -> Result<(TokenKind, usize), FormulaError> {
    let mut i = start;
    while i < chars.len() && chars[i].is_ascii_digit() {
        i += 1;
    }
    let mut integer = true;
    if i < chars.len() && chars[i] == '.' {
        integer = false;
        let dot = i;
        i += 1;
        let fraction_start = i;
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
        if i == fraction_start {
            // `5.` and a lone `.` are rejected: they are more often a typo than a number.
            return Err(FormulaError::new(
                dot,
                format!("expected a digit after `.` at column {}", dot + 1),
            ));
        }
    }
    if i < chars.len() && chars[i] == '.' {
        return Err(FormulaError::new(
            i,
            format!("unexpected second `.` in a number at column {}", i + 1),
        ));
    }
    let text: String = chars[start..i].iter().collect();
    // `from_str_exact` refuses a literal that would lose digits (more than 28 decimal places or
    // too large), rather than silently rounding what the analyst wrote.
    let value = Decimal::from_str_exact(&text).map_err(|_| {
            FormulaError::new(
                start,
                format!(
                    "the number `{text}` at column {} cannot be represented exactly (at most 28 digits)",
                    start + 1
                ),
            )
        })?;
    Ok((TokenKind::Number { value, integer }, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<TokenKind> {
        tokenize(src).unwrap().into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn tokens_and_positions() {
        let tokens = tokenize(" revenue[-1] >= .5").unwrap();
        let positions: Vec<usize> = tokens.iter().map(|t| t.position).collect();
        assert_eq!(positions, vec![1, 8, 9, 10, 11, 13, 16, 18]);
        assert_eq!(
            kinds("a!=b==c<d>e<=f"),
            vec![
                TokenKind::Ident("a".into()),
                TokenKind::Ne,
                TokenKind::Ident("b".into()),
                TokenKind::EqEq,
                TokenKind::Ident("c".into()),
                TokenKind::Lt,
                TokenKind::Ident("d".into()),
                TokenKind::Gt,
                TokenKind::Ident("e".into()),
                TokenKind::Le,
                TokenKind::Ident("f".into()),
                TokenKind::Eof,
            ]
        );
    }

    #[test]
    fn numbers() {
        let one_half = Decimal::new(5, 1);
        assert_eq!(
            kinds(".5 0.5 12"),
            vec![
                TokenKind::Number {
                    value: one_half,
                    integer: false
                },
                TokenKind::Number {
                    value: one_half,
                    integer: false
                },
                TokenKind::Number {
                    value: Decimal::from(12),
                    integer: true
                },
                TokenKind::Eof,
            ]
        );
        assert_eq!(tokenize("5.").unwrap_err().position, 1);
        assert_eq!(tokenize("1.2.3").unwrap_err().position, 3);
        assert_eq!(tokenize("x + .").unwrap_err().position, 4);
        assert!(tokenize("123456789012345678901234567890").is_err());
        assert!(tokenize("0.00000000000000000000000000001").is_err());
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        let err = tokenize("é + #").unwrap_err();
        assert_eq!(err.position, 0);
        let err = tokenize("a + é").unwrap_err();
        assert_eq!(err.position, 4);
        assert_eq!(err.message, "unexpected character `é` at column 5");
    }

    #[test]
    fn bad_characters() {
        assert_eq!(tokenize("a = b").unwrap_err().position, 2);
        assert_eq!(tokenize("!a").unwrap_err().position, 0);
        let err = tokenize("Revenue").unwrap_err();
        assert_eq!(err.position, 0);
        assert!(err.message.contains("lowercase"));
        assert_eq!(tokenize("revEnue").unwrap_err().position, 3);
        assert_eq!(tokenize("a % b").unwrap_err().position, 2);
    }
}
