//! provisioner.toml: good files, and bad ones named by line and key.

use super::*;

fn parse(source: &str) -> Result<Project, ConfigError> {
    Project::parse(Path::new("provisioner.toml"), source)
}

const GOOD: &str = r#"
[project]
name = "ticketing"

[environments.local]
limits = { hook_timeout_ms = 5000 }

[services.db]
plugin = "postgres"
config = { database = "ticketing" }

[services.backend]
plugin = "container"
depends_on = ["db"]
replicas = 2

[plugins.memcached.grants]
images = ["memcached:1*"]
publish = [11211]
"#;

#[test]
fn a_good_file() {
    let p = parse(GOOD).unwrap();
    assert_eq!(p.name, "ticketing");
    assert_eq!(p.services["backend"].depends_on, vec!["db"]);
    assert_eq!(p.services["backend"].replicas, 2);
    assert_eq!(p.services["db"].config["database"], "ticketing");
    assert_eq!(p.environment("local").unwrap().limits.hook_timeout_ms, 5000);
    assert_eq!(p.environment("local").unwrap().limits.memory_mb, 64);
    assert_eq!(p.environment("ci").unwrap(), Environment::default());
    assert!(p.environment("prod").unwrap_err().message.contains("[environments.prod]"));
    assert_eq!(p.grants("memcached").unwrap().publish, vec![11211]);
    assert_eq!(p.dependents("db"), vec!["backend"]);
}

#[test]
fn bad_files_name_line_and_key() {
    // (source, line, key contains, message contains)
    let cases = [
        ("[project]\nname = \"x\"\n[services.db]\nplugin = \"postgres\"\ncolour = 1\n", Some(5), "colour", "unknown field"),
        ("[project]\nname = \"x\"\nextra = true\n", Some(3), "extra", "unknown field"),
        ("[project]\nname = \"Bad Name\"\n", Some(2), "project.name", "lower-case"),
        ("[project]\nname = \"x\"\n[services.a]\nplugin = \"p\"\ndepends_on = [\"b\"]\n[services.b]\nplugin = \"p\"\ndepends_on = [\"a\"]\n", Some(4), "services.a.depends_on", "cycle: a -> b -> a"),
        ("[project]\nname = \"x\"\n[services.a]\nplugin = \"p\"\ndepends_on = [\"ghost\"]\n", Some(5), "services.a.depends_on", "`ghost` is not a service"),
        ("[project]\nname = \"x\"\n[services.a]\nplugin = \"p\"\ndepends_on = [\"a\"]\n", Some(5), "services.a.depends_on", "itself"),
        ("[project]\nname = \"x\"\n[services.a]\nplugin = \"p\"\nreplicas = 0\n", Some(5), "services.a.replicas", "1 to 64"),
        ("[project]\nname = \"x\"\n[services.a]\nplugin = \"p\"\nwait_for = \"started\"\n", Some(5), "services.a.wait_for", "\"outputs\""),
        ("[project]\nname = \"x\"\n[services.a]\nplugin = 3\n", Some(4), "", "invalid type"),
        ("[project]\nname = \"x\"\n[environments.local]\nimages = { ghost = \"x:1\" }\n", Some(4), "images.ghost", "not a service"),
        ("[project]\nname = \"x\"\n[plugins.m.grants]\nimage = [\"x\"]\n", Some(4), "image", "unknown field"),
    ];
    for (source, line, key, message) in cases {
        let err = parse(source).unwrap_err();
        assert_eq!(err.line, line, "{source}: {err}");
        assert!(err.key.contains(key), "{source}: key {:?}", err.key);
        assert!(err.message.contains(message), "{source}: {err}");
        assert!(err.to_string().starts_with("provisioner.toml:"), "{err}");
    }
}

#[test]
fn the_registry_table() {
    let base = "[project]\nname = \"x\"\n";
    // (registry table, url, trusted keys, require_signatures) — absent means defaults.
    let cases: Vec<(&str, Option<&str>, usize, bool)> = vec![
        ("", None, 0, true),
        ("[registry]\nurl = \"registry\"\ntrusted_keys = [\"ed25519:TSWpZd4EKG/siwjkljgpxWHMH5M5RQ6P6qiDYmNffyY=\"]\n", Some("registry"), 1, true),
        ("[registry]\nurl = \"https://r.test\"\nrequire_signatures = false\n", Some("https://r.test"), 0, false),
    ];
    for (table, url, keys, require) in cases {
        let p = parse(&format!("{base}{table}")).unwrap();
        assert_eq!(p.registry.url.as_deref(), url, "{table}");
        assert_eq!(p.registry.trusted_keys.len(), keys, "{table}");
        assert_eq!(p.registry.require_signatures, require, "{table}");
    }
    let err = parse(&format!("{base}[registry]\ntrusted_key = []\n")).unwrap_err();
    assert_eq!(err.line, Some(4), "{err}");
    assert!(err.message.contains("unknown field"), "{err}");
    let err = parse(&format!("{base}[registry]\ntrusted_keys = [\n  \"ed25519:short\",\n]\n")).unwrap_err();
    assert_eq!((err.line, err.key.as_str()), (Some(5), "registry.trusted_keys"), "{err}");
    assert!(err.message.contains("32 bytes"), "{err}");
}

#[test]
fn unknown_plugins_are_named() {
    let p = parse(GOOD).unwrap();
    let available: BTreeSet<String> = ["postgres".to_string()].into();
    let err = p.check_plugins(&available).unwrap_err();
    assert_eq!(err.key, "services.backend.plugin");
    assert_eq!(err.line, Some(13));
    assert!(err.message.contains("`container`") && err.message.contains("found: postgres"), "{err}");
}
