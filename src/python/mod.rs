//! Python packaging: how a connector's dependencies are installed, decided from its manifests.

pub mod install;
pub mod poetry;
pub mod requirements;

pub use install::{
    dependency_install, DependencyInstall, InstallError, InstallMethod, Installer, DEPENDENCY_FILES,
};
