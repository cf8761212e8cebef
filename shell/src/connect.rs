//! Where and as whom to connect: flags, `OSPREY_*` variables, a profile file, and defaults,
//! in that order of precedence.
//!
//! The profile file (`~/.config/osprey/config.toml`, or `$OSPREY_SHELL_CONFIG`) holds named
//! profiles:
//!
//! ```toml
//! default = "local"          # used when no --profile / OSPREY_PROFILE is given
//!
//! [profiles.local]
//! host = "127.0.0.1"
//! port = 50051
//! user = "admin"
//!
//! [profiles.prod]
//! host = "osprey.example.com"
//! port = 443
//! user = "ana"
//! tls = true
//! tls_ca = "/etc/osprey/ca.pem"   # omit to trust the system's roots
//! ```

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One profile of the profile file. Every field is optional.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Host name or address of the coordinator.
    pub host: Option<String>,
    /// Its Flight SQL port.
    pub port: Option<u16>,
    /// The user to log in as.
    pub user: Option<String>,
    /// Whether to use TLS.
    pub tls: Option<bool>,
    /// A CA certificate (PEM) to trust instead of the system's roots.
    pub tls_ca: Option<PathBuf>,
}

/// The profile file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    /// The profile used when none is named.
    pub default: Option<String>,
    /// Profiles by name.
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

/// Why the connection settings could not be worked out.
#[derive(Debug, thiserror::Error)]
pub enum ConnectSettingsError {
    /// The profile file exists but cannot be read or parsed.
    #[error("profile file {path}: {reason}")]
    ProfileFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A named profile is not in the file.
    #[error("no profile {name:?} in {path} (profiles: {known})")]
    NoSuchProfile {
        /// The profile asked for.
        name: String,
        /// The file.
        path: PathBuf,
        /// The profiles there.
        known: String,
    },
}

/// Where the profile file is: `$OSPREY_SHELL_CONFIG`, else `$XDG_CONFIG_HOME/osprey/config.toml`,
/// else `~/.config/osprey/config.toml`.
pub fn profile_file_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("OSPREY_SHELL_CONFIG") {
        return Some(PathBuf::from(path));
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(config.join("osprey").join("config.toml"))
}

/// The profile `name` (or the file's default) from the file at `path`; an empty profile when
/// the file does not exist and no name was asked for.
pub fn load_profile(path: &Path, name: Option<&str>) -> Result<Profile, ConnectSettingsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound && name.is_none() => {
            return Ok(Profile::default());
        }
        Err(err) => {
            return Err(ConnectSettingsError::ProfileFile {
                path: path.to_path_buf(),
                reason: err.to_string(),
            });
        }
    };
    let file: ProfileFile =
        toml::from_str(&text).map_err(|err| ConnectSettingsError::ProfileFile {
            path: path.to_path_buf(),
            reason: err.to_string(),
        })?;
    let Some(name) = name.map(str::to_string).or(file.default.clone()) else {
        return Ok(Profile::default());
    };
    file.profiles
        .get(&name)
        .cloned()
        .ok_or_else(|| ConnectSettingsError::NoSuchProfile {
            name,
            path: path.to_path_buf(),
            known: file.profiles.keys().cloned().collect::<Vec<_>>().join(", "),
        })
}

/// Settings after every source was consulted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host.
    pub host: String,
    /// Flight SQL port.
    pub port: u16,
    /// User.
    pub user: String,
    /// TLS on.
    pub tls: bool,
    /// CA to trust (PEM file), when not the system's roots.
    pub tls_ca: Option<PathBuf>,
}

impl Target {
    /// The defaults under `profile` under the explicit values (flags or environment).
    ///
    /// ```
    /// use osprey_shell::connect::{Profile, Target};
    ///
    /// let profile = Profile { host: Some("db.example.com".into()), port: Some(443), ..Profile::default() };
    /// let target = Target::resolve(None, None, Some("ana".into()), false, None, &profile);
    /// assert_eq!((target.host.as_str(), target.port, target.user.as_str()), ("db.example.com", 443, "ana"));
    /// ```
    pub fn resolve(
        host: Option<String>,
        port: Option<u16>,
        user: Option<String>,
        tls: bool,
        tls_ca: Option<PathBuf>,
        profile: &Profile,
    ) -> Self {
        let tls_ca = tls_ca.or(profile.tls_ca.clone());
        Self {
            host: host
                .or(profile.host.clone())
                .unwrap_or_else(|| "127.0.0.1".into()),
            port: port.or(profile.port).unwrap_or(50051),
            user: user
                .or(profile.user.clone())
                .unwrap_or_else(|| "admin".into()),
            tls: tls || tls_ca.is_some() || profile.tls.unwrap_or(false),
            tls_ca,
        }
    }

    /// `grpc://host:port` or `grpc+tls://host:port`.
    pub fn uri(&self) -> String {
        let scheme = if self.tls { "grpc+tls" } else { "grpc" };
        format!("{scheme}://{}:{}", self.host, self.port)
    }

    /// Whether the host is this machine.
    pub fn is_local(&self) -> bool {
        matches!(
            self.host.as_str(),
            "localhost" | "127.0.0.1" | "::1" | "[::1]"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_chosen_by_name_or_default() {
        let dir =
            std::env::temp_dir().join(format!("osprey-shell-profiles-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.toml");
        std::fs::write(
            &path,
            "default = \"a\"\n[profiles.a]\nhost = \"h1\"\n[profiles.b]\nport = 7\ntls = true\n",
        )
        .unwrap();
        assert_eq!(
            load_profile(&path, None).unwrap().host.as_deref(),
            Some("h1")
        );
        assert_eq!(load_profile(&path, Some("b")).unwrap().port, Some(7));
        let err = load_profile(&path, Some("c")).unwrap_err().to_string();
        assert!(err.contains("profiles: a, b"), "{err}");
        assert!(load_profile(&dir.join("missing.toml"), None).is_ok());
        assert!(load_profile(&dir.join("missing.toml"), Some("a")).is_err());
        std::fs::write(&path, "[profiles.a]\nhots = 1\n").unwrap();
        let err = load_profile(&path, None).unwrap_err().to_string();
        assert!(err.contains("hots"), "{err}");
        let target = Target::resolve(None, None, None, false, None, &Profile::default());
        assert_eq!(target.uri(), "grpc://127.0.0.1:50051");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
