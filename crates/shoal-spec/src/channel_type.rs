//! Sensor channel types: what a channel measures, as the numbers Ocre SDK programs see.
//!
//! SDK programs ask `ocre_sensors_get_channel_type(sensor, index)` for a channel's type and
//! pass that number to `ocre_sensors_read(sensor, type)`: the type, not the index, selects
//! the channel. The numbers must therefore be the SDK's own. This table is the one place
//! they are written down:
//!
//! | name | code | source |
//! |---|---|---|
//! | `acceleration` | 0 | SDK enum `sensor_channel_t` |
//! | `gyro` | 1 | SDK enum |
//! | `magnetic_field` | 2 | SDK enum |
//! | `light` | 3 | SDK enum |
//! | `pressure` | 4 | SDK enum |
//! | `proximity` | 5 | SDK enum |
//! | `humidity` | 6 | SDK enum |
//! | `temperature` | 7 | SDK enum |
//! | `voltage` | 8 | shoal extension (the SDK enum says "add more channels as needed"; appended in order) |
//! | `current` | 9 | shoal extension |
//! | `power` | 10 | shoal extension |
//! | `custom` | 0x8000 + channel index | Zephyr's first driver-private channel number, which the Ocre runtime passes through |
//!
//! `custom` covers values with no standard meaning, such as the `rng` sensor's random
//! numbers. Its code includes the channel's index so that every channel of a sensor has a
//! distinct type and `read(sensor, type)` always finds exactly one channel.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// What a sensor channel measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelType {
    Acceleration,
    Gyro,
    MagneticField,
    Light,
    Pressure,
    Proximity,
    Humidity,
    Temperature,
    Voltage,
    Current,
    Power,
    /// A value without a standard meaning (random numbers, a counter, ...).
    Custom,
}

/// Code of a `custom` channel with index 0; channel `i` reports `CUSTOM_BASE + i`.
pub const CUSTOM_BASE: i32 = 0x8000;

/// Every named type with its fixed code (`custom` is separate: its code depends on the index).
const NAMED: [(ChannelType, &str, i32); 11] = [
    (ChannelType::Acceleration, "acceleration", 0),
    (ChannelType::Gyro, "gyro", 1),
    (ChannelType::MagneticField, "magnetic_field", 2),
    (ChannelType::Light, "light", 3),
    (ChannelType::Pressure, "pressure", 4),
    (ChannelType::Proximity, "proximity", 5),
    (ChannelType::Humidity, "humidity", 6),
    (ChannelType::Temperature, "temperature", 7),
    (ChannelType::Voltage, "voltage", 8),
    (ChannelType::Current, "current", 9),
    (ChannelType::Power, "power", 10),
];

impl ChannelType {
    /// Every name the compose file accepts, in code order.
    pub const NAMES: [&'static str; 12] = [
        "acceleration",
        "gyro",
        "magnetic_field",
        "light",
        "pressure",
        "proximity",
        "humidity",
        "temperature",
        "voltage",
        "current",
        "power",
        "custom",
    ];

    /// The name written in the compose file.
    pub fn name(self) -> &'static str {
        NAMED
            .iter()
            .find(|(t, _, _)| *t == self)
            .map_or("custom", |(_, name, _)| name)
    }

    /// The number guests see for this type on channel `index` of its sensor.
    pub fn code(self, index: u32) -> i32 {
        match NAMED.iter().find(|(t, _, _)| *t == self) {
            Some((_, _, code)) => *code,
            None => CUSTOM_BASE.saturating_add(i32::try_from(index).unwrap_or(i32::MAX)),
        }
    }

    /// The type a hwmon input file measures, from its name (`temp1_input` -> temperature,
    /// `in0_input` -> voltage, ...; the kernel's hwmon sysfs naming). `None` when the name
    /// does not tell.
    pub fn from_hwmon_file(file_name: &str) -> Option<ChannelType> {
        let stem = file_name.strip_suffix("_input")?;
        let prefix = stem.trim_end_matches(|c: char| c.is_ascii_digit());
        if prefix.len() == stem.len() {
            return None;
        }
        match prefix {
            "temp" => Some(ChannelType::Temperature),
            "in" => Some(ChannelType::Voltage),
            "curr" => Some(ChannelType::Current),
            "power" => Some(ChannelType::Power),
            "humidity" => Some(ChannelType::Humidity),
            _ => None,
        }
    }
}

impl fmt::Display for ChannelType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A channel type name that is not in the table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown sensor channel type `{0}`")]
pub struct UnknownChannelType(pub String);

impl FromStr for ChannelType {
    type Err = UnknownChannelType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "custom" {
            return Ok(ChannelType::Custom);
        }
        NAMED
            .iter()
            .find(|(_, name, _)| *name == s)
            .map(|(t, _, _)| *t)
            .ok_or_else(|| UnknownChannelType(s.to_owned()))
    }
}

impl Serialize for ChannelType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_numbers_are_fixed() {
        // The SDK enum's order is the ABI: a change here breaks compiled guests.
        assert_eq!(ChannelType::Acceleration.code(3), 0);
        assert_eq!(ChannelType::MagneticField.code(0), 2);
        assert_eq!(ChannelType::Humidity.code(0), 6);
        assert_eq!(ChannelType::Temperature.code(5), 7);
        assert_eq!(ChannelType::Voltage.code(0), 8);
        assert_eq!(ChannelType::Custom.code(0), 0x8000);
        assert_eq!(ChannelType::Custom.code(2), 0x8002);
    }

    #[test]
    fn names_round_trip() {
        for name in ChannelType::NAMES {
            let t: ChannelType = name.parse().unwrap();
            assert_eq!(t.name(), name);
            assert_eq!(t.to_string(), name);
        }
        assert_eq!(
            "temprature".parse::<ChannelType>(),
            Err(UnknownChannelType("temprature".into()))
        );
    }

    #[test]
    fn hwmon_file_names_tell_the_type() {
        assert_eq!(
            ChannelType::from_hwmon_file("temp1_input"),
            Some(ChannelType::Temperature)
        );
        assert_eq!(ChannelType::from_hwmon_file("in0_input"), Some(ChannelType::Voltage));
        assert_eq!(ChannelType::from_hwmon_file("curr2_input"), Some(ChannelType::Current));
        assert_eq!(ChannelType::from_hwmon_file("power1_input"), Some(ChannelType::Power));
        assert_eq!(
            ChannelType::from_hwmon_file("humidity1_input"),
            Some(ChannelType::Humidity)
        );
        assert_eq!(ChannelType::from_hwmon_file("fan1_input"), None);
        assert_eq!(ChannelType::from_hwmon_file("temp_input"), None);
        assert_eq!(ChannelType::from_hwmon_file("temp"), None);
    }
}
