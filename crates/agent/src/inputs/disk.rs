//! `[[inputs.disk]]` (not built yet).

use crate::config::{ConfigError, InputCommon, PluginSpec};
use crate::input::Input;
use crate::inputs::BuildContext;

/// Builds the input from its table.
pub(crate) fn build(
    spec: &PluginSpec<InputCommon>,
    _ctx: &BuildContext,
) -> Result<Box<dyn Input>, ConfigError> {
    Err(spec.error("not built yet"))
}
