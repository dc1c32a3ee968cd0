//! The conformance fixtures, one per MCP implementation: the same tools, resources and prompts
//! (those the conformance suite's server scenarios call) written on rmcp, on the TypeScript
//! SDK and on the Python SDK, so that a behaviour seen through the gateway can be told apart
//! from one of the SDK behind it.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
};

use super::{example_bin, installed, python};

/// An MCP implementation a fixture is written on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Implementation {
    Rust,
    TypeScript,
    Python,
}

impl Implementation {
    pub const ALL: [Self; 3] = [Self::Rust, Self::TypeScript, Self::Python];

    pub fn label(self) -> &'static str {
        match self {
            Self::Rust => "rmcp",
            Self::TypeScript => "TypeScript SDK",
            Self::Python => "Python SDK",
        }
    }

    /// The program and arguments that run this fixture (`--stdio`, or `--port 0`), and the
    /// environment it needs.
    pub fn command(self, stdio: bool) -> (String, Vec<String>, Vec<(String, String)>) {
        let mode: Vec<String> = if stdio {
            vec!["--stdio".into()]
        } else {
            vec!["--port".into(), "0".into()]
        };
        let fixture = |parts: &[&str]| {
            let mut path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
            path.extend(parts);
            path.display().to_string()
        };
        match self {
            Self::Rust => (
                example_bin("conformance_fixture").display().to_string(),
                mode,
                vec![],
            ),
            Self::TypeScript => (
                installed("MCPS_TEST_NODE"),
                [
                    vec![fixture(&["typescript", "conformance_fixture.cjs"])],
                    mode,
                ]
                .concat(),
                vec![("NODE_PATH".into(), installed("MCPS_TEST_NODE_PATH"))],
            ),
            Self::Python => (
                python(),
                [vec![fixture(&["python", "conformance_fixture.py"])], mode].concat(),
                vec![],
            ),
        }
    }
}

/// A `proxy.yaml` upstream entry `name` that runs the fixture over stdio, with `extra`
/// arguments and `protocol`.
pub fn stdio_upstream_yaml(
    implementation: Implementation,
    name: &str,
    extra: &[&str],
    protocol: &str,
) -> String {
    let (program, mut args, env) = implementation.command(true);
    args.extend(extra.iter().map(|arg| (*arg).to_owned()));
    let env: String = env
        .iter()
        .map(|(key, value)| format!("      {key}: {value:?}\n"))
        .collect();
    let env = if env.is_empty() {
        env
    } else {
        format!("    env:\n{env}")
    };
    format!(
        "  {name}:\n    command: {program:?}\n    args: {args:?}\n    protocol: {protocol}\n    startup_timeout_secs: 30\n{env}"
    )
}

/// A server process that prints `listening on URL` as its first line, killed on drop.
pub struct Listening {
    child: Child,
    pub url: String,
}

impl Listening {
    /// Runs `command` (its stdout is read, its stderr dropped) and waits for its line.
    pub fn spawn(mut command: Command, what: &str) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("start {what}: {error}"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .unwrap_or_else(|error| panic!("{what}'s first line: {error}"));
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("{what}: unexpected first line {line:?}"))
            .to_owned();
        Self { child, url }
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A conformance fixture serving streamable HTTP on a free port, killed on drop.
pub type HttpFixture = Listening;

impl HttpFixture {
    pub fn start(implementation: Implementation) -> Self {
        Self::start_with(implementation, &[])
    }

    /// The same, with `extra` arguments (`--odd-names`).
    pub fn start_with(implementation: Implementation, extra: &[&str]) -> Self {
        let (program, args, env) = implementation.command(false);
        let mut command = Command::new(program);
        command.args(args).args(extra).envs(env);
        Self::spawn(command, &format!("the {} fixture", implementation.label()))
    }

    /// The Python fixture mounted at `/mcp/` in a Starlette app, as a FastAPI application
    /// mounts one; its URL is `/mcp`, which Starlette answers with a 307 to `/mcp/`.
    pub fn start_python_mounted() -> Self {
        let (program, args, env) = Implementation::Python.command(false);
        let mut command = Command::new(program);
        command.args(args).arg("--mounted").envs(env);
        Self::spawn(command, "the mounted Python fixture")
    }
}
