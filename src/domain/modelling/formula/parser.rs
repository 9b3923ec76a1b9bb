//! Recursive descent over the tokens of [`lexer`](super::lexer); the grammar is in the module
//! documentation of [`formula`](super).

use rust_decimal::prelude::ToPrimitive;

use super::{
    BinaryOp, CompareOp, Condition, Expr, FormulaError, FormulaLimits, MAX_DEPTH, MAX_OFFSET,
    MAX_SUM_PERIODS,
    lexer::{Token, TokenKind, tokenize},
};

/// Parse a formula (the right-hand side only: `(revenue - cogs) / revenue`).
///
/// Only the syntax is checked; whether the keys exist is [`validate`](super::validate)'s job.
///
/// ```
/// use finvision::domain::modelling::formula::parse;
///
/// let expr = parse("revenue[-1] * (1 + growth_rate)").unwrap();
/// assert_eq!(expr.to_string(), "(revenue[-1] * (1 + growth_rate))");
/// let err = parse("min(a, b").unwrap_err();
/// assert_eq!((err.position, err.column()), (8, 9));
/// ```
pub fn parse(src: &str) -> Result<Expr, FormulaError> {
    parse_with(src, &FormulaLimits::UNLIMITED)
}

/// Parse a formula within `limits`: the length is checked before the lexer runs, and the node
/// and argument counts as the parser goes, so that an oversized formula is refused after at most
/// `max_nodes` nodes were built, however long it is.
///
/// ```
/// use finvision::domain::modelling::formula::{FormulaLimits, parse_with};
///
/// let limits = FormulaLimits { max_length: 2_000, max_nodes: 500, max_args: 3 };
/// assert!(parse_with("min(a, b, c)", &limits).is_ok());
/// assert!(parse_with("min(a, b, c, d)", &limits).is_err());
/// ```
pub fn parse_with(src: &str, limits: &FormulaLimits) -> Result<Expr, FormulaError> {
    parse_counted(src, limits).0
}

/// The work a parse did, for tests that show a hostile formula is refused cheaply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ParseWork {
    /// Tokens the lexer produced (0 when the length check refused the source).
    pub tokens_lexed: usize,
    /// Tokens the parser consumed.
    pub tokens_read: usize,
    /// Syntax-tree nodes built.
    pub nodes: usize,
}

/// [`parse_with`], also reporting the work done.
pub(crate) fn parse_counted(
    src: &str,
    limits: &FormulaLimits,
) -> (Result<Expr, FormulaError>, ParseWork) {
    let mut work = ParseWork::default();
    if let Err(e) = limits.check_length(src) {
        return (Err(e), work);
    }
    let tokens = match tokenize(src) {
        Ok(tokens) => tokens,
        Err(e) => return (Err(e), work),
    };
    work.tokens_lexed = tokens.len();
    let mut parser = Parser {
        tokens,
        index: 0,
        nesting: 0,
        limits: *limits,
        nodes: 0,
    };
    let result = parser.formula();
    work.tokens_read = parser.index;
    work.nodes = parser.nodes;
    (result, work)
}

struct Parser {
    tokens: Vec<Token>,
    index: usize,
    /// How many `unary` calls are active: bounds the recursion of the parser.
    nesting: usize,
    limits: FormulaLimits,
    /// Nodes built so far, counted as [`node_count`](super::node_count) counts them.
    nodes: usize,
}

/// The deepest syntactic nesting (active `unary` calls) the parser accepts. The limit that
/// matters to analysts is [`MAX_DEPTH`] on the expression itself, where parentheses do not
/// count; this one only stops a wall of `((((` from exhausting the stack before an expression
/// is built. It is what the fully parenthesised print of an expression within `MAX_DEPTH` needs
/// (two per level, for `(-x)`), so printing and re-parsing never trips it, and no more: debug
/// builds spend kilobytes of stack per level.
const MAX_NESTING: usize = 2 * MAX_DEPTH + 2;

