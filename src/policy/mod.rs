//! Policies: reading the policy directory, naming and validating every
//! policy, and compiling the result into one immutable [`Snapshot`].
//!
//! A set loads whole or not at all: one parse error, duplicate `@id` or
//! validation error anywhere rejects it, so a bad edit can never serve a
//! partial (and therefore looser) policy set.

mod diagnostics;
pub mod index;
mod snapshot;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{
    Entity, EntityUid, Policy, PolicyId, PolicySet, Schema, ValidationMode, Validator,
};

pub use diagnostics::Diagnostic;
pub use index::PolicyIndex;
pub use snapshot::{PolicyMeta, Snapshot};

/// The schema compiled into the binary.
pub const BUILTIN_SCHEMA: &str = include_str!("../../schema/k8s.cedarschema");

/// Why a policy set or schema did not load.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file or directory could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The directory holds no `.cedar` file.
    #[error("{}: no .cedar files found", .0.display())]
    Empty(PathBuf),
    /// Parse, naming or validation errors, each with file:line:col.
    #[error("{}", render_all(.0))]
    Invalid(Vec<Diagnostic>),
    /// The schema does not parse.
    #[error("{}: invalid schema: {message}", path.display())]
    Schema { path: PathBuf, message: String },
}

fn render_all(diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Result type of this module.
pub type Result<T, E = LoadError> = std::result::Result<T, E>;

/// A parsed schema with what is derived from it once.
pub struct SchemaBundle {
    pub schema: Schema,
    /// The schema's action entities that belong to action groups, by verb.
    /// Only these need to be in a request's entities.
    pub grouped_actions: HashMap<String, Entity>,
    /// Each action group's member actions, transitively.
    pub action_members: HashMap<EntityUid, Vec<EntityUid>>,
}

impl SchemaBundle {
    /// Parses Cedar schema text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let err = |message: String| LoadError::Schema {
            path: path.to_owned(),
            message,
        };
        let (schema, _warnings) =
            Schema::from_cedarschema_str(text).map_err(|e| err(Diagnostic::message_of(&e)))?;
        let actions = schema.action_entities().map_err(|e| err(e.to_string()))?;
        let mut grouped_actions = HashMap::new();
        let mut action_members: HashMap<EntityUid, Vec<EntityUid>> = HashMap::new();
        for action in actions.iter() {
            let Some(ancestors) = actions.ancestors(&action.uid()) else {
                continue;
            };
            let mut any = false;
            for group in ancestors {
                any = true;
                action_members
                    .entry(group.clone())
                    .or_default()
                    .push(action.uid());
            }
            if any {
                grouped_actions.insert(action.uid().id().unescaped().to_owned(), action.clone());
            }
        }
        Ok(SchemaBundle {
            schema,
            grouped_actions,
            action_members,
        })
    }

    /// The built-in schema, or the file given with `--schema`.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        match path {
            None => Self::parse(BUILTIN_SCHEMA, Path::new("<built-in schema>")),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| LoadError::Io {
                    path: p.to_owned(),
                    source,
                })?;
                Self::parse(&text, p)
            }
        }
    }
}

/// One `.cedar` file of the policy directory.
#[derive(Clone, Debug)]
pub struct PolicyFile {
    /// Path relative to the policy directory, `/`-separated: the prefix of
    /// generated policy ids.
    pub relative: String,
    /// Path as the user would open it, for messages.
    pub path: PathBuf,
    pub text: Arc<str>,
}

/// Reads every `.cedar` file under `dir`, recursively, in sorted path order.
/// Entries whose names start with `.` are skipped: that is how a Kubernetes
/// ConfigMap mount's `..data` and timestamped directories are not read twice
/// (the visible names are symlinks into them, and those are followed).
pub fn read_dir(dir: &Path) -> Result<Vec<PolicyFile>> {
    let paths = crate::walk::files(dir, &["cedar"]).map_err(|e| LoadError::Io {
        path: e.path,
        source: e.source,
    })?;
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(|source| LoadError::Io {
            path: path.clone(),
            source,
        })?;
        let relative = path
            .strip_prefix(dir)
            .unwrap_or(&path)
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        files.push(PolicyFile {
            relative,
            path,
            text: text.into(),
        });
    }
    // Ids derive from relative paths: sort by them, not by OS path order.
    files.sort_by(|a, b| a.relative.cmp(&b.relative));
    if files.is_empty() {
        return Err(LoadError::Empty(dir.to_owned()));
    }
    Ok(files)
}

/// A digest of the files' names and contents: equal digests mean there is
/// nothing to reload.
pub fn digest(files: &[PolicyFile]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for f in files {
        f.relative.hash(&mut h);
        f.text.hash(&mut h);
    }
    h.finish()
}

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
    let chunk_results = par_chunks(&all, |chunk| {
        let mut part = PolicySet::new();
        for p in chunk {
            let _ = part.add((*p).clone());
        }
        let result = validator.validate(&part, ValidationMode::Strict);
        let errors: Vec<Diagnostic> = result
            .validation_errors()
            .map(|e| locate(e.policy_id(), e, "error"))
            .collect();
        let warnings: Vec<Diagnostic> = result
            .validation_warnings()
            .map(|w| locate(w.policy_id(), w, "warning"))
            .collect();
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

/// Reads, compiles and indexes the policy directory: what `validate`,
/// `check` and the server's loads all go through.
pub fn load(
    dir: &Path,
    schema: &Arc<SchemaBundle>,
    generation: u64,
    cache_size: usize,
) -> Result<Snapshot> {
    let files = read_dir(dir)?;
    Snapshot::build(&files, schema, generation, cache_size)
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
