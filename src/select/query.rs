//! `--metadata-query`: the Python expression subset airbyte-ci accepted over a connector's
//! `data` mapping (it evaluated queries with simpleeval), parsed and evaluated here without
//! any interpreter. Written by hand: no crate evaluates Python expressions safely without
//! embedding Python, and this needs no more than a small, bounded subset.
//!
//! What is accepted: the name `data`; string, number, `True`/`False`/`None` and list or tuple
//! literals; attribute access (`data.connectorBuildOptions.baseImage`); subscripts
//! (`data['tags'][0]`); the functions `len() str() int()`; the methods `.keys() .values()
//! .items() .get(k[, d]) .startswith(s) .endswith(s) .lower()`; `== != < <= > >=` (chained as
//! in Python), `in`, `not in`, `is`, `is not`; `|`, `^`, `&` (on bools and ints, and `|` on
//! two dicts); `and`, `or`, `not`, unary `-`, `x if c else y` and parentheses, with Python's
//! precedence. Nothing else: no other names or functions, no imports, no name containing `__`.
//!
//! Values are Python's: tuples and lists differ (`(1,) == [1]` is false), mappings keep the
//! file's key order (`str(data.keys())`), `.keys()` / `.values()` / `.items()` are views that
//! compare as Python's do. One deliberate difference: reading a missing key as an attribute
//! gives `None`, and so does any attribute of `None`. airbyte-ci (through simpleeval) raised
//! there and counted the connector as not matching; with `None`,
//! `data.connectorBuildOptions.baseImage is not None` selects the same connectors without a
//! warning for every connector lacking the key, and `... is None` selects the others.
//! Subscripts stay strict (`data['missing']` raises, as in Python). An expression that raises
//! while being evaluated (`'a' < 1`, `int('x')`) counts as no match; the caller warns. The
//! other differences (ints bounded to 64 bits, no set results) are listed in the README.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use indexmap::IndexMap;
use saphyr::{Scalar, YamlData};

use crate::model::yaml::{self, Document};

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

/// What `data` is bound to: a connector's `data` mapping, as Python would have loaded it.
#[derive(Debug, Clone, Default)]
pub struct QueryData(Value);

impl QueryData {
    /// From a YAML node, keeping the file's key order. Non-string keys become their source
    /// text; aliases and invalid values become `None`.
    pub fn from_yaml(doc: &Document<'_>, node: &yaml::Node<'_>) -> QueryData {
        QueryData(from_yaml(doc, node))
    }
}

fn from_yaml(doc: &Document<'_>, node: &yaml::Node<'_>) -> Value {
    match &node.data {
        YamlData::Value(Scalar::Null) | YamlData::Alias(_) | YamlData::BadValue => Value::None,
        YamlData::Value(Scalar::Boolean(b)) => Value::Bool(*b),
        YamlData::Value(Scalar::Integer(i)) => Value::Int(*i),
        YamlData::Value(Scalar::FloatingPoint(f)) => Value::Float(f.into_inner()),
        YamlData::Value(Scalar::String(s)) | YamlData::Representation(s, ..) => {
            Value::Str(s.to_string())
        }
        YamlData::Sequence(items) => Value::List(items.iter().map(|i| from_yaml(doc, i)).collect()),
        YamlData::Mapping(_) => Value::Dict(
            yaml::entries(doc, node)
                .unwrap_or_default()
                .into_iter()
                .map(|(k, _, v)| (k.into_owned(), from_yaml(doc, v)))
                .collect(),
        ),
        YamlData::Tagged(_, inner) => from_yaml(doc, inner),
    }
}

/// From JSON (object keys in serde_json's order, which is sorted).
impl From<&serde_json::Value> for QueryData {
    fn from(v: &serde_json::Value) -> QueryData {
        fn convert(v: &serde_json::Value) -> Value {
            use serde_json::Value as J;
            match v {
                J::Null => Value::None,
                J::Bool(b) => Value::Bool(*b),
                J::Number(n) => n
                    .as_i64()
                    .map(Value::Int)
                    .unwrap_or_else(|| Value::Float(n.as_f64().unwrap_or(f64::NAN))),
                J::String(s) => Value::Str(s.clone()),
                J::Array(items) => Value::List(items.iter().map(convert).collect()),
                J::Object(map) => {
                    Value::Dict(map.iter().map(|(k, v)| (k.clone(), convert(v))).collect())
                }
            }
        }
        QueryData(convert(v))
    }
}

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
    pub fn matches(&self, data: &QueryData) -> Result<bool, EvalError> {
        Ok(truthy(&*eval(&self.expr, &data.0)?))
    }
}

// ---------------------------------------------------------------------------------- tokens --

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Name(String),
    Str(String),
    Int(i64),
    Float(f64),
    /// Punctuation and operators: `( ) [ ] , . == != < <= > >= - & | ^`.
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
    "lambda", "for", "import", "from", "def", "class", "while", "with", "yield", "await", "async",
    "return", "del", "global", "nonlocal", "assert", "raise", "try", "except", "finally", "pass",
    "break", "continue", "as",
];

const OPERATORS: &[&str] = &[
    "==", "!=", "<=", ">=", "<", ">", "(", ")", "[", "]", ",", ".", "-", "&", "|", "^",
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
                    format!("`{name}` is not supported: a query is one expression over `data` (comparisons, `in`, `and`/`or`/`not`, `x if c else y`, attributes, subscripts, len()/str()/int(), a few methods)"),
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

/// `|`, `^`, `&`, in Python's precedence order (lowest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Bit {
    Or,
    Xor,
    And,
}

