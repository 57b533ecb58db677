//! `--metadata-query`: the Python expression subset airbyte-ci accepted over a connector's
//! `data` mapping, parsed and evaluated here without any interpreter.
//!
//! What is accepted: the name `data`; string, number, `True`/`False`/`None` and list or tuple
//! literals; attribute access (`data.connectorBuildOptions.baseImage`); subscripts
//! (`data['tags'][0]`); the methods `.keys() .values() .items() .get(k[, d]) .startswith(s)
//! .endswith(s) .lower()`; `== != < <= > >=` (chained as in Python), `in`, `not in`, `is`,
//! `is not`; `and`, `or`, `not`, unary `-` and parentheses. Nothing else: no other names, no
//! builtins, no function calls, no imports, no name containing `__`.
//!
//! Semantics follow Python, with one deliberate difference: reading a missing key as an
//! attribute gives `None`, and so does any attribute of `None`. airbyte-ci (through
//! simpleeval) raised there and counted the connector as not matching; with `None`,
//! `data.connectorBuildOptions.baseImage is not None` selects the same connectors without a
//! warning for every connector lacking the key, and `... is None` selects the others.
//! Subscripts stay strict (`data['missing']` raises, as in Python). An expression that raises
//! while being evaluated (`'a' < 1`) counts as no match; the caller warns.

use std::cmp::Ordering;
use std::fmt;

use serde_json::Value;

/// A parsed query, ready to be evaluated against many connectors.
#[derive(Debug, Clone)]
pub struct Query {
    source: String,
    expr: Expr,
}

/// Why a query could not be parsed; `col` is 1-based, in characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid --metadata-query at column {col}: {message}\n  {}", excerpt(.query, *.col))]
pub struct QueryError {
    pub col: usize,
    pub message: String,
    pub query: String,
}

/// The query with a caret under column `col`; a long one cut to a window around it.
fn excerpt(query: &str, col: usize) -> String {
    const BEFORE: usize = 50;
    const AFTER: usize = 30;
    let chars: Vec<char> = query.chars().collect();
    let at = col.saturating_sub(1).min(chars.len());
    let start = at.saturating_sub(BEFORE);
    let end = (at + AFTER).min(chars.len());
    let (lead, trail) = (
        if start > 0 { "..." } else { "" },
        if end < chars.len() { "..." } else { "" },
    );
    let shown: String = chars[start..end].iter().collect();
    let caret = " ".repeat(lead.len() + at - start);
    format!("{lead}{shown}{trail}\n  {caret}^")
}

/// Why an evaluation raised, in Python's words where there are some.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(pub String);

impl Query {
    pub fn parse(source: &str) -> Result<Query, QueryError> {
        let err = |col: usize, message: String| QueryError {
            col,
            message,
            query: source.to_string(),
        };
        let tokens = tokenize(source).map_err(|(c, m)| err(c, m))?;
        let mut parser = Parser {
            tokens,
            pos: 0,
            nesting: 0,
        };
        let expr = parser.expression().map_err(|(c, m)| err(c, m))?.expr;
        if let Some(t) = parser.peek_token() {
            return Err(err(t.col, format!("unexpected {}", t.tok)));
        }
        Ok(Query {
            source: source.to_string(),
            expr,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the expression is truthy with `data` bound to `data`.
    pub fn matches(&self, data: &Value) -> Result<bool, EvalError> {
        Ok(truthy(&eval(&self.expr, data)?))
    }
}

// ---------------------------------------------------------------------------------- tokens --

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Name(String),
    Str(String),
    Int(i64),
    Float(f64),
    /// Punctuation and operators: `( ) [ ] , . == != < <= > >= -`.
    Op(&'static str),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Name(n) => write!(f, "`{n}`"),
            Tok::Str(s) => write!(f, "string {s:?}"),
            Tok::Int(i) => write!(f, "number {i}"),
            Tok::Float(x) => write!(f, "number {x}"),
            Tok::Op(o) => write!(f, "`{o}`"),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    col: usize,
}

type ParseResult<T> = Result<T, (usize, String)>;

/// Python words for what a query cannot do (define, loop, branch, import, ...).
const STATEMENT_WORDS: &[&str] = &[
    "lambda", "for", "if", "else", "import", "from", "def", "class", "while", "with", "yield",
    "await", "async", "return", "del", "global", "nonlocal", "assert", "raise", "try", "except",
    "finally", "pass", "break", "continue", "as",
];

const OPERATORS: &[&str] = &[
    "==", "!=", "<=", ">=", "<", ">", "(", ")", "[", "]", ",", ".", "-",
];

fn tokenize(src: &str) -> ParseResult<Vec<Token>> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            if STATEMENT_WORDS.contains(&name.as_str()) {
                return Err((
                    col,
                    format!("`{name}` is not supported: a query is one expression over `data` (comparisons, `in`, `and`/`or`/`not`, attributes, subscripts, a few methods)"),
                ));
            }
            if name.contains("__") {
                return Err((
                    col,
                    format!("`{name}`: names containing `__` are not allowed"),
                ));
            }
            if i < chars.len() && (chars[i] == '\'' || chars[i] == '"') {
                return Err((
                    col,
                    format!("string prefix `{name}` is not supported; use a plain '...' string"),
                ));
            }
            out.push(Token {
                tok: Tok::Name(name),
                col,
            });
        } else if c.is_ascii_digit() {
            let (tok, next) = number(&chars, i)?;
            out.push(Token { tok, col });
            i = next;
        } else if c == '\'' || c == '"' {
            let (s, next) = string(&chars, i)?;
            out.push(Token {
                tok: Tok::Str(s),
                col,
            });
            i = next;
        } else if let Some(op) = OPERATORS.iter().find(|op| {
            op.chars()
                .enumerate()
                .all(|(k, oc)| chars.get(i + k) == Some(&oc))
        }) {
            out.push(Token {
                tok: Tok::Op(op),
                col,
            });
            i += op.len();
        } else {
            return Err((col, format!("unexpected character `{c}`")));
        }
    }
    Ok(out)
}