/// `expr`, if it is within [`MAX_DEPTH`]; `at` is where its operator or function was written.
fn within_depth(expr: Expr, at: usize) -> Result<Expr, FormulaError> {
    if depth(&expr) > MAX_DEPTH {
        return Err(too_deep(at));
    }
    Ok(expr)
}

fn column(position: usize) -> usize {
    position + 1
}

/// The number of levels of `expr`, for the depth limit on chains of operators (which the
/// parser builds in a loop rather than by recursion, yet evaluation recurses through).
fn depth(expr: &Expr) -> usize {
    match expr {
        Expr::Number(_) | Expr::Ref { .. } | Expr::Sum { .. } => 1,
        Expr::Neg(inner) | Expr::Abs(inner) => 1 + depth(inner),
        Expr::Binary { lhs, rhs, .. } => 1 + depth(lhs).max(depth(rhs)),
        Expr::Min(args) | Expr::Max(args) => 1 + args.iter().map(depth).max().unwrap_or(0),
        Expr::If {
            cond,
            then,
            otherwise,
        } => {
            1 + depth(&cond.lhs)
                .max(depth(&cond.rhs))
                .max(depth(then))
                .max(depth(otherwise))
        }
    }
}

fn too_deep(position: usize) -> FormulaError {
    FormulaError::new(
        position,
        format!(
            "the formula is nested too deeply at column {} (at most {MAX_DEPTH} levels)",
            column(position)
        ),
    )
}

fn function_name(name: &str) -> Option<&'static str> {
    super::RESERVED_WORDS.iter().copied().find(|w| *w == name)
}

impl Parser {
    /// `formula := additive EOF`
    fn formula(&mut self) -> Result<Expr, FormulaError> {
        if self.peek().kind == TokenKind::Eof {
            return Err(FormulaError::new(0, "the formula is empty"));
        }
        let expr = self.additive()?;
        let token = self.peek();
        if token.kind != TokenKind::Eof {
            return Err(self.trailing(token));
        }
        // `unary` checks the count before it descends; the last node built may still be over.
        if self.nodes > self.limits.max_nodes {
            return Err(self.limits.too_many_nodes(token.position));
        }
        Ok(expr)
    }

    /// The error at `at` for a parse that went past the nesting or the node limit.
    #[cold]
    #[inline(never)]
    fn over_limit(&self, at: usize) -> FormulaError {
        if self.nesting >= MAX_NESTING {
            too_deep(at)
        } else {
            self.limits.too_many_nodes(at)
        }
    }

    fn peek(&self) -> Token {
        // The token list always ends with `Eof` and `advance` never moves past it.
        self.tokens
            .get(self.index)
            .or_else(|| self.tokens.last())
            .cloned()
            .unwrap_or(Token {
                kind: TokenKind::Eof,
                position: 0,
            })
    }

    fn peek_at(&self, ahead: usize) -> TokenKind {
        self.tokens
            .get(self.index + ahead)
            .map_or(TokenKind::Eof, |t| t.kind.clone())
    }

    fn advance(&mut self) -> Token {
        let token = self.peek();
        if token.kind != TokenKind::Eof {
            self.index += 1;
        }
        token
    }

    /// Consume a token of `kind`, or fail with "expected … at column N, found …" plus `context`.
    fn expect(&mut self, kind: TokenKind, context: &str) -> Result<Token, FormulaError> {
        let token = self.peek();
        if token.kind == kind {
            return Ok(self.advance());
        }
        Err(FormulaError::new(
            token.position,
            format!(
                "expected {} at column {}{context}, found {}",
                kind.describe(),
                column(token.position),
                token.kind.describe()
            ),
        ))
    }