impl Bit {
    fn symbol(self) -> &'static str {
        match self {
            Bit::Or => "|",
            Bit::Xor => "^",
            Bit::And => "&",
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Builtin {
    Len,
    Str,
    Int,
}

/// `int(x, base)` and `str(b, encoding)` are not accepted: no query needs them.
const BUILTINS: &[(&str, Builtin, usize, usize)] = &[
    ("len", Builtin::Len, 1, 1),
    ("str", Builtin::Str, 0, 1),
    ("int", Builtin::Int, 0, 1),
];

fn callable_list() -> String {
    let functions: Vec<String> = BUILTINS.iter().map(|(n, ..)| format!("{n}()")).collect();
    let methods: Vec<String> = METHODS.iter().map(|(n, ..)| format!(".{n}()")).collect();
    format!(
        "the functions {} and the methods {}",
        functions.join(" "),
        methods.join(" ")
    )
}

#[derive(Debug, Clone)]
enum Expr {
    Lit(Value),
    Data,
    List(Vec<Expr>),
    Tuple(Vec<Expr>),
    Attr(Box<Expr>, String),
    Index(Box<Expr>, Box<Expr>),
    Call(Box<Expr>, Method, Vec<Expr>),
    Builtin(Builtin, Vec<Expr>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    /// `body if cond else orelse`.
    If {
        body: Box<Expr>,
        cond: Box<Expr>,
        orelse: Box<Expr>,
    },
    Bits(Bit, Box<Expr>, Box<Expr>),
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
        self.nested(Self::conditional)
    }

    /// `body if cond else orelse`, Python's lowest precedence, grouping to the right.
    fn conditional(&mut self) -> ParseResult<Node> {
        let body = self.or_test()?;
        if !self.is_name("if") {
            return Ok(body);
        }
        let col = self.col();
        self.pos += 1;
        let cond = self.or_test()?;
        if !self.is_name("else") {
            return Err((
                self.col(),
                format!("expected `else`, found {}", self.found()),
            ));
        }
        self.pos += 1;
        let orelse = self.expression()?;
        let depth = body.depth.max(cond.depth).max(orelse.depth);
        let expr = Expr::If {
            body: Box::new(body.expr),
            cond: Box::new(cond.expr),
            orelse: Box::new(orelse.expr),
        };
        self.node(expr, depth, col)
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
        let first = self.bit_or()?;
        let mut depth = first.depth;
        let mut rest = Vec::new();
        while let Some(op) = self.comparison_op() {
            let right = self.bit_or()?;
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

    /// `|`, `^` and `&` (Python's precedence, lowest first), all between comparisons and
    /// unary `-`. Resolved with an operator stack, not a function per level: every function
    /// on the way from `expression` down to `atom` is paid again at each nesting level.
    fn bit_or(&mut self) -> ParseResult<Node> {
        let mut operands = vec![self.unary()?];
        let mut ops: Vec<(Bit, usize)> = Vec::new();
        while let Some(op) = [Bit::Or, Bit::Xor, Bit::And]
            .into_iter()
            .find(|op| self.is_op(op.symbol()))
        {
            let col = self.col();
            self.pos += 1;
            let right = self.unary()?;
            // Left-associative: first apply what binds at least as tightly.
            while ops.last().is_some_and(|(top, _)| *top >= op) {
                self.reduce(&mut operands, &mut ops)?;
            }
            ops.push((op, col));
            operands.push(right);
        }
        while !ops.is_empty() {
            self.reduce(&mut operands, &mut ops)?;
        }
        Ok(operands.pop().expect("one operand is left"))
    }

    /// Replaces the last two operands by the last operator applied to them.
    fn reduce(&self, operands: &mut Vec<Node>, ops: &mut Vec<(Bit, usize)>) -> ParseResult<()> {
        let (op, col) = ops.pop().expect("an operator to apply");
        let right = operands.pop().expect("a right operand");
        let left = operands.pop().expect("a left operand");
        let depth = left.depth.max(right.depth);
        let node = self.node(
            Expr::Bits(op, Box::new(left.expr), Box::new(right.expr)),
            depth,
            col,
        )?;
        operands.push(node);
        Ok(())
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
                    expr = self.method(expr, &name, col)?;
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
                        "function calls are not allowed; the only calls are {}",
                        callable_list()
                    ),
                ));
            } else {
                return Ok(expr);
            }
        }
    }

    fn method(&mut self, receiver: Node, name: &str, col: usize) -> ParseResult<Node> {
        let Some(&(_, method, min, max)) = METHODS.iter().find(|(n, ..)| *n == name) else {
            return Err((
                col,
                format!(
                    "`.{name}()` is not allowed; the only calls are {}",
                    callable_list()
                ),
            ));
        };
        let (args, depth) = self.arguments(&format!(".{name}"), min, max, col)?;
        self.node(
            Expr::Call(Box::new(receiver.expr), method, args),
            receiver.depth.max(depth),
            col,
        )
    }

    /// `(args)` of the call to `what`, which takes `min..=max` of them.
    fn arguments(
        &mut self,
        what: &str,
        min: usize,
        max: usize,
        col: usize,
    ) -> ParseResult<(Vec<Expr>, usize)> {
        self.expect_op("(")?;
        let (args, depth) = self.items(")")?;
        if args.len() < min || args.len() > max {
            let want = match max - min {
                0 => format!("{min}"),
                1 => format!("{min} or {max}"),
                _ => format!("{min} to {max}"),
            };
            return Err((
                col,
                format!("`{what}()` takes {want} argument(s), {} given", args.len()),
            ));
        }
        Ok((args, depth))
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
            Tok::Str(s) => leaf(Expr::Lit(Value::Str(s))),
            Tok::Int(i) => leaf(Expr::Lit(Value::Int(i))),
            Tok::Float(x) => leaf(Expr::Lit(Value::Float(x))),
            Tok::Op("[") => {
                let (items, depth) = self.items("]")?;
                self.node(Expr::List(items), depth, col)
            }
            Tok::Op("(") => {
                if self.is_op(")") {
                    self.pos += 1;
                    return leaf(Expr::Tuple(vec![]));
                }
                let first = self.expression()?;
                if self.is_op(",") {
                    self.pos += 1;
                    let (rest, depth) = self.items(")")?;
                    let depth = depth.max(first.depth);
                    let mut items = vec![first.expr];
                    items.extend(rest);
                    return self.node(Expr::Tuple(items), depth, col);
                }
                self.expect_op(")")?;
                Ok(first)
            }
            Tok::Name(n) => match n.as_str() {
                "data" => leaf(Expr::Data),
                "None" => leaf(Expr::Lit(Value::None)),
                "True" => leaf(Expr::Lit(Value::Bool(true))),
                "False" => leaf(Expr::Lit(Value::Bool(false))),
                _ if is_keyword(&n) => Err((col, format!("unexpected `{n}`"))),
                _ => match BUILTINS.iter().find(|(b, ..)| *b == n) {
                    Some(&(_, builtin, min, max)) if self.is_op("(") => {
                        let (args, depth) = self.arguments(&n, min, max, col)?;
                        self.node(Expr::Builtin(builtin, args), depth, col)
                    }
                    Some(_) => Err((
                        col,
                        format!("`{n}` can only be called here, as in `{n}(data.tags)`"),
                    )),
                    None => Err((
                        col,
                        format!(
                            "unknown name `{n}`: the only name is `data`, the only calls are {}",
                            callable_list()
                        ),
                    )),
                },
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

/// A value as Python sees it.
#[derive(Debug, Clone, Default)]
enum Value {
    #[default]
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    /// Keys are strings: YAML keys are read as text.
    Dict(IndexMap<String, Value>),
    /// `dict.keys()`, `.values()`, `.items()` (of 2-tuples), in the dict's order.
    View(View, Vec<Value>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum View {
    Keys,
    Values,
    Items,
}

impl View {
    fn name(self) -> &'static str {
        match self {
            View::Keys => "dict_keys",
            View::Values => "dict_values",
            View::Items => "dict_items",
        }
    }

    /// Keys and items views behave as sets (compare by containment); values views do not.
    fn set_like(self) -> bool {
        self != View::Values
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::None => "NoneType",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Float(_) => "float",
        Value::Str(_) => "str",
        Value::List(_) => "list",
        Value::Tuple(_) => "tuple",
        Value::Dict(_) => "dict",
        Value::View(view, _) => view.name(),
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::None => false,
        Value::Bool(b) => *b,
        Value::Int(i) => *i != 0,
        Value::Float(x) => *x != 0.0,
        Value::Str(s) => !s.is_empty(),
        Value::List(items) | Value::Tuple(items) | Value::View(_, items) => !items.is_empty(),
        Value::Dict(map) => !map.is_empty(),
    }
}

fn err<T>(message: impl Into<String>) -> Result<T, EvalError> {
    Err(EvalError(message.into()))
}

/// A number as Python sees it (bools are ints).
enum Num {
    Int(i64),
    Float(f64),
}

fn as_num(v: &Value) -> Option<Num> {
    match v {
        Value::Bool(b) => Some(Num::Int(i64::from(*b))),
        Value::Int(i) => Some(Num::Int(*i)),
        Value::Float(x) => Some(Num::Float(*x)),
        _ => None,
    }
}

/// An int or a bool as an int.
fn as_int(v: &Value) -> Option<i64> {
    match as_num(v)? {
        Num::Int(i) => Some(i),
        Num::Float(_) => None,
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
    let same_items =
        |x: &[Value], y: &[Value]| x.len() == y.len() && x.iter().zip(y).all(|(p, q)| py_eq(p, q));
    match (a, b) {
        (Value::None, Value::None) => true,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::List(x), Value::List(y)) | (Value::Tuple(x), Value::Tuple(y)) => same_items(x, y),
        (Value::Dict(x), Value::Dict(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| py_eq(v, w)))
        }
        // Set-like views are equal when they hold the same elements; values views are only
        // equal to themselves, and each evaluation makes a new one.
        (Value::View(v, x), Value::View(w, y)) if v.set_like() && w.set_like() => {
            x.len() == y.len() && subset(x, y)
        }
        _ => false,
    }
}

fn subset(x: &[Value], y: &[Value]) -> bool {
    x.iter().all(|p| y.iter().any(|q| py_eq(p, q)))
}

/// `<`, `<=`, `>`, `>=`.
fn order(op: Cmp, a: &Value, b: &Value) -> Result<bool, EvalError> {
    let by = |o: Ordering| match op {
        Cmp::Lt => o == Ordering::Less,
        Cmp::Le => o != Ordering::Greater,
        Cmp::Gt => o == Ordering::Greater,
        _ => o != Ordering::Less,
    };
    if let (Some(x), Some(y)) = (as_num(a), as_num(b)) {
        // NaN compares false with everything.
        return Ok(num_cmp(&x, &y).is_some_and(by));
    }
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => Ok(by(x.cmp(y))),
        (Value::List(x), Value::List(y)) | (Value::Tuple(x), Value::Tuple(y)) => {
            // Python compares the first differing items, or else the lengths.
            match x.iter().zip(y).find(|(p, q)| !py_eq(p, q)) {
                Some((p, q)) => order(op, p, q),
                None => Ok(by(x.len().cmp(&y.len()))),
            }
        }
        // Set-like views order by inclusion.
        (Value::View(v, x), Value::View(w, y)) if v.set_like() && w.set_like() => Ok(match op {
            Cmp::Lt => x.len() < y.len() && subset(x, y),
            Cmp::Le => subset(x, y),
            Cmp::Gt => x.len() > y.len() && subset(y, x),
            _ => subset(y, x),
        }),
        _ => err(format!(
            "'{}' not supported between instances of '{}' and '{}'",
            op.symbol(),
            type_name(a),
            type_name(b)
        )),
    }
}

/// Python refuses to look up lists, dicts and sets (and tuples holding them) as keys.
fn hashable(v: &Value) -> Result<(), EvalError> {
    match v {
        Value::List(_) | Value::Dict(_) | Value::View(..) => {
            err(format!("unhashable type: '{}'", type_name(v)))
        }
        Value::Tuple(items) => items.iter().try_for_each(hashable),
        _ => Ok(()),
    }
}

/// The entry of `map` under `key`; keys are strings, so any other key is simply absent.
fn lookup<'m>(
    map: &'m IndexMap<String, Value>,
    key: &Value,
) -> Result<Option<&'m Value>, EvalError> {
    hashable(key)?;
    Ok(match key {
        Value::Str(k) => map.get(k),
        _ => None,
    })
}

