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
        ("[project]\nname = \"x\"\n[services.a]\nplugin = 3\n", Some(4), "services.a.plugin", "invalid type"),
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
fn deserializer_errors_name_the_key_not_the_value() {
    let base = "[project]\nname = \"x\"\n\n[services.db]\nplugin = \"p\"\n[services.web]\nplugin = \"p\"\n";
    // (appended lines, shown as)
    let cases = [
        ("replicas = \"two\"\n", "provisioner.toml:8: services.web.replicas: invalid type: string \"two\", expected u32"),
        ("depends_on = \"db\"\n", "provisioner.toml:8: services.web.depends_on: invalid type: string \"db\", expected a sequence"),
        ("depends_on = [\"db\", 3]\n", "provisioner.toml:8: services.web.depends_on[1]: invalid type: integer `3`"),
        ("config = { env = { A = 1 } }\nwait_for = 3\n", "provisioner.toml:9: services.web.wait_for: invalid type: integer `3`"),
        ("[services.web.config]\nx = 1\n[environments.local]\nreadiness_timeout_secs = \"soon\"\n", "provisioner.toml:11: environments.local.readiness_timeout_secs: invalid type"),
        ("[environments.local.resources]\nmemory_mb = true\n", "provisioner.toml:9: environments.local.resources.memory_mb: invalid type: boolean `true`"),
        ("[services.api]\nreplicas = 2\n", "provisioner.toml:8: services.api: missing field `plugin`"),
    ];
    for (tail, shown) in cases {
        let err = parse(&format!("{base}{tail}")).unwrap_err();
        assert!(err.to_string().starts_with(shown), "{tail}: {err}");
    }
}

#[test]
fn syntax_errors_give_line_and_column_and_no_empty_key() {
    let err = parse("[project]\nname = \"x\"\n\n[services.web\nplugin = \"p\"\n").unwrap_err();
    assert_eq!((err.line, err.key.as_str()), (Some(4), ""), "{err}");
    let shown = err.to_string();
    assert!(shown.starts_with("provisioner.toml:4: unclosed table"), "{shown}");
    assert!(shown.contains("(column 14)"), "{shown}");
    assert!(!shown.contains(": :"), "{shown}");
}

#[test]
fn a_huge_value_is_not_echoed_whole() {
    let huge = "y".repeat(10 << 20);
    for source in [
        format!("[project]\nname = \"x\"\n[services.web]\nplugin = \"p\"\nreplicas = \"{huge}\"\n"),
        format!("[project]\nname = \"{huge}\"\n"),
        format!("[project]\nname = \"x\"\n[services.web]\nplugin = \"p\"\nwait_for = \"{huge}\"\n"),
        format!("[project]\nname = \"x\"\n[services.web]\nplugin = \"p\"\ndepends_on = [\"{huge}\"]\n"),
        format!("[project]\nname = \"x\"\n[services.web]\nplugin = \"p\"\n\"{huge}\" = 1\n"),
    ] {
        let shown = parse(&source).unwrap_err().to_string();
        assert!(shown.len() < 600, "{} bytes: {}", shown.len(), &shown[..600]);
        assert!(shown.contains(&format!("…({} bytes)", huge.len())), "{shown}");
    }
}

#[test]
fn resources_below_the_minimum_are_refused_not_raised() {
    let base = "[project]\nname = \"x\"\n[environments.local]\n";
    // (resources, key, minimum named)
    let cases = [
        ("resources = { memory_mb = 0 }\n", "environments.local.resources.memory_mb", "0 MB is below the minimum of 16 MB", 4),
        ("[environments.local.resources]\ncpu_millis = 5\n", "environments.local.resources.cpu_millis", "minimum of 10 millis", 5),
        ("[environments.local.resources]\nmemory_mb = 512\npids = 1\n", "environments.local.resources.pids", "minimum of 16 pids", 6),
        ("resources = { max_memory_mb = 8 }\n", "environments.local.resources.max_memory_mb", "minimum of 16 MB", 4),
    ];
    for (tail, key, message, line) in cases {
        let err = parse(&format!("{base}{tail}")).unwrap_err();
        assert_eq!((err.key.as_str(), err.line), (key, Some(line)), "{tail}: {err}");
        assert!(err.message.contains(message), "{tail}: {err}");
    }
    let at_minimum = format!("{base}resources = {{ memory_mb = {MIN_MEMORY_MB}, cpu_millis = {MIN_CPU_MILLIS}, pids = {MIN_PIDS} }}\n");
    assert!(parse(&at_minimum).is_ok());
}

#[test]
fn the_default_cpu_ceiling_is_this_machine() {
    let cpus = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(8);
    let env = parse("[project]\nname = \"x\"\n[environments.local]\nresources = { memory_mb = 512 }\n").unwrap().environment("local").unwrap();
    assert_eq!(env.container_defaults().resources.max_cpu_millis, cpus * 1000);
    assert!(env.container_defaults().resources.cpu_millis <= cpus * 1000);
    assert_eq!(Environment::default().container_defaults().resources.max_cpu_millis, cpus * 1000);
    // Set in the file, it is what the file says.
    let env = parse("[project]\nname = \"x\"\n[environments.local]\nresources = { max_cpu_millis = 64000 }\n").unwrap().environment("local").unwrap();
    assert_eq!(env.container_defaults().resources.max_cpu_millis, 64000);
}