fn number(chars: &[char], start: usize) -> ParseResult<(Tok, usize)> {
    let mut i = start;
    let mut float = false;
    let digits = |i: &mut usize| {
        while *i < chars.len() && (chars[*i].is_ascii_digit() || chars[*i] == '_') {
            *i += 1;
        }
    };
    digits(&mut i);
    if i + 1 < chars.len() && chars[i] == '.' && chars[i + 1].is_ascii_digit() {
        float = true;
        i += 1;
        digits(&mut i);
    }
    if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
        let mut j = i + 1;
        if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
            j += 1;
        }
        if j < chars.len() && chars[j].is_ascii_digit() {
            float = true;
            i = j;
            digits(&mut i);
        }
    }
    let text: String = chars[start..i].iter().filter(|c| **c != '_').collect();
    let bad = || (start + 1, format!("invalid number `{text}`"));
    let tok = if float {
        Tok::Float(text.parse().map_err(|_| bad())?)
    } else {
        Tok::Int(text.parse().map_err(|_| bad())?)
    };
    Ok((tok, i))
}

fn string(chars: &[char], start: usize) -> ParseResult<(String, usize)> {
    let quote = chars[start];
    let mut out = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            c if c == quote => return Ok((out, i + 1)),
            '\\' if i + 1 < chars.len() => {
                match chars[i + 1] {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    '0' => out.push('\0'),
                    c @ ('\\' | '\'' | '"') => out.push(c),
                    // Python keeps unknown escapes as written.
                    c => {
                        out.push('\\');
                        out.push(c);
                    }
                }
                i += 2;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Err((start + 1, "unterminated string".into()))
}

// ------------------------------------------------------------------------------------ AST --

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
    Is,
    IsNot,
}

