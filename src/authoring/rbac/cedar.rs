//! Writing Cedar text from RBAC strings. Every string that came from the
//! input goes through [`string`] or [`like_prefix`], so no name, however
//! quoted, can change the structure of a generated policy.

use std::fmt::Write;

/// A boolean Cedar expression under construction, simplified as it is
/// built so that `true` and `false` never appear in the output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Expr {
    True,
    False,
    /// Needs no parentheses as an operand of `&&` or `||`.
    Atom(String),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

impl Expr {
    pub(crate) fn atom(s: impl Into<String>) -> Expr {
        Expr::Atom(s.into())
    }

    /// Conjunction; `True` parts vanish, a `False` part makes it `False`.
    pub(crate) fn and(parts: impl IntoIterator<Item = Expr>) -> Expr {
        let mut out = Vec::new();
        for p in parts {
            match p {
                Expr::True => {}
                Expr::False => return Expr::False,
                Expr::And(inner) => out.extend(inner),
                other => out.push(other),
            }
        }
        match out.len() {
            0 => Expr::True,
            1 => out.pop().unwrap_or(Expr::True),
            _ => Expr::And(out),
        }
    }

    /// Disjunction; `False` parts vanish, a `True` part makes it `True`.
    pub(crate) fn or(parts: impl IntoIterator<Item = Expr>) -> Expr {
        let mut out: Vec<Expr> = Vec::new();
        for p in parts {
            match p {
                Expr::False => {}
                Expr::True => return Expr::True,
                Expr::Or(inner) => out.extend(inner),
                other => {
                    if !out.contains(&other) {
                        out.push(other)
                    }
                }
            }
        }
        match out.len() {
            0 => Expr::False,
            1 => out.pop().unwrap_or(Expr::False),
            _ => Expr::Or(out),
        }
    }

    /// Cedar text. Operands of `&&` and `||` that are themselves `||` or
    /// `&&` are parenthesised (the latter only for the reader's sake).
    pub(crate) fn render(&self) -> String {
        let operand = |e: &Expr| match e {
            Expr::And(_) | Expr::Or(_) => format!("({})", e.render()),
            _ => e.render(),
        };
        match self {
            Expr::True => "true".into(),
            Expr::False => "false".into(),
            Expr::Atom(s) => s.clone(),
            Expr::And(parts) => parts.iter().map(operand).collect::<Vec<_>>().join(" && "),
            Expr::Or(parts) => parts.iter().map(operand).collect::<Vec<_>>().join(" || "),
        }
    }
}

fn escape_into(out: &mut String, s: &str, star: bool) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '*' if star => out.push_str("\\*"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// A Cedar string literal, quotes included.
pub(crate) fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    escape_into(&mut out, s, false);
    out.push('"');
    out
}

/// A `like` pattern matching every string that starts with `prefix`.
pub(crate) fn like_prefix(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 3);
    out.push('"');
    escape_into(&mut out, prefix, true);
    out.push_str("*\"");
    out
}

/// `k8s::<type>::"<id>"`.
pub(crate) fn entity(type_name: &str, id: &str) -> String {
    format!("k8s::{type_name}::{}", string(id))
}

/// `expr == "v"`, or `["a", "b"].contains(expr)`; `False` for no values.
pub(crate) fn one_of(expr: &str, values: &[String]) -> Expr {
    match values {
        [] => Expr::False,
        [one] => Expr::atom(format!("{expr} == {}", string(one))),
        many => Expr::atom(format!(
            "[{}].contains({expr})",
            many.iter()
                .map(|v| string(v))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// `expr == k8s::T::"a"`, or `expr in [k8s::T::"a", k8s::T::"b"]` (for
/// entities without ancestors of their own type, `in` is membership).
pub(crate) fn one_of_entities(expr: &str, type_name: &str, ids: &[String]) -> Expr {
    match ids {
        [] => Expr::False,
        [one] => Expr::atom(format!("{expr} == {}", entity(type_name, one))),
        many => Expr::atom(format!(
            "{expr} in [{}]",
            many.iter()
                .map(|id| entity(type_name, id))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped() {
        assert_eq!(string("a\"b\\c\n\u{1}é"), r#""a\"b\\c\n\u{1}é""#);
        assert_eq!(like_prefix("/a*b"), r#""/a\*b*""#);
    }

    #[test]
    fn expressions_simplify_and_parenthesise() {
        let a = Expr::atom("a");
        let b = Expr::atom("b");
        let c = Expr::atom("c");
        assert_eq!(Expr::and([Expr::True, a.clone()]), a);
        assert_eq!(Expr::and([Expr::False, a.clone()]), Expr::False);
        assert_eq!(Expr::or([Expr::True, a.clone()]), Expr::True);
        let e = Expr::and([Expr::or([a.clone(), b.clone()]), c.clone()]);
        assert_eq!(e.render(), "(a || b) && c");
        let e = Expr::or([Expr::and([a, b]), c]);
        assert_eq!(e.render(), "(a && b) || c");
    }
}
