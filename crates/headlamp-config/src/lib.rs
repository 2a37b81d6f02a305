//! Configuration: Go-style flags, `HEADLAMP_CONFIG_*` environment variables and an optional TOML file, layered into one validated `Config`.