fn contains(container: &Value, item: &Value) -> Result<bool, EvalError> {
    match container {
        Value::Str(s) => match item {
            Value::Str(sub) => Ok(s.contains(sub.as_str())),
            other => err(format!(
                "'in <string>' requires string as left operand, not {}",
                type_name(other)
            )),
        },
        Value::List(items) | Value::Tuple(items) | Value::View(View::Values, items) => {
            Ok(items.iter().any(|x| py_eq(x, item)))
        }
        Value::Dict(map) => Ok(lookup(map, item)?.is_some()),
        Value::View(View::Keys, keys) => {
            hashable(item)?;
            Ok(keys.iter().any(|k| py_eq(k, item)))
        }
        // Only a (key, value) tuple can be in an items view.
        Value::View(View::Items, items) => match item {
            Value::Tuple(pair) if pair.len() == 2 => {
                hashable(&pair[0])?;
                Ok(items.iter().any(|x| py_eq(x, item)))
            }
            _ => Ok(false),
        },
        other => err(format!(
            "argument of type '{}' is not iterable",
            type_name(other)
        )),
    }
}

fn compare(op: Cmp, a: &Value, b: &Value) -> Result<bool, EvalError> {
    Ok(match op {
        Cmp::Eq => py_eq(a, b),
        Cmp::Ne => !py_eq(a, b),
        Cmp::Lt | Cmp::Le | Cmp::Gt | Cmp::Ge => order(op, a, b)?,
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
        (Value::None, Value::None) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        _ => false,
    }
}

fn bits(op: Bit, a: &Value, b: &Value) -> Result<Value, EvalError> {
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => Ok(Value::Bool(match op {
            Bit::Or => x | y,
            Bit::Xor => x ^ y,
            Bit::And => x & y,
        })),
        // Python 3.9's dict union: the right side's values win, the left side's order stays.
        (Value::Dict(x), Value::Dict(y)) if op == Bit::Or => {
            let mut merged = x.clone();
            merged.extend(y.iter().map(|(k, v)| (k.clone(), v.clone())));
            Ok(Value::Dict(merged))
        }
        (Value::View(v, _), _) | (_, Value::View(v, _)) if v.set_like() => err(format!(
            "`{}` on dict views makes a set, which --metadata-query does not support",
            op.symbol()
        )),
        _ => match (as_int(a), as_int(b)) {
            (Some(x), Some(y)) => Ok(Value::Int(match op {
                Bit::Or => x | y,
                Bit::Xor => x ^ y,
                Bit::And => x & y,
            })),
            _ => err(format!(
                "unsupported operand type(s) for {}: '{}' and '{}'",
                op.symbol(),
                type_name(a),
                type_name(b)
            )),
        },
    }
}

