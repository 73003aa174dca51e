//! The SMT solver behind the symbolic compiler: cvc5, named by `CVC5` or
//! found on `PATH`, one process at a time.
//!
//! A query that errors (a solver crash, a parse error, `unknown` after the
//! time limit) leaves the process's input and output possibly out of step,
//! so the process is dropped and the next query starts a fresh one. An
//! error is never read as an answer: the caller reports it as trouble.

use std::ffi::OsString;
use std::time::Duration;

use cedar_policy_symcc::solver::LocalSolver;
use cedar_policy_symcc::{CedarSymCompiler, CompiledPolicySet, Env};

/// Which solver to run and how long one query may take.
#[derive(Clone, Debug)]
pub struct SolverConfig {
    /// The cvc5 executable.
    pub program: OsString,
    /// Limit of one query (cvc5's `--tlimit-per`, so idle time between
    /// queries does not count, unlike `--tlimit`).
    pub per_query: Duration,
}

impl SolverConfig {
    /// `CVC5` when set, else `cvc5` on `PATH`.
    pub fn from_env(per_query: Duration) -> Self {
        SolverConfig {
            program: std::env::var_os("CVC5").unwrap_or_else(|| "cvc5".into()),
            per_query,
        }
    }
}

/// Why the solver gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum SolverError {
    /// The executable is not there.
    #[error("no SMT solver: {program} not found; install cvc5 (apt-get install cvc5) or set CVC5 to its path")]
    Missing { program: String },
    /// It started but did not answer a query.
    #[error("solver: {0}")]
    Query(String),
}

/// An error with its causes, `: `-separated (symcc's I/O error says only
/// "IO error during a solver operation" itself).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// A running solver with Cedar's symbolic compiler in front of it.
pub(crate) struct Prover {
    config: SolverConfig,
    compiler: Option<CedarSymCompiler<LocalSolver>>,
    /// Queries sent, for the report.
    pub queries: usize,
}

impl Prover {
    /// Starts the solver once, so a missing one is reported before any work.
    /// Must run inside a tokio runtime (the process is a tokio child).
    pub fn start(config: SolverConfig) -> Result<Self, SolverError> {
        let mut prover = Prover {
            config,
            compiler: None,
            queries: 0,
        };
        prover.compiler()?;
        Ok(prover)
    }

    fn compiler(&mut self) -> Result<&mut CedarSymCompiler<LocalSolver>, SolverError> {
        if self.compiler.is_none() {
            let limit = format!("--tlimit-per={}", self.config.per_query.as_millis().max(1));
            let mut command = tokio::process::Command::new(&self.config.program);
            // `--strings-exp`: `like` patterns with an inner `*` compile to
            // `str.contains`, which Debian's cvc5 1.0.3 refuses without it.
            command
                .args(["--lang", "smt", "--strings-exp", &limit])
                .kill_on_drop(true);
            let solver = LocalSolver::from_command(&mut command).map_err(|e| {
                let program = self.config.program.to_string_lossy().into_owned();
                match e {
                    cedar_policy_symcc::solver::SolverError::Io(io)
                        if io.kind() == std::io::ErrorKind::NotFound =>
                    {
                        SolverError::Missing { program }
                    }
                    other => SolverError::Query(format!("starting {program}: {}", chain(&other))),
                }
            })?;
            let compiler =
                CedarSymCompiler::new(solver).map_err(|e| SolverError::Query(e.to_string()))?;
            self.compiler = Some(compiler);
        }
        Ok(self.compiler.as_mut().expect("just set"))
    }

    fn failed(&mut self, e: cedar_policy_symcc::err::Error) -> SolverError {
        // The process may be out of step or gone: the next query starts anew.
        self.compiler = None;
        SolverError::Query(chain(&e))
    }

    /// A request `a` allows and `b` does not, if there is one.
    pub async fn allowed_by_not(
        &mut self,
        a: &CompiledPolicySet,
        b: &CompiledPolicySet,
    ) -> Result<Option<Env>, SolverError> {
        self.queries += 1;
        let result = self
            .compiler()?
            .check_implies_with_counterexample_opt(a, b)
            .await;
        result.map_err(|e| self.failed(e))
    }

    /// Whether the set allows nothing.
    pub async fn allows_nothing(&mut self, set: &CompiledPolicySet) -> Result<bool, SolverError> {
        self.queries += 1;
        let result = self.compiler()?.check_always_denies_opt(set).await;
        result.map_err(|e| self.failed(e))
    }

    /// A request on which the policy errors, if there is one.
    pub async fn error_example(
        &mut self,
        policy: &cedar_policy_symcc::CompiledPolicy,
    ) -> Result<Option<Env>, SolverError> {
        self.queries += 1;
        let result = self
            .compiler()?
            .check_never_errors_with_counterexample_opt(policy)
            .await;
        result.map_err(|e| self.failed(e))
    }
}
