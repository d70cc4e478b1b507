"""AstroReason subpackage."""