fn eval_all(exprs: &[Expr], data: &Value) -> Result<Vec<Value>, EvalError> {
    exprs
        .iter()
        .map(|e| eval(e, data).map(Cow::into_owned))
        .collect()
}

/// Evaluates `expr`; parts of `data` are borrowed, not copied, until something computes.
fn eval<'d>(expr: &Expr, data: &'d Value) -> Result<Cow<'d, Value>, EvalError> {
    Ok(match expr {
        Expr::Lit(v) => Cow::Owned(v.clone()),
        Expr::Data => Cow::Borrowed(data),
        Expr::List(items) => Cow::Owned(Value::List(eval_all(items, data)?)),
        Expr::Tuple(items) => Cow::Owned(Value::Tuple(eval_all(items, data)?)),
        Expr::Attr(target, name) => project(eval(target, data)?, |v| attribute(v, name))?,
        Expr::Index(target, index) => {
            let target = eval(target, data)?;
            let index = eval(index, data)?;
            project(target, |v| subscript(v, &index))?
        }
        Expr::Call(target, method, args) => {
            let target = eval(target, data)?;
            Cow::Owned(call(&target, *method, eval_all(args, data)?)?)
        }
        Expr::Builtin(builtin, args) => Cow::Owned(call_builtin(*builtin, eval_all(args, data)?)?),
        Expr::Not(e) => Cow::Owned(Value::Bool(!truthy(&*eval(e, data)?))),
        Expr::Neg(e) => Cow::Owned(negate(&*eval(e, data)?)?),
        // Python's `and`/`or` give back an operand, not a bool.
        Expr::And(a, b) => {
            let left = eval(a, data)?;
            if truthy(&left) {
                eval(b, data)?
            } else {
                left
            }
        }
        Expr::Or(a, b) => {
            let left = eval(a, data)?;
            if truthy(&left) {
                left
            } else {
                eval(b, data)?
            }
        }
        Expr::If { body, cond, orelse } => {
            if truthy(&*eval(cond, data)?) {
                eval(body, data)?
            } else {
                eval(orelse, data)?
            }
        }
        Expr::Bits(op, a, b) => Cow::Owned(bits(*op, &*eval(a, data)?, &*eval(b, data)?)?),
        Expr::Compare(first, rest) => {
            let mut left = eval(first, data)?;
            for (op, e) in rest {
                let right = eval(e, data)?;
                if !compare(*op, &left, &right)? {
                    return Ok(Cow::Owned(Value::Bool(false)));
                }
                left = right;
            }
            Cow::Owned(Value::Bool(true))
        }
    })
}

