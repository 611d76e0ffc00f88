"""The year's targets and the progress made toward them."""
