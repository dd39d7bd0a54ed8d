use std::collections::BTreeMap;

use super::*;

/// The engine used when none is configured or reachable: every operation fails with
/// the reason, which the plugin sees as `engine(...)`.
pub struct Unavailable {
    pub reason: String,
}

impl Unavailable {
    fn fail<T>(&self) -> Result<T, EngineError> {
        Err(EngineError::Failed(self.reason.clone()))
    }
}

impl ContainerEngine for Unavailable {
    fn describe(&self) -> String {
        format!("no container engine ({})", self.reason)
    }
    fn ensure_network(&self, _: &str, _: &BTreeMap<String, String>) -> Result<(), EngineError> {
        self.fail()
    }
    fn remove_network(&self, _: &str) -> Result<(), EngineError> {
        self.fail()
    }
    fn inspect_volume(&self, _: &str) -> Result<Option<VolumeDetails>, EngineError> {
        self.fail()
    }
    fn create_volume(&self, _: &str, _: &BTreeMap<String, String>) -> Result<(), EngineError> {
        self.fail()
    }
    fn remove_volume(&self, _: &str) -> Result<(), EngineError> {
        self.fail()
    }
    fn list_volumes(&self, _: &BTreeMap<String, String>) -> Result<Vec<VolumeDetails>, EngineError> {
        self.fail()
    }
    fn ensure_image(&self, _: &str, _: &mut dyn FnMut(&str)) -> Result<(), EngineError> {
        self.fail()
    }
    fn create_container(&self, _: &ContainerRequest) -> Result<String, EngineError> {
        self.fail()
    }
    fn start_container(&self, _: &str) -> Result<(), EngineError> {
        self.fail()
    }
    fn stop_container(&self, _: &str, _: u32) -> Result<(), EngineError> {
        self.fail()
    }
    fn remove_container(&self, _: &str) -> Result<(), EngineError> {
        self.fail()
    }
    fn rename_container(&self, _: &str, _: &str) -> Result<(), EngineError> {
        self.fail()
    }
    fn inspect_container(&self, _: &str) -> Result<Option<ContainerDetails>, EngineError> {
        self.fail()
    }
    fn list_containers(&self, _: &BTreeMap<String, String>) -> Result<Vec<ContainerDetails>, EngineError> {
        self.fail()
    }
    fn exec(&self, _: &str, _: &ExecRequest) -> Result<ExecResult, EngineError> {
        self.fail()
    }
    fn write_file(&self, _: &str, _: &str, _: &[u8], _: u32) -> Result<(), EngineError> {
        self.fail()
    }
    fn logs(&self, _: &str, _: u32) -> Result<String, EngineError> {
        self.fail()
    }
}
