//! Key files: Ed25519 identity and authority keys, FROST key packages.
//!
//! Every key file is JSON with a `format` field naming kind and version, is
//! written with mode 0600, and prints as `<redacted>` in logs.

use std::fmt;
use std::io::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::ids::NodeId;

/// `format` of an identity key file.
pub const IDENTITY_KEY_FORMAT: &str = "senatus.identity-key.v1";
/// `format` of the founding authority key file.
pub const AUTHORITY_KEY_FORMAT: &str = "senatus.authority-key.v1";
/// `format` of a client key file (agent, operator, auditor or broker).
pub const CLIENT_KEY_FORMAT: &str = "senatus.client-key.v1";
/// `format` of a FROST key package file.
pub const FROST_SHARE_FORMAT: &str = "senatus.frost-share.v1";
/// Largest key file read.
pub const KEY_FILE_BYTES_MAX: u64 = 16 * 1024;

/// Why a key file was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file could not be read or written.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Larger than its limit ([`KEY_FILE_BYTES_MAX`] for key files).
    #[error("key file {path} is {bytes} bytes, over the {max}-byte limit")]
    TooLarge {
        /// The file.
        path: String,
        /// Its size.
        bytes: u64,
        /// The limit.
        max: u64,
    },
    /// Truncated or garbled JSON, unknown or missing fields.
    #[error("key file {path} is malformed: {message}")]
    Malformed {
        /// The file.
        path: String,
        /// What the parser said (never the secret).
        message: String,
    },
    /// A different kind or version of key file.
    #[error("key file {path} has format {found:?}, expected {expected:?}")]
    Format {
        /// The file.
        path: String,
        /// What it says.
        found: String,
        /// What was wanted.
        expected: &'static str,
    },
    /// The key material itself does not decode.
    #[error("key file {path} holds an invalid key: {message}")]
    BadKey {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityFile {
    format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    node_id: Option<NodeId>,
    secret_key: Zeroizing<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientFile {
    format: String,
    role: crate::registry::Role,
    secret_key: Zeroizing<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FrostFile {
    format: String,
    node_id: NodeId,
    key_package: Zeroizing<String>,
}

/// An Ed25519 signing key (validator identity or founding authority).
pub struct SecretKey(ed25519_dalek::SigningKey);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SecretKey(public={}, secret=<redacted>)",
            hex::encode(self.public())
        )
    }
}

impl SecretKey {
    /// Generates a key from `rng`.
    pub fn generate<R: rand::RngCore + rand::CryptoRng>(rng: &mut R) -> Self {
        SecretKey(ed25519_dalek::SigningKey::generate(rng))
    }

    /// The public key bytes.
    pub fn public(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    /// The dalek signing key.
    pub fn signing_key(&self) -> &ed25519_dalek::SigningKey {
        &self.0
    }

    /// Signs `msg` (deterministic Ed25519).
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer as _;
        self.0.sign(msg).to_bytes()
    }

    /// Writes an identity key file (`node_id` set) or authority key file.
    pub fn write(&self, path: &Path, node_id: Option<NodeId>) -> Result<(), KeyFileError> {
        let format = if node_id.is_some() {
            IDENTITY_KEY_FORMAT
        } else {
            AUTHORITY_KEY_FORMAT
        };
        self.write_as(path, format, node_id)
    }

    /// Writes a key file of `format` (identity, authority, TLS: one layout).
    pub(crate) fn write_as(
        &self,
        path: &Path,
        format: &str,
        node_id: Option<NodeId>,
    ) -> Result<(), KeyFileError> {
        let file = IdentityFile {
            format: format.to_string(),
            node_id,
            secret_key: Zeroizing::new(hex::encode(self.0.to_bytes())),
        };
        write_key_json(path, &file)
    }

    /// Writes a client key file for `role` (mode 0600): what `senatus
    /// keygen` makes.
    pub fn write_client(
        &self,
        path: &Path,
        role: crate::registry::Role,
    ) -> Result<(), KeyFileError> {
        let file = ClientFile {
            format: CLIENT_KEY_FORMAT.to_string(),
            role,
            secret_key: Zeroizing::new(hex::encode(self.0.to_bytes())),
        };
        write_key_json(path, &file)
    }

    /// Reads a client key file; returns the key and the role it was made for.
    pub fn read_client(path: &Path) -> Result<(Self, crate::registry::Role), KeyFileError> {
        let (file, shown) = read_key_json::<ClientFile>(path, CLIENT_KEY_FORMAT, |f| &f.format)?;
        Ok((Self::from_hex(&shown, &file.secret_key)?, file.role))
    }

    fn from_hex(shown: &str, hex_key: &str) -> Result<Self, KeyFileError> {
        let raw =
            Zeroizing::new(
                hex::decode(hex_key.as_bytes()).map_err(|_| KeyFileError::BadKey {
                    path: shown.to_string(),
                    message: "secret_key is not hex".into(),
                })?,
            );
        let arr: [u8; 32] = raw
            .as_slice()
            .try_into()
            .map_err(|_| KeyFileError::BadKey {
                path: shown.to_string(),
                message: format!("secret_key is {} bytes, want 32", raw.len()),
            })?;
        let arr = Zeroizing::new(arr);
        Ok(SecretKey(ed25519_dalek::SigningKey::from_bytes(&arr)))
    }

