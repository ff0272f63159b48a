//! Parsing of the Go text/template subset: text, `{{ … }}` actions with `{{-`/`-}}` trimming,
//! comments, pipelines, variables, `if`/`else if`/`else`/`end` and `range … end` over maps.

use super::error::TemplateError;

/// A parsed template body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    /// Literal text.
    Text(String),
    /// `{{ pipeline }}`: print the result (or declare a variable and print nothing).
    Action(Pipeline),
    /// `{{ if p }}…{{ else }}…{{ end }}`; `else if` nests another `If` in `otherwise`.
    If {
        cond: Pipeline,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
    /// `{{ range [$k, $v :=] p }}…{{ else }}…{{ end }}` over a map's sorted keys.
    Range {
        key_var: Option<String>,
        value_var: Option<String>,
        over: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

/// `[$x :=] cmd | cmd | …`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pipeline {
    /// Variable declared (`:=`) or assigned (`=`) by the pipeline.
    pub decl: Option<String>,
    pub cmds: Vec<Command>,
}

/// One command of a pipeline: a function and its arguments, or a single operand.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Command {
    pub args: Vec<Arg>,
}

/// An operand.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    /// A function name.
    Func(String),
    /// `$name.field.field` (`$` alone is the root).
    Var(String, Vec<String>),
    /// `.field.field` (`.` alone is dot).
    Field(Vec<String>),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    /// `( pipeline )`.
    Sub(Box<Pipeline>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Var(String, Vec<String>),
    Field(Vec<String>),
    Ident(String),
    Str(String),
    Int(i64),
    Float(f64),
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
}

/// One `{{ … }}` or text piece, before the tree is built.
enum Piece {
    Text(String),
    Action { toks: Vec<Tok>, line: usize },
}

/// Parses template text into nodes.
pub(crate) fn parse(src: &str) -> Result<Vec<Node>, TemplateError> {
    let pieces = split(src)?;
    let mut pos = 0usize;
    let (nodes, end) = parse_list(&pieces, &mut pos)?;
    match end {
        None => Ok(nodes),
        Some((word, line)) => Err(TemplateError::at(line, format!("unexpected {{{{{word}}}}}"))),
    }
}

/// Splits the source into text and tokenised actions, applying trim markers.
fn split(src: &str) -> Result<Vec<Piece>, TemplateError> {
    let mut pieces = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    let mut line = 1usize;
    while !rest.is_empty() {
        let Some(open) = rest.find("{{") else {
            let text = if trim_next { rest.trim_start() } else { rest };
            pieces.push(Piece::Text(text.to_string()));
            break;
        };
        let mut text = rest.get(..open).unwrap_or("");
        let after = rest.get(open + 2..).unwrap_or("");
        line += text.matches('\n').count();
        let trim_left = after.starts_with("- ") || after.starts_with("-\t") || after.starts_with("-\n");
        if trim_next {
            text = text.trim_start();
        }
        if trim_left {
            text = text.trim_end();
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text.to_string()));
        }
        let body_start = if trim_left { 1 } else { 0 };
        let body_all = after.get(body_start..).unwrap_or("");
        let close = find_close(body_all).ok_or_else(|| TemplateError::at(line, "unclosed action"))?;
        let mut body = body_all.get(..close).unwrap_or("");
        trim_next = false;
        if body.ends_with(" -") || body.ends_with("\t-") || body.ends_with("\n-") {
            body = body.get(..body.len() - 1).unwrap_or("");
            trim_next = true;
        }
        let inner = body.trim();
        if !(inner.starts_with("/*") && inner.ends_with("*/")) {
            let toks = lex(inner).map_err(|m| TemplateError::at(line, m))?;
            if toks.is_empty() {
                return Err(TemplateError::at(line, "missing value for command"));
            }
            pieces.push(Piece::Action { toks, line });
        }
        line += body.matches('\n').count();
        rest = body_all.get(close + 2..).unwrap_or("");
    }
    Ok(pieces)
}

