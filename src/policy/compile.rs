//! Compiling policy files into one named, strict-validated `PolicySet`.
//!
//! A set compiles whole or not at all: one parse error, duplicate `@id` or
//! validation error anywhere rejects it, with every diagnostic located at
//! file:line:col.

use std::collections::HashMap;
use std::str::FromStr;

use cedar_policy::{Policy, PolicyId, PolicySet, ValidationMode, Validator};

use super::{Diagnostic, LoadError, PolicyFile, PolicyMeta, Result, SchemaBundle};

/// Policies named, checked and collected into one set.
pub struct Compiled {
    pub set: PolicySet,
    pub policies: Vec<PolicyMeta>,
    pub warnings: Vec<Diagnostic>,
}

/// Parses every file, names each policy, and strict-validates the whole set.
pub fn compile(files: &[PolicyFile], schema: &SchemaBundle) -> Result<Compiled> {
    let mut errors = Vec::new();
    let mut named: Vec<(Policy, PolicyMeta)> = Vec::new();
    // Where each id was first seen: (file index, position in file). Turned
    // into file:line:col only when a diagnostic needs it.
    let mut seen: HashMap<String, (usize, usize)> = HashMap::new();
    for (file_index, file) in files.iter().enumerate() {
        let parsed = match PolicySet::from_str(&file.text) {
            Ok(set) => set,
            Err(e) => {
                for err in e.iter() {
                    let offset = Diagnostic::offset_of(err).unwrap_or(0);
                    errors.push(Diagnostic::at_offset(
                        file.path.clone(),
                        &file.text,
                        offset,
                        Diagnostic::message_of(err),
                        "error",
                    ));
                }
                continue;
            }
        };
        if let Some(t) = parsed.templates().next() {
            let position = t.id().to_string().trim_start_matches("policy").parse();
            let offset = policy_offset(&file.text, position.unwrap_or(0));
            errors.push(Diagnostic::at_offset(
                file.path.clone(),
                &file.text,
                offset,
                format!(
                    "policy templates (with ?principal or ?resource slots) are not supported: {}",
                    t.id()
                ),
                "error",
            ));
            continue;
        }
        // `from_str` names policies policy0, policy1, ... in file order.
        let mut in_file: Vec<(usize, &Policy)> = parsed
            .policies()
            .map(|p| {
                let n = p
                    .id()
                    .to_string()
                    .trim_start_matches("policy")
                    .parse()
                    .unwrap_or(usize::MAX);
                (n, p)
            })
            .collect();
        in_file.sort_by_key(|(n, _)| *n);
        for (position, (_, policy)) in in_file.into_iter().enumerate() {
            let id = policy
                .annotation("id")
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{}#{}", file.relative, position));
            if let Some(&(first_file, first_position)) = seen.get(&id) {
                let first = &files[first_file];
                let earlier = Diagnostic::at_offset(
                    first.path.clone(),
                    &first.text,
                    policy_offset(&first.text, first_position),
                    String::new(),
                    "error",
                );
                errors.push(Diagnostic::at_offset(
                    file.path.clone(),
                    &file.text,
                    policy_offset(&file.text, position),
                    format!(
                        "duplicate policy id {id:?}: already used at {}:{}:{}",
                        earlier.file.display(),
                        earlier.line,
                        earlier.column
                    ),
                    "error",
                ));
                continue;
            }
            seen.insert(id.clone(), (file_index, position));
            let meta = PolicyMeta {
                id: id.clone(),
                effect: policy.effect(),
                file: file.relative.clone(),
            };
            named.push((policy.new_id(PolicyId::new(&id)), meta));
        }
    }
    if !errors.is_empty() {
        return Err(LoadError::Invalid(errors));
    }

    let file_of = |id: &str| &files[seen.get(id).map_or(0, |&(f, _)| f)];
    let mut set = PolicySet::new();
    let mut policies = Vec::with_capacity(named.len());
    for (policy, meta) in named {
        // Ids are unique (checked above), so Cedar's own check passes.
        if let Err(e) = set.add(policy) {
            let file = file_of(&meta.id);
            errors.push(Diagnostic::at_offset(
                file.path.clone(),
                &file.text,
                0,
                e.to_string(),
                "error",
            ));
        }
        policies.push(meta);
    }
    if !errors.is_empty() {
        return Err(LoadError::Invalid(errors));
    }

    // Strict validation checks each policy on its own; chunks of the set
    // are validated on several threads.
    let all: Vec<&Policy> = set.policies().collect();
    let locate = |id: &PolicyId, d: &dyn miette::Diagnostic, severity| {
        let file = file_of(id.as_ref());
        Diagnostic::at_offset(
            file.path.clone(),
            &file.text,
            Diagnostic::offset_of(d).unwrap_or(0),
            Diagnostic::message_of(d),
            severity,
        )
    };
    let validator = Validator::new(schema.schema.clone());
    // Policies whose actions are all `k8s::Action`s have exactly the
    // request environments of the authorization schema, so they are
    // validated against it alone: the validator's cost follows the number
    // of environments, which the admission types multiply. One that fails
    // there is validated again against the whole schema, whose verdict
    // stands (it may name an admission type in a condition).
    let narrow = schema
        .authorization_schema
        .as_ref()
        .map(|s| Validator::new(s.clone()));
    let validate = |v: &Validator, policies: &[&Policy]| {
        let mut part = PolicySet::new();
        for p in policies {
            let _ = part.add((*p).clone());
        }
        let result = v.validate(&part, ValidationMode::Strict);
        let errors: Vec<Diagnostic> = result
            .validation_errors()
            .map(|e| locate(e.policy_id(), e, "error"))
            .collect();
        let warnings: Vec<Diagnostic> = result
            .validation_warnings()
            .map(|w| locate(w.policy_id(), w, "warning"))
            .collect();
        (errors, warnings)
    };
    let chunk_results = par_chunks(&all, |chunk| {
        let Some(narrow) = &narrow else {
            return validate(&validator, chunk);
        };
        let (authorization, rest): (Vec<&Policy>, Vec<&Policy>) =
            chunk.iter().copied().partition(|p| authorization_only(p));
        let (mut errors, mut warnings) = validate(&validator, &rest);
        let (narrow_errors, narrow_warnings) = validate(narrow, &authorization);
        if narrow_errors.is_empty() {
            warnings.extend(narrow_warnings);
        } else {
            let (e, w) = validate(&validator, &authorization);
            errors.extend(e);
            warnings.extend(w);
        }
        (errors, warnings)
    });
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    for (e, w) in chunk_results {
        errors.extend(e);
        warnings.extend(w);
    }
    if !errors.is_empty() {
        return Err(LoadError::Invalid(sorted(errors)));
    }
    Ok(Compiled {
        set,
        policies,
        warnings: sorted(warnings),
    })
}

