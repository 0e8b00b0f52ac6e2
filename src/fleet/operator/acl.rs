//! `shoal fleet acl`: the Mosquitto ACL file for a fleet, generated from an inventory so no
//! one writes (and mistypes) per-device blocks by hand for a thousand boards.
//!
//! The inventory is a small YAML file (`compose-examples/fleet/inventory.yaml`):
//!
//! ```yaml
//! operator: operator        # the MQTT user of `shoal fleet` (default: operator)
//! devices:
//!   - id: pi-01             # the device id is also its MQTT user name
//!     groups: [line-3]
//! ```
//!
//! or devices given on the command line as `--device ID=GROUP,GROUP`.
//!
//! Each device may read only its own and its groups' `desired` and `vars` documents and
//! write only its own `reported` and `status`; the operator user reads and writes all of
//! `shoal/v1/#`. Mosquitto denies anything not granted, so a device can neither read
//! another device's documents nor write any desired state.

use std::fmt::Write as _;
use std::path::Path;

use crate::fleet::topics;

/// One device of the inventory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryDevice {
    pub id: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// The inventory file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    #[serde(default = "default_operator")]
    pub operator: String,
    #[serde(default)]
    pub devices: Vec<InventoryDevice>,
}

fn default_operator() -> String {
    "operator".to_string()
}

/// Why no ACL could be made.
#[derive(Debug, thiserror::Error)]
pub enum AclError {
    #[error("cannot read the inventory {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {message}\n  hint: the inventory is `operator: NAME` and `devices:` a list of `{{id: ID, groups: [G, ...]}}`")]
    Parse { path: String, message: String },
    #[error("--device {0}: write it as ID=GROUP,GROUP (or ID alone for a device in no group)")]
    DeviceFlag(String),
    #[error(transparent)]
    Id(#[from] topics::InvalidId),
    #[error("device `{0}` is the operator's user name; a board must not have the operator's rights")]
    Operator(String),
    #[error("device `{0}` is listed twice")]
    Duplicate(String),
    #[error("no devices: give --inventory FILE or --device ID=GROUP,...")]
    Empty,
}

impl Inventory {
    /// Read and check an inventory file.
    pub fn read(path: &Path) -> Result<Inventory, AclError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| AclError::Read {
            path: shown.clone(),
            source,
        })?;
        let inventory: Inventory = serde_saphyr::from_str(&text).map_err(|e| AclError::Parse {
            path: shown,
            message: e.to_string(),
        })?;
        Ok(inventory)
    }

    /// A device from `ID=GROUP,GROUP`.
    pub fn device_flag(flag: &str) -> Result<InventoryDevice, AclError> {
        let (id, groups) = flag.split_once('=').unwrap_or((flag, ""));
        if id.is_empty() {
            return Err(AclError::DeviceFlag(flag.to_string()));
        }
        let groups = groups
            .split(',')
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(str::to_string)
            .collect();
        Ok(InventoryDevice {
            id: id.to_string(),
            groups,
        })
    }

    /// Every id valid (they become topic levels and user names), no device twice.
    pub fn check(&self) -> Result<(), AclError> {
        if self.devices.is_empty() {
            return Err(AclError::Empty);
        }
        topics::check_id("operator", &self.operator)?;
        let mut seen = std::collections::BTreeSet::new();
        for device in &self.devices {
            topics::check_id("device", &device.id)?;
            for group in &device.groups {
                topics::check_id("group", group)?;
            }
            if !seen.insert(device.id.as_str()) {
                return Err(AclError::Duplicate(device.id.clone()));
            }
            if device.id == self.operator {
                return Err(AclError::Operator(device.id.clone()));
            }
        }
        Ok(())
    }
}