/// Byte index of the `}}` closing an action, skipping string literals.
fn find_close(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0usize;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let Some(&b) = bytes.get(i) else {
            break;
        };
        match quote {
            Some(q) => {
                if b == b'\\' && q == b'"' {
                    i += 1;
                } else if b == q {
                    quote = None;
                }
            }
            None => {
                if b == b'"' || b == b'`' || b == b'\'' {
                    quote = Some(b);
                } else if b == b'}' && bytes.get(i + 1) == Some(&b'}') {
                    return Some(i);
                }
            }
        }
        i += 1;
    }
    None
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The characters `chars[a..b]` as a string (empty when out of range).
fn text_of(chars: &[char], a: usize, b: usize) -> String {
    chars.get(a..b).map(|s| s.iter().collect()).unwrap_or_default()
}

/// Tokenises the inside of one action.
fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0usize;
    while let Some(&c) = chars.get(i) {
        if c.is_whitespace() {
            i += 1;
        } else if c == '|' {
            toks.push(Tok::Pipe);
            i += 1;
        } else if c == '(' {
            toks.push(Tok::LParen);
            i += 1;
        } else if c == ')' {
            toks.push(Tok::RParen);
            i += 1;
        } else if c == ',' {
            toks.push(Tok::Comma);
            i += 1;
        } else if c == ':' && chars.get(i + 1) == Some(&'=') {
            toks.push(Tok::Declare);
            i += 2;
        } else if c == '=' {
            toks.push(Tok::Assign);
            i += 1;
        } else if c == '"' {
            let (text, next) = lex_quoted(&chars, i)?;
            toks.push(Tok::Str(text));
            i = next;
        } else if c == '`' {
            let end = (i + 1..chars.len())
                .find(|&j| chars.get(j) == Some(&'`'))
                .ok_or("unterminated raw quoted string")?;
            toks.push(Tok::Str(text_of(&chars, i + 1, end)));
            i = end + 1;
        } else if c == '$' || c == '.' {
            let start = i;
            i += 1;
            while chars.get(i).is_some_and(|&c| is_ident_char(c) || c == '.') {
                i += 1;
            }
            let word: String = text_of(&chars, start, i);
            let mut parts = word.split('.');
            let head = parts.next().unwrap_or("");
            let fields: Vec<String> = parts.filter(|p| !p.is_empty()).map(str::to_string).collect();
            if c == '$' {
                toks.push(Tok::Var(head.to_string(), fields));
            } else {
                toks.push(Tok::Field(fields));
            }
        } else if c.is_ascii_digit()
            || ((c == '-' || c == '+') && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            i += 1;
            while chars.get(i).is_some_and(|&c| {
                c.is_ascii_alphanumeric()
                    || c == '.'
                    || c == '_'
                    || ((c == '-' || c == '+') && matches!(chars.get(i - 1), Some('e' | 'E')))
            }) {
                i += 1;
            }
            let word: String = text_of(&chars, start, i);
            if let Ok(n) = word.parse::<i64>() {
                toks.push(Tok::Int(n));
            } else if let Ok(f) = word.parse::<f64>() {
                toks.push(Tok::Float(f));
            } else {
                return Err(format!("bad number syntax: {word:?}"));
            }
        } else if is_ident_char(c) {
            let start = i;
            while chars.get(i).is_some_and(|&c| is_ident_char(c)) {
                i += 1;
            }
            toks.push(Tok::Ident(text_of(&chars, start, i)));
        } else {
            return Err(format!("unexpected {c:?} in command"));
        }
    }
    Ok(toks)
}

/// Reads a Go interpreted string literal starting at `chars[start] == '"'`.
fn lex_quoted(chars: &[char], start: usize) -> Result<(String, usize), String> {
    let mut out = String::new();
    let mut i = start + 1;
    loop {
        let Some(&c) = chars.get(i) else {
            return Err("unterminated quoted string".into());
        };
        i += 1;
        match c {
            '"' => return Ok((out, i)),
            '\\' => {
                let e = chars.get(i).copied().ok_or("unterminated quoted string")?;
                i += 1;
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    '\'' => out.push('\''),
                    other => return Err(format!("unknown escape sequence \\{other}")),
                }
            }
            other => out.push(other),
        }
    }
}

