//! The backup archive: its parts, in memory (the WIT `archive` interface).

use super::MockHost;

impl MockHost {
    /// Put the part `name` in the archive, for a `restore` test.
    pub fn set_part(&self, name: &str, contents: impl Into<Vec<u8>>) -> &Self {
        let contents = contents.into();
        self.with(|s| match s.parts.iter_mut().find(|(n, _)| n == name) {
            Some(part) => part.1 = contents,
            None => s.parts.push((name.to_string(), contents)),
        });
        self
    }

    /// The archive's part `name`, if there is one.
    pub fn part(&self, name: &str) -> Option<Vec<u8>> {
        self.with(|s| s.parts.iter().find(|(n, _)| n == name).map(|(_, c)| c.clone()))
    }
}

pub mod imports {
    use crate::archive::Part;
    use crate::docker::{ExecOptions, ExecOutput};
    use crate::testing::exec::run_handler;
    use crate::testing::{fnv, with};
    use crate::Error;

    fn part(name: &str, contents: &[u8]) -> Part {
        // Not a real sha256: a stand-in digest, stable for the same bytes.
        let h = fnv(contents);
        Part { name: name.to_string(), bytes: contents.len() as u64, sha256: format!("{h:016x}").repeat(4) }
    }

    pub fn save_exec(part_name: &str, container: &str, command: &[String], options: &ExecOptions) -> Result<Part, Error> {
        let handler = with(|s| {
            s.failure("save-exec", part_name)?;
            if s.parts.iter().any(|(n, _)| n == part_name) {
                return Err(Error::Invalid(format!("part {part_name} exists")));
            }
            s.exec(container, command, options)
        })?;
        let out = run_handler(handler, command, options);
        if out.exit_code != 0 {
            return Err(Error::Engine(format!("{} exited {}: {}", command.join(" "), out.exit_code, out.stderr_text().trim())));
        }
        with(|s| s.parts.push((part_name.to_string(), out.stdout.clone())));
        Ok(part(part_name, &out.stdout))
    }

    pub fn append(part_name: &str, contents: &[u8]) -> Result<(), Error> {
        with(|s| {
            s.failure("append", part_name)?;
            match s.parts.iter_mut().find(|(n, _)| n == part_name) {
                Some(p) => p.1.extend_from_slice(contents),
                None => s.parts.push((part_name.to_string(), contents.to_vec())),
            }
            Ok(())
        })
    }

    pub fn parts() -> Result<Vec<Part>, Error> {
        with(|s| {
            s.failure("parts", "")?;
            Ok(s.parts.iter().map(|(n, c)| part(n, c)).collect())
        })
    }

    /// Runs the command with the part as its standard input (`options.stdin`).
    pub fn load_exec(part_name: &str, container: &str, command: &[String], options: &ExecOptions) -> Result<ExecOutput, Error> {
        let (handler, options) = with(|s| {
            s.failure("load-exec", part_name)?;
            let contents = s.parts.iter().find(|(n, _)| n == part_name).map(|(_, c)| c.clone()).ok_or_else(|| Error::NotFound(format!("part {part_name}")))?;
            let options = ExecOptions { stdin: Some(contents), ..options.clone() };
            Ok::<_, Error>((s.exec(container, command, &options)?, options))
        })?;
        Ok(run_handler(handler, command, &options))
    }

    pub fn read(part_name: &str, offset: u64, max: u32) -> Result<Vec<u8>, Error> {
        with(|s| {
            s.failure("read", part_name)?;
            let contents = s.parts.iter().find(|(n, _)| n == part_name).map(|(_, c)| c).ok_or_else(|| Error::NotFound(format!("part {part_name}")))?;
            let start = (offset as usize).min(contents.len());
            let end = start.saturating_add(max as usize).min(contents.len());
            Ok(contents[start..end].to_vec())
        })
    }
}