impl Cmp {
    fn symbol(self) -> &'static str {
        match self {
            Cmp::Eq => "==",
            Cmp::Ne => "!=",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
            Cmp::In => "in",
            Cmp::NotIn => "not in",
            Cmp::Is => "is",
            Cmp::IsNot => "is not",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Keys,
    Values,
    Items,
    Get,
    StartsWith,
    EndsWith,
    Lower,
}

const METHODS: &[(&str, Method, usize, usize)] = &[
    ("keys", Method::Keys, 0, 0),
    ("values", Method::Values, 0, 0),
    ("items", Method::Items, 0, 0),
    ("get", Method::Get, 1, 2),
    ("startswith", Method::StartsWith, 1, 1),
    ("endswith", Method::EndsWith, 1, 1),
    ("lower", Method::Lower, 0, 0),
];

fn method_list() -> String {
    METHODS
        .iter()
        .map(|(n, ..)| format!(".{n}()"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Debug, Clone)]
enum Expr {
    Lit(Value),
    Data,
    List(Vec<Expr>),
    Attr(Box<Expr>, String),
    Index(Box<Expr>, Box<Expr>),
    Call(Box<Expr>, Method, Vec<Expr>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Compare(Box<Expr>, Vec<(Cmp, Expr)>),
}

// --------------------------------------------------------------------------------- parser --

/// Deeper queries are refused: parsing, evaluating and dropping a query recurse over its
/// nesting, and a query from the command line must not be able to overflow the stack.
/// (Python's own parser stops at 200 nested parentheses; real queries nest a few levels.)
const MAX_DEPTH: usize = 100;

fn too_deep() -> String {
    format!("the query nests more than {MAX_DEPTH} levels deep; split it or simplify it")
}

/// A parsed expression with the depth of its tree.
struct Node {
    expr: Expr,
    depth: usize,
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    /// How deep the parser has recursed.
    nesting: usize,
}

impl Parser {
    fn peek_token(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn peek(&self) -> Option<&Tok> {
        self.peek_token().map(|t| &t.tok)
    }

    fn peek_at(&self, k: usize) -> Option<&Tok> {
        self.tokens.get(self.pos + k).map(|t| &t.tok)
    }

    /// Column of the next token, or just past the end of the query.
    fn col(&self) -> usize {
        self.peek_token().map(|t| t.col).unwrap_or_else(|| {
            self.tokens.last().map_or(1, |t| {
                t.col
                    + match &t.tok {
                        Tok::Name(n) => n.chars().count(),
                        Tok::Op(o) => o.len(),
                        _ => 1,
                    }
            })
        })
    }

    fn is_name(&self, name: &str) -> bool {
        matches!(self.peek(), Some(Tok::Name(n)) if n == name)
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Some(Tok::Op(o)) if *o == op)
    }

    fn expect_op(&mut self, op: &str) -> ParseResult<()> {
        if self.is_op(op) {
            self.pos += 1;
            Ok(())
        } else {
            Err((
                self.col(),
                format!("expected `{op}`, found {}", self.found()),
            ))
        }
    }

    fn found(&self) -> String {
        self.peek()
            .map_or("the end of the query".into(), |t| t.to_string())
    }

    /// Runs `f` one nesting level deeper; parsing recurses there, so the level is bounded.
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> ParseResult<T>) -> ParseResult<T> {
        if self.nesting >= MAX_DEPTH {
            return Err((self.col(), too_deep()));
        }
        self.nesting += 1;
        let result = f(self);
        self.nesting -= 1;
        result
    }

    /// `expr`, whose deepest child is `children` levels deep, unless that is too deep.
    fn node(&self, expr: Expr, children: usize, col: usize) -> ParseResult<Node> {
        let depth = children + 1;
        if depth > MAX_DEPTH {
            return Err((col, too_deep()));
        }
        Ok(Node { expr, depth })
    }

    fn expression(&mut self) -> ParseResult<Node> {
        self.nested(Self::or_test)
    }

    fn or_test(&mut self) -> ParseResult<Node> {
        let mut left = self.and_test()?;
        while self.is_name("or") {
            let col = self.col();
            self.pos += 1;
            let right = self.and_test()?;
            let depth = left.depth.max(right.depth);
            left = self.node(
                Expr::Or(Box::new(left.expr), Box::new(right.expr)),
                depth,
                col,
            )?;
        }
        Ok(left)
    }

    fn and_test(&mut self) -> ParseResult<Node> {
        let mut left = self.not_test()?;
        while self.is_name("and") {
            let col = self.col();
            self.pos += 1;
            let right = self.not_test()?;
            let depth = left.depth.max(right.depth);
            left = self.node(
                Expr::And(Box::new(left.expr), Box::new(right.expr)),
                depth,
                col,
            )?;
        }
        Ok(left)
    }

    fn not_test(&mut self) -> ParseResult<Node> {
        if self.is_name("not") {
            let col = self.col();
            self.pos += 1;
            let inner = self.nested(Self::not_test)?;
            return self.node(Expr::Not(Box::new(inner.expr)), inner.depth, col);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> ParseResult<Node> {
        let col = self.col();
        let first = self.unary()?;
        let mut depth = first.depth;
        let mut rest = Vec::new();
        while let Some(op) = self.comparison_op() {
            let right = self.unary()?;
            depth = depth.max(right.depth);
            rest.push((op, right.expr));
        }
        if rest.is_empty() {
            Ok(first)
        } else {
            self.node(Expr::Compare(Box::new(first.expr), rest), depth, col)
        }
    }

    fn comparison_op(&mut self) -> Option<Cmp> {
        let (op, width) = match self.peek()? {
            Tok::Op("==") => (Cmp::Eq, 1),
            Tok::Op("!=") => (Cmp::Ne, 1),
            Tok::Op("<") => (Cmp::Lt, 1),
            Tok::Op("<=") => (Cmp::Le, 1),
            Tok::Op(">") => (Cmp::Gt, 1),
            Tok::Op(">=") => (Cmp::Ge, 1),
            Tok::Name(n) if n == "in" => (Cmp::In, 1),
            Tok::Name(n) if n == "not" => match self.peek_at(1) {
                Some(Tok::Name(m)) if m == "in" => (Cmp::NotIn, 2),
                _ => return None,
            },
            Tok::Name(n) if n == "is" => match self.peek_at(1) {
                Some(Tok::Name(m)) if m == "not" => (Cmp::IsNot, 2),
                _ => (Cmp::Is, 1),
            },
            _ => return None,
        };
        self.pos += width;
        Some(op)
    }

    fn unary(&mut self) -> ParseResult<Node> {
        if self.is_op("-") {
            let col = self.col();
            self.pos += 1;
            let inner = self.nested(Self::unary)?;
            return self.node(Expr::Neg(Box::new(inner.expr)), inner.depth, col);
        }
        self.postfix()
    }

    fn postfix(&mut self) -> ParseResult<Node> {
        let mut expr = self.atom()?;
        loop {
            if self.is_op(".") {
                self.pos += 1;
                let col = self.col();
                let name = match self.peek() {
                    Some(Tok::Name(n)) if !is_keyword(n) => n.clone(),
                    _ => {
                        return Err((
                            col,
                            format!("expected a name after `.`, found {}", self.found()),
                        ))
                    }
                };
                self.pos += 1;
                if self.is_op("(") {
                    expr = self.call(expr, &name, col)?;
                } else {
                    expr = self.node(Expr::Attr(Box::new(expr.expr), name), expr.depth, col)?;
                }
            } else if self.is_op("[") {
                let col = self.col();
                self.pos += 1;
                let index = self.expression()?;
                self.expect_op("]")?;
                let depth = expr.depth.max(index.depth);
                expr = self.node(
                    Expr::Index(Box::new(expr.expr), Box::new(index.expr)),
                    depth,
                    col,
                )?;
            } else if self.is_op("(") {
                return Err((
                    self.col(),
                    format!(
                        "function calls are not allowed; the only calls are the methods {}",
                        method_list()
                    ),
                ));
            } else {
                return Ok(expr);
            }
        }
    }

    fn call(&mut self, receiver: Node, name: &str, col: usize) -> ParseResult<Node> {
        let Some(&(_, method, min, max)) = METHODS.iter().find(|(n, ..)| *n == name) else {
            return Err((
                col,
                format!(
                    "`.{name}()` is not allowed; the only calls are the methods {}",
                    method_list()
                ),
            ));
        };
        self.expect_op("(")?;
        let (args, depth) = self.items(")")?;
        if args.len() < min || args.len() > max {
            let want = if min == max {
                format!("{min}")
            } else {
                format!("{min} or {max}")
            };
            return Err((
                col,
                format!("`.{name}()` takes {want} argument(s), {} given", args.len()),
            ));
        }
        self.node(
            Expr::Call(Box::new(receiver.expr), method, args),
            receiver.depth.max(depth),
            col,
        )
    }

    /// Comma-separated expressions up to `close` (consumed), with the deepest one's depth; a
    /// trailing comma is allowed.
    fn items(&mut self, close: &str) -> ParseResult<(Vec<Expr>, usize)> {
        let mut items = Vec::new();
        let mut depth = 0;
        loop {
            if self.is_op(close) {
                self.pos += 1;
                return Ok((items, depth));
            }
            let item = self.expression()?;
            depth = depth.max(item.depth);
            items.push(item.expr);
            if self.is_op(",") {
                self.pos += 1;
            } else {
                self.expect_op(close)?;
                return Ok((items, depth));
            }
        }
    }

    fn atom(&mut self) -> ParseResult<Node> {
        let col = self.col();
        let Some(tok) = self.peek().cloned() else {
            return Err((col, "unexpected end of the query".into()));
        };
        self.pos += 1;
        let leaf = |expr| Ok(Node { expr, depth: 1 });
        match tok {
            Tok::Str(s) => leaf(Expr::Lit(Value::String(s))),
            Tok::Int(i) => leaf(Expr::Lit(Value::from(i))),
            Tok::Float(x) => leaf(Expr::Lit(
                serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number),
            )),
            Tok::Op("[") => {
                let (items, depth) = self.items("]")?;
                self.node(Expr::List(items), depth, col)
            }
            Tok::Op("(") => {
                if self.is_op(")") {
                    self.pos += 1;
                    return leaf(Expr::List(vec![]));
                }
                let first = self.expression()?;
                if self.is_op(",") {
                    // A tuple: treated as a list, which behaves the same for `in` and `==`.
                    self.pos += 1;
                    let (rest, depth) = self.items(")")?;
                    let depth = depth.max(first.depth);
                    let mut items = vec![first.expr];
                    items.extend(rest);
                    return self.node(Expr::List(items), depth, col);
                }
                self.expect_op(")")?;
                Ok(first)
            }
            Tok::Name(n) => match n.as_str() {
                "data" => leaf(Expr::Data),
                "None" => leaf(Expr::Lit(Value::Null)),
                "True" => leaf(Expr::Lit(Value::Bool(true))),
                "False" => leaf(Expr::Lit(Value::Bool(false))),
                _ if is_keyword(&n) => Err((col, format!("unexpected `{n}`"))),
                _ => Err((
                    col,
                    format!("unknown name `{n}`: the only name is `data` (no builtins)"),
                )),
            },
            Tok::Op(o) => Err((col, format!("unexpected `{o}`"))),
        }
    }
}

fn is_keyword(name: &str) -> bool {
    matches!(
        name,
        "and"
            | "or"
            | "not"
            | "in"
            | "is"
            | "if"
            | "else"
            | "lambda"
            | "for"
            | "import"
            | "None"
            | "True"
            | "False"
    )
}

// ------------------------------------------------------------------------------ evaluator --

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// A number as Python sees it (bools are ints).
enum Num {
    Int(i64),
    Float(f64),
}

fn as_num(v: &Value) -> Option<Num> {
    match v {
        Value::Bool(b) => Some(Num::Int(i64::from(*b))),
        Value::Number(n) => n
            .as_i64()
            .map(Num::Int)
            .or_else(|| n.as_f64().map(Num::Float)),
        _ => None,
    }
}

fn num_cmp(a: &Num, b: &Num) -> Option<Ordering> {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => Some(x.cmp(y)),
        (Num::Int(x), Num::Float(y)) => (*x as f64).partial_cmp(y),
        (Num::Float(x), Num::Int(y)) => x.partial_cmp(&(*y as f64)),
        (Num::Float(x), Num::Float(y)) => x.partial_cmp(y),
    }
}

fn py_eq(a: &Value, b: &Value) -> bool {
    if let (Some(x), Some(y)) = (as_num(a), as_num(b)) {
        return num_cmp(&x, &y) == Some(Ordering::Equal);
    }
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| py_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| py_eq(v, w)))
        }
        _ => false,
    }
}