/// Parses nodes until `{{end}}`/`{{else …}}` (returned) or the end of input.
#[allow(clippy::type_complexity)]
fn parse_list(
    pieces: &[Piece],
    pos: &mut usize,
) -> Result<(Vec<Node>, Option<(String, usize)>), TemplateError> {
    let mut nodes = Vec::new();
    while let Some(piece) = pieces.get(*pos) {
        *pos += 1;
        let (toks, line) = match piece {
            Piece::Text(t) => {
                nodes.push(Node::Text(t.clone()));
                continue;
            }
            Piece::Action { toks, line } => (toks, *line),
        };
        match toks.first() {
            Some(Tok::Ident(w)) if w == "end" => return Ok((nodes, Some(("end".into(), line)))),
            Some(Tok::Ident(w)) if w == "else" => {
                let rest = toks.get(1..).unwrap_or(&[]);
                if let Some(Tok::Ident(k)) = rest.first() {
                    if k == "if" {
                        // `else if`: leave a marker the caller turns into a nested If.
                        *pos -= 1;
                        return Ok((nodes, Some(("else if".into(), line))));
                    }
                }
                return Ok((nodes, Some(("else".into(), line))));
            }
            Some(Tok::Ident(w)) if w == "if" => {
                let cond =
                    parse_pipeline(toks.get(1..).unwrap_or(&[])).map_err(|m| TemplateError::at(line, m))?;
                nodes.push(parse_if(pieces, pos, cond, line)?);
            }
            Some(Tok::Ident(w)) if w == "range" => {
                nodes.push(parse_range(pieces, pos, toks.get(1..).unwrap_or(&[]), line)?);
            }
            Some(Tok::Ident(w))
                if matches!(
                    w.as_str(),
                    "with" | "define" | "template" | "block" | "break" | "continue"
                ) =>
            {
                return Err(TemplateError::at(line, format!("{{{{{w}}}}} is not supported")));
            }
            _ => {
                let p = parse_pipeline(toks).map_err(|m| TemplateError::at(line, m))?;
                nodes.push(Node::Action(p));
            }
        }
    }
    Ok((nodes, None))
}

fn parse_if(pieces: &[Piece], pos: &mut usize, cond: Pipeline, line: usize) -> Result<Node, TemplateError> {
    let (then, end) = parse_list(pieces, pos)?;
    let otherwise = match end.as_ref().map(|(w, l)| (w.as_str(), *l)) {
        Some(("end", _)) => Vec::new(),
        Some(("else", _)) => {
            let (otherwise, end2) = parse_list(pieces, pos)?;
            match end2 {
                Some((w, _)) if w == "end" => otherwise,
                _ => return Err(TemplateError::at(line, "missing {{end}} for {{if}}")),
            }
        }
        Some(("else if", l)) => {
            let Some(Piece::Action { toks, .. }) = pieces.get(*pos) else {
                return Err(TemplateError::at(l, "malformed else if"));
            };
            *pos += 1;
            let cond2 = parse_pipeline(toks.get(2..).unwrap_or(&[])).map_err(|m| TemplateError::at(l, m))?;
            vec![parse_if(pieces, pos, cond2, l)?]
        }
        _ => return Err(TemplateError::at(line, "missing {{end}} for {{if}}")),
    };
    Ok(Node::If {
        cond,
        then,
        otherwise,
    })
}

