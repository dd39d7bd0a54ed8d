//! `exec`: the handlers a test registers to answer commands in containers, and the
//! record of what ran. The engine's `exec` and the archive's `save_exec` / `load_exec`
//! all come through `State::exec`.

use std::cell::RefCell;
use std::rc::Rc;

use crate::docker::{ContainerState, ExecOptions, ExecOutput};
use crate::{Capability, Error};

use super::{MockHost, State};

pub(super) type ExecHandler = Rc<RefCell<dyn FnMut(&[String], &ExecOptions) -> ExecOutput>>;

/// One `exec` (or an archive's `save_exec` / `load_exec`) the plugin ran.
#[derive(Clone, Debug)]
pub struct ExecCall {
    pub container: String,
    pub command: Vec<String>,
    pub options: ExecOptions,
}

impl ExecOutput {
    /// An exec that exited 0 and printed `stdout`.
    pub fn ok(stdout: impl Into<Vec<u8>>) -> Self {
        ExecOutput { exit_code: 0, stdout: stdout.into(), stderr: Vec::new() }
    }

    /// An exec that exited `code` and printed `stderr`.
    pub fn failed(code: i32, stderr: impl Into<Vec<u8>>) -> Self {
        ExecOutput { exit_code: code, stdout: Vec::new(), stderr: stderr.into() }
    }
}

impl MockHost {
    /// Answer `exec`s in `container` (`"*"`: in any container) with `handler`, given
    /// the command. The latest handler registered for a container wins.
    pub fn on_exec(&self, container: &str, mut handler: impl FnMut(&[String]) -> ExecOutput + 'static) -> &Self {
        self.on_exec_with(container, move |command, _| handler(command))
    }

    /// [`MockHost::on_exec`], the handler also getting the options (env, user, stdin…).
    pub fn on_exec_with(&self, container: &str, handler: impl FnMut(&[String], &ExecOptions) -> ExecOutput + 'static) -> &Self {
        let handler: ExecHandler = Rc::new(RefCell::new(handler));
        self.with(|s| s.handlers.push((container.to_string(), handler)));
        self
    }

    /// Every exec (including an archive's), in order.
    pub fn execs(&self) -> Vec<ExecCall> {
        self.with(|s| s.execs.clone())
    }

    /// The commands run in `container`, in order.
    pub fn commands_in(&self, container: &str) -> Vec<Vec<String>> {
        self.with(|s| s.execs.iter().filter(|e| e.container == container).map(|e| e.command.clone()).collect())
    }
}

impl State {
    pub(super) fn exec(&mut self, container: &str, command: &[String], options: &ExecOptions) -> Result<ExecHandlerCall, Error> {
        self.allows(|c| matches!(c, Capability::Exec), format!("exec in {container}"))?;
        let info = self.containers.get(container).ok_or_else(|| Error::NotFound(format!("container {container}")))?;
        if info.state != ContainerState::Running {
            return Err(Error::Conflict(format!("container {container} is not running")));
        }
        self.execs.push(ExecCall { container: container.to_string(), command: command.to_vec(), options: options.clone() });
        let handler = self.handlers.iter().rev().find(|(c, _)| c == container).or_else(|| self.handlers.iter().rev().find(|(c, _)| c == "*"));
        Ok(handler.map(|(_, h)| h.clone()))
    }
}

pub(super) type ExecHandlerCall = Option<ExecHandler>;

pub(super) fn run_handler(handler: ExecHandlerCall, command: &[String], options: &ExecOptions) -> ExecOutput {
    match handler {
        Some(handler) => (handler.borrow_mut())(command, options),
        None => ExecOutput::ok(Vec::new()),
    }
}