    /// The error for a token left over after a complete formula.
    fn trailing(&self, token: Token) -> FormulaError {
        let at = column(token.position);
        let message = match token.kind {
            TokenKind::Gt
            | TokenKind::Lt
            | TokenKind::Ge
            | TokenKind::Le
            | TokenKind::EqEq
            | TokenKind::Ne => format!(
                "unexpected {} at column {at}: comparisons are only allowed as the condition of \
                 `if(condition, value if true, value if false)`",
                token.kind.describe()
            ),
            TokenKind::RParen => format!("unexpected `)` at column {at}: there is no `(` to close"),
            other => format!(
                "unexpected {} at column {at}: expected an operator (`+`, `-`, `*`, `/`) or the \
                 end of the formula",
                other.describe()
            ),
        };
        FormulaError::new(token.position, message)
    }

    /// `additive := term (("+" | "-") term)*`
    fn additive(&mut self) -> Result<Expr, FormulaError> {
        let mut lhs = self.term()?;
        let mut lhs_depth = depth(&lhs);
        loop {
            let token = self.peek();
            let op = match token.kind {
                TokenKind::Plus => BinaryOp::Add,
                TokenKind::Minus => BinaryOp::Sub,
                _ => return Ok(lhs),
            };
            self.advance();
            self.nodes += 1;
            let rhs = self.term()?;
            lhs_depth = 1 + lhs_depth.max(depth(&rhs));
            if lhs_depth > MAX_DEPTH {
                return Err(too_deep(token.position));
            }
            lhs = Expr::Binary {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            };
        }
    }

    /// `term := unary (("*" | "/") unary)*`
    fn term(&mut self) -> Result<Expr, FormulaError> {
        let mut lhs = self.unary()?;
        let mut lhs_depth = depth(&lhs);
        loop {
            let token = self.peek();
            let op = match token.kind {
                TokenKind::Star => BinaryOp::Mul,
                TokenKind::Slash => BinaryOp::Div,
                _ => return Ok(lhs),
            };
            self.advance();
            self.nodes += 1;
            let rhs = self.unary()?;
            lhs_depth = 1 + lhs_depth.max(depth(&rhs));
            if lhs_depth > MAX_DEPTH {
                return Err(too_deep(token.position));
            }
            lhs = Expr::Binary {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            };
        }
    }

    /// `unary := "-" unary | primary`. Every recursion of the parser passes through here, so
    /// this is where its depth is bounded.
    fn unary(&mut self) -> Result<Expr, FormulaError> {
        let token = self.peek();
        // Every node is counted where it is built, and every recursion passes here: a formula
        // over the node limit stops at the next node it would build, not at its end.
        if self.nesting >= MAX_NESTING || self.nodes > self.limits.max_nodes {
            return Err(self.over_limit(token.position));
        }
        self.nesting += 1;
        let result = if token.kind == TokenKind::Minus {
            self.nodes += 1;
            self.advance();
            self.unary()
                .and_then(|inner| within_depth(Expr::Neg(Box::new(inner)), token.position))
        } else {
            self.primary()
        };
        self.nesting -= 1;
        result
    }

    fn primary(&mut self) -> Result<Expr, FormulaError> {
        let token = self.advance();
        match token.kind {
            TokenKind::Number { value, .. } => {
                self.nodes += 1;
                Ok(Expr::Number(value))
            }
            TokenKind::Ident(name) => {
                let next = self.peek_at(0);
                if let Some(function) = function_name(&name) {
                    if next != TokenKind::LParen {
                        let after = self.peek();
                        return Err(FormulaError::new(
                            after.position,
                            format!(
                                "expected `(` at column {} after the function `{function}`, \
                                 found {} (`{function}` is reserved: it cannot be a key)",
                                column(after.position),
                                after.kind.describe()
                            ),
                        ));
                    }
                    self.advance();
                    self.nodes += 1;
                    let call = self.call(function, token.position)?;
                    return within_depth(call, token.position);
                }
                if next == TokenKind::LParen {
                    return Err(FormulaError::new(
                        token.position,
                        format!(
                            "unknown function `{name}` at column {}: the functions are `min`, \
                             `max`, `abs`, `sum` and `if`",
                            column(token.position)
                        ),
                    ));
                }
                self.nodes += 1;
                let offset = self.offset()?;
                Ok(Expr::Ref {
                    key: name,
                    offset,
                    position: token.position,
                })
            }
            TokenKind::LParen => {
                let inner = self.additive()?;
                self.expect(
                    TokenKind::RParen,
                    &format!(" to close the `(` at column {}", column(token.position)),
                )?;
                Ok(inner)
            }
            TokenKind::Eof => Err(FormulaError::new(
                token.position,
                format!(
                    "the formula ends too early at column {}: expected a number, a key or `(`",
                    column(token.position)
                ),
            )),
            other => Err(FormulaError::new(
                token.position,
                format!(
                    "expected a number, a key or `(` at column {}, found {}",
                    column(token.position),
                    other.describe()
                ),
            )),
        }
    }

