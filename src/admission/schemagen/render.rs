//! The admission schema as Cedar schema text, in the layout of
//! `schema/k8s.cedarschema`: sorted, two-space indents, every attribute
//! name quoted, names of the same namespace written short.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::convert::{Record, Schema, Type, OPERATIONS};

/// The principals of admission requests: those a SubjectAccessReview maps
/// to (groups are only ever their parents).
const PRINCIPALS: &str = "k8s::User, k8s::ServiceAccount, k8s::Node";

/// Splits `a::b::C` into `a::b` and `C`.
fn split(name: &str) -> (&str, &str) {
    name.rsplit_once("::").unwrap_or(("", name))
}

#[derive(Default)]
struct Namespace<'a> {
    common: Vec<(&'a str, &'a Record)>,
    entities: Vec<(&'a str, &'a Record)>,
}

pub(super) fn render(schema: &Schema, header: &str) -> String {
    let mut out = String::new();
    for line in header.lines() {
        let _ = writeln!(out, "// {line}");
    }
    out.push_str("namespace k8s::admission {\n");
    out.push_str("  @doc(\"every admission operation\")\n  action \"all\";\n");
    for op in OPERATIONS {
        let _ = write!(out, "  action \"{op}\" in [Action::\"all\"]");
        match schema.actions.get(op) {
            Some(types) if !types.is_empty() => {
                let _ = writeln!(
                    out,
                    " appliesTo {{\n    principal: [{PRINCIPALS}],\n    resource: ["
                );
                let last = types.len() - 1;
                for (i, t) in types.iter().enumerate() {
                    let comma = if i == last { "" } else { "," };
                    let _ = writeln!(out, "      {t}{comma}");
                }
                out.push_str("    ],\n    context: {}\n  };\n");
            }
            _ => out.push_str(";\n"),
        }
    }
    out.push_str("}\n");

    let mut namespaces: BTreeMap<&str, Namespace> = BTreeMap::new();
    for (name, record) in &schema.common {
        let (ns, short) = split(name);
        namespaces
            .entry(ns)
            .or_default()
            .common
            .push((short, record));
    }
    for (name, record) in &schema.entities {
        let (ns, short) = split(name);
        namespaces
            .entry(ns)
            .or_default()
            .entities
            .push((short, record));
    }
    for (ns, decls) in &namespaces {
        let _ = writeln!(out, "\nnamespace {ns} {{");
        for (name, record) in &decls.common {
            let _ = write!(out, "  type {name} = ");
            write_record(&mut out, record, ns, 1);
            out.push_str(";\n");
        }
        for (name, record) in &decls.entities {
            let _ = write!(out, "  entity {name} = ");
            write_record(&mut out, record, ns, 1);
            out.push_str(";\n");
        }
        out.push_str("}\n");
    }
    out
}

fn write_record(out: &mut String, record: &Record, ns: &str, depth: usize) {
    if record.is_empty() {
        out.push_str("{}");
        return;
    }
    out.push_str("{\n");
    let last = record.len() - 1;
    for (i, (name, attr)) in record.iter().enumerate() {
        indent(out, depth + 1);
        quote(out, name);
        if !attr.required {
            out.push('?');
        }
        out.push_str(": ");
        write_type(out, &attr.ty, ns, depth + 1);
        if i != last {
            out.push(',');
        }
        out.push('\n');
    }
    indent(out, depth);
    out.push('}');
}

fn write_type(out: &mut String, ty: &Type, ns: &str, depth: usize) {
    match ty {
        Type::String => out.push_str("String"),
        Type::Long => out.push_str("Long"),
        Type::Bool => out.push_str("Bool"),
        Type::Set(inner) => {
            out.push_str("Set<");
            write_type(out, inner, ns, depth);
            out.push('>');
        }
        Type::Record(record) => write_record(out, record, ns, depth),
        Type::Named(name) => match split(name) {
            (own, short) if own == ns => out.push_str(short),
            _ => out.push_str(name),
        },
    }
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

/// A Cedar string literal: attribute names may hold any character.
fn quote(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
