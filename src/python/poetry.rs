// TEMPORARY STUB: replaced by the real module.
use std::path::Path;
#[derive(Debug, thiserror::Error)]
#[error("poetry support not ready")]
pub struct PoetryError;
pub struct PoetryInstall {
    pub requirements: Vec<String>,
    pub fully_pinned: bool,
}
pub fn is_poetry_project(pyproject: &str) -> bool {
    pyproject.contains("[tool.poetry]")
}
pub fn poetry_requirements(
    _a: &Path,
    _b: &str,
    _c: &Path,
    _d: Option<&str>,
) -> Result<PoetryInstall, PoetryError> {
    Err(PoetryError)
}