    /// An optional `[offset]` after a key; `0` when absent.
    fn offset(&mut self) -> Result<i32, FormulaError> {
        if self.peek().kind != TokenKind::LBracket {
            return Ok(0);
        }
        let open = self.advance();
        let mut negative = false;
        match self.peek().kind {
            TokenKind::Minus => {
                negative = true;
                self.advance();
            }
            TokenKind::Plus => {
                self.advance();
            }
            _ => {}
        }
        let token = self.advance();
        let magnitude = match token.kind {
            TokenKind::Number {
                value,
                integer: true,
            } => value,
            other => {
                return Err(FormulaError::new(
                    token.position,
                    format!(
                        "a period offset must be a whole number such as `[-1]` or `[2]`; found \
                         {} at column {}",
                        other.describe(),
                        column(token.position)
                    ),
                ));
            }
        };
        let offset = magnitude
            .to_i32()
            .filter(|m| *m <= MAX_OFFSET)
            .ok_or_else(|| {
                FormulaError::new(
                    token.position,
                    format!(
                        "the offset at column {} is too large (at most {MAX_OFFSET} periods)",
                        column(token.position)
                    ),
                )
            })?;
        self.expect(
            TokenKind::RBracket,
            &format!(" to close the `[` at column {}", column(open.position)),
        )?;
        Ok(if negative { -offset } else { offset })
    }

    /// The arguments of a function after its `(`, up to and including the `)`. Returns each
    /// argument with the position where it starts.
    fn arguments(
        &mut self,
        function: &str,
        open: usize,
    ) -> Result<Vec<(Expr, usize)>, FormulaError> {
        let mut args = Vec::new();
        if self.peek().kind == TokenKind::RParen {
            let close = self.advance();
            return Err(FormulaError::new(
                close.position,
                format!(
                    "`{function}` needs at least one argument (column {})",
                    column(close.position)
                ),
            ));
        }
        loop {
            let start = self.peek().position;
            if args.len() >= self.limits.max_args {
                return Err(self.limits.too_many_args(function, start));
            }
            args.push((self.additive()?, start));
            if self.peek().kind == TokenKind::Comma {
                self.advance();
                continue;
            }
            self.expect(
                TokenKind::RParen,
                &format!(" to close `{function}(` at column {}", column(open)),
            )?;
            return Ok(args);
        }
    }

    /// A function call after `name(`; `at` is where the name starts.
    fn call(&mut self, function: &'static str, at: usize) -> Result<Expr, FormulaError> {
        match function {
            "min" | "max" => {
                let args = self
                    .arguments(function, at)?
                    .into_iter()
                    .map(|(e, _)| e)
                    .collect();
                Ok(if function == "min" {
                    Expr::Min(args)
                } else {
                    Expr::Max(args)
                })
            }
            "abs" => {
                let mut args = self.arguments(function, at)?;
                if args.len() != 1 {
                    let extra = args.get(1).map_or(at, |(_, p)| *p);
                    return Err(FormulaError::new(
                        extra,
                        format!(
                            "`abs` takes exactly one argument; unexpected second argument at \
                             column {}",
                            column(extra)
                        ),
                    ));
                }
                let (arg, _) = args.remove(0);
                Ok(Expr::Abs(Box::new(arg)))
            }
            "sum" => self.sum(at),
            _ => self.if_call(at),
        }
    }