fn py_order(op: Cmp, a: &Value, b: &Value) -> Result<Ordering, EvalError> {
    let unsupported = || {
        EvalError(format!(
            "'{}' not supported between instances of '{}' and '{}'",
            op.symbol(),
            type_name(a),
            type_name(b)
        ))
    };
    if let (Some(x), Some(y)) = (as_num(a), as_num(b)) {
        return num_cmp(&x, &y).ok_or_else(unsupported);
    }
    match (a, b) {
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                if !py_eq(p, q) {
                    return py_order(op, p, q);
                }
            }
            Ok(x.len().cmp(&y.len()))
        }
        _ => Err(unsupported()),
    }
}

fn contains(container: &Value, item: &Value) -> Result<bool, EvalError> {
    match container {
        Value::String(s) => match item {
            Value::String(sub) => Ok(s.contains(sub.as_str())),
            other => Err(EvalError(format!(
                "'in <string>' requires string as left operand, not {}",
                type_name(other)
            ))),
        },
        Value::Array(items) => Ok(items.iter().any(|x| py_eq(x, item))),
        Value::Object(map) => match item {
            Value::String(k) => Ok(map.contains_key(k)),
            Value::Array(_) | Value::Object(_) => {
                Err(EvalError(format!("unhashable type: '{}'", type_name(item))))
            }
            _ => Ok(false),
        },
        other => Err(EvalError(format!(
            "argument of type '{}' is not iterable",
            type_name(other)
        ))),
    }
}

