//! Finding plugins. A plugin is a `NAME.wasm` component in one of these folders,
//! searched in this order:
//! 1. each `--plugins-dir DIR`;
//! 2. each folder of `PROVISIONER_PLUGIN_PATH` (`:`-separated);
//! 3. `plugins/` beside provisioner.toml — where a user drops a third-party plugin;
//! 4. the host's own folder: `plugins/` beside the `provisioner` binary or one level
//!    up (so `target/debug/provisioner` finds `target/plugins/`, where
//!    `cargo xtask plugins` writes the first-party plugins).
//!
//! A plugin's name is what its `describe` says. Two files with one name are an error
//! naming both, wherever they are: nothing shadows anything silently.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::capabilities::{first_party, Grants};
use crate::config::Project;
use crate::runtime::{LoadError, LoadedPlugin, PluginRuntime};

/// Environment variable with extra plugin folders.
pub const PATH_VAR: &str = "PROVISIONER_PLUGIN_PATH";

/// How a folder got onto the search path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    Flag,
    EnvVar,
    Project,
    /// The host's own folder: first-party plugins get their default grants only here.
    Builtin,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchDir {
    pub path: PathBuf,
    pub source: Source,
}

/// The folders to search, in order; folders that do not exist are left out.
pub fn search_path(flag_dirs: &[PathBuf], project_root: Option<&Path>) -> Vec<SearchDir> {
    let mut dirs = Vec::new();
    dirs.extend(flag_dirs.iter().map(|p| SearchDir { path: p.clone(), source: Source::Flag }));
    if let Some(value) = std::env::var_os(PATH_VAR) {
        dirs.extend(std::env::split_paths(&value).filter(|p| !p.as_os_str().is_empty()).map(|path| SearchDir { path, source: Source::EnvVar }));
    }
    if let Some(root) = project_root {
        dirs.push(SearchDir { path: root.join("plugins"), source: Source::Project });
    }
    dirs.extend(builtin_dirs().into_iter().map(|path| SearchDir { path, source: Source::Builtin }));

    let mut seen = Vec::new();
    dirs.retain(|d| {
        let Ok(canonical) = d.path.canonicalize() else { return false };
        if !canonical.is_dir() || seen.contains(&canonical) {
            return false;
        }
        seen.push(canonical);
        true
    });
    dirs
}

/// `plugins/` beside the running binary, and one level up.
pub fn builtin_dirs() -> Vec<PathBuf> {
    let Ok(exe) = std::env::current_exe() else { return Vec::new() };
    let Some(bin_dir) = exe.parent() else { return Vec::new() };
    let mut dirs = vec![bin_dir.join("plugins")];
    if let Some(up) = bin_dir.parent() {
        dirs.push(up.join("plugins"));
    }
    dirs
}

/// A plugin that loaded.
pub struct Found {
    pub plugin: Arc<LoadedPlugin>,
    pub source: Source,
}

/// A `.wasm` file that did not load, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Broken {
    pub path: PathBuf,
    pub reason: String,
}

/// Everything on the search path.
#[derive(Default)]
pub struct Catalog {
    pub plugins: BTreeMap<String, Found>,
    pub broken: Vec<Broken>,
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("two plugins are called `{name}`: {} and {}. Remove or rename one of them", first.display(), second.display())]
    Duplicate { name: String, first: PathBuf, second: PathBuf },
    #[error("cannot list plugin folder {}: {source}", path.display())]
    Unreadable { path: PathBuf, source: std::io::Error },
}

/// Where a plugin's grants come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GrantSource {
    /// `[plugins.NAME.grants]` in provisioner.toml.
    ProjectFile,
    /// The default policy of a first-party plugin from the host's own folder.
    FirstPartyDefault,
    /// Nothing granted.
    None,
}

/// Load `files` side by side on every core (a cached load is mostly hashing and
/// mapping, which parallelise), each result beside its file, in the given order.
fn load_all(runtime: &PluginRuntime, files: Vec<PathBuf>) -> Vec<(PathBuf, Result<LoadedPlugin, LoadError>)> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(files.len());
    if workers <= 1 {
        return files.into_iter().map(|path| (path.clone(), runtime.load(&path))).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<(usize, Result<LoadedPlugin, LoadError>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(path) = files.get(index) else { break mine };
                        mine.push((index, runtime.load(path)));
                    }
                })
            })
            .collect();
        // A loader that panicked (a bug) lost its files; they are loaded again below,
        // where the panic surfaces as it would have without threads.
        handles.into_iter().filter_map(|h| h.join().ok()).flatten().collect()
    });
    results.sort_by_key(|(index, _)| *index);
    let mut results = results.into_iter().peekable();
    files
        .iter()
        .enumerate()
        .map(|(index, path)| match results.next_if(|(i, _)| *i == index) {
            Some((_, loaded)) => (path.clone(), loaded),
            None => (path.clone(), runtime.load(path)),
        })
        .collect()
}

impl Catalog {
    /// Load every `*.wasm` in `dirs`. A file that fails to load is listed as broken;
    /// two plugins with one name stop discovery.
    pub fn discover(runtime: &PluginRuntime, dirs: &[SearchDir]) -> Result<Catalog, DiscoveryError> {
        let mut catalog = Catalog::default();
        for dir in dirs {
            let entries = std::fs::read_dir(&dir.path).map_err(|source| DiscoveryError::Unreadable { path: dir.path.clone(), source })?;
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "wasm") && p.is_file())
                .collect();
            files.sort();
            for (path, loaded) in load_all(runtime, files) {
                match loaded {
                    Ok(plugin) => {
                        let name = plugin.info.name.clone();
                        if let Some(existing) = catalog.plugins.get(&name) {
                            return Err(DiscoveryError::Duplicate { name, first: existing.plugin.path.clone(), second: path });
                        }
                        if path.file_stem().is_some_and(|stem| stem != name.as_str()) {
                            tracing::debug!(path = %path.display(), %name, "plugin file name differs from its name");
                        }
                        catalog.plugins.insert(name, Found { plugin: Arc::new(plugin), source: dir.source });
                    }
                    Err(e) => catalog.broken.push(Broken { path, reason: e.to_string() }),
                }
            }
        }
        Ok(catalog)
    }

    /// What the operator grants `name`: the project file's table if it has one, else
    /// the first-party default for a plugin from the host's own folder, else nothing.
    pub fn grants(&self, name: &str, project: Option<&Project>) -> (Grants, GrantSource) {
        if let Some(grants) = project.and_then(|p| p.grants(name)) {
            return (grants.clone(), GrantSource::ProjectFile);
        }
        let builtin = self.plugins.get(name).is_some_and(|f| f.source == Source::Builtin);
        match first_party::default_grants(name) {
            Some(grants) if builtin => (grants, GrantSource::FirstPartyDefault),
            _ => (Grants::default(), GrantSource::None),
        }
    }
}