    /// `sum(key offset?, integer)` after `sum(`.
    fn sum(&mut self, at: usize) -> Result<Expr, FormulaError> {
        let token = self.advance();
        let key = match token.kind {
            TokenKind::Ident(name) if function_name(&name).is_none() => name,
            other => {
                return Err(FormulaError::new(
                    token.position,
                    format!(
                        "the first argument of `sum` must be a metric key such as `revenue` or \
                         `revenue[-1]`; found {} at column {}",
                        other.describe(),
                        column(token.position)
                    ),
                ));
            }
        };
        let offset = self.offset()?;
        self.expect(
            TokenKind::Comma,
            " in `sum(key, periods)`: the first argument must be a single key",
        )?;
        let count_token = self.advance();
        let count_error = |position: usize| {
            FormulaError::new(
                position,
                format!(
                    "the second argument of `sum` must be a whole number of periods between 1 \
                     and {MAX_SUM_PERIODS}, such as `sum(revenue, 3)` (column {})",
                    column(position)
                ),
            )
        };
        let count = match count_token.kind {
            TokenKind::Number {
                value,
                integer: true,
            } => value
                .to_u32()
                .filter(|n| (1..=MAX_SUM_PERIODS).contains(n))
                .ok_or_else(|| count_error(count_token.position))?,
            _ => return Err(count_error(count_token.position)),
        };
        let close = self.peek();
        match close.kind {
            TokenKind::RParen => {
                self.advance();
            }
            TokenKind::Comma => {
                return Err(FormulaError::new(
                    close.position,
                    format!(
                        "`sum` takes exactly two arguments; unexpected `,` at column {}",
                        column(close.position)
                    ),
                ));
            }
            TokenKind::Eof => {
                self.expect(
                    TokenKind::RParen,
                    &format!(" to close `sum(` at column {}", column(at)),
                )?;
            }
            // `sum(x, 2 + 1)`: the count is not a lone literal.
            _ => return Err(count_error(count_token.position)),
        }
        Ok(Expr::Sum {
            key,
            offset,
            count,
            position: token.position,
        })
    }

    /// `if(lhs cmp rhs, then, otherwise)` after `if(`.
    fn if_call(&mut self, at: usize) -> Result<Expr, FormulaError> {
        let lhs = self.additive()?;
        let token = self.peek();
        let op = match token.kind {
            TokenKind::Gt => CompareOp::Gt,
            TokenKind::Lt => CompareOp::Lt,
            TokenKind::Ge => CompareOp::Ge,
            TokenKind::Le => CompareOp::Le,
            TokenKind::EqEq => CompareOp::Eq,
            TokenKind::Ne => CompareOp::Ne,
            other => {
                return Err(FormulaError::new(
                    token.position,
                    format!(
                        "expected a comparison (`>`, `<`, `>=`, `<=`, `==` or `!=`) at column {} \
                         in the condition of `if`, found {}",
                        column(token.position),
                        other.describe()
                    ),
                ));
            }
        };
        self.advance();
        let rhs = self.additive()?;
        let shape = " (`if` takes a condition, a value if true and a value if false)";
        self.expect(TokenKind::Comma, shape)?;
        let then = self.additive()?;
        self.expect(TokenKind::Comma, shape)?;
        let otherwise = self.additive()?;
        let close = self.peek();
        if close.kind == TokenKind::Comma {
            return Err(FormulaError::new(
                close.position,
                format!(
                    "`if` takes exactly three arguments; unexpected `,` at column {}",
                    column(close.position)
                ),
            ));
        }
        self.expect(
            TokenKind::RParen,
            &format!(" to close `if(` at column {}", column(at)),
        )?;
        Ok(Expr::If {
            cond: Box::new(Condition { op, lhs, rhs }),
            then: Box::new(then),
            otherwise: Box::new(otherwise),
        })
    }
}