fn compare(op: Cmp, a: &Value, b: &Value) -> Result<bool, EvalError> {
    Ok(match op {
        Cmp::Eq => py_eq(a, b),
        Cmp::Ne => !py_eq(a, b),
        Cmp::Lt => py_order(op, a, b)? == Ordering::Less,
        Cmp::Le => py_order(op, a, b)? != Ordering::Greater,
        Cmp::Gt => py_order(op, a, b)? == Ordering::Greater,
        Cmp::Ge => py_order(op, a, b)? != Ordering::Less,
        Cmp::In => contains(b, a)?,
        Cmp::NotIn => !contains(b, a)?,
        Cmp::Is => same(a, b),
        Cmp::IsNot => !same(a, b),
    })
}

/// Identity for the singletons `is` is meant for (`None`, `True`, `False`); values read from
/// a file are never the same object as a literal, so anything else is not identical.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        _ => false,
    }
}

fn eval(expr: &Expr, data: &Value) -> Result<Value, EvalError> {
    match expr {
        Expr::Lit(v) => Ok(v.clone()),
        Expr::Data => Ok(data.clone()),
        Expr::List(items) => Ok(Value::Array(
            items
                .iter()
                .map(|e| eval(e, data))
                .collect::<Result<_, _>>()?,
        )),
        Expr::Attr(target, name) => match eval(target, data)? {
            Value::Object(mut map) => Ok(map.remove(name).unwrap_or(Value::Null)),
            Value::Null => Ok(Value::Null),
            other => Err(EvalError(format!(
                "'{}' object has no attribute '{name}'",
                type_name(&other)
            ))),
        },
        Expr::Index(target, index) => {
            let target = eval(target, data)?;
            let index = eval(index, data)?;
            subscript(target, &index)
        }
        Expr::Call(target, method, args) => {
            let target = eval(target, data)?;
            let args = args
                .iter()
                .map(|e| eval(e, data))
                .collect::<Result<Vec<_>, _>>()?;
            call(target, *method, args)
        }
        Expr::Not(e) => Ok(Value::Bool(!truthy(&eval(e, data)?))),
        Expr::Neg(e) => {
            let v = eval(e, data)?;
            match as_num(&v) {
                Some(Num::Int(i)) => i
                    .checked_neg()
                    .map(Value::from)
                    .ok_or_else(|| EvalError("integer overflow".into())),
                Some(Num::Float(x)) => {
                    Ok(serde_json::Number::from_f64(-x).map_or(Value::Null, Value::Number))
                }
                None => Err(EvalError(format!(
                    "bad operand type for unary -: '{}'",
                    type_name(&v)
                ))),
            }
        }
        // Python's `and`/`or` give back an operand, not a bool.
        Expr::And(a, b) => {
            let left = eval(a, data)?;
            if truthy(&left) {
                eval(b, data)
            } else {
                Ok(left)
            }
        }
        Expr::Or(a, b) => {
            let left = eval(a, data)?;
            if truthy(&left) {
                Ok(left)
            } else {
                eval(b, data)
            }
        }
        Expr::Compare(first, rest) => {
            let mut left = eval(first, data)?;
            for (op, e) in rest {
                let right = eval(e, data)?;
                if !compare(*op, &left, &right)? {
                    return Ok(Value::Bool(false));
                }
                left = right;
            }
            Ok(Value::Bool(true))
        }
    }
}