/// `f` applied to `target`, borrowing from `data` when `target` does.
fn project<'d>(
    target: Cow<'d, Value>,
    f: impl for<'v> FnOnce(&'v Value) -> Result<Cow<'v, Value>, EvalError>,
) -> Result<Cow<'d, Value>, EvalError> {
    match target {
        Cow::Borrowed(v) => f(v),
        Cow::Owned(v) => f(&v).map(|r| Cow::Owned(r.into_owned())),
    }
}

fn attribute<'v>(target: &'v Value, name: &str) -> Result<Cow<'v, Value>, EvalError> {
    match target {
        Value::Dict(map) => Ok(map.get(name).map_or(Cow::Owned(Value::None), Cow::Borrowed)),
        Value::None => Ok(Cow::Owned(Value::None)),
        other => err(format!(
            "'{}' object has no attribute '{name}'",
            type_name(other)
        )),
    }
}

fn subscript<'v>(target: &'v Value, index: &Value) -> Result<Cow<'v, Value>, EvalError> {
    let kind = type_name(target);
    let position = |len: usize| -> Result<usize, EvalError> {
        let Some(i) = as_int(index) else {
            // Python's words, which quote the type for strings only.
            return err(if kind == "str" {
                format!(
                    "string indices must be integers, not '{}'",
                    type_name(index)
                )
            } else {
                format!(
                    "{kind} indices must be integers or slices, not {}",
                    type_name(index)
                )
            });
        };
        let len_i = i64::try_from(len).unwrap_or(i64::MAX);
        let at = if i < 0 { i.saturating_add(len_i) } else { i };
        if (0..len_i).contains(&at) {
            Ok(at as usize)
        } else {
            let kind = if kind == "str" { "string" } else { kind };
            err(format!("{kind} index out of range"))
        }
    };
    match target {
        Value::Dict(map) => match lookup(map, index)? {
            Some(v) => Ok(Cow::Borrowed(v)),
            None => err(format!("KeyError: {}", repr(index))),
        },
        Value::List(items) | Value::Tuple(items) => {
            Ok(Cow::Borrowed(&items[position(items.len())?]))
        }
        Value::Str(s) => {
            let chars: Vec<char> = s.chars().collect();
            let at = position(chars.len())?;
            Ok(Cow::Owned(Value::Str(chars[at].to_string())))
        }
        other => err(format!(
            "'{}' object is not subscriptable",
            type_name(other)
        )),
    }
}

fn negate(v: &Value) -> Result<Value, EvalError> {
    match as_num(v) {
        Some(Num::Int(i)) => i
            .checked_neg()
            .map(Value::Int)
            .ok_or_else(|| EvalError(TOO_LARGE.into())),
        Some(Num::Float(x)) => Ok(Value::Float(-x)),
        None => err(format!("bad operand type for unary -: '{}'", type_name(v))),
    }
}

/// Python's ints have no bound; these are 64-bit.
const TOO_LARGE: &str = "integer too large for --metadata-query (64-bit)";