#[test]
fn config_values_know_their_lines() {
    let p = parse("[project]\nname = \"x\"\n[services.db]\nplugin = \"p\"\n[services.app]\nplugin = \"p\"\ndepends_on = [\"db\"]\n[services.app.config]\nimage = \"i\"\nenv = { A = \"1\", \"B.C\" = \"2\" }\ncommand = [\n  \"a\",\n  \"b\",\n]\n").unwrap();
    let app = &p.services["app"];
    assert_eq!(app.config_line("image"), 9);
    assert_eq!(app.config_line("env.A"), 10);
    assert_eq!(app.config_line("env.\"B.C\""), 10);
    assert_eq!(app.config_line("command[1]"), 13);
    assert_eq!(app.config_line("nope"), app.line);
}

#[test]
fn clipping() {
    assert_eq!(clip("short"), "short");
    let long = "é".repeat(100);
    assert_eq!(clip(&long), format!("{}…(200 bytes)", "é".repeat(80)));
    let message = format!("invalid type: string \"{}\\\"x\", expected `{}`", "a".repeat(100), "b".repeat(5));
    assert_eq!(clip_quoted(&message), format!("invalid type: string \"{}…(103 bytes)\", expected `bbbbb`", "a".repeat(80)));
    assert_eq!(clip_quoted("unterminated \"abc"), "unterminated \"abc");
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

#[test]
fn a_swarm_environment_reads_its_settings_and_names_a_wrong_placement() {
    let base = "[project]\nname = \"x\"\n[services.db]\nplugin = \"postgres\"\n[environments.prod]\n";
    let env = parse(&format!(
        "{base}target = \"swarm\"\nengine = \"tcp://10.0.0.5:2375\"\nrouting = \"host\"\nplacement = {{ db = \"node.labels.disk==ssd\" }}\n"
    ))
    .unwrap()
    .environment("prod")
    .unwrap();
    assert_eq!(env.target, Target::Swarm);
    assert_eq!(env.engine.as_deref(), Some("tcp://10.0.0.5:2375"));
    assert_eq!(env.routing, crate::engine::cluster::Routing::Host);
    assert!(env.encrypted_network, "encrypted unless the file says otherwise");
    assert_eq!(Environment::default().target, Target::Docker);

    let err = parse(&format!("{base}target = \"swarm\"\nplacement = {{ dbb = \"node.role==manager\" }}\n")).unwrap_err();
    assert_eq!((err.key.as_str(), err.line), ("environments.prod.placement.dbb", Some(7)), "{err}");
    assert!(err.message.contains("no service `dbb` (services: db)"), "{err}");
    let err = parse(&format!("{base}placement = {{ db = \"node.role==manager\" }}\n")).unwrap_err();
    assert!(err.message.contains("target = \"swarm\""), "{err}");
    let err = parse(&format!("{base}target = \"kubernetes\"\n")).unwrap_err();
    assert!(err.to_string().contains("target"), "{err}");
}

#[test]
fn an_environment_names_its_engine_s_tls_files_as_docker_does() {
    let base = "[project]\nname = \"x\"\n[services.db]\nplugin = \"postgres\"\n[environments.prod]\ntarget = \"swarm\"\nengine = \"tcp://10.0.0.5:2376\"\n";
    let root = Path::new("/srv/app");
    let vars = |pairs: &'static [(&'static str, &'static str)]| move |key: &str| pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| v.to_string());
    let address = |toml: &str, var: &dyn Fn(&str) -> Option<String>| {
        parse(&format!("{base}{toml}")).unwrap().environment("prod").unwrap().engine_address("prod", root, var)
    };

    // A folder, as DOCKER_CERT_PATH: relative to provisioner.toml, `~/` at home.
    let got = address("tls = { cert_path = \"certs\" }\n", &vars(&[("HOME", "/home/me")])).unwrap().unwrap();
    assert_eq!(got.address, "tcp://10.0.0.5:2376");
    let files = got.tls.expect("TLS");
    assert_eq!(files.ca.path, Path::new("/srv/app/certs/ca.pem"));
    assert_eq!(files.key.path, Path::new("/srv/app/certs/key.pem"));
    assert_eq!(files.key.named_by, "tls.cert_path of [environments.prod]");
    let files = address("tls = { cert_path = \"~/.docker/prod\", key = \"/secure/key.pem\" }\n", &vars(&[("HOME", "/home/me")])).unwrap().unwrap().tls.unwrap();
    assert_eq!(files.cert.path, Path::new("/home/me/.docker/prod/cert.pem"));
    assert_eq!((files.key.path.as_path(), files.key.named_by.as_str()), (Path::new("/secure/key.pem"), "tls.key of [environments.prod]"));

    // Without `tls`, Docker's own variables decide, as for `docker`.
    let env_tls = vars(&[("DOCKER_TLS_VERIFY", "1"), ("DOCKER_CERT_PATH", "/certs")]);
    let files = address("", &env_tls).unwrap().unwrap().tls.expect("DOCKER_TLS_VERIFY turns TLS on");
    assert_eq!(files.ca.path, Path::new("/certs/ca.pem"));
    assert_eq!(address("", &vars(&[])).unwrap().unwrap().tls, None);

    // `tls` on an engine that is not TCP is a mistake, named.
    let err = parse("[project]\nname = \"x\"\n[environments.prod]\nengine = \"unix:///var/run/docker.sock\"\ntls = { cert_path = \"certs\" }\n")
        .unwrap()
        .environment("prod")
        .unwrap()
        .engine_address("prod", root, &vars(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`tls` of [environments.prod]") && err.contains("unix:///var/run/docker.sock") && err.contains("tcp://"), "{err}");

    let err = parse(&format!("{base}tls = {{ ca_file = \"x\" }}\n")).unwrap_err();
    assert!(err.to_string().contains("ca_file"), "{err}");
}