/// The ACL text for `inventory` (checked first).
pub fn render(inventory: &Inventory) -> Result<String, AclError> {
    inventory.check()?;
    let mut out = String::new();
    out.push_str(HEADER);
    let _ = writeln!(
        out,
        "# The operator (`shoal fleet`): reads reports and writes every document."
    );
    let _ = writeln!(out, "user {}", inventory.operator);
    let _ = writeln!(out, "topic readwrite {}/#", topics::PREFIX);
    for device in &inventory.devices {
        let id = &device.id;
        let _ = writeln!(out);
        let groups = if device.groups.is_empty() {
            "no group".to_string()
        } else {
            format!("groups {}", device.groups.join(", "))
        };
        let _ = writeln!(out, "# Device {id} ({groups}).");
        let _ = writeln!(out, "user {id}");
        let _ = writeln!(out, "# its own deployment and variables");
        let _ = writeln!(out, "topic read {}", topics::device_desired(id));
        let _ = writeln!(out, "topic read {}", topics::device_vars(id));
        for group in &device.groups {
            let _ = writeln!(out, "# group {group}: its deployment and variables");
            let _ = writeln!(out, "topic read {}", topics::group_desired(group));
            let _ = writeln!(out, "topic read {}", topics::group_vars(group));
        }
        let _ = writeln!(out, "# its report and its online/offline status (also its last will)");
        let _ = writeln!(out, "topic write {}", topics::device_reported(id));
        let _ = writeln!(out, "topic write {}", topics::device_status(id));
        let _ = writeln!(
            out,
            "# its marker: tells it the broker's retained documents have all arrived"
        );
        let _ = writeln!(out, "topic readwrite {}", topics::device_sync(id));
    }
    Ok(out)
}

const HEADER: &str = "\
# Mosquitto ACL for a shoal fleet. Generated by `shoal fleet acl`; regenerate it from the
# inventory instead of editing it by hand.
#
# Mosquitto denies every topic a user is not granted here. The MQTT user name of a board is
# its device id (mosquitto.conf: password_file, or certificates with use_identity_as_username).
#
# Why no device can write desired state: only the operator user has `write` on
# shoal/v1/devices/+/desired and shoal/v1/groups/+/desired. A board (or a stolen board's
# password) can only report about itself. Desired documents are also signed by the
# operator's key, which the agents check: even a broker that ignored this file could stop
# updates, not run code.
#
# Why a device reads only its own topics: the documents of other boards and groups may hold
# their variables (site names, endpoints); a board needs only what it runs.

";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_example_is_the_generated_one() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("compose-examples/fleet");
        let inventory = Inventory::read(&dir.join("inventory.yaml")).unwrap();
        let shipped = std::fs::read_to_string(dir.join("mosquitto.acl")).unwrap();
        assert_eq!(render(&inventory).unwrap(), shipped);
    }

    #[test]
    fn device_blocks() {
        let inventory = Inventory {
            operator: "ops".into(),
            devices: vec![
                Inventory::device_flag("pi-01=line-3,sensors").unwrap(),
                Inventory::device_flag("pi-02").unwrap(),
            ],
        };
        let text = render(&inventory).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).collect();
        assert_eq!(
            lines,
            [
                "user ops",
                "topic readwrite shoal/v1/#",
                "user pi-01",
                "topic read shoal/v1/devices/pi-01/desired",
                "topic read shoal/v1/devices/pi-01/vars",
                "topic read shoal/v1/groups/line-3/desired",
                "topic read shoal/v1/groups/line-3/vars",
                "topic read shoal/v1/groups/sensors/desired",
                "topic read shoal/v1/groups/sensors/vars",
                "topic write shoal/v1/devices/pi-01/reported",
                "topic write shoal/v1/devices/pi-01/status",
                "topic readwrite shoal/v1/devices/pi-01/sync",
                "user pi-02",
                "topic read shoal/v1/devices/pi-02/desired",
                "topic read shoal/v1/devices/pi-02/vars",
                "topic write shoal/v1/devices/pi-02/reported",
                "topic write shoal/v1/devices/pi-02/status",
                "topic readwrite shoal/v1/devices/pi-02/sync",
            ]
        );
    }

    #[test]
    fn bad_inventories_are_refused() {
        let mut inventory = Inventory {
            operator: "operator".into(),
            devices: vec![],
        };
        assert!(matches!(render(&inventory), Err(AclError::Empty)));
        inventory.devices = vec![Inventory::device_flag("a/b=g").unwrap()];
        assert!(matches!(
            render(&inventory),
            Err(AclError::Id(topics::InvalidId { what: "device", .. }))
        ));
        inventory.devices = vec![Inventory::device_flag("a=g#").unwrap()];
        assert!(matches!(
            render(&inventory),
            Err(AclError::Id(topics::InvalidId { what: "group", .. }))
        ));
        inventory.devices = vec![
            Inventory::device_flag("a").unwrap(),
            Inventory::device_flag("a").unwrap(),
        ];
        assert!(matches!(render(&inventory), Err(AclError::Duplicate(_))));
        inventory.devices = vec![Inventory::device_flag("operator").unwrap()];
        assert!(matches!(render(&inventory), Err(AclError::Operator(_))));
        assert!(matches!(Inventory::device_flag("=g"), Err(AclError::DeviceFlag(_))));
    }
}
