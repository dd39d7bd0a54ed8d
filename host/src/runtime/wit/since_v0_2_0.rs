//! `provisioner:plugin@0.2.0` (`wit/v0.2.0`): the shared [`edge`](super::edge) plus
//! what 0.2 adds: `docker.signal`, the `archive` interface, `plugin-info.backup` and
//! the `backup`, `data-summary` and `restore` hooks; for monitoring,
//! `plugin-info.metrics`, `context.monitored`, the `scrape-targets` capability with the
//! `monitoring` interface, and the `notices` hook.

wasmtime::component::bindgen!({
    path: "../wit/v0.2.0",
    world: "service-plugin",
});

use self::provisioner::plugin::{archive, docker, log, monitoring, secrets, types};

super::edge::edge!({
    fn signal(&mut self, name: String, signal: String) -> Result<()> {
        let result = self.calls.signal(&name, &signal);
        self.calls.trace(|| format!("docker.signal {name} {signal}"), &result, |()| "ok".into());
        Ok(result?)
    }
}, context: { monitored }, spec: { answers_for_service, http_health }, capabilities: { C::ScrapeTargets => crate::capabilities::Capability::ScrapeTargets, });

impl super::Neutral<Option<spec::HttpEndpoint>> for Option<docker::HttpEndpoint> {
    fn neutral(self) -> Option<spec::HttpEndpoint> {
        self.map(|e| spec::HttpEndpoint { port: e.port, path: e.path })
    }
}

impl From<types::PluginInfo> for PluginInfo {
    fn from(info: types::PluginInfo) -> Self {
        let backup = info.backup.clone();
        let metrics = info
            .metrics
            .iter()
            .map(|m| crate::capabilities::monitoring::MetricsEndpoint { container: m.container.clone(), port: m.port, path: m.path.clone() })
            .collect();
        PluginInfo { metrics, ..plugin_info(info, backup) }
    }
}

fn part(part: crate::capabilities::archive::Part) -> archive::Part {
    archive::Part { name: part.name, bytes: part.bytes, sha256: part.sha256 }
}

fn exec_options(options: docker::ExecOptions) -> spec::ExecOptions {
    spec::ExecOptions {
        env: options.env.into_iter().map(|v| spec::EnvVar { name: v.name, value: v.value, secret: v.secret }).collect(),
        user: options.user,
        workdir: options.workdir,
        stdin: options.stdin,
    }
}

impl archive::Host for HookState {
    fn save_exec(&mut self, name: String, container: String, command: Vec<String>, options: docker::ExecOptions) -> Result<archive::Part> {
        let program = command.first().cloned().unwrap_or_default();
        let result = self.calls.archive_save_exec(&name, &container, command, exec_options(options));
        self.calls.trace(|| format!("archive.save-exec {name} {container} {program} …"), &result, |p| format!("{} bytes", p.bytes));
        Ok(part(result?))
    }

    fn append(&mut self, name: String, contents: Vec<u8>) -> Result<()> {
        let result = self.calls.archive_append(&name, &contents);
        self.calls.trace(|| format!("archive.append {name} ({} bytes)", contents.len()), &result, |()| "ok".into());
        Ok(result?)
    }

    fn parts(&mut self) -> Result<Vec<archive::Part>> {
        let result = self.calls.archive_parts();
        self.calls.trace(|| "archive.parts".into(), &result, |p| format!("{} part(s)", p.len()));
        Ok(result?.into_iter().map(part).collect())
    }

    fn load_exec(&mut self, name: String, container: String, command: Vec<String>, options: docker::ExecOptions) -> Result<docker::ExecOutput> {
        let program = command.first().cloned().unwrap_or_default();
        let result = self.calls.archive_load_exec(&name, &container, command, exec_options(options));
        self.calls.trace(|| format!("archive.load-exec {name} {container} {program} …"), &result, |out| format!("exit {}", out.exit_code));
        let out = result?;
        Ok(docker::ExecOutput { exit_code: out.exit_code, stdout: out.stdout, stderr: out.stderr })
    }

    fn read(&mut self, name: String, offset: u64, max: u32) -> Result<Vec<u8>> {
        let result = self.calls.archive_read(&name, offset, max);
        self.calls.trace(|| format!("archive.read {name} @{offset}"), &result, |b| format!("{} bytes", b.len()));
        Ok(result?)
    }
}

impl monitoring::Host for HookState {
    fn scrape_targets(&mut self) -> Result<Vec<monitoring::ScrapeTarget>> {
        let result = self.calls.scrape_targets();
        self.calls.trace(|| "monitoring.scrape-targets".into(), &result, |t| format!("{} target(s)", t.len()));
        Ok(result?
            .into_iter()
            .map(|t| monitoring::ScrapeTarget { service: t.service, plugin: t.plugin, address: t.address, path: t.path })
            .collect())
    }

    fn probe_targets(&mut self) -> Result<Vec<monitoring::ProbeTarget>> {
        let result = self.calls.probe_targets();
        self.calls.trace(|| "monitoring.probe-targets".into(), &result, |t| format!("{} target(s)", t.len()));
        Ok(result?
            .into_iter()
            .map(|t| monitoring::ProbeTarget { service: t.service, plugin: t.plugin, instance: t.instance, address: t.address, path: t.path })
            .collect())
    }
}

/// What a `backup` hook reported: the method and its notes.
pub type BackupReport = (String, Vec<String>);

impl Pre {
    pub fn backup(&self, store: &mut Store<HookState>, ctx: &HookContext) -> wasmtime::Result<std::result::Result<BackupReport, String>> {
        let plugin = self.instantiate(store)?;
        let result = plugin.provisioner_plugin_hooks().call_backup(store, &context(ctx))?;
        Ok(result.map(|report| (report.method, report.notes)))
    }

    pub fn data_summary(&self, store: &mut Store<HookState>, ctx: &HookContext) -> wasmtime::Result<std::result::Result<Option<String>, String>> {
        let plugin = self.instantiate(store)?;
        plugin.provisioner_plugin_hooks().call_data_summary(store, &context(ctx))
    }

    pub fn restore(&self, store: &mut Store<HookState>, ctx: &HookContext) -> wasmtime::Result<std::result::Result<(), String>> {
        let plugin = self.instantiate(store)?;
        plugin.provisioner_plugin_hooks().call_restore(store, &context(ctx))
    }

    pub fn notices(&self, store: &mut Store<HookState>, ctx: &HookContext) -> wasmtime::Result<std::result::Result<Vec<String>, String>> {
        let plugin = self.instantiate(store)?;
        plugin.provisioner_plugin_hooks().call_notices(store, &context(ctx))
    }
}