/// True when every action a policy's scope names is a `k8s::Action`.
fn authorization_only(p: &Policy) -> bool {
    let k8s = |uid: &cedar_policy::EntityUid| uid.type_name().to_string() == "k8s::Action";
    match p.action_constraint() {
        cedar_policy::ActionConstraint::Any => false,
        cedar_policy::ActionConstraint::Eq(uid) => k8s(&uid),
        cedar_policy::ActionConstraint::In(uids) => uids.iter().all(k8s),
    }
}

/// Applies `f` to chunks of `items` on up to four threads (one when the
/// input is small or the machine has one core); results in chunk order.
pub(crate) fn par_chunks<T: Sync, R: Send>(items: &[T], f: impl Fn(&[T]) -> R + Sync) -> Vec<R> {
    const MIN_CHUNK: usize = 256;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4)
        .min(items.len().div_ceil(MIN_CHUNK).max(1));
    if threads <= 1 {
        return vec![f(items)];
    }
    let size = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(size)
            .map(|chunk| scope.spawn(|| f(chunk)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

fn sorted(mut d: Vec<Diagnostic>) -> Vec<Diagnostic> {
    d.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    d.dedup();
    d
}

/// Byte offset where the `n`th policy of a file starts, for messages that
/// concern a whole policy. Found by re-parsing prefixes would be costly; the
/// policy's effect keyword at statement level is a good enough anchor.
fn policy_offset(text: &str, n: usize) -> usize {
    let mut count = 0;
    let mut depth = 0i32;
    let mut in_string = false;
    let mut escaped = false;
    let mut at_statement_start = true;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        match c {
            b'"' => in_string = true,
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'(' | b'{' | b'[' => depth += 1,
            b')' | b'}' | b']' => depth -= 1,
            b';' if depth == 0 => at_statement_start = true,
            c if c.is_ascii_whitespace() => {}
            _ if depth == 0 && at_statement_start => {
                if count == n {
                    return i;
                }
                count += 1;
                at_statement_start = false;
            }
            _ => {}
        }
        i += 1;
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_offsets_skip_comments_strings_and_nesting() {
        let text = "// permit;\n@id(\"a;b\")\npermit(principal, action, resource) when { \"x;\" == \"y\" };\n\nforbid(principal, action, resource);";
        assert_eq!(policy_offset(text, 0), text.find("@id").unwrap());
        assert_eq!(policy_offset(text, 1), text.find("forbid").unwrap());
    }
}