fn subscript(target: Value, index: &Value) -> Result<Value, EvalError> {
    let position = |len: usize| -> Result<usize, EvalError> {
        let i = match as_num(index) {
            Some(Num::Int(i)) if !matches!(index, Value::Bool(_)) => i,
            _ => {
                return Err(EvalError(format!(
                    "indices must be integers, not {}",
                    type_name(index)
                )))
            }
        };
        let len_i = i64::try_from(len).unwrap_or(i64::MAX);
        let at = if i < 0 { i + len_i } else { i };
        if (0..len_i).contains(&at) {
            Ok(at as usize)
        } else {
            Err(EvalError("index out of range".into()))
        }
    };
    match target {
        Value::Object(mut map) => match index {
            Value::String(k) => map
                .remove(k)
                .ok_or_else(|| EvalError(format!("KeyError: {k:?}"))),
            other => Err(EvalError(format!("KeyError: {other}"))),
        },
        Value::Array(mut items) => {
            let at = position(items.len())?;
            Ok(items.swap_remove(at))
        }
        Value::String(s) => {
            let chars: Vec<char> = s.chars().collect();
            let at = position(chars.len())?;
            Ok(Value::String(chars[at].to_string()))
        }
        other => Err(EvalError(format!(
            "'{}' object is not subscriptable",
            type_name(&other)
        ))),
    }
}