fn parse_range(pieces: &[Piece], pos: &mut usize, toks: &[Tok], line: usize) -> Result<Node, TemplateError> {
    let mut key_var = None;
    let mut value_var = None;
    let mut rest = toks;
    if let Some(d) = toks.iter().position(|t| *t == Tok::Declare) {
        let vars: Vec<String> = toks
            .get(..d)
            .unwrap_or(&[])
            .iter()
            .filter_map(|t| match t {
                Tok::Var(v, f) if f.is_empty() => Some(v.clone()),
                _ => None,
            })
            .collect();
        match vars.as_slice() {
            [v] => value_var = Some(v.clone()),
            [k, v] => {
                key_var = Some(k.clone());
                value_var = Some(v.clone());
            }
            _ => {
                return Err(TemplateError::at(
                    line,
                    "range can only declare one or two variables",
                ))
            }
        }
        rest = toks.get(d + 1..).unwrap_or(&[]);
    }
    let over = parse_pipeline(rest).map_err(|m| TemplateError::at(line, m))?;
    let (body, end) = parse_list(pieces, pos)?;
    let otherwise = match end {
        Some((w, _)) if w == "end" => Vec::new(),
        Some((w, _)) if w == "else" => {
            let (o, end2) = parse_list(pieces, pos)?;
            match end2 {
                Some((w, _)) if w == "end" => o,
                _ => return Err(TemplateError::at(line, "missing {{end}} for {{range}}")),
            }
        }
        _ => return Err(TemplateError::at(line, "missing {{end}} for {{range}}")),
    };
    Ok(Node::Range {
        key_var,
        value_var,
        over,
        body,
        otherwise,
    })
}

/// Parses `[$x :=] cmd | cmd …`.
fn parse_pipeline(toks: &[Tok]) -> Result<Pipeline, String> {
    let mut rest = toks;
    let mut decl = None;
    if let (Some(Tok::Var(v, f)), Some(Tok::Declare | Tok::Assign)) = (toks.first(), toks.get(1)) {
        if f.is_empty() {
            decl = Some(v.clone());
            rest = toks.get(2..).unwrap_or(&[]);
        }
    }
    let mut cmds = Vec::new();
    let mut i = 0usize;
    let mut args = Vec::new();
    while let Some(t) = rest.get(i) {
        i += 1;
        match t {
            Tok::Pipe => {
                if args.is_empty() {
                    return Err("missing command before |".into());
                }
                cmds.push(Command {
                    args: std::mem::take(&mut args),
                });
            }
            Tok::LParen => {
                let mut depth = 1usize;
                let start = i;
                while depth > 0 {
                    match rest.get(i) {
                        Some(Tok::LParen) => depth += 1,
                        Some(Tok::RParen) => depth -= 1,
                        Some(_) => {}
                        None => return Err("unclosed left paren".into()),
                    }
                    i += 1;
                }
                let inner = parse_pipeline(rest.get(start..i - 1).unwrap_or(&[]))?;
                args.push(Arg::Sub(Box::new(inner)));
            }
            Tok::RParen => return Err("unexpected right paren".into()),
            Tok::Declare | Tok::Assign | Tok::Comma => return Err("unexpected := or , in command".into()),
            Tok::Var(v, f) => args.push(Arg::Var(v.clone(), f.clone())),
            Tok::Field(f) => args.push(Arg::Field(f.clone())),
            Tok::Str(s) => args.push(Arg::Str(s.clone())),
            Tok::Int(n) => args.push(Arg::Int(*n)),
            Tok::Float(x) => args.push(Arg::Float(*x)),
            Tok::Ident(w) => args.push(match w.as_str() {
                "true" => Arg::Bool(true),
                "false" => Arg::Bool(false),
                "nil" => Arg::Nil,
                _ => {
                    if !super::funcs::is_function(w) {
                        return Err(format!("function {w:?} not defined"));
                    }
                    Arg::Func(w.clone())
                }
            }),
        }
    }
    if args.is_empty() {
        return Err("missing command".into());
    }
    cmds.push(Command { args });
    for c in cmds.iter().skip(1) {
        if !matches!(c.args.first(), Some(Arg::Func(_))) && c.args.len() > 1 {
            return Err("non-function command in pipeline cannot take arguments".into());
        }
    }
    Ok(Pipeline { decl, cmds })
}