    /// Reads an identity key file; returns the key and the node id it names.
    pub fn read_identity(path: &Path) -> Result<(Self, NodeId), KeyFileError> {
        Self::read_with_node(path, IDENTITY_KEY_FORMAT)
    }

    /// Reads a key file of `format` that must name a node.
    pub(crate) fn read_with_node(
        path: &Path,
        format: &'static str,
    ) -> Result<(Self, NodeId), KeyFileError> {
        let (key, node) = Self::read(path, format)?;
        let node = node.ok_or_else(|| KeyFileError::Malformed {
            path: path.display().to_string(),
            message: "missing field `node_id`".into(),
        })?;
        Ok((key, node))
    }

    /// Reads the founding authority key file.
    pub fn read_authority(path: &Path) -> Result<Self, KeyFileError> {
        Self::read(path, AUTHORITY_KEY_FORMAT).map(|(k, _)| k)
    }

    fn read(path: &Path, expected: &'static str) -> Result<(Self, Option<NodeId>), KeyFileError> {
        let (file, shown) = read_key_json::<IdentityFile>(path, expected, |f| &f.format)?;
        Ok((Self::from_hex(&shown, &file.secret_key)?, file.node_id))
    }
}

/// This validator's FROST key package (its secret signing share plus the
/// group key and its own verifying share).
pub struct FrostShare {
    /// The validator this share belongs to.
    pub node_id: NodeId,
    /// The FROST key package.
    pub key_package: frost_ed25519::keys::KeyPackage,
}

impl fmt::Debug for FrostShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FrostShare(node={}, share=<redacted>)", self.node_id)
    }
}

impl FrostShare {
    /// Writes the key package file (mode 0600).
    pub fn write(&self, path: &Path) -> Result<(), KeyFileError> {
        let shown = path.display().to_string();
        let bytes =
            Zeroizing::new(
                self.key_package
                    .serialize()
                    .map_err(|e| KeyFileError::BadKey {
                        path: shown.clone(),
                        message: e.to_string(),
                    })?,
            );
        let file = FrostFile {
            format: FROST_SHARE_FORMAT.to_string(),
            node_id: self.node_id,
            key_package: Zeroizing::new(hex::encode(bytes.as_slice())),
        };
        write_key_json(path, &file)
    }

    /// Reads a key package file.
    pub fn read(path: &Path) -> Result<Self, KeyFileError> {
        let (file, shown) = read_key_json::<FrostFile>(path, FROST_SHARE_FORMAT, |f| &f.format)?;
        let raw = Zeroizing::new(hex::decode(file.key_package.as_bytes()).map_err(|_| {
            KeyFileError::BadKey {
                path: shown.clone(),
                message: "key_package is not hex".into(),
            }
        })?);
        let key_package = frost_ed25519::keys::KeyPackage::deserialize(&raw).map_err(|e| {
            KeyFileError::BadKey {
                path: shown.clone(),
                message: format!("key_package does not decode: {e}"),
            }
        })?;
        Ok(FrostShare {
            node_id: file.node_id,
            key_package,
        })
    }
}

/// serde_json errors can quote input; for secret files keep only the
/// position and category so no key material reaches a log.
fn redact_serde(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Io => "I/O error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected or missing field",
        serde_json::error::Category::Eof => "truncated",
    };
    let mut msg = format!("{what} at line {} column {}", e.line(), e.column());
    // Field-name errors are safe to show ("unknown field `x`").
    let full = e.to_string();
    if let Some(field) = full.split('`').nth(1)
        && full.contains("field")
        && field.len() <= 64
    {
        msg.push_str(&format!(" (field `{field}`)"));
    }
    msg
}

/// Reads a key-material file of at most `max` bytes.
pub(crate) fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, KeyFileError> {
    let shown = path.display().to_string();
    let io = |source| KeyFileError::Io {
        path: shown.clone(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.len() > max {
        return Err(KeyFileError::TooLarge {
            path: shown,
            bytes: meta.len(),
            max,
        });
    }
    std::fs::read(path).map_err(io)
}

/// Reads a key file of `expected` format as `T` (bounded, strict JSON, the
/// secret never echoed in an error); returns it with the path as shown.
fn read_key_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    expected: &'static str,
    format: impl Fn(&T) -> &str,
) -> Result<(T, String), KeyFileError> {
    let shown = path.display().to_string();
    let bytes = read_bounded(path, KEY_FILE_BYTES_MAX)?;
    let file: T = serde_json::from_slice(&bytes).map_err(|e| KeyFileError::Malformed {
        path: shown.clone(),
        message: redact_serde(&e),
    })?;
    if format(&file) != expected {
        return Err(KeyFileError::Format {
            path: shown,
            found: format(&file).to_string(),
            expected,
        });
    }
    Ok((file, shown))
}

/// Writes `file` as pretty JSON with mode 0600 ([`write_secret_file`]),
/// the serialized secret zeroized after.
fn write_key_json<T: Serialize>(path: &Path, file: &T) -> Result<(), KeyFileError> {
    let json = Zeroizing::new(serde_json::to_string_pretty(file).expect("key file serializes"));
    write_secret_file(path, json.as_bytes())
}

/// Creates (or truncates) `path` with mode 0600 and writes `bytes`.
pub fn write_secret_file(path: &Path, bytes: &[u8]) -> Result<(), KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io)?;
    // An existing file keeps its old mode on open; force 0600.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io)?;
    }
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)
}
