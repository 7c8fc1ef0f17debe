"""Pure-Python helpers of the upstream package layout."""