fn call(target: Value, method: Method, mut args: Vec<Value>) -> Result<Value, EvalError> {
    let no_method = |name: &str, v: &Value| {
        EvalError(format!(
            "'{}' object has no attribute '{name}'",
            type_name(v)
        ))
    };
    match (method, target) {
        (Method::Keys, Value::Object(map)) => Ok(Value::Array(
            map.into_iter().map(|(k, _)| Value::String(k)).collect(),
        )),
        (Method::Values, Value::Object(map)) => {
            Ok(Value::Array(map.into_iter().map(|(_, v)| v).collect()))
        }
        (Method::Items, Value::Object(map)) => Ok(Value::Array(
            map.into_iter()
                .map(|(k, v)| Value::Array(vec![Value::String(k), v]))
                .collect(),
        )),
        (Method::Get, Value::Object(mut map)) => {
            let default = if args.len() > 1 {
                args.pop().unwrap_or(Value::Null)
            } else {
                Value::Null
            };
            Ok(match args.first() {
                Some(Value::String(k)) => map.remove(k).unwrap_or(default),
                _ => default,
            })
        }
        (Method::StartsWith | Method::EndsWith, Value::String(s)) => {
            // Python accepts a string or a tuple of strings.
            let candidates = match args.pop() {
                Some(Value::String(p)) => vec![p],
                Some(Value::Array(items)) => items
                    .into_iter()
                    .map(|i| match i {
                        Value::String(p) => Ok(p),
                        other => Err(EvalError(format!(
                            "tuple for startswith/endswith must only contain str, not {}",
                            type_name(&other)
                        ))),
                    })
                    .collect::<Result<_, _>>()?,
                other => {
                    return Err(EvalError(format!(
                        "startswith/endswith argument must be str or a tuple of str, not {}",
                        type_name(&other.unwrap_or(Value::Null))
                    )))
                }
            };
            let hit = candidates.iter().any(|p| {
                if method == Method::StartsWith {
                    s.starts_with(p.as_str())
                } else {
                    s.ends_with(p.as_str())
                }
            });
            Ok(Value::Bool(hit))
        }
        (Method::Lower, Value::String(s)) => Ok(Value::String(s.to_lowercase())),
        (m, v) => {
            let name = METHODS
                .iter()
                .find(|(_, x, ..)| *x == m)
                .map_or("?", |(n, ..)| n);
            Err(no_method(name, &v))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data() -> Value {
        json!({
            "name": "Source S3",
            "supportLevel": "certified",
            "dockerImageTag": "1.2.0",
            "tags": ["language:python", "cdk:python"],
            "ab_internal": {"ql": 300, "sl": 200},
            "connectorBuildOptions": {"baseImage": "docker.io/airbyte/python-connector-base:1.0.0@sha256:aa"},
            "releases": {"breakingChanges": {"1.0.0": {"message": "x"}}},
            "enabled": true,
            "ratio": 0.5
        })
    }

    fn q(src: &str) -> Result<bool, EvalError> {
        Query::parse(src)
            .unwrap_or_else(|e| panic!("{e}"))
            .matches(&data())
    }

    #[test]
    fn python_semantics_on_the_supported_subset() {
        let yes = [
            "data.supportLevel == 'certified'",
            "data.connectorBuildOptions.baseImage is not None",
            "'connectorBuildOptions' in data.keys()",
            "'s3' in data.name.lower()",
            "data.ab_internal.ql >= 100 and data.ab_internal.sl > 100",
            "data.missing is None",
            "data.missing.deeper is None",
            "not data.missing",
            "'language:python' in data.tags",
            "data['tags'][0] == 'language:python'",
            "data['tags'][-1].endswith('python')",
            "data.dockerImageTag.startswith(('0.', '1.'))",
            "data.get('nope', 3) == 3.0",
            "data.get('supportLevel') in ['certified', 'community']",
            "data.supportLevel in ('certified', 'community')",
            "1 < data.ab_internal.ql < 1000",
            "data.enabled is True and data.enabled == 1",
            "data.ratio < 1 and -1 < 0",
            "['1.0.0', data.releases.breakingChanges['1.0.0']] in data.releases.breakingChanges.items()",
            "'x' in data.releases.breakingChanges['1.0.0'].values()",
            "(data.supportLevel == 'community' or data.name == \"Source S3\")",
            "data.name != 'x' and not (data.name == 'y')",
            "[] == [] and data.tags != []",
        ];
        for src in yes {
            assert_eq!(q(src), Ok(true), "{src}");
        }
        let no = [
            "data.supportLevel == 'community'",
            "'connectorBuildOptions' not in data.keys()",
            "data.missing is not None",
            "data.name is 'Source S3'",
            "1 > 2 > 0",
            "data.ab_internal.ql < 100",
        ];
        for src in no {
            assert_eq!(q(src), Ok(false), "{src}");
        }
    }

    #[test]
    fn evaluation_errors_say_what_python_would() {
        let cases = [
            (
                "data.name < 1",
                "'<' not supported between instances of 'str' and 'int'",
            ),
            ("data['missing']", "KeyError: \"missing\""),
            ("data.tags[5]", "index out of range"),
            (
                "'x' in data.missing",
                "argument of type 'NoneType' is not iterable",
            ),
            (
                "1 in data.name",
                "'in <string>' requires string as left operand, not int",
            ),
            ("data.name.keys()", "'str' object has no attribute 'keys'"),
            ("data.name.nope", "'str' object has no attribute 'nope'"),
            ("-data.name", "bad operand type for unary -: 'str'"),
        ];
        for (src, want) in cases {
            assert_eq!(q(src), Err(EvalError(want.into())), "{src}");
        }
    }

    #[test]
    fn parse_errors_name_the_column() {
        let cases = [
            ("data.__class__", 6, "names containing `__` are not allowed"),
            (
                "__import__('os')",
                1,
                "names containing `__` are not allowed",
            ),
            ("len(data.tags) > 1", 1, "unknown name `len`"),
            ("data.tags.count('x')", 11, "`.count()` is not allowed"),
            ("data.keys(1)", 6, "takes 0 argument(s), 1 given"),
            ("data.name == 'x", 14, "unterminated string"),
            ("data.name ==", 13, "unexpected end of the query"),
            ("data.name = 'x'", 11, "unexpected character `=`"),
            ("(data.name", 11, "expected `)`"),
            ("data.name 'x'", 11, "unexpected string \"x\""),
            ("data.x if data else 1", 8, "`if` is not supported"),
            ("(lambda: data)()", 2, "`lambda` is not supported"),
            ("f'x' == data", 1, "string prefix `f`"),
            ("data.tags[0](1)", 13, "function calls are not allowed"),
            ("data. and", 7, "expected a name after `.`"),
            ("os.system('x')", 1, "the only name is `data`"),
            ("data.name ! 'x'", 11, "unexpected character `!`"),
        ];
        for (src, col, want) in cases {
            let err = Query::parse(src).unwrap_err();
            assert_eq!(err.col, col, "{src}: {err}");
            assert!(err.message.contains(want), "{src}: {err}");
        }
        let shown = Query::parse("data.__class__").unwrap_err().to_string();
        assert!(shown.ends_with("\n  data.__class__\n       ^"), "{shown}");
        let long = format!(
            "data.name == 'x' and {}data.__x",
            "data.name != 'y' and ".repeat(10)
        );
        let shown = Query::parse(&long).unwrap_err().to_string();
        assert!(
            shown.ends_with("'y' and data.name != 'y' and data.__x\n                                                       ^"),
            "{shown}"
        );
    }

    /// Deep nesting used to overflow the stack (parsing, evaluating and dropping recurse).
    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let deep = [
            format!("{}data{}", "(".repeat(20_000), ")".repeat(20_000)),
            format!("{}data", "not ".repeat(30_000)),
            format!("{}1", "-".repeat(60_000)),
            format!("data{}", ".a".repeat(50_000)),
            format!("data{}", "['a']".repeat(30_000)),
            format!("data{}", " and data".repeat(20_000)),
            format!("{}1{}", "[".repeat(20_000), "]".repeat(20_000)),
            format!("data{}", ".get(1".repeat(10_000)),
        ];
        for src in deep {
            let err = Query::parse(&src).unwrap_err();
            assert!(err.message.contains("nests more than 100 levels"), "{err}");
            // The message shows a window of the query, not all of it.
            assert!(err.to_string().len() < 400, "{err}");
        }
        // Nesting as deep as real queries (and well beyond) still works.
        let fine = format!("{}data.tags{}", "(".repeat(40), ")".repeat(40));
        assert_eq!(q(&format!("'language:python' in {fine}")), Ok(true));
        let chain = format!("data{} is None", ".x".repeat(60));
        assert_eq!(q(&chain), Ok(true));
    }
}
