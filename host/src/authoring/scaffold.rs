//! `provisioner plugins new NAME`: a plugin crate that builds with
//! `cargo build --target wasm32-wasip2` and passes `provisioner plugins check` as it
//! is. The templates live beside this file in `scaffold/`.
//!
//! The crate depends on the SDK (`plugins/sdk` of this repository) by path or by git:
//! a path when a checkout is at hand (the default when this binary was built from
//! one), a git URL for anyone else. The SDK finds the WIT through its own place in the
//! repository, so either way the repository's layout comes along.

use std::path::{Path, PathBuf};

use crate::runtime::is_valid_name;

const CARGO_TOML: &str = include_str!("scaffold/Cargo.toml.in");
const LIB_RS: &str = include_str!("scaffold/lib.rs.in");
const README: &str = include_str!("scaffold/README.md.in");
const CARGO_CONFIG: &str = include_str!("scaffold/config.toml.in");
const GITIGNORE: &str = include_str!("scaffold/gitignore.in");
const SCENARIO: &str = include_str!("scaffold/scenario.toml.in");

/// Where the new crate gets the SDK from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdkSource {
    Path(PathBuf),
    Git { url: String, tag: Option<String> },
}

#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("`{0}`: a plugin name is 1 to {max} lower-case letters, digits and `-`, starting with a letter", max = crate::config::MAX_NAME_LEN)]
    BadName(String),
    #[error("{}: already exists and is not empty; pick another name or --dir", .0.display())]
    Exists(PathBuf),
    #[error(
        "cannot find the plugin SDK (plugins/sdk of the provisioner repository). Pass --sdk PATH to a checkout's \
         plugins/sdk, or --sdk-git URL for the repository"
    )]
    NoSdk,
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// The SDK of the checkout this binary was built from, if it is still there.
pub fn default_sdk() -> Option<SdkSource> {
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/sdk");
    let env = std::env::var_os("PROVISIONER_SDK_PATH").map(PathBuf::from);
    env.into_iter().chain([built_from]).find(|p| p.join("Cargo.toml").is_file()).and_then(|p| p.canonicalize().ok()).map(SdkSource::Path)
}

/// The SDK dependency line; with `features`, e.g. `, features = ["testing"]`.
fn sdk_line(sdk: &SdkSource, features: &str) -> String {
    match sdk {
        // toml::Value quotes and escapes, whatever the path or URL holds.
        SdkSource::Path(path) => format!("provisioner-plugin-sdk = {{ path = {}{features} }}", quoted(&path.display().to_string())),
        SdkSource::Git { url, tag: Some(tag) } => {
            format!("provisioner-plugin-sdk = {{ git = {}, tag = {}{features} }}", quoted(url), quoted(tag))
        }
        SdkSource::Git { url, tag: None } => format!("provisioner-plugin-sdk = {{ git = {}{features} }}", quoted(url)),
    }
}

fn quoted(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// The files of a new plugin crate, as (relative path, contents).
pub fn files(name: &str, sdk: &SdkSource) -> Result<Vec<(&'static str, String)>, ScaffoldError> {
    if !is_valid_name(name) {
        return Err(ScaffoldError::BadName(name.to_string()));
    }
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{crate}}", &name.replace('-', "_"))
            .replace("{{env}}", &name.replace('-', "_").to_uppercase())
            .replace("{{sdk}}", &sdk_line(sdk, ""))
            .replace("{{sdk_testing}}", &sdk_line(sdk, ", features = [\"testing\"]"))
    };
    Ok(vec![
        ("Cargo.toml", fill(CARGO_TOML)),
        ("src/lib.rs", fill(LIB_RS)),
        ("README.md", fill(README)),
        (".cargo/config.toml", fill(CARGO_CONFIG)),
        (".gitignore", fill(GITIGNORE)),
        ("scenario.toml", fill(SCENARIO)),
    ])
}

/// Write a new plugin crate into `dir`, which must be missing or empty.
pub fn create(dir: &Path, name: &str, sdk: &SdkSource) -> Result<Vec<PathBuf>, ScaffoldError> {
    let files = files(name, sdk)?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ScaffoldError::Io { path: path.clone(), source }
    };
    if dir.exists() && std::fs::read_dir(dir).map_err(io(dir))?.next().is_some() {
        return Err(ScaffoldError::Exists(dir.to_path_buf()));
    }
    let mut written = Vec::new();
    for (relative, contents) in files {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, contents).map_err(io(&path))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_filled_in_everywhere() {
        let sdk = SdkSource::Git { url: "https://example.test/provisioner".into(), tag: Some("v0.1.0".into()) };
        let files = files("my-cache", &sdk).unwrap();
        let all: String = files.iter().map(|(_, c)| c.as_str()).collect();
        assert!(!all.contains("{{"), "every placeholder is replaced");
        let cargo = &files.iter().find(|(p, _)| *p == "Cargo.toml").unwrap().1;
        assert!(cargo.contains("name = \"my_cache\"") && cargo.contains("tag = \"v0.1.0\""), "{cargo}");
        let lib = &files.iter().find(|(p, _)| *p == "src/lib.rs").unwrap().1;
        assert!(lib.contains("PluginInfo::new(\"my-cache\"") && lib.contains("MY_CACHE_URL"), "{lib}");
        // The mock host is a dev-dependency from the same place as the SDK itself.
        assert!(cargo.contains("[dev-dependencies]\n") && cargo.contains("tag = \"v0.1.0\", features = [\"testing\"] }"), "{cargo}");
        let scenario = &files.iter().find(|(p, _)| *p == "scenario.toml").unwrap().1;
        assert!(scenario.contains("MY_CACHE_URL"), "{scenario}");
        assert!(matches!(super::files("Bad", &sdk), Err(ScaffoldError::BadName(_))));
    }

    #[test]
    fn refuses_a_folder_in_use() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x"), "").unwrap();
        let sdk = SdkSource::Path("/sdk".into());
        assert!(matches!(create(dir.path(), "p", &sdk), Err(ScaffoldError::Exists(_))));
        let fresh = dir.path().join("p");
        assert_eq!(create(&fresh, "p", &sdk).unwrap().len(), 6);
    }
}
