//! Which running stack a client command talks to: `-p NAME` (or `SHOAL_PROJECT_NAME`), else
//! the project of the compose files (`-f`, or the ones in the current folder, with `.env`),
//! else the only running stack: Docker Compose's order.

use std::path::{Path, PathBuf};

use std::str::FromStr;

use clap::Args;

use super::{running_projects, Client, ControlError};
use crate::spec::{InvalidName, ProjectName};

/// Which running stack a command talks to.
#[derive(Args, Debug, Clone, Default)]
pub struct ProjectArgs {
    /// Project name (see `shoal ls`) [default: $SHOAL_PROJECT_NAME, else from -f or the compose file here, else the only running stack]
    #[arg(short = 'p', long = "project", visible_alias = "project-name", value_name = "NAME", env = crate::spec::PROJECT_NAME_VAR, value_parser = parse_name::<ProjectName>)]
    pub project: Option<ProjectName>,
    /// Compose file whose project to use (repeatable, merged in order as `up` does)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Vec<PathBuf>,
}

impl ProjectArgs {
    /// The project name: `-p`, else the name of the compose file's stack (`name:` or its
    /// folder), else the only running stack.
    pub fn resolve(&self) -> anyhow::Result<String> {
        if let Some(project) = &self.project {
            return Ok(project.to_string());
        }
        if let Ok(files) = crate::spec::ComposeFiles::resolve_files(&self.file) {
            let input = self.compose_files(files);
            let project = project_of(&input).into_string();
            if let Some(main) = input.main_file() {
                same_file(&project, main)?;
            }
            return Ok(project);
        }
        match running_projects().as_slice() {
            [only] => Ok(only.clone()),
            [] => anyhow::bail!(
                "no stack is running, and there is no shoal.yaml here\n  hint: start one with `shoal up -d`"
            ),
            many => anyhow::bail!(
                "several stacks are running ({}); say which with `-p NAME`",
                many.join(", ")
            ),
        }
    }

    /// The files and name this command means, as `up` would load them.
    pub fn compose_files(&self, files: Vec<PathBuf>) -> crate::spec::ComposeFiles {
        crate::spec::ComposeFiles {
            files,
            project_name: self.project.clone(),
            ..Default::default()
        }
    }

    /// A client connected to the resolved project's socket.
    pub fn client(&self) -> anyhow::Result<Client> {
        let project = self.resolve()?;
        Client::for_project(&project).map_err(|e| match e {
            ControlError::NotRunning { project, .. } => anyhow::anyhow!(
                "project `{project}` is not running\n  hint: `shoal ls` lists running stacks; `shoal up -d` starts this one"
            ),
            other => other.into(),
        })
    }
}

/// A project found through a compose file must be running from that file: two folders
/// whose stacks share a name are two projects, and `down` in one must not stop the other's.
/// Silent when the project is not running or does not answer (the command says so next).
fn same_file(project: &str, file: &Path) -> anyhow::Result<()> {
    let Ok(client) = Client::for_project(project) else {
        return Ok(());
    };
    let Ok(info) = client.call_as::<super::Info>(super::Request::Info) else {
        return Ok(());
    };
    let here = crate::controller::canonical(file);
    if info.file != here {
        anyhow::bail!(
            "project `{project}` is running from {}, not from {}\n  hint: `-p {project}` addresses it anyway; to run this file beside it, give it another project name (`-p NAME`, or `name:` in the file)",
            info.file.display(),
            here.display()
        );
    }
    Ok(())
}

/// `-p NAME` (and `run --name`): refused at the flag when it breaks the name rule, with the
/// rule and a fix.
pub fn parse_name<N: FromStr<Err = InvalidName>>(text: &str) -> Result<N, String> {
    text.parse::<N>().map_err(|e| format!("{e}\n  hint: {}", e.hint()))
}

/// The project name of a compose file, even when the file does not validate (then the
/// folder's name, which is what an unnamed stack is called).
pub fn project_of_file(file: &Path) -> ProjectName {
    project_of(&crate::spec::ComposeFiles::from(file))
}

/// The project name of a set of compose files (`-p`, `SHOAL_PROJECT_NAME` from the
/// environment or `.env`, `name:`, the folder), even when they do not validate (then the
/// first file's folder's name, which is what an unnamed stack is called).
pub fn project_of(input: &crate::spec::ComposeFiles) -> ProjectName {
    let env: std::collections::HashMap<String, String> = std::env::vars().collect();
    let options = crate::spec::LoadOptions {
        env: &env,
        lookup_digest: &|_| None,
        resolve_reference: &crate::spec::no_registry,
    };
    match crate::spec::load_files(input, &options) {
        Ok((stack, _)) => stack.name,
        Err(_) => {
            if let Some(name) = &input.project_name {
                return name.clone();
            }
            let dir = input
                .main_file()
                .and_then(|f| std::fs::canonicalize(f).ok())
                .and_then(|f| f.parent().map(Path::to_path_buf))
                .unwrap_or_default();
            ProjectName::from_dir(&dir)
        }
    }
}

/// Output of the commands that list things.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}