fn call(target: &Value, method: Method, mut args: Vec<Value>) -> Result<Value, EvalError> {
    let dict_view = |map: &IndexMap<String, Value>, view: View| {
        let items = map
            .iter()
            .map(|(k, v)| match view {
                View::Keys => Value::Str(k.clone()),
                View::Values => v.clone(),
                View::Items => Value::Tuple(vec![Value::Str(k.clone()), v.clone()]),
            })
            .collect();
        Value::View(view, items)
    };
    match (method, target) {
        (Method::Keys, Value::Dict(map)) => Ok(dict_view(map, View::Keys)),
        (Method::Values, Value::Dict(map)) => Ok(dict_view(map, View::Values)),
        (Method::Items, Value::Dict(map)) => Ok(dict_view(map, View::Items)),
        (Method::Get, Value::Dict(map)) => {
            let default = if args.len() > 1 {
                args.pop().unwrap_or_default()
            } else {
                Value::None
            };
            let key = args.first().cloned().unwrap_or_default();
            Ok(lookup(map, &key)?.cloned().unwrap_or(default))
        }
        (Method::StartsWith | Method::EndsWith, Value::Str(s)) => {
            let name = if method == Method::StartsWith {
                "startswith"
            } else {
                "endswith"
            };
            // Python accepts a string or a tuple of strings.
            let candidates = match args.pop().unwrap_or_default() {
                Value::Str(p) => vec![p],
                Value::Tuple(items) => items
                    .into_iter()
                    .map(|i| match i {
                        Value::Str(p) => Ok(p),
                        other => err(format!(
                            "tuple for {name} must only contain str, not {}",
                            type_name(&other)
                        )),
                    })
                    .collect::<Result<_, _>>()?,
                other => {
                    return err(format!(
                        "{name} first arg must be str or a tuple of str, not {}",
                        type_name(&other)
                    ))
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
        (Method::Lower, Value::Str(s)) => Ok(Value::Str(s.to_lowercase())),
        (m, v) => {
            let name = METHODS
                .iter()
                .find(|(_, x, ..)| *x == m)
                .map_or("?", |(n, ..)| n);
            err(format!(
                "'{}' object has no attribute '{name}'",
                type_name(v)
            ))
        }
    }
}

fn call_builtin(builtin: Builtin, args: Vec<Value>) -> Result<Value, EvalError> {
    let arg = args.into_iter().next();
    match builtin {
        Builtin::Len => {
            let v = arg.unwrap_or_default();
            let len = match &v {
                Value::Str(s) => s.chars().count(),
                Value::List(items) | Value::Tuple(items) | Value::View(_, items) => items.len(),
                Value::Dict(map) => map.len(),
                other => {
                    return err(format!(
                        "object of type '{}' has no len()",
                        type_name(other)
                    ))
                }
            };
            Ok(Value::Int(i64::try_from(len).unwrap_or(i64::MAX)))
        }
        Builtin::Str => Ok(Value::Str(match arg {
            None => String::new(),
            Some(Value::Str(s)) => s,
            Some(v) => repr(&v),
        })),
        Builtin::Int => match arg {
            None => Ok(Value::Int(0)),
            Some(v) => to_int(&v),
        },
    }
}

/// Python's `int(x)` for the types a query meets.
fn to_int(v: &Value) -> Result<Value, EvalError> {
    match v {
        Value::Bool(b) => Ok(Value::Int(i64::from(*b))),
        Value::Int(i) => Ok(Value::Int(*i)),
        Value::Float(x) if x.is_nan() => err("cannot convert float NaN to integer"),
        Value::Float(x) if x.is_infinite() => err("cannot convert float infinity to integer"),
        Value::Float(x) => {
            let t = x.trunc();
            // i64::MAX as f64 rounds up to 2^63, itself out of range.
            if t >= -(2f64.powi(63)) && t < 2f64.powi(63) {
                Ok(Value::Int(t as i64))
            } else {
                err(TOO_LARGE)
            }
        }
        Value::Str(s) => parse_int(s).map(Value::Int),
        other => err(format!(
            "int() argument must be a string, a bytes-like object or a real number, not '{}'",
            type_name(other)
        )),
    }
}

/// `int(s)` in base 10: surrounding whitespace, a sign, digits with single `_` between them.
fn parse_int(s: &str) -> Result<i64, EvalError> {
    let invalid = || {
        EvalError(format!(
            "invalid literal for int() with base 10: {}",
            repr_str(s)
        ))
    };
    let t = s.trim();
    let (negative, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let well_formed = !digits.is_empty()
        && digits
            .split('_')
            .all(|group| !group.is_empty() && group.chars().all(|c| c.is_ascii_digit()));
    if !well_formed {
        return Err(invalid());
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    let signed = if negative { format!("-{clean}") } else { clean };
    signed.parse().map_err(|_| EvalError(TOO_LARGE.into()))
}

/// Python's `repr()`, which `str()` gives for everything but strings.
fn repr(v: &Value) -> String {
    let join = |items: &[Value]| items.iter().map(repr).collect::<Vec<_>>().join(", ");
    match v {
        Value::None => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Int(i) => i.to_string(),
        Value::Float(x) => repr_float(*x),
        Value::Str(s) => repr_str(s),
        Value::List(items) => format!("[{}]", join(items)),
        Value::Tuple(items) if items.len() == 1 => format!("({},)", repr(&items[0])),
        Value::Tuple(items) => format!("({})", join(items)),
        Value::Dict(map) => {
            let entries: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", repr_str(k), repr(v)))
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
        Value::View(view, items) => format!("{}([{}])", view.name(), join(items)),
    }
}

/// Python's shortest round-trip float repr: positional for exponents -4 to 15, else
/// scientific with a signed two-digit exponent (`1e+16`, `1e-05`).
fn repr_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    // Rust's `{:e}` gives the same shortest digits, as `d.ddde<exp>`.
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    if !(-4..16).contains(&exp) {
        let e_sign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{mantissa}e{e_sign}{:02}", exp.abs());
    }
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let body = if exp < 0 {
        format!("0.{}{digits}", "0".repeat((-exp - 1) as usize))
    } else {
        let point = exp as usize + 1;
        let padded = format!("{digits:0<point$}");
        let (int, frac) = padded.split_at(point);
        format!("{int}.{}", if frac.is_empty() { "0" } else { frac })
    };
    format!("{sign}{body}")
}

/// Python's string repr: single quotes unless the text has one and no double quote; control
/// characters escaped. (Python also escapes the other non-printable code points.)
fn repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || (0x7f..0xa0).contains(&(c as u32)) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data() -> QueryData {
        QueryData::from(&json!({
            "name": "Source S3",
            "supportLevel": "certified",
            "dockerImageTag": "1.2.0",
            "tags": ["language:python", "cdk:python"],
            "ab_internal": {"ql": 300, "sl": 200},
            "connectorBuildOptions": {"baseImage": "docker.io/airbyte/python-connector-base:1.0.0@sha256:aa"},
            "releases": {"breakingChanges": {"1.0.0": {"message": "x"}}},
            "enabled": true,
            "ratio": 0.5
        }))
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
            "('1.0.0', data.releases.breakingChanges['1.0.0']) in data.releases.breakingChanges.items()",
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
            ("data['missing']", "KeyError: 'missing'"),
            ("data.tags[5]", "list index out of range"),
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
            ("max(data.tags) > 1", 1, "unknown name `max`"),
            ("len", 1, "`len` can only be called"),
            ("len(data, data)", 1, "`len()` takes 1 argument(s), 2 given"),
            (
                "int(data, 16)",
                1,
                "`int()` takes 0 or 1 argument(s), 2 given",
            ),
            (
                "data.x if data",
                15,
                "expected `else`, found the end of the query",
            ),
            ("data | ", 7, "unexpected end of the query"),
            ("data.tags.count('x')", 11, "`.count()` is not allowed"),
            ("data.keys(1)", 6, "`.keys()` takes 0 argument(s), 1 given"),
            ("data.name == 'x", 14, "unterminated string"),
            ("data.name ==", 13, "unexpected end of the query"),
            ("data.name = 'x'", 11, "unexpected character `=`"),
            ("(data.name", 11, "expected `)`"),
            ("data.name 'x'", 11, "unexpected string \"x\""),
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
            format!("data{}", " | data & data".repeat(10_000)),
            format!("{}data", "len(".repeat(10_000)),
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

    fn eval_str(src: &str, data: &QueryData) -> Result<String, EvalError> {
        let query = Query::parse(src).unwrap_or_else(|e| panic!("{e}"));
        eval(&query.expr, &data.0).map(|v| repr(&v))
    }

    /// `len()`, `str()` and `int()` were refused as unknown names.
    #[test]
    fn query_len_str_int_as_python() {
        let d = data();
        let cases = [
            ("len(data.tags)", "2"),
            ("len(data.name)", "9"),
            ("len('é')", "1"),
            ("len(data.ab_internal)", "2"),
            ("len(data.keys())", "9"),
            ("len(())", "0"),
            ("str(data.ab_internal.ql)", "'300'"),
            ("str(data.ratio)", "'0.5'"),
            ("str(1.0)", "'1.0'"),
            ("str(1e16)", "'1e+16'"),
            ("str(0.0001)", "'0.0001'"),
            ("str(0.00001)", "'1e-05'"),
            ("str(-123.456)", "'-123.456'"),
            ("str(1e22)", "'1e+22'"),
            ("str(12345678901234567.0)", "'1.2345678901234568e+16'"),
            ("str(None)", "'None'"),
            ("str(True)", "'True'"),
            ("str(data.name)", "'Source S3'"),
            ("str()", "''"),
            ("str(data.tags)", "\"['language:python', 'cdk:python']\""),
            ("str((1,))", "'(1,)'"),
            ("str((1, 'a'))", "\"(1, 'a')\""),
            ("str([\"it's\", 'a\\nb'])", "'[\"it\\'s\", \\'a\\\\nb\\']'"),
            (
                "str(data.ab_internal if True else 0)",
                "\"{'ql': 300, 'sl': 200}\"",
            ),
            ("int('42')", "42"),
            ("int(' -1_000 ')", "-1000"),
            ("int('+7')", "7"),
            ("int(data.ratio)", "0"),
            ("int(-2.9)", "-2"),
            ("int(True)", "1"),
            ("int()", "0"),
            ("int(data.dockerImageTag.startswith('1'))", "1"),
        ];
        for (src, want) in cases {
            assert_eq!(eval_str(src, &d).as_deref(), Ok(want), "{src}");
        }
        let errors = [
            ("len(1)", "object of type 'int' has no len()"),
            ("len(data.missing)", "object of type 'NoneType' has no len()"),
            (
                "int('1.5')",
                "invalid literal for int() with base 10: '1.5'",
            ),
            ("int('1__0')", "invalid literal for int() with base 10: '1__0'"),
            ("int('')", "invalid literal for int() with base 10: ''"),
            (
                "int(data.tags)",
                "int() argument must be a string, a bytes-like object or a real number, not 'list'",
            ),
            (
                "int(None)",
                "int() argument must be a string, a bytes-like object or a real number, not 'NoneType'",
            ),
            ("int(1e999)", "cannot convert float infinity to integer"),
            ("int('99999999999999999999')", TOO_LARGE),
        ];
        for (src, want) in errors {
            assert_eq!(eval_str(src, &d), Err(EvalError(want.into())), "{src}");
        }
        assert_eq!(
            q("len(data.tags) == 2 and int(data.dockerImageTag[0]) >= 1"),
            Ok(true)
        );
        assert_eq!(q("str(data.ab_internal.ql).startswith('3')"), Ok(true));
    }

    /// `x if c else y` was refused (`if` was a statement word).
    #[test]
    fn query_conditional_expression() {
        let d = data();
        let cases = [
            ("'a' if data.enabled else 'b'", "'a'"),
            ("'a' if data.missing else 'b'", "'b'"),
            // Lowest precedence: `or` binds tighter, and it groups to the right.
            ("1 if 0 or 1 else 2", "1"),
            ("0 or 1 if False else 2", "2"),
            ("1 if False else 2 if False else 3", "3"),
            ("not 1 if True else 2", "False"),
            ("[1 if True else 2, 3]", "[1, 3]"),
            ("data.tags[0 if data.enabled else 1]", "'language:python'"),
            // Only the branch taken is evaluated.
            ("data['x'] if False else 5", "5"),
        ];
        for (src, want) in cases {
            assert_eq!(eval_str(src, &d).as_deref(), Ok(want), "{src}");
        }
        let nested = format!("{}0", "1 if False else ".repeat(200));
        assert!(Query::parse(&nested)
            .unwrap_err()
            .message
            .contains("nests more than 100 levels"));
    }

    /// `&` and `|` were unexpected characters.
    #[test]
    fn query_bitwise_operators_as_python() {
        let d = data();
        let cases = [
            ("True & False", "False"),
            ("True | False", "True"),
            ("True ^ True", "False"),
            ("6 & 3", "2"),
            ("6 | 3", "7"),
            ("6 ^ 3", "5"),
            ("True & 3", "1"),
            ("-1 & 255", "255"),
            // Python's precedence: `|` < `^` < `&`, all above comparisons.
            ("1 | 2 ^ 3 & 4", "3"),
            ("1 | 2 == 3", "True"),
            ("(data.enabled == True) & (data.ratio < 1)", "True"),
            // Python 3.9's dict union.
            (
                "str(data.ab_internal | data.releases)",
                "\"{'ql': 300, 'sl': 200, 'breakingChanges': {'1.0.0': {'message': 'x'}}}\"",
            ),
        ];
        for (src, want) in cases {
            assert_eq!(eval_str(src, &d).as_deref(), Ok(want), "{src}");
        }
        let errors = [
            // `==` binds looser than `&`: this is `data.enabled == (True & data.ratio) < 1`.
            (
                "data.enabled == True & data.ratio < 1",
                "unsupported operand type(s) for &: 'bool' and 'float'",
            ),
            (
                "1.5 & 1",
                "unsupported operand type(s) for &: 'float' and 'int'",
            ),
            (
                "data.name | 1",
                "unsupported operand type(s) for |: 'str' and 'int'",
            ),
            (
                "data.tags | data.tags",
                "unsupported operand type(s) for |: 'list' and 'list'",
            ),
            (
                "data.keys() & data.keys()",
                "`&` on dict views makes a set, which --metadata-query does not support",
            ),
        ];
        for (src, want) in errors {
            assert_eq!(eval_str(src, &d), Err(EvalError(want.into())), "{src}");
        }
    }

    /// Tuples were lists: `(a,) == [a]` was true, unlike Python.
    #[test]
    fn query_tuple_is_not_a_list() {
        let no = [
            "('language:python', 'cdk:python') == data.tags",
            "(1,) == [1]",
            "() == []",
            "['1.0.0', data.releases.breakingChanges['1.0.0']] in data.releases.breakingChanges.items()",
            "data.keys() == ['name']",
            "data.values() == data.values()",
        ];
        for src in no {
            assert_eq!(q(src), Ok(false), "{src}");
        }
        let yes = [
            "(1,) == (1,)",
            "[1] == [1.0]",
            "(1, 'a') in [(1, 'a')]",
            "(1, 2) < (1, 3)",
            "data.keys() == data.keys()",
            "data.ab_internal.keys() <= data.ab_internal.keys()",
            "'ql' in data.ab_internal.keys()",
            "300 in data.ab_internal.values()",
            "('ql', 300) in data.ab_internal.items()",
            "data.supportLevel in ('certified',)",
            "('x',) not in data",
        ];
        for src in yes {
            assert_eq!(q(src), Ok(true), "{src}");
        }
        let errors = [
            (
                "(1,) < [1]",
                "'<' not supported between instances of 'tuple' and 'list'",
            ),
            ("data.keys()[0]", "'dict_keys' object is not subscriptable"),
            ("[1] in data", "unhashable type: 'list'"),
            ("([1],) in data", "unhashable type: 'list'"),
            (
                "data.name.startswith(['S'])",
                "startswith first arg must be str or a tuple of str, not list",
            ),
            ("(1,)[1]", "tuple index out of range"),
            ("data.name[9]", "string index out of range"),
            (
                "data.tags['a']",
                "list indices must be integers or slices, not str",
            ),
            (
                "data.tags[True] and data.tags[2]",
                "list index out of range",
            ),
            (
                "data.name['a']",
                "string indices must be integers, not 'str'",
            ),
        ];
        for (src, want) in errors {
            assert_eq!(q(src), Err(EvalError(want.into())), "{src}");
        }
    }

    /// `.keys()` came back sorted (serde_json's map), not in the file's order.
    #[test]
    fn query_keys_keep_the_file_order() {
        let text = "data:\n  name: x\n  dockerImageTag: 1.0.0\n  ab_internal:\n    sl: 200\n    ql: 300\n  1: one\n  ratio: .nan\n";
        let doc = Document::parse(text).unwrap();
        let node = yaml::get(doc.root().unwrap(), "data").unwrap();
        let d = QueryData::from_yaml(&doc, node);
        let cases = [
            (
                "str(data.keys())",
                "\"dict_keys(['name', 'dockerImageTag', 'ab_internal', '1', 'ratio'])\"",
            ),
            (
                "str(data.ab_internal.values())",
                "'dict_values([200, 300])'",
            ),
            (
                "str(data.ab_internal.items())",
                "\"dict_items([('sl', 200), ('ql', 300)])\"",
            ),
            ("str(data.ab_internal)", "\"{'sl': 200, 'ql': 300}\""),
            ("data['1']", "'one'"),
            ("data.ratio", "nan"),
            ("data.ratio == data.ratio", "False"),
            ("data.ratio < 1 or data.ratio >= 1", "False"),
        ];
        for (src, want) in cases {
            assert_eq!(eval_str(src, &d).as_deref(), Ok(want), "{src}");
        }
    }
}
